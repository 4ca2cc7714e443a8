"""Metric helpers: perfect predictions, bootstrap CI shape, per-source subsets lacking classes."""

from __future__ import annotations

import numpy as np

from training.metrics import expected_calibration_error, full_report, headline

CLASSES = ["covid", "normal", "pneumonia"]


def test_perfect_predictions() -> None:
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    probs = np.eye(3)[y]
    report = full_report(y, probs, CLASSES, n_bootstrap=50)
    assert report["macro_f1"]["value"] == 1.0
    assert report["covid_sensitivity"]["value"] == 1.0
    assert report["macro_f1"]["ci95"] == [1.0, 1.0]
    assert report["calibration"]["ece"] < 1e-9
    assert report["confusion_matrix"] == [[3, 0, 0], [0, 3, 0], [0, 0, 2]]


def test_overconfident_wrong_predictions_have_high_ece() -> None:
    y = np.array([0, 1, 2, 0])
    probs = np.eye(3)[(y + 1) % 3] * 0.97 + 0.01
    assert expected_calibration_error(y, probs)["ece"] > 0.9


def test_subset_without_a_class() -> None:
    y = np.array([1, 1, 2, 2])  # no covid, as in a Kermany-only source
    probs = np.eye(3)[y] * 0.8 + 0.2 / 3
    values = headline(y, probs, CLASSES)
    assert values["covid_sensitivity"] is None and values["auc_covid"] is None
    assert values["macro_f1"] == 1.0  # averaged over the classes present
