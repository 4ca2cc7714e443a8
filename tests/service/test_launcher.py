"""``python -m service``: an anonymous service binds loopback only, unless allowed explicitly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.__main__ import exposure_problem, is_loopback_host
from service.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("10.0.0.5", False), ("cxr.example.org", False)],
)  # fmt: skip
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_anonymous_public_bind_is_refused_unless_allowed(tmp_path: Path) -> None:
    assert exposure_problem(Settings(), "127.0.0.1") is None
    problem = exposure_problem(Settings(), "0.0.0.0")
    assert problem is not None and "CXR_ALLOW_ANONYMOUS" in problem
    assert exposure_problem(Settings(allow_anonymous=True), "0.0.0.0") is None
    assert exposure_problem(Settings(api_keys_file=tmp_path / "keys.json"), "0.0.0.0") is None


def test_the_launcher_exits_before_opening_the_port() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXR_")}
    result = subprocess.run(
        [sys.executable, "-m", "service", "--host", "0.0.0.0", "--port", "1"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert "Refusing to serve on 0.0.0.0" in result.stderr
