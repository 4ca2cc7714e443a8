"""PACS route: analyse a study in the configured DICOMweb server and store the results there."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from service.api.routes import State
from service.dicom.study import analyse_study
from service.schemas import ErrorResponse, StudyAnalysis

router = APIRouter(prefix="/pacs", tags=["pacs"])

UID_PATTERN = r"^[0-9]+(\.[0-9]+)*$"


def _error(code: str, message: str, description: str) -> dict[str, Any]:
    return {
        "model": ErrorResponse,
        "description": description,
        "content": {"application/json": {"example": {"error": {"code": code, "message": message}}}},
    }


PACS_ERRORS: dict[int | str, dict[str, Any]] = {
    404: _error(
        "study_not_found",
        "The PACS at orthanc:8042 has no study with that UID.",
        "The PACS has no such study.",
    ),
    422: _error(
        "invalid_request",
        "path.study_instance_uid: String should match pattern '^[0-9]+(\\.[0-9]+)*$'",
        "The path is not a DICOM UID.",
    ),
    501: _error(
        "pacs_not_configured",
        "No PACS is configured: set CXR_DICOMWEB_URL to the DICOMweb root of the PACS "
        "(e.g. http://orthanc:8042/dicom-web).",
        "`CXR_DICOMWEB_URL` is not set.",
    ),
    502: _error(
        "pacs_unavailable",
        "The PACS at orthanc:8042 could not be reached while listing the study's instances; "
        "check CXR_DICOMWEB_URL and that the PACS is running.",
        "The PACS is unreachable or answered with an error (`pacs_unavailable`), or refused "
        "some results (`pacs_store_failed`; analyze again to complete).",
    ),
    503: _error(
        "not_ready",
        "The model is still loading; retry shortly.",
        "Model not loaded yet (`not_ready`) or queue full (`overloaded`, with Retry-After).",
    ),
    504: _error(
        "pacs_timeout",
        "The PACS at orthanc:8042 did not answer within 30 s while retrieving an image.",
        "A PACS request took longer than `CXR_DICOMWEB_TIMEOUT_SECONDS`.",
    ),
}


@router.post(
    "/studies/{study_instance_uid}/analyze",
    response_model=StudyAnalysis,
    responses=PACS_ERRORS,
    summary="Analyse every frontal CR/DX image of a PACS study and store the results there",
    description=(
        "Retrieves the study over WADO-RS from `CXR_DICOMWEB_URL`, classifies every "
        "single-frame grayscale frontal CR/DX image (others are listed in `skipped` with the "
        "reason), and stores per image a Secondary Capture of the Grad-CAM overlay and a "
        "Comprehensive SR with the probabilities back into the study with one STOW-RS "
        "request. Results have fixed UIDs, so running it again stores nothing twice "
        "(`already_stored`). Research output, NOT FOR DIAGNOSTIC USE."
    ),
)
async def analyze_study(
    state: State,
    study_instance_uid: Annotated[
        str,
        Path(
            pattern=UID_PATTERN,
            max_length=64,
            description="Study Instance UID",
            examples=["1.2.276.0.7230010.3.1.2.8323329.6904.1517875201.850818"],
        ),
    ],
) -> StudyAnalysis:
    return await analyse_study(state, study_instance_uid)
