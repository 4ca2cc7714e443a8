"""The trunk/head split is called with a plain tensor without Keras input-structure warnings."""

from __future__ import annotations

import warnings

import numpy as np

from service.inference.runtime import split_at_layer
from tests.tiny_model import INPUT_SIZE, build_tiny_model


def test_trunk_takes_a_tensor_without_a_structure_warning() -> None:
    model = build_tiny_model()
    trunk, head = split_at_layer(model, "block5_conv3", "logits")
    batch = np.zeros((1, INPUT_SIZE, INPUT_SIZE, 3), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Keras: "The structure of `inputs` doesn't match ..."
        features = trunk(batch, training=False)
        head(features, training=False)
    assert tuple(features.shape) == (1, 8, 8, 2)
