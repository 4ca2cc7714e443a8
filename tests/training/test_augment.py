"""Augmentation keeps dtype and shape, is deterministic per seed and never flips vertically."""

from __future__ import annotations

import numpy as np
import pytest

from training.augment import augment
from training.config import DEFAULTS


def _gradient_image(height: int = 120, width: int = 96) -> np.ndarray:
    # Bright top, dark bottom: a vertical flip would turn the mean row profile upside down.
    rows = np.linspace(250, 5, height)[:, None]
    return np.repeat(rows, width, axis=1).astype(np.uint8)


@pytest.mark.parametrize("seed", range(40))
def test_dtype_shape_and_no_vertical_flip(seed: int) -> None:
    gray = _gradient_image()
    out = augment(gray, np.random.default_rng(seed), DEFAULTS["augment"])
    assert out.dtype == np.uint8 and out.shape == gray.shape
    profile = out.astype(float).mean(axis=1)
    third = len(profile) // 3
    assert profile[:third].mean() > profile[-third:].mean()  # top stays brighter than bottom


def test_deterministic_for_a_seed() -> None:
    gray = _gradient_image()
    first = augment(gray, np.random.default_rng(7), DEFAULTS["augment"])
    again = augment(gray, np.random.default_rng(7), DEFAULTS["augment"])
    assert np.array_equal(first, again)


def test_rejects_non_uint8() -> None:
    with pytest.raises(ValueError):
        augment(np.zeros((8, 8), np.float32), np.random.default_rng(0), DEFAULTS["augment"])
