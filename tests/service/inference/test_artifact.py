from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from service.errors import ModelArtifactError
from service.inference.artifact import read_metadata
from service.inference.runtime import ClassifierRuntime


@pytest.fixture
def artifact_copy(tiny_model_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(tiny_model_dir, target)
    return target


def _edit_metadata(folder: Path, **changes: object) -> None:
    path = folder / "metadata.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_valid_artifact_reads(tiny_model_dir: Path) -> None:
    assert read_metadata(tiny_model_dir).classes == ["covid", "normal", "pneumonia"]


def test_missing_folder_says_how_to_get_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelArtifactError, match="make train"):
        read_metadata(tmp_path / "nothing")


def test_hash_mismatch(artifact_copy: Path) -> None:
    _edit_metadata(artifact_copy, sha256="0" * 64)
    with pytest.raises(ModelArtifactError, match="sha256"):
        read_metadata(artifact_copy)


def test_wrong_preprocessing(artifact_copy: Path) -> None:
    _edit_metadata(artifact_copy, preprocessing="imagenet-torch")
    with pytest.raises(ModelArtifactError, match="preprocessing"):
        read_metadata(artifact_copy)


def test_duplicate_classes(artifact_copy: Path) -> None:
    _edit_metadata(artifact_copy, classes=["covid", "covid", "normal"])
    with pytest.raises(ModelArtifactError, match="repeat"):
        read_metadata(artifact_copy)


def test_wrong_class_count(artifact_copy: Path) -> None:
    _edit_metadata(artifact_copy, classes=["covid", "normal"])
    with pytest.raises(ModelArtifactError, match="outputs"):
        ClassifierRuntime.load(artifact_copy)


def test_missing_gradcam_layer(artifact_copy: Path) -> None:
    _edit_metadata(artifact_copy, gradcam_layer="block4_conv3")
    with pytest.raises(ModelArtifactError, match="block4_conv3"):
        ClassifierRuntime.load(artifact_copy)


def test_branching_head_is_split_exactly(tmp_path: Path) -> None:
    """Heads may branch after the Grad-CAM layer; they must not bypass it."""
    import keras
    import numpy as np

    from tests.tiny_model import build_tiny_artifact

    images = keras.Input((64, 64, 3))
    features = keras.layers.Conv2D(4, 3, name="block5_conv3")(
        keras.layers.AveragePooling2D(4)(images)
    )
    pooled = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(features))
    flat = keras.layers.Dense(3)(keras.layers.Flatten()(features))
    logits = keras.layers.Add(name="logits")([pooled, flat])
    model = keras.Model(images, keras.layers.Activation("softmax")(logits))
    runtime = ClassifierRuntime.load(build_tiny_artifact(tmp_path / "branch", model))
    runtime.warm_up()
    batch = np.random.default_rng(0).normal(0, 50, (2, 64, 64, 3)).astype(np.float32)
    np.testing.assert_allclose(runtime.predict(batch), model(batch), atol=1e-6)

    bypass = keras.layers.Add(name="logits")(
        [pooled, keras.layers.Dense(3)(keras.layers.Flatten()(images))]
    )
    leaky = keras.Model(images, keras.layers.Activation("softmax")(bypass))
    with pytest.raises(ModelArtifactError, match="only through"):
        ClassifierRuntime.load(build_tiny_artifact(tmp_path / "leaky", leaky))
