"""Decoding in isolation: a small supervised pool of worker processes with per-task limits.

Image codecs are native code fed with untrusted bytes. GDCM aborts the process on some
malformed JPEG frames, a flipped bit can make a decoder allocate gigabytes, a JPEG-LS frame can
decode for seconds holding the GIL. So every decode runs in a worker process that

- has an address-space limit (``CXR_DECODE_MEMORY_MB``): an allocation beyond it fails, and
  the request gets ``413 image_too_complex``;
- gets ``CXR_DECODE_TIMEOUT_SECONDS`` per image, after which it is killed and replaced
  (``422 decode_timeout``);
- is replaced when it dies (abort, segfault): the request gets ``422 invalid_image``.

The server and every other request carry on. Workers come from a ``forkserver`` that has
already imported OpenCV, Pillow, pydicom and the codecs (this module's imports): never forked
from the server itself, which holds TensorFlow's threads, and replaced in milliseconds. Requests and
answers are pickled over a pipe; an answer is only the small arrays the request needs
(``service.io.prepared``).

``concurrent.futures.ProcessPoolExecutor`` is not used: one dead worker breaks that whole pool,
and it cannot kill one task that overruns its time.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import queue
import resource
import signal
import sys
import threading
import time
import types
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import service.io.dicom  # noqa: F401  (pydicom and its codecs: preloaded by the forkserver)
from service.errors import DecodeTimeout, ImageTooComplex, InvalidImage, ServiceError
from service.io.prepared import DecodeSpec, PreparedImage, prepare_image
from service.priority import lower_thread_priority

logger = logging.getLogger("service.decode")

Task = Callable[[bytes, DecodeSpec], PreparedImage]

_START_SECONDS = 60.0  # a worker not ready by then is broken (the forkserver imports first)
_RECYCLE_AFTER = 1000  # tasks; a fresh worker bounds heap fragmentation over a long run


@dataclass(frozen=True)
class PoolStats:
    tasks: int  # answered by a worker (an image or a ServiceError)
    crashes: int  # workers that died while decoding (or while idle)
    timeouts: int
    memory_errors: int
    started: int  # workers started, replacements included
    peak_worker_rss_mib: float


class _Worker:
    def __init__(self, process: BaseProcess, connection: Connection) -> None:
        self.process, self.connection, self.tasks = process, connection, 0

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.connection.close()


class DecodePool:
    """``prepare`` (async) or ``run`` (blocking) decode one file in a worker process.

    ``task`` is what workers run, ``prepare_image`` unless a test passes a misbehaving one.
    """

    def __init__(
        self,
        *,
        workers: int,
        memory_mb: int,
        timeout_seconds: float,
        niceness: int = 0,
        task: Task = prepare_image,
    ) -> None:
        self._size, self._task, self._niceness = workers, task, niceness
        self._memory_bytes, self._timeout = memory_mb * 2**20, timeout_seconds
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload([__name__])
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._workers: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._counts: Counter[str] = Counter()
        self._peak_rss_mib = 0.0
        # Waiting on a worker blocks a thread: these threads do only that, one per worker.
        self._dispatch = ThreadPoolExecutor(
            workers,
            thread_name_prefix="decode",
            initializer=lower_thread_priority,
            initargs=(niceness,),
        )

    def start(self) -> None:
        """Start the workers in the background; the first requests wait for them."""
        for _ in range(self._size):
            self._replace_later()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers, self._workers = list(self._workers), set()
        for worker in workers:
            worker.kill()
        self._dispatch.shutdown(wait=False, cancel_futures=True)

    @property
    def stats(self) -> PoolStats:
        with self._lock:
            counts = self._counts
            return PoolStats(
                tasks=counts["tasks"],
                crashes=counts["crashes"],
                timeouts=counts["timeouts"],
                memory_errors=counts["memory_errors"],
                started=counts["started"],
                peak_worker_rss_mib=self._peak_rss_mib,
            )

    def worker_pids(self) -> list[int]:
        with self._lock:
            return [w.process.pid for w in self._workers if w.process.pid is not None]

    async def prepare(self, data: bytes, spec: DecodeSpec) -> PreparedImage:
        """Decode without ever blocking the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._dispatch, self.run, data, spec)

    def run(self, data: bytes, spec: DecodeSpec) -> PreparedImage:
        """Decode in a worker, blocking the calling thread. Raises only ``ServiceError``s
        for anything the file does (``RuntimeError`` only if no worker can be started)."""
        worker = self._take()
        try:
            worker.connection.send((data, spec))
            answered = worker.connection.poll(self._timeout)
            reply = worker.connection.recv() if answered else None
        except Exception:  # EOF, broken pipe or a torn message: the worker died
            reply = ("died", None, 0.0)
        if reply is None:
            self._discard(worker, "timeouts")
            logger.warning("decode timed out after %.1f s; worker replaced", self._timeout)
            raise DecodeTimeout(
                f"Decoding the image took longer than {self._timeout:g} s; it was stopped."
            )
        kind, payload, peak_mib = reply
        if kind == "died":
            exit_code = worker.process.exitcode
            self._discard(worker, "crashes")
            logger.warning("decode worker died (exit code %s); replaced", exit_code)
            raise InvalidImage("The image could not be decoded: the decoder failed on it.")
        self._count("tasks", peak_mib=peak_mib)
        if isinstance(payload, ImageTooComplex):
            self._discard(worker, "memory_errors")  # its heap may be fragmented: start afresh
        else:
            self._release(worker)
        if kind == "error":
            assert isinstance(payload, ServiceError)
            raise payload
        assert isinstance(payload, PreparedImage)
        return payload

    def _take(self) -> _Worker:
        while True:
            try:
                worker = self._idle.get(timeout=_START_SECONDS)
            except queue.Empty:
                raise RuntimeError("no decode worker could be started") from None
            # An idle worker has nothing to say: readable means its end of the pipe closed.
            if worker.process.is_alive() and not worker.connection.poll(0):
                return worker
            self._discard(worker, "crashes")  # died while idle (killed from outside)

    def _release(self, worker: _Worker) -> None:
        worker.tasks += 1
        if worker.tasks >= _RECYCLE_AFTER:
            self._discard(worker, None)
        else:
            self._idle.put(worker)

    def _count(self, name: str, peak_mib: float = 0.0) -> None:
        with self._lock:
            self._counts[name] += 1
            self._peak_rss_mib = max(self._peak_rss_mib, peak_mib)

    def _discard(self, worker: _Worker, reason: str | None) -> None:
        if reason is not None:
            self._count(reason)
        with self._lock:
            self._workers.discard(worker)
        worker.kill()
        self._replace_later()

    def _replace_later(self) -> None:
        # The request that lost its worker answers at once; a new worker starts meanwhile.
        threading.Thread(target=self._add_worker, name="decode-start", daemon=True).start()

    def _add_worker(self) -> None:
        while not self._closed:
            try:
                worker = self._spawn()
            except Exception:
                logger.exception("could not start a decode worker; retrying in 1 s")
                time.sleep(1.0)
                continue
            with self._lock:
                if not self._closed:
                    self._workers.add(worker)
                    self._counts["started"] += 1
                    self._idle.put(worker)
                    return
            worker.kill()  # the pool closed while it started

    def _spawn(self) -> _Worker:
        ours, theirs = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=worker_main,
            args=(theirs, self._memory_bytes, self._task, self._niceness),
            name="cxr-decode",
            daemon=True,
        )
        _start_without_main(process)
        theirs.close()
        worker = _Worker(process, ours)
        if not ours.poll(_START_SECONDS) or ours.recv()[0] != "ready":
            worker.kill()
            raise RuntimeError("decode worker did not start")
        return worker


_MAIN_SWAP = threading.Lock()


def _start_without_main(process: BaseProcess) -> None:
    """Start ``process`` without multiprocessing running the server's ``__main__`` in it.

    multiprocessing re-imports the parent's main module in every child (unless it is a
    package's ``__main__``): a command-line tool that imports the app would load TensorFlow into
    each worker, whose address space alone then exceeds the memory limit. Workers need nothing
    from it, so it is hidden for the moment ``start`` records what the child should import.
    """
    with _MAIN_SWAP:
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            process.start()
        finally:
            sys.modules["__main__"] = main


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def worker_main(connection: Connection, memory_bytes: int, task: Task, niceness: int) -> None:
    """A worker's life: limits on, then one (data, spec) -> answer after another."""
    import cv2

    lower_thread_priority(niceness)  # the server's event loop first (service/priority.py)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group; the server decides
    cv2.setNumThreads(1)  # one decode per worker, one worker per core
    if "tensorflow" in sys.modules:  # its address space alone would eat the memory limit
        logger.warning("decode worker has TensorFlow loaded: decodes may fail for memory")
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    connection.send(("ready", None, _peak_rss_mib()))
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return  # the server is gone
        if message is None:
            return
        connection.send(_answer(task, *message))


def _answer(task: Task, data: bytes, spec: DecodeSpec) -> tuple[str, Any, float]:
    try:
        return "ok", task(data, spec), _peak_rss_mib()
    except ServiceError as exc:
        return "error", exc, _peak_rss_mib()
    except MemoryError:
        refusal = ImageTooComplex(
            "Decoding the image needs more memory than a decoder may use; send a smaller image."
        )
        return "error", refusal, _peak_rss_mib()
    except BaseException as exc:  # native codecs raise anything, even non-Exceptions
        logger.info("undecodable image (%s)", type(exc).__name__)
        invalid = InvalidImage("The image is corrupt or cannot be decoded.")
        return "error", invalid, _peak_rss_mib()
