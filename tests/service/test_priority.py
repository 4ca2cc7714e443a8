"""Work threads yield the CPU to the event loop (service/priority.py)."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from service.priority import lower_other_threads, lower_thread_priority

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice")


def _nice_of(tid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, tid)


def _in_thread(function, *args) -> dict[str, int]:
    seen: dict[str, int] = {}

    def body() -> None:
        function(*args)
        seen["tid"] = threading.get_native_id()
        seen["nice"] = _nice_of(seen["tid"])
        child = threading.Thread(target=lambda: seen.update(child=_nice_of(0)))
        child.start()
        child.join()

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    return seen


def test_a_lowered_thread_and_the_threads_it_starts_run_at_the_niceness() -> None:
    before = _nice_of(threading.get_native_id())
    seen = _in_thread(lower_thread_priority, before + 7)
    assert seen["nice"] == before + 7
    assert seen["child"] == before + 7  # native pools created later inherit it
    assert _nice_of(threading.get_native_id()) == before  # the caller is untouched


def test_zero_leaves_the_priority_alone() -> None:
    before = _nice_of(threading.get_native_id())
    assert _in_thread(lower_thread_priority, 0)["nice"] == before


def test_other_threads_are_lowered_and_the_kept_one_is_not() -> None:
    before = _nice_of(threading.get_native_id())
    release, started = threading.Event(), threading.Event()
    tids: list[int] = []

    def idle() -> None:
        tids.append(threading.get_native_id())
        started.set()
        release.wait(10)

    worker = threading.Thread(target=idle)
    worker.start()
    started.wait(10)
    try:
        assert lower_other_threads(before + 3, keep=threading.get_native_id()) >= 2
        assert _nice_of(tids[0]) == before + 3
        assert _nice_of(threading.get_native_id()) == before
    finally:
        release.set()
        worker.join()
