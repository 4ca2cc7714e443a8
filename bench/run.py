"""``make bench``: the service vs the bare model vs the naive reference server, one run.

    python -m bench.run [--model-dir models/cxr-vgg16-3class] [--backends tensorflow] [--quick]

Starts the real service with the shipped model for each backend, drives ``/predict`` and
``/explain`` with real test-split images at concurrency 1, 4 and 16 (the 16 run twice, to see
memory growth), measures the bare compiled model in-process (batch 1 and 16) and the naive
reference server (``bench/naive_server.py``), prints a table with ratios and writes
``bench/results/<date>-<backend>.json``. Numbers, not pass/fail: read them.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.load import RESULTS, RssSampler, Server, drive, rss_mib
from service.inference.artifact import read_metadata
from service.inference.backends import TENSORFLOW, fast_trunks
from service.inference.preprocess import to_model_batch
from service.inference.runtime import ClassifierRuntime
from service.io.decode import decode_image
from service.settings import Settings
from training.fast_export import median_ms


def test_images(data_dir: Path, count: int) -> list[bytes]:
    with (data_dir / "manifest.csv").open() as handle:
        rows = [row for row in csv.DictReader(handle) if row["split"] == "test"]
    rows = rows[:: max(1, len(rows) // count)][:count]
    return [(data_dir / row["path"]).read_bytes() for row in rows]


def bare_model(
    model_dir: Path, backend: str, images: list[bytes], repeats: int
) -> dict[str, float]:
    runtime = ClassifierRuntime.load(model_dir, backend=backend)
    runtime.warm_up()
    grays = [decode_image(data, max_pixels=50_000_000).gray for data in images[:16]]
    batch16 = to_model_batch((grays * 16)[:16], runtime.input_size)
    single = batch16[:1]
    batch1 = median_ms(lambda: runtime.predict(single), repeats)
    per_image_16 = median_ms(lambda: runtime.predict(batch16), max(2, repeats // 8)) / 16
    return {
        "batch1_ms": batch1,
        "batch16_ms_per_image": per_image_16,
        "best_throughput_ips": 1000 / min(batch1, per_image_16),
    }


def load_phases(
    server: Server, images: list[bytes], plan: list[tuple[str, int, int]]
) -> list[dict[str, Any]]:
    assert server.process is not None
    rows = []
    for route, concurrency, requests in plan:
        asyncio.run(drive(server.url, route, images, concurrency, max(4, requests // 8)))  # warm
        with RssSampler(server.process.pid) as rss:
            row = asyncio.run(drive(server.url, route, images, concurrency, requests))
        row.update(route=route, peak_rss_mib=rss.peak)
        rows.append(row)
        print(
            f"  {route} c={concurrency}: p50 {row['p50_ms']:.1f} ms, p95 {row['p95_ms']:.1f}, "
            f"{row['throughput_rps']:.2f} req/s, errors {row['errors']:.0f}, "
            f"peak RSS {rss.peak:.0f} MiB",
            flush=True,
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Settings().model_dir)
    parser.add_argument(
        "--backends", nargs="+", default=None, help="default: tensorflow + every exported trunk"
    )
    parser.add_argument("--quick", action="store_true", help="fewer requests (smoke run)")
    args = parser.parse_args()
    scale = 0.25 if args.quick else 1.0
    if args.backends is None:
        args.backends = [TENSORFLOW, *fast_trunks(read_metadata(args.model_dir))]
    images = test_images(Settings().data_dir, 32)
    plan = [
        (route, c, int(n * scale))
        for route in ("/predict", "/explain")
        for c, n in ((1, 40), (4, 48), (16, 64), (16, 64))
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")

    print("naive reference server (sync route, model.predict per request)", flush=True)
    naive_env = {"CXR_MODEL_DIR": str(args.model_dir)}
    with Server("bench.naive_server:app", naive_env) as naive:
        naive_rows = load_phases(
            naive, images, [("/predict", 1, int(24 * scale)), ("/predict", 16, int(48 * scale))]
        )
    for backend in args.backends:
        print(f"bare model in-process, backend {backend}", flush=True)
        bare = bare_model(args.model_dir, backend, images, repeats=int(40 * scale))
        print(f"  {bare}", flush=True)
        print(f"service, backend {backend}", flush=True)
        env = {"CXR_MODEL_DIR": str(args.model_dir), "CXR_BACKEND": backend}
        with Server("service.main:create_app", env, factory=True) as server:
            assert server.process is not None
            idle_rss = rss_mib(server.process.pid)
            rows = load_phases(server, images, plan)
        by = {(r["route"], r["concurrency"]): r for r in rows}  # the later c=16 run wins
        c16_runs = [r for r in rows if r["route"] == "/predict" and r["concurrency"] == 16]
        ratios = {
            "predict_p50_over_bare_batch1": by[("/predict", 1)]["p50_ms"] / bare["batch1_ms"],
            "explain_p50_over_predict_p50": by[("/explain", 1)]["p50_ms"]
            / by[("/predict", 1)]["p50_ms"],
            "c16_throughput_over_bare_best": by[("/predict", 16)]["throughput_rps"]
            / bare["best_throughput_ips"],
            "c16_throughput_over_naive_c16": by[("/predict", 16)]["throughput_rps"]
            / naive_rows[1]["throughput_rps"],
            "peak_rss_growth_second_c16_run_mib": c16_runs[1]["peak_rss_mib"]
            - c16_runs[0]["peak_rss_mib"],
        }
        result = {
            "date": stamp,
            "backend": backend,
            "model_dir": str(args.model_dir),
            "machine": {
                "cpus": os.cpu_count(),
                "processor": platform.processor(),
                "python": platform.python_version(),
            },
            "cold_start_to_ready_s": server.cold_start_s,
            "idle_rss_mib": idle_rss,
            "bare_model": bare,
            "naive_server": naive_rows,
            "service": rows,
            "ratios": ratios,
        }
        path = RESULTS / f"{stamp}-{backend}.json"
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(
            f"cold start {server.cold_start_s:.1f} s; ratios "
            f"{json.dumps({k: round(v, 3) for k, v in ratios.items()})}\nwrote {path}"
        )


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
