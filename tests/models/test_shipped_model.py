"""The committed models (the default and the binary variants beside it): each artifact checks
out, and the backend ``auto`` serves keeps parity.

``make export-fast`` measured the parity gates on the whole test split (``parity.json``). Here
the backend that ``auto`` picks is measured again on this machine, on real test-split images,
against plain TensorFlow fp32: a different CPU can run int8 or bf16 kernels differently.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.inference.artifact import read_metadata
from service.inference.backends import choose_backend
from service.inference.preprocess import to_model_batch
from service.inference.runtime import ClassifierRuntime
from service.main import create_app
from service.settings import DEFAULT_EXTRA_MODEL_DIRS, Settings
from training.data import load_gray, read_manifest, select
from training.fast_export import GATES, compare
from training.gate import synthetic_inputs

MODELS = Path(__file__).resolve().parents[2] / "models"
FOLDERS = sorted(p.parent for p in MODELS.glob("*/metadata.json"))


@pytest.fixture(scope="module", params=FOLDERS, ids=[p.name for p in FOLDERS])
def shipped(request: pytest.FixtureRequest) -> Path:
    folder: Path = request.param
    return folder


@pytest.fixture(scope="module")
def metadata(shipped: Path):
    return read_metadata(shipped)  # verifies every file's sha256


def test_the_default_and_both_binary_variants_are_shipped() -> None:
    names = {p.name for p in FOLDERS}
    assert names >= {
        "cxr-vgg16-3class",
        "cxr-vgg16-covid-vs-normal",
        "cxr-vgg16-covid-vs-pneumonia",
    }
    default_extras = {Path(p).name for p in DEFAULT_EXTRA_MODEL_DIRS.split(",")}
    assert default_extras == names - {"cxr-vgg16-3class"}  # served beside the default


def test_parity_report_is_complete_and_the_default_passed_it(metadata) -> None:
    parity = metadata.backends["parity"]
    assert parity["gates"] == GATES
    test_split = [
        r
        for r in read_manifest(Settings().data_dir)
        if r.split == "test" and r.label in metadata.classes
    ]
    assert parity["test_images"] == len(test_split)  # the whole test split
    default = metadata.backends["default"]
    assert choose_backend("auto", metadata) == default
    if default != "tensorflow":
        assert parity["backends"][default]["gates_passed"] is True
        figures = parity["backends"][default]
        assert figures["argmax_agreement"] >= GATES["argmax_agreement_min"]
        assert figures["max_abs_prob_delta"] <= GATES["max_abs_prob_delta_max"]


def test_default_backend_keeps_parity_on_real_test_images(
    shipped: Path, metadata, data_dir: Path
) -> None:
    records = [r for r in select(read_manifest(data_dir), metadata.classes, 6) if r.split == "test"]
    assert len(records) == 6 * len(metadata.classes)
    labels = np.array([metadata.classes.index(r.label) for r in records])
    batch = to_model_batch([load_gray(data_dir, r) for r in records], (224, 224))
    targets = np.full(len(records), -1, np.int32)

    def run(backend: str) -> tuple[np.ndarray, np.ndarray]:
        runtime = ClassifierRuntime.load(shipped, backend=backend, metadata=metadata)
        explained = runtime.explain(batch, targets)
        return explained.probabilities, explained.cams

    figures = compare(run("tensorflow"), run("auto"), labels)
    assert figures["argmax_agreement"] == 1.0
    assert figures["max_abs_prob_delta"] <= GATES["max_abs_prob_delta_max"], figures
    assert figures["gradcam_correlation_mean"] >= GATES["gradcam_correlation_min"], figures


@pytest.fixture(scope="module")
def client(shipped: Path):
    settings = Settings(model_dir=shipped, background_load=False, extra_model_dirs="")
    with TestClient(create_app(settings)) as served:
        yield served


def _png(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", image)
    assert ok
    return encoded.tobytes()


def test_ships_with_a_calibration_and_an_input_gate(metadata) -> None:
    assert "gate.json" in metadata.files  # checksummed, so verified at start-up
    gate = metadata.model_extra["gate"]
    assert gate["target_false_rejection"] == 0.01
    assert metadata.calibration is not None and metadata.calibration.temperature > 0


def test_gate_refuses_synthetic_non_xrays(client: TestClient) -> None:
    """Blank, black, white, noise, colour photo, document, tiny: none is classified."""
    for name, image in synthetic_inputs().items():
        response = client.post("/predict", files={"file": ("x.png", _png(image))})
        assert response.status_code == 422, (name, response.text)
        error = response.json()["error"]
        assert error["code"] in {"not_a_chest_xray", "unsuitable_image"}, (name, error)
        if error["code"] == "unsuitable_image":
            assert "at least" in error["message"], name  # only the minimum-size refusal


def test_gate_passes_test_xrays_of_every_source(client: TestClient, data_dir: Path) -> None:
    classes = client.get("/model").json()["classes"]
    records = [r for r in read_manifest(data_dir) if r.split == "test" and r.label in classes]
    by_source: dict[str, list] = {}
    for record in records:
        by_source.setdefault(record.source_repo, []).append(record)
    for source, rows in sorted(by_source.items()):
        for record in rows[:2]:
            data = (data_dir / record.path).read_bytes()
            response = client.post("/predict", files={"file": ("x.png", data)})
            assert response.status_code == 200, (source, record.path, response.text)
            assert response.json()["input_check"]["passed"] is True
            assert set(response.json()["probabilities"]) == set(classes)  # its own classes
