"""The inference protocols against a live service (uvicorn on 127.0.0.1) with clients we did
not write: NVIDIA's ``tritonclient`` (HTTP, Open Inference Protocol v2) and a request exactly as
TF Serving's REST documentation shows it. Real X-rays from ``$CXR_DATA_DIR`` (manifest.csv)."""

from __future__ import annotations

import base64
import csv
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.e2e.conftest import running_service

httpclient = pytest.importorskip("tritonclient.http", reason="pip install -e '.[dev]'")
from tritonclient.utils import InferenceServerException  # noqa: E402

MODEL = "tiny-test-model"
BINARY = "tiny-covid-vs-pneumonia"


@pytest.fixture(scope="module")
def live(
    tiny_model_dir: Path, binary_model_dirs: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    extra = {"CXR_EXTRA_MODEL_DIRS": ",".join(str(p) for p in binary_model_dirs)}
    with running_service(tiny_model_dir, tmp_path_factory.mktemp("live"), extra) as url:
        yield url


@pytest.fixture(scope="module")
def four_xrays(data_dir: Path) -> list[bytes]:
    """One test-split image of each class, and a fourth: real files as the manifest lists them."""
    with (data_dir / "manifest.csv").open() as handle:
        rows = [row for row in csv.DictReader(handle) if row["split"] == "test"]
    chosen = [next(r for r in rows if r["label"] == label) for label in ("covid", "normal")]
    chosen += [r for r in rows if r["label"] == "pneumonia"][:2]
    return [(data_dir / row["path"]).read_bytes() for row in chosen]


def post(url: str, body: bytes, content_type: str) -> dict:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=60) as response:
        answer: dict = json.load(response)
        return answer


def predicted(live: str, image: bytes, model: str) -> list[float]:
    body = post(f"{live}/predict?model={model}", image, "application/octet-stream")
    return list(body["probabilities"].values())


@pytest.fixture(scope="module")
def triton(live: str) -> Iterator[httpclient.InferenceServerClient]:
    client = httpclient.InferenceServerClient(live.removeprefix("http://"))
    yield client
    client.close()


def image_input(images: list[bytes]) -> httpclient.InferInput:
    tensor = httpclient.InferInput("image", [len(images)], "BYTES")
    tensor.set_data_from_numpy(np.array(images, dtype=np.object_), binary_data=True)
    return tensor


def test_server_and_model_status(triton: httpclient.InferenceServerClient) -> None:
    assert triton.is_server_live() and triton.is_server_ready()
    assert triton.is_model_ready(BINARY) and triton.is_model_ready(MODEL, "0.0.1")
    metadata = triton.get_model_metadata(BINARY)
    assert metadata["name"] == BINARY and metadata["versions"] == ["0.0.1"]
    assert metadata["inputs"][0] == {"name": "image", "datatype": "BYTES", "shape": [-1]}
    assert {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]} in metadata["outputs"]
    assert "NOT" in triton.get_server_metadata()["disclaimer"]


@pytest.mark.parametrize("model", [MODEL, BINARY])
def test_a_batch_of_four_gives_the_probabilities_of_predict(
    triton: httpclient.InferenceServerClient, live: str, four_xrays: list[bytes], model: str
) -> None:
    outputs = [
        httpclient.InferRequestedOutput("probabilities", binary_data=False),
        httpclient.InferRequestedOutput("label", binary_data=False),
    ]
    result = triton.infer(model, [image_input(four_xrays)], outputs=outputs)
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (4, 3 if model == MODEL else 2)
    for image, row in zip(four_xrays, probabilities, strict=True):
        np.testing.assert_allclose(row, predicted(live, image, model), atol=1e-5)
    labels = [
        label.decode() if isinstance(label, bytes) else label for label in result.as_numpy("label")
    ]
    classes = result.get_response()["parameters"]["classes"].split(",")
    assert labels == [classes[int(i)] for i in probabilities.argmax(axis=1)]


def test_binary_outputs_and_the_heatmap(
    triton: httpclient.InferenceServerClient, live: str, four_xrays: list[bytes]
) -> None:
    outputs = [
        httpclient.InferRequestedOutput("probabilities", binary_data=True),
        httpclient.InferRequestedOutput("gradcam_heatmap_png", binary_data=True),
    ]
    result = triton.infer(
        MODEL, [image_input(four_xrays[:2])], outputs=outputs, parameters={"target": "covid"}
    )
    heatmaps = result.as_numpy("gradcam_heatmap_png")
    assert heatmaps.shape == (2,)
    for png in heatmaps:
        heatmap = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
        assert heatmap is not None and heatmap.ndim == 2 and heatmap.max() > 0
    np.testing.assert_allclose(
        result.as_numpy("probabilities")[0], predicted(live, four_xrays[0], MODEL), atol=1e-5
    )
    # No outputs named: tritonclient asks for every output in binary.
    default = triton.infer(BINARY, [image_input(four_xrays[:1])])
    assert default.as_numpy("probabilities").shape == (1, 2)


def test_errors_are_4xx_exceptions(
    triton: httpclient.InferenceServerClient, four_xrays: list[bytes]
) -> None:
    with pytest.raises(InferenceServerException) as bad:
        triton.infer(MODEL, [image_input([b"this is not an image at all"])])
    assert bad.value.status() in ("415", "422") and "PNG" in bad.value.message()
    with pytest.raises(InferenceServerException) as unknown:
        triton.infer("edema-net", [image_input(four_xrays[:1])])
    assert unknown.value.status() == "404" and MODEL in unknown.value.message()
    with pytest.raises(InferenceServerException) as metadata:
        triton.get_model_metadata("edema-net")
    assert metadata.value.status() == "404"


def test_tf_serving_rest_request_as_documented(live: str, four_xrays: list[bytes]) -> None:
    # https://www.tensorflow.org/tfx/serving/api_rest: binary values as {"b64": ...}
    instances = [{"b64": base64.b64encode(image).decode()} for image in four_xrays]
    body = json.dumps({"instances": instances}).encode()
    answer = post(f"{live}/v1/models/{BINARY}:predict", body, "application/json")
    assert len(answer["predictions"]) == 4
    for image, prediction in zip(four_xrays, answer["predictions"], strict=True):
        np.testing.assert_allclose(
            prediction["probabilities"], predicted(live, image, BINARY), atol=1e-5
        )
