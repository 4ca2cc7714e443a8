"""OpenAPI pieces shared by the routes: the two request body shapes and every error response.

Error responses are built from the error classes themselves (status, code, docstring) and an
instance with a real message, so the document cannot drift from what the service sends.
"""

from __future__ import annotations

from typing import Any

from service.api.upload import EmptyUpload, too_large
from service.errors import (
    DecodeTimeout,
    Forbidden,
    ImageTooComplex,
    ImageTooLarge,
    InvalidImage,
    InvalidRequest,
    ModelNotFound,
    NotReady,
    Overloaded,
    RequestTimeout,
    ServiceError,
    Unauthorized,
    UnsuitableImage,
    UnsupportedMediaType,
)
from service.schemas import ErrorResponse, ExplainRequest, ImageRequest


def _meaning(error: ServiceError) -> str:
    """The class's own docstring (first line), or nothing when it only inherits one."""
    for cls in type(error).__mro__:
        if cls is ServiceError:
            return ""
        doc = cls.__dict__.get("__doc__")
        if doc:
            return str(doc).strip().splitlines()[0].rstrip(".")
    return ""


def error_responses(*errors: ServiceError) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these errors: one entry per status, one example per code."""
    grouped: dict[int, list[ServiceError]] = {}
    for error in errors:
        grouped.setdefault(error.status_code, []).append(error)
    responses: dict[int | str, dict[str, Any]] = {}
    for status, group in grouped.items():
        described = [
            f"`{e.code}`"
            + (f": {_meaning(e)}" if _meaning(e) else "")
            + (f" (`{', '.join(e.headers)}` set)" if e.headers else "")
            for e in group
        ]
        examples = {
            e.code: {"summary": e.code, "value": {"error": {"code": e.code, "message": e.message}}}
            for e in group
        }
        responses[status] = {
            "model": ErrorResponse,
            "description": "; ".join(described) + ".",
            "content": {"application/json": {"examples": examples}},
        }
    return responses


def merge(*parts: dict[int | str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """Responses of several groups; errors of one status share its examples."""
    merged: dict[int | str, dict[str, Any]] = {}
    for part in parts:
        for status, response in part.items():
            if status not in merged:
                merged[status] = response
                continue
            old = merged[status]
            examples = {
                **old["content"]["application/json"]["examples"],
                **response["content"]["application/json"]["examples"],
            }
            merged[status] = {
                **old,
                "description": f"{old['description']} {response['description']}",
                "content": {"application/json": {"examples": examples}},
            }
    return merged


RETRY = {"Retry-After": "1"}
NOT_READY_ERROR = NotReady("The model is still loading; retry shortly.", headers=RETRY)

MODEL_ERRORS = error_responses(
    ModelNotFound(
        "No model named 'edema-net' is served; served models: cxr-vgg16-3class, "
        "cxr-vgg16-covid-vs-normal, cxr-vgg16-covid-vs-pneumonia."
    )
)

AUTH_ERRORS = error_responses(
    Unauthorized(
        "An API key is required: send `Authorization: Bearer <key>`.",
        headers={"WWW-Authenticate": "Bearer"},
    ),
    Forbidden("API key 'viewer' lacks the scope 'infer' this request needs."),
)

BUSY_ERRORS = error_responses(
    NOT_READY_ERROR, Overloaded("The model queue is full; retry shortly.", headers=RETRY)
)

IMAGE_ERRORS = merge(
    AUTH_ERRORS,
    error_responses(
        RequestTimeout("The request body did not arrive within 30 s."),
        too_large(20 * 1024 * 1024),
        ImageTooLarge("Image of 10000 x 8000 pixels exceeds the limit of 50,000,000 pixels."),
        ImageTooComplex("Decoding the image needs more memory than a decoder may use."),
        UnsupportedMediaType(
            "Unrecognised file type: send a PNG, JPEG or DICOM (Part-10) chest radiograph."
        ),
        InvalidImage("The PNG file is corrupt or truncated."),
        DecodeTimeout("Decoding the image took longer than 10 s; it was stopped."),
        InvalidRequest("Unknown target 'edema'; choose one of: covid, normal, pneumonia."),
        EmptyUpload("The uploaded file is empty."),
        UnsuitableImage("Modality CT is not a chest radiograph (accepted: CR, DX)."),
    ),
    MODEL_ERRORS,
    BUSY_ERRORS,
)

NOT_READY = error_responses(NOT_READY_ERROR)


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
    form_properties["model"] = {
        "type": "string",
        "description": "A served model's name (GET /models); default: the default model",
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
