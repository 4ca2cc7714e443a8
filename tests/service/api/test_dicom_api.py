"""DICOM through the HTTP API: real files, refusals, Accept: application/dicom, no patient data."""

from __future__ import annotations

import base64
import io
import logging
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
from fastapi.testclient import TestClient
from pydicom.uid import SecondaryCaptureImageStorage

from service.dicom.outputs import SC_SERIES_DESCRIPTION
from service.settings import DISCLAIMER
from tests.dicom_samples import (
    BIRTH_DATE,
    PATIENT_ID,
    PATIENT_NAME,
    dark_with_bright_spot,
    make_dicom,
)

SECRETS = (PATIENT_NAME, "Secretpatient", PATIENT_ID, BIRTH_DATE)
DICOM = "application/dicom"


@pytest.fixture(scope="module")
def real_dicoms(originals: Path) -> list[Path]:
    files = sorted((originals / "dicom").glob("*.dcm"))
    assert len(files) == 2, files
    return files


def _post(client: TestClient, route: str, data: bytes, **kwargs: object) -> object:
    return client.post(route, files={"file": ("image.dcm", data, DICOM)}, **kwargs)  # type: ignore[arg-type]


def test_real_dicoms_predict_and_explain(client: TestClient, real_dicoms: list[Path]) -> None:
    for path in real_dicoms:
        for route in ("/predict", "/explain"):
            response = client.post(route, files={"file": (path.name, path.read_bytes(), DICOM)})
            assert response.status_code == 200, (path.name, route, response.text)
            body = response.json()
            assert body["input"] == {"format": "dicom", "width": 1024, "height": 1024}
            assert abs(sum(body["probabilities"].values()) - 1.0) < 1e-5
            assert body["disclaimer"] == DISCLAIMER
        assert body["gradcam"]["width"] == body["gradcam"]["height"] == 512


def test_raw_dicom_body(client: TestClient, real_dicoms: list[Path]) -> None:
    data = real_dicoms[0].read_bytes()
    response = client.post("/predict", content=data, headers={"Content-Type": DICOM})
    assert response.status_code == 200 and response.json()["input"]["format"] == "dicom"


def test_monochrome1_16_bit_gets_the_label_of_its_monochrome2_inverse(client: TestClient) -> None:
    stored = dark_with_bright_spot(high=65535)
    labels = {}
    for name, data in {
        "m1": make_dicom(stored, photometric="MONOCHROME1"),
        "m2_inverse": make_dicom(65535 - stored),
        "m2_same_values": make_dicom(stored),  # what a missed inversion would see
    }.items():
        response = client.post("/predict", files={"file": ("x.dcm", data, DICOM)})
        assert response.status_code == 200, response.text
        labels[name] = response.json()["label"]
    assert labels["m1"] == labels["m2_inverse"]
    # The tiny model's label depends on brightness, so this comparison can fail:
    assert labels["m2_same_values"] != labels["m1"], labels


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"modality": "CT"}, "modality CT"),
        ({"view": "LL"}, "Lateral"),
        ({"view": "RL"}, "Lateral"),
        ({"photometric": "RGB", "pixels": np.zeros((32, 32, 3), np.uint8)}, "Colour"),
        ({"pixels": np.zeros((4, 32, 32), np.uint16)}, "4 frames"),
    ],
)
def test_unsuitable_dicoms_are_422(
    client: TestClient, caplog: pytest.LogCaptureFixture, options: dict, words: str
) -> None:
    pixels = options.pop("pixels", dark_with_bright_spot())
    caplog.set_level(logging.DEBUG)
    for route in ("/predict", "/explain"):
        response = client.post(
            route, files={"file": ("x.dcm", make_dicom(pixels, **options), DICOM)}
        )
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "unsuitable_image" and words in error["message"]
        assert not any(secret in response.text for secret in SECRETS)
    assert "request refused: 422 unsuitable_image" in caplog.text  # the logs were captured
    assert not any(secret in caplog.text for secret in SECRETS)


def test_corrupt_dicom_is_422_invalid_image(client: TestClient) -> None:
    data = make_dicom(dark_with_bright_spot())
    for broken in (data[:400], data[:-5000]):
        response = client.post("/predict", files={"file": ("x.dcm", broken, DICOM)})
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "invalid_image"


def test_explain_as_dicom_secondary_capture(
    client: TestClient, real_dicoms: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for path in real_dicoms:
        data = path.read_bytes()
        source = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        response = client.post(
            "/explain", files={"file": (path.name, data, DICOM)}, headers={"Accept": DICOM}
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == DICOM
        result = pydicom.dcmread(io.BytesIO(response.content))
        assert result.SOPClassUID == SecondaryCaptureImageStorage
        assert result.StudyInstanceUID == source.StudyInstanceUID
        assert result.SeriesInstanceUID != source.SeriesInstanceUID
        assert result.SOPInstanceUID != source.SOPInstanceUID
        assert result.PatientName == source.PatientName and result.PatientID == source.PatientID
        assert result.PatientSex == source.PatientSex
        assert "NOT FOR DIAGNOSTIC USE" in result.SeriesDescription
        assert result.SeriesDescription == SC_SERIES_DESCRIPTION
        assert result.ManufacturerModelName == "tiny-test-model"
        assert result.SoftwareVersions == "0.0.1"
        assert "covid" in result.ImageComments and "pneumonia" in result.ImageComments
        assert result.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
        assert result.PhotometricInterpretation == "RGB"
        # Same pixels as the JSON overlay PNG: one rendering path.
        json_body = client.post("/explain", files={"file": (path.name, data, DICOM)}).json()
        png = base64.b64decode(json_body["gradcam"]["overlay_png_base64"])
        overlay_bgr = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
        np.testing.assert_array_equal(result.pixel_array, overlay_bgr[:, :, ::-1])
        assert f"covid {json_body['probabilities']['covid']:.4f}" in result.ImageComments
        # Same source, model and class: the same UIDs (what makes PACS storage idempotent).
        again = client.post(
            "/explain", files={"file": (path.name, data, DICOM)}, headers={"Accept": DICOM}
        )
        assert pydicom.dcmread(io.BytesIO(again.content)).SOPInstanceUID == result.SOPInstanceUID
        assert str(source.PatientName) not in caplog.text


def test_explain_as_dicom_keeps_synthetic_patient_and_never_logs_it(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    data = make_dicom(dark_with_bright_spot(), modality="CR")
    response = client.post(
        "/explain?target=normal",
        files={"file": ("x.dcm", data, DICOM)},
        headers={"Accept": "application/json;q=0.5, application/dicom"},
    )
    assert response.status_code == 200, response.text
    result = pydicom.dcmread(io.BytesIO(response.content))
    assert str(result.PatientName) == PATIENT_NAME and result.PatientBirthDate == BIRTH_DATE
    assert "Heatmap class: normal" in result.ImageComments
    assert not any(secret in caplog.text for secret in SECRETS)


def test_explain_as_dicom_for_png_is_406(client: TestClient, originals: Path) -> None:
    png = (originals / "normal/Normal-10003.png").read_bytes()
    response = client.post(
        "/explain", files={"file": ("x.png", png, "image/png")}, headers={"Accept": DICOM}
    )
    assert response.status_code == 406
    assert response.json()["error"]["code"] == "not_acceptable"
    json_again = client.post(
        "/explain",
        files={"file": ("x.png", png, "image/png")},
        headers={"Accept": "application/dicom;q=0, application/json"},
    )
    assert json_again.status_code == 200 and "gradcam" in json_again.json()


def test_openapi_documents_dicom_output(client: TestClient) -> None:
    explain = client.get("/openapi.json").json()["paths"]["/explain"]["post"]["responses"]
    assert DICOM in explain["200"]["content"] and "406" in explain
