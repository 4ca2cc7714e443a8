"""Training configs: YAML files in training/configs/, merged over the defaults below.

A config is a plain nested dict so it can be saved verbatim next to checkpoints and in
metadata.json. Paths in it are relative to the repository root.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent

DEFAULTS: dict[str, Any] = {
    "name": "cxr-vgg16-3class",
    "version": "1.0.0",
    "classes": ["covid", "normal", "pneumonia"],
    "data_dir": "../shared/data/cxr",
    "limit_per_split_class": None,  # tiny test runs: at most this many images per split x class
    "backbone": "vgg16",  # or "tiny" (CI only: a small conv net with VGG16's layer names)
    "allow_random_weights": False,
    "seed": 1234,
    "image_size": 224,
    "feature_layer": "block4_pool",  # frozen trunk output cached on disk; layers after it train
    "weighting": "class",  # or "class_source": also even out sources within a class
    "head": {"pool_size": 4, "pool_strides": 3, "dense": 128, "dropout": 0.5},
    "cache": {"views": 4, "batch_size": 16},
    "augment": {
        "hflip": 0.5,
        "rotate_deg": 12.0,
        "shift": 0.06,
        "zoom": [0.9, 1.12],
        "crop_pad": 0.08,
        "brightness": 20.0,
        "contrast": [0.8, 1.2],
        "gamma": [0.75, 1.35],
        "blur": 0.25,
        "sharpen": 0.2,
        "jpeg": 0.5,
        "jpeg_quality": [25, 95],
        "down_up": 0.5,
        "down_up_size": [112, 256],
    },
    # max_minutes: wall-clock budget per phase (no new epoch that would end past it);
    # label_smoothing (optional, default 0): softer one-hot targets in that phase's loss
    "phase1": {"epochs": 30, "lr": 1.0e-3, "batch_size": 32, "patience": 6, "max_minutes": None},
    "phase2": {"epochs": 6, "lr": 1.0e-4, "batch_size": 16, "patience": 2, "max_minutes": None},
    # optional continuation of phase 2 at a lower rate, e.g. {"epochs": 4, "lr": 2.0e-5, ...}
    "phase3": None,
    "runs_dir": "runs",
    "export_dir": "models",
    "evaluate": {"bootstrap": 1000, "gallery": 8},
}


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(path: Path | str) -> dict[str, Any]:
    override = yaml.safe_load(Path(path).read_text()) or {}
    unknown = set(override) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"{path}: unknown config keys {sorted(unknown)}")
    return _merge(DEFAULTS, override)


def resolve(path: str | Path) -> Path:
    """Config paths are relative to the repo root, not to the current directory."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else (REPO_ROOT / path).resolve()


def data_dir(config: dict[str, Any], override: str | Path | None = None) -> Path:
    """--data flag > CXR_DATA_DIR env var > config value."""
    chosen = override or os.environ.get("CXR_DATA_DIR") or config["data_dir"]
    return resolve(chosen)
