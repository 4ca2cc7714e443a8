"""Open Inference Protocol v2 (KServe / Triton REST) routes, for clients such as ``tritonclient``.

Health and metadata are open like ``/ready`` and ``/model``; ``infer`` needs the ``infer`` scope
and takes its place in the model queue before its body is read (``middleware.AdmissionGate``),
like ``/predict``. Every image goes through ``service.analysis`` (decode workers, input gate,
scheduler). Errors are the protocol's ``{"error": "..."}`` (``service.api.protocol_errors``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Request, Response

from service import analysis
from service.api.deps import Inferrer, State
from service.api.docs import (
    AUTH_ERRORS,
    BUSY_ERRORS,
    IMAGE_ERRORS,
    MODEL_ERRORS,
    error_responses,
    merge,
)
from service.api.protocol_common import analyse_images, check_request, read_body
from service.errors import BadRequest, ModelNotFound, NotReady
from service.inference.registry import ModelSource
from service.protocols import v2_codec
from service.schemas import ProtocolError
from service.settings import DISCLAIMER
from service.state import ServiceState

router = APIRouter(prefix="/v2", tags=["open inference protocol v2"])

INFER_DESCRIPTION = (
    "KServe / Triton Open Inference Protocol v2. Input `image`: BYTES, one element per encoded "
    "image file (base64 strings in JSON, or raw through the binary tensor data extension with "
    "`Inference-Header-Content-Length`). Outputs `probabilities` (FP32 [n, classes]), `label` "
    "(BYTES [n]) and on request `gradcam_heatmap_png` (BYTES [n]); request parameter `target` "
    'chooses the Grad-CAM class. Errors: `{"error": "..."}`. NOT FOR DIAGNOSTIC USE.'
)


def protocol_errors(
    responses: dict[int | str, dict[str, Any]],
) -> dict[int | str, dict[str, Any]]:
    """The service's documented error responses in the protocols' ``{"error": "..."}`` shape."""
    rewritten: dict[int | str, dict[str, Any]] = {}
    for status, response in responses.items():
        examples = response["content"]["application/json"]["examples"]
        rewritten[status] = {
            **response,
            "model": ProtocolError,
            "content": {
                "application/json": {
                    "examples": {
                        code: {**ex, "value": {"error": ex["value"]["error"]["message"]}}
                        for code, ex in examples.items()
                    }
                }
            },
        }
    return rewritten


INFER_ERRORS = protocol_errors(
    merge(
        AUTH_ERRORS,
        error_responses(BadRequest("Unknown output 'logits'; the model has: probabilities, ...")),
        IMAGE_ERRORS,
        MODEL_ERRORS,
        BUSY_ERRORS,
    )
)
READ_ERRORS = protocol_errors(merge(MODEL_ERRORS, BUSY_ERRORS))


def _parameters(source: ModelSource) -> dict[str, Any]:
    return {"classes": ",".join(source.metadata.classes), "disclaimer": DISCLAIMER}


def _source(state: ServiceState, name: str, version: str | None) -> ModelSource:
    source = state.models.source(name)
    if version is not None and version != source.metadata.version:
        raise ModelNotFound(
            f"Model {name!r} has no version {version[:40]!r}; served: {source.metadata.version}."
        )
    return source


@router.get("", summary="Server metadata")
async def server_metadata(state: State) -> dict[str, Any]:
    return {
        "name": "cxr-service",
        "version": "0.1.0",
        "extensions": ["binary_tensor_data"],
        "models": state.models.names,
        "disclaimer": DISCLAIMER,
    }


@router.get("/health/live", summary="Server live")
async def live() -> dict[str, bool]:
    return {"live": True}


@router.get("/health/ready", summary="Every model loaded", responses=READ_ERRORS)
async def server_ready(state: State) -> dict[str, bool]:
    if not state.ready:
        raise NotReady("Not every model is loaded yet.", headers={"Retry-After": "2"})
    return {"ready": True}


@router.get("/models/{name}", summary="Model metadata", responses=READ_ERRORS)
@router.get("/models/{name}/versions/{version}", summary="Model metadata", responses=READ_ERRORS)
async def metadata(state: State, name: str, version: str | None = None) -> dict[str, Any]:
    source = _source(state, name, version)
    meta = source.metadata
    return v2_codec.model_metadata(meta.name, meta.version, meta.classes, _parameters(source))


@router.get("/models/{name}/ready", summary="Model ready", responses=READ_ERRORS)
@router.get("/models/{name}/versions/{version}/ready", summary="Model ready", responses=READ_ERRORS)
async def model_ready(state: State, name: str, version: str | None = None) -> dict[str, Any]:
    source = _source(state, name, version)
    analysis.require_runtime(state, source.name)  # 503 while it loads
    return {"name": source.name, "ready": True}


@router.post(
    "/models/{name}/infer",
    summary="Inference",
    description=INFER_DESCRIPTION,
    responses=INFER_ERRORS,
)
@router.post(
    "/models/{name}/versions/{version}/infer",
    summary="Inference",
    description=INFER_DESCRIPTION,
    responses=INFER_ERRORS,
)
async def infer(
    request: Request, state: State, _: Inferrer, name: str, version: str | None = None
) -> Response:
    source = _source(state, name, version)
    runtime = analysis.require_runtime(state, source.name)
    body = await read_body(request, state)
    parsed = v2_codec.parse_infer_request(body, request.headers.get(v2_codec.HEADER_LENGTH))
    check_request(state, runtime, parsed.images, parsed.target)
    answers = await analyse_images(
        state,
        parsed.images,
        source.name,
        explain=parsed.gradcam,
        targets=[parsed.target] * len(parsed.images),
    )
    classes = source.metadata.classes
    result = v2_codec.InferResult(
        classes=classes,
        probabilities=np.array(
            [[a.prediction.probabilities[c] for c in classes] for a in answers], np.float32
        ),
        labels=[a.prediction.label for a in answers],
        heatmaps=[a.heatmap_png or b"" for a in answers] if parsed.gradcam else None,
    )
    parameters = _parameters(source)
    if parsed.gradcam:
        parameters["gradcam_targets"] = ",".join(a.gradcam_target or "" for a in answers)
    content, header_length = v2_codec.encode_infer_response(
        parsed,
        result,
        model_name=source.name,
        model_version=source.metadata.version,
        parameters=parameters,
    )
    if header_length is None:
        return Response(content, media_type="application/json")
    return Response(
        content,
        media_type="application/octet-stream",
        headers={v2_codec.HEADER_LENGTH: str(header_length)},
    )
