"""Analyse a whole study from the PACS and store the results back in it.

1. WADO-RS metadata of the study (headers only): decide per instance whether it is a frontal
   CR/DX radiograph, so CT series, laterals, reports and our own earlier results are skipped
   without downloading their pixels.
2. Per eligible instance: WADO-RS retrieve, then the same decode -> model -> Grad-CAM path as
   ``POST /explain`` (model calls go through the shared scheduler, CPU work through the pool).
3. Build every Secondary Capture and SR first, then store them in ONE STOW-RS request, leaving
   out those the study already holds. A PACS failure before that point stores nothing.

Results have UIDs derived from the source and the model version (``outputs.output_uids``), so
a second run finds them in step 1 and stores nothing twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from pydicom.dataset import Dataset

from service import analysis
from service.dicom.explain import finding_of
from service.dicom.outputs import (
    MANUFACTURER,
    Finding,
    ModelIdentity,
    secondary_capture,
    structured_report,
    to_bytes,
)
from service.dicom.pacs import Pacs
from service.errors import (
    DecodeTimeout,
    ImageTooComplex,
    ImageTooLarge,
    InvalidImage,
    NotAChestXray,
    UnsuitableImage,
    UnsupportedMediaType,
)
from service.io.dicom import check_eligible, check_size
from service.pools import run_in
from service.schemas import (
    AnalyzedInstance,
    ModelRef,
    SkippedInstance,
    StoredInstance,
    StudyAnalysis,
)
from service.state import ServiceState

logger = logging.getLogger("service.pacs")

# What a single image can fail with; it is skipped with the message instead of failing the study.
# The input gate's refusals too: nothing is stored for an image the model is not for.
_IMAGE_PROBLEMS = (
    UnsuitableImage,
    InvalidImage,
    ImageTooLarge,
    ImageTooComplex,
    DecodeTimeout,
    UnsupportedMediaType,
    NotAChestXray,
)


@dataclass
class _Run:
    results: list[AnalyzedInstance] = field(default_factory=list)
    outputs: list[Dataset] = field(default_factory=list)
    skipped: list[SkippedInstance] = field(default_factory=list)


def _uid(ds: Dataset, keyword: str) -> str:
    return str(ds.get(keyword, "") or "")


def _skip_reason(header: Dataset, state: ServiceState) -> str | None:
    if _uid(header, "Manufacturer") == MANUFACTURER:
        return "A result of this service (AI heatmap or report), not a source image."
    try:
        check_eligible(header, state.settings.dicom_modality_set)
        check_size(header, state.settings.max_image_pixels)
    except _IMAGE_PROBLEMS as exc:
        return exc.message
    return None


def _order(header: Dataset) -> tuple[int, int, str]:
    return (
        int(header.get("SeriesNumber") or 0),
        int(header.get("InstanceNumber") or 0),
        _uid(header, "SOPInstanceUID"),
    )


def _outputs(
    source: Dataset, overlay: np.ndarray, finding: Finding, model: ModelIdentity
) -> list[Dataset]:
    capture = secondary_capture(source, overlay, finding, model)
    return [capture, structured_report(source, finding, model, capture)]


async def _analyse_one(
    state: ServiceState, pacs: Pacs, header: Dataset, run: _Run, model_name: str
) -> None:
    uids = [_uid(header, k) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")]
    source = await run_in(state.pools.network, pacs.retrieve, *uids)
    data = await run_in(state.pools.cpu, to_bytes, source)
    try:
        explained = await analysis.explain_image(state, data, None, model=model_name)
    except _IMAGE_PROBLEMS as exc:
        run.skipped.append(SkippedInstance(sop_instance_uid=uids[2], reason=exc.message))
        return
    finding, model = finding_of(explained.result)
    run.outputs += await run_in(
        state.pools.cpu, _outputs, source, explained.rendered.overlay, finding, model
    )
    run.results.append(
        AnalyzedInstance(
            sop_instance_uid=uids[2],
            label=explained.result.label,
            probabilities=explained.result.probabilities,
        )
    )


def _stored(ds: Dataset) -> StoredInstance:
    return StoredInstance(
        sop_instance_uid=_uid(ds, "SOPInstanceUID"),
        sop_class_uid=_uid(ds, "SOPClassUID"),
        series_instance_uid=_uid(ds, "SeriesInstanceUID"),
    )


async def _analyse_study(
    state: ServiceState, pacs: Pacs, study_uid: str, model_name: str
) -> tuple[_Run, set[str]]:
    """Everything except storing: returns the built results and the SOP UIDs already present."""
    headers = sorted(await run_in(state.pools.network, pacs.study_metadata, study_uid), key=_order)
    run = _Run()
    for header in headers:
        reason = _skip_reason(header, state)
        if reason is None:
            await _analyse_one(state, pacs, header, run, model_name)
        else:
            sop_instance_uid = _uid(header, "SOPInstanceUID")
            run.skipped.append(SkippedInstance(sop_instance_uid=sop_instance_uid, reason=reason))
    return run, {_uid(header, "SOPInstanceUID") for header in headers}


async def analyse_study(
    state: ServiceState, study_instance_uid: str, model: str | None = None
) -> StudyAnalysis:
    runtime = analysis.require_runtime(state, model)  # 404 / 503 before the PACS is asked
    pacs = Pacs(state.settings)
    try:
        run, present = await _analyse_study(state, pacs, study_instance_uid, runtime.metadata.name)
        new = [ds for ds in run.outputs if _uid(ds, "SOPInstanceUID") not in present]
        old = [ds for ds in run.outputs if _uid(ds, "SOPInstanceUID") in present]
        if new:
            await run_in(state.pools.network, pacs.store, new, study_instance_uid)
    finally:
        pacs.close()
    logger.info(
        "study analysed: %d image(s), %d skipped, %d result(s) stored, %d already present",
        len(run.results),
        len(run.skipped),
        len(new),
        len(old),
    )
    return StudyAnalysis(
        study_instance_uid=study_instance_uid,
        results=run.results,
        stored=[_stored(ds) for ds in new],
        already_stored=[_stored(ds) for ds in old],
        skipped=run.skipped,
        model=ModelRef(name=runtime.metadata.name, version=runtime.metadata.version),
    )
