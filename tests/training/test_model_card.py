"""The model card says where the adult non-COVID pneumonias of the test split go."""

from training.model_card import _adult_pneumonia

CLASSES = ["covid", "normal", "pneumonia"]


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
