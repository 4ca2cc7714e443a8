"""OpenAPI pieces shared by the routes: the two request body shapes and every error example."""

from __future__ import annotations

from typing import Any

from service.schemas import ErrorResponse, ExplainRequest, ImageRequest


def _error(status: int, code: str, message: str, description: str) -> dict[str, Any]:
    return {
        "model": ErrorResponse,
        "description": description,
        "content": {"application/json": {"example": {"error": {"code": code, "message": message}}}},
    }


IMAGE_ERRORS: dict[int | str, dict[str, Any]] = {
    413: _error(
        413,
        "payload_too_large",
        "Upload exceeds the limit of 20,971,520 bytes (20 MiB).",
        "Upload over the byte limit, or image over the pixel limit (`image_too_large`).",
    ),
    415: _error(
        415,
        "unsupported_media_type",
        "Unrecognised file type: send a PNG, JPEG or DICOM (Part-10) chest radiograph.",
        "Not a PNG, JPEG or DICOM file, or an unsupported request content type.",
    ),
    422: _error(
        422,
        "invalid_image",
        "The PNG file is corrupt or truncated.",
        "Undecodable image (`invalid_image`), invalid field or base64 "
        "(`invalid_request`), empty upload (`empty_upload`), or an image the model is "
        "not for (`unsuitable_image`).",
    ),
    503: _error(
        503,
        "not_ready",
        "The model is still loading; retry shortly.",
        "Model not loaded yet (`not_ready`) or queue full (`overloaded`, with Retry-After).",
    ),
}

NOT_READY: dict[int | str, dict[str, Any]] = {503: IMAGE_ERRORS[503]}


def image_request_body(*, with_target: bool) -> dict[str, Any]:
    json_model = ExplainRequest if with_target else ImageRequest
    form_properties: dict[str, Any] = {
        "file": {"type": "string", "format": "binary", "description": "PNG, JPEG or DICOM file"}
    }
    if with_target:
        form_properties["target"] = {
            "type": "string",
            "description": "Class to explain (default: the top class)",
        }
    return {
        "requestBody": {
            "required": True,
            "description": "The image as a multipart upload or as base64 in JSON.",
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": form_properties,
                    }
                },
                "application/json": {"schema": json_model.model_json_schema()},
            },
        }
    }
