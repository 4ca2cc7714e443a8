"""A decoder that crashes on a file costs that file's row, never the batch; labels from a
manifest or from folder names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.batch.files import find_files, folder_labeller, manifest_labeller
from service.batch.rows import OK
from service.batch.scoring import BatchScorer, Job, load_runtime, score_stream
from service.io.workers import DecodePool
from service.settings import Settings
from tests.service.batch.crashing import MARKER, crash_on_marker


@pytest.fixture(scope="module")
def crashing_pool() -> Iterator[DecodePool]:
    pool = DecodePool(workers=1, memory_mb=1536, timeout_seconds=10, task=crash_on_marker)
    pool.start()
    yield pool
    pool.close()


def test_a_crashing_codec_costs_one_row(
    crashing_pool: DecodePool, tiny_model_dir: Path, raster_originals: list[Path], tmp_path: Path
) -> None:
    settings = Settings(model_dir=tiny_model_dir)
    scorer = BatchScorer(load_runtime(settings), settings, crashing_pool.run)
    crafted = tmp_path / "crafted.png"
    crafted.write_bytes(raster_originals[0].read_bytes() + MARKER)  # a PNG with trailing bytes
    jobs = [Job(str(raster_originals[0])), Job(str(crafted)), Job(str(raster_originals[1]))]
    statuses = [scored.row.status for scored in score_stream(scorer, jobs, decoders=1)]
    assert statuses == [OK, "invalid_image", OK]
    assert crashing_pool.stats.crashes == 1


def test_manifest_labels_are_relative_to_the_manifest(tmp_path: Path) -> None:
    (tmp_path / "images" / "a").mkdir(parents=True)
    (tmp_path / "images" / "a" / "x.png").write_bytes(b"x")
    (tmp_path / "manifest.csv").write_text("path,label,other\nimages/a/x.png,normal,1\n")
    label = manifest_labeller(tmp_path / "manifest.csv")
    assert label(str(tmp_path / "images" / "a" / "x.png")) == "normal"
    assert label(str(tmp_path / "images" / "a" / "unknown.png")) == ""


def test_folder_labels_are_the_nearest_class_folder(tmp_path: Path) -> None:
    for relative in ("covid/p1/x.png", "Normal/y.png", "other/z.png", "hidden/.skip.png"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"x")
    files = find_files([tmp_path])
    assert [Path(f).relative_to(tmp_path).as_posix() for f in files] == [
        "Normal/y.png",
        "covid/p1/x.png",
        "other/z.png",
    ]
    label = folder_labeller([tmp_path], ["covid", "normal", "pneumonia"])
    assert [label(f) for f in files] == ["normal", "covid", ""]
    assert folder_labeller([tmp_path / "covid"], ["covid"])(files[1]) == "covid"  # the root's name


def test_our_own_outputs_inside_the_tree_are_not_scanned(tmp_path: Path) -> None:
    (tmp_path / "covid").mkdir()
    (tmp_path / "covid" / "x.png").write_bytes(b"x")
    (tmp_path / "out.parquet").mkdir()
    (tmp_path / "out.parquet" / "part-000000.parquet").write_bytes(b"x")
    (tmp_path / "cams" / "covid").mkdir(parents=True)
    (tmp_path / "cams" / "covid" / "x.png.overlay.png").write_bytes(b"x")
    (tmp_path / "report-histograms.png").write_bytes(b"x")
    found = find_files(
        [tmp_path],
        exclude=[tmp_path / "out.parquet", tmp_path / "cams", tmp_path / "report-histograms.png"],
    )
    assert found == [str(tmp_path / "covid" / "x.png")]
