"""The access log line, the request id, and what never reaches the log."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.keys import new_key, write_keys
from service.main import create_app
from service.observability.logs import JsonFormatter
from service.settings import Settings
from tests.dicom_samples import (
    BIRTH_DATE,
    PATIENT_ID,
    PATIENT_NAME,
    dark_with_bright_spot,
    make_dicom,
)


def _png() -> bytes:
    return (Path(__file__).resolve().parents[3] / "examples" / "normal.png").read_bytes()


def _access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "service.access"]


def test_one_line_per_request_with_route_status_model_and_label(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="service.access"):
        response = client.post("/predict", files={"file": ("x.png", _png(), "image/png")})
    assert response.status_code == 200
    (record,) = _access_records(caplog)
    fields = record.fields  # type: ignore[attr-defined]
    assert fields["method"] == "POST"
    assert fields["route"] == "/predict"
    assert fields["status"] == 200
    assert fields["duration_ms"] > 0
    assert fields["model"] == "tiny-test-model:0.0.1"
    assert fields["label"] == response.json()["label"]
    assert fields["request_id"] == response.headers["X-Request-ID"]
    assert "/predict 200" in record.getMessage()
    assert f"label={fields['label']}" in record.getMessage()


def test_request_id_is_taken_when_sane_and_generated_otherwise(client: TestClient) -> None:
    assert (
        client.get("/health", headers={"X-Request-ID": "trace-42.a:b"}).headers["X-Request-ID"]
        == "trace-42.a:b"
    )
    for bad in ("", "has space", "x" * 200, "<script>"):
        echoed = client.get("/health", headers={"X-Request-ID": bad}).headers["X-Request-ID"]
        assert echoed != bad
        assert len(echoed) == 32 and all(c in "0123456789abcdef" for c in echoed)
    first = client.get("/health").headers["X-Request-ID"]
    assert first != client.get("/health").headers["X-Request-ID"]


def test_errors_carry_their_code_and_the_request_id(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="service.access"):
        response = client.post("/predict", files={"file": ("x.png", b"not an image")})
        missing = client.get("/no/such/page")
    assert response.status_code == 415
    assert "X-Request-ID" in response.headers
    assert missing.status_code == 404 and "X-Request-ID" in missing.headers
    unsupported, unmatched = (r.fields for r in _access_records(caplog))  # type: ignore[attr-defined]
    assert unsupported["code"] == "unsupported_media_type"
    assert "label" not in unsupported
    assert unmatched["route"] == "unmatched"  # never the raw path
    assert unmatched["code"] == "not_found"


def test_route_template_not_the_path_and_no_patient_data(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    dicom = make_dicom(dark_with_bright_spot())
    uid = "1.2.826.0.1.3680043.8.498.99999"
    with caplog.at_level(logging.DEBUG):
        client.post("/explain", content=dicom, headers={"Content-Type": "application/dicom"})
        client.post("/explain?target=normal", files={"file": ("x.dcm", dicom)})
        client.post(f"/pacs/studies/{uid}/analyze")
    ours = [r for r in caplog.records if r.name.startswith("service")]  # not the test client's
    lines = [JsonFormatter().format(r) for r in ours] + [r.getMessage() for r in ours]
    for secret in (PATIENT_NAME, PATIENT_ID, BIRTH_DATE, uid, "target=normal"):
        assert not any(secret in line for line in lines), secret
    routes = [r.fields["route"] for r in _access_records(caplog)]  # type: ignore[attr-defined]
    assert routes[-1] == "/pacs/studies/{study_instance_uid}/analyze"


def test_the_key_name_is_logged_never_the_key(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key, record = new_key("ward-3", frozenset({"infer"}))
    write_keys(tmp_path / "keys.json", [record])
    app = create_app(settings.model_copy(update={"api_keys_file": tmp_path / "keys.json"}))
    with TestClient(app) as client, caplog.at_level(logging.INFO, logger="service.access"):
        authorised = client.post(
            "/predict",
            files={"file": ("x.png", _png(), "image/png")},
            headers={"Authorization": f"Bearer {key}"},
        )
        refused = client.post("/predict", files={"file": ("x.png", _png(), "image/png")})
    assert (authorised.status_code, refused.status_code) == (200, 401)
    logged, unauthorised = (r.fields for r in _access_records(caplog))  # type: ignore[attr-defined]
    assert logged["key"] == "ward-3" and logged["route"] == "/predict"
    assert unauthorised["key"] is None and unauthorised["code"] == "unauthorized"
    assert not any(key in r.getMessage() for r in caplog.records)


def test_json_lines_hold_the_fields() -> None:
    record = logging.LogRecord("service.access", logging.INFO, __file__, 1, "%s", ("x",), None)
    record.fields = {"route": "/predict", "status": 200, "request_id": "r1"}
    entry = json.loads(JsonFormatter().format(record))
    assert entry["route"] == "/predict" and entry["status"] == 200 and entry["message"] == "x"
    assert entry["level"] == "info" and entry["logger"] == "service.access"
    assert entry["time"].endswith("+00:00")


def test_an_unexpected_exception_is_logged_and_counted_as_a_500(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings)

    @app.get("/_boom", include_in_schema=False)
    async def boom() -> None:
        raise RuntimeError("bug")

    with (
        TestClient(app, raise_server_exceptions=False) as client,
        caplog.at_level(logging.INFO, logger="service.access"),
    ):
        assert client.get("/_boom").status_code == 500
        metrics = client.get("/metrics").text
    (record, _) = _access_records(caplog)
    assert record.fields["status"] == 500  # type: ignore[attr-defined]
    assert record.fields["code"] == "internal_error"  # type: ignore[attr-defined]
    assert 'cxr_errors_total{code="internal_error",route="/_boom"} 1.0' in metrics
