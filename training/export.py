"""Write the model folder the service loads: model.keras + metadata.json (+ evaluation later)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import keras

from service.inference.artifact import (
    MODEL_FILE,
    InputSpec,
    ModelMetadata,
    sha256_file,
)
from service.inference.preprocess import PREPROCESSING_ID
from training.config import REPO_ROOT
from training.metadata import create_metadata


def git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "training"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def export_model(
    model: keras.Model,
    config: dict[str, Any],
    model_dir: Path,
    training: dict,
    calibration: dict[str, Any] | None = None,
) -> ModelMetadata:
    model_dir.mkdir(parents=True, exist_ok=True)
    model_path = model_dir / MODEL_FILE
    temporary = model_dir / "model.tmp.keras"
    model.save(temporary)
    temporary.replace(model_path)
    size = config["image_size"]
    metadata = ModelMetadata(
        name=config["name"],
        version=config["version"],
        classes=list(config["classes"]),
        input=InputSpec(height=size, width=size, channels=3),
        preprocessing=PREPROCESSING_ID,
        gradcam_layer="block5_conv3",
        logits_layer="logits",
        sha256=sha256_file(model_path),
        training=training,
        metrics={},
        calibration=calibration,
    )
    return create_metadata(model_dir, metadata)
