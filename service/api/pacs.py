"""PACS route: analyse a study in the configured DICOMweb server and store the results there."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from service.api.deps import PacsUser, State
from service.api.docs import AUTH_ERRORS, BUSY_ERRORS, MODEL_ERRORS, error_responses, merge
from service.dicom.pacs import StoreFailed
from service.dicom.study import analyse_study
from service.errors import (
    InvalidRequest,
    PacsNotConfigured,
    PacsTimeout,
    PacsUnavailable,
    StudyNotFound,
)
from service.schemas import StudyAnalysis

router = APIRouter(prefix="/pacs", tags=["pacs"])

UID_PATTERN = r"^[0-9]+(\.[0-9]+)*$"

PACS_ERRORS = merge(
    AUTH_ERRORS,
    error_responses(
        StudyNotFound("The PACS at orthanc:8042 has no study with that UID."),
        InvalidRequest(f"path.study_instance_uid: String should match pattern '{UID_PATTERN}'"),
        PacsNotConfigured(
            "No PACS is configured: set CXR_DICOMWEB_URL to the DICOMweb root of the PACS "
            "(e.g. http://orthanc:8042/dicom-web)."
        ),
        PacsUnavailable(
            "The PACS at orthanc:8042 could not be reached while listing the study's "
            "instances; check CXR_DICOMWEB_URL and that the PACS is running."
        ),
        StoreFailed(
            "The PACS at orthanc:8042 stored 1 of 2 results and refused 1; analyze again to "
            "store the rest."
        ),
        PacsTimeout(
            "The PACS at orthanc:8042 did not answer within 30 s while retrieving an image."
        ),
    ),
    MODEL_ERRORS,
    BUSY_ERRORS,
)


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
    _: PacsUser,
    study_instance_uid: Annotated[
        str,
        Path(
            pattern=UID_PATTERN,
            max_length=64,
            description="Study Instance UID",
            examples=["1.2.276.0.7230010.3.1.2.8323329.6904.1517875201.850818"],
        ),
    ],
    model: Annotated[
        str | None,
        Query(description="A served model's name (GET /models); default: the default model"),
    ] = None,
) -> StudyAnalysis:
    return await analyse_study(state, study_instance_uid, model)
