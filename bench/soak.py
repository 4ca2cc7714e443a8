"""``make soak``: a long mixed load against the real service; errors, latency and memory drift.

    python -m bench.soak [--minutes 30] [--concurrency 8] [--model-dir models/cxr-vgg16-3class]

Starts the real service (uvicorn with the app factory, the shipped model) on a free loopback
port, then for N
minutes (``SOAK_MINUTES``, default 30) ``concurrency`` clients send real test-split images from
the data folder to ``/predict`` and ``/explain`` (half each, in a fixed random order) while one
more client asks ``/health`` four times a second. Prints requests, errors, latency percentiles,
the server's RSS at minute 1 and at the end (drift %), and the ``/health`` p99; writes the same
to ``bench/results/<date>-soak.json``. Numbers, not pass/fail: read them.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.load import PRODUCTION, REPO, Server, cpu_model, rss_mib, write_result
from service.settings import Settings


def real_images(data_dir: Path, count: int) -> list[bytes]:
    """``count`` test-split files, spread over the manifest (every source and class)."""
    with (data_dir / "manifest.csv").open() as handle:
        rows = [row for row in csv.DictReader(handle) if row["split"] == "test"]
    rows = rows[:: max(1, len(rows) // count)][:count]
    return [(data_dir / row["path"]).read_bytes() for row in rows]


def tree_rss_mib(pid: int) -> float:
    """RSS of the server and its child processes (the decode workers), MiB."""
    total = rss_mib(pid)
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return total
    return total + sum(tree_rss_mib(int(child)) for child in children)


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50_ms": float("nan"), "p95_ms": float("nan"), "p99_ms": float("nan")}
    array = np.array(values)
    return {f"p{q}_ms": round(float(np.percentile(array, q)), 1) for q in (50, 95, 99)}


def start_service(model_dir: Path, extra_env: dict[str, str] | None = None) -> Server:
    env = {"CXR_MODEL_DIR": str(model_dir), "CXR_BACKGROUND_LOAD": "false", **(extra_env or {})}
    return Server(app=PRODUCTION, env=env)  # what `make serve` runs (h11, head timeout)


async def soak(
    url: str, pid: int, images: list[bytes], minutes: float, concurrency: int
) -> dict[str, Any]:
    latencies: dict[str, list[float]] = {"/predict": [], "/explain": []}
    errors: dict[str, int] = {}
    health: list[float] = []
    rss: dict[str, float] = {}
    started = time.perf_counter()
    deadline = started + minutes * 60
    order = random.Random(0)

    async def client(http: httpx.AsyncClient, number: int) -> None:
        index = number
        while time.perf_counter() < deadline:
            route = "/predict" if order.random() < 0.5 else "/explain"
            data = images[index % len(images)]
            index += concurrency
            began = time.perf_counter()
            try:
                response = await http.post(route, files={"file": ("x", data)})
                status = str(response.status_code)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            if status == "200":
                latencies[route].append((time.perf_counter() - began) * 1000)
            else:
                errors[f"{route} {status}"] = errors.get(f"{route} {status}", 0) + 1

    async def probe(http: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            response = await http.get("/health")
            if response.status_code == 200:
                health.append((time.perf_counter() - began) * 1000)
            if "minute_1" not in rss and time.perf_counter() - started >= 60:
                rss["minute_1"], rss["tree_minute_1"] = rss_mib(pid), tree_rss_mib(pid)
            await asyncio.sleep(0.25)

    limits = httpx.Limits(max_connections=concurrency + 2)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        await asyncio.gather(probe(http), *(client(http, n) for n in range(concurrency)))
    wall = time.perf_counter() - started
    rss["end"], rss["tree_end"] = rss_mib(pid), tree_rss_mib(pid)
    every = latencies["/predict"] + latencies["/explain"]
    first = rss.get("minute_1", float("nan"))
    return {
        "minutes": round(wall / 60, 2),
        "concurrency": concurrency,
        "requests": len(every) + sum(errors.values()),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "throughput_rps": round(len(every) / wall, 2),
        "all": percentiles(every),
        "predict": {"requests": len(latencies["/predict"]), **percentiles(latencies["/predict"])},
        "explain": {"requests": len(latencies["/explain"]), **percentiles(latencies["/explain"])},
        "rss_mib_minute_1": round(first, 1),
        "rss_mib_end": round(rss["end"], 1),
        "rss_drift_percent": round((rss["end"] - first) / first * 100, 2),
        "rss_mib_with_workers_minute_1": round(rss.get("tree_minute_1", float("nan")), 1),
        "rss_mib_with_workers_end": round(rss["tree_end"], 1),
        "health": {"probes": len(health), **percentiles(health)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", 30)))
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--model-dir", type=Path, default=Settings().model_dir)
    parser.add_argument("--images", type=int, default=48)
    args = parser.parse_args()
    images = real_images(Settings().data_dir, args.images)
    with start_service(args.model_dir) as server:
        assert server.process is not None
        report = asyncio.run(
            soak(server.url, server.process.pid, images, args.minutes, args.concurrency)
        )
    report.update(
        model_dir=str(args.model_dir),
        images=len(images),
        cpu=f"{cpu_model()}, {os.cpu_count()} logical CPUs",
        date=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    out = write_result("soak", report)
    print(
        f"soak {report['minutes']} min at c{args.concurrency} on {report['cpu']}\n"
        f"  requests {report['requests']}  errors {report['errors']} {report['error_kinds']}"
        f"  throughput {report['throughput_rps']} req/s\n"
        f"  latency ms  all {report['all']}\n"
        f"              /predict {report['predict']}\n"
        f"              /explain {report['explain']}\n"
        f"  server RSS  minute 1 {report['rss_mib_minute_1']} MiB, end {report['rss_mib_end']}"
        f" MiB, drift {report['rss_drift_percent']} %"
        f" (with decode workers: {report['rss_mib_with_workers_minute_1']} ->"
        f" {report['rss_mib_with_workers_end']} MiB)\n"
        f"  /health     {report['health']}\n"
        f"  written to {out.relative_to(REPO)}"
    )


if __name__ == "__main__":
    main()
