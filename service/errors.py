"""One error hierarchy for the whole service.

Every failure a client can cause is a ``ServiceError`` subclass carrying its HTTP status and a
stable machine-readable ``code``; one exception handler renders them all as
``{"error": {"code": ..., "message": ...}}``. Messages never contain patient data.
"""

from __future__ import annotations


class ServiceError(Exception):
    status_code: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class UnsupportedMediaType(ServiceError):
    status_code = 415
    code = "unsupported_media_type"


class InvalidImage(ServiceError):
    """The bytes claim to be a supported format but cannot be decoded."""

    status_code = 422
    code = "invalid_image"


class InvalidRequest(ServiceError):
    status_code = 422
    code = "invalid_request"


class UnsuitableImage(ServiceError):
    """Decodable, but not an image the model is meant for (e.g. a lateral or CT DICOM)."""

    status_code = 422
    code = "unsuitable_image"


class NotAChestXray(ServiceError):
    """The input gate (``service.inference.gate``) says this is not a frontal chest radiograph."""

    status_code = 422
    code = "not_a_chest_xray"


class PayloadTooLarge(ServiceError):
    status_code = 413
    code = "payload_too_large"


class ImageTooLarge(ServiceError):
    status_code = 413
    code = "image_too_large"


class ImageTooComplex(ServiceError):
    """Decoding needed more memory than a decode worker may use (``CXR_DECODE_MEMORY_MB``)."""

    status_code = 413
    code = "image_too_complex"


class DecodeTimeout(ServiceError):
    """Decoding took longer than ``CXR_DECODE_TIMEOUT_SECONDS``; the worker was replaced."""

    status_code = 422
    code = "decode_timeout"


class NotReady(ServiceError):
    status_code = 503
    code = "not_ready"


class Overloaded(ServiceError):
    status_code = 503
    code = "overloaded"


class NotAcceptable(ServiceError):
    """The requested response type cannot be produced for this input (``Accept`` header)."""

    status_code = 406
    code = "not_acceptable"


class BadRequest(ServiceError):
    """A request the inference protocols (``/v2``, ``/v1``) cannot parse: wrong shape or type."""

    status_code = 400
    code = "bad_request"


class ModelNotFound(ServiceError):
    """No served model has that name (or version); the message lists the served ones."""

    status_code = 404
    code = "model_not_found"


class StudyNotFound(ServiceError):
    status_code = 404
    code = "study_not_found"


class PacsNotConfigured(ServiceError):
    status_code = 501
    code = "pacs_not_configured"


class PacsUnavailable(ServiceError):
    """The PACS refused the connection or answered with an error (a bad gateway for us)."""

    status_code = 502
    code = "pacs_unavailable"


class PacsTimeout(ServiceError):
    status_code = 504
    code = "pacs_timeout"


class Unauthorized(ServiceError):
    """No API key, or one the service does not know (``WWW-Authenticate: Bearer`` is sent)."""

    status_code = 401
    code = "unauthorized"


class Forbidden(ServiceError):
    """A known key without the route's scope, or a cross-site request from a browser."""

    status_code = 403
    code = "forbidden"


class RequestTimeout(ServiceError):
    """The request body did not arrive in full within ``CXR_BODY_TIMEOUT_SECONDS``."""

    status_code = 408
    code = "request_timeout"


class ModelArtifactError(Exception):
    """The model folder is missing, inconsistent or corrupt: the service refuses to start."""
