"""``make bench-models``: the service with one model against the same service with three.

    python -m bench.models [--model-dir models/cxr-vgg16-3class]
                           [--extra-model-dirs models/cxr-vgg16-covid-vs-normal,...]
                           [--requests 200] [--exercise 8]

Starts the real service (``python -m service``) twice in one run: with the default model alone
(``CXR_EXTRA_MODEL_DIRS=""``) and with the extra models (default: the two binary models in
``models/``). For each: RSS of the server process (and with its decode workers) once ready
(idle), then every served model answers ``--exercise`` ``/predict`` and ``/explain`` requests,
then ``--requests`` sequential ``/predict`` requests of the default model (concurrency 1) give
its p50, then RSS after that load (and the peak). Prints both and the ratios; the target is a
default-model p50 no more than 1.1x with three models. Writes
``bench/results/<date>-models.json``.

When an extra folder is missing (the binary models not trained yet), ``--stand-ins`` serves
copies of the default model under other names instead (hard links, so no disk is used): the
same memory and work per model as a VGG16 binary model, give or take the head.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.load import (
    PRODUCTION,
    REPO,
    RESULTS,
    RssSampler,
    Server,
    cpu_model,
    rss_mib,
    write_result,
)
from bench.soak import percentiles, real_images, tree_rss_mib
from service.settings import Settings


def stand_ins(model_dir: Path, count: int, folder: Path) -> list[Path]:
    """``count`` copies of ``model_dir`` (hard links where possible) with other model names."""
    made = []
    metadata = json.loads((model_dir / "metadata.json").read_text())
    for number in range(1, count + 1):
        target = folder / f"stand-in-{number}"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(model_dir, target, copy_function=_link_or_copy)
        (target / "metadata.json").unlink()  # a link: write a file of its own
        renamed = {**metadata, "name": f"{metadata['name']}-stand-in-{number}"}
        (target / "metadata.json").write_text(json.dumps(renamed, indent=2) + "\n")
        made.append(target)
    return made


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def measure(
    model_dir: Path, extras: list[Path], images: list[bytes], requests: int, exercise: int
) -> dict[str, Any]:
    env = {
        "CXR_MODEL_DIR": str(model_dir),
        "CXR_EXTRA_MODEL_DIRS": ",".join(str(p) for p in extras),
        "CXR_BACKGROUND_LOAD": "false",
    }
    with Server(app=PRODUCTION, env=env) as server:
        assert server.process is not None
        pid = server.process.pid
        with httpx.Client(base_url=server.url, timeout=120) as http:
            models = [m["name"] for m in http.get("/models").json()["models"]]
            idle = {"server_mib": rss_mib(pid), "with_workers_mib": tree_rss_mib(pid)}
            with RssSampler(pid) as sampler:
                for name in models:
                    for i in range(exercise):
                        for route in ("/predict", "/explain"):
                            data = images[i % len(images)]
                            response = http.post(
                                route, params={"model": name}, files={"file": ("x", data)}
                            )
                            response.raise_for_status()
                latencies = []
                for i in range(requests):
                    began = time.perf_counter()
                    response = http.post("/predict", files={"file": ("x", images[i % len(images)])})
                    response.raise_for_status()
                    latencies.append((time.perf_counter() - began) * 1000)
            loaded = {
                "server_mib": rss_mib(pid),
                "with_workers_mib": tree_rss_mib(pid),
                "peak_server_mib": sampler.peak,
            }
    return {
        "models": models,
        "cold_start_s": round(server.cold_start_s, 1),
        "rss_idle": {k: round(v, 1) for k, v in idle.items()},
        "rss_after_load": {k: round(v, 1) for k, v in loaded.items()},
        "default_predict_c1": percentiles(latencies),
        "requests": requests,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    settings = Settings()
    parser.add_argument("--model-dir", type=Path, default=settings.model_dir)
    parser.add_argument(
        "--extra-model-dirs",
        default=",".join(str(p) for p in Settings.model_construct().extra_model_dir_list),
        help="comma-separated; default: the two binary models in models/",
    )
    parser.add_argument("--stand-ins", action="store_true", help="copies for missing folders")
    parser.add_argument("--requests", type=int, default=200, help="/predict requests, c=1")
    parser.add_argument("--exercise", type=int, default=8, help="requests per model and route")
    parser.add_argument("--images", type=int, default=32)
    args = parser.parse_args()

    extras = [Path(p) for p in args.extra_model_dirs.split(",") if p.strip()]
    missing = [p for p in extras if not (p / "metadata.json").is_file()]
    note = None
    if missing:
        if not args.stand_ins:
            raise SystemExit(
                f"Missing model folders: {', '.join(map(str, missing))}. Copy them there, pass "
                "--extra-model-dirs, or --stand-ins to serve copies of the default model instead."
            )
        present = [p for p in extras if p not in missing]
        folder = RESULTS / "tmp" / "stand-ins"
        folder.mkdir(parents=True, exist_ok=True)
        extras = present + stand_ins(args.model_dir, len(missing), folder)
        note = f"stand-ins (copies of the default model) for: {', '.join(map(str, missing))}"

    images = real_images(settings.data_dir, args.images)
    one = measure(args.model_dir, [], images, args.requests, args.exercise)
    many = measure(args.model_dir, extras, images, args.requests, args.exercise)
    ratio = many["default_predict_c1"]["p50_ms"] / one["default_predict_c1"]["p50_ms"]
    rss_ratio = many["rss_after_load"]["server_mib"] / one["rss_after_load"]["server_mib"]
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "cpu": cpu_model()},
        "note": note,
        "one_model": one,
        f"{len(many['models'])}_models": many,
        "p50_ratio": round(ratio, 3),
        "p50_target": 1.1,
        "rss_after_load_ratio": round(rss_ratio, 3),
    }
    for label, run in (("1 model", one), (f"{len(many['models'])} models", many)):
        idle, loaded = run["rss_idle"], run["rss_after_load"]
        print(
            f"{label:>9}: RSS idle {idle['server_mib']:.0f} MiB "
            f"({idle['with_workers_mib']:.0f} with decode workers), after load "
            f"{loaded['server_mib']:.0f} MiB (peak {loaded['peak_server_mib']:.0f}); default "
            f"/predict c=1 p50 {run['default_predict_c1']['p50_ms']} ms "
            f"({run['requests']} requests); start {run['cold_start_s']} s"
        )
    verdict = "within" if ratio <= 1.1 else "OVER"
    print(f"p50 ratio {ratio:.3f}x ({verdict} the 1.1x target); RSS ratio {rss_ratio:.2f}x")
    if note:
        print(f"note: {note}")
    out = write_result("models", report)
    print(f"written: {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
