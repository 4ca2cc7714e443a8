"""``cxr-score --ray`` on a local two-node Ray cluster gives the local path's rows exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.service.batch.conftest import rows_by_relative_path, score

pytestmark = pytest.mark.ray


def test_ray_data_rows_equal_the_local_rows(
    ray_cluster: object, scored_csv: Path, archive: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ray.csv"
    # Two actors of half a CPU each: both fit beside the reads on the 2 x 1-CPU cluster.
    extra = ["--ray", "--actors", "2", "--actor-cpus", "0.5"]
    assert score(archive, out, tiny_model_dir, *extra) == 0
    assert rows_by_relative_path(out, archive) == rows_by_relative_path(scored_csv, archive)
    assert score(archive, out, tiny_model_dir, *extra) == 0  # resumable the same way
    assert len(out.read_text().splitlines()) == 1 + len(rows_by_relative_path(scored_csv, archive))
