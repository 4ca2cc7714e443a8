"""The reference the benchmark compares against: a server built the way the seed projects did.

A synchronous route, the image decoded with OpenCV, ``model.predict`` on every request, and for
Grad-CAM a second, separate eager pass with a GradientTape over a model that outputs both the
conv layer and the predictions (the keras-io recipe). Not for production; only for ``make bench``.

    CXR_MODEL_DIR=models/cxr-vgg16-3class uvicorn bench.naive_server:app --port 8001
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import cv2
import keras
import numpy as np
import tensorflow as tf
from fastapi import FastAPI, File, UploadFile

from service.inference.artifact import read_metadata
from service.inference.preprocess import to_model_input
from service.io.decode import decode_image

MODEL_DIR = Path(os.environ.get("CXR_MODEL_DIR", "models/cxr-vgg16-3class"))
METADATA = read_metadata(MODEL_DIR)
MODEL = keras.saving.load_model(MODEL_DIR / METADATA.model_file, compile=False)
GRAD_MODEL = keras.Model(
    MODEL.inputs, [MODEL.get_layer(METADATA.gradcam_layer).output, MODEL.output]
)
SIZE = (METADATA.input.height, METADATA.input.width)
app = FastAPI(title="naive reference server")


def _tensor(data: bytes) -> np.ndarray:
    return to_model_input(decode_image(data, max_pixels=50_000_000).gray, SIZE)[None]


@app.get("/ready")
def ready() -> dict[str, str]:
    return {"status": "ready"}


@app.post("/predict")
def predict(file: UploadFile = File(...)) -> dict[str, object]:
    probabilities = MODEL.predict(_tensor(file.file.read()), verbose=0)[0]
    classes = METADATA.classes
    return {
        "label": classes[int(np.argmax(probabilities))],
        "probabilities": dict(zip(classes, map(float, probabilities), strict=True)),
    }


@app.post("/explain")
def explain(file: UploadFile = File(...)) -> dict[str, object]:
    batch = _tensor(file.file.read())
    probabilities = MODEL.predict(batch, verbose=0)[0]
    with tf.GradientTape() as tape:
        conv, predictions = GRAD_MODEL(batch)
        score = predictions[:, int(np.argmax(probabilities))]
    weights = tf.reduce_mean(tape.gradient(score, conv), axis=(0, 1, 2))
    cam = np.maximum(tf.reduce_sum(conv[0] * weights, axis=-1).numpy(), 0)
    cam = cv2.resize(cam / (cam.max() or 1.0), (512, 512))
    _, png = cv2.imencode(".png", cv2.applyColorMap(np.uint8(cam * 255), cv2.COLORMAP_JET))
    return {
        "probabilities": dict(zip(METADATA.classes, map(float, probabilities), strict=True)),
        "overlay_png_base64": base64.b64encode(png.tobytes()).decode(),
    }
