"""``cxr-score`` end to end on real files with the tiny real model: one row per file with the
right status, the probabilities ``/predict`` gives, resumable CSV and Parquet, Ctrl-C safe."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.batch.output import CsvWriter, read_rows
from service.batch.rows import OK, ScoreRow
from service.batch.run import _Interrupt, _run
from service.batch.scoring import Scored
from tests.service.batch.conftest import (
    EXPECTED_STATUS,
    expected_files,
    rows_by_relative_path,
    score,
)
from tests.tiny_model import CLASSES


def test_one_row_per_file_with_its_status(scored_csv: Path, archive: Path) -> None:
    rows = rows_by_relative_path(scored_csv, archive)
    assert sorted(rows) == sorted(str(p.relative_to(archive)) for p in expected_files(archive))
    for name, row in rows.items():
        assert row.status == EXPECTED_STATUS.get(name, OK), (name, row.message)
        assert row.model_name == "tiny-test-model" and row.model_version == "0.0.1"
        if row.status == OK:
            assert row.label == max(row.probabilities, key=row.probabilities.__getitem__)
            assert sum(row.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
            assert row.gate_passed is True
        else:
            assert row.message and not row.probabilities and not row.label
    true_labels = {name: row.true_label for name, row in rows.items()}
    assert true_labels["covid/" + next(iter(sorted((archive / "covid").iterdir()))).name] == "covid"
    assert true_labels["dicom/study.dcm"] == "" and true_labels["notes.txt"] == ""


def test_probabilities_equal_predict(scored_csv: Path, archive: Path, client: TestClient) -> None:
    checked = 0
    for name, row in rows_by_relative_path(scored_csv, archive).items():
        if row.status != OK:
            continue
        response = client.post("/predict", files={"file": (name, (archive / name).read_bytes())})
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["label"] == row.label
        for cls, p in answer["probabilities"].items():
            assert row.probabilities[cls] == pytest.approx(p, abs=1e-5)
        checked += 1
    assert checked == 3 * 2 + 1  # two X-rays per class and the DICOM


def test_dicom_row_keeps_the_sop_instance_uid_and_no_patient_data(
    scored_csv: Path, archive: Path
) -> None:
    import pydicom

    header = pydicom.dcmread(archive / "dicom" / "study.dcm", stop_before_pixels=True)
    row = rows_by_relative_path(scored_csv, archive)["dicom/study.dcm"]
    assert row.format == "dicom" and row.sop_instance_uid == header.SOPInstanceUID
    text = scored_csv.read_text()
    for keyword in ("PatientName", "PatientID", "PatientBirthDate"):
        value = str(header.get(keyword, "") or "")
        if len(value) > 2:
            assert value not in text, keyword


def test_a_rerun_skips_what_is_there_and_finishes_a_torn_output(
    scored_csv: Path, archive: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    complete = rows_by_relative_path(scored_csv, archive)
    out = tmp_path / "results.csv"
    lines = scored_csv.read_text().splitlines(keepends=True)
    # The last rows lost and half a row written, as a killed run can leave it.
    out.write_text("".join(lines[:-3]) + lines[-3][: len(lines[-3]) // 2])
    assert score(archive, out, tiny_model_dir) == 0
    assert rows_by_relative_path(out, archive) == complete
    assert score(archive, out, tiny_model_dir) == 0  # nothing left to do: nothing added
    assert len(read_rows(out, CLASSES)) == len(complete)


def test_parquet_output_holds_the_same_rows(
    scored_csv: Path, archive: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "results.parquet"
    assert score(archive, out, tiny_model_dir) == 0
    assert out.is_dir() and list(out.glob("part-*.parquet"))
    assert rows_by_relative_path(out, archive) == rows_by_relative_path(scored_csv, archive)
    assert score(archive, out, tiny_model_dir) == 0
    assert len(read_rows(out, CLASSES)) == len(expected_files(archive))


def _rows(count: int) -> list[ScoreRow]:
    return [ScoreRow(path=f"/x/{i}.png", status="invalid_image", message="m") for i in range(count)]


def _interrupted_after(rows: list[ScoreRow], after: int, times: int) -> Iterator[Scored]:
    for i, row in enumerate(rows):
        if i >= after and i < after + times:
            # Ctrl-C while the next file is being scored: the installed handler is called as
            # Python calls it on SIGINT. (A real signal sent to the whole pytest process can
            # land in other tests' native threads; cxr-score itself was checked by hand.)
            handler = signal.getsignal(signal.SIGINT)
            assert callable(handler)
            handler(signal.SIGINT, None)
        yield Scored(row)


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_leaves_a_valid_partial_output(tmp_path: Path, presses: int) -> None:
    out = tmp_path / "results.csv"
    rows = _rows(100)
    interrupt = _Interrupt()
    try:
        try:
            _run(
                _interrupted_after(rows, 40, presses),
                100,
                CsvWriter(out, CLASSES),
                interrupt,
                None,
                "",
            )
        except KeyboardInterrupt:
            assert presses == 2  # the second press stops at once
    finally:
        interrupt.restore()
    assert interrupt.requested
    with out.open(newline="") as handle:
        written = list(csv.DictReader(handle))
    assert [r["path"] for r in written] == [r.path for r in rows[: len(written)]]
    assert 40 <= len(written) <= 42


def test_the_command_imports_no_tensorflow() -> None:
    # Decode workers import the main module: the cxr-score script must stay light.
    code = "import sys, service.batch.cli; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
