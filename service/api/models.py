"""``GET /models`` (every served model, in short) and ``GET /model`` (one model in full).

Open without a key, like ``/ready``: model facts, no patient data, and the page lists the
models before it asks for a key.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from service import analysis
from service.api.deps import State
from service.api.docs import MODEL_ERRORS, NOT_READY
from service.inference.registry import ModelSource
from service.schemas import ModelInfo, ModelList, ModelSummary
from service.settings import DISCLAIMER

router = APIRouter(tags=["model"])

ModelName = Annotated[
    str | None,
    Query(description="A served model's name (GET /models); default: the default model"),
]


def headline_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The scalar test figures of an evaluation (a ``{"value", "ci95"}`` entry gives its value);
    per-class and per-source tables are left to ``GET /model``."""
    summary: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, dict) and isinstance(value.get("value"), int | float):
            summary[key] = value["value"]
        elif isinstance(value, int | float | str) and not isinstance(value, bool):
            summary[key] = value
    return summary


def _summary(state: State, source: ModelSource) -> ModelSummary:
    runtime = state.models.runtimes.get(source.name)
    metadata = source.metadata
    return ModelSummary(
        name=metadata.name,
        version=metadata.version,
        classes=metadata.classes,
        backend=runtime.backend if runtime else None,
        default=source.name == state.models.default_name,
        ready=runtime is not None,
        test_metrics=headline_metrics(metadata.metrics),
    )


@router.get(
    "/models",
    response_model=ModelList,
    summary="Every served model: name, version, classes, backend, default, test metrics",
)
async def list_models(state: State) -> ModelList:
    return ModelList(
        models=[_summary(state, source) for source in state.models.sources],
        default=state.models.default_name,
    )


@router.get(
    "/model",
    response_model=ModelInfo,
    responses={**NOT_READY, **MODEL_ERRORS},
    summary="One served model in full: classes, input, preprocessing, training data, metrics",
)
async def model_info(state: State, model: ModelName = None) -> ModelInfo:
    runtime = analysis.require_runtime(state, model)
    metadata = runtime.metadata
    return ModelInfo(
        name=metadata.name,
        version=metadata.version,
        default=metadata.name == state.models.default_name,
        classes=metadata.classes,
        input=metadata.input,
        preprocessing=metadata.preprocessing,
        gradcam_layer=metadata.gradcam_layer,
        sha256=metadata.sha256,
        training=metadata.training,
        metrics=metadata.metrics,
        backend=runtime.backend,
        backends=metadata.backends,
        input_gate=analysis.gate_info(runtime, state.settings.input_gate),
        calibration=metadata.calibration.model_dump() if metadata.calibration else None,
        disclaimer=DISCLAIMER,
    )
