"""The one grayscale-image -> model-tensor path, shared by training and serving.

grayscale uint8 (any size) -> resize to the model input (INTER_AREA) -> 3 identical channels
-> ``keras.applications.vgg16.preprocess_input`` (caffe mode: RGB->BGR, ImageNet mean
subtraction, no scaling). Training imports these functions, so the tensors a model was trained
on and the tensors it is served are computed by the same code; a test checks they are equal.
"""

from __future__ import annotations

import cv2
import numpy as np
from keras.applications import vgg16

# Stored in every model's metadata.json; the service refuses models built for another path.
PREPROCESSING_ID = "gray-area-resize-rgb3-vgg16-caffe-v1"


def resize_gray(gray: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a uint8 grayscale image to ``size`` = (height, width), aspect ratio not kept."""
    height, width = size
    if gray.shape[:2] == (height, width):
        return gray
    shrinking = gray.shape[0] >= height and gray.shape[1] >= width
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    resized: np.ndarray = cv2.resize(gray, (width, height), interpolation=interpolation)
    return resized


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
