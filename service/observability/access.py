"""One access log line and the request metrics for every HTTP request, with a request id.

A pure ASGI middleware (``BaseHTTPMiddleware`` would run the app in another task and break
streaming responses and background tasks). It takes ``X-Request-ID`` from the request when it
is a sane token, else makes one, and echoes it in the response. The line holds the method, the
route *template* (``/pacs/studies/{study_instance_uid}/analyze``: a raw path could carry a UID),
status, duration, the model and label when a prediction was made, the error code of an error
response, and the name of the API key (``request.state.api_key_name``, set by the
authentication code), so it doubles as the audit log. Never the query, the body, the key itself
or anything read from an image.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.observability.metrics import ServiceMetrics

access_logger = logging.getLogger("service.access")

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_ERROR_BODY_LIMIT = 16 * 1024  # error bodies are small JSON; never buffer an image


@dataclass
class RequestRecord:
    """What the app reports about the request being handled (a context variable holds it)."""

    request_id: str
    predictions: list[tuple[str, str, str]] = field(default_factory=list)  # model, version, label


_current: ContextVar[RequestRecord | None] = ContextVar("cxr_request_record", default=None)


def note_prediction(model: str, version: str, label: str) -> None:
    """Called where a prediction is made; counted and logged when the request ends."""
    record = _current.get()
    if record is not None:  # None outside a request (benchmarks, batch tools)
        record.predictions.append((model, version, label))


def request_id_of(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1").strip()
            if _SANE_REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


_KNOWN_TEMPLATES = 1024  # paths with identifiers (PACS study UIDs) would grow it without end


def route_template(scope: Scope, known: dict[tuple[str, str], str] | None = None) -> str:
    """The matched route's path template; one label value for every unmatched path.

    A request refused before routing (admission: a full queue answers 503 before the body is
    read) has no ``route`` in its scope yet, so the app's routes are matched here instead.
    ``known``: templates already matched, by (method, path), so a burst of refusals of one route
    costs one match (the caller bounds its size).
    """
    path = getattr(scope.get("route"), "path", None)
    if path:
        return str(path)
    key = (scope["method"], scope["path"])
    if known is not None and key in known:
        return known[key]
    template = _match(getattr(scope.get("app"), "routes", ()), scope) or "unmatched"
    if known is not None and len(known) < _KNOWN_TEMPLATES:
        known[key] = template
    return template


def _match(routes: Any, scope: Scope) -> str | None:
    """The template of the route that fully matches ``scope``, looking into included routers."""
    for route in routes:
        if not isinstance(route, BaseRoute) or route.matches(scope)[0] is not Match.FULL:
            continue
        path = getattr(route, "path", None)
        if path:
            return str(path)
        router = getattr(route, "original_router", None) or getattr(route, "router", None)
        found = _match(getattr(router, "routes", ()), scope)
        if found:
            return found
    return None


def _error_code(body: bytes) -> str | None:
    try:
        error = json.loads(body)["error"]
        code = error["code"]
    except (ValueError, KeyError, TypeError):
        return None
    return code if isinstance(code, str) else None


class AccessMiddleware:
    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics
        self._templates: dict[tuple[str, str], str] = {}  # route_template's memory

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        record = RequestRecord(request_id=request_id_of(scope))
        status = 500  # if the app raises before answering, the outer handler sends a 500
        answered = False
        error_body: bytearray | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status, answered, error_body
            if message["type"] == "http.response.start":
                status, answered = message["status"], True
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_HEADER] = record.request_id
                is_json = headers.get("content-type", "").startswith("application/json")
                if status >= 400 and is_json:
                    error_body = bytearray()  # to read the error code from
            elif (
                message["type"] == "http.response.body"
                and error_body is not None
                and len(error_body) < _ERROR_BODY_LIMIT
            ):
                error_body += message.get("body", b"")
            await send(message)

        token = _current.set(record)
        self.metrics.in_progress.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _current.reset(token)
            self.metrics.in_progress.dec()
            code = _error_code(bytes(error_body)) if error_body else None
            if not answered:
                code = "internal_error"  # what the outer handler's 500 will say
            self._finish(scope, record, status, code, time.perf_counter() - started)

    def _finish(
        self, scope: Scope, record: RequestRecord, status: int, code: str | None, seconds: float
    ) -> None:
        route, method = route_template(scope, self._templates), scope["method"]
        metrics = self.metrics
        metrics.requests.labels(route, method, str(status)).inc()
        metrics.duration.labels(route, method).observe(seconds)
        if code is not None:
            metrics.errors.labels(route, code).inc()
        for model, version, label in record.predictions:
            metrics.predictions.labels(model, version, label).inc()
        message, fields = _line(scope, record, route, status, code, seconds)
        access_logger.info("%s", message, extra={"fields": fields})


def _line(
    scope: Scope, record: RequestRecord, route: str, status: int, code: str | None, seconds: float
) -> tuple[str, dict[str, Any]]:
    """The line for text logs, and the same facts as fields for JSON logs."""
    state = scope.get("state") or {}
    client = scope.get("client")
    fields: dict[str, Any] = {
        "request_id": record.request_id,
        "method": scope["method"],
        "route": route,
        "status": status,
        "duration_ms": round(seconds * 1000.0, 1),
        "client": client[0] if client else None,
        "key": state.get("api_key_name"),
    }
    if code is not None:
        fields["code"] = code
    if record.predictions:
        fields["model"] = ",".join(sorted({f"{m}:{v}" for m, v, _ in record.predictions}))
        fields["label"] = ",".join(label for _, _, label in record.predictions)
    extras = " ".join(
        f"{name}={fields[name]}" for name in ("code", "model", "label", "key") if fields.get(name)
    )
    message = (
        f"{fields['method']} {route} {status} {fields['duration_ms']} ms "
        f"id={record.request_id} client={fields['client']} {extras}"
    ).rstrip()
    return message, fields
