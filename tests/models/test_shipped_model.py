"""The committed model: its artifact checks out, and the backend ``auto`` serves keeps parity.

``make export-fast`` measured the parity gates on the whole test split (``parity.json``). Here
the backend that ``auto`` picks is measured again on this machine, on real test-split images,
against plain TensorFlow fp32: a different CPU can run int8 or bf16 kernels differently.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.inference.artifact import read_metadata
from service.inference.backends import choose_backend
from service.inference.preprocess import to_model_batch
from service.inference.runtime import ClassifierRuntime
from training.data import load_gray, read_manifest, select
from training.fast_export import GATES, compare

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "cxr-vgg16-3class"


@pytest.fixture(scope="module")
def metadata():
    return read_metadata(SHIPPED)  # verifies every file's sha256


def test_parity_report_is_complete_and_the_default_passed_it(metadata) -> None:
    parity = metadata.backends["parity"]
    assert parity["gates"] == GATES
    assert parity["test_images"] == 239  # the whole test split
    default = metadata.backends["default"]
    assert choose_backend("auto", metadata) == default
    if default != "tensorflow":
        assert parity["backends"][default]["gates_passed"] is True
        figures = parity["backends"][default]
        assert figures["argmax_agreement"] >= GATES["argmax_agreement_min"]
        assert figures["max_abs_prob_delta"] <= GATES["max_abs_prob_delta_max"]


def test_default_backend_keeps_parity_on_real_test_images(metadata, data_dir: Path) -> None:
    records = [r for r in select(read_manifest(data_dir), metadata.classes, 6) if r.split == "test"]
    assert len(records) == 6 * len(metadata.classes)
    labels = np.array([metadata.classes.index(r.label) for r in records])
    batch = to_model_batch([load_gray(data_dir, r) for r in records], (224, 224))
    targets = np.full(len(records), -1, np.int32)

    def run(backend: str) -> tuple[np.ndarray, np.ndarray]:
        runtime = ClassifierRuntime.load(SHIPPED, backend=backend, metadata=metadata)
        explained = runtime.explain(batch, targets)
        return explained.probabilities, explained.cams

    figures = compare(run("tensorflow"), run("auto"), labels)
    assert figures["argmax_agreement"] == 1.0
    assert figures["max_abs_prob_delta"] <= GATES["max_abs_prob_delta_max"], figures
    assert figures["gradcam_correlation_mean"] >= GATES["gradcam_correlation_min"], figures
