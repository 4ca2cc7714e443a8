"""Every pool of worker threads and processes the service uses, owned in one place.

Created and started in the app's lifespan (``service.main``) and shut down there; nothing
creates a pool at import time. The model's own thread lives in the inference scheduler (also
created and shut down by the lifespan).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from functools import partial
from typing import ParamSpec, TypeVar

from service.io.workers import DecodePool
from service.priority import lower_thread_priority
from service.settings import Settings

P = ParamSpec("P")
T = TypeVar("T")


class Pools:
    def __init__(self, settings: Settings) -> None:
        workers, niceness = settings.decode_concurrency, settings.work_niceness
        # Blocking CPU work of a request: Grad-CAM rendering, DICOM building and writing.
        self.cpu = ThreadPoolExecutor(
            workers, "cpu", initializer=lower_thread_priority, initargs=(niceness,)
        )
        # Rendering encodes its two PNGs side by side (OpenCV releases the GIL); the second
        # one runs here, never in ``cpu``, where the render waiting for it may hold every thread.
        self.png = ThreadPoolExecutor(
            workers, "png", initializer=lower_thread_priority, initargs=(niceness,)
        )
        # Blocking DICOMweb calls to the PACS (each bounded by CXR_DICOMWEB_TIMEOUT_SECONDS).
        self.network = ThreadPoolExecutor(4, thread_name_prefix="pacs")
        # Every file decode, in worker processes with memory and time limits.
        self.decode = DecodePool(
            workers=workers,
            memory_mb=settings.decode_memory_mb,
            timeout_seconds=settings.decode_timeout_seconds,
            niceness=niceness,
        )

    def start(self) -> None:
        self.decode.start()

    def shutdown(self) -> None:
        self.decode.close()
        self.cpu.shutdown(wait=False, cancel_futures=True)
        self.png.shutdown(wait=False, cancel_futures=True)
        self.network.shutdown(wait=False, cancel_futures=True)


async def run_in(
    executor: Executor, function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
) -> T:
    """Run blocking ``function`` in ``executor`` without blocking the event loop."""
    return await asyncio.get_running_loop().run_in_executor(
        executor, partial(function, *args, **kwargs)
    )
