"""The HTML report: self-contained, with the plots, metrics and overlays it promises."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pytest

from service.batch.report import GalleryItem, gallery_rows, write_report
from service.batch.rows import OK, REJECTED, ScoreRow
from service.batch.summary import summarise
from tests.tiny_model import CLASSES


def row(name: str, truth: str, probabilities: list[float]) -> ScoreRow:
    p = dict(zip(CLASSES, probabilities, strict=True))
    return ScoreRow(
        path=f"/a/{name}.png",
        status=OK,
        label=max(p, key=p.__getitem__),
        probabilities=p,
        true_label=truth,
    )


ROWS = [
    row("c1", "covid", [0.9, 0.05, 0.05]),
    row("c2", "covid", [0.2, 0.7, 0.1]),
    row("n1", "normal", [0.1, 0.8, 0.1]),
    row("p1", "pneumonia", [0.1, 0.1, 0.8]),
    ScoreRow(path="/a/photo.png", status=REJECTED, message="not an X-ray", gate_score=0.01),
    ScoreRow(path="/a/notes.txt", status="unsupported_media_type", message="m"),
]


def test_metrics_from_the_confusion_matrix() -> None:
    summary = summarise(ROWS, CLASSES)
    assert (summary.scored, summary.rejected) == (4, 1)
    assert summary.failures == {"unsupported_media_type": 1}
    metrics = summary.metrics
    assert metrics is not None
    assert metrics.confusion.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    assert metrics.accuracy == pytest.approx(0.75)
    assert metrics.recall == {"covid": 0.5, "normal": 1.0, "pneumonia": 1.0}
    f1 = [2 * 1 * 0.5 / 1.5, 2 * 0.5 * 1 / 1.5, 1.0]
    assert metrics.macro_f1 == pytest.approx(float(np.mean(f1)))


def test_the_report_is_one_self_contained_file_with_png_plots_beside(tmp_path: Path) -> None:
    overlay = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    )
    chosen = gallery_rows(ROWS, CLASSES)
    assert [why for _, why in chosen][:3] == [f"most confident {c}" for c in CLASSES]
    assert any("mistake" in why for _, why in chosen)
    gallery = [GalleryItem(r, overlay, why) for r, why in chosen]
    report = tmp_path / "report.html"
    written = write_report(report, ROWS, CLASSES, gallery, "tiny 0.0.1")
    assert {p.name for p in written} == {
        "report.html",
        "report-histograms.png",
        "report-histograms-by-label.png",
        "report-confusion.png",
    }
    text = report.read_text()
    assert "NOT FOR DIAGNOSTIC USE" in text and "Confusion matrix" in text
    assert "macro-F1 <b>0." in text and "not_a_chest_xray (rejected)</td><td>1" in text
    assert "unsupported_media_type (unreadable)</td><td>1" in text
    images = re.findall(r'<img src="([^"]+)"', text)
    assert len(images) == 3 + len(gallery)
    assert all(src.startswith("data:image/png;base64,") for src in images)  # nothing fetched
    assert "<script" not in text and "http" not in text.replace("http-equiv", "")


def test_without_labels_there_is_no_confusion_matrix(tmp_path: Path) -> None:
    rows = [ScoreRow(**{**vars(r), "true_label": ""}) for r in ROWS]
    written = write_report(tmp_path / "r.html", rows, CLASSES, [], "tiny 0.0.1")
    assert [p.name for p in written] == ["r.html", "r-histograms.png"]
    assert "No true labels" in (tmp_path / "r.html").read_text()
