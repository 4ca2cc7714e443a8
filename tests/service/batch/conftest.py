"""A small archive as ``cxr-score`` meets them: real X-rays in one folder per label, a real
DICOM, a text file, a truncated PNG and an empty file, some of them nested."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from service.batch.cli import main
from service.batch.output import read_rows
from service.batch.rows import ScoreRow
from tests.tiny_model import CLASSES

PER_CLASS = 2


@pytest.fixture(scope="session")
def archive(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("archive")
    for label in CLASSES:
        sources = sorted((data_dir / "images" / label).glob("*.png"))[:PER_CLASS]
        (root / label).mkdir()
        for source in sources:
            shutil.copy(source, root / label / source.name)
    dicom = sorted((data_dir / "originals" / "dicom").glob("*.dcm"))[0]
    (root / "dicom").mkdir()
    shutil.copy(dicom, root / "dicom" / "study.dcm")
    (root / "notes.txt").write_text("not an image\n")
    real_png = next((root / "normal").glob("*.png")).read_bytes()
    (root / "normal" / "truncated.png").write_bytes(real_png[:2000])
    (root / "nested" / "deeper").mkdir(parents=True)
    (root / "nested" / "deeper" / "empty.png").write_bytes(b"")
    return root


EXPECTED_STATUS = {
    "notes.txt": "unsupported_media_type",
    "normal/truncated.png": "invalid_image",
    "nested/deeper/empty.png": "empty_file",
}


def expected_files(archive: Path) -> list[Path]:
    return sorted(p for p in archive.rglob("*") if p.is_file())


def score(archive: Path, out: Path, model: Path, *extra: str) -> int:
    return main([str(archive), "--out", str(out), "--model", str(model), *extra])


@pytest.fixture(scope="session")
def scored_csv(
    archive: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("scored") / "results.csv"
    report = out.with_name("report.html")
    assert score(archive, out, tiny_model_dir, "--report", str(report)) == 0
    return out


def rows_by_relative_path(out: Path, archive: Path) -> dict[str, ScoreRow]:
    rows = read_rows(out, CLASSES)
    by_path = {str(Path(r.path).relative_to(archive)): r for r in rows}
    assert len(by_path) == len(rows), "a file has more than one row"
    return by_path
