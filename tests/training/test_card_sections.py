"""The model card states plainly where a model stands against each target of model 2.0."""

from __future__ import annotations

from typing import Any

from service.inference.artifact import InputSpec, ModelMetadata
from training.card_sections import NIH, gate_section, targets_section

CLASSES = ["covid", "normal", "pneumonia"]


def _metadata(classes: list[str], val_f1: float = 0.90, gate: dict | None = None) -> ModelMetadata:
    extra: dict[str, Any] = {"gate": gate} if gate else {}
    return ModelMetadata(
        name="m",
        version="2.0.0",
        classes=classes,
        input=InputSpec(height=224, width=224),
        preprocessing="gray-area-resize-rgb3-vgg16-caffe-v1",
        sha256="0" * 64,
        training={"phases": {"phase1": {"val_macro_f1": 0.99}, "phase2": {"val_macro_f1": val_f1}}},
        **extra,
    )


def _source(n: int, accuracy: float, pneumonia_recall: float = 0.5) -> dict:
    return {
        "n": n,
        "accuracy": {"value": accuracy},
        "per_class": {"pneumonia": {"recall": pneumonia_recall, "support": 50}},
    }


def _report(f1: float, sensitivity: float, nih_recall: float, changed: float, ece: float) -> dict:
    return {
        "overall": {
            "macro_f1": {"value": f1, "ci95": [f1 - 0.03, f1 + 0.03]},
            "covid_sensitivity": {"value": sensitivity, "ci95": [0.8, 1.0]},
        },
        "per_source": {NIH: _source(91, 0.8, nih_recall), "small/source": _source(5, 0.2)},
        "linear_probe_baseline": {"test_macro_f1": 0.817, "val_macro_f1": 0.788},
        "audit": {"stamp_test": {"top_label_changed": changed, "mean_delta_p_covid": 0.01}},
        "calibration": {"test_ece_15_bins_after": ece},
    }


def test_shortfalls_are_named() -> None:
    text = targets_section(_metadata(CLASSES, 0.82), _report(0.85, 0.90, 0.40, 0.05, 0.06))
    assert "test macro-F1 >= 0.88: 0.850 (95% CI 0.820-0.880), **NOT met**" in text
    assert "above the linear probe on test: 0.850 vs 0.817 (+0.033), **NOT met**" in text
    assert (
        "above the linear probe on val" in text and "0.820 vs 0.788 (+0.032), **NOT met**" in text
    )
    assert "covid sensitivity >= 0.93" in text and "**NOT met**" in text
    assert "NIH adult-pneumonia recall >= 0.6: 0.400 (n = 50), **NOT met**" in text
    assert "top labels changed <= 2%: 5.0%, **NOT met**" in text
    assert "after calibration <= 0.04: 0.0600, **NOT met**" in text


def test_targets_met_and_small_sources_are_not_judged() -> None:
    text = targets_section(_metadata(CLASSES, 0.90), _report(0.90, 0.95, 0.7, 0.01, 0.03))
    assert "NOT" not in text
    assert "no source below" in text  # the 5-image source at 0.2 accuracy is under 20 images


def test_binary_variants_are_not_judged_against_the_3_class_targets() -> None:
    text = targets_section(_metadata(["covid", "normal"]), _report(0.9, 0.9, 0.5, 0.0, 0.0))
    assert text.startswith("The targets apply to the 3-class model only")


def test_gate_section_reports_cross_validated_rejection() -> None:
    gate = {
        "C": 0.1,
        "threshold": 0.5,
        "target_false_rejection": 0.01,
        "val_false_rejection": 0.01,
        "negatives": {"n": 288},
        "ood_cross_validated": {"rejection_by_category": {"ct": 1.0, "lateral_cxr": 0.97}},
    }
    text = gate_section(_metadata(CLASSES, gate=gate))
    assert "ct 100%, lateral_cxr 97%" in text and "288 images" in text
    assert "No input gate" in gate_section(_metadata(CLASSES))
