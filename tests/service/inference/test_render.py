from __future__ import annotations

import cv2
import numpy as np
import pytest

from service.inference.render import cam_to_uint8, output_size, render_cam


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        (2972, 2840, (512, 489)),
        (224, 224, (224, 224)),
        (600, 1200, (256, 512)),
        (300, 20, (300, 20)),
    ],
)
def test_output_size_keeps_aspect_and_caps_longer_side(
    width: int, height: int, expected: tuple[int, int]
) -> None:
    assert output_size(width, height, 512) == expected


def test_cam_scaled_to_full_range_and_zero_map_stays_zero() -> None:
    cam = np.array([[0.0, 1.0], [2.0, 4.0]], np.float32)
    scaled = cam_to_uint8(cam, 2, 2)
    assert scaled.dtype == np.uint8 and scaled.max() == 255 and scaled.min() == 0
    assert cam_to_uint8(np.zeros((14, 14), np.float32), 30, 20).max() == 0


def test_render_sizes_and_png_formats() -> None:
    gray = np.random.default_rng(0).integers(0, 255, (900, 1200), dtype=np.uint8)
    cam = np.random.default_rng(1).random((14, 14)).astype(np.float32)
    rendered = render_cam(gray, cam, max_side=512, alpha=0.4, compression=1)
    assert (rendered.width, rendered.height) == (512, 384)
    heatmap = cv2.imdecode(np.frombuffer(rendered.heatmap_png, np.uint8), cv2.IMREAD_UNCHANGED)
    overlay = cv2.imdecode(np.frombuffer(rendered.overlay_png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert heatmap.shape == (384, 512)
    assert overlay.shape == (384, 512, 3)
