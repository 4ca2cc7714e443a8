"""What the inference protocol routes (``/v2``, ``/v1``) share: the body, and images through
``service.analysis`` (the same decoding, input gate and model path as ``/predict``)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.requests import Request

from service import analysis
from service.api.upload import _read_capped, too_large
from service.errors import BadRequest
from service.inference.runtime import ClassifierRuntime
from service.schemas import Prediction
from service.state import ServiceState

_JSON_OVERHEAD = 64 * 1024


@dataclass(frozen=True)
class Analysed:
    prediction: Prediction
    gradcam_target: str | None = None
    heatmap_png: bytes | None = None
    overlay_png: bytes | None = None


async def read_body(request: Request, state: ServiceState) -> bytes:
    """The whole body, refused with 413 as soon as it exceeds what one upload may be (base64
    inflates by 4/3): the images of one request share ``CXR_MAX_UPLOAD_BYTES``."""
    limit = state.settings.max_upload_bytes
    return await _read_capped(request, cap=limit * 4 // 3 + _JSON_OVERHEAD, limit=limit)


def check_request(
    state: ServiceState, runtime: ClassifierRuntime, images: list[bytes], target: str | None
) -> None:
    """400 for a class the model does not have; 413 for an image over the upload limit."""
    classes = runtime.metadata.classes
    if target is not None and target not in classes:
        raise BadRequest(f"Unknown target {target!r}; choose one of: {', '.join(classes)}.")
    limit = state.settings.max_upload_bytes
    if any(len(image) > limit for image in images):
        raise too_large(limit)
    if any(not image for image in images):
        raise BadRequest("An image is empty.")


async def _one(
    state: ServiceState, data: bytes, model: str, explain: bool, target: str | None
) -> Analysed:
    if not explain:
        return Analysed(await analysis.predict(state, data, model))
    explained = await analysis.explain_image(state, data, target, model=model)
    return Analysed(
        prediction=explained.result,
        gradcam_target=explained.result.gradcam.target,
        heatmap_png=explained.rendered.heatmap_png,
        overlay_png=explained.rendered.overlay_png,
    )


async def analyse_images(
    state: ServiceState,
    images: list[bytes],
    model: str,
    *,
    explain: bool,
    targets: Sequence[str | None],
) -> list[Analysed]:
    """Every image side by side (waiting requests can share a model call), ``targets[i]`` the
    Grad-CAM class of image ``i``; the first failing image's error (by position) fails the
    request, after the others have finished."""
    results = await asyncio.gather(
        *(_one(state, data, model, explain, t) for data, t in zip(images, targets, strict=True)),
        return_exceptions=True,
    )
    answers: list[Analysed] = []
    for result in results:
        if isinstance(result, BaseException):
            raise result
        answers.append(result)
    return answers
