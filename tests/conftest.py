"""Shared fixtures: the real data folder (through the setting) and a tiny real Keras model."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Only the models a test builds: never the real extra model folders (models/), in this process
# or in the services the tests start.
os.environ.setdefault("CXR_EXTRA_MODEL_DIRS", "")

from service.settings import Settings
from tests.tiny_model import build_tiny_artifact


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """``CXR_DATA_DIR`` (default ``../shared/data/cxr``); tests needing it skip if it is absent."""
    path = Settings().data_dir
    if not (path / "originals").is_dir():
        pytest.skip(f"real X-ray data not found at {path}: set CXR_DATA_DIR to the cxr folder")
    return path


@pytest.fixture(scope="session")
def originals(data_dir: Path) -> Path:
    return data_dir / "originals"


@pytest.fixture(scope="session")
def raster_originals(originals: Path) -> list[Path]:
    files = sorted(
        p for p in originals.glob("*/*") if p.suffix.lower() in {".png", ".jpg", ".jpeg"}
    )
    assert len(files) == 12, files
    return files


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield build_tiny_artifact(tmp_path_factory.mktemp("model"))


BINARY_MODELS = {
    "tiny-covid-vs-normal": ["covid", "normal"],
    "tiny-covid-vs-pneumonia": ["covid", "pneumonia"],
}


@pytest.fixture(scope="session")
def binary_model_dirs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two tiny binary models (the tiny model's builder with two classes), as extra folders."""
    return [
        build_tiny_artifact(tmp_path_factory.mktemp(name), name=name, classes=classes)
        for name, classes in BINARY_MODELS.items()
    ]
