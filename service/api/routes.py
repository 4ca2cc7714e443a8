"""HTTP routes. Thin: parse the request, call ``service.analysis``, return a pydantic model.

``/health`` and ``/ready`` are open (so are ``/models`` and ``/model``: ``service.api.models``);
``/predict`` and ``/explain`` need the ``infer`` scope, a DICOM answer (patient data)
``dicom-out`` as well; both take ``model`` (query, form or JSON field) to choose a served
model. Those checks come before the body is read, and the place in the model queue before them
(``middleware.AdmissionGate``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from service import analysis
from service.api.deps import Inferrer, State
from service.api.docs import IMAGE_ERRORS, NOT_READY, image_request_body
from service.api.upload import read_upload
from service.dicom.docs import DICOM_EXPLAIN_DESCRIPTION, DICOM_EXPLAIN_RESPONSES
from service.dicom.explain import explain_as_dicom, wants_dicom
from service.errors import NotReady
from service.schemas import Explanation, Prediction, Status

router = APIRouter()

MODEL_QUERY = "A served model's name (GET /models; also a form or JSON field); default: the default"


@router.get("/health", response_model=Status, tags=["status"], summary="Process is alive")
async def health() -> Status:
    return Status(status="ok")


@router.get(
    "/ready",
    response_model=Status,
    responses=NOT_READY,
    tags=["status"],
    summary="Every model loaded and warmed up",
)
async def ready(state: State) -> Status:
    if not state.ready:
        waiting = [name for name in state.models.names if name not in state.models.runtimes]
        detail = f" ({state.load_error})" if state.load_error else ""
        raise NotReady(
            f"Not every model is loaded yet: waiting for {', '.join(waiting)}{detail}.",
            headers={"Retry-After": "2"},
        )
    return Status(status="ready")


@router.post(
    "/predict",
    response_model=Prediction,
    responses=IMAGE_ERRORS,
    tags=["inference"],
    summary="Class probabilities for a chest radiograph (PNG, JPEG or DICOM)",
    openapi_extra=image_request_body(with_target=False),
)
async def predict(
    request: Request,
    state: State,
    _: Inferrer,
    model: Annotated[str | None, Query(description=MODEL_QUERY)] = None,
) -> Prediction:
    upload = await read_upload(request, limit=state.settings.max_upload_bytes)
    return await analysis.predict(state, upload.data, upload.model or model)


@router.post(
    "/explain",
    response_model=Explanation,
    responses={**IMAGE_ERRORS, **DICOM_EXPLAIN_RESPONSES},
    tags=["inference"],
    summary="Probabilities plus a Grad-CAM heatmap and overlay (base64 PNGs)",
    description=DICOM_EXPLAIN_DESCRIPTION,
    openapi_extra=image_request_body(with_target=True),
)
async def explain(
    request: Request,
    state: State,
    caller: Inferrer,
    target: Annotated[
        str | None, Query(description="Class to explain (also a form or JSON field)")
    ] = None,
    model: Annotated[str | None, Query(description=MODEL_QUERY)] = None,
) -> Explanation | Response:
    dicom_out = wants_dicom(request)
    if dicom_out:
        caller.require("dicom-out")
    upload = await read_upload(request, limit=state.settings.max_upload_bytes)
    chosen_target, chosen_model = upload.target or target, upload.model or model
    if dicom_out:
        return await explain_as_dicom(state, upload.data, chosen_target, chosen_model)
    return await analysis.explain(state, upload.data, chosen_target, chosen_model)
