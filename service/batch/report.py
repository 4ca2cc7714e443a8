"""``--report report.html``: one self-contained HTML file (plots and Grad-CAM overlays embedded
as base64 PNGs, no scripts, nothing fetched) plus the same plots as PNG files beside it."""

from __future__ import annotations

import base64
import html
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from service.batch.rows import OK, ScoreRow
from service.batch.summary import Metrics, Summary, summarise
from service.settings import DISCLAIMER

_BINS = [i / 20 for i in range(21)]  # 0.05 wide


@dataclass(frozen=True)
class GalleryItem:
    row: ScoreRow
    overlay_png: bytes
    why: str  # e.g. "most confident covid"


def gallery_rows(
    rows: list[ScoreRow], classes: list[str], size: int = 6
) -> list[tuple[ScoreRow, str]]:
    """The most confident scored image of each class, then the most confident mistakes."""
    scored = [r for r in rows if r.status == OK]
    chosen: list[tuple[ScoreRow, str]] = []
    for name in classes:
        candidates = [r for r in scored if r.label == name]
        if candidates:
            best = max(candidates, key=lambda r: r.probabilities[name])
            chosen.append((best, f"most confident {name}"))
    mistakes = [r for r in scored if r.true_label in classes and r.label != r.true_label]
    mistakes.sort(key=lambda r: -r.probabilities[r.label])
    shown = {r.path for r, _ in chosen}
    for row in [r for r in mistakes if r.path not in shown][: max(0, size - len(chosen))]:
        chosen.append((row, f"confident mistake (true: {row.true_label})"))
    return chosen[:size]


def _png(figure: Figure) -> bytes:
    from io import BytesIO

    buffer = BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def _histograms(rows: list[ScoreRow], classes: list[str], by_label: bool) -> Figure:
    scored = [r for r in rows if r.status == OK]
    figure = Figure(figsize=(4.2 * len(classes), 3.6), layout="constrained")
    groups = sorted({r.true_label for r in scored if r.true_label}) if by_label else ["all"]
    for i, name in enumerate(classes):
        axes = figure.add_subplot(1, len(classes), i + 1)
        for group in groups:
            values = [
                r.probabilities[name] for r in scored if not by_label or r.true_label == group
            ]
            label = f"{group} (n={len(values)})" if by_label else None
            if by_label:
                axes.hist(values, bins=_BINS, histtype="step", label=label, linewidth=1.5)
            else:
                axes.hist(values, bins=_BINS)
        axes.set_title(f"P({name})")
        axes.set_xlabel("probability")
        axes.set_ylabel("images")
        axes.set_yscale("log" if by_label else "linear")
        if by_label:
            axes.legend(title="true label", fontsize="small")
    return figure


def _confusion(metrics: Metrics, classes: list[str]) -> Figure:
    figure = Figure(figsize=(4.8, 4.2), layout="constrained")
    axes = figure.add_subplot(1, 1, 1)
    counts = metrics.confusion
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    axes.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    for t in range(len(classes)):
        for p in range(len(classes)):
            colour = "white" if rates[t, p] > 0.6 else "black"
            axes.text(
                p, t, f"{counts[t, p]}\n{rates[t, p]:.0%}", ha="center", va="center", color=colour
            )
    axes.set_xticks(range(len(classes)), classes)
    axes.set_yticks(range(len(classes)), classes)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(f"Confusion matrix (n={metrics.labelled})")
    return figure


def _metrics_table(metrics: Metrics, classes: list[str]) -> str:
    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    lines = [
        f"<p>Accuracy <b>{metrics.accuracy:.3f}</b> · macro-F1 <b>{metrics.macro_f1:.3f}</b> "
        f"over {metrics.labelled} scored images with a true label.</p>",
        "<table><tr><th>class</th><th>recall</th><th>precision</th><th>true</th></tr>",
    ]
    for i, name in enumerate(classes):
        lines.append(
            f"<tr><td>{html.escape(name)}</td><td>{cell(metrics.recall[name])}</td>"
            f"<td>{cell(metrics.precision[name])}</td><td>{metrics.confusion[i].sum()}</td></tr>"
        )
    lines.append("</table>")
    return "\n".join(lines)


def _counts_table(summary: Summary) -> str:
    lines = ["<table><tr><th>status</th><th>files</th></tr>"]
    lines.append(f"<tr><td>ok (scored)</td><td>{summary.scored}</td></tr>")
    lines.append(f"<tr><td>not_a_chest_xray (rejected)</td><td>{summary.rejected}</td></tr>")
    for code, count in summary.failures.items():
        lines.append(f"<tr><td>{html.escape(code)} (unreadable)</td><td>{count}</td></tr>")
    lines.append(f"<tr><th>total</th><th>{summary.total}</th></tr></table>")
    return "\n".join(lines)


def _image(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:80rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem .6rem}
.warn{background:#fff3cd;border:1px solid #e0c36a;padding:.6rem}img{max-width:100%}
.gallery{display:flex;flex-wrap:wrap;gap:1rem}.gallery figure{margin:0;width:16rem}
figcaption{font-size:.8rem;word-break:break-all}
"""


def write_report(
    path: Path, rows: list[ScoreRow], classes: list[str], gallery: list[GalleryItem], model: str
) -> list[Path]:
    """Write the HTML report and its PNG plots; returns the files written."""
    summary = summarise(rows, classes)
    plots: dict[str, tuple[str, Figure]] = {
        "histograms": ("Score histograms, all scored images", _histograms(rows, classes, False))
    }
    if summary.metrics is not None:
        plots["histograms-by-label"] = (
            "Score histograms per true label",
            _histograms(rows, classes, True),
        )
        plots["confusion"] = ("Confusion matrix", _confusion(summary.metrics, classes))
    written = []
    sections = []
    for key, (title, figure) in plots.items():
        png = _png(figure)
        plot_path = path.with_name(f"{path.stem}-{key}.png")
        plot_path.write_bytes(png)
        written.append(plot_path)
        sections.append(f"<h2>{html.escape(title)}</h2>{_image(png, title)}")
    if summary.metrics is not None:
        sections.insert(0, "<h2>Metrics</h2>" + _metrics_table(summary.metrics, classes))
    else:
        sections.insert(0, "<p>No true labels: no confusion matrix or metrics.</p>")
    figures = [
        f"<figure>{_image(item.overlay_png, item.why)}<figcaption><b>{html.escape(item.why)}"
        f"</b>: {html.escape(item.row.label)} {item.row.probabilities[item.row.label]:.3f}<br>"
        f"{html.escape(item.row.path)}</figcaption></figure>"
        for item in gallery
    ]
    if figures:
        sections.append(
            "<h2>Grad-CAM overlays</h2><div class=gallery>" + "".join(figures) + "</div>"
        )
    labels = ", ".join(f"{html.escape(k)}: {v}" for k, v in summary.true_labels.items())
    document = f"""<!doctype html>
<html lang=en><head><meta charset=utf-8><title>cxr-score report</title>
<style>{_STYLE}</style></head>
<body><h1>Chest X-ray batch scoring report</h1>
<p class=warn><b>NOT FOR DIAGNOSTIC USE.</b> {html.escape(DISCLAIMER)}</p>
<p>Model <b>{html.escape(model)}</b> · {time.strftime("%Y-%m-%d %H:%M %Z")} ·
true labels: {labels or "none"}</p>
<h2>Files</h2>{_counts_table(summary)}
{"".join(sections)}
</body></html>
"""
    path.write_text(document, encoding="utf-8")
    return [path, *written]
