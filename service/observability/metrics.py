"""Prometheus metrics of one app: HTTP traffic, errors by code, model calls, queue, labels.

Each app owns its registry (tests build several apps in one process, and the default global
registry would refuse the second set). Counters are fed by the access middleware and the
scheduler's model-call hook; the queue depth and the model's identity are read from the service
state when ``/metrics`` is scraped, so they can never go stale. Every served model has its own
``cxr_model_info`` series, and ``cxr_predictions`` counts labels per model.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from service.state import ServiceState

__all__ = ["CONTENT_TYPE_LATEST", "ServiceMetrics"]

# Seconds. The model call is 50-200 ms on a CPU; a request can wait in the queue for seconds.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
MODEL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)


class _StateCollector(Collector):
    """Values that live in the service state, read at scrape time."""

    def __init__(self) -> None:
        self.state: ServiceState | None = None

    def collect(self) -> Iterator[Metric]:
        state = self.state
        ready = GaugeMetricFamily("cxr_model_ready", "1 once every model is loaded and warmed up")
        ready.add_metric([], 1.0 if state is not None and state.ready else 0.0)
        yield ready
        info = GaugeMetricFamily(
            "cxr_model_info",
            "Each served model once loaded (always 1); default: used when a request names none",
            labels=["model", "version", "backend", "default"],
        )
        if state is not None:
            for name, runtime in state.models.runtimes.items():
                default = "true" if name == state.models.default_name else "false"
                metadata = runtime.metadata
                info.add_metric([metadata.name, metadata.version, runtime.backend, default], 1.0)
        yield info
        depth = GaugeMetricFamily(
            "cxr_queue_depth", "Requests waiting for a model call (not counting the running ones)"
        )
        depth.add_metric([], float(state.scheduler.queue_depth) if state is not None else 0.0)
        yield depth


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)  # process_resident_memory_bytes, cpu seconds
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._state = _StateCollector()
        self.registry.register(self._state)
        self.requests = Counter(
            "cxr_http_requests",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "cxr_http_request_duration_seconds",
            "Time from the request's arrival to the end of its response, by route template",
            ["route", "method"],
            buckets=HTTP_BUCKETS,
            registry=self.registry,
        )
        self.in_progress = Gauge(
            "cxr_http_requests_in_progress", "Requests being handled", registry=self.registry
        )
        self.errors = Counter(
            "cxr_errors",
            "Error responses by route and error code (decode failures, overloaded, input gate...)",
            ["route", "code"],
            registry=self.registry,
        )
        self.model_seconds = Histogram(
            "cxr_inference_seconds",
            "Duration of one model call (a batch), by trunk backend and kind",
            ["backend", "kind"],
            buckets=MODEL_BUCKETS,
            registry=self.registry,
        )
        self.model_images = Counter(
            "cxr_inference_images",
            "Images that went through the model, by trunk backend and kind",
            ["backend", "kind"],
            registry=self.registry,
        )
        self.predictions = Counter(
            "cxr_predictions",
            "Predicted top labels, by model and version",
            ["model", "version", "label"],
            registry=self.registry,
        )

    def bind(self, state: ServiceState) -> None:
        """Read the queue and the model from this state from now on (set by the lifespan)."""
        self._state.state = state

    def observe_model_call(self, backend: str, kind: str, images: int, seconds: float) -> None:
        """The scheduler's hook, called once per model call."""
        self.model_seconds.labels(backend, kind).observe(seconds)
        self.model_images.labels(backend, kind).inc(images)

    def render(self) -> bytes:
        return generate_latest(self.registry)
