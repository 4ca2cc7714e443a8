"""The input gate through the HTTP API: refusals with a reason, the three modes, /model, DICOM
out, and its checksum. A hand-made gate.json on the tiny model accepts or rejects everything, so
what is tested is the service's handling; the shipped model's own gate is tested in
tests/models/test_shipped_model.py."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
from fastapi.testclient import TestClient

from service.errors import ModelArtifactError
from service.inference.gate import GATE_FILE, GateModel
from service.main import create_app
from service.settings import Settings
from tests.orthanc import PASSWORD, USER, Orthanc
from training.gate import synthetic_inputs
from training.metadata import update_metadata

CHANNELS = 2  # the tiny model's block5_conv3


def _gated_copy(tiny_model_dir: Path, folder: Path, intercept: float) -> Path:
    """The tiny model with a gate whose score is sigmoid(intercept) for every image."""
    shutil.copytree(tiny_model_dir, folder)
    gate = GateModel(
        layer="block5_conv3",
        mean=[0.0] * CHANNELS,
        scale=[1.0] * CHANNELS,
        coef=[0.0] * CHANNELS,
        intercept=intercept,
        threshold=0.5,
        validation={"val_false_rejection": 0.01, "note": "hand-made for tests"},
    )
    (folder / GATE_FILE).write_text(json.dumps(gate.model_dump(mode="json")))
    update_metadata(folder, files=[GATE_FILE])
    return folder


@pytest.fixture(scope="module")
def accepting(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _gated_copy(tiny_model_dir, tmp_path_factory.mktemp("gate") / "accept", 50.0)


@pytest.fixture(scope="module")
def rejecting(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _gated_copy(tiny_model_dir, tmp_path_factory.mktemp("gate") / "reject", -50.0)


def _client(model_dir: Path, **options: object) -> TestClient:
    settings = Settings(model_dir=model_dir, background_load=False, **options)  # type: ignore[arg-type]
    return TestClient(create_app(settings), raise_server_exceptions=False)


def _png(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", image)
    assert ok
    return encoded.tobytes()


def _jpeg(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return encoded.tobytes()


def test_image_checks_refuse_synthetic_non_xrays(accepting: Path) -> None:
    """Blank, black, white, uniform, colour, tiny: refused with a reason even by a gate that
    would accept anything (the image checks come first)."""
    cases = synthetic_inputs()
    expected = {
        "uniform gray": ("not_a_chest_xray", "blank"),
        "blank white": ("not_a_chest_xray", "blank"),
        "black": ("not_a_chest_xray", "blank"),
        "colour photo-like": ("not_a_chest_xray", "colour"),
        "1x1": ("unsuitable_image", "at least"),
        "16x16": ("unsuitable_image", "at least"),
    }
    with _client(accepting) as client:
        for name, (code, words) in expected.items():
            for data in (_png(cases[name]), _jpeg(cases[name])):
                response = client.post("/predict", files={"file": ("x", data)})
                assert response.status_code == 422, (name, response.text)
                error = response.json()["error"]
                assert error["code"] == code, (name, error)
                assert words in error["message"], (name, error)
        assert client.get("/health").status_code == 200


def test_xray_passes_with_an_input_check(accepting: Path, raster_originals: list[Path]) -> None:
    with _client(accepting) as client:
        for route in ("/predict", "/explain"):
            response = client.post(route, files={"file": ("x", raster_originals[0].read_bytes())})
            assert response.status_code == 200, response.text
            check = response.json()["input_check"]
            assert check["passed"] is True and check["mode"] == "enforce"
            assert check["score"] == pytest.approx(1.0) and check["threshold"] == 0.5
            assert check["reason"] is None


def test_enforced_rejection_says_what_was_expected_and_why(
    rejecting: Path, raster_originals: list[Path]
) -> None:
    data = raster_originals[0].read_bytes()
    with _client(rejecting) as client:
        for route in ("/predict", "/explain"):
            response = client.post(route, files={"file": ("x", data)})
            assert response.status_code == 422
            error = response.json()["error"]
            assert error["code"] == "not_a_chest_xray"
            assert "a frontal (PA/AP) chest radiograph" in error["message"]
            assert "input gate score 0.000 is below its threshold 0.500" in error["message"]


def test_report_mode_answers_and_says_it_did_not_pass(
    rejecting: Path, raster_originals: list[Path]
) -> None:
    with _client(rejecting, input_gate="report") as client:
        response = client.post("/predict", files={"file": ("x", raster_originals[0].read_bytes())})
    assert response.status_code == 200
    check = response.json()["input_check"]
    assert check["passed"] is False and check["mode"] == "report"
    assert "below its threshold" in check["reason"]


def test_off_mode_skips_the_gate(rejecting: Path, raster_originals: list[Path]) -> None:
    with _client(rejecting, input_gate="off") as client:
        response = client.post("/predict", files={"file": ("x", raster_originals[0].read_bytes())})
    assert response.status_code == 200
    assert response.json()["input_check"] == {
        "score": None,
        "threshold": None,
        "passed": True,
        "reason": None,
        "mode": "off",
    }


def test_dicom_out_is_refused_too(rejecting: Path, originals: Path) -> None:
    dicom = sorted((originals / "dicom").glob("*.dcm"))[0].read_bytes()
    with _client(rejecting) as client:
        response = client.post(
            "/explain",
            files={"file": ("x.dcm", dicom, "application/dicom")},
            headers={"Accept": "application/dicom"},
        )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "not_a_chest_xray"


def test_model_info_shows_the_gate(accepting: Path) -> None:
    with _client(accepting) as client:
        gate = client.get("/model").json()["input_gate"]
    assert gate["fitted"] is True and gate["mode"] == "enforce"
    assert gate["threshold"] == 0.5 and gate["expected"] == "a frontal (PA/AP) chest radiograph"
    assert gate["validation"]["note"] == "hand-made for tests"
    assert gate["image_checks"]["max_aspect"] > 1


def test_a_changed_gate_file_stops_start_up(accepting: Path, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(accepting, folder)
    gate = json.loads((folder / GATE_FILE).read_text())
    gate["threshold"] = 0.0  # anything would pass: must not go unnoticed
    (folder / GATE_FILE).write_text(json.dumps(gate))
    with pytest.raises(ModelArtifactError, match=GATE_FILE), _client(folder):
        pass


def test_pacs_skips_gated_images_and_stores_nothing_for_them(
    rejecting: Path, originals: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    real_path = sorted((originals / "dicom").glob("*.dcm"))[0]
    real = pydicom.dcmread(real_path, stop_before_pixels=True)
    server = Orthanc(tmp_path_factory.mktemp("orthanc")).start()
    try:
        server.upload(real_path.read_bytes())
        options = {"dicomweb_url": server.dicomweb_url, "dicomweb_username": USER}
        options["dicomweb_password"] = PASSWORD
        with _client(rejecting, **options) as client:
            response = client.post(f"/pacs/studies/{real.StudyInstanceUID}/analyze")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["results"] == [] and body["stored"] == []
        skipped = {s["sop_instance_uid"]: s["reason"] for s in body["skipped"]}
        assert "below its threshold" in skipped[real.SOPInstanceUID]
        held = [pydicom.dcmread(io.BytesIO(d)) for d in server.study_files(real.StudyInstanceUID)]
        assert [ds.SOPInstanceUID for ds in held] == [real.SOPInstanceUID]  # nothing added
    finally:
        server.stop()
