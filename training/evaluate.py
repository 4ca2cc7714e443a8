"""Evaluate a model folder on the test split through the served code path.

    python -m training.evaluate MODEL_DIR [--data DIR] [--bootstrap 1000]

Images are decoded and preprocessed exactly as the service does (decode_image ->
to_model_batch) and classified by ``ClassifierRuntime`` (predict + Grad-CAM). Writes
``metrics.json``, PNG plots and ``MODEL_CARD.md`` into MODEL_DIR and the summary into
``metadata.json`` (its sha256 covers model.keras only, so it stays valid).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm import tqdm

from service.inference.artifact import read_metadata
from service.inference.preprocess import resize_gray, to_model_batch
from service.inference.runtime import ClassifierRuntime
from training import plots
from training.audit import run_audit
from training.calibration import apply_temperature
from training.config import DEFAULTS, validate_config
from training.config import data_dir as resolve_data_dir
from training.data import load_gray, read_manifest, select
from training.metadata import update_metadata
from training.metrics import expected_calibration_error, full_report
from training.model_card import write_model_card


def predict_split(runtime: ClassifierRuntime, data_dir: Path, records, batch_size: int = 16):
    """Decoded grayscale images (full size, for the audit) and the served probabilities."""
    grays, probs = [], []
    for start in tqdm(range(0, len(records), batch_size), desc="evaluating", unit="batch"):
        chunk = [load_gray(data_dir, r) for r in records[start : start + batch_size]]
        probs.append(runtime.predict(to_model_batch(chunk, runtime.input_size)))
        grays += chunk
    return grays, np.concatenate(probs)


def calibration_report(metadata, y: np.ndarray, probs: np.ndarray, model_dir: Path) -> dict:
    """Test-split ECE (15 bins) with the served (calibrated) probabilities and without the
    temperature; both reliability diagrams."""
    temperature = metadata.temperature
    raw = apply_temperature(probs, 1.0 / temperature)  # undo softmax(z / T): back to softmax(z)
    before = expected_calibration_error(y, raw, bins=15)
    after = expected_calibration_error(y, probs, bins=15)
    plots.reliability(before, model_dir / "reliability_uncalibrated.png", "before calibration")
    plots.reliability(after, model_dir / "reliability.png", f"temperature {temperature:.2f}")
    return {
        "method": metadata.calibration.method if metadata.calibration else "none",
        "temperature": temperature,
        "fitted_on": "val",
        "test_ece_15_bins_before": round(before["ece"], 4),
        "test_ece_15_bins_after": round(after["ece"], 4),
        "bins_before": before["bins"],
        "bins_after": after["bins"],
    }


def gallery_by_source(grays, cams, y, probs, classes, records, per_kind: int = 2) -> list:
    """Per source: its most confident correct and most confident wrong test images."""
    predicted, confidence = probs.argmax(axis=1), probs.max(axis=1)
    sources = np.array([r.source_repo for r in records])
    items: list[dict | None] = []
    for source in sorted(set(sources)):
        rows = np.flatnonzero(sources == source)
        right = sorted(rows[predicted[rows] == y[rows]], key=lambda i: -confidence[i])[:per_kind]
        wrong = sorted(rows[predicted[rows] != y[rows]], key=lambda i: -confidence[i])[:per_kind]
        row: list[dict | None] = []
        for i in [*right, *[None] * (per_kind - len(right)), *wrong]:
            if i is None:
                row.append(None)
                continue
            verdict = f"true {classes[y[i]]} / pred {classes[predicted[i]]} {confidence[i]:.2f}"
            row.append(
                {
                    "image": plots.overlay(resize_gray(grays[i], (224, 224)), cams[i]),
                    "title": f"{verdict}\n{source.split('/')[0]}",
                    "correct": bool(predicted[i] == y[i]),
                }
            )
        items += row + [None] * (2 * per_kind - len(row))
    return items


def summary_of(report: dict, classes: list[str]) -> dict:
    """The compact metrics block stored in metadata.json (and shown by the service's /model)."""
    keep = ["macro_f1", "accuracy", "covid_sensitivity", "covid_specificity"]
    keep += [f"auc_{c}" for c in classes]
    summary = {k: report[k] for k in keep if k in report}
    summary["per_class"] = report["per_class"]
    summary["ece"] = report["calibration"]["ece"]
    summary["n_test"] = report["n"]
    return summary


def evaluate(model_dir: Path, data_dir: Path | None = None, n_bootstrap: int | None = None) -> dict:
    started = time.time()
    metadata = read_metadata(model_dir)
    config = validate_config(metadata.training.get("config", {}), "metadata.json")
    data_dir = data_dir or resolve_data_dir(config)
    n_bootstrap = n_bootstrap if n_bootstrap is not None else config["evaluate"]["bootstrap"]
    classes = metadata.classes
    used = select(read_manifest(data_dir), classes, config["limit_per_split_class"])
    test = [r for r in used if r.split == "test"]
    y = np.array([classes.index(r.label) for r in test])
    sources = np.array([r.source_repo for r in test])

    runtime = ClassifierRuntime.load(model_dir)
    grays, probs = predict_split(runtime, data_dir, test)

    report: dict = {"split": "test", "classes": classes, "n_bootstrap": n_bootstrap}
    report["overall"] = full_report(y, probs, classes, n_bootstrap)
    report["per_source"] = {}
    for source in sorted(set(sources)):
        mask = sources == source
        entry = full_report(y[mask], probs[mask], classes, n_bootstrap)
        entry["labels"] = dict(Counter(r.label for r, m in zip(test, mask, strict=True) if m))
        report["per_source"][source] = entry
    report["calibration"] = calibration_report(metadata, y, probs, model_dir)
    seed = config["evaluate"]["stamp_seed"]
    report["audit"], cams = run_audit(runtime, grays, y, probs, sources, classes, seed)
    report["linear_probe_baseline"] = metadata.training.get("linear_probe")
    report["predictions"] = [
        {
            "path": r.path,
            "source": r.source_repo,
            "label": r.label,
            "probabilities": p.round(5).tolist(),
        }
        for r, p in zip(test, probs, strict=True)
    ]

    overall = report["overall"]
    plots.confusion(overall["confusion_matrix"], classes, model_dir / "confusion_matrix.png")
    aucs = {c: overall[f"auc_{c}"]["value"] for c in classes}
    plots.roc(y, probs, classes, aucs, model_dir / "roc.png")
    plots.training_curves(model_dir)
    items = gallery_by_source(grays, cams, y, probs, classes, test)
    plots.gradcam_gallery(items, model_dir / "gradcam_gallery.png", columns=4)
    report["seconds"] = round(time.time() - started, 1)
    (model_dir / "metrics.json").write_text(json.dumps(report, indent=1) + "\n")

    metrics = {
        "split": "test",
        **summary_of(overall, classes),
        "per_source": {
            s: {k: e[k] for k in ("n", "macro_f1", "accuracy") if k in e}
            for s, e in report["per_source"].items()
        },
        "calibration": {k: v for k, v in report["calibration"].items() if not k.startswith("bins")},
        "audit": report["audit"],
        "linear_probe_baseline": report["linear_probe_baseline"],
    }
    timings = {**metadata.training.get("timings", {}), "evaluation_s": report["seconds"]}
    metadata = update_metadata(
        model_dir, metrics=metrics, training={**metadata.training, "timings": timings}
    )
    write_model_card(model_dir, metadata, report, used)
    line = {k: overall[k] for k in ("macro_f1", "accuracy", "covid_sensitivity") if k in overall}
    print(f"[evaluate] {model_dir}: {json.dumps(line)}")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description="Evaluate a model folder on the test split.")
    parser.add_argument("model_dir", type=Path)
    parser.add_argument(
        "--data", default=None, help="cxr data folder (default: CXR_DATA_DIR / config)"
    )
    parser.add_argument("--bootstrap", type=int, default=None, help="resamples for the 95%% CIs")
    args = parser.parse_args()
    data = resolve_data_dir(DEFAULTS, args.data) if args.data else None
    evaluate(args.model_dir, data, args.bootstrap)


if __name__ == "__main__":
    main()
