"""Several models in one service, chosen per request: /models, /model, model= on every route."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service import main as service_main
from service.main import create_app
from service.settings import DISCLAIMER, Settings

NAMES = ["tiny-test-model", "tiny-covid-vs-normal", "tiny-covid-vs-pneumonia"]


@pytest.fixture(scope="module")
def multi(tiny_model_dir: Path, binary_model_dirs: list[Path]) -> Iterator[TestClient]:
    settings = Settings(
        model_dir=tiny_model_dir,
        extra_model_dirs=",".join(str(p) for p in binary_model_dirs),
        background_load=False,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def xray(raster_originals: list[Path]) -> bytes:
    return raster_originals[0].read_bytes()


def test_models_lists_every_model_the_default_first(multi: TestClient) -> None:
    body = multi.get("/models").json()
    assert [m["name"] for m in body["models"]] == NAMES
    assert body["default"] == "tiny-test-model"
    assert body["disclaimer"] == DISCLAIMER
    first, binary = body["models"][0], body["models"][1]
    assert first["default"] and not binary["default"]
    assert binary["classes"] == ["covid", "normal"] and binary["version"] == "0.0.1"
    assert all(m["ready"] and m["backend"] == "tensorflow" for m in body["models"])
    assert first["test_metrics"] == {}  # the tiny model's macro_f1 is null: nothing to show
    assert multi.get("/ready").status_code == 200


def test_model_shows_one_model_in_full(multi: TestClient) -> None:
    default = multi.get("/model").json()
    assert default["name"] == "tiny-test-model" and default["default"] is True
    chosen = multi.get("/model", params={"model": "tiny-covid-vs-pneumonia"}).json()
    assert chosen["name"] == "tiny-covid-vs-pneumonia" and chosen["default"] is False
    assert chosen["classes"] == ["covid", "pneumonia"]
    missing = multi.get("/model", params={"model": "edema-net"})
    assert missing.status_code == 404
    error = missing.json()["error"]
    assert error["code"] == "model_not_found"
    assert all(name in error["message"] for name in NAMES)


def test_model_as_query_form_and_json_field(multi: TestClient, xray: bytes) -> None:
    by_query = multi.post(
        "/predict", params={"model": "tiny-covid-vs-normal"}, files={"file": ("x.png", xray)}
    ).json()
    by_form = multi.post(
        "/predict", data={"model": "tiny-covid-vs-normal"}, files={"file": ("x.png", xray)}
    ).json()
    by_json = multi.post(
        "/predict",
        json={"image_base64": base64.b64encode(xray).decode(), "model": "tiny-covid-vs-normal"},
    ).json()
    default = multi.post("/predict", files={"file": ("x.png", xray)}).json()
    for body in (by_query, by_form, by_json):
        assert body["model"] == {"name": "tiny-covid-vs-normal", "version": "0.0.1"}
        assert list(body["probabilities"]) == ["covid", "normal"]
        assert body["probabilities"] == by_query["probabilities"]
    assert list(default["probabilities"]) == ["covid", "normal", "pneumonia"]
    assert default["model"]["name"] == "tiny-test-model"


def test_explain_targets_follow_the_chosen_model(multi: TestClient, xray: bytes) -> None:
    files = {"file": ("x.png", xray)}
    chosen = {"model": "tiny-covid-vs-pneumonia", "target": "pneumonia"}
    body = multi.post("/explain", data=chosen, files=files).json()
    assert body["gradcam"]["target"] == "pneumonia"
    assert body["model"]["name"] == "tiny-covid-vs-pneumonia"
    wrong = multi.post(
        "/explain", data={"model": "tiny-covid-vs-normal", "target": "pneumonia"}, files=files
    )
    assert wrong.status_code == 422
    assert "covid, normal" in wrong.json()["error"]["message"]


def test_unknown_model_is_404_on_every_route(multi: TestClient, xray: bytes) -> None:
    files = {"file": ("x.png", xray)}
    for response in (
        multi.post("/predict", params={"model": "nope"}, files=files),
        multi.post("/explain", data={"model": "nope"}, files=files),
        multi.post(
            "/explain",
            params={"model": "nope"},
            files={"file": ("x.dcm", xray)},
            headers={"Accept": "application/dicom"},
        ),
        multi.post("/pacs/studies/1.2.3/analyze", params={"model": "nope"}),
    ):
        assert response.status_code in (404, 406), response.text
        if response.status_code == 404:
            assert response.json()["error"]["code"] == "model_not_found"


def test_pacs_route_names_an_unknown_model_before_asking_the_pacs(multi: TestClient) -> None:
    response = multi.post("/pacs/studies/1.2.3/analyze", params={"model": "nope"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"


def test_metrics_per_model(multi: TestClient, xray: bytes) -> None:
    for name in NAMES[1:]:
        multi.post("/predict", params={"model": name}, files={"file": ("x.png", xray)})
    lines = multi.get("/metrics").text.splitlines()
    info = [line for line in lines if line.startswith("cxr_model_info{")]
    assert len(info) == 3
    for name in NAMES:
        default = "true" if name == NAMES[0] else "false"
        (line,) = [line for line in info if f'model="{name}"' in line]
        assert f'default="{default}"' in line and line.endswith(" 1.0")
    predicted = [line for line in lines if line.startswith("cxr_predictions_total{")]
    for name in NAMES[1:]:
        assert any(f'model="{name}"' in line for line in predicted), name


def test_openapi_documents_model_not_found(multi: TestClient) -> None:
    spec = multi.get("/openapi.json").json()
    for path in ("/predict", "/explain", "/pacs/studies/{study_instance_uid}/analyze"):
        operation = spec["paths"][path]["post"]
        example = operation["responses"]["404"]["content"]["application/json"]["examples"]
        assert "model_not_found" in example
        assert any(p["name"] == "model" for p in operation["parameters"])
    assert "/models" in spec["paths"]


def test_ready_only_once_every_model_is_loaded(
    tiny_model_dir: Path, binary_model_dirs: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    real_load = service_main.load_runtime

    def slow_second(settings: Settings, metadata):  # type: ignore[no-untyped-def]
        if metadata.name == "tiny-covid-vs-normal":
            release.wait(30)
        return real_load(settings, metadata)

    monkeypatch.setattr(service_main, "load_runtime", slow_second)
    settings = Settings(
        model_dir=tiny_model_dir, extra_model_dirs=str(binary_model_dirs[0]), background_load=True
    )
    with TestClient(create_app(settings)) as client:
        for _ in range(200):
            if client.get("/models").json()["models"][0]["ready"]:
                break
            time.sleep(0.05)
        waiting = client.get("/ready")
        assert waiting.status_code == 503
        assert "tiny-covid-vs-normal" in waiting.json()["error"]["message"]
        assert client.get("/model").status_code == 200  # the default already answers
        assert client.get("/model", params={"model": "tiny-covid-vs-normal"}).status_code == 503
        release.set()
        for _ in range(200):
            if client.get("/ready").status_code == 200:
                break
            time.sleep(0.05)
        assert client.get("/ready").status_code == 200
