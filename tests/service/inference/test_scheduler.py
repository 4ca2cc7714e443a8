"""The scheduler: concurrent requests share model calls, each caller gets its own answer."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.errors import Overloaded
from service.inference.preprocess import to_model_input
from service.inference.runtime import ClassifierRuntime, Scores
from service.inference.scheduler import InferenceScheduler


class HeldRuntime:
    """A real runtime whose first model call waits for ``release``; records every batch size."""

    def __init__(self, runtime: ClassifierRuntime) -> None:
        self.runtime, self.release, self.entered = runtime, threading.Event(), threading.Event()
        self.calls: list[tuple[str, int]] = []

    def _hold(self, kind: str, images: np.ndarray) -> None:
        self.calls.append((kind, len(images)))
        self.entered.set()
        assert self.release.wait(30)

    def predict_with_features(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._hold("predict", images)
        return self.runtime.predict_with_features(images)

    def explain(self, images: np.ndarray, targets: np.ndarray) -> Any:
        self._hold("explain", images)
        if (targets == 99).any():
            raise RuntimeError("model failed")
        return self.runtime.explain(images, targets)


@pytest.fixture(scope="module")
def runtime(tiny_model_dir: Path) -> ClassifierRuntime:
    return ClassifierRuntime.load(tiny_model_dir)


def images(count: int) -> list[np.ndarray]:
    """Different images, so a mix-up between callers would show."""
    out = []
    for i in range(count):
        gray = np.full((64, 64), 20, np.uint8)
        gray[(i % 4) * 16 : (i % 4) * 16 + 16, :] = 60 * (i % 5) + 15
        out.append(to_model_input(gray, (64, 64))[None])
    return out


def held_first_call(scheduler: InferenceScheduler, held: HeldRuntime, calls: list) -> list:
    """Start ``calls`` (coroutine factories) while the model is held; release; gather.

    On a thread of its own: other tests (Playwright's sync API) may leave an event loop
    running on this one, and ``asyncio.run`` refuses to start inside it.
    """
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, _held_first_call(scheduler, held, calls)).result()


async def _held_first_call(scheduler: InferenceScheduler, held: HeldRuntime, calls: list) -> list:
    first = asyncio.ensure_future(calls[0]())
    while not held.entered.is_set():
        await asyncio.sleep(0.001)
    rest = [asyncio.ensure_future(call()) for call in calls[1:]]
    await asyncio.sleep(0.01)  # every request is queued now
    held.release.set()
    return await asyncio.gather(first, *rest, return_exceptions=True)


def test_waiting_requests_share_one_call_and_get_their_own_answers(runtime) -> None:
    held = HeldRuntime(runtime)
    scheduler = InferenceScheduler(concurrency=1, max_queue=64, retry_after_seconds=1, max_batch=4)
    batch = images(7)
    targets = [-1, 0, 1, 2, -1, 1, 0]
    calls = [
        (lambda i=i: scheduler.explain(held, batch[i], targets[i]))  # type: ignore[misc]
        for i in range(7)
    ]
    results = held_first_call(scheduler, held, calls)
    # 1 alone (it was running), then the 6 that waited, at most 4 per call
    assert held.calls == [("explain", 1), ("explain", 4), ("explain", 2)]
    for i, result in enumerate(results):
        alone = runtime.explain(batch[i], np.array([targets[i]], np.int32))
        np.testing.assert_allclose(result.probabilities, alone.probabilities, atol=1e-5)
        np.testing.assert_allclose(result.cams, alone.cams, atol=1e-4)
        assert result.targets[0] == alone.targets[0]
        assert targets[i] < 0 or result.targets[0] == targets[i]
    scheduler.shutdown()


def test_predict_and_explain_never_share_a_call(runtime) -> None:
    held = HeldRuntime(runtime)
    scheduler = InferenceScheduler(concurrency=1, max_queue=64, retry_after_seconds=1, max_batch=8)
    batch = images(5)
    calls = [
        lambda: scheduler.predict(held, batch[0]),
        lambda: scheduler.explain(held, batch[1], -1),
        lambda: scheduler.predict(held, batch[2]),
        lambda: scheduler.explain(held, batch[3], -1),
        lambda: scheduler.predict(held, batch[4]),
    ]
    results = held_first_call(scheduler, held, calls)
    assert held.calls == [("predict", 1), ("explain", 2), ("predict", 2)]
    np.testing.assert_allclose(results[4].probabilities, runtime.predict(batch[4]), atol=1e-5)
    scheduler.shutdown()


def test_requests_for_different_models_never_share_a_call(
    runtime, binary_model_dirs: list[Path]
) -> None:
    held = HeldRuntime(runtime)
    binary = HeldRuntime(ClassifierRuntime.load(binary_model_dirs[0]))
    binary.release.set()  # only the first model's first call is held
    scheduler = InferenceScheduler(concurrency=1, max_queue=64, retry_after_seconds=1, max_batch=8)
    batch = images(6)
    calls = [
        (lambda i=i: scheduler.predict(held if i % 2 == 0 else binary, batch[i]))  # type: ignore[misc]
        for i in range(6)
    ]
    results = held_first_call(scheduler, held, calls)
    assert held.calls == [("predict", 1), ("predict", 2)]  # running alone, then its 2 waiting
    assert binary.calls == [("predict", 3)]
    for i, result in enumerate(results):
        own = runtime if i % 2 == 0 else binary.runtime
        assert result.probabilities.shape == (1, 3 if i % 2 == 0 else 2)
        np.testing.assert_allclose(result.probabilities, own.predict(batch[i]), atol=1e-5)
    scheduler.shutdown()


def test_a_failing_call_fails_its_callers_only(runtime) -> None:
    held = HeldRuntime(runtime)
    scheduler = InferenceScheduler(concurrency=1, max_queue=64, retry_after_seconds=1, max_batch=2)
    batch = images(5)
    targets = [-1, 99, -1, -1, -1]  # 99 makes the (second) call fail
    calls = [
        (lambda i=i: scheduler.explain(held, batch[i], targets[i]))  # type: ignore[misc]
        for i in range(5)
    ]
    results = held_first_call(scheduler, held, calls)
    assert held.calls == [("explain", 1), ("explain", 2), ("explain", 2)]
    assert [isinstance(r, RuntimeError) for r in results] == [False, True, True, False, False]


def test_full_queue_is_refused_at_once(runtime) -> None:
    held = HeldRuntime(runtime)
    scheduler = InferenceScheduler(concurrency=1, max_queue=2, retry_after_seconds=3, max_batch=8)
    batch = images(4)
    calls = [(lambda i=i: scheduler.predict(held, batch[i])) for i in range(4)]  # type: ignore[misc]
    results = held_first_call(scheduler, held, calls)
    # one running, two waiting (the queue's size), the fourth refused with Retry-After
    assert isinstance(results[3], Overloaded)
    assert results[3].headers == {"Retry-After": "3"}
    assert all(isinstance(r, Scores) for r in results[:3])
    assert held.calls == [("predict", 1), ("predict", 2)]


def test_admission_is_bounded_by_workers_and_queue() -> None:
    scheduler = InferenceScheduler(concurrency=1, max_queue=2, retry_after_seconds=3)
    try:
        with scheduler.admit(), scheduler.admit(), scheduler.admit():
            with pytest.raises(Overloaded) as refused, scheduler.admit():
                pass
            assert refused.value.headers == {"Retry-After": "3"}
        with scheduler.admit():  # every place was given back
            pass
    finally:
        scheduler.shutdown()
