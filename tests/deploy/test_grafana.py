"""The Grafana dashboard queries only metrics (and labels) that ``GET /metrics`` exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "cxr-service.json"
EXAMPLES = REPO / "examples"
SAMPLE_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "gauge": ("",),
    "untyped": ("",),
}
ADDED_BY_PROMETHEUS = {"instance", "job"}  # target labels the scrape adds
SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}")
GROUPING = re.compile(r"\b(?:by|without|ignoring|on)\s*\(([^)]*)\)")


def exposed(client: TestClient) -> dict[str, set[str]]:
    """Sample name -> its label names, after traffic that creates every labelled series."""
    png = (EXAMPLES / "normal.png").read_bytes()
    client.post("/predict", files={"file": ("x.png", png)})
    client.post("/explain", files={"file": ("x.png", png)})
    client.post("/predict", files={"file": ("x.png", b"not an image")})
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for suffix in SAMPLE_SUFFIXES.get(family.type, ("",)):
            names.setdefault(family.name + suffix, set())
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    found = [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            found.append((f"variable {variable['name']}", variable["definition"]))
    return found


def test_every_queried_metric_and_label_exists(client: TestClient) -> None:
    metrics = exposed(client)
    found = queries()
    assert len(found) >= 15
    used: set[str] = set()
    for title, expr in found:
        if expr.startswith("label_values("):
            name, label = (part.strip() for part in expr[13:-1].split(","))
            assert name in metrics and label in metrics[name] | ADDED_BY_PROMETHEUS, title
            continue
        selected = SELECTOR.findall(expr)
        assert selected, f"{title}: every metric is written with a {{...}} selector"
        labels = set(ADDED_BY_PROMETHEUS)
        for name, matchers in selected:
            assert name in metrics, f"{title}: {name} is not in /metrics"
            used.add(name)
            labels |= metrics[name]
            for matcher in re.findall(r"([a-zA-Z_]\w*)\s*=~?", matchers):
                assert matcher in labels, f"{title}: {name} has no label {matcher}"
        for group in GROUPING.findall(expr):
            for label in filter(None, (part.strip() for part in group.split(","))):
                assert label in labels, f"{title}: no label {label} to group by"
    # The dashboard shows the list: traffic, latency, errors, model, queue, labels, process.
    for name in (
        "cxr_http_requests_total",
        "cxr_http_request_duration_seconds_bucket",
        "cxr_errors_total",
        "cxr_inference_seconds_bucket",
        "cxr_queue_depth",
        "cxr_predictions_total",
        "cxr_model_info",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    ):
        assert name in used, name


def test_the_dashboard_is_importable_json() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 30
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
