"""/health, /ready, /model and the OpenAPI document."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service import main as service_main
from service.main import create_app
from service.settings import Settings


def test_health_and_ready(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"status": "ready"}


def test_model_info(client: TestClient) -> None:
    body = client.get("/model").json()
    assert body["name"] == "tiny-test-model"
    assert body["classes"] == ["covid", "normal", "pneumonia"]
    assert body["gradcam_layer"] == "block5_conv3"
    assert body["input"]["height"] == 64
    assert "NOT" in body["disclaimer"]
    assert "metrics" in body and "training" in body


def test_openapi_documents_bodies_and_errors(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for route in ("/predict", "/explain"):
        operation = spec["paths"][route]["post"]
        content = operation["requestBody"]["content"]
        assert {"multipart/form-data", "application/json"} <= set(content)
        assert {"200", "413", "415", "422", "503"} <= set(operation["responses"])
        for status in ("401", "403", "408", "413", "415", "422", "503"):
            examples = operation["responses"][status]["content"]["application/json"]["examples"]
            for code, example in examples.items():
                assert example["value"]["error"]["code"] == code
                assert example["value"]["error"]["message"]
        codes = operation["responses"]["503"]["content"]["application/json"]["examples"]
        assert set(codes) == {"not_ready", "overloaded"}
    assert "503" in spec["paths"]["/ready"]["get"]["responses"]
    assert "securitySchemes" in spec["components"]
    assert client.get("/docs").status_code == 200


def test_ready_is_503_until_the_model_is_loaded(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    real_load = service_main.load_runtime

    def slow_load(settings: Settings, metadata):  # type: ignore[no-untyped-def]
        release.wait(30)
        return real_load(settings, metadata)

    monkeypatch.setattr(service_main, "load_runtime", slow_load)
    app = create_app(Settings(model_dir=tiny_model_dir, background_load=True))
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200
        not_ready = client.get("/ready")
        assert not_ready.status_code == 503
        assert not_ready.json()["error"]["code"] == "not_ready"
        assert "Retry-After" in not_ready.headers
        assert (
            client.post("/predict", content=b"x", headers={"content-type": "image/png"}).json()[
                "error"
            ]["code"]
            == "not_ready"
        )
        release.set()
        for _ in range(200):
            if client.get("/ready").status_code == 200:
                break
            time.sleep(0.05)
        assert client.get("/ready").status_code == 200


def test_broken_artifact_refuses_to_start(tiny_model_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("model.keras", "metadata.json"):
        (broken / name).write_bytes((tiny_model_dir / name).read_bytes())
    with (broken / "model.keras").open("ab") as handle:
        handle.write(b"tampered")
    app = create_app(Settings(model_dir=broken, background_load=False))
    with pytest.raises(Exception, match="sha256"), TestClient(app):
        pass


def test_concurrent_predictions_and_health(
    settings: Settings, raster_originals: list[Path]
) -> None:
    """16 concurrent /predict calls all succeed; /health answers while they are all waiting.

    The model is held back by an event so "while they run" is a fact, not a timing accident.
    """
    data = raster_originals[5].read_bytes()
    release = threading.Event()
    with TestClient(create_app(settings)) as client:
        assert client.get("/ready").status_code == 200
        service_state = client.app.state.service  # type: ignore[attr-defined]
        real_predict = service_state.runtime.predict_with_features

        def held_predict(batch):  # type: ignore[no-untyped-def]
            release.wait(30)
            return real_predict(batch)

        service_state.runtime.predict_with_features = held_predict  # type: ignore[method-assign]
        with ThreadPoolExecutor(16) as pool:
            predictions = [
                pool.submit(client.post, "/predict", files={"file": ("x", data)}) for _ in range(16)
            ]
            health = client.get("/health")
            unfinished_when_health_answered = sum(not future.done() for future in predictions)
            release.set()
            statuses = [future.result().status_code for future in predictions]
    assert health.status_code == 200
    assert unfinished_when_health_answered == 16
    assert statuses == [200] * 16


def test_full_queue_answers_503_with_retry_after(
    tiny_model_dir: Path, raster_originals: list[Path]
) -> None:
    """One call in flight and no queue: a second request is refused at once, not left waiting."""
    data = raster_originals[5].read_bytes()
    release = threading.Event()
    settings = Settings(model_dir=tiny_model_dir, background_load=False, max_queue=0)
    with TestClient(create_app(settings)) as client:
        service_state = client.app.state.service  # type: ignore[attr-defined]
        real_predict = service_state.runtime.predict_with_features
        entered = threading.Event()

        def held_predict(batch):  # type: ignore[no-untyped-def]
            entered.set()
            release.wait(30)
            return real_predict(batch)

        service_state.runtime.predict_with_features = held_predict  # type: ignore[method-assign]
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(client.post, "/predict", files={"file": ("x", data)})
            assert entered.wait(30)
            refused = client.post("/predict", files={"file": ("x", data)})
            release.set()
            assert first.result().status_code == 200
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "overloaded"
    assert refused.headers["Retry-After"] == "1"
