"""ONNX -> Keras conversion on a tiny synthetic initializer dict (no wheel, no network)."""

from __future__ import annotations

import numpy as np
import pytest

from training.weights import WeightsError, check_values, onnx_to_keras_weights


def test_oihw_to_hwio_and_bias() -> None:
    rng = np.random.default_rng(0)
    kernel_oihw = rng.normal(size=(5, 3, 3, 3)).astype(np.float32)  # out, in, h, w
    bias = rng.normal(size=5).astype(np.float32)
    initializers = {
        "functional_1/block1_conv1_1/convolution/ReadVariableOp:0": kernel_oihw,
        "functional_1/block1_conv1_1/Squeeze:0": bias,
    }
    converted = onnx_to_keras_weights(initializers, layers=["block1_conv1"])
    kernel, converted_bias = converted["block1_conv1"]
    assert kernel.shape == (3, 3, 3, 5)  # h, w, in, out
    assert kernel[1, 2, 0, 4] == kernel_oihw[4, 0, 1, 2]
    np.testing.assert_array_equal(converted_bias, bias)


def test_missing_layer_is_a_clear_error() -> None:
    with pytest.raises(WeightsError, match="block1_conv1"):
        onnx_to_keras_weights({}, layers=["block1_conv1"])


def test_check_values_rejects_random_weights() -> None:
    rng = np.random.default_rng(0)
    fake = {
        "block1_conv1": (rng.normal(size=(3, 3, 3, 64)), rng.normal(size=64)),
        "block4_conv3": (rng.normal(size=(3, 3, 512, 512)), rng.normal(size=512)),
    }
    with pytest.raises(WeightsError):
        check_values(fake)
