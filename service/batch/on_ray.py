"""``cxr-score --ray``: the same scoring as a Ray Data pipeline.

The files are read as binary (``read_binary_files``), scored in ``map_batches`` by a pool of
actors that each load the model once and decode in their own isolated decode worker
(``service.io.workers``), and come back to the driver, which writes them with the same
resumable writer as the local path. Every actor runs ``BatchScorer.score``, one image per model
call, so the rows equal the local path's whatever the batches (``service.batch.scoring``).

Every node needs the model folder at the same path and this package installed (the container
image in ``deploy/`` has both). Files the driver cannot read get their row there: one
unreadable file would otherwise fail Ray's whole read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from service.batch.rows import from_record, to_record
from service.batch.scoring import (
    BatchScorer,
    Job,
    Scored,
    check_file,
    failure_row,
    load_runtime,
    open_decode_pool,
)
from service.errors import ServiceError
from service.inference.artifact import read_metadata
from service.settings import Settings

_BATCH_FILES = 4  # files per map_batches call: small, so rows stream back steadily
_READ_CPUS = 0.25


class ScoreActor:
    """One model per actor, loaded once; a crashing codec kills a decode worker, not this."""

    def __init__(self, settings: Settings, explain: bool) -> None:
        self._pool = open_decode_pool(settings, workers=1)
        self._scorer = BatchScorer(
            load_runtime(settings), settings, self._pool.run, explain=explain
        )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        records, overlays = [], []
        for path, data in zip(batch["path"], batch["bytes"], strict=True):
            scored = self._scorer.score(Job(_local_path(str(path))), bytes(data))
            # JSON keeps floats exact (repr round trip) and None as null, whatever the column.
            records.append(json.dumps(to_record(scored.row, self._scorer.classes)))
            overlays.append(scored.overlay_png or b"")
        return {
            "record": np.array(records, dtype=object),
            "overlay": np.array(overlays, dtype=object),
        }


def _local_path(path: str) -> str:
    # pyarrow's local file system may hand paths back without their leading slash
    return path if os.path.isabs(path) else os.path.abspath(os.sep + path)


def score_on_ray(
    jobs: list[Job],
    settings: Settings,
    *,
    explain: bool,
    actors: int,
    address: str | None = None,
    actor_cpus: float = 1.0,
) -> Iterator[Scored]:
    """Rows for ``jobs`` (in the order Ray finishes them) from a Ray Data pipeline."""
    import ray

    metadata = read_metadata(settings.model_dir)
    classes = list(metadata.classes)
    readable, labels = [], {job.path: job.true_label for job in jobs}
    for job in jobs:
        try:
            check_file(job.path, settings.max_upload_bytes)
            readable.append(job.path)
        except ServiceError as exc:
            yield Scored(failure_row(job, exc, metadata))
    if not readable:
        return
    started_here = not ray.is_initialized()
    if started_here:
        # "local": a new Ray of our own, never whatever cluster this machine happens to run
        ray.init(address=address or "local", log_to_driver=False, include_dashboard=False)
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # cxr-score shows its own bar
        settings = settings.model_copy(update={"model_dir": settings.model_dir.resolve()})
        # Reading is I/O: a quarter CPU each, so reads still run beside actors holding every CPU.
        files = ray.data.read_binary_files(readable, include_paths=True, num_cpus=_READ_CPUS)
        dataset = files.map_batches(
            ScoreActor,
            fn_constructor_kwargs={"settings": settings, "explain": explain},
            batch_size=_BATCH_FILES,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=actor_cpus,
        )
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            for record, overlay in zip(batch["record"], batch["overlay"], strict=True):
                row = from_record(_parsed(record), classes)
                row.true_label = labels.get(row.path, "")
                yield Scored(row, bytes(overlay) or None)
    finally:
        if started_here:
            ray.shutdown()


def _parsed(record: Any) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(str(record))
    return parsed
