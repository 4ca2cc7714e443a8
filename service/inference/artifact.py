"""The model artifact: ``<model_dir>/model.keras`` + ``metadata.json``, validated at start-up.

``metadata.json`` is the contract between training and serving: class names and order, input
size, the preprocessing id, the Grad-CAM and logits layer names, the sha256 of the model file,
the training config and the evaluation metrics. Anything inconsistent raises
``ModelArtifactError`` with a message saying what to do, and the service does not start.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.errors import ModelArtifactError
from service.inference.preprocess import PREPROCESSING_ID

METADATA_FILE = "metadata.json"
MODEL_FILE = "model.keras"


class InputSpec(BaseModel):
    height: int = Field(gt=0, examples=[224])
    width: int = Field(gt=0, examples=[224])
    channels: int = Field(3, examples=[3])
    color: str = Field("grayscale replicated to 3 channels", examples=["grayscale replicated"])


class Calibration(BaseModel):
    """Temperature scaling fitted on the validation split: probabilities = softmax(logits / T)."""

    model_config = ConfigDict(extra="allow")

    method: str = Field("temperature", examples=["temperature"])
    temperature: float = Field(gt=0, examples=[1.6])


class ModelMetadata(BaseModel):
    """What ``metadata.json`` holds. Unknown keys are kept (training may add more)."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    name: str = Field(min_length=1, examples=["cxr-vgg16-3class"])
    version: str = Field(min_length=1, examples=["1.0.0"])
    classes: list[str] = Field(min_length=2, examples=[["covid", "normal", "pneumonia"]])
    input: InputSpec
    preprocessing: str = Field(examples=[PREPROCESSING_ID])
    gradcam_layer: str = Field("block5_conv3", examples=["block5_conv3"])
    logits_layer: str = Field("logits", examples=["logits"])
    model_file: str = MODEL_FILE
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    training: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    files: dict[str, str] = Field(
        default_factory=dict, description="Other files in the folder -> their sha256."
    )
    backends: dict[str, Any] = Field(
        default_factory=dict,
        description="Exported fast trunks, their accuracy parity with fp32 and the default.",
    )
    calibration: Calibration | None = Field(
        None, description="Applied to the logits by the service; None: plain softmax."
    )

    @property
    def temperature(self) -> float:
        return self.calibration.temperature if self.calibration else 1.0


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_metadata(model_dir: Path) -> ModelMetadata:
    """Read and validate ``metadata.json`` and the model file's checksum (no TensorFlow)."""
    metadata_path = model_dir / METADATA_FILE
    if not metadata_path.is_file():
        raise ModelArtifactError(
            f"No model found: {metadata_path} does not exist. Train one with `make train` "
            "or point CXR_MODEL_DIR at a model folder."
        )
    try:
        metadata = ModelMetadata.model_validate(json.loads(metadata_path.read_text()))
    except (ValueError, ValidationError) as exc:
        raise ModelArtifactError(f"{metadata_path} is invalid: {exc}") from exc
    if len(set(metadata.classes)) != len(metadata.classes):
        raise ModelArtifactError(f"{metadata_path}: class names repeat: {metadata.classes}")
    if metadata.preprocessing != PREPROCESSING_ID:
        raise ModelArtifactError(
            f"{metadata_path}: model expects preprocessing {metadata.preprocessing!r}, "
            f"this service implements {PREPROCESSING_ID!r}."
        )
    model_path = model_dir / metadata.model_file
    if not model_path.is_file():
        raise ModelArtifactError(f"Model file {model_path} is missing.")
    actual = sha256_file(model_path)
    if actual != metadata.sha256:
        raise ModelArtifactError(
            f"{model_path} has sha256 {actual}, but metadata.json says {metadata.sha256}: "
            "the file is corrupt or does not belong to this metadata."
        )
    for name, expected in metadata.files.items():
        path = model_dir / name
        if not path.is_file() or sha256_file(path) != expected:
            raise ModelArtifactError(f"{path} is missing or does not match its sha256.")
    return metadata


def write_metadata(model_dir: Path, metadata: ModelMetadata) -> None:
    """Atomically write ``metadata.json`` (used by training and tests)."""
    target = model_dir / METADATA_FILE
    temporary = target.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(metadata.model_dump(mode="json"), indent=2) + "\n")
    temporary.replace(target)
