"""One request's work: decode -> preprocess -> model -> (Grad-CAM rendering) -> response.

Decoding runs in a worker process (``service.io.workers``) and returns the image at the model's
input size (and at the heatmap's size for Grad-CAM); the rest runs here and in thread pools.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from service.errors import InvalidRequest, NotAChestXray
from service.inference.gate import EXPECTED, judge
from service.inference.preprocess import to_model_input
from service.inference.render import RenderedCam, render_cam
from service.inference.runtime import ClassifierRuntime
from service.io.prepared import DecodeSpec, PreparedImage
from service.observability.access import note_prediction
from service.pools import run_in
from service.schemas import (
    Explanation,
    GradCam,
    InputCheck,
    InputInfo,
    ModelRef,
    Prediction,
    Timing,
)
from service.state import ServiceState


@dataclass(frozen=True)
class Prepared:
    image: PreparedImage
    batch: np.ndarray  # (1, H, W, 3) float32


def _milliseconds(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 2)


def require_runtime(state: ServiceState, model: str | None = None) -> ClassifierRuntime:
    """The served model ``model`` (None: the default): 404 ``model_not_found`` for a name that
    is not served, 503 ``not_ready`` while it loads."""
    return state.models.runtime(model)


def target_index(runtime: ClassifierRuntime, target: str | None) -> int:
    if target is None:
        return -1  # the top class of the same forward pass
    classes = runtime.metadata.classes
    if target not in classes:
        raise InvalidRequest(f"Unknown target {target!r}; choose one of: {', '.join(classes)}.")
    return classes.index(target)


def decode_spec(
    state: ServiceState, runtime: ClassifierRuntime, *, display: bool, dicom_header: bool = False
) -> DecodeSpec:
    settings = state.settings
    return DecodeSpec(
        max_pixels=settings.max_image_pixels,
        max_decoded_bytes=settings.max_decoded_bytes,
        min_side=settings.min_image_side,
        modalities=settings.dicom_modality_set,
        model_size=runtime.input_size,
        heatmap_max_side=settings.heatmap_max_side,
        display=display,
        dicom_header=dicom_header,
    )


async def _prepare(state: ServiceState, spec: DecodeSpec, data: bytes) -> Prepared:
    image = await state.pools.decode.prepare(data, spec)
    # The image is already at the model's input size: this is the cheap rest (~0.3 ms).
    return Prepared(image=image, batch=to_model_input(image.model_gray, spec.model_size)[None])


def gate_info(runtime: ClassifierRuntime, mode: str) -> dict[str, Any]:
    """What /model says of the input gate: mode, threshold, checks and validation figures."""
    gate = runtime.gate
    if gate is None:
        return {"mode": mode, "fitted": False, "expected": EXPECTED}
    return {
        "mode": mode,
        "fitted": True,
        "expected": EXPECTED,
        "layer": gate.model.layer,
        "feature": gate.model.feature,
        "threshold": gate.threshold,
        "target_false_rejection": gate.model.target_false_rejection,
        "image_checks": gate.checks.model_dump(),
        "validation": gate.model.validation,
    }


def input_check(
    state: ServiceState, runtime: ClassifierRuntime, prepared: Prepared, pooled: np.ndarray
) -> InputCheck:
    """The input gate's verdict on one image (``pooled``: its gate features, from the same
    forward pass); with ``CXR_INPUT_GATE=enforce`` a failed check is a 422 ``not_a_chest_xray``."""
    mode = state.settings.input_gate
    if mode == "off":
        return InputCheck(score=None, threshold=None, passed=True, mode=mode)
    image = prepared.image
    verdict = judge(
        runtime.gate, pooled[0], image.model_gray, (image.width, image.height), image.colourfulness
    )
    if not verdict.passed and mode == "enforce":
        raise NotAChestXray(verdict.message)
    return InputCheck(
        score=verdict.score,
        threshold=verdict.threshold,
        passed=verdict.passed,
        reason=verdict.reason,
        mode=mode,
    )


def _prediction(
    runtime: ClassifierRuntime,
    prepared: Prepared,
    probabilities: np.ndarray,
    checked: InputCheck,
    timing: Timing,
) -> Prediction:
    classes = runtime.metadata.classes
    label = classes[int(np.argmax(probabilities))]
    note_prediction(runtime.metadata.name, runtime.metadata.version, label)  # log + metrics
    return Prediction(
        label=label,
        probabilities={name: float(p) for name, p in zip(classes, probabilities, strict=True)},
        model=ModelRef(name=runtime.metadata.name, version=runtime.metadata.version),
        input=InputInfo(
            format=prepared.image.format, width=prepared.image.width, height=prepared.image.height
        ),
        input_check=checked,
        timing_ms=timing,
    )


async def predict(state: ServiceState, data: bytes, model: str | None = None) -> Prediction:
    started = time.perf_counter()
    runtime = require_runtime(state, model)
    prepared = await _prepare(state, decode_spec(state, runtime, display=False), data)
    decode_ms = _milliseconds(started)
    model_started = time.perf_counter()
    scores = await state.scheduler.predict(runtime, prepared.batch)
    checked = input_check(state, runtime, prepared, scores.pooled)
    timing = Timing(decode=decode_ms, inference=_milliseconds(model_started), total=0.0)
    result = _prediction(runtime, prepared, scores.probabilities[0], checked, timing)
    result.timing_ms.total = _milliseconds(started)
    return result


@dataclass(frozen=True)
class ExplainedImage:
    """The response plus the pixels behind it, for outputs that are not JSON (DICOM)."""

    result: Explanation
    rendered: RenderedCam
    dicom_header: Dataset | None  # when asked for and the file is a DICOM: all but the pixels


async def explain(
    state: ServiceState, data: bytes, target: str | None, model: str | None = None
) -> Explanation:
    return (await explain_image(state, data, target, model=model)).result


async def explain_image(
    state: ServiceState,
    data: bytes,
    target: str | None,
    *,
    dicom_header: bool = False,
    model: str | None = None,
) -> ExplainedImage:
    started = time.perf_counter()
    runtime = require_runtime(state, model)
    wanted = target_index(runtime, target)
    settings = state.settings
    spec = decode_spec(state, runtime, display=True, dicom_header=dicom_header)
    prepared = await _prepare(state, spec, data)
    assert prepared.image.display_gray is not None  # asked for with display=True
    decode_ms = _milliseconds(started)
    model_started = time.perf_counter()
    explained = await state.scheduler.explain(runtime, prepared.batch, wanted)
    inference_ms = _milliseconds(model_started)
    checked = input_check(state, runtime, prepared, explained.pooled)  # before any rendering
    rendered = await run_in(
        state.pools.cpu,
        render_cam,
        prepared.image.display_gray,
        explained.cams[0],
        max_side=settings.heatmap_max_side,
        alpha=settings.overlay_alpha,
        compression=settings.png_compression,
        image_size=(prepared.image.width, prepared.image.height),
        encoder=state.pools.png,
    )
    timing = Timing(decode=decode_ms, inference=inference_ms, total=0.0)
    base = _prediction(runtime, prepared, explained.probabilities[0], checked, timing)
    result = Explanation(
        **base.model_dump(),
        gradcam=GradCam(
            target=runtime.metadata.classes[int(explained.targets[0])],
            layer=runtime.metadata.gradcam_layer,
            width=rendered.width,
            height=rendered.height,
            heatmap_png_base64=base64.b64encode(rendered.heatmap_png).decode("ascii"),
            overlay_png_base64=base64.b64encode(rendered.overlay_png).decode("ascii"),
        ),
    )
    result.timing_ms.total = _milliseconds(started)
    return ExplainedImage(
        result=result, rendered=rendered, dicom_header=prepared.image.dicom_header
    )
