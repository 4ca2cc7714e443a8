"""Admission before work and the body timeout, with bodies that arrive late or never."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from service.main import create_app
from service.settings import Settings
from tests.service.api.raw_asgi import call, running_app, stalled_body, whole_body

T = TypeVar("T")
UPLOAD = {"content-type": "image/png", "content-length": "100000"}


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """On a thread of its own: Playwright may leave an event loop running on this one."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


def test_full_queue_answers_503_before_reading_the_body(
    tiny_model_dir: Path, raster_originals: list[Path]
) -> None:
    # One place in all (one model worker, no queue): the first upload holds it while its body
    # never arrives; the second is refused without its body being read at all.
    settings = Settings(model_dir=tiny_model_dir, background_load=False, max_queue=0)
    app = create_app(settings)
    png = next(p for p in raster_originals if p.suffix == ".png").read_bytes()

    async def scenario() -> None:
        async with running_app(app) as state:
            reading = asyncio.Event()
            holder = asyncio.create_task(
                call(app, state, "POST", "/predict", stalled_body(b"\x89PNG", on_call=reading.set),
                     headers=UPLOAD)
            )  # fmt: skip
            await reading.wait()
            second_reads: list[int] = []
            refused = await call(
                app, state, "POST", "/predict",
                stalled_body(on_call=lambda: second_reads.append(1)), headers=UPLOAD,
            )  # fmt: skip
            assert refused.status == 503, refused.body
            assert b'"overloaded"' in refused.body
            assert refused.headers["retry-after"] == "1"
            assert second_reads == []  # refused before the body was touched
            holder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await holder
            served = await call(
                app, state, "POST", "/predict", whole_body(png),
                headers={"content-type": "image/png", "content-length": str(len(png))},
            )  # fmt: skip
            assert served.status == 200, served.body  # the place was given back

    run(scenario())


def test_stalled_body_gets_408_while_others_are_served(tiny_model_dir: Path) -> None:
    settings = Settings(model_dir=tiny_model_dir, background_load=False, body_timeout_seconds=0.5)
    app = create_app(settings)

    async def scenario() -> None:
        async with running_app(app) as state:
            order: list[str] = []

            async def stalled() -> None:
                answer = await call(app, state, "POST", "/explain", stalled_body(b"\x89PNG"),
                                    headers=UPLOAD)  # fmt: skip
                assert answer.status == 408, answer.body
                assert b'"request_timeout"' in answer.body
                assert answer.headers["connection"] == "close"
                order.append("stalled")

            async def health() -> None:
                answer = await call(app, state, "GET", "/health", whole_body(b""))
                assert answer.status == 200
                order.append("health")

            await asyncio.gather(stalled(), health())
            assert order == ["health", "stalled"]

    run(scenario())


def test_client_leaving_mid_upload_is_not_an_internal_error(tiny_model_dir: Path) -> None:
    app = create_app(Settings(model_dir=tiny_model_dir, background_load=False))

    async def scenario() -> None:
        async with running_app(app) as state:
            sent = False

            async def receive() -> dict[str, Any]:
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": b"\x89PNG", "more_body": True}
                return {"type": "http.disconnect"}

            answer = await call(app, state, "POST", "/predict", receive, headers=UPLOAD)
            assert answer.status == 499, answer.body
            assert b'"client_closed_request"' in answer.body

    run(scenario())


def test_admitted_requests_read_their_bodies_in_turn(
    tiny_model_dir: Path, raster_originals: list[Path]
) -> None:
    # One reading turn: the second upload's body is not touched while the first one reads, and
    # its wait for the turn does not count against its body timeout.
    settings = Settings(
        model_dir=tiny_model_dir, background_load=False, reading_requests=1,
        body_timeout_seconds=0.5,
    )  # fmt: skip
    app = create_app(settings)
    png = next(p for p in raster_originals if p.suffix == ".png").read_bytes()
    events: list[str] = []

    async def scenario() -> None:
        async with running_app(app) as state:
            reading = asyncio.Event()

            async def first() -> None:
                stalled = stalled_body(b"\x89PNG", on_call=reading.set)
                answer = await call(app, state, "POST", "/predict", stalled, headers=UPLOAD)
                events.append(f"first {answer.status}")

            async def second() -> None:
                await reading.wait()
                body = whole_body(png)

                async def receive() -> dict[str, Any]:
                    events.append("second reads")
                    return await body()

                answer = await call(app, state, "POST", "/predict", receive,
                                    headers={"content-type": "image/png",
                                             "content-length": str(len(png))})  # fmt: skip
                events.append(f"second {answer.status}")

            await asyncio.gather(first(), second())

    run(scenario())
    assert events[0] == "first 408"  # the stalled one timed out while holding the turn
    assert events[1] == "second reads"  # only then did the second one read,
    assert events[-1] == "second 200"  # and its 0.5 s wait did not time it out
