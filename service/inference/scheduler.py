"""Runs model calls off the event loop, a bounded number at a time, batching concurrent requests.

On a CPU one model call at a time is fastest (the runtime already uses every core inside one
call), so requests wait in a queue served by ``concurrency`` workers. A worker takes every
waiting request of the same kind (predict or explain), up to ``max_batch``, into ONE model call:
under load, the requests that arrived during the previous call form the next batch, so batching
costs an idle service nothing (``batch_window_ms`` can add a short wait to gather more). The
default batch size is 1: on the 2-core CPU measured (bench/README.md) batches raised no backend's
service throughput; GPU hosts gain from larger ones.

The queue is bounded: when every worker is busy and ``max_queue`` requests already wait, the
request is refused at once with 503 + Retry-After instead of piling up until clients time out.
Routes take an ``admit()`` reservation before reading the request body, so under a burst the
refusal costs microseconds instead of an upload and a decode: admitted requests (reading,
decoding, waiting or in the model) never exceed what the workers and the queue can hold.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from service.errors import Overloaded
from service.inference.runtime import ClassifierRuntime, Explanation, Scores
from service.priority import lower_thread_priority

Kind = Literal["predict", "explain"]


class ModelCallObserver(Protocol):
    """Told about every model call (metrics): trunk backend, kind, images, seconds."""

    def __call__(self, backend: str, kind: Kind, images: int, seconds: float) -> None: ...


@dataclass(eq=False)  # identity: requests hold arrays, and each one is unique
class _Request:
    kind: Kind
    runtime: ClassifierRuntime
    images: np.ndarray  # (1, h, w, 3)
    target: int  # explain only; -1 = the top class
    future: asyncio.Future[Any] = field(repr=False)


class InferenceScheduler:
    def __init__(
        self,
        *,
        concurrency: int,
        max_queue: int,
        retry_after_seconds: int,
        max_batch: int = 1,
        batch_window_ms: float = 0.0,
        on_model_call: ModelCallObserver | None = None,
        niceness: int = 0,
        readers: int = 0,
    ) -> None:
        self._executor = ThreadPoolExecutor(
            max_workers=concurrency,
            thread_name_prefix="model",
            initializer=lower_thread_priority,
            initargs=(niceness,),  # the event loop first (service/priority.py)
        )
        self._concurrency, self._max_queue, self._max_batch = concurrency, max_queue, max_batch
        self._window_s = batch_window_ms / 1000
        self._retry_after = retry_after_seconds
        self._waiting: list[_Request] = []  # only touched on the event loop thread
        self._workers = 0
        self._admitted = 0  # reservations held by requests (only touched on the event loop)
        self._tasks: set[asyncio.Task[None]] = set()
        self._on_model_call = on_model_call
        # How many admitted requests may read (and then decode and infer) at once; the others
        # wait their turn before reading a byte of their body, which stays in the socket (TCP
        # holds the client back). A burst then costs the event loop little more than refusing
        # the excess, and waiting uploads cost no memory. 0: every model slot, 2 decodes, 2 more.
        self._reading = asyncio.Semaphore(readers or concurrency * max_batch + 4)

    def _overloaded(self) -> Overloaded:
        return Overloaded(
            "The model queue is full; retry shortly.",
            headers={"Retry-After": str(self._retry_after)},
        )

    def reserve(self) -> None:
        """Take a place for one request (give it back with ``release``), or 503 ``overloaded``."""
        if self._admitted >= self._max_queue + self._concurrency * self._max_batch:
            raise self._overloaded()
        self._admitted += 1

    def release(self) -> None:
        self._admitted -= 1

    async def reading_turn(self) -> None:
        """Wait until this admitted request may read its body (give it back: ``end_reading``)."""
        await self._reading.acquire()

    def end_reading(self) -> None:
        self._reading.release()

    @contextmanager
    def admit(self) -> Iterator[None]:
        """A place for one request, held while it runs; 503 ``overloaded`` when none is left."""
        self.reserve()
        try:
            yield
        finally:
            self.release()

    async def predict(self, runtime: ClassifierRuntime, images: np.ndarray) -> Scores:
        """Probabilities ``(1, classes)`` and the input gate's features for one image."""
        result: Scores = await self._submit("predict", runtime, images, -1)
        return result

    async def explain(
        self, runtime: ClassifierRuntime, images: np.ndarray, target: int
    ) -> Explanation:
        """Probabilities and the Grad-CAM map of class ``target`` (-1: the top class)."""
        result: Explanation = await self._submit("explain", runtime, images, target)
        return result

    async def _submit(
        self, kind: Kind, runtime: ClassifierRuntime, images: np.ndarray, target: int
    ) -> Any:
        idle_slots = (self._concurrency - self._workers) * self._max_batch
        if len(self._waiting) >= self._max_queue + idle_slots:  # callers without admit()
            raise self._overloaded()
        loop = asyncio.get_running_loop()
        request = _Request(kind, runtime, images, target, loop.create_future())
        self._waiting.append(request)
        if self._workers < self._concurrency:
            self._workers += 1
            task = loop.create_task(self._work())
            self._tasks.add(task)  # a reference, so the running task is not garbage-collected
            task.add_done_callback(self._tasks.discard)
        return await request.future

    @property
    def queue_depth(self) -> int:
        """Requests waiting for a model call (the running ones not counted)."""
        return len(self._waiting)

    def _next_group(self) -> list[_Request]:
        """The oldest request and the waiting ones that can share its model call."""
        first = self._waiting[0]
        group = [r for r in self._waiting if r.kind == first.kind and r.runtime is first.runtime][
            : self._max_batch
        ]
        taken = {id(r) for r in group}
        self._waiting = [r for r in self._waiting if id(r) not in taken]
        return group

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                if self._window_s and len(self._waiting) < self._max_batch:
                    await asyncio.sleep(self._window_s)
                group = [r for r in self._next_group() if not r.future.cancelled()]
                if not group:
                    continue
                started = time.perf_counter()
                try:
                    results = await loop.run_in_executor(self._executor, _run_group, group)
                except Exception as exc:  # delivered to every caller; the worker carries on
                    for request in group:
                        if not request.future.done():
                            request.future.set_exception(exc)
                    continue
                if self._on_model_call is not None:
                    first, seconds = group[0], time.perf_counter() - started
                    self._on_model_call(first.runtime.backend, first.kind, len(group), seconds)
                for request, result in zip(group, results, strict=True):
                    if not request.future.done():  # the client may have gone away
                        request.future.set_result(result)
        finally:
            self._workers -= 1

    def shutdown(self) -> None:
        for request in self._waiting:
            request.future.cancel()
        self._waiting.clear()
        self._executor.shutdown(wait=True, cancel_futures=True)


def _run_group(group: list[_Request]) -> list[Any]:
    """One model call for the whole group (runs in the model thread)."""
    runtime = group[0].runtime
    images = group[0].images if len(group) == 1 else np.concatenate([r.images for r in group])
    if group[0].kind == "predict":
        probabilities, pooled = runtime.predict_with_features(images)
        return [Scores(probabilities[i : i + 1], pooled[i : i + 1]) for i in range(len(group))]
    targets = np.array([r.target for r in group], dtype=np.int32)
    explained = runtime.explain(images, targets)
    return [
        Explanation(
            explained.probabilities[i : i + 1],
            explained.targets[i : i + 1],
            explained.cams[i : i + 1],
            explained.pooled[i : i + 1],
        )
        for i in range(len(group))
    ]
