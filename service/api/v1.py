"""TF Serving / KServe v1 REST routes: ``POST /v1/models/{name}:predict`` and ``:explain``.

The ``:verb`` is part of the last path segment, so the route takes the segment whole and splits
it (``v1_codec.split_verb``). ``infer`` scope, admission and errors (``{"error": "..."}``) as for
the v2 routes; every image goes through ``service.analysis``.
"""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter, Request

from service import analysis
from service.api.deps import Inferrer, State
from service.api.protocol_common import Analysed, analyse_images, check_request, read_body
from service.api.v2 import INFER_ERRORS, READ_ERRORS
from service.errors import ModelNotFound
from service.protocols import v1_codec
from service.settings import DISCLAIMER

router = APIRouter(prefix="/v1/models", tags=["tf serving / kserve v1"])

DESCRIPTION = (
    'TF Serving REST: `{"instances": [{"b64": "<base64 of the file>"}]}` (or columnar '
    '`{"inputs": ...}`) -> `{"predictions": [{"label", "probabilities", "classes"}]}`; '
    '`:explain` adds the Grad-CAM heatmap and overlay PNGs as `{"b64": ...}`. Errors: '
    '`{"error": "..."}`. NOT FOR DIAGNOSTIC USE.'
)


def _row(answer: Analysed, classes: list[str]) -> dict[str, Any]:
    prediction = answer.prediction
    row: dict[str, Any] = {
        "label": prediction.label,
        "probabilities": [prediction.probabilities[c] for c in classes],
        "classes": classes,
    }
    if answer.heatmap_png is not None and answer.overlay_png is not None:
        row["gradcam_target"] = answer.gradcam_target
        row["gradcam_heatmap_png"] = {"b64": base64.b64encode(answer.heatmap_png).decode()}
        row["gradcam_overlay_png"] = {"b64": base64.b64encode(answer.overlay_png).decode()}
    return row


async def _run(
    request: Request, state: State, name_verb: str, version: str | None
) -> dict[str, Any]:
    name, verb = v1_codec.split_verb(name_verb)
    source = state.models.source(name)
    if version is not None and version != source.metadata.version:
        raise ModelNotFound(
            f"Model {name!r} has no version {version[:40]!r}; served: {source.metadata.version}."
        )
    runtime = analysis.require_runtime(state, source.name)
    parsed = v1_codec.parse_request(await read_body(request, state))
    for target in set(parsed.targets):
        check_request(state, runtime, parsed.images, target)
    answers = await analyse_images(
        state, parsed.images, source.name, explain=verb == "explain", targets=parsed.targets
    )
    classes = source.metadata.classes
    rows = [_row(answer, classes) for answer in answers]
    extra = {
        "model": {"name": source.name, "version": source.metadata.version},
        "disclaimer": DISCLAIMER,
    }
    return v1_codec.answer(parsed, rows, extra)


@router.post(
    "/{name_verb}", summary=":predict or :explain", description=DESCRIPTION, responses=INFER_ERRORS
)
async def predict_or_explain(
    request: Request, state: State, _: Inferrer, name_verb: str
) -> dict[str, Any]:
    return await _run(request, state, name_verb, None)


@router.post(
    "/{name}/versions/{version_verb}",
    summary=":predict or :explain of one version",
    description=DESCRIPTION,
    responses=INFER_ERRORS,
)
async def versioned(
    request: Request, state: State, _: Inferrer, name: str, version_verb: str
) -> dict[str, Any]:
    version, verb = v1_codec.split_verb(version_verb)
    return await _run(request, state, f"{name}:{verb}", version)


@router.get("/{name}", summary="Model status (TF Serving)", responses=READ_ERRORS)
async def status(state: State, name: str) -> dict[str, Any]:
    source = state.models.source(name)
    ready = source.name in state.models.runtimes
    return {
        "model_version_status": [
            {
                "version": source.metadata.version,
                "state": "AVAILABLE" if ready else "LOADING",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
