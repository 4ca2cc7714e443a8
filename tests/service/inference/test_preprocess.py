from __future__ import annotations

import numpy as np
import pytest
from keras.applications import vgg16

from service.inference.preprocess import to_model_batch, to_model_input


def test_matches_keras_vgg16_preprocessing_on_replicated_gray() -> None:
    gray = np.random.default_rng(0).integers(0, 256, (224, 224), dtype=np.uint8)
    expected = vgg16.preprocess_input(np.repeat(gray[:, :, None], 3, axis=2).astype(np.float32))
    np.testing.assert_array_equal(to_model_input(gray, (224, 224)), expected)


def test_resizes_any_shape_and_caffe_means() -> None:
    tensor = to_model_input(np.full((300, 500), 255, np.uint8), (224, 224))
    assert tensor.shape == (224, 224, 3) and tensor.dtype == np.float32
    # caffe mode: BGR order, ImageNet means subtracted, no scaling
    np.testing.assert_allclose(
        tensor[0, 0], [255 - 103.939, 255 - 116.779, 255 - 123.68], atol=1e-4
    )
    assert to_model_batch([np.zeros((50, 40), np.uint8)] * 2, (32, 32)).shape == (2, 32, 32, 3)


def test_rejects_non_gray_input() -> None:
    with pytest.raises(ValueError, match="grayscale"):
        to_model_input(np.zeros((10, 10, 3), np.uint8), (8, 8))
