"""The README stays true: its shell examples run as pasted, its settings table matches Settings.

The examples are read from the README's ``bash`` blocks (each block that talks to
``http://127.0.0.1:8000`` runs as one script), so the two cannot drift. They run in ``bash``
against the real service (uvicorn, the app factory, the tiny test model) on a free loopback port,
from a folder that looks like the repository's (``examples/``, ``.venv``, ``tests``), with
``curl --fail-with-body`` so that an error answer fails the test. Only the URL changes, and the
key file's folder (not the real ``/etc``). Left out, and covered elsewhere: the commands that
start the service (``make ...``) and the PACS call, which needs a PACS
(tests/service/api/test_pacs.py).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from service.settings import Settings
from tests.e2e.conftest import CHROMIUM, REPO_ROOT, service_url  # noqa: F401  (fixture)

README = REPO_ROOT / "README.md"
README_URL = "http://127.0.0.1:8000"


def bash_blocks(markdown: str) -> list[list[str]]:
    """Each ``bash`` block's commands, continuation lines (``\\`` or a leading ``|``) joined."""
    blocks: list[list[str]] = []
    for block in re.findall(r"^```bash\n(.*?)^```", markdown, flags=re.DOTALL | re.MULTILINE):
        commands: list[str] = []
        continued = False
        for line in block.splitlines():
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if continued or stripped.startswith("|"):
                commands[-1] += "\n" + line
            else:
                commands.append(line)
            continued = stripped.endswith("\\")
        blocks.append(commands)
    return blocks


def service_examples(markdown: str) -> list[str]:
    """One script per block that talks to the service, in the block's order (a block may set a
    variable that a later command uses), without the commands that start the service or need a
    PACS."""
    scripts = []
    for commands in bash_blocks(markdown):
        if not any(README_URL in command for command in commands):
            continue
        kept = [
            command
            for command in commands
            if not re.match(r"(make|[A-Z_]+=\S* make)\b", command) and "/pacs/" not in command
        ]
        if any(README_URL in command for command in kept):
            scripts.append("\n".join(kept))
    return scripts


def test_the_readme_has_the_examples_the_issue_asks_for() -> None:
    examples = service_examples(README.read_text())
    joined = "\n".join(examples)
    for needed in (
        "-F file=@examples/",  # multipart
        "-d @-",  # JSON through a pipe, not a command-line argument
        "target=",
        "python3 -c",  # the overlay saved to a file (Debian has no `python`)
        "Accept: application/dicom",
        "take_screenshot",
        "/metrics",
    ):
        assert needed in joined, needed
    assert not re.search(r"\bpython -c", joined)
    for path in re.findall(r"examples/[\w.-]+", joined):
        assert (REPO_ROOT / path).is_file(), path


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder that looks like the repository to the examples, and a failing-on-error curl."""
    for name in ("examples", ".venv", "tests"):
        if (REPO_ROOT / name).exists():
            (tmp_path / name).symlink_to(REPO_ROOT / name)
    real_curl = shutil.which("curl")
    if real_curl is None:
        pytest.skip("curl is not installed")
    tools = tmp_path / ".bin"
    tools.mkdir()
    (tools / "curl").write_text(f'#!/bin/sh\nexec {real_curl} --fail-with-body "$@"\n')
    (tools / "curl").chmod(0o755)
    return tmp_path


def test_every_service_example_runs_as_pasted(
    service_url: str,  # noqa: F811
    workdir: Path,
) -> None:
    env = {**os.environ, "PATH": f"{workdir / '.bin'}:{os.environ['PATH']}"}
    ran = 0
    for command in service_examples(README.read_text()):
        if "take_screenshot" in command and not CHROMIUM.exists():
            if os.environ.get("CI"):
                pytest.fail(f"no Chromium at {CHROMIUM} for the screenshot example")
            continue
        script = command.replace(README_URL, service_url)
        script = script.replace("/etc/cxr-service/", f"{workdir}/etc/")  # not the real /etc
        result = subprocess.run(
            ["bash", "-c", "set -euo pipefail\n" + script],
            cwd=workdir,
            env=env,
            capture_output=True,
            timeout=180,
        )
        assert result.returncode == 0, (
            f"{command}\nexit {result.returncode}\n{result.stdout[-2000:]!r}\n"
            f"{result.stderr[-2000:]!r}"
        )
        ran += 1
    assert ran >= 3  # blocks: the API examples, DICOM out, the screenshot, metrics, keys...
    assert (workdir / "overlay.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (workdir / "heatmap.dcm").read_bytes()[128:132] == b"DICM"
    if CHROMIUM.exists():
        assert (workdir / "docs" / "screenshot.png").read_bytes()[:4] == b"\x89PNG"


def documented_settings(markdown: str) -> list[str]:
    table = markdown.split("| setting | default | meaning |", 1)[1].split("\n\n", 1)[0]
    names: list[str] = []
    for row in table.splitlines()[2:]:
        names += re.findall(r"`(CXR_[A-Z0-9_]+)`", row.split("|")[1])
    return names


def test_the_settings_table_lists_every_setting_once() -> None:
    documented = documented_settings(README.read_text())
    fields = {f"CXR_{name.upper()}" for name in Settings.model_fields}
    missing, stale = sorted(fields - set(documented)), sorted(set(documented) - fields)
    assert not missing, f"settings missing from the README's table: {missing}"
    assert not stale, f"README rows for settings that do not exist: {stale}"
    twice = sorted({name for name in documented if documented.count(name) > 1})
    assert not twice, f"documented twice: {twice}"
