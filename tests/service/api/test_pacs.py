"""POST /pacs/studies/{uid}/analyze against a real Orthanc over DICOMweb."""

from __future__ import annotations

import io
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from fastapi.testclient import TestClient
from pydicom.dataset import Dataset
from pydicom.uid import ComprehensiveSRStorage, SecondaryCaptureImageStorage, generate_uid

from service.dicom.pacs import Pacs
from service.errors import PacsUnavailable
from service.main import create_app
from service.settings import DISCLAIMER, Settings
from tests.dicom_samples import dark_with_bright_spot, make_dataset, to_bytes
from tests.orthanc import PASSWORD, USER, Orthanc

TIMEOUT = 3.0


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    server = Orthanc(tmp_path_factory.mktemp("orthanc")).start()
    yield server
    server.stop()


def _client(tiny_model_dir: Path, url: str, **overrides: object) -> TestClient:
    options: dict[str, object] = {
        "model_dir": tiny_model_dir,
        "background_load": False,
        "dicomweb_url": url,
        "dicomweb_username": USER,
        "dicomweb_password": PASSWORD,
        "dicomweb_timeout_seconds": TIMEOUT,
        **overrides,
    }
    settings = Settings(**options)  # type: ignore[arg-type]
    return TestClient(create_app(settings), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def pacs_client(tiny_model_dir: Path, orthanc: Orthanc) -> Iterator[TestClient]:
    with _client(tiny_model_dir, orthanc.dicomweb_url) as client:
        yield client


def _same_patient(real: Dataset, pixels: np.ndarray, **options: object) -> bytes:
    """A synthetic instance in the real file's study and patient, in a new series."""
    ds = make_dataset(pixels, study_uid=real.StudyInstanceUID, **options)  # type: ignore[arg-type]
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex"):
        ds[keyword] = real[keyword]
    return to_bytes(ds)


@pytest.fixture(scope="module")
def study(orthanc: Orthanc, originals: Path) -> dict[str, object]:
    """The first real DICOM plus, in its study, a MONOCHROME1 frontal DX, a lateral and a CT."""
    real_path = sorted((originals / "dicom").glob("*.dcm"))[0]
    real = pydicom.dcmread(real_path, stop_before_pixels=True)
    spot = dark_with_bright_spot(128, 128, high=65535)
    extra = {
        "monochrome1": _same_patient(real, 65535 - spot, photometric="MONOCHROME1"),
        "lateral": _same_patient(real, spot, view="LL"),
        "ct": _same_patient(real, spot, modality="CT", view=None),
    }
    orthanc.upload(real_path.read_bytes())
    uids = {"real": real.SOPInstanceUID}
    for name, data in extra.items():
        orthanc.upload(data)
        uids[name] = pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID
    return {"uid": real.StudyInstanceUID, "sources": uids, "patient": str(real.PatientName)}


def _analyze(client: TestClient, study_uid: str) -> dict:
    response = client.post(f"/pacs/studies/{study_uid}/analyze")
    assert response.status_code == 200, response.text
    body: dict = response.json()
    return body


def _read_back(orthanc: Orthanc, study_uid: str) -> dict[str, Dataset]:
    datasets = (pydicom.dcmread(io.BytesIO(data)) for data in orthanc.study_files(study_uid))
    return {str(ds.SOPInstanceUID): ds for ds in datasets}


def test_analyze_stores_sc_and_sr_in_the_study(
    pacs_client: TestClient, orthanc: Orthanc, study: dict, caplog: pytest.LogCaptureFixture
) -> None:
    sources = study["sources"]
    caplog.set_level(logging.DEBUG)
    body = _analyze(pacs_client, study["uid"])
    assert "study analysed" in caplog.text and "copied attribute" in caplog.text
    assert study["patient"] not in caplog.text  # the real file's PatientName (also its ID)
    assert body["study_instance_uid"] == study["uid"]
    assert body["model"] == {"name": "tiny-test-model", "version": "0.0.1"}
    assert body["disclaimer"] == DISCLAIMER
    results = {r["sop_instance_uid"]: r for r in body["results"]}
    assert set(results) == {sources["real"], sources["monochrome1"]}
    assert results[sources["monochrome1"]]["label"] == "normal"  # inverted: dark with a spot
    skipped = {s["sop_instance_uid"]: s["reason"] for s in body["skipped"]}
    assert "Lateral" in skipped[sources["lateral"]] and "modality CT" in skipped[sources["ct"]]
    assert body["already_stored"] == []
    assert len(body["stored"]) == 4
    assert {s["sop_class_uid"] for s in body["stored"]} == {
        SecondaryCaptureImageStorage,
        ComprehensiveSRStorage,
    }

    held = _read_back(orthanc, study["uid"])
    assert len(held) == 8  # 4 sources + 1 SC and 1 SR for each of the 2 frontal images
    for stored in body["stored"]:
        ds = held[stored["sop_instance_uid"]]
        assert ds.SOPClassUID == stored["sop_class_uid"]
        assert ds.SeriesInstanceUID == stored["series_instance_uid"]
        assert ds.StudyInstanceUID == study["uid"]
        assert str(ds.PatientName) == study["patient"]
        assert ds.SeriesInstanceUID not in {held[uid].SeriesInstanceUID for uid in sources.values()}
        assert "NOT FOR DIAGNOSTIC USE" in ds.SeriesDescription
        assert (ds.ManufacturerModelName, ds.SoftwareVersions) == ("tiny-test-model", "0.0.1")
        if ds.SOPClassUID == SecondaryCaptureImageStorage:
            source_uid = ds.SourceImageSequence[0].ReferencedSOPInstanceUID
            assert source_uid in results and ds.pixel_array.ndim == 3
            assert f"Top class: {results[source_uid]['label']}" in ds.ImageComments
        else:
            _check_report(ds, results, held)


def _check_report(report: Dataset, results: dict, held: dict[str, Dataset]) -> None:
    items = {i.ConceptNameCodeSequence[0].CodeMeaning: i for i in report.ContentSequence}
    source_uid = items["Source image"].ReferencedSOPSequence[0].ReferencedSOPInstanceUID
    result = results[source_uid]
    assert items["Finding"].ConceptCodeSequence[0].CodeValue == result["label"]
    for name, probability in result["probabilities"].items():
        value = float(items[f"Probability of {name}"].MeasuredValueSequence[0].NumericValue)
        assert abs(value - probability) < 1e-5
    assert items["Algorithm Name"].TextValue == "tiny-test-model"
    assert items["Comment"].TextValue == DISCLAIMER
    overlay_uid = items["Best illustration of finding"].ReferencedSOPSequence[0]
    overlay = held[overlay_uid.ReferencedSOPInstanceUID]
    assert overlay.SourceImageSequence[0].ReferencedSOPInstanceUID == source_uid


def test_second_run_stores_no_duplicates(
    pacs_client: TestClient, orthanc: Orthanc, study: dict
) -> None:
    first = _analyze(pacs_client, study["uid"])  # stores, unless the test above already did
    count = len(orthanc.study_files(study["uid"]))
    second = _analyze(pacs_client, study["uid"])
    assert second["stored"] == []
    expected = sorted(first["stored"] + first["already_stored"], key=str)
    assert sorted(second["already_stored"], key=str) == expected
    assert second["results"] == first["results"]
    ours = [s for s in second["skipped"] if s["reason"].startswith("A result of this service")]
    assert len(ours) == 4
    assert len(orthanc.study_files(study["uid"])) == count == 8


def test_second_real_dicom_study(
    pacs_client: TestClient, orthanc: Orthanc, originals: Path
) -> None:
    path = sorted((originals / "dicom").glob("*.dcm"))[1]
    orthanc.upload(path.read_bytes())
    study_uid = pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID
    body = _analyze(pacs_client, study_uid)
    assert len(body["results"]) == 1 and len(body["stored"]) == 2 and body["skipped"] == []
    assert len(orthanc.study_files(study_uid)) == 3


def test_unknown_study_is_404(pacs_client: TestClient) -> None:
    response = pacs_client.post(f"/pacs/studies/{generate_uid()}/analyze")
    assert response.status_code == 404 and response.json()["error"]["code"] == "study_not_found"


def test_bad_uid_is_422(pacs_client: TestClient) -> None:
    response = pacs_client.post("/pacs/studies/1.2.abc/analyze")
    assert response.status_code == 422


def test_wrong_password_is_502_with_a_hint(
    tiny_model_dir: Path, orthanc: Orthanc, study: dict
) -> None:
    with _client(tiny_model_dir, orthanc.dicomweb_url, dicomweb_password="wrong") as client:
        response = client.post(f"/pacs/studies/{study['uid']}/analyze")
    assert response.status_code == 502
    assert "HTTP 401" in response.json()["error"]["message"]


def test_failure_after_listing_stores_nothing(
    pacs_client: TestClient, orthanc: Orthanc, study: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every result is built before anything is stored: a PACS error midway leaves no trace."""
    path_uid = generate_uid()
    real = pydicom.dcmread(io.BytesIO(orthanc.study_files(study["uid"])[0]))
    for _ in range(2):
        ds = make_dataset(dark_with_bright_spot(), study_uid=path_uid, modality="DX")
        ds.PatientID = real.PatientID
        orthanc.upload(to_bytes(ds))
    calls = {"n": 0}
    retrieve = Pacs.retrieve

    def flaky(self: Pacs, *uids: str) -> Dataset:
        calls["n"] += 1
        if calls["n"] == 2:
            raise PacsUnavailable("The PACS at test could not be reached while retrieving.")
        return retrieve(self, *uids)

    monkeypatch.setattr(Pacs, "retrieve", flaky)
    response = pacs_client.post(f"/pacs/studies/{path_uid}/analyze")
    assert response.status_code == 502
    assert len(orthanc.study_files(path_uid)) == 2  # the two sources, no result


def test_refused_store_is_reported(
    pacs_client: TestClient, orthanc: Orthanc, monkeypatch: pytest.MonkeyPatch
) -> None:
    study_uid = generate_uid()
    orthanc.upload(to_bytes(make_dataset(dark_with_bright_spot(), study_uid=study_uid)))

    def refuse(self: Pacs, datasets: list[Dataset], study_instance_uid: str) -> Dataset:
        answer = Dataset()
        answer.FailedSOPSequence = [Dataset()]
        answer.ReferencedSOPSequence = [Dataset()]
        return answer

    monkeypatch.setattr("dicomweb_client.api.DICOMwebClient.store_instances", refuse)
    response = pacs_client.post(f"/pacs/studies/{study_uid}/analyze")
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "pacs_store_failed" and "refused 1 of 2" in error["message"]


def test_openapi_documents_analyze(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    analyze = spec["paths"]["/pacs/studies/{study_instance_uid}/analyze"]["post"]
    assert {"200", "404", "422", "501", "502", "503", "504"} <= set(analyze["responses"])
    schema = spec["components"]["schemas"]["StudyAnalysis"]["properties"]
    assert {"study_instance_uid", "results", "stored", "skipped"} <= set(schema)


def test_not_configured_is_501(client: TestClient) -> None:
    response = client.post(f"/pacs/studies/{generate_uid()}/analyze")
    assert response.status_code == 501
    assert "CXR_DICOMWEB_URL" in response.json()["error"]["message"]


def test_silent_pacs_is_504_within_the_timeout(tiny_model_dir: Path) -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/dicom-web"
        with _client(tiny_model_dir, url) as client:
            started = time.monotonic()
            response = client.post(f"/pacs/studies/{generate_uid()}/analyze")
            elapsed = time.monotonic() - started
            assert response.status_code == 504, response.text
            assert response.json()["error"]["code"] == "pacs_timeout"
            assert TIMEOUT - 0.5 <= elapsed <= TIMEOUT + 2.0, elapsed
            assert client.get("/ready").status_code == 200


def test_stopped_orthanc_is_502_and_service_stays_ready(
    tiny_model_dir: Path, tmp_path: Path, originals: Path
) -> None:
    server = Orthanc(tmp_path).start()
    path = sorted((originals / "dicom").glob("*.dcm"))[0]
    server.upload(path.read_bytes())
    study_uid = pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID
    with _client(tiny_model_dir, server.dicomweb_url) as client:
        assert client.post(f"/pacs/studies/{study_uid}/analyze").status_code == 200
        server.stop()
        started = time.monotonic()
        response = client.post(f"/pacs/studies/{study_uid}/analyze")
        elapsed = time.monotonic() - started
        assert response.status_code in (502, 504), response.text
        assert response.json()["error"]["code"] in ("pacs_unavailable", "pacs_timeout")
        assert "could not be reached" in response.json()["error"]["message"]
        assert elapsed <= TIMEOUT + 1.0, elapsed
        assert client.get("/ready").status_code == 200
        assert client.get("/health").status_code == 200
