"""Classification metrics with bootstrap confidence intervals (numpy + scikit-learn only)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)


def expected_calibration_error(y: np.ndarray, probs: np.ndarray, bins: int = 15) -> dict:
    """Top-label ECE with equal-width confidence bins; also returns the bins for the diagram."""
    confidence, correct = probs.max(axis=1), (probs.argmax(axis=1) == y).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            gap = abs(correct[mask].mean() - confidence[mask].mean())
            ece += mask.mean() * gap
            rows.append(
                {
                    "low": float(edges[b]),
                    "high": float(edges[b + 1]),
                    "count": int(mask.sum()),
                    "accuracy": float(correct[mask].mean()),
                    "confidence": float(confidence[mask].mean()),
                }
            )
    return {"ece": float(ece), "n_bins": bins, "bins": rows}


def one_vs_rest_auc(
    y: np.ndarray, probs: np.ndarray, classes: list[str]
) -> dict[str, float | None]:
    aucs: dict[str, float | None] = {}
    for i, name in enumerate(classes):
        positive = y == i
        aucs[name] = (
            float(roc_auc_score(positive, probs[:, i])) if 0 < positive.sum() < len(y) else None
        )
    return aucs


def headline(y: np.ndarray, probs: np.ndarray, classes: list[str]) -> dict[str, float | None]:
    """The numbers we bootstrap: macro-F1, accuracy, covid sensitivity/specificity, AUCs."""
    predicted = probs.argmax(axis=1)
    present = sorted(set(y.tolist()))  # per-source subsets may lack classes
    values: dict[str, float | None] = {
        "macro_f1": float(f1_score(y, predicted, labels=present, average="macro", zero_division=0)),
        "accuracy": float((predicted == y).mean()),
    }
    if "covid" in classes:
        covid = classes.index("covid")
        is_covid, said_covid = y == covid, predicted == covid
        values["covid_sensitivity"] = float(said_covid[is_covid].mean()) if is_covid.any() else None
        values["covid_specificity"] = (
            float((~said_covid[~is_covid]).mean()) if (~is_covid).any() else None
        )
    for name, auc in one_vs_rest_auc(y, probs, classes).items():
        values[f"auc_{name}"] = auc
    return values


def bootstrap_ci(
    y: np.ndarray, probs: np.ndarray, classes: list[str], n: int, seed: int = 0
) -> dict:
    """Percentile 95% CIs over ``n`` resamples of the images (with replacement)."""
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {}
    for _ in range(n):
        index = rng.integers(0, len(y), len(y))
        for key, value in headline(y[index], probs[index], classes).items():
            if value is not None:
                samples.setdefault(key, []).append(value)
    return {
        k: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))]
        for k, v in samples.items()
        if len(v) >= 0.9 * n
    }


def full_report(y: np.ndarray, probs: np.ndarray, classes: list[str], n_bootstrap: int) -> dict:
    predicted = probs.argmax(axis=1)
    labels = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y, predicted, labels=labels, zero_division=0
    )
    values = headline(y, probs, classes)
    ci = bootstrap_ci(y, probs, classes, n_bootstrap)
    return {
        "n": len(y),
        **{k: {"value": v, "ci95": ci.get(k)} for k, v in values.items()},
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(classes)
        },
        "confusion_matrix": confusion_matrix(y, predicted, labels=labels).tolist(),
        "calibration": expected_calibration_error(y, probs),
    }
