"""A tiny end-to-end run through the real training code: real images from the manifest, a tiny
random-weight backbone, one epoch per phase, export, evaluation, and loading by the service."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from service.inference.artifact import read_metadata
from service.inference.preprocess import PREPROCESSING_ID, to_model_input
from service.inference.runtime import ClassifierRuntime
from service.io.decode import decode_image
from training import train
from training.config import REPO_ROOT, load_config
from training.data import MAX_PIXELS, load_gray, read_manifest
from training.weights import WeightsError


@pytest.fixture(scope="module")
def tiny_model_dir(cxr_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("tiny")
    config = yaml.safe_load((REPO_ROOT / "training/configs/tiny.yaml").read_text())
    config.update(
        runs_dir=str(work / "runs"), export_dir=str(work / "models"), data_dir=str(cxr_data_dir)
    )
    config["limit_per_split_class"] = 2
    config["phase3"] = {"epochs": 1, "lr": 1.0e-5, "batch_size": 8, "patience": 1}
    path = work / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return train.main(["--config", str(path)])


def test_export_is_loadable_by_the_service(tiny_model_dir: Path) -> None:
    metadata = read_metadata(tiny_model_dir)
    assert metadata.preprocessing == PREPROCESSING_ID
    assert metadata.gradcam_layer == "block5_conv3" and metadata.logits_layer == "logits"
    assert metadata.training["config"]["backbone"] == "tiny"
    assert "git_commit" in metadata.training and "summary" in metadata.training["data"]
    assert set(metadata.training["phases"]) == {"phase1", "phase2", "phase3"}
    runtime = ClassifierRuntime.load(tiny_model_dir)
    runtime.warm_up()  # trunk + head split reproduces the whole model
    probs = runtime.predict(np.zeros((2, 224, 224, 3), np.float32))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_evaluation_outputs(tiny_model_dir: Path) -> None:
    metrics = json.loads((tiny_model_dir / "metrics.json").read_text())
    assert "macro_f1" in metrics["overall"] and "ci95" in metrics["overall"]["macro_f1"]
    assert metrics["per_source"] and metrics["linear_probe_baseline"]
    for name in ("MODEL_CARD.md", "confusion_matrix.png", "roc.png", "reliability.png"):
        assert (tiny_model_dir / name).is_file()
    assert "macro_f1" in read_metadata(tiny_model_dir).metrics


def test_training_and_serving_tensors_are_equal(cxr_data_dir: Path) -> None:
    """Training reads images via load_gray; the service via decode_image: same tensor."""
    record = read_manifest(cxr_data_dir)[0]
    training_tensor = to_model_input(load_gray(cxr_data_dir, record), (224, 224))
    served = decode_image((cxr_data_dir / record.path).read_bytes(), max_pixels=MAX_PIXELS)
    np.testing.assert_array_equal(training_tensor, to_model_input(served.gray, (224, 224)))


def test_refuses_random_weights_without_opt_in(tmp_path: Path) -> None:
    from training.model import build_model

    config = load_config(REPO_ROOT / "training/configs/default.yaml")
    with pytest.raises(WeightsError, match="make weights"):
        build_model(config, weights_path=tmp_path / "missing.weights.h5")
