"""Inference backends for the trunk (input -> Grad-CAM layer). The head always stays in TF.

``tensorflow`` runs the whole Keras model in one compiled graph. The OpenVINO backends run only
the trunk from an IR exported next to the model (``make export-fast``: fp32; the same IR run in
bfloat16; or int8 calibrated on training images), then hand the ``block5_conv3`` features to the
compiled TensorFlow head, where Grad-CAM's GradientTape runs. A fast backend is chosen by ``auto``
only when its parity report (same folder, written by the export) passed every accuracy gate
against fp32.

Each trunk names its OpenVINO inference precision (``f32`` or ``bf16``: what the layers that are
not int8 compute in). It is always set explicitly, because OpenVINO's own default is bf16 on CPUs
with AMX, and the parity gates were measured for one precision. On a CPU without native bf16 the
trunk runs in f32 instead (bf16 would be emulated, slower and no more exact).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from service.errors import ModelArtifactError
from service.inference.artifact import ModelMetadata

BackendName = Literal["auto", "tensorflow", "openvino-fp32", "openvino-bf16", "openvino-int8"]
TENSORFLOW = "tensorflow"
Precision = Literal["f32", "bf16"]

log = logging.getLogger("service")


@dataclass(frozen=True)
class FastTrunkSpec:
    name: str
    ir_file: str  # the .xml; its .bin sits beside it
    precision: Precision = "f32"


def fast_trunks(metadata: ModelMetadata) -> dict[str, FastTrunkSpec]:
    """Exported trunks listed in ``metadata.json`` under ``backends`` (written by the export)."""
    return {
        name: FastTrunkSpec(
            name=name,
            ir_file=str(entry["ir_file"]),
            precision="bf16" if entry.get("precision") == "bf16" else "f32",
        )
        for name, entry in metadata.backends.get("trunks", {}).items()
    }


def choose_backend(requested: str, metadata: ModelMetadata) -> str:
    """``auto`` -> the export's recommended backend (gates passed), else plain TensorFlow."""
    available = fast_trunks(metadata)
    if requested == "auto":
        recommended = metadata.backends.get("default")
        return recommended if recommended in available else TENSORFLOW
    if requested != TENSORFLOW and requested not in available:
        raise ModelArtifactError(
            f"Backend {requested!r} is not exported for this model (available: "
            f"{', '.join([TENSORFLOW, *available])}); run `make export-fast`."
        )
    return requested


def native_bf16(core: Any = None) -> bool:
    """Whether OpenVINO computes bfloat16 natively on this CPU (AVX512_BF16 or AMX)."""
    import openvino as ov

    capabilities = (core or ov.Core()).get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    return "BF16" in capabilities


class OpenVinoTrunk:
    """A compiled OpenVINO trunk. One infer request per calling thread (they are not shared)."""

    def __init__(self, ir_path: Path, *, precision: Precision = "f32", threads: int = 0) -> None:
        import openvino as ov  # imported only when an OpenVINO backend is used

        core = ov.Core()
        if precision == "bf16" and not native_bf16(core):
            log.warning(
                "This CPU has no native bfloat16: running the %s trunk in f32", ir_path.name
            )
            precision = "f32"
        self.precision: Precision = precision
        config: dict[str, Any] = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": precision,
        }
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        try:
            self._compiled = core.compile_model(core.read_model(ir_path), "CPU", config)
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses with long texts
            raise ModelArtifactError(f"Cannot load OpenVINO trunk {ir_path}: {exc}") from exc
        self._local = threading.local()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._compiled.create_infer_request()
        request.infer({0: batch})
        features: np.ndarray = np.array(request.get_output_tensor(0).data, dtype=np.float32)
        return features
