"""uvicorn's h11 protocol with a time limit on each request's head (request line and headers).

uvicorn limits idle keep-alive connections (``timeout_keep_alive``) but not a head that arrives
byte by byte: 50 such connections would stay open forever ("slow loris"). Here a timer starts when
a connection opens and after every answer; if the next request's head is still incomplete when it
fires, the connection is closed. The body has its own limit (``middleware.BodyTimeout``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

HEAD_TIMEOUT_SECONDS = 10.0


class H11WithHeadTimeout(H11Protocol):
    head_timeout_seconds = HEAD_TIMEOUT_SECONDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_round = 0  # which wait for a head the running timer belongs to
        self._head_timer: asyncio.TimerHandle | None = None

    def _await_head(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_round += 1
        self._head_timer = self.loop.call_later(
            self.head_timeout_seconds, self._head_timed_out, self._head_round
        )

    def _head_timed_out(self, head_round: int) -> None:
        # IDLE: h11 has not seen a whole request head since the wait began.
        if head_round != self._head_round or self.transport.is_closing():
            return
        if self.conn.their_state is h11.IDLE:
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        super().connection_lost(exc)
