"""The model card states plainly whether the shipped model meets its targets and beats the probe."""

from training.model_card import _targets

CLASSES = ["covid", "normal", "pneumonia"]


def _overall(f1: float, ci: list[float], sensitivity: float) -> dict:
    return {
        "macro_f1": {"value": f1, "ci95": ci},
        "covid_sensitivity": {"value": sensitivity, "ci95": [0.8, 1.0]},
    }


def test_shortfalls_are_named() -> None:
    text = _targets(_overall(0.885, [0.843, 0.924], 0.912), {"test_macro_f1": 0.891}, CLASSES)
    assert "macro-F1 >= 0.93: 0.885, **NOT met**" in text
    assert "covid sensitivity >= 0.93: 0.912, **NOT met**" in text
    assert "**not clearly** above it" in text


def test_targets_met_and_probe_clearly_beaten() -> None:
    text = _targets(_overall(0.95, [0.92, 0.97], 0.94), {"test_macro_f1": 0.89}, CLASSES)
    assert "NOT" not in text and "not clearly" not in text
    assert "clearly above it" in text


def test_binary_variants_are_not_judged_against_the_3_class_targets() -> None:
    text = _targets(_overall(0.9, [0.8, 0.95], 0.9), {}, ["covid", "normal"])
    assert text == "The 0.93 targets apply to the 3-class model only."
