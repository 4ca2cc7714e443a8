"""Grad-CAM must point where the evidence is: tested with a model whose answer we know."""

from __future__ import annotations

import base64
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.inference.preprocess import to_model_input
from service.inference.runtime import ClassifierRuntime

QUADRANTS = {
    "top_left": (slice(0, 100), slice(0, 150)),
    "top_right": (slice(0, 100), slice(150, 300)),
    "bottom_left": (slice(100, 200), slice(0, 150)),
    "bottom_right": (slice(100, 200), slice(150, 300)),
}


def one_bright_quadrant(name: str) -> np.ndarray:
    """A 200x300 (non-square, to catch transposes) dark image with one bright quadrant."""
    gray = np.full((200, 300), 20, np.uint8)
    gray[QUADRANTS[name]] = 235
    return gray


def mass_share(heatmap: np.ndarray, name: str) -> float:
    total = float(heatmap.sum())
    return float(heatmap[QUADRANTS[name]].sum()) / total if total else 0.0


@pytest.fixture(scope="module")
def runtime(tiny_model_dir: Path) -> ClassifierRuntime:
    return ClassifierRuntime.load(tiny_model_dir)


@pytest.mark.parametrize("quadrant", list(QUADRANTS))
def test_covid_map_lights_the_bright_quadrant(runtime: ClassifierRuntime, quadrant: str) -> None:
    batch = to_model_input(one_bright_quadrant(quadrant), runtime.input_size)[None]
    explained = runtime.explain(batch, np.array([-1], np.int32))
    assert runtime.metadata.classes[int(explained.targets[0])] == "covid"
    heatmap = cv2.resize(explained.cams[0], (300, 200), interpolation=cv2.INTER_LINEAR)
    assert mass_share(heatmap, quadrant) > 0.9


def test_other_target_explains_other_evidence(runtime: ClassifierRuntime) -> None:
    batch = to_model_input(one_bright_quadrant("top_right"), runtime.input_size)[None]
    normal = runtime.metadata.classes.index("normal")
    explained = runtime.explain(batch, np.array([normal], np.int32))
    assert int(explained.targets[0]) == normal
    heatmap = cv2.resize(explained.cams[0], (300, 200), interpolation=cv2.INTER_LINEAR)
    assert mass_share(heatmap, "top_right") < 0.1


def test_probabilities_match_the_saved_model(runtime: ClassifierRuntime) -> None:
    batch = to_model_input(one_bright_quadrant("bottom_left"), runtime.input_size)[None]
    whole = np.asarray(runtime.model(batch, training=False))
    explained = runtime.explain(batch, np.array([-1], np.int32))
    np.testing.assert_allclose(explained.probabilities, whole, atol=1e-6)
    np.testing.assert_allclose(runtime.predict(batch), whole, atol=1e-6)


def test_api_heatmap_points_at_the_quadrant(client: TestClient) -> None:
    ok, png = cv2.imencode(".png", one_bright_quadrant("bottom_right"))
    assert ok
    response = client.post("/explain", files={"file": ("q.png", png.tobytes())})
    assert response.status_code == 200
    gradcam = response.json()["gradcam"]
    heatmap = cv2.imdecode(
        np.frombuffer(base64.b64decode(gradcam["heatmap_png_base64"]), np.uint8),
        cv2.IMREAD_UNCHANGED,
    )
    assert heatmap.shape == (200, 300) and heatmap.dtype == np.uint8
    assert heatmap.max() == 255
    assert mass_share(heatmap.astype(np.float64), "bottom_right") > 0.9
