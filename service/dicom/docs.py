"""OpenAPI additions for ``POST /explain`` with ``Accept: application/dicom``."""

from __future__ import annotations

from typing import Any

from service.schemas import ErrorResponse

DICOM_EXPLAIN_DESCRIPTION = (
    "Send `Accept: application/dicom` with a DICOM upload to get the Grad-CAM overlay as a "
    "DICOM Secondary Capture (RGB) instead of JSON: same Study Instance UID and patient as the "
    "source, its own series (SeriesDescription `AI Grad-CAM heatmap - NOT FOR DIAGNOSTIC USE`), "
    "the model name and version in ManufacturerModelName / SoftwareVersions and the "
    "probabilities in ImageComments. A PNG or JPEG upload with that Accept header gets 406: "
    "there is no study or patient to attach the result to."
)

DICOM_EXPLAIN_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "JSON explanation, or with `Accept: application/dicom` a DICOM file",
        "content": {"application/dicom": {"schema": {"type": "string", "format": "binary"}}},
    },
    406: {
        "model": ErrorResponse,
        "description": "`Accept: application/dicom` for an upload that is not DICOM.",
        "content": {
            "application/json": {
                "example": {
                    "error": {
                        "code": "not_acceptable",
                        "message": "A DICOM result (Accept: application/dicom) needs a DICOM "
                        "upload: it is stored in the source's study and patient. Upload the "
                        "DICOM file, or accept application/json.",
                    }
                }
            }
        },
    },
}
