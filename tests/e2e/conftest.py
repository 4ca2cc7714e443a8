"""End-to-end fixtures: the real service in a uvicorn subprocess and a real headless Chromium.

The browser is Debian's ``chromium`` (``.ci/run`` installs it), driven by Playwright for Python;
Playwright's own browser download is never used. Outside CI the tests skip when either is
missing; in CI (``CI`` set) they fail instead, so a missing browser cannot pass silently.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("CXR_E2E_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
DESKTOP = {"width": 1280, "height": 1000}
PHONE = {"width": 390, "height": 844}


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"browser tests cannot run in CI: {reason}")
    pytest.skip(reason)


def csp_violation(message: Any, errors: list[str]) -> None:
    """Chromium reports what the Content-Security-Policy blocked on the console."""
    if "Content Security Policy" in message.text:
        errors.append(message.text)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the service exited early:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"the service was not ready in {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


BODY_TIMEOUT_SECONDS = 3  # short, for the slow-body tests; page uploads take milliseconds
HEAD_TIMEOUT_SECONDS = 3


@contextmanager
def running_service(
    model_dir: Path, folder: Path, extra_env: dict[str, str] | None = None
) -> Iterator[str]:
    """The real service (``python -m service``: uvicorn, the app factory) on a free port."""
    port = _free_port()
    log = folder / "uvicorn.log"
    env = {
        **os.environ,
        "CXR_MODEL_DIR": str(model_dir),
        "CXR_BACKGROUND_LOAD": "false",
        "CXR_OVERLAY_ALPHA": "0.4",  # the DICOM test re-blends with this weight
        "CXR_TF_INTRA_OP_THREADS": "1",
        "CXR_TF_INTER_OP_THREADS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "CXR_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT_SECONDS),
        "CXR_HEAD_TIMEOUT_SECONDS": str(HEAD_TIMEOUT_SECONDS),
        **(extra_env or {}),
    }
    command = [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, log, timeout=120)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def service_url(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real service with the tiny test model, anonymous on loopback."""
    with running_service(tiny_model_dir, tmp_path_factory.mktemp("service")) as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed: pip install -e '.[dev]'")
    if not CHROMIUM.exists():
        _unavailable(f"no Chromium at {CHROMIUM}: apt-get install -y chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, service_url: str) -> Iterator[Any]:
    """A fresh desktop-width page on ``/``; JavaScript errors fail the test."""
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: csp_violation(message, errors))
    page.goto(f"{service_url}/")
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
