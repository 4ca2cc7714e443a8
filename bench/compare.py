"""``make bench-compare``: variants of the service side by side, in one run, on one machine.

    python -m bench.compare [--rounds 8] [--requests 24]
        [--variant NAME=ENV[,ENV...]] [--variant NAME@GITREV] ...

Each variant is a server: the current code with some settings changed
(``gate-off=CXR_INPUT_GATE=off``) or another revision of the code (``before-hardening@6282dd4``,
run from a git worktree). All are
started, then measured in rounds: every round sends ``--requests`` ``/predict`` uploads at
concurrency 1 to each variant in turn (the order rotates), so a slow minute of the machine hits
every variant alike. Prints each variant's ``/predict`` p50 (and the spread of the per-round
p50s), its ratio to the first variant, and its RSS idle and at the end; writes
``bench/results/<date>-compare.json``. Without ``--variant`` it runs the comparisons the issues
ask about: the input gate's cost (gate off), the event-loop priority (nice 0) and, where that
revision exists, the code before the hardening work. (One model against three, with memory after
load: ``make bench-models``, ``bench/models.py``.)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from bench.load import REPO, Server, cpu_model, drive, rss_mib, write_result
from bench.run import test_images
from service.settings import Settings

BEFORE_HARDENING = "6282dd4"  # the last commit before decoding moved into worker processes
DEFAULT_VARIANTS = [
    "current=",
    "gate-off=CXR_INPUT_GATE=off",
    "nice-0=CXR_WORK_NICENESS=0",
    f"before-hardening@{BEFORE_HARDENING}",
]


def parse_variant(text: str, worktrees: Path) -> tuple[str, dict[str, str], Path]:
    """``NAME=K=V,K=V`` (settings) or ``NAME@REV`` (code of another revision)."""
    if "@" in text:
        name, revision = text.split("@", 1)
        folder = worktrees / name
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(folder), revision],
            cwd=REPO, check=True, capture_output=True,
        )  # fmt: skip
        return name, {}, folder
    name, _, assignments = text.partition("=")
    env = dict(item.split("=", 1) for item in assignments.split(",") if item)
    return name, env, REPO


def revision_exists(revision: str) -> bool:
    found = subprocess.run(["git", "cat-file", "-e", f"{revision}^{{commit}}"], cwd=REPO)
    return found.returncode == 0


async def one_round(
    servers: dict[str, Server], images: list[bytes], order: list[str], n: int
) -> dict[str, dict[str, float]]:
    return {name: await drive(servers[name].url, "/predict", images, 1, n) for name in order}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", type=Path, default=Settings().model_dir)
    parser.add_argument("--variant", action="append", help="NAME=ENV,... or NAME@GITREV")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--requests", type=int, default=24, help="per variant and round")
    args = parser.parse_args()
    variants = args.variant or [
        v for v in DEFAULT_VARIANTS if "@" not in v or revision_exists(v.split("@")[1])
    ]
    images = test_images(Settings().data_dir, 24)
    base_env = {"CXR_MODEL_DIR": str(args.model_dir.resolve()), "CXR_BACKGROUND_LOAD": "false"}
    samples: dict[str, list[float]] = {}
    report: dict[str, Any] = {"cpu": cpu_model(), "rounds": args.rounds, "variants": {}}
    with ExitStack() as stack, tempfile.TemporaryDirectory() as worktrees:
        servers: dict[str, Server] = {}
        for text in variants:
            name, env, cwd = parse_variant(text, Path(worktrees))
            if cwd != REPO:  # a worktree is removed with its folder; git forgets it below
                stack.callback(subprocess.run, ["git", "worktree", "prune"], cwd=REPO)
            server = Server("service.main:create_app", {**base_env, **env}, True, cwd=cwd)
            servers[name] = stack.enter_context(server)
            assert server.process is not None
            report["variants"][name] = {
                "spec": text,
                "cold_start_s": round(server.cold_start_s, 1),
                "rss_idle_mib": round(rss_mib(server.process.pid), 1),
            }
            print(f"{name}: ready in {server.cold_start_s:.1f} s", flush=True)
        names = list(servers)
        for name in names:  # warm every variant the same way before the clock runs
            asyncio.run(drive(servers[name].url, "/predict", images, 1, 8))
        for round_index in range(args.rounds):
            order = names[round_index % len(names) :] + names[: round_index % len(names)]
            results = asyncio.run(one_round(servers, images, order, args.requests))
            for name, figures in results.items():
                samples.setdefault(name, []).append(figures["p50_ms"])
                if figures["errors"]:
                    report["variants"][name]["errors"] = figures["errors"]
            print(f"round {round_index + 1}/{args.rounds}", flush=True)
        for name, server in servers.items():
            assert server.process is not None
            report["variants"][name]["rss_end_mib"] = round(rss_mib(server.process.pid), 1)
    reference = float(np.median(samples[names[0]]))
    print(f"\n/predict at concurrency 1, p50 of {args.rounds} rounds; CPU: {report['cpu']}")
    for name in names:
        p50 = float(np.median(samples[name]))
        entry = report["variants"][name]
        entry |= {
            "predict_p50_ms": round(p50, 2),
            "round_p50s_ms": [round(v, 2) for v in samples[name]],
            "ratio_to_first": round(p50 / reference, 3),
            "minus_first_ms": round(p50 - reference, 2),
        }
        print(
            f"  {name:18s} p50 {p50:7.2f} ms  x{p50 / reference:.3f}  ({p50 - reference:+.2f} ms)"
            f"  rounds {min(samples[name]):.1f}-{max(samples[name]):.1f}"
            f"  RSS idle {entry['rss_idle_mib']:.0f} MiB, end {entry['rss_end_mib']:.0f} MiB"
        )
    path = write_result("compare", report)
    print(f"wrote {path.relative_to(REPO)}; {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
