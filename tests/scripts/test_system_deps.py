"""scripts/system-deps: installs only what is missing, and fails in one line when it cannot."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "system-deps"
BASH = shutil.which("bash") or "/bin/bash"  # the tests run it with a PATH of their own
ORTHANC_PRESENT = (
    Path("/usr/sbin/Orthanc").exists()
    and Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so").exists()
)


def run(*needs: str, path: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHON": sys.executable, **env}
    if path is not None:
        environment["PATH"] = path
    return subprocess.run(
        [BASH, str(SCRIPT), *needs],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def fake_tools(folder: Path, log: Path) -> str:
    """A PATH whose apt-get only records its arguments; ``id`` and ``sudo`` are the real ones."""
    folder.mkdir()
    apt = folder / "apt-get"
    apt.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    apt.chmod(0o755)
    for tool in ("id", "sudo"):
        found = shutil.which(tool)
        if found:
            (folder / tool).symlink_to(found)
    return str(folder)


def test_the_venv_need_is_met_by_this_python() -> None:
    result = run("--dry-run", "venv")
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""


def test_dry_run_names_only_what_is_missing() -> None:
    result = run("--dry-run", "test", CXR_E2E_CHROMIUM="/nonexistent/chromium")
    assert result.returncode == 0
    assert "chromium" in result.stdout
    if ORTHANC_PRESENT:
        assert "orthanc" not in result.stdout  # installed already: never installed again


@pytest.mark.skipif(os.geteuid() != 0, reason="installs as root without sudo")
def test_installs_the_missing_package_with_apt_get(tmp_path: Path) -> None:
    log = tmp_path / "apt.log"
    path = fake_tools(tmp_path / "bin", log)
    result = run("test", path=path, CXR_E2E_CHROMIUM="/nonexistent/chromium")
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    assert calls[0] == "update -qq"
    expected = "chromium" if ORTHANC_PRESENT else calls[1].split("-qq ", 1)[1]
    assert calls[1] == f"install -y -qq {expected}"
    assert "chromium" in calls[1]


def test_nothing_to_do_runs_nothing(tmp_path: Path) -> None:
    chromium = tmp_path / "chromium"
    chromium.write_text("#!/bin/sh\n")
    chromium.chmod(0o755)
    log = tmp_path / "apt.log"
    path = fake_tools(tmp_path / "bin", log)
    if not ORTHANC_PRESENT:
        pytest.skip("Orthanc is not installed here")
    result = run("venv", "test", path=path, CXR_E2E_CHROMIUM=str(chromium))
    assert result.returncode == 0 and result.stdout == ""
    assert not log.exists()


def test_without_apt_get_it_fails_in_one_clear_line(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    (empty / "id").symlink_to(shutil.which("id") or "/usr/bin/id")
    result = run("test", path=str(empty), CXR_E2E_CHROMIUM="/nonexistent/chromium")
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("make: cannot install ") and "chromium" in line
    assert "apt-get install" in line


def test_an_old_python_is_refused_in_one_line(tmp_path: Path) -> None:
    old = tmp_path / "python3"
    old.write_text('#!/bin/sh\ncase "$2" in *print*) echo 3.9;; *) exit 1;; esac\n')  # 3.9
    old.chmod(0o755)
    result = run("venv", PYTHON=str(old))
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert "3.9" in line and "3.11" in line
