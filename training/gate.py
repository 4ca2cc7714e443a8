"""Fit the input gate ("frontal chest X-ray or not") for a model folder.

    python -m training.gate MODEL_DIR [--data DIR] [--ood DIR] [--false-rejection 0.01]

Features: the model's own Grad-CAM-layer activations, sqrt of the spatial mean
(``service.inference.runtime.pooled_features``), through the one decode + preprocess path.
Positives: every train-split frontal X-ray of the manifest (all labels: the gate asks "chest
X-ray?", not "which class?"). Negatives: ``../shared/data/ood`` (laterals, CT, other radiographs,
photos, documents, other medical images), each category weighted equally. A class-weighted
logistic regression; its threshold is the ``false_rejection`` quantile of the *val*-split
X-rays' scores. The negatives have no held-out set of their own, so their rejection rates are
cross-validated (5 folds, each fold's model and threshold fitted without its negatives).
Writes ``gate.json`` into the model folder and its checksum into ``metadata.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from service.inference.gate import GATE_FILE, GateModel, ImageChecks
from service.inference.preprocess import to_model_batch
from service.inference.runtime import ClassifierRuntime
from service.io.decode import decode_image
from training.config import DEFAULTS
from training.config import data_dir as resolve_data_dir
from training.data import MAX_PIXELS, load_gray, read_manifest, select
from training.metadata import update_metadata

C_GRID = (0.003, 0.01, 0.03, 0.1, 0.3)


def pooled_of(runtime: ClassifierRuntime, grays: list[np.ndarray]) -> np.ndarray:
    parts = []
    for start in tqdm(range(0, len(grays), 16), desc="gate features", unit="batch"):
        batch = to_model_batch(grays[start : start + 16], runtime.input_size)
        parts.append(runtime.predict_with_features(batch)[1])
    return np.concatenate(parts).astype(np.float32)


def read_ood(ood_dir: Path) -> list[tuple[str, str]]:
    with (ood_dir / "manifest.csv").open(newline="") as handle:
        return [(row["path"], row["category"]) for row in csv.DictReader(handle)]


def _fit(x_pos, x_neg, neg_category, c: float) -> tuple[StandardScaler, LogisticRegression]:
    """Positives and negatives weigh the same in total; each negative category weighs the same."""
    counts = Counter(neg_category)
    neg_w = np.array([1.0 / (len(counts) * counts[k]) for k in neg_category])
    pos_w = np.full(len(x_pos), 1.0 / len(x_pos))
    x = np.concatenate([x_pos, x_neg])
    y = np.concatenate([np.ones(len(x_pos)), np.zeros(len(x_neg))])
    scaler = StandardScaler().fit(x)
    clf = LogisticRegression(C=c, max_iter=5000)
    clf.fit(scaler.transform(x), y, sample_weight=np.concatenate([pos_w, neg_w]) * len(x))
    return scaler, clf


def _scores(scaler: StandardScaler, clf: LogisticRegression, x: np.ndarray) -> np.ndarray:
    return clf.predict_proba(scaler.transform(x))[:, 1]


def cross_validate(x_pos, x_val, x_neg, neg_category, c: float, false_rejection: float) -> dict:
    """Out-of-fold rejection of the negatives, each fold with its own val-chosen threshold."""
    rejected = np.zeros(len(x_neg), dtype=bool)
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    for fit_idx, held_idx in folds.split(x_neg, neg_category):
        scaler, clf = _fit(x_pos, x_neg[fit_idx], neg_category[fit_idx], c)
        threshold = float(np.quantile(_scores(scaler, clf, x_val), false_rejection))
        rejected[held_idx] = _scores(scaler, clf, x_neg[held_idx]) < threshold
    per_category = {
        str(k): round(float(rejected[neg_category == k].mean()), 4)
        for k in sorted(set(neg_category))
    }
    balanced = float(np.mean(list(per_category.values())))
    return {"rejection_balanced": round(balanced, 4), "rejection_by_category": per_category}


def fit_gate(
    model_dir: Path,
    data_dir: Path,
    ood_dir: Path | None = None,
    false_rejection: float = 0.01,
    limit_per_split_class: int | None = None,
) -> dict[str, Any]:
    """``limit_per_split_class``: tiny test runs only (few positives)."""
    ood_dir = ood_dir or data_dir.parent / "ood"
    runtime = ClassifierRuntime.load(model_dir)  # TensorFlow fp32: the reference features
    all_records = read_manifest(data_dir)
    records = select(all_records, sorted({r.label for r in all_records}), limit_per_split_class)
    train = [r for r in records if r.split == "train"]
    val = [r for r in records if r.split == "val"]
    x_pos = pooled_of(runtime, [load_gray(data_dir, r) for r in train])
    x_val = pooled_of(runtime, [load_gray(data_dir, r) for r in val])
    ood = read_ood(ood_dir)
    neg_grays = [
        decode_image((ood_dir / path).read_bytes(), max_pixels=MAX_PIXELS).gray for path, _ in ood
    ]
    x_neg = pooled_of(runtime, neg_grays)
    neg_category = np.array([category for _, category in ood])

    # C by cross-validated balanced rejection at the target false-rejection rate.
    trials = {
        c: cross_validate(x_pos, x_val, x_neg, neg_category, c, false_rejection) for c in C_GRID
    }
    best_c = max(C_GRID, key=lambda c: (trials[c]["rejection_balanced"], -c))
    scaler, clf = _fit(x_pos, x_neg, neg_category, best_c)
    val_scores = _scores(scaler, clf, x_val)
    threshold = float(np.quantile(val_scores, false_rejection))
    val_sources = np.array([r.source_repo for r in val])
    validation = {
        "C": best_c,
        "cv_folds": 5,
        "negatives": {"dir": str(ood_dir), "n": len(x_neg), **Counter(neg_category.tolist())},
        "positives_train": len(x_pos),
        "val_false_rejection": round(float((val_scores < threshold).mean()), 4),
        "val_false_rejection_by_source": {
            s: round(float((val_scores[val_sources == s] < threshold).mean()), 4)
            for s in sorted(set(val_sources))
        },
        "ood_cross_validated": trials[best_c],
        "c_grid": {str(c): trials[c]["rejection_balanced"] for c in C_GRID},
    }
    gate = GateModel(
        layer=runtime.metadata.gradcam_layer,
        mean=scaler.mean_.tolist(),
        scale=scaler.scale_.tolist(),
        coef=clf.coef_[0].tolist(),
        intercept=float(clf.intercept_[0]),
        threshold=threshold,
        target_false_rejection=false_rejection,
        image_checks=ImageChecks(),
        validation=validation,
    )
    (model_dir / GATE_FILE).write_text(json.dumps(gate.model_dump(mode="json")) + "\n")
    update_metadata(
        model_dir,
        files=[GATE_FILE],
        gate=validation | {"threshold": threshold, "target_false_rejection": false_rejection},
    )
    print(f"[gate] {model_dir / GATE_FILE}: threshold {threshold:.4f}; {json.dumps(validation)}")
    return validation


def main() -> None:
    parser = argparse.ArgumentParser(description="Fit the input gate for a model folder.")
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--data", default=None, help="cxr data folder (default: CXR_DATA_DIR)")
    parser.add_argument("--ood", type=Path, default=None, help="default: <data>/../ood")
    parser.add_argument("--false-rejection", type=float, default=0.01)
    args = parser.parse_args()
    data_dir = resolve_data_dir(DEFAULTS, args.data)
    fit_gate(args.model_dir, data_dir, args.ood, args.false_rejection)


if __name__ == "__main__":
    main()
