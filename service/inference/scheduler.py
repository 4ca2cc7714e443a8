"""Runs blocking model calls off the event loop, a bounded number at a time.

On a CPU one model call at a time is fastest (TensorFlow already uses every core inside one
call), so requests wait for a small thread pool. The number waiting is bounded: past
``max_queue`` the request is refused at once with 503 + Retry-After instead of piling up
until clients time out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

from service.errors import Overloaded

T = TypeVar("T")


class InferenceScheduler:
    def __init__(self, *, concurrency: int, max_queue: int, retry_after_seconds: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="model")
        self._capacity = concurrency + max_queue
        self._retry_after = retry_after_seconds
        self._admitted = 0  # running + waiting; only touched on the event loop thread

    @property
    def admitted(self) -> int:
        return self._admitted

    async def run(self, function: Callable[..., T], *args: object) -> T:
        if self._admitted >= self._capacity:
            raise Overloaded(
                "The model queue is full; retry shortly.",
                headers={"Retry-After": str(self._retry_after)},
            )
        self._admitted += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, partial(function, *args))
        finally:
            self._admitted -= 1

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
