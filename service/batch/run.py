"""What ``cxr-score`` does once its arguments are parsed (``service.batch.cli``): find the files,
skip those already in the output, score the rest (locally or on Ray) in flushed chunks under a
progress bar, then write the report."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from types import FrameType

from service.batch.files import Labeller, find_files, folder_labeller, manifest_labeller
from service.batch.output import RowWriter, open_writer, read_rows, scored_paths
from service.batch.report import GalleryItem, gallery_rows, write_report
from service.batch.rows import ScoreRow
from service.batch.scoring import (
    BatchScorer,
    Job,
    Scored,
    load_runtime,
    open_decode_pool,
    score_stream,
)
from service.inference.artifact import read_metadata
from service.settings import DISCLAIMER, Settings

logger = logging.getLogger("service.batch")

_CHUNK_ROWS = 32  # rows per flushed chunk: what an interruption can lose at most...
_CHUNK_SECONDS = 5.0  # ...or what this many seconds scored


class _Interrupt:
    """The first Ctrl-C asks to stop after the file at hand; the second stops at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nStopping after the current file (Ctrl-C again to stop now)...", file=sys.stderr)

    def restore(self) -> None:
        signal.signal(signal.SIGINT, self._previous)


def _overlay_path(explain_dir: Path, path: str, root: str) -> Path:
    relative = os.path.relpath(path, root) if root else os.path.basename(path)
    return explain_dir / f"{relative}.overlay.png"


def _own_outputs(args: argparse.Namespace) -> list[Path]:
    """What this command writes, never to be scored on a rerun if it lies in a scanned tree."""
    outputs: list[Path] = [args.out]
    if args.explain_dir:
        outputs.append(args.explain_dir)
    if args.report:
        outputs.append(args.report)
        outputs += args.report.parent.glob(f"{args.report.stem}-*.png")
    return outputs


def score_command(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    updates: dict[str, object] = {"background_load": False}
    if args.model:
        updates["model_dir"] = args.model
    if args.backend:
        updates["backend"] = args.backend
    settings = Settings().model_copy(update=updates)
    metadata = read_metadata(settings.model_dir)  # a bad model folder stops here, clearly
    classes = list(metadata.classes)
    try:
        files = find_files(args.paths, exclude=_own_outputs(args))
    except FileNotFoundError as exc:
        print(f"cxr-score: {exc}", file=sys.stderr)
        return 2
    labeller: Labeller = (
        manifest_labeller(args.labels) if args.labels else folder_labeller(args.paths, classes)
    )
    done = scored_paths(args.out)
    jobs = [Job(path, labeller(path)) for path in files if path not in done]
    print(
        f"{len(files)} files, {len(files) - len(jobs)} already in {args.out}, "
        f"{len(jobs)} to score. {DISCLAIMER}",
        file=sys.stderr,
    )
    root = os.path.commonpath(files) if len(files) > 1 else ""
    with ExitStack() as stack:
        return _score_and_report(args, settings, jobs, root, stack)


def _score_and_report(
    args: argparse.Namespace, settings: Settings, jobs: list[Job], root: str, stack: ExitStack
) -> int:
    metadata = read_metadata(settings.model_dir)
    classes = list(metadata.classes)
    for output in (args.out, args.report):
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
    writer = open_writer(args.out, classes)
    interrupt = _Interrupt()
    scorer: BatchScorer | None = None
    try:
        if args.ray or args.ray_address:
            from service.batch.on_ray import score_on_ray

            results: Iterator[Scored] = score_on_ray(
                jobs,
                settings,
                explain=bool(args.explain_dir),
                actors=args.actors,
                address=args.ray_address,
                actor_cpus=args.actor_cpus,
            )
        else:
            scorer = _local_scorer(settings, args.workers, stack, explain=bool(args.explain_dir))
            results = score_stream(scorer, jobs, scorer_decoders(settings, args.workers))
        _run(results, len(jobs), writer, interrupt, args.explain_dir, root)
    finally:
        interrupt.restore()
    if interrupt.requested:
        print(
            f"Interrupted: {args.out} holds the rows scored so far; rerun to go on.",
            file=sys.stderr,
        )
        return 130
    if args.report:
        rows = read_rows(args.out, classes)
        gallery = _gallery(rows, classes, settings, scorer, args.workers, stack)
        written = write_report(
            args.report, rows, classes, gallery, f"{metadata.name} {metadata.version}"
        )
        print("Report: " + ", ".join(str(p) for p in written), file=sys.stderr)
    return 0


def scorer_decoders(settings: Settings, workers: int) -> int:
    return workers or settings.decode_concurrency


def _local_scorer(
    settings: Settings, workers: int, stack: ExitStack, *, explain: bool
) -> BatchScorer:
    runtime = load_runtime(settings)
    pool = open_decode_pool(settings, scorer_decoders(settings, workers))
    stack.callback(pool.close)
    return BatchScorer(runtime, settings, pool.run, explain=explain)


def _run(
    results: Iterator[Scored],
    total: int,
    writer: RowWriter,
    interrupt: _Interrupt,
    explain_dir: Path | None,
    root: str,
) -> None:
    from tqdm import tqdm

    chunk: list[ScoreRow] = []
    flushed = time.monotonic()
    with tqdm(total=total, unit="img", dynamic_ncols=True, smoothing=0.1) as progress:
        try:
            for scored in results:
                if explain_dir is not None and scored.overlay_png is not None:
                    target = _overlay_path(explain_dir, scored.row.path, root)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(scored.overlay_png)
                chunk.append(scored.row)
                progress.update(1)
                if len(chunk) >= _CHUNK_ROWS or time.monotonic() - flushed > _CHUNK_SECONDS:
                    writer.write(chunk)
                    chunk, flushed = [], time.monotonic()
                if interrupt.requested:
                    break
        finally:
            writer.write(chunk)
            close = getattr(results, "close", None)
            if close is not None:
                close()


def _gallery(
    rows: list[ScoreRow],
    classes: list[str],
    settings: Settings,
    scorer: BatchScorer | None,
    workers: int,
    stack: ExitStack,
) -> list[GalleryItem]:
    """Grad-CAM overlays of a few images, computed again with the same model."""
    chosen = gallery_rows(rows, classes)
    if not chosen:
        return []
    if scorer is None:  # the Ray path: the model was on the cluster
        scorer = _local_scorer(settings, workers, stack, explain=True)
    explainer = scorer.explainer()
    items = []
    for row, why in chosen:
        scored = explainer.score(Job(row.path, row.true_label))
        if scored.overlay_png is not None:
            items.append(GalleryItem(row, scored.overlay_png, why))
    return items
