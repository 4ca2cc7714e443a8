"""Model folders found and checked at start-up: defaults may be absent, names must differ."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from service.errors import ModelArtifactError, ModelNotFound, NotReady
from service.inference.registry import ModelRegistry, discover
from service.settings import REPO_ROOT, Settings


def test_the_default_extra_folders_are_the_binary_models_under_the_repository() -> None:
    settings = Settings()  # tests/conftest.py sets CXR_EXTRA_MODEL_DIRS="": explicitly none
    fresh = Settings.model_construct()  # nothing set: the documented default list
    assert not fresh.extra_model_dirs_explicit
    assert fresh.extra_model_dir_list == [
        REPO_ROOT / "models" / "cxr-vgg16-covid-vs-normal",
        REPO_ROOT / "models" / "cxr-vgg16-covid-vs-pneumonia",
    ]
    assert settings.extra_model_dirs_explicit
    assert settings.extra_model_dir_list == []
    explicit = Settings(extra_model_dirs=" a ,b,, ")
    assert explicit.extra_model_dirs_explicit
    assert explicit.extra_model_dir_list == [Path("a"), Path("b")]


def test_absent_default_folders_are_skipped_with_one_info_line(
    tiny_model_dir: Path,
    binary_model_dirs: list[Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    absent = [tmp_path / "not-copied-yet", tmp_path / "nor-this-one"]
    with caplog.at_level(logging.INFO, logger="service"):
        sources = discover(
            tiny_model_dir, [absent[0], binary_model_dirs[0], absent[1]], extras_explicit=False
        )
    assert [s.name for s in sources] == ["tiny-test-model", "tiny-covid-vs-normal"]
    lines = [r for r in caplog.records if "not present" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.INFO
    assert str(absent[0]) in lines[0].getMessage() and str(absent[1]) in lines[0].getMessage()


def test_an_explicit_folder_must_exist(tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelArtifactError, match=r"CXR_EXTRA_MODEL_DIRS.*does not exist"):
        discover(tiny_model_dir, [tmp_path / "typo"], extras_explicit=True)


def test_every_folder_is_validated_like_the_default(
    tiny_model_dir: Path, binary_model_dirs: list[Path], tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(binary_model_dirs[1], broken)
    with (broken / "model.keras").open("ab") as handle:
        handle.write(b"tampered")
    for explicit in (True, False):  # present but broken: an error even in the default list
        with pytest.raises(ModelArtifactError, match="sha256"):
            discover(tiny_model_dir, [binary_model_dirs[0], broken], extras_explicit=explicit)


def test_two_folders_with_one_model_name_stop_the_start(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, copy)
    with pytest.raises(ModelArtifactError, match=r"'tiny-test-model'.*must be unique"):
        discover(tiny_model_dir, [copy], extras_explicit=True)


def test_lookup_by_name(tiny_model_dir: Path, binary_model_dirs: list[Path]) -> None:
    registry = ModelRegistry(discover(tiny_model_dir, binary_model_dirs, extras_explicit=True))
    assert registry.default_name == "tiny-test-model"
    assert registry.source(None).name == "tiny-test-model"
    assert registry.source("tiny-covid-vs-pneumonia").metadata.classes == ["covid", "pneumonia"]
    with pytest.raises(ModelNotFound) as missing:
        registry.source("edema-net")
    assert missing.value.status_code == 404 and missing.value.code == "model_not_found"
    for name in ("tiny-test-model", "tiny-covid-vs-normal", "tiny-covid-vs-pneumonia"):
        assert name in missing.value.message
    assert not registry.ready
    with pytest.raises(NotReady):
        registry.runtime("tiny-covid-vs-normal")
