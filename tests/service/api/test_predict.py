"""/predict and /explain on every real raster file, through both request shapes."""

from __future__ import annotations

import base64
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.settings import DISCLAIMER

MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


def _png_shape(encoded: str, flags: int) -> tuple[int, ...]:
    decoded = cv2.imdecode(np.frombuffer(base64.b64decode(encoded), np.uint8), flags)
    assert decoded is not None
    return tuple(decoded.shape)


def _check_common(body: dict, path: Path) -> None:
    probabilities = body["probabilities"]
    assert list(probabilities) == ["covid", "normal", "pneumonia"]
    assert abs(sum(probabilities.values()) - 1.0) <= 1e-5
    assert body["label"] == max(probabilities, key=probabilities.__getitem__)
    assert body["model"] == {"name": "tiny-test-model", "version": "0.0.1"}
    assert body["disclaimer"] == DISCLAIMER
    assert body["input"]["format"] == ("png" if path.suffix == ".png" else "jpeg")
    original = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert (body["input"]["height"], body["input"]["width"]) == original.shape[:2]
    assert set(body["timing_ms"]) == {"decode", "inference", "total"}
    assert body["timing_ms"]["total"] >= body["timing_ms"]["inference"] > 0


def test_predict_every_original_multipart(client: TestClient, raster_originals: list[Path]) -> None:
    for path in raster_originals:
        files = {"file": (path.name, path.read_bytes(), MIME[path.suffix.lower()])}
        response = client.post("/predict", files=files)
        assert response.status_code == 200, (path.name, response.text)
        _check_common(response.json(), path)


def test_explain_every_original_json(client: TestClient, raster_originals: list[Path]) -> None:
    for path in raster_originals:
        payload = {"image_base64": base64.b64encode(path.read_bytes()).decode()}
        response = client.post("/explain", json=payload)
        assert response.status_code == 200, (path.name, response.text)
        body = response.json()
        _check_common(body, path)
        gradcam = body["gradcam"]
        assert gradcam["layer"] == "block5_conv3"
        assert gradcam["target"] == body["label"]
        width, height = body["input"]["width"], body["input"]["height"]
        assert max(gradcam["width"], gradcam["height"]) == min(max(width, height), 512)
        assert abs(gradcam["width"] / gradcam["height"] - width / height) < 0.02
        size = (gradcam["height"], gradcam["width"])
        assert _png_shape(gradcam["heatmap_png_base64"], cv2.IMREAD_UNCHANGED) == size
        assert _png_shape(gradcam["overlay_png_base64"], cv2.IMREAD_UNCHANGED) == (*size, 3)


@pytest.mark.parametrize("how", ["form", "query", "json"])
def test_explain_target_in_every_place(
    client: TestClient, raster_originals: list[Path], how: str
) -> None:
    data = raster_originals[0].read_bytes()
    if how == "form":
        response = client.post(
            "/explain", files={"file": ("x", data)}, data={"target": "pneumonia"}
        )
    elif how == "query":
        response = client.post("/explain?target=pneumonia", files={"file": ("x", data)})
    else:
        payload = {"image_base64": base64.b64encode(data).decode(), "target": "pneumonia"}
        response = client.post("/explain", json=payload)
    assert response.status_code == 200, response.text
    assert response.json()["gradcam"]["target"] == "pneumonia"


def test_unknown_target_is_422(client: TestClient, raster_originals: list[Path]) -> None:
    data = raster_originals[0].read_bytes()
    response = client.post("/explain", files={"file": ("x", data)}, data={"target": "flu"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
    assert "covid" in response.json()["error"]["message"]


def test_raw_body_upload(client: TestClient, raster_originals: list[Path]) -> None:
    path = raster_originals[0]
    response = client.post(
        "/predict", content=path.read_bytes(), headers={"content-type": "application/octet-stream"}
    )
    assert response.status_code == 200, response.text


def test_explain_and_predict_agree(client: TestClient, raster_originals: list[Path]) -> None:
    files = {"file": ("x", raster_originals[3].read_bytes())}
    predicted = client.post("/predict", files=files).json()["probabilities"]
    explained = client.post("/explain", files=files).json()["probabilities"]
    for name, value in predicted.items():
        assert explained[name] == pytest.approx(value, abs=1e-6)
