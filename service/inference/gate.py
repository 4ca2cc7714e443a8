"""The input gate: "is this a frontal chest radiograph?", answered before any class is reported.

Two parts, both cheap and both fitted or fixed per model (``gate.json`` in the model folder,
written by ``python -m training.gate``, checksummed in ``metadata.json``):

- **Image checks** on what decoding already produced: a nearly constant image, a strip-shaped
  image, a colourful original (X-rays are gray; photos, fundus and histology images are not).
- **A feature gate**: logistic regression "frontal CXR vs anything else" on the model's own
  Grad-CAM-layer activations, pooled as sqrt(spatial mean): computed from the same forward pass
  as the probabilities, so it costs a dot product. The softmax is no guard: images the model was
  never meant for often get *more* confident class scores than real X-rays.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.errors import ModelArtifactError

GATE_FILE = "gate.json"
GateMode = Literal["enforce", "report", "off"]
EXPECTED = "a frontal (PA/AP) chest radiograph"


class ImageChecks(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_std: float = Field(
        4.0, ge=0, description="Gray-level std (0-255) below which an image is blank"
    )
    max_aspect: float = Field(
        2.5, ge=1, description="Longer / shorter side above which it is a strip"
    )
    max_colourfulness: float = Field(
        0.12, ge=0, description="Mean chroma (0-1) of the original above which it is a colour image"
    )


class GateModel(BaseModel):
    """What ``gate.json`` holds: a standardised logistic regression plus the image checks."""

    model_config = ConfigDict(extra="allow")

    layer: str
    feature: str = "sqrt(spatial mean of the layer's activations)"
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    threshold: float = Field(ge=0, le=1, description="Minimum P(frontal chest X-ray) to pass")
    target_false_rejection: float = 0.01
    image_checks: ImageChecks = Field(default_factory=ImageChecks)
    validation: dict[str, object] = Field(default_factory=dict)


class InputGate:
    def __init__(self, model: GateModel) -> None:
        sizes = {len(model.mean), len(model.scale), len(model.coef)}
        if len(sizes) != 1:
            raise ModelArtifactError(f"{GATE_FILE}: mean, scale and coef differ in length")
        self.model = model
        self._mean = np.asarray(model.mean, dtype=np.float64)
        self._scale = np.asarray(model.scale, dtype=np.float64)
        self._coef = np.asarray(model.coef, dtype=np.float64)
        self.threshold = model.threshold
        self.checks = model.image_checks

    @classmethod
    def load(cls, model_dir: Path) -> InputGate | None:
        path = model_dir / GATE_FILE
        if not path.is_file():
            return None
        try:
            return cls(GateModel.model_validate(json.loads(path.read_text())))
        except (ValueError, ValidationError) as exc:
            raise ModelArtifactError(f"{path} is invalid: {exc}") from exc

    @property
    def n_features(self) -> int:
        return len(self._coef)

    def scores(self, pooled: np.ndarray) -> np.ndarray:
        """P(frontal chest X-ray) per row of pooled features (n, C)."""
        z = (pooled.astype(np.float64) - self._mean) / self._scale
        logits = z @ self._coef + self.model.intercept
        return (1.0 / (1.0 + np.exp(-np.clip(logits, -50, 50)))).astype(np.float32)


def image_check_failure(
    gray: np.ndarray, width: int, height: int, colourfulness: float, checks: ImageChecks
) -> str | None:
    """Why the decoded image cannot be a chest radiograph, or None."""
    longer, shorter = max(width, height), max(1, min(width, height))
    if longer / shorter > checks.max_aspect:
        return f"the image is strip-shaped ({width}x{height})"
    if colourfulness > checks.max_colourfulness:
        return f"the image is in colour (colourfulness {colourfulness:.2f}); radiographs are gray"
    if float(gray.std()) < checks.min_std:
        return "the image is blank or nearly uniform"
    return None


@dataclass(frozen=True)
class GateVerdict:
    score: float | None  # P(frontal chest X-ray); None without a fitted gate
    threshold: float | None
    passed: bool
    reason: str | None  # why it did not pass

    @property
    def message(self) -> str:
        return (
            f"This does not look like {EXPECTED}: {self.reason}. The service classifies "
            "frontal chest X-rays only."
        )


def judge(
    gate: InputGate | None,
    pooled: np.ndarray,
    gray: np.ndarray,
    size: tuple[int, int],
    colourfulness: float,
) -> GateVerdict:
    """The verdict for one image: its image checks first (cheapest, clearest), then the gate.
    ``pooled``: the image's row of pooled features; ``size``: the file's (width, height)."""
    checks = gate.checks if gate else ImageChecks()
    failure = image_check_failure(gray, size[0], size[1], colourfulness, checks)
    if gate is None:
        return GateVerdict(None, None, failure is None, failure)
    score = float(gate.scores(pooled[None])[0])
    if failure is None and score < gate.threshold:
        failure = f"input gate score {score:.3f} is below its threshold {gate.threshold:.3f}"
    return GateVerdict(round(score, 4), round(gate.threshold, 4), failure is None, failure)
