"""The one grayscale-image -> model-tensor path, shared by training and serving.

grayscale uint8 (any size) -> resize to the model input (INTER_AREA) -> 3 identical channels
-> ``keras.applications.vgg16.preprocess_input`` (caffe mode: RGB->BGR, ImageNet mean
subtraction, no scaling). Training imports these functions, so the tensors a model was trained
on and the tensors it is served are computed by the same code; a test checks they are equal.
"""

from __future__ import annotations

import numpy as np
from keras.applications import vgg16

from service.io.pixels import resize_gray  # the decode workers resize too, without Keras

__all__ = ["PREPROCESSING_ID", "resize_gray", "to_model_batch", "to_model_input"]

# Stored in every model's metadata.json; the service refuses models built for another path.
PREPROCESSING_ID = "gray-area-resize-rgb3-vgg16-caffe-v1"


def to_model_input(gray: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 grayscale (H, W) -> float32 (height, width, 3) ready for the VGG16 trunk."""
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(f"expected a 2-D uint8 grayscale image, got {gray.dtype} {gray.shape}")
    resized = resize_gray(gray, size).astype(np.float32)
    rgb = np.repeat(resized[:, :, None], 3, axis=2)
    tensor: np.ndarray = vgg16.preprocess_input(rgb)
    return tensor


def to_model_batch(grays: list[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """Several grayscale images -> float32 batch (n, height, width, 3)."""
    return np.stack([to_model_input(gray, size) for gray in grays]).astype(np.float32)
