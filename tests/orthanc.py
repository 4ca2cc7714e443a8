"""A real Orthanc PACS with the DICOMweb plugin, for integration tests.

Started from the Debian packages ``orthanc`` and ``orthanc-dicomweb`` (``.ci/run`` installs
them). Each instance listens on loopback only, on free ports, with its own temporary storage and
HTTP basic auth, and is stopped by the fixture that started it. A missing binary is a test
failure with the install command, never a silent skip.
"""

from __future__ import annotations

import glob
import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

USER, PASSWORD = "cxr-service", "test-password"
PLUGIN_PATHS = (
    "/usr/share/orthanc/plugins/libOrthancDicomWeb.so",
    *sorted(glob.glob("/usr/lib/orthanc/libOrthancDicomWeb.so*")),
)
INSTALL_HINT = (
    "Orthanc with its DICOMweb plugin is needed for the PACS integration tests: "
    "apt-get install -y orthanc orthanc-dicomweb"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _installed() -> tuple[str, str]:
    binary = shutil.which("Orthanc") or shutil.which("Orthanc", path="/usr/sbin:/usr/bin")
    plugin = next((path for path in PLUGIN_PATHS if Path(path).exists()), None)
    if binary is None or plugin is None:
        pytest.fail(INSTALL_HINT)
    return binary, plugin


class Orthanc:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dicomweb_url = f"{self.url}/dicom-web"
        self.http = requests.Session()
        self.http.auth = (USER, PASSWORD)
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> Orthanc:
        binary, plugin = _installed()
        storage = self.folder / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": "cxr-service-tests",
            "StorageDirectory": str(storage),
            "IndexDirectory": str(storage),
            "HttpPort": self.port,
            "DicomServerEnabled": False,
            "DicomPort": free_port(),
            "RemoteAccessAllowed": False,  # loopback clients only
            "AuthenticationEnabled": True,
            "RegisteredUsers": {USER: PASSWORD},
            "SaveJobs": False,
            "HttpThreadsCount": 4,
            "ConcurrentJobs": 1,
            "Plugins": [plugin],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
        }
        config_path = self.folder / "orthanc.json"
        config_path.write_text(json.dumps(config, indent=2))
        log = (self.folder / "orthanc.log").open("wb")
        self._process = subprocess.Popen(
            [binary, str(config_path)], stdout=log, stderr=subprocess.STDOUT, cwd=self.folder
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                pytest.fail(f"Orthanc exited at start-up:\n{self.log_tail()}")
            try:
                if self.http.get(f"{self.url}/dicom-web/studies", timeout=1).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"Orthanc did not answer within {timeout:g} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None

    def log_tail(self, lines: int = 30) -> str:
        path = self.folder / "orthanc.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def upload(self, data: bytes) -> None:
        response = self.http.post(f"{self.url}/instances", data=data, timeout=30)
        response.raise_for_status()

    def study_files(self, study_instance_uid: str) -> list[bytes]:
        """Every instance of the study, as the stored Part-10 files (Orthanc REST API)."""
        found = self.http.post(
            f"{self.url}/tools/find",
            json={"Level": "Instance", "Query": {"StudyInstanceUID": study_instance_uid}},
            timeout=30,
        )
        found.raise_for_status()
        files = []
        for orthanc_id in found.json():
            response = self.http.get(f"{self.url}/instances/{orthanc_id}/file", timeout=30)
            response.raise_for_status()
            files.append(response.content)
        return files
