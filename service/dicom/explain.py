"""``POST /explain`` with ``Accept: application/dicom``: the overlay as a Secondary Capture.

A DICOM answer needs a DICOM question. The Secondary Capture joins the source's study and
patient; for a PNG or JPEG there is neither, and a patient-less object sent on to a PACS would
become an orphan study nobody can find or attribute. So non-DICOM input gets 406 up front,
before the model runs.
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from starlette.requests import Request
from starlette.responses import Response

from service import analysis
from service.dicom.outputs import Finding, ModelIdentity, secondary_capture, to_bytes
from service.errors import NotAcceptable
from service.io.sniff import ImageFormat, sniff_format
from service.pools import run_in
from service.schemas import Explanation
from service.state import ServiceState

DICOM_MEDIA_TYPE = "application/dicom"


def wants_dicom(request: Request) -> bool:
    """True when the Accept header lists application/dicom (with a non-zero q)."""
    for part in request.headers.get("accept", "").split(","):
        media_type, *params = (piece.strip() for piece in part.split(";"))
        if media_type.lower() != DICOM_MEDIA_TYPE:
            continue
        quality = next((p[2:] for p in params if p.replace(" ", "").startswith("q=")), "1")
        try:
            return float(quality) > 0
        except ValueError:
            return True
    return False


def finding_of(result: Explanation) -> tuple[Finding, ModelIdentity]:
    finding = Finding(
        label=result.label, probabilities=result.probabilities, target=result.gradcam.target
    )
    return finding, ModelIdentity(name=result.model.name, version=result.model.version)


def _secondary_capture_bytes(
    source: Dataset, overlay: np.ndarray, finding: Finding, model: ModelIdentity
) -> tuple[bytes, str]:
    image = secondary_capture(source, overlay, finding, model)
    return to_bytes(image), str(image.SOPInstanceUID)


def not_dicom_error() -> NotAcceptable:
    return NotAcceptable(
        "A DICOM result (Accept: application/dicom) needs a DICOM upload: it is stored in "
        "the source's study and patient. Upload the DICOM file, or accept application/json."
    )


async def explain_as_dicom(
    state: ServiceState, data: bytes, target: str | None, model: str | None = None
) -> Response:
    if sniff_format(data) is not ImageFormat.DICOM:
        raise not_dicom_error()
    # The source's header comes back from the decode worker: this process parses nothing.
    explained = await analysis.explain_image(state, data, target, dicom_header=True, model=model)
    assert explained.dicom_header is not None  # a DICOM upload: checked above
    finding, identity = finding_of(explained.result)
    content, sop_instance_uid = await run_in(
        state.pools.cpu,
        _secondary_capture_bytes,
        explained.dicom_header,
        explained.rendered.overlay,
        finding,
        identity,
    )
    return Response(
        content,
        media_type=DICOM_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{sop_instance_uid}.dcm"'},
    )
