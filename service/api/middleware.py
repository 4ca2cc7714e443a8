"""HTTP hardening around every route: security headers, CORS, cross-site refusal, body timeout.

Plain ASGI middleware, so each check costs a header look-up and runs before routing:

- ``SecurityHeaders``: CSP (scripts only from this origin, no framing), ``nosniff``,
  ``X-Frame-Options``, ``Referrer-Policy`` on every response. The API docs pages get the same
  policy plus inline styles, which Swagger UI and ReDoc set at run time (still no inline script).
- ``CrossSiteGuard``: a browser page of another site can POST a form here without a CORS
  preflight (a "simple" request). State-changing requests whose ``Origin`` is neither this host
  nor in ``CXR_CORS_ORIGINS``, or that the browser marks ``Sec-Fetch-Site: cross-site``, get 403
  before any work, with or without API keys. Clients that are not browsers send neither header.
- ``AdmissionGate``: a model route takes its place in the model queue (``scheduler.reserve()``)
  before anything else, its body included; with the queue full the 503 ``overloaded`` answer is
  sent in the same step, without the route machinery, so a burst is refused in milliseconds.
  An admitted request then reads its body only when it is its turn (``scheduler.reading_turn``:
  a few at a time, enough to keep the model busy); until then the body waits in the socket.
- ``BodyTimeout``: the whole body must arrive within ``CXR_BODY_TIMEOUT_SECONDS`` of the route's
  first read; a stalled or short body (Content-Length larger than what is sent) gets 408 and the
  connection is closed.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import Forbidden, Overloaded, RequestTimeout, ServiceError
from service.settings import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The POST routes that use the model, the inference protocols' included (service/api/v2.py, v1.py)
MODEL_ROUTES = ("/predict", "/explain", "/pacs/", "/v2/models/", "/v1/models/")
DOCS_PATHS = ("/docs", "/redoc")

_PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
_DOCS_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def error_response(error: ServiceError) -> JSONResponse:
    """The one error shape, for errors raised outside the routes' exception handlers."""
    return JSONResponse(
        {"error": {"code": error.code, "message": error.message}},
        status_code=error.status_code,
        headers=error.headers,
    )


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = str(scope.get("path", "")).startswith(DOCS_PATHS)
        policy = _DOCS_POLICY if docs else _PAGE_POLICY

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", policy)
                for name, value in _COMMON_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class CrossSiteGuard:
    def __init__(self, app: ASGIApp, allowed_origins: list[str]) -> None:
        self.app = app
        self.allowed = {_origin_of(origin) for origin in allowed_origins}

    def _refusal(self, headers: Headers) -> str | None:
        origin = headers.get("origin")
        if origin is not None:
            host = headers.get("host", "").lower()
            if _origin_of(origin) in self.allowed or urlsplit(origin).netloc.lower() == host:
                return None
            return f"Origin {origin[:100]!r} is not allowed (CXR_CORS_ORIGINS)"
        if headers.get("sec-fetch-site") in ("cross-site", "same-site"):
            return "A request from another site is not allowed"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            reason = self._refusal(Headers(scope=scope))
            if reason is not None:
                message = f"{reason}: cross-site requests to this service are refused."
                await error_response(Forbidden(message))(scope, receive, send)
                return
        await self.app(scope, receive, send)


class AdmissionGate:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.get("state") or {}
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or "service" not in state
            or not str(scope["path"]).startswith(MODEL_ROUTES)
        ):
            await self.app(scope, receive, send)
            return
        scheduler = state["service"].scheduler
        try:
            scheduler.reserve()
        except Overloaded as refused:
            await error_response(refused)(scope, receive, send)
            return
        reading = False

        async def receive_in_turn() -> Message:
            nonlocal reading
            if not reading:
                await scheduler.reading_turn()
                reading = True
            return await receive()

        try:
            await self.app(scope, receive_in_turn, send)
        finally:
            if reading:
                scheduler.end_reading()
            scheduler.release()


class BodyTimeout:
    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline: float | None = None  # the clock starts with the route's first read
        body_done = False

        async def receive_in_time() -> Message:
            nonlocal body_done, deadline
            if body_done:  # afterwards receive() only reports a disconnect: no limit
                return await receive()
            if deadline is None:
                deadline = loop.time() + self.seconds
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0))
            except TimeoutError:
                # Raised inside the route's body read, so its error handler answers; the
                # connection cannot be reused with half a body in it.
                raise RequestTimeout(
                    f"The request body did not arrive within {self.seconds:g} s.",
                    headers={"Connection": "close"},
                ) from None
            body_done = message["type"] != "http.request" or not message.get("more_body")
            return message

        await self.app(scope, receive_in_time, send)


def install(app: FastAPI, settings: Settings) -> None:
    """Add the middleware; the last added runs first, so security headers wrap everything."""
    # The admission gate inside the body timeout: a request waiting its turn to read (the
    # gate's receive) is not reading late; the clock starts when it reads.
    app.add_middleware(AdmissionGate)
    app.add_middleware(BodyTimeout, seconds=settings.body_timeout_seconds)
    app.add_middleware(CrossSiteGuard, allowed_origins=settings.cors_origin_list)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origin_list,
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type", "Accept"],
        expose_headers=["Retry-After", "WWW-Authenticate", "Content-Disposition"],
        max_age=600,
    )
    app.add_middleware(SecurityHeaders)
