"""`make serve` (``python -m service``) starts without warnings and logs JSON when asked.

The service runs in a subprocess as ``make serve`` runs it, with the tiny test model and
``CXR_LOG_FORMAT=json``. TensorFlow's C++ start-up lines (absl format, before Python logging
exists) are TensorFlow's own and are left out; every other line must be a JSON log entry below
WARNING, and no Python warning may be printed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.e2e.conftest import REPO_ROOT, _free_port, _wait_ready

TENSORFLOW_NATIVE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\)|[IWE]\d{4} |To enable the)"
)


def test_make_serve_starts_quietly_and_logs_json(tiny_model_dir: Path, tmp_path: Path) -> None:
    port = _free_port()
    log = tmp_path / "serve.log"
    env = {
        **os.environ,
        "CXR_MODEL_DIR": str(tiny_model_dir),
        "CXR_LOG_FORMAT": "json",
        "CXR_TF_INTRA_OP_THREADS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",  # as the Makefile sets it
    }
    command = [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, log, timeout=120)
        request = urllib.request.Request(
            f"{url}/predict",
            data=(REPO_ROOT / "examples" / "normal.png").read_bytes(),
            headers={"Content-Type": "image/png", "X-Request-ID": "startup-test"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.status == 200
            assert response.headers["X-Request-ID"] == "startup-test"
    finally:
        process.terminate()
        process.wait(timeout=30)

    lines = [line for line in log.read_text().splitlines() if line.strip()]
    ours = [line for line in lines if not TENSORFLOW_NATIVE.match(line)]
    entries = []
    for line in ours:
        assert "Warning" not in line, line  # Python warnings (UserWarning, DeprecationWarning...)
        entries.append(json.loads(line))  # every line of the service and of uvicorn is JSON
    assert not [e for e in entries if e["level"] in ("warning", "error", "critical")], entries
    access = [e for e in entries if e["logger"] == "service.access"]
    assert {e["route"] for e in access} == {"/ready", "/predict"}
    assert not [e for e in entries if e["logger"] == "uvicorn.access"]  # one line, not two
    (predicted,) = [e for e in access if e["route"] == "/predict"]
    assert predicted["request_id"] == "startup-test"
    assert predicted["status"] == 200 and predicted["label"]
    assert any("ready in" in e["message"] for e in entries)
