"""Baseline: logistic regression on frozen ImageNet VGG16 block5_pool features, global-average-
pooled. Trained on the clean train views, C chosen on val, reported on test. Anything we ship
must clearly beat this."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, recall_score
from sklearn.preprocessing import StandardScaler


def linear_probe(x: dict[str, np.ndarray], y: dict[str, np.ndarray], classes: list[str]) -> dict:
    """``x[split]``: (n, 7, 7, C) block5_pool features; ``y[split]``: int labels."""
    pooled = {s: x[s].astype(np.float32).mean(axis=(1, 2)) for s in x}
    scaler = StandardScaler().fit(pooled["train"])
    z = {s: scaler.transform(v) for s, v in pooled.items()}
    best = None
    for c in (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0):
        clf = LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
        clf.fit(z["train"], y["train"])
        val_f1 = f1_score(y["val"], clf.predict(z["val"]), average="macro")
        if best is None or val_f1 > best[0]:
            best = (val_f1, c, clf)
    assert best is not None  # the grid is not empty
    val_f1, c, clf = best
    predicted = clf.predict(z["test"])
    result = {
        "method": "logistic regression on GAP(frozen ImageNet VGG16 block5_pool), C chosen on val",
        "C": c,
        "val_macro_f1": float(val_f1),
        "test_macro_f1": float(f1_score(y["test"], predicted, average="macro")),
        "test_accuracy": float(accuracy_score(y["test"], predicted)),
    }
    if "covid" in classes:
        covid = classes.index("covid")
        result["test_covid_sensitivity"] = float(
            recall_score(y["test"] == covid, predicted == covid)
        )
    return result
