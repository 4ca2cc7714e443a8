"""Open Inference Protocol v2 and TF Serving v1 in-process: shapes, binary data, errors."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.keys import new_key, write_keys
from service.main import create_app
from service.protocols.v2_codec import join_bytes_tensor, split_bytes_tensor
from service.settings import DISCLAIMER, Settings

MODEL = "tiny-test-model"
BINARY = "tiny-covid-vs-normal"


@pytest.fixture(scope="module")
def v2(tiny_model_dir: Path, binary_model_dirs: list[Path]) -> Iterator[TestClient]:
    settings = Settings(
        model_dir=tiny_model_dir, extra_model_dirs=str(binary_model_dirs[0]), background_load=False
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def xrays(raster_originals: list[Path]) -> list[bytes]:
    return [path.read_bytes() for path in raster_originals[:3]]


def json_request(images: list[bytes], **extra: object) -> dict:
    data = [base64.b64encode(image).decode() for image in images]
    tensor = {"name": "image", "datatype": "BYTES", "shape": [len(images)], "data": data}
    return {"inputs": [tensor], **extra}


def binary_body(images: list[bytes], header: dict | None = None) -> tuple[bytes, dict[str, str]]:
    raw = join_bytes_tensor(images)
    tensor = {
        "name": "image",
        "datatype": "BYTES",
        "shape": [len(images)],
        "parameters": {"binary_data_size": len(raw)},
    }
    text = json.dumps({"inputs": [tensor], **(header or {})}).encode()
    return text + raw, {"Inference-Header-Content-Length": str(len(text))}


def predicted(client: TestClient, image: bytes, model: str = MODEL) -> list[float]:
    body = client.post("/predict", params={"model": model}, files={"file": ("x", image)}).json()
    return list(body["probabilities"].values())


def test_bytes_tensor_round_trip() -> None:
    elements = [b"", b"a", b"\x00" * 300]
    assert split_bytes_tensor(join_bytes_tensor(elements)) == elements
    assert join_bytes_tensor([b"ab"]) == struct.pack("<I", 2) + b"ab"


def test_health_metadata_and_ready(v2: TestClient) -> None:
    assert v2.get("/v2/health/live").status_code == 200
    assert v2.get("/v2/health/ready").status_code == 200
    server = v2.get("/v2").json()
    assert server["models"] == [MODEL, BINARY] and "binary_tensor_data" in server["extensions"]
    for path in (f"/v2/models/{BINARY}", f"/v2/models/{BINARY}/versions/0.0.1"):
        meta = v2.get(path).json()
        assert meta["name"] == BINARY and meta["versions"] == ["0.0.1"]
        assert meta["inputs"] == [{"name": "image", "datatype": "BYTES", "shape": [-1]}]
        (probabilities,) = [o for o in meta["outputs"] if o["name"] == "probabilities"]
        assert probabilities == {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]}
        assert meta["parameters"]["classes"] == "covid,normal"
        assert meta["parameters"]["disclaimer"] == DISCLAIMER
    assert v2.get(f"/v2/models/{MODEL}/ready").json() == {"name": MODEL, "ready": True}
    assert v2.get(f"/v2/models/{MODEL}/versions/0.0.1/ready").status_code == 200


def test_json_infer_matches_predict(v2: TestClient, xrays: list[bytes]) -> None:
    response = v2.post(f"/v2/models/{BINARY}/infer", json=json_request(xrays, id="r-1"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == BINARY and body["model_version"] == "0.0.1"
    assert body["id"] == "r-1" and body["parameters"]["disclaimer"] == DISCLAIMER
    outputs = {o["name"]: o for o in body["outputs"]}
    assert set(outputs) == {"probabilities", "label"}
    assert outputs["probabilities"]["shape"] == [3, 2]
    probabilities = np.array(outputs["probabilities"]["data"]).reshape(3, 2)
    for image, row in zip(xrays, probabilities, strict=True):
        np.testing.assert_allclose(row, predicted(v2, image, BINARY), atol=1e-5)
    assert outputs["label"]["data"] == [
        ["covid", "normal"][int(np.argmax(r))] for r in probabilities
    ]


def test_binary_in_and_out_with_the_heatmap(v2: TestClient, xrays: list[bytes]) -> None:
    outputs = [
        {"name": "probabilities", "parameters": {"binary_data": True}},
        {"name": "gradcam_heatmap_png", "parameters": {"binary_data": True}},
        {"name": "label"},
    ]
    body, headers = binary_body(xrays[:2], {"outputs": outputs, "parameters": {"target": "normal"}})
    response = v2.post(f"/v2/models/{MODEL}/infer", content=body, headers=headers)
    assert response.status_code == 200, response.text
    length = int(response.headers["Inference-Header-Content-Length"])
    header = json.loads(response.content[:length])
    rest = response.content[length:]
    sizes = [o.get("parameters", {}).get("binary_data_size") for o in header["outputs"]]
    assert [o["name"] for o in header["outputs"]] == [
        "probabilities",
        "gradcam_heatmap_png",
        "label",
    ]
    assert sizes[0] == 2 * 3 * 4 and sizes[2] is None and sum(sizes[:2]) == len(rest)
    probabilities = np.frombuffer(rest[: sizes[0]], "<f4").reshape(2, 3)
    np.testing.assert_allclose(probabilities[1], predicted(v2, xrays[1]), atol=1e-5)
    pngs = split_bytes_tensor(rest[sizes[0] :])
    assert len(pngs) == 2 and all(png.startswith(b"\x89PNG") for png in pngs)
    assert header["parameters"]["gradcam_targets"] == "normal,normal"


@pytest.mark.parametrize(
    ("request_body", "status", "words"),
    [
        ({"inputs": []}, 400, "one input"),
        (
            {"inputs": [{"name": "pixels", "datatype": "BYTES", "shape": [1], "data": ["x"]}]},
            400,
            "image",
        ),
        (
            {"inputs": [{"name": "image", "datatype": "FP32", "shape": [1], "data": [1.0]}]},
            400,
            "BYTES",
        ),
        (
            {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [2], "data": ["aGk="]}]},
            400,
            "shape",
        ),
        (
            {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": ["**"]}]},
            400,
            "base64",
        ),
        (
            {
                "inputs": [
                    {
                        "name": "image",
                        "datatype": "BYTES",
                        "shape": [1],
                        "data": ["aGVsbG8gd29ybGQ="],
                    }
                ]
            },
            415,
            "PNG",
        ),
    ],
)
def test_bad_requests_are_protocol_errors(
    v2: TestClient, request_body: dict, status: int, words: str
) -> None:
    response = v2.post(f"/v2/models/{MODEL}/infer", json=request_body)
    assert response.status_code == status
    error = response.json()["error"]
    assert isinstance(error, str) and words in error


def test_unknown_model_version_target_and_output(v2: TestClient, xrays: list[bytes]) -> None:
    for path in ("/v2/models/nope", "/v2/models/nope/ready", f"/v2/models/{MODEL}/versions/9"):
        response = v2.get(path)
        assert response.status_code == 404 and MODEL in response.json()["error"]
    assert v2.post("/v2/models/nope/infer", json=json_request(xrays[:1])).status_code == 404
    wrong_target = json_request(xrays[:1], parameters={"target": "pneumonia", "gradcam": True})
    response = v2.post(f"/v2/models/{BINARY}/infer", json=wrong_target)
    assert response.status_code == 400 and "covid, normal" in response.json()["error"]
    response = v2.post(
        f"/v2/models/{MODEL}/infer", json=json_request(xrays[:1], outputs=[{"name": "logits"}])
    )
    assert response.status_code == 400 and "logits" in response.json()["error"]


def test_the_input_gate_refuses_as_a_protocol_error(v2: TestClient) -> None:
    import cv2

    blank = cv2.imencode(".png", np.full((256, 256), 128, np.uint8))[1].tobytes()
    response = v2.post(f"/v2/models/{MODEL}/infer", json=json_request([blank]))
    assert response.status_code == 422
    assert "chest radiograph" in response.json()["error"]


def test_v1_predict_and_explain(v2: TestClient, xrays: list[bytes]) -> None:
    b64 = base64.b64encode(xrays[0]).decode()
    rows = v2.post(f"/v1/models/{BINARY}:predict", json={"instances": [{"b64": b64}] * 2}).json()
    assert rows["disclaimer"] == DISCLAIMER and len(rows["predictions"]) == 2
    np.testing.assert_allclose(
        rows["predictions"][0]["probabilities"], predicted(v2, xrays[0], BINARY), atol=1e-5
    )
    assert rows["predictions"][0]["classes"] == ["covid", "normal"]
    columns = v2.post(f"/v1/models/{BINARY}:predict", json={"inputs": {"image": [{"b64": b64}]}})
    assert columns.json()["outputs"]["label"] == [rows["predictions"][0]["label"]]
    explained = v2.post(
        f"/v1/models/{MODEL}/versions/0.0.1:explain",
        json={"instances": [{"image": {"b64": b64}, "target": "pneumonia"}]},
    ).json()["predictions"][0]
    assert explained["gradcam_target"] == "pneumonia"
    assert base64.b64decode(explained["gradcam_heatmap_png"]["b64"]).startswith(b"\x89PNG")
    assert v2.get(f"/v1/models/{MODEL}").json()["model_version_status"][0]["state"] == "AVAILABLE"


def test_v1_errors(v2: TestClient) -> None:
    for path, body, status in (
        (f"/v1/models/{MODEL}:classify", {"instances": []}, 400),
        (f"/v1/models/{MODEL}:predict", {"instances": ["aGk="]}, 400),
        (f"/v1/models/{MODEL}:predict", {"signature_name": "x"}, 400),
        ("/v1/models/nope:predict", {"instances": [{"b64": "aGk="}]}, 404),
        (f"/v1/models/{MODEL}/versions/7:predict", {"instances": [{"b64": "aGk="}]}, 404),
        (f"/v1/models/{MODEL}:predict", {"instances": [{"b64": "aGk="}]}, 415),
    ):
        response = v2.post(path, json=body)
        assert response.status_code == status, (path, response.text)
        assert isinstance(response.json()["error"], str)


def test_auth_and_admission_apply(tiny_model_dir: Path, tmp_path: Path, xrays: list[bytes]) -> None:
    keys_file = tmp_path / "keys.json"
    viewer, record = new_key("bridge", frozenset({"pacs"}))
    write_keys(keys_file, [record])
    settings = Settings(
        model_dir=tiny_model_dir, api_keys_file=keys_file, background_load=False, max_queue=0
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        body = json_request(xrays[:1])
        for path in (f"/v2/models/{MODEL}/infer", f"/v1/models/{MODEL}:predict"):
            payload = (
                body if "v2" in path else {"instances": [{"b64": body["inputs"][0]["data"][0]}]}
            )
            anonymous = client.post(path, json=payload)
            assert anonymous.status_code == 401 and isinstance(anonymous.json()["error"], str)
            assert "WWW-Authenticate" in anonymous.headers
            wrong_scope = client.post(
                path, json=payload, headers={"Authorization": f"Bearer {viewer}"}
            )
            assert wrong_scope.status_code == 403
        assert client.get("/v2/health/ready").status_code == 200  # open, like /ready
        state = client.app.state.service  # type: ignore[attr-defined]
        for _ in range(state.settings.inference_concurrency * state.settings.max_batch_size):
            state.scheduler.reserve()  # every place taken: the next request is refused
        try:
            busy = client.post(f"/v2/models/{MODEL}/infer", json=body)
            assert busy.status_code == 503 and "Retry-After" in busy.headers
            assert isinstance(busy.json()["error"], str)
        finally:
            for _ in range(state.settings.inference_concurrency * state.settings.max_batch_size):
                state.scheduler.release()
