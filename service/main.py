"""App factory. ``uvicorn --factory service.main:create_app`` or ``service.main:app``.

The lifespan validates every model folder (``CXR_MODEL_DIR`` and ``CXR_EXTRA_MODEL_DIRS``), loads
each model once, warms it up (so the first request does not pay for tracing), and yields the
typed ``ServiceState``; ``/ready`` is 503 until every model is done.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.api import middleware
from service.api.apidocs import router as apidocs_router
from service.api.models import router as models_router
from service.api.pacs import router as pacs_router
from service.api.page import router as page_router
from service.api.protocol_errors import ProtocolErrors
from service.api.routes import router
from service.api.v1 import router as v1_router
from service.api.v2 import router as v2_router
from service.errors import NotReady, ServiceError
from service.inference.artifact import ModelMetadata
from service.inference.registry import ModelRegistry, ModelSource, discover
from service.inference.runtime import ClassifierRuntime
from service.inference.scheduler import InferenceScheduler
from service.keys import KeyStore
from service.observability.access import AccessMiddleware
from service.observability.endpoint import router as metrics_router
from service.observability.logs import configure_logging
from service.observability.metrics import ServiceMetrics
from service.pools import Pools
from service.priority import lower_other_threads, lower_thread_priority
from service.settings import DISCLAIMER, Settings, get_settings
from service.state import ServiceState

logger = logging.getLogger("service")

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}


def _configure_tensorflow(settings: Settings) -> None:
    import tensorflow as tf

    try:
        if settings.tf_intra_op_threads:
            tf.config.threading.set_intra_op_parallelism_threads(settings.tf_intra_op_threads)
        if settings.tf_inter_op_threads:
            tf.config.threading.set_inter_op_parallelism_threads(settings.tf_inter_op_threads)
    except RuntimeError:  # already initialised in this process (e.g. several apps in tests)
        logger.info("TensorFlow thread settings already fixed in this process")


def load_runtime(settings: Settings, metadata: ModelMetadata) -> ClassifierRuntime:
    # Native thread pools made while loading (TensorFlow's, OpenVINO's) inherit this priority.
    lower_thread_priority(settings.work_niceness)
    _configure_tensorflow(settings)
    runtime = ClassifierRuntime.load(
        settings.model_dir,
        backend=settings.backend,
        threads=settings.tf_intra_op_threads,
        metadata=metadata,
    )
    if settings.warmup:
        runtime.warm_up()
    return runtime


async def _load_into(state: ServiceState, source: ModelSource) -> None:
    """Load + warm up in a worker thread; the event loop keeps answering /health meanwhile."""
    started = time.perf_counter()
    settings = state.settings.model_copy(update={"model_dir": source.folder})
    try:
        runtime = await asyncio.to_thread(load_runtime, settings, source.metadata)
    except Exception as exc:
        state.load_error = f"{source.name}: {exc}"
        logger.critical("model %s failed to load, shutting down: %s", source.name, exc)
        if state.settings.background_load:
            signal.raise_signal(signal.SIGTERM)  # ask uvicorn to stop: never serve without a model
        raise
    state.models.runtimes[source.name] = runtime
    meta = runtime.metadata
    logger.info(
        "model %s %s ready in %.1f s", meta.name, meta.version, time.perf_counter() - started
    )


async def _load_all(state: ServiceState) -> None:
    """The models one after the other (each warm-up uses every core), the default first."""
    started = time.perf_counter()
    for source in state.models.sources:
        await _load_into(state, source)
    state.loaded_in_seconds = time.perf_counter() - started
    # Any work thread a library started elsewhere: below this (the event loop's) thread too.
    lower_other_threads(state.settings.work_niceness, keep=threading.get_native_id())


def _error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


def _install_error_handlers(app: FastAPI) -> None:
    async def on_service_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServiceError)
        level = logging.DEBUG if isinstance(exc, NotReady) else logging.INFO
        logger.log(level, "request refused: %s %s", exc.status_code, exc.code)
        return _error_response(exc.status_code, exc.code, exc.message, exc.headers)

    async def on_validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        return _error_response(422, "invalid_request", problems or "Invalid request.")

    async def on_http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return _error_response(exc.status_code, code, str(exc.detail), dict(exc.headers or {}))

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error", exc_info=exc)
        return _error_response(
            500, "internal_error", "Internal error; the request was not processed."
        )

    app.add_exception_handler(ServiceError, on_service_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_format)
    metrics = ServiceMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        keys = KeyStore(settings.api_keys_file) if settings.api_keys_file else None
        if keys is None:
            # A warning only when it is open to the network: loopback-only is the safe default.
            logger.log(
                logging.WARNING if settings.allow_anonymous else logging.INFO,
                "no API keys (CXR_API_KEYS_FILE): anonymous service; requests on non-loopback "
                "addresses are %s",
                "ALLOWED (CXR_ALLOW_ANONYMOUS=true)" if settings.allow_anonymous else "refused",
            )
        # The cheap checks (files, checksums, classes, unique names) of every model folder run
        # before the port opens, so a broken artifact stops start-up with a clear message
        # instead of a server that never gets ready.
        models = ModelRegistry(
            discover(
                settings.model_dir,
                settings.extra_model_dir_list,
                extras_explicit=settings.extra_model_dirs_explicit,
            )
        )
        state = ServiceState(
            settings=settings,
            scheduler=InferenceScheduler(
                concurrency=settings.inference_concurrency,
                max_queue=settings.max_queue,
                retry_after_seconds=settings.retry_after_seconds,
                max_batch=settings.max_batch_size,
                batch_window_ms=settings.batch_window_ms,
                on_model_call=metrics.observe_model_call,
                niceness=settings.work_niceness,
                readers=settings.reading_requests,
            ),
            pools=Pools(settings),
            models=models,
            keys=keys,
        )
        app.state.service = state  # for in-process tools (tests, benchmarks); routes use scope
        state.pools.start()  # decode workers start meanwhile; the first decode waits for one
        metrics.bind(state)
        loading = asyncio.create_task(_load_all(state))  # metadata checked once, reused
        if not settings.background_load:
            await loading
        try:
            yield {"service": state}
        finally:
            loading.cancel()
            state.scheduler.shutdown()
            state.pools.shutdown()

    app = FastAPI(
        title="Chest X-ray classifier with Grad-CAM",
        version="0.1.0",
        summary="covid / normal / pneumonia probabilities and Grad-CAM heatmaps for chest X-rays.",
        description=DISCLAIMER,
        lifespan=lifespan,
        docs_url=None,  # served from installed assets instead of a CDN: service/api/apidocs.py
        redoc_url=None,
    )
    _install_error_handlers(app)
    app.include_router(router)
    app.include_router(models_router)
    app.include_router(page_router)
    app.include_router(pacs_router)
    app.include_router(v2_router)  # Open Inference Protocol v2 (KServe / Triton)
    app.include_router(v1_router)  # TF Serving / KServe v1
    app.include_router(apidocs_router)
    middleware.install(app, settings)
    app.state.metrics = metrics
    app.include_router(metrics_router)
    # Added last, so outermost: every request is timed, counted and logged, refused ones too.
    app.add_middleware(AccessMiddleware, metrics=metrics)
    # Outside the access log (which records each error's code): /v2 and /v1 errors in their
    # protocols' {"error": "..."} shape.
    app.add_middleware(ProtocolErrors)
    return app
