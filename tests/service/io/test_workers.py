"""The decode pool: same pixels as in-process, and a worker that dies, hangs or overruns its
memory costs one 4xx, never the caller, the pool or the next request."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from service.errors import DecodeTimeout, ImageTooComplex, InvalidImage, UnsupportedMediaType
from service.io.prepared import DecodeSpec, prepare_image
from service.io.workers import DecodePool
from tests.service.io.misbehaving import misbehaving

SPEC = DecodeSpec(
    max_pixels=50_000_000,
    max_decoded_bytes=128 * 2**20,
    min_side=64,
    modalities=frozenset({"CR", "DX"}),
    model_size=(224, 224),
    heatmap_max_side=512,
    display=True,
)


@pytest.fixture(scope="module")
def pool() -> Iterator[DecodePool]:
    decode_pool = DecodePool(workers=2, memory_mb=1536, timeout_seconds=2, task=misbehaving)
    decode_pool.start()
    yield decode_pool
    decode_pool.close()


@pytest.fixture(scope="module")
def some_files(originals: Path) -> list[bytes]:
    names = ["normal/IM-0279-0001.jpeg", "covid/16745_7_1.png", "dicom/*.dcm"]
    return [next(originals.glob(name)).read_bytes() for name in names]


def test_same_pixels_as_in_process(pool: DecodePool, some_files: list[bytes]) -> None:
    for data in some_files:
        isolated, local = pool.run(data, SPEC), prepare_image(data, SPEC)
        assert (isolated.format, isolated.width, isolated.height) == (
            local.format,
            local.width,
            local.height,
        )
        np.testing.assert_array_equal(isolated.model_gray, local.model_gray)
        assert isolated.display_gray is not None and local.display_gray is not None
        np.testing.assert_array_equal(isolated.display_gray, local.display_gray)


def test_refusals_come_back_as_service_errors(pool: DecodePool) -> None:
    with pytest.raises(UnsupportedMediaType):
        pool.run(b"GIF89a" + bytes(100), SPEC)
    with pytest.raises(InvalidImage):
        pool.run(b"\x89PNG\r\n\x1a\n" + bytes(100), SPEC)


def test_aborting_worker_is_replaced(pool: DecodePool, some_files: list[bytes]) -> None:
    crashes = pool.stats.crashes
    with pytest.raises(InvalidImage, match="decoder failed"):
        pool.run(b"ABORT", SPEC)
    assert pool.stats.crashes == crashes + 1
    assert pool.run(some_files[0], SPEC).width == 1616  # the pool carries on
    assert pool.run(some_files[1], SPEC).width == 623


def test_hanging_worker_is_killed_after_the_timeout(
    pool: DecodePool, some_files: list[bytes], tmp_path: Path
) -> None:
    timeouts = pool.stats.timeouts
    with pytest.raises(DecodeTimeout):
        pool.run(b"SLEEP " + str(tmp_path / "started").encode(), SPEC)
    assert pool.stats.timeouts == timeouts + 1
    assert pool.run(some_files[0], SPEC).width == 1616


def test_memory_limit_gives_image_too_complex(pool: DecodePool, some_files: list[bytes]) -> None:
    with pytest.raises(ImageTooComplex):
        pool.run(b"HOG", SPEC)
    assert pool.run(some_files[2], SPEC).format == "dicom"


def test_worker_killed_while_idle_is_not_the_next_request_s_problem(
    pool: DecodePool, some_files: list[bytes]
) -> None:
    killed = pool.worker_pids()
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    for pid in killed:  # gone (reaped by the forkserver) before the next request
        while Path(f"/proc/{pid}").exists():
            time.sleep(0.01)
    assert pool.run(some_files[0], SPEC).width == 1616


def test_event_loop_runs_while_a_decode_hangs(pool: DecodePool, tmp_path: Path) -> None:
    """The loop keeps running other work for as long as a worker is busy."""
    started = tmp_path / "started"

    async def scenario() -> int:
        slow = asyncio.ensure_future(pool.prepare(b"SLEEP " + str(started).encode(), SPEC))
        ticks = 0
        while not started.exists() or ticks < 5:  # the loop keeps turning meanwhile
            await asyncio.sleep(0.01)
            ticks += 1
        assert not slow.done()
        with pytest.raises(DecodeTimeout):
            await slow
        return ticks

    with ThreadPoolExecutor(1) as own_thread:  # Playwright's tests may leave a loop running here
        assert own_thread.submit(asyncio.run, scenario()).result() >= 5


def test_workers_never_load_tensorflow(pool: DecodePool) -> None:
    """Workers fork from a forkserver that imported the codecs only (no TensorFlow threads)."""
    for pid in pool.worker_pids():
        maps = Path(f"/proc/{pid}/maps").read_text()
        assert "tensorflow" not in maps and "_pywrap" not in maps, pid
    assert sys.platform == "linux"


def test_the_main_module_is_not_run_in_workers(tmp_path: Path, some_files: list[bytes]) -> None:
    """multiprocessing would run a tool's main module (and the app and TensorFlow it imports)
    in every worker; the pool hides it."""
    (tmp_path / "image.jpeg").write_bytes(some_files[0])
    script = tmp_path / "tool.py"
    script.write_text(
        "import os, pathlib, sys\n"
        "here = pathlib.Path(sys.argv[1])\n"
        "(here / f'ran-in-{os.getpid()}').touch()\n"
        "if __name__ == '__main__':\n"
        "    from service.io.workers import DecodePool\n"
        "    from tests.service.io.test_workers import SPEC\n"
        "    pool = DecodePool(workers=1, memory_mb=1536, timeout_seconds=30)\n"
        "    pool.start()\n"
        "    print(pool.run((here / 'image.jpeg').read_bytes(), SPEC).width)\n"
        "    pool.close()\n"
    )
    repo = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo)},
        timeout=120,
    )
    assert done.stdout.strip() == "1616", done.stderr
    assert len(list(tmp_path.glob("ran-in-*"))) == 1  # the tool itself, no worker
