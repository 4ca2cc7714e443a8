"""Small load-generation helpers for ``bench.run``: servers in subprocesses, RSS, latencies."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
PRODUCTION = "python -m service"  # Server(app=PRODUCTION): the launcher `make serve` runs


def cpu_model() -> str:
    """The CPU's model name (every figure says which CPU gave it)."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def write_result(kind: str, report: object) -> Path:
    """``bench/results/<UTC time>-<kind>.json``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{kind}.json"
    path.write_text(json.dumps(report, indent=2, default=float) + "\n")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mib(pid: int, key: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


@dataclass
class Server:
    """A uvicorn server in a subprocess; ``cold_start_s`` is spawn -> /ready 200.

    ``app``: an ASGI app for ``uvicorn APP``, or PRODUCTION for ``python -m service``."""

    app: str
    env: dict[str, str]
    factory: bool = False
    cwd: Path = REPO  # another checkout (a git worktree) runs that checkout's code
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    cold_start_s: float = float("nan")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            self.app,
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            "--workers",
            "1",
        ]
        if self.factory:
            command.insert(3, "--factory")
        if self.app == PRODUCTION:  # the real launcher: h11 with head limits, as `make serve`
            command = [sys.executable, "-m", "service", "--port", str(self.port)]
        started = time.perf_counter()
        self.process = subprocess.Popen(command, cwd=self.cwd, env={**os.environ, **self.env})
        deadline = started + 180
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.app} exited with {self.process.returncode}")
            try:
                if httpx.get(self.url + "/ready", timeout=1).status_code == 200:
                    self.cold_start_s = time.perf_counter() - started
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.app} not ready after 180 s")

    def __exit__(self, *_: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)


class RssSampler:
    """Samples a process's RSS every 50 ms in a thread; ``peak`` is the largest seen."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mib(self.pid))
            time.sleep(0.05)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


async def drive(
    url: str, route: str, images: list[bytes], concurrency: int, requests: int
) -> dict[str, float]:
    """Send ``requests`` uploads with ``concurrency`` clients; latency percentiles in ms."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = iter(range(requests))

    async def client(http: httpx.AsyncClient) -> None:
        for index in counter:
            started = time.perf_counter()
            response = await http.post(route, files={"file": ("x", images[index % len(images)])})
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    limits = httpx.Limits(max_connections=concurrency + 4)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    values = np.array(latencies)
    return {
        "requests": requests,
        "concurrency": concurrency,
        "p50_ms": float(np.percentile(values, 50)),
        "p95_ms": float(np.percentile(values, 95)),
        "p99_ms": float(np.percentile(values, 99)),
        "throughput_rps": requests / wall,
        "errors": float(sum(n for code, n in statuses.items() if code != 200)),
    }
