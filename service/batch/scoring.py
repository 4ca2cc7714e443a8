"""Score one file the way ``POST /predict`` does: decode (in a worker process) -> input gate ->
preprocess -> model, one image per model call.

One image per call on purpose: batching gains under 4 % per image on a CPU (``bench/README.md``)
and a row's probabilities would then depend on which files shared its batch; one at a time they
equal ``/predict``'s and the local and Ray paths give the same rows whatever their grouping.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.batch.rows import OK, REJECTED, ScoreRow
from service.errors import PayloadTooLarge, ServiceError
from service.inference.artifact import ModelMetadata, read_metadata
from service.inference.gate import judge
from service.inference.preprocess import to_model_input
from service.inference.render import render_cam
from service.inference.runtime import ClassifierRuntime
from service.io.prepared import DecodeSpec, PreparedImage
from service.io.sniff import sniff_format
from service.io.workers import DecodePool
from service.settings import Settings

Decoder = Callable[[bytes, DecodeSpec], PreparedImage]


class EmptyFile(ServiceError):
    status_code = 422
    code = "empty_file"


class UnreadableFile(ServiceError):
    """The file system refused to give the bytes (permissions, a vanished file, an I/O error)."""

    status_code = 422
    code = "unreadable_file"


@dataclass(frozen=True)
class Job:
    path: str  # absolute
    true_label: str = ""


@dataclass(frozen=True)
class Scored:
    row: ScoreRow
    overlay_png: bytes | None = None  # Grad-CAM overlay of the top class, when explaining


@dataclass(frozen=True)
class _Decoded:
    job: Job
    image: PreparedImage | None
    failure: ScoreRow | None


def check_file(path: str, max_bytes: int) -> None:
    """Refuse, before reading, what ``/predict`` would refuse for its size, and what cannot be
    read at all (Ray's binary reader would fail the whole dataset on it)."""
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        raise UnreadableFile(f"The file cannot be read: {exc.strerror or exc}.") from exc
    if size > max_bytes:
        raise PayloadTooLarge(f"The file has {size} bytes; the limit is {max_bytes}.")
    if not os.access(path, os.R_OK):
        raise UnreadableFile("The file cannot be read: permission denied.")


def read_file(path: str, max_bytes: int) -> bytes:
    check_file(path, max_bytes)
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise UnreadableFile(f"The file cannot be read: {exc.strerror or exc}.") from exc


def failure_row(
    job: Job, error: ServiceError, metadata: ModelMetadata, file_format: str = ""
) -> ScoreRow:
    return make_row(job, error.code, metadata, message=error.message, format=file_format)


def make_row(job: Job, status: str, metadata: ModelMetadata, **fields: Any) -> ScoreRow:
    return ScoreRow(
        path=job.path,
        status=status,
        true_label=job.true_label,
        model_name=metadata.name,
        model_version=metadata.version,
        **fields,
    )


class BatchScorer:
    """A loaded model plus a decoder; ``score`` turns one file's bytes into one row."""

    def __init__(
        self,
        runtime: ClassifierRuntime,
        settings: Settings,
        decoder: Decoder,
        *,
        explain: bool = False,
    ) -> None:
        self.runtime, self.settings, self.explain = runtime, settings, explain
        self._decoder = decoder
        self._spec = DecodeSpec(  # the service's limits (service.analysis.decode_spec)
            max_pixels=settings.max_image_pixels,
            max_decoded_bytes=settings.max_decoded_bytes,
            min_side=settings.min_image_side,
            modalities=settings.dicom_modality_set,
            model_size=runtime.input_size,
            heatmap_max_side=settings.heatmap_max_side,
            display=explain,
            dicom_header=True,  # for the SOP Instance UID, the only DICOM identifier we keep
        )

    def explainer(self) -> BatchScorer:
        """The same model and decoder, also computing Grad-CAM overlays."""
        return BatchScorer(self.runtime, self.settings, self._decoder, explain=True)

    @property
    def classes(self) -> list[str]:
        return list(self.runtime.metadata.classes)

    def _row(self, job: Job, status: str, **fields: Any) -> ScoreRow:
        return make_row(job, status, self.runtime.metadata, **fields)

    def decode(self, job: Job, data: bytes | None = None) -> _Decoded:
        """Read (unless ``data`` is given) and decode; any failure becomes the file's row."""
        file_format = ""
        try:
            if data is None:
                data = read_file(job.path, self.settings.max_upload_bytes)
            if not data:
                raise EmptyFile("The file is empty.")
            limit = self.settings.max_upload_bytes
            if len(data) > limit:  # bytes handed over (Ray) were not checked by read_file
                raise PayloadTooLarge(f"The file has {len(data)} bytes; the limit is {limit}.")
            file_format = str(sniff_format(data))  # cheap, here: no worker for a text file
            return _Decoded(job, self._decoder(data, self._spec), None)
        except ServiceError as exc:
            return _Decoded(job, None, failure_row(job, exc, self.runtime.metadata, file_format))

    def finish(self, decoded: _Decoded) -> Scored:
        """Model, gate and (when explaining) the Grad-CAM overlay for a decoded file."""
        if decoded.failure is not None:
            return Scored(decoded.failure)
        image, job = decoded.image, decoded.job
        assert image is not None
        batch = to_model_input(image.model_gray, self.runtime.input_size)[None]
        overlay = None
        if self.explain:
            explained = self.runtime.explain(batch, np.array([-1], dtype=np.int32))
            probabilities, pooled = explained.probabilities[0], explained.pooled[0]
            assert image.display_gray is not None  # asked for with display=explain
            overlay = render_cam(
                image.display_gray,
                explained.cams[0],
                max_side=self.settings.heatmap_max_side,
                alpha=self.settings.overlay_alpha,
                compression=self.settings.png_compression,
                image_size=(image.width, image.height),
            ).overlay_png
        else:
            all_probabilities, all_pooled = self.runtime.predict_with_features(batch)
            probabilities, pooled = all_probabilities[0], all_pooled[0]
        header = image.dicom_header
        common: dict[str, Any] = {
            "format": str(image.format),
            "width": image.width,
            "height": image.height,
            "sop_instance_uid": "" if header is None else str(header.get("SOPInstanceUID", "")),
        }
        mode = self.settings.input_gate
        if mode != "off":
            colourfulness = float(getattr(image, "colourfulness", 0.0))
            size = (image.width, image.height)
            verdict = judge(self.runtime.gate, pooled, image.model_gray, size, colourfulness)
            common.update(gate_score=verdict.score, gate_passed=verdict.passed)
            if mode == "enforce" and not verdict.passed:
                return Scored(self._row(job, REJECTED, message=verdict.message, **common))
        classes = self.classes
        row = self._row(
            job,
            OK,
            label=classes[int(np.argmax(probabilities))],
            probabilities={c: float(p) for c, p in zip(classes, probabilities, strict=True)},
            **common,
        )
        return Scored(row, overlay)

    def score(self, job: Job, data: bytes | None = None) -> Scored:
        return self.finish(self.decode(job, data))


def score_stream(scorer: BatchScorer, jobs: Iterable[Job], decoders: int) -> Iterator[Scored]:
    """Score in input order; ``decoders`` files are read and decoded ahead of the model.

    Stopping the iteration (Ctrl-C in ``cxr-score``) drops the decodes not yet started.
    """
    lookahead = 2 * decoders
    pool = ThreadPoolExecutor(decoders, thread_name_prefix="batch-decode")
    pending: deque[Future[_Decoded]] = deque()
    try:
        for job in jobs:
            pending.append(pool.submit(scorer.decode, job))
            if len(pending) >= lookahead:
                yield scorer.finish(pending.popleft().result())
        while pending:
            yield scorer.finish(pending.popleft().result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def open_decode_pool(settings: Settings, workers: int) -> DecodePool:
    """Decoding isolated as in the service: a codec that crashes on a crafted file kills a
    worker process (the file's row says ``invalid_image``), never the batch job."""
    pool = DecodePool(
        workers=workers,
        memory_mb=settings.decode_memory_mb,
        timeout_seconds=settings.decode_timeout_seconds,
    )
    pool.start()
    return pool


def load_runtime(settings: Settings) -> ClassifierRuntime:
    """The service's own loader: thread settings, backend choice, warm-up and its split check."""
    from service.main import load_runtime as load_service_runtime  # FastAPI: imported only here

    return load_service_runtime(settings, read_metadata(settings.model_dir))
