"""GET /metrics: Prometheus text that parses, and counters that match the traffic sent."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from service.main import create_app
from service.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
XRAYS = [(EXAMPLES / name).read_bytes() for name in ("normal.png", "pneumonia.jpeg", "covid.jpg")]


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    parsed = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            parsed[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return parsed


def value(parsed: dict, name: str, **labels: str) -> float:
    return parsed.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def fresh_client(settings: Settings) -> Iterator[TestClient]:
    """An app of its own, so its counters start at zero."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def test_a_mixed_run_of_100_requests_is_counted_by_route_and_status(
    fresh_client: TestClient,
) -> None:
    sent: Counter[tuple[str, str, str]] = Counter()
    labels: Counter[str] = Counter()
    rng = np.random.default_rng(7)
    for i in range(100):
        kind = rng.choice(["predict", "explain", "bad", "health", "model", "missing", "target"])
        if kind in ("predict", "explain"):
            response = fresh_client.post(f"/{kind}", files={"file": ("x", XRAYS[i % 3])})
            assert response.status_code == 200, response.text
            labels[response.json()["label"]] += 1
        elif kind == "bad":
            response = fresh_client.post("/predict", files={"file": ("x.png", b"not an image")})
        elif kind == "target":
            response = fresh_client.post(
                "/explain", params={"target": "nope"}, files={"file": ("x", XRAYS[0])}
            )
        elif kind == "missing":
            response = fresh_client.get("/not-here")
        else:
            response = fresh_client.get(f"/{kind}")
        route = "unmatched" if kind == "missing" else response.request.url.path
        sent[(route, response.request.method, str(response.status_code))] += 1
    assert sum(sent.values()) == 100

    parsed = samples(fresh_client.get("/metrics").text)  # parses, or this raises
    for (route, method, status), count in sent.items():
        counted = value(
            parsed, "cxr_http_requests_total", route=route, method=method, status=status
        )
        assert counted == count, (route, method, status)
        assert value(parsed, "cxr_http_request_duration_seconds_count", route=route, method=method)
    model = {"model": "tiny-test-model", "version": "0.0.1"}
    for label, count in labels.items():
        assert value(parsed, "cxr_predictions_total", label=label, **model) == count
    inferred = sum(
        value(parsed, "cxr_inference_images_total", backend="tensorflow", kind=kind)
        for kind in ("predict", "explain")
    )
    assert inferred == sum(labels.values())
    bad = sum(n for (route, _, status), n in sent.items() if status == "415")
    assert (
        value(parsed, "cxr_errors_total", route="/predict", code="invalid_image")
        + value(parsed, "cxr_errors_total", route="/predict", code="unsupported_media_type")
        == bad
    )
    wrong_target = sent[("/explain", "POST", "422")]
    assert value(parsed, "cxr_errors_total", route="/explain", code="invalid_request") == (
        wrong_target
    )


def test_model_queue_and_process_metrics_are_there(client: TestClient) -> None:
    parsed = samples(client.get("/metrics").text)
    model = {
        "model": "tiny-test-model",
        "version": "0.0.1",
        "backend": "tensorflow",
        "default": "true",
    }
    assert value(parsed, "cxr_model_info", **model) == 1
    assert value(parsed, "cxr_model_ready") == 1
    assert value(parsed, "cxr_queue_depth") == 0
    assert value(parsed, "process_resident_memory_bytes") > 10_000_000
    assert ("process_cpu_seconds_total", frozenset()) in parsed


def test_overloaded_requests_are_counted(fresh_client: TestClient) -> None:
    scheduler = fresh_client.app.state.service.scheduler  # type: ignore[attr-defined]
    scheduler._max_queue = -10  # a queue "fuller than full": every request is refused
    response = fresh_client.post("/predict", files={"file": ("x", XRAYS[0])})
    assert response.status_code == 503
    parsed = samples(fresh_client.get("/metrics").text)
    assert value(parsed, "cxr_errors_total", route="/predict", code="overloaded") == 1


def test_metrics_refuse_remote_clients_unless_open(settings: Settings) -> None:
    remote = {"client": ("203.0.113.9", 40000)}
    for access, status in (("loopback", 403), ("open", 200)):
        app = create_app(settings.model_copy(update={"metrics_access": access}))
        with TestClient(app, client=remote["client"]) as client:
            assert client.get("/metrics").status_code == status
    with TestClient(create_app(settings), client=("127.0.0.1", 40000)) as client:
        assert client.get("/metrics").status_code == 200
