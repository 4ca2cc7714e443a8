"""A tiny, hand-weighted Keras classifier saved through the real artifact code.

Input 64x64x3 (VGG caffe-preprocessed gray). ``block5_conv3`` has two 1x1 channels over an 8x8
grid: channel 0 fires on bright regions, channel 1 on dark ones. The Flatten -> ``logits`` head
scores covid by the bright channel and normal by the dark channel (pneumonia has a bias only).
So an image with one bright quadrant is "covid" and its covid Grad-CAM must light up exactly
that quadrant, while the "normal" map must light up the dark rest: Grad-CAM can fail this.

Other class lists (the binary models of the model registry's tests) reuse the same weights: a
class named covid follows the bright channel, normal the dark one, any other has the bias.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from service.inference.artifact import InputSpec, ModelMetadata, sha256_file, write_metadata
from service.inference.preprocess import PREPROCESSING_ID

CLASSES = ["covid", "normal", "pneumonia"]
INPUT_SIZE = 64
GRID = 8


def build_tiny_model(classes: list[str] = CLASSES) -> keras.Model:
    images = keras.Input((INPUT_SIZE, INPUT_SIZE, 3), name="images")
    pooled = keras.layers.AveragePooling2D(INPUT_SIZE // GRID, name="pool")(images)
    features = keras.layers.Conv2D(2, 1, activation="relu", name="block5_conv3")(pooled)
    flat = keras.layers.Flatten(name="flatten")(features)
    logits = keras.layers.Dense(len(classes), name="logits")(flat)
    probabilities = keras.layers.Activation("softmax", name="probabilities")(logits)
    model = keras.Model(images, probabilities, name="tiny")

    # Caffe-preprocessed gray g gives channels near g - 115: positive = bright, negative = dark.
    conv_kernel = np.zeros((1, 1, 3, 2), np.float32)
    conv_kernel[0, 0, :, 0] = 1.0 / 300.0
    conv_kernel[0, 0, :, 1] = -1.0 / 300.0
    model.get_layer("block5_conv3").set_weights([conv_kernel, np.zeros(2, np.float32)])
    dense_kernel = np.zeros((GRID * GRID * 2, len(classes)), np.float32)
    bias = np.ones(len(classes), np.float32)
    if "covid" in classes:
        dense_kernel[0::2, classes.index("covid")] = 0.5  # bright channel -> covid
        bias[classes.index("covid")] = 0.0
    if "normal" in classes:  # dark channel -> normal (weaker: dark areas are larger)
        dense_kernel[1::2, classes.index("normal")] = 0.1
        bias[classes.index("normal")] = 0.0
    model.get_layer("logits").set_weights([dense_kernel, bias])
    return model


def build_tiny_artifact(
    folder: Path,
    model: keras.Model | None = None,
    *,
    name: str = "tiny-test-model",
    classes: list[str] = CLASSES,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (model or build_tiny_model(classes)).save(folder / "model.keras")
    metadata = ModelMetadata(
        name=name,
        version="0.0.1",
        classes=classes,
        input=InputSpec(height=INPUT_SIZE, width=INPUT_SIZE),
        preprocessing=PREPROCESSING_ID,
        sha256=sha256_file(folder / "model.keras"),
        training={"note": "hand-set weights for tests"},
        metrics={"macro_f1": None},
    )
    write_metadata(folder, metadata)
    return folder
