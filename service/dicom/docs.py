"""OpenAPI additions for ``POST /explain`` with ``Accept: application/dicom``."""

from __future__ import annotations

from typing import Any

from service.api.docs import error_responses
from service.dicom.explain import not_dicom_error

DICOM_EXPLAIN_DESCRIPTION = (
    "Send `Accept: application/dicom` with a DICOM upload to get the Grad-CAM overlay as a "
    "DICOM Secondary Capture (RGB) instead of JSON: same Study Instance UID and patient as the "
    "source, its own series (SeriesDescription `AI Grad-CAM heatmap - NOT FOR DIAGNOSTIC USE`), "
    "the model name and version in ManufacturerModelName / SoftwareVersions and the "
    "probabilities in ImageComments. It carries patient data, so the API key needs the "
    "`dicom-out` scope as well as `infer`. A PNG or JPEG upload with that Accept header gets "
    "406: there is no study or patient to attach the result to."
)

DICOM_EXPLAIN_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "JSON explanation, or with `Accept: application/dicom` a DICOM file",
        "content": {"application/dicom": {"schema": {"type": "string", "format": "binary"}}},
    },
    **error_responses(not_dicom_error()),
}
