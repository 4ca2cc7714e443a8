"""The model card states plainly whether the shipped model meets its targets and beats the probe."""

from training.model_card import _adult_pneumonia, _targets

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


def _prediction(label: str, source: str, probabilities: list[float]) -> dict:
    return {"label": label, "source": source, "probabilities": probabilities}


def test_adult_pneumonias_are_counted_by_predicted_class() -> None:
    report = {
        "predictions": [
            _prediction("pneumonia", "ieee8023/covid-chestxray-dataset", [0.8, 0.1, 0.1]),
            _prediction("pneumonia", "ieee8023/covid-chestxray-dataset", [0.7, 0.2, 0.1]),
            _prediction("pneumonia", "ieee8023/covid-chestxray-dataset", [0.1, 0.1, 0.8]),
            _prediction("pneumonia", "lecuong1502/BTL_Machine_Learning", [0.9, 0.0, 0.1]),
            _prediction("covid", "ieee8023/covid-chestxray-dataset", [0.9, 0.0, 0.1]),
        ]
    }
    text = _adult_pneumonia(report, CLASSES)
    assert "Of the 3 adult (ieee8023) pneumonias" in text
    assert "predicts covid 2, pneumonia 1: it tends to read" in text
    assert _adult_pneumonia(report, ["covid", "normal"]) == ""
