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

import cv2
import numpy as np
from tqdm import tqdm

from service.inference.artifact import read_metadata, write_metadata
from service.inference.preprocess import resize_gray, to_model_batch
from service.inference.runtime import ClassifierRuntime
from training import plots
from training.config import DEFAULTS
from training.config import data_dir as resolve_data_dir
from training.data import load_gray, read_manifest, select
from training.metrics import full_report
from training.model_card import write_model_card


def predict_split(runtime: ClassifierRuntime, data_dir: Path, records, batch_size: int = 16):
    grays, probs = [], []
    for start in tqdm(range(0, len(records), batch_size), desc="evaluating", unit="batch"):
        chunk = [load_gray(data_dir, r) for r in records[start : start + batch_size]]
        probs.append(runtime.predict(to_model_batch(chunk, runtime.input_size)))
        grays += [resize_gray(g, runtime.input_size) for g in chunk]  # small copies for Grad-CAM
    return grays, np.concatenate(probs)


def degrade(gray: np.ndarray) -> np.ndarray:
    """A low-quality imaging pipeline: a 160-px thumbnail, JPEG quality 40, scaled back up."""
    h, w = gray.shape
    factor = min(1.0, 160 / max(h, w))
    small = cv2.resize(
        gray, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA
    )
    _, encoded = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 40])
    return cv2.resize(
        cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE), (w, h), interpolation=cv2.INTER_LINEAR
    )


def robustness(runtime, data_dir: Path, records, y, classes, n_bootstrap: int) -> dict:
    """Same test images through a degraded pipeline: a proxy for unseen hospitals' pipelines."""
    probs = []
    for start in tqdm(range(0, len(records), 16), desc="degraded test", unit="batch"):
        chunk = [degrade(load_gray(data_dir, r)) for r in records[start : start + 16]]
        probs.append(runtime.predict(to_model_batch(chunk, runtime.input_size)))
    report = full_report(y, np.concatenate(probs), classes, n_bootstrap)
    keep = ["n", "macro_f1", "accuracy", "covid_sensitivity", "covid_specificity"]
    return {
        "pipeline": "160-px thumbnail + JPEG q40 + upscale",
        **{k: report[k] for k in keep if k in report},
    }


def gallery_items(runtime, grays, y, probs, classes, records, per_kind: int) -> list[dict]:
    """Most confident correct and most confident wrong test images, with their Grad-CAM."""
    predicted = probs.argmax(axis=1)
    confidence = probs.max(axis=1)
    correct = np.flatnonzero(predicted == y)
    wrong = np.flatnonzero(predicted != y)
    # Correct: spread over classes (highest confidence per class, round robin); wrong: worst first.
    by_class = [
        sorted(correct[y[correct] == c], key=lambda i: -confidence[i]) for c in range(len(classes))
    ]
    chosen_correct = [i for group in zip(*by_class, strict=False) for i in group][:per_kind]
    chosen = chosen_correct + sorted(wrong, key=lambda i: -confidence[i])[:per_kind]
    if not chosen:
        return []
    batch = to_model_batch([grays[i] for i in chosen], runtime.input_size)
    explanation = runtime.explain(batch, np.full(len(chosen), -1, dtype=np.int32))
    items = []
    for k, i in enumerate(chosen):
        source = records[i].source_repo.split("/")[0]
        verdict = f"true {classes[y[i]]} / pred {classes[predicted[i]]} {confidence[i]:.2f}"
        items.append(
            {
                "image": plots.overlay(grays[i], explanation.cams[k]),
                "title": f"{verdict}\n{source}",
                "correct": bool(predicted[i] == y[i]),
            }
        )
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


def evaluate(
    model_dir: Path,
    data_dir: Path | None = None,
    n_bootstrap: int | None = None,
    with_robustness: bool = False,
) -> dict:
    started = time.time()
    metadata = read_metadata(model_dir)
    config = {**DEFAULTS, **metadata.training.get("config", {})}
    data_dir = data_dir or resolve_data_dir(config)
    n_bootstrap = n_bootstrap or config.get("evaluate", DEFAULTS["evaluate"])["bootstrap"]
    classes = metadata.classes
    all_records = read_manifest(data_dir)
    used = select(all_records, classes, config.get("limit_per_split_class"))
    test = [r for r in used if r.split == "test"]
    y = np.array([classes.index(r.label) for r in test])

    runtime = ClassifierRuntime.load(model_dir)
    grays, probs = predict_split(runtime, data_dir, test)

    report = {"split": "test", "classes": classes, "n_bootstrap": n_bootstrap}
    report["overall"] = full_report(y, probs, classes, n_bootstrap)
    report["per_source"] = {}
    sources = np.array([r.source_repo for r in test])
    for source in sorted(set(sources)):
        mask = sources == source
        entry = full_report(y[mask], probs[mask], classes, n_bootstrap)
        entry["labels"] = dict(Counter(r.label for r, m in zip(test, mask, strict=True) if m))
        report["per_source"][source] = entry
    if with_robustness:
        report["robustness"] = robustness(runtime, data_dir, test, y, classes, n_bootstrap)
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
    plots.reliability(overall["calibration"], model_dir / "reliability.png")
    plots.training_curves(model_dir)
    per_kind = config.get("evaluate", DEFAULTS["evaluate"])["gallery"]
    items = gallery_items(runtime, grays, y, probs, classes, test, per_kind)
    plots.gradcam_gallery(items, model_dir / "gradcam_gallery.png")
    report["seconds"] = round(time.time() - started, 1)
    (model_dir / "metrics.json").write_text(json.dumps(report, indent=1) + "\n")

    metadata.metrics = {
        "split": "test",
        **summary_of(overall, classes),
        "per_source": {
            s: {k: e[k] for k in ("n", "macro_f1", "accuracy") if k in e}
            for s, e in report["per_source"].items()
        },
        "linear_probe_baseline": report["linear_probe_baseline"],
    }
    if "robustness" in report:
        metadata.metrics["degraded_pipeline"] = report["robustness"]
    metadata.training.setdefault("timings", {})["evaluation_s"] = report["seconds"]
    write_metadata(model_dir, metadata)
    write_model_card(model_dir, metadata, report, used)
    read_metadata(model_dir)  # still valid
    line = {k: overall[k] for k in ("macro_f1", "accuracy", "covid_sensitivity") if k in overall}
    print(f"[evaluate] {model_dir}: {json.dumps(line)}")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description="Evaluate a model folder on the test split.")
    parser.add_argument("model_dir", type=Path)
    parser.add_argument(
        "--data", default=None, help="cxr data folder (default: CXR_DATA_DIR / config)"
    )
    parser.add_argument(
        "--robustness", action="store_true", help="also score a degraded copy of the test set"
    )
    parser.add_argument("--bootstrap", type=int, default=None, help="resamples for the 95%% CIs")
    args = parser.parse_args()
    data = resolve_data_dir({"data_dir": DEFAULTS["data_dir"]}, args.data) if args.data else None
    evaluate(args.model_dir, data, args.bootstrap, args.robustness)


if __name__ == "__main__":
    main()
