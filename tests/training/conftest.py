"""Shared fixtures: where the CXR data lives (CXR_DATA_DIR, default ../shared/data/cxr)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def cxr_data_dir() -> Path:
    path = Path(os.environ.get("CXR_DATA_DIR", REPO_ROOT / ".." / "shared" / "data" / "cxr"))
    path = path if path.is_absolute() else (REPO_ROOT / path)
    if not (path / "manifest.csv").is_file():
        pytest.skip(f"CXR data not found at {path}; set CXR_DATA_DIR to the cxr data folder")
    return path.resolve()
