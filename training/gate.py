"""Fit the input gate ("frontal chest X-ray or not") for a model folder.

    python -m training.gate MODEL_DIR [--data DIR] [--ood DIR] [--false-rejection 0.01]

Features: the model's own Grad-CAM-layer activations, sqrt of the spatial mean
(``service.inference.runtime.pooled_features``), through the one decode + preprocess path.
Positives: every train-split frontal X-ray of the manifest (all labels: the gate asks "chest
X-ray?", not "which class?"), each clean and as one training-style view (imaging pipeline and
annotation stamps: films from other hospitals, scanners and exports look like these), weighted so
that each source counts as the square root of its size (no hospital dominates the notion of "a
chest X-ray"). Negatives: ``../shared/data/ood`` (laterals, CT, other radiographs, photos,
documents, other medical images), each category weighted equally. A weighted logistic
regression; its threshold is the highest that rejects at most ``false_rejection`` (1 %) of the
*val*-split X-rays and at most ``SOURCE_FALSE_REJECTION`` (3 %) of any val source with at least
``SOURCE_MIN_IMAGES`` images. The negatives have no held-out set of their own, so their rejection
rates are cross-validated (5 folds, each fold's model and threshold fitted without its negatives).
Writes ``gate.json`` into the model folder and its checksum into ``metadata.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from service.inference.gate import GATE_FILE, GateModel, ImageChecks
from service.inference.preprocess import to_model_batch
from service.inference.runtime import ClassifierRuntime
from service.io.decode import decode_image
from training.augment import augment
from training.config import DEFAULTS, view_augment
from training.config import data_dir as resolve_data_dir
from training.data import MAX_PIXELS, load_gray, read_manifest, select
from training.metadata import update_metadata
from training.model_card import rewrite_model_card

C_GRID = (0.003, 0.01, 0.03, 0.1, 0.3)
SOURCE_FALSE_REJECTION = 0.03  # per val source, as the acceptance asks of every test source
SOURCE_MIN_IMAGES = 20  # smaller sources: too few images for a rate


def synthetic_inputs(seed: int = 0) -> dict[str, np.ndarray]:
    """Images that are not chest X-rays and that a user may well send (BGR or gray uint8)."""
    rng = np.random.default_rng(seed)
    side = 384
    photo = np.zeros((side, side, 3), np.uint8)  # a colourful scene: sky, grass, a red disc
    photo[: side // 2] = (235, 170, 90)
    photo[side // 2 :] = (40, 160, 60)
    cv2.circle(photo, (side // 3, side // 2), side // 6, (30, 30, 220), -1)
    photo = np.asarray(cv2.add(photo, rng.integers(0, 25, photo.shape, dtype=np.uint8)))
    document = np.full((side * 4 // 3, side), 250, np.uint8)
    for line in range(14):
        words = " ".join("".join(rng.choice(list("abcdefghij"), 6)) for _ in range(3))
        cv2.putText(document, words, (20, 40 + 34 * line), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 20, 2)
    return {
        "uniform gray": np.full((side, side), 128, np.uint8),
        "blank white": np.full((side, side), 255, np.uint8),
        "black": np.zeros((side, side), np.uint8),
        "gaussian noise": np.clip(rng.normal(128, 50, (side, side)), 0, 255).astype(np.uint8),
        "colour photo-like": photo,
        "document with text": document,
        "1x1": np.full((1, 1), 90, np.uint8),
        "16x16": rng.integers(0, 256, (16, 16), dtype=np.uint8),
    }


def pooled_of(runtime: ClassifierRuntime, grays: list[np.ndarray]) -> np.ndarray:
    parts = []
    for start in tqdm(range(0, len(grays), 16), desc="gate features", unit="batch"):
        batch = to_model_batch(grays[start : start + 16], runtime.input_size)
        parts.append(runtime.predict_with_features(batch)[1])
    return np.concatenate(parts).astype(np.float32)


def read_ood(ood_dir: Path) -> list[tuple[str, str]]:
    with (ood_dir / "manifest.csv").open(newline="") as handle:
        return [(row["path"], row["category"]) for row in csv.DictReader(handle)]


def source_weights(sources: np.ndarray) -> np.ndarray:
    """Per positive: each source weighs sqrt(its size) in total; the weights sum to 1."""
    counts = Counter(sources.tolist())
    weights = np.array([1.0 / np.sqrt(counts[s]) for s in sources.tolist()])
    return weights / weights.sum()


def augmented_views(grays: list[np.ndarray], config: dict[str, Any], seed: int) -> list[np.ndarray]:
    """One view per image made as training makes its first cached view (pipeline + stamps)."""
    settings = view_augment(config, 1)
    return [augment(g, np.random.default_rng([seed, i]), settings) for i, g in enumerate(grays)]


def threshold_for(scores: np.ndarray, sources: np.ndarray, false_rejection: float) -> float:
    """The highest threshold (reject ``score < threshold``) that rejects at most
    ``false_rejection`` of ``scores`` and at most SOURCE_FALSE_REJECTION of every source with
    SOURCE_MIN_IMAGES or more: a source of unusual films is not sacrificed to the average."""

    def allowing(values: np.ndarray, rate: float) -> float:
        return float(np.sort(values)[int(np.floor(rate * len(values)))])

    threshold = allowing(scores, false_rejection)
    for source in set(sources.tolist()):
        mine = scores[sources == source]
        if len(mine) >= SOURCE_MIN_IMAGES:
            threshold = min(threshold, allowing(mine, SOURCE_FALSE_REJECTION))
    return threshold


def _fit(x_pos, pos_w, x_neg, neg_category, c: float) -> tuple[StandardScaler, LogisticRegression]:
    """Positives and negatives weigh the same in total; each negative category weighs the same;
    ``pos_w`` (summing to 1) shares the positives' half out."""
    counts = Counter(neg_category)
    neg_w = np.array([1.0 / (len(counts) * counts[k]) for k in neg_category])
    x = np.concatenate([x_pos, x_neg])
    y = np.concatenate([np.ones(len(x_pos)), np.zeros(len(x_neg))])
    scaler = StandardScaler().fit(x)
    clf = LogisticRegression(C=c, max_iter=5000)
    clf.fit(scaler.transform(x), y, sample_weight=np.concatenate([pos_w, neg_w]) * len(x))
    return scaler, clf


def _scores(scaler: StandardScaler, clf: LogisticRegression, x: np.ndarray) -> np.ndarray:
    return clf.predict_proba(scaler.transform(x))[:, 1]


def cross_validate(
    x_pos, pos_w, x_val, val_sources, x_neg, neg_category, c: float, false_rejection: float
) -> dict:
    """Out-of-fold rejection of the negatives, each fold with its own val-chosen threshold."""
    rejected = np.zeros(len(x_neg), dtype=bool)
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    for fit_idx, held_idx in folds.split(x_neg, neg_category):
        scaler, clf = _fit(x_pos, pos_w, x_neg[fit_idx], neg_category[fit_idx], c)
        threshold = threshold_for(_scores(scaler, clf, x_val), val_sources, false_rejection)
        rejected[held_idx] = _scores(scaler, clf, x_neg[held_idx]) < threshold
    per_category = {
        str(k): round(float(rejected[neg_category == k].mean()), 4)
        for k in sorted(set(neg_category))
    }
    balanced = float(np.mean(list(per_category.values())))
    return {"rejection_balanced": round(balanced, 4), "rejection_by_category": per_category}


def out_of_fold_scores(x_pos, pos_w, x_neg, neg_category, c: float) -> np.ndarray:
    """Each negative's score from the fold model that did not see it (for the ROC)."""
    scores = np.zeros(len(x_neg))
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    for fit_idx, held_idx in folds.split(x_neg, neg_category):
        scaler, clf = _fit(x_pos, pos_w, x_neg[fit_idx], neg_category[fit_idx], c)
        scores[held_idx] = _scores(scaler, clf, x_neg[held_idx])
    return scores


def plot_gate_roc(pos: np.ndarray, neg: np.ndarray, threshold: float, path: Path) -> None:
    """ROC of the gate score: X-rays (val + test) against out-of-fold non-X-rays."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_auc_score, roc_curve

    y = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    scores = np.concatenate([pos, neg])
    fpr, tpr, _ = roc_curve(y, scores)
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot(fpr, tpr, label=f"AUROC {roc_auc_score(y, scores):.4f}")
    ax.plot([(neg >= threshold).mean()], [(pos >= threshold).mean()], "o", label="threshold")
    ax.set_xlabel("non-X-rays accepted (out of fold)")
    ax.set_ylabel("X-rays accepted (val + test)")
    ax.set_title("input gate ROC", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


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
    train, val, test = ([r for r in records if r.split == s] for s in ("train", "val", "test"))
    train_grays = [load_gray(data_dir, r) for r in train]
    config = {**DEFAULTS, **(runtime.metadata.training.get("config") or {})}
    train_grays += augmented_views(train_grays, config, config.get("seed", 0))
    x_pos = pooled_of(runtime, train_grays)
    del train_grays
    pos_w = source_weights(np.array([r.source_repo for r in train] * 2))
    x_val = pooled_of(runtime, [load_gray(data_dir, r) for r in val])
    val_sources = np.array([r.source_repo for r in val])
    x_test = pooled_of(runtime, [load_gray(data_dir, r) for r in test])
    ood = read_ood(ood_dir)
    neg_grays = [
        decode_image((ood_dir / path).read_bytes(), max_pixels=MAX_PIXELS).gray for path, _ in ood
    ]
    x_neg = pooled_of(runtime, neg_grays)
    neg_category = np.array([category for _, category in ood])

    # C by cross-validated balanced rejection at the target false-rejection rate.
    trials = {
        c: cross_validate(x_pos, pos_w, x_val, val_sources, x_neg, neg_category, c, false_rejection)
        for c in C_GRID
    }
    best_c = max(C_GRID, key=lambda c: (trials[c]["rejection_balanced"], -c))
    scaler, clf = _fit(x_pos, pos_w, x_neg, neg_category, best_c)
    val_scores = _scores(scaler, clf, x_val)
    threshold = threshold_for(val_scores, val_sources, false_rejection)
    test_scores, test_sources = (
        _scores(scaler, clf, x_test),
        np.array([r.source_repo for r in test]),
    )
    oof = out_of_fold_scores(x_pos, pos_w, x_neg, neg_category, best_c)
    plot_gate_roc(
        np.concatenate([val_scores, test_scores]), oof, threshold, model_dir / "gate_roc.png"
    )
    validation = {
        "C": best_c,
        "cv_folds": 5,
        "negatives": {"dir": str(ood_dir), "n": len(x_neg), **Counter(neg_category.tolist())},
        "positives_train": len(x_pos),
        "positives": "train split, clean + one training-style view each; sources weighted sqrt",
        "threshold_rule": f"val false rejection <= {false_rejection} overall and <= "
        f"{SOURCE_FALSE_REJECTION} for every source with >= {SOURCE_MIN_IMAGES} images",
        "val_false_rejection": round(float((val_scores < threshold).mean()), 4),
        "val_false_rejection_by_source": {
            s: round(float((val_scores[val_sources == s] < threshold).mean()), 4)
            for s in sorted(set(val_sources))
        },
        "test_false_rejection": round(float((test_scores < threshold).mean()), 4),
        "test_false_rejection_by_source": {
            s: {
                "n": int((test_sources == s).sum()),
                "rate": round(float((test_scores[test_sources == s] < threshold).mean()), 4),
            }
            for s in sorted(set(test_sources))
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
    rewrite_model_card(model_dir, data_dir)  # the card's gate section
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
