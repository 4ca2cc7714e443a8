"""Training configs: YAML files in training/configs/, validated by the typed models below.

Every level forbids unknown keys, so a misspelt key anywhere (``phase2: {lr_: ...}``) is an
error naming its path instead of a silently ignored setting. Fields a YAML file leaves out take
the defaults below. ``load_config`` returns the validated config as a plain dict (what the
pipeline passes around, and what is saved verbatim next to checkpoints and in metadata.json).
Paths in it are relative to the repository root.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

REPO_ROOT = Path(__file__).resolve().parent.parent


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HeadConfig(_Strict):
    pool_size: int = Field(4, ge=1)
    pool_strides: int = Field(3, ge=1)
    dense: int = Field(128, ge=1)
    dropout: float = Field(0.5, ge=0.0, lt=1.0)


class AugmentConfig(_Strict):
    """Probabilities and ranges of ``training.augment.augment`` (uint8 image in and out)."""

    hflip: float = 0.5
    rotate_deg: float = 12.0
    shift: float = 0.06
    zoom: tuple[float, float] = (0.9, 1.12)
    crop_pad: float = 0.08
    brightness: float = 20.0
    contrast: tuple[float, float] = (0.8, 1.2)
    gamma: tuple[float, float] = (0.75, 1.35)
    blur: float = 0.25
    sharpen: float = 0.2
    jpeg: float = 0.5
    jpeg_quality: tuple[int, int] = (25, 95)
    down_up: float = 0.5  # resolution bottleneck: shrink the longer side, then scale back up
    down_up_size: tuple[int, int] = (112, 256)
    stamps: float = 0.0  # probability of burning random annotations in (training.stamps)
    max_stamps: int = Field(4, ge=1)


class CacheConfig(_Strict):
    views: int = Field(4, ge=0)  # augmented views per training image (+ the clean one)
    batch_size: int = Field(16, ge=1)
    # One augmentation recipe (a key of ``TrainConfig.recipes``) per augmented view; None: all
    # views use ``augment`` as it is. Phases can then train on a subset (ablations, one cache).
    recipes: list[str] | None = None


class PhaseConfig(_Strict):
    epochs: int = Field(ge=1)
    lr: float = Field(gt=0)
    batch_size: int = Field(ge=1)
    patience: int = Field(ge=1)
    max_minutes: float | None = None  # no new epoch that would end past this budget
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    recipes: list[str] | None = None  # train on these views' recipes only (None: every view)


class EvaluateConfig(_Strict):
    bootstrap: int = Field(1000, ge=0)
    gallery: int = Field(8, ge=0)
    stamp_seed: int = 20261206  # the audit's stamps: another generator and seed than training's


class TrainConfig(_Strict):
    name: str = "cxr-vgg16-3class"
    version: str = "1.0.0"
    classes: list[str] = Field(default_factory=lambda: ["covid", "normal", "pneumonia"])
    data_dir: str = "../shared/data/cxr"
    limit_per_split_class: int | None = None  # tiny test runs: at most N per split x class
    backbone: Literal["vgg16", "tiny"] = "vgg16"  # tiny: CI only, VGG16's layer names
    allow_random_weights: bool = False
    seed: int = 1234
    image_size: int = 224
    feature_layer: str = "block4_pool"  # frozen trunk output cached on disk; later layers train
    # class: class-balanced; class_source: also even out sources within a class
    weighting: Literal["class", "class_source"] = "class"
    head: HeadConfig = Field(default_factory=HeadConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    # Named overrides of ``augment``, used by ``cache.recipes`` (e.g. {no_stamps: {stamps: 0}}).
    recipes: dict[str, dict[str, Any]] = Field(default_factory=dict)
    phase1: PhaseConfig = PhaseConfig(epochs=30, lr=1.0e-3, batch_size=32, patience=6)
    phase2: PhaseConfig = PhaseConfig(epochs=6, lr=1.0e-4, batch_size=16, patience=2)
    phase3: PhaseConfig | None = None  # optional continuation of phase 2 at a lower rate
    calibrate: bool = True  # temperature scaling fitted on the val split
    fast_export: bool = True  # OpenVINO trunks + parity report after evaluation
    # A smaller model folder (the binary variants ship beside the default): no int8 trunk, and
    # the fp32 IR's weights stored as fp16 (59 -> 30 MB); the parity gates judge the result.
    fast_export_int8: bool = True
    trunk_weights_fp16: bool = False
    fit_gate: bool = True  # the input gate (training.gate) after evaluation
    runs_dir: str = "runs"
    export_dir: str = "models"
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)

    @model_validator(mode="after")
    def _recipes_consistent(self) -> TrainConfig:
        for name, override in self.recipes.items():
            AugmentConfig.model_validate({**self.augment.model_dump(), **override})
            if not name:
                raise ValueError("recipe names must not be empty")
        used = list(self.cache.recipes or [])
        for phase in (self.phase1, self.phase2, self.phase3):
            used += list(phase.recipes or []) if phase else []
        missing = sorted(set(used) - set(self.recipes))
        if missing:
            raise ValueError(f"recipes {missing} are used but not defined under `recipes`")
        if self.cache.recipes is not None and len(self.cache.recipes) != self.cache.views:
            raise ValueError("cache.recipes needs one recipe per view (cache.views)")
        return self


DEFAULTS: dict[str, Any] = TrainConfig().model_dump(mode="json")


def validate_config(values: dict[str, Any], source: str = "config") -> dict[str, Any]:
    try:
        return TrainConfig.model_validate(values).model_dump(mode="json")
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(f"{source}: invalid training config: {problems}") from exc


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_yaml(path: Path) -> dict[str, Any]:
    """A config file's values; ``extends: other.yaml`` (beside it) merges it over another."""
    values = yaml.safe_load(path.read_text()) or {}
    parent = values.pop("extends", None)
    if parent is None:
        return dict(values)
    return _merge(read_yaml(path.parent / parent), values)


def load_config(path: Path | str) -> dict[str, Any]:
    return validate_config(read_yaml(Path(path)), str(path))


def view_augment(config: dict[str, Any], view: int) -> dict[str, Any]:
    """The augmentation settings of augmented view ``view`` (1-based) of a training image."""
    recipes = config["cache"]["recipes"]
    if not recipes:
        return dict(config["augment"])
    return {**config["augment"], **config["recipes"][recipes[view - 1]]}


def resolve(path: str | Path) -> Path:
    """Config paths are relative to the repo root, not to the current directory."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else (REPO_ROOT / path).resolve()


def data_dir(config: dict[str, Any], override: str | Path | None = None) -> Path:
    """--data flag > CXR_DATA_DIR env var > config value."""
    chosen = override or os.environ.get("CXR_DATA_DIR") or config["data_dir"]
    return resolve(chosen)
