"""HTTP routes. Thin: parse the request, call ``service.analysis``, return a pydantic model.

``/health``, ``/ready`` and ``/model`` are open (no patient data, and the page shows the model
before asking for a key); ``/predict`` and ``/explain`` need the ``infer`` scope, a DICOM answer
(patient data) ``dicom-out`` as well. Those checks come before the body is read, and the place
in the model queue before them (``middleware.AdmissionGate``).
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
from service.schemas import Explanation, ModelInfo, Prediction, Status
from service.settings import DISCLAIMER

router = APIRouter()


@router.get("/health", response_model=Status, tags=["status"], summary="Process is alive")
async def health() -> Status:
    return Status(status="ok")


@router.get(
    "/ready",
    response_model=Status,
    responses=NOT_READY,
    tags=["status"],
    summary="Model loaded and warmed up",
)
async def ready(state: State) -> Status:
    if not state.ready:
        detail = f" ({state.load_error})" if state.load_error else ""
        raise NotReady(f"The model is not loaded yet{detail}.", headers={"Retry-After": "2"})
    return Status(status="ready")


@router.get(
    "/model",
    response_model=ModelInfo,
    responses=NOT_READY,
    tags=["model"],
    summary="The served model: classes, input, preprocessing, training data and metrics",
)
async def model_info(state: State) -> ModelInfo:
    runtime = analysis.require_runtime(state)
    metadata = runtime.metadata
    return ModelInfo(
        name=metadata.name,
        version=metadata.version,
        classes=metadata.classes,
        input=metadata.input,
        preprocessing=metadata.preprocessing,
        gradcam_layer=metadata.gradcam_layer,
        sha256=metadata.sha256,
        training=metadata.training,
        metrics=metadata.metrics,
        backend=runtime.backend,
        backends=metadata.backends,
        input_gate=analysis.gate_info(runtime, state.settings.input_gate),
        calibration=metadata.calibration.model_dump() if metadata.calibration else None,
        disclaimer=DISCLAIMER,
    )


@router.post(
    "/predict",
    response_model=Prediction,
    responses=IMAGE_ERRORS,
    tags=["inference"],
    summary="Class probabilities for a chest radiograph (PNG, JPEG or DICOM)",
    openapi_extra=image_request_body(with_target=False),
)
async def predict(request: Request, state: State, _: Inferrer) -> Prediction:
    upload = await read_upload(request, limit=state.settings.max_upload_bytes)
    return await analysis.predict(state, upload.data)


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
) -> Explanation | Response:
    dicom_out = wants_dicom(request)
    if dicom_out:
        caller.require("dicom-out")
    upload = await read_upload(request, limit=state.settings.max_upload_bytes)
    if dicom_out:
        return await explain_as_dicom(state, upload.data, upload.target or target)
    return await analysis.explain(state, upload.data, upload.target or target)
