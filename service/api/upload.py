"""Read an image upload from any of the accepted request shapes, within the size limit.

Accepted: ``multipart/form-data`` (field ``file``, optional ``target`` and ``model``),
``application/json`` (``{"image_base64": ..., "target": ..., "model": ...}``) and, for curl
convenience, a raw body with an image or DICOM content type. The body is read in chunks and
refused with 413 as soon as it exceeds the limit, so an oversized upload never sits in memory in
full.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect, Request
from starlette.types import Message

from service.errors import InvalidRequest, PayloadTooLarge, ServiceError, UnsupportedMediaType
from service.schemas import ExplainRequest

RAW_CONTENT_TYPES = {"image/png", "image/jpeg", "application/dicom", "application/octet-stream"}
_FORM_OVERHEAD = 64 * 1024


@dataclass(frozen=True)
class Upload:
    data: bytes
    target: str | None
    model: str | None = None  # the served model to use (None: the default)


class EmptyUpload(InvalidRequest):
    code = "empty_upload"


class ClientClosedRequest(ServiceError):
    """The client left before its body arrived: nobody reads this answer, only logs and metrics
    see it (499, as nginx names it), instead of an internal error."""

    status_code = 499
    code = "client_closed_request"


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"Upload exceeds the limit of {limit:,} bytes ({limit / 2**20:.0f} MiB)."
    )


async def _read_capped(request: Request, cap: int, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise too_large(limit)
    chunks: list[bytes] = []
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > cap:
                raise too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect as exc:
        raise ClientClosedRequest("The client closed the connection during the upload.") from exc
    return b"".join(chunks)


def _replay(request: Request, body: bytes) -> Request:
    """A copy of ``request`` whose body is ``body`` (the original stream is consumed)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(request.scope, receive)


def _decode_base64(text: str) -> bytes:
    if text.startswith("data:") and "," in text:  # tolerate data URLs from browsers
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest("`image_base64` is not valid base64.") from exc


async def read_upload(request: Request, *, limit: int) -> Upload:
    # base64 inflates by 4/3; the decoded file is then checked against the exact limit.
    body = await _read_capped(request, cap=limit * 4 // 3 + _FORM_OVERHEAD, limit=limit)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    query_target = request.query_params.get("target")
    query_model = request.query_params.get("model")
    if not body:
        raise EmptyUpload(
            "The request body is empty: send the image as multipart field `file` "
            "or as JSON `image_base64`."
        )
    if content_type == "multipart/form-data":
        upload = await _from_form(_replay(request, body))
    elif content_type == "application/json" or content_type.endswith("+json"):
        upload = _from_json(body)
    elif content_type in RAW_CONTENT_TYPES:
        upload = Upload(data=body, target=None)
    else:
        raise UnsupportedMediaType(
            f"Unsupported request content type {content_type or '(none)'!r}: use "
            "multipart/form-data (field `file`) or application/json (`image_base64`)."
        )
    if not upload.data:
        raise EmptyUpload("The uploaded file is empty.")
    if len(upload.data) > limit:
        raise too_large(limit)
    return Upload(
        data=upload.data,
        target=upload.target or query_target or None,
        model=upload.model or query_model or None,
    )


async def _from_form(request: Request) -> Upload:
    try:
        form = await request.form(max_files=1, max_fields=8)
    except Exception as exc:  # malformed multipart bodies raise several starlette types
        raise InvalidRequest(f"Malformed multipart/form-data body: {exc}") from exc
    try:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise InvalidRequest("Multipart field `file` (the image) is missing.")
        target, model = form.get("target"), form.get("model")
        if target is not None and not isinstance(target, str):
            raise InvalidRequest("Field `target` must be a class name, not a file.")
        if model is not None and not isinstance(model, str):
            raise InvalidRequest("Field `model` must be a model name, not a file.")
        return Upload(data=await file.read(), target=target, model=model)
    finally:
        await form.close()


def _from_json(body: bytes) -> Upload:
    try:
        payload = ExplainRequest.model_validate_json(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
            for error in exc.errors()
        )
        raise InvalidRequest(f"Invalid JSON body: {problems}") from exc
    return Upload(
        data=_decode_base64(payload.image_base64), target=payload.target, model=payload.model
    )
