"""Drive the ASGI app directly, with request bodies that arrive late or never.

TestClient and httpx always send a whole body; a stalled or short upload needs its own
``receive``. ``running_app`` runs the lifespan the way uvicorn does (its state in every scope).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

Receive = Callable[[], Awaitable[dict[str, Any]]]


@dataclass
class Answer:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@asynccontextmanager
async def running_app(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    async with app.router.lifespan_context(app) as state:
        yield dict(state or {})


def stalled_body(first: bytes = b"", *, on_call: Callable[[], None] | None = None) -> Receive:
    """Sends ``first`` with more to come, then nothing ever again."""
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if on_call:
            on_call()
        if not sent:
            sent = True
            return {"type": "http.request", "body": first, "more_body": True}
        await asyncio.Event().wait()  # never set
        raise AssertionError("unreachable")

    return receive


def whole_body(body: bytes) -> Receive:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return receive


async def call(
    app: FastAPI,
    state: dict[str, Any],
    method: str,
    path: str,
    receive: Receive,
    headers: dict[str, str] | None = None,
    server: tuple[str, int] = ("127.0.0.1", 8000),
) -> Answer:
    answer = Answer()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("127.0.0.1", 50000),
        "server": server,
        "state": dict(state),
    }

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer.status = message["status"]
            answer.headers = {k.decode().lower(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            answer.body += message.get("body", b"")

    await app(scope, receive, send)
    return answer
