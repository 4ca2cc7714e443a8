"""A bounded fuzz run in CI (``make fuzz`` is the long one): 2,000 mutated real files through
the decode pool, fixed seed. Only an image or a ``ServiceError`` may come out (a decode that
runs out of time is one, ``decode_timeout``), and no worker dies."""

from __future__ import annotations

import random
from pathlib import Path

from bench.fuzz import fuzz, mutated, seeds, spec_from
from service.io.workers import DecodePool
from service.settings import Settings


def test_2000_mutated_inputs_give_only_service_errors(originals: Path) -> None:
    settings = Settings()
    inputs = mutated(random.Random(11), seeds(originals, small_only=True), 2000)
    pool = DecodePool(
        workers=2,
        memory_mb=settings.decode_memory_mb,
        timeout_seconds=settings.decode_timeout_seconds,
    )
    pool.start()
    try:
        report = fuzz(pool, spec_from(settings), inputs, threads=2)
    finally:
        pool.close()
    assert report.inputs == 2000
    assert report.exceptions == 0, report.outcomes
    assert report.worker_deaths == 0
    # Both kinds of outcome happened: the mutations are neither all harmless nor all fatal.
    assert report.outcomes["ok"] > 100 and report.outcomes["invalid_image"] > 100
    assert report.peak_worker_rss_mib < settings.decode_memory_mb
