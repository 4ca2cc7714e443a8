"""The inference protocols' error shape on their paths: ``{"error": "<message>"}``.

The service renders every error as ``{"error": {"code", "message"}}``, wherever it is raised
(routes, dependencies such as authentication, the admission gate, validation, unknown paths).
KServe v2 / Triton and TF Serving / KServe v1 clients expect the message as a string, so for
``/v2`` and ``/v1/models/`` this ASGI middleware rewrites an error answer's JSON body (small,
bounded), keeping its status and headers. It sits outside the access log middleware, which
therefore still records each error's ``code``.
"""

from __future__ import annotations

import json

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PROTOCOL_PATHS = ("/v2/", "/v1/models/")
_LIMIT = 64 * 1024


def protocol_path(path: str) -> bool:
    return path == "/v2" or path.startswith(PROTOCOL_PATHS)


def rewrite(body: bytes) -> bytes:
    try:
        payload = json.loads(body)
        message = payload["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return body
    return json.dumps({"error": str(message)}).encode()


class ProtocolErrors:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not protocol_path(str(scope.get("path", ""))):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def send_rewritten(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                json_error = message["status"] >= 400 and headers.get(
                    "content-type", ""
                ).startswith("application/json")
                if not json_error:
                    await send(message)
                    return
                start = message
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body") and sum(map(len, chunks)) <= _LIMIT:
                return
            body = b"".join(chunks)
            if not message.get("more_body"):
                body = rewrite(body)
            headers = MutableHeaders(scope=start)
            headers["content-length"] = str(len(body))
            if message.get("more_body"):  # too large to be one of ours: pass it on unchanged
                del headers["content-length"]
            await send(start)
            await send(
                {
                    "type": "http.response.body",
                    "body": body,
                    "more_body": message.get("more_body", False),
                }
            )
            start = None

        await self.app(scope, receive, send_rewritten)
