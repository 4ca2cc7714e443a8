"""One request's work: decode -> preprocess -> model -> (Grad-CAM rendering) -> response."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import numpy as np

from service.errors import InvalidRequest, NotReady
from service.inference.preprocess import to_model_input
from service.inference.render import RenderedCam, render_cam
from service.inference.runtime import ClassifierRuntime
from service.io.decode import DecodedImage, decode_image
from service.observability.access import note_prediction
from service.schemas import Explanation, GradCam, InputInfo, ModelRef, Prediction, Timing
from service.state import ServiceState

T = TypeVar("T")


@dataclass(frozen=True)
class Prepared:
    image: DecodedImage
    batch: np.ndarray  # (1, H, W, 3) float32


def _milliseconds(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 2)


def require_runtime(state: ServiceState) -> ClassifierRuntime:
    if state.runtime is None:
        raise NotReady("The model is still loading; retry shortly.", headers={"Retry-After": "2"})
    return state.runtime


def target_index(runtime: ClassifierRuntime, target: str | None) -> int:
    if target is None:
        return -1  # the top class of the same forward pass
    classes = runtime.metadata.classes
    if target not in classes:
        raise InvalidRequest(f"Unknown target {target!r}; choose one of: {', '.join(classes)}.")
    return classes.index(target)


async def _in_pool(state: ServiceState, function: Callable[..., T], *args: object) -> T:
    return await asyncio.get_running_loop().run_in_executor(
        state.cpu_pool, partial(function, *args)
    )


def _prepare(
    data: bytes,
    max_pixels: int,
    size: tuple[int, int],
    modalities: frozenset[str],
    longest_needed: int,
) -> Prepared:
    # Decode no more pixels than the model input and the heatmap PNGs will use.
    min_sides = (min(size), max(*size, longest_needed))
    image = decode_image(
        data, max_pixels=max_pixels, dicom_modalities=modalities, min_sides=min_sides
    )
    return Prepared(image=image, batch=to_model_input(image.gray, size)[None])


async def _prepare_in_pool(
    state: ServiceState, runtime: ClassifierRuntime, data: bytes
) -> Prepared:
    # /predict decodes at the same scale as /explain (which needs heatmap_max_side pixels for
    # the overlay), so both answer with exactly the same probabilities for the same file.
    settings = state.settings
    return await _in_pool(
        state,
        _prepare,
        data,
        settings.max_image_pixels,
        runtime.input_size,
        settings.dicom_modality_set,
        settings.heatmap_max_side,
    )


def _prediction(
    runtime: ClassifierRuntime, prepared: Prepared, probabilities: np.ndarray, timing: Timing
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
        timing_ms=timing,
    )


async def predict(state: ServiceState, data: bytes) -> Prediction:
    started = time.perf_counter()
    runtime = require_runtime(state)
    prepared = await _prepare_in_pool(state, runtime, data)
    decode_ms = _milliseconds(started)
    model_started = time.perf_counter()
    probabilities = await state.scheduler.predict(runtime, prepared.batch)
    timing = Timing(decode=decode_ms, inference=_milliseconds(model_started), total=0.0)
    result = _prediction(runtime, prepared, probabilities[0], timing)
    result.timing_ms.total = _milliseconds(started)
    return result


@dataclass(frozen=True)
class ExplainedImage:
    """The response plus the pixels behind it, for outputs that are not JSON (DICOM)."""

    result: Explanation
    rendered: RenderedCam


async def explain(state: ServiceState, data: bytes, target: str | None) -> Explanation:
    return (await explain_image(state, data, target)).result


async def explain_image(state: ServiceState, data: bytes, target: str | None) -> ExplainedImage:
    started = time.perf_counter()
    runtime = require_runtime(state)
    wanted = target_index(runtime, target)
    settings = state.settings
    prepared = await _prepare_in_pool(state, runtime, data)
    decode_ms = _milliseconds(started)
    model_started = time.perf_counter()
    explained = await state.scheduler.explain(runtime, prepared.batch, wanted)
    inference_ms = _milliseconds(model_started)
    rendered = await _in_pool(
        state,
        partial(
            render_cam,
            max_side=settings.heatmap_max_side,
            alpha=settings.overlay_alpha,
            compression=settings.png_compression,
            image_size=(prepared.image.width, prepared.image.height),
        ),
        prepared.image.gray,
        explained.cams[0],
    )
    timing = Timing(decode=decode_ms, inference=inference_ms, total=0.0)
    base = _prediction(runtime, prepared, explained.probabilities[0], timing)
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
    return ExplainedImage(result=result, rendered=rendered)
