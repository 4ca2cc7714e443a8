"""``make bench-batch``: batch scoring throughput (images/s) of ``cxr-score`` locally and on Ray
Data with 1 and 2 actors, next to the HTTP service's ``/predict`` throughput at concurrency 16.

The same N real test-split images for every path, the same model and backend. Two rates per
path: *steady* (rows after the first, over the time since the first row: the model is loaded)
and *wall* (all rows over the whole run, start-up included: what a user waits). Ray runs on a
local Ray started here with all the machine's CPUs; each actor loads its own model.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.load import Server, cpu_model, drive, write_result

if TYPE_CHECKING:
    from service.batch.scoring import Job, Scored
    from service.settings import Settings

# TensorFlow and the service are imported inside the functions: the decode workers import this
# main module (multiprocessing forkserver), and must not load TensorFlow before their limits.


def test_files(data_dir: Path, count: int, folder: Path) -> list[str]:
    import csv

    from service.batch.files import find_files

    with (data_dir / "manifest.csv").open() as handle:
        rows = [row for row in csv.DictReader(handle) if row["split"] == "test"]
    for row in rows[:: max(1, len(rows) // count)][:count]:
        target = folder / row["label"] / Path(row["path"]).name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(data_dir / row["path"], target)
    return find_files([folder])


def rates(results: Iterator[Scored], started: float, *, streamed: bool) -> dict[str, float]:
    """``wall``: every row over the whole run, start-up included. ``steady`` (local only: the
    rows after the first over the time since it) is left out for Ray, whose rows reach the
    driver in buffered bursts, which makes that ratio meaningless."""
    stamps, errors = [], 0
    for scored in results:
        stamps.append(time.perf_counter())
        errors += scored.row.status != "ok"
    row: dict[str, float] = {
        "images": len(stamps),
        "errors": errors,
        "first_row_s": stamps[0] - started,
        "wall_s": stamps[-1] - started,
        "wall_ips": len(stamps) / (stamps[-1] - started),
    }
    if streamed and len(stamps) > 1:
        row["steady_ips"] = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    return row


def local(settings: Settings, jobs: list[Job]) -> dict[str, float]:
    from service.batch.scoring import BatchScorer, load_runtime, open_decode_pool, score_stream

    started = time.perf_counter()
    pool = open_decode_pool(settings, settings.decode_concurrency)
    try:
        scorer = BatchScorer(load_runtime(settings), settings, pool.run)
        return rates(
            score_stream(scorer, jobs, settings.decode_concurrency), started, streamed=True
        )
    finally:
        pool.close()


def on_ray(settings: Settings, jobs: list[Job], actors: int) -> dict[str, float]:
    from service.batch.on_ray import score_on_ray

    started = time.perf_counter()
    cpus = os.cpu_count() or 1
    # Each actor reserves an equal share of the CPUs, so 1 or 2 actors both fit beside the reads.
    return rates(
        score_on_ray(
            jobs, settings, explain=False, actors=actors, actor_cpus=(cpus - 0.5) / actors
        ),
        started,
        streamed=False,
    )


def http_c16(settings: Settings, files: list[str], requests: int) -> dict[str, float]:
    images = [Path(f).read_bytes() for f in files]
    env = {"CXR_MODEL_DIR": str(settings.model_dir), "CXR_BACKEND": settings.backend}
    with Server("service.main:create_app", env, factory=True) as server:
        asyncio.run(drive(server.url, "/predict", images, 16, 16))  # warm
        return asyncio.run(drive(server.url, "/predict", images, 16, requests))


def main() -> None:
    from service.batch.scoring import Job
    from service.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model-dir", type=Path, default=Settings().model_dir)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--images", type=int, default=96)
    args = parser.parse_args()
    settings = Settings(model_dir=args.model_dir, backend=args.backend, background_load=False)
    results: dict[str, Any] = {
        "machine": {"cpu": cpu_model(), "cpus": os.cpu_count()},
        "model_dir": str(args.model_dir),
        "backend": args.backend,
    }
    with tempfile.TemporaryDirectory() as folder:
        files = test_files(settings.data_dir, args.images, Path(folder))
        jobs = [Job(path) for path in files]
        print(f"{len(jobs)} test-split images", flush=True)
        results["local"] = local(settings, jobs)
        print(f"  local: {results['local']}", flush=True)
        for actors in (1, 2):
            results[f"ray_{actors}_actors"] = row = on_ray(settings, jobs, actors)
            print(f"  ray, {actors} actor(s): {row}", flush=True)
        results["http_predict_c16"] = row = http_c16(settings, files, 64)
        print(f"  HTTP /predict c=16: {row['throughput_rps']:.2f} req/s", flush=True)
    print(f"written {write_result('batch', results)}")


if __name__ == "__main__":
    main()
