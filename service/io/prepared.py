"""One request's decode, from file bytes to exactly the pixels the rest of the request needs.

``prepare_image`` is what a decode worker process runs (``service.io.workers``); it can also
run in-process (tests, tools). It decodes through ``decode_image``, the path training uses, and
returns small arrays only: the image already resized to the model input (the resize
``to_model_input`` would do, so the tensor is the same), and for Grad-CAM the image at the
heatmap's size (the resize ``render_cam`` would do). A 3000-px radiograph thus never crosses
the process boundary, only about 50 + 260 KB.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset

from service.errors import NotAChestXray
from service.io.decode import decode_image
from service.io.pixels import display_gray, resize_gray
from service.io.sniff import ImageFormat


@dataclass(frozen=True)
class DecodeSpec:
    """What the request needs from the decode, and the limits it runs under."""

    max_pixels: int
    max_decoded_bytes: int
    min_side: int
    modalities: frozenset[str]
    model_size: tuple[int, int]  # (height, width) of the model input
    heatmap_max_side: int
    display: bool = False  # also return the image at the heatmap's size (Grad-CAM)
    dicom_header: bool = False  # also return a DICOM's header (for a DICOM result)

    @property
    def min_sides(self) -> tuple[int, int]:
        # The same for /predict and /explain (a JPEG may be decoded at reduced scale, never
        # below what the heatmap needs), so both give the same probabilities for one file.
        height, width = self.model_size
        return min(height, width), max(height, width, self.heatmap_max_side)


@dataclass(frozen=True)
class PreparedImage:
    format: ImageFormat
    width: int  # the file's upright image
    height: int
    model_gray: np.ndarray  # uint8 (model height, model width)
    display_gray: np.ndarray | None = None  # uint8 at output_size(width, height, max side)
    dicom_header: Dataset | None = None  # everything before the pixel data
    colourfulness: float = 0.0  # of the original, for the input gate (decoding drops colour)


def prepare_image(data: bytes, spec: DecodeSpec) -> PreparedImage:
    """Decode and shrink to what the request needs. Raises ``ServiceError``s."""
    decoded = decode_image(
        data,
        max_pixels=spec.max_pixels,
        dicom_modalities=spec.modalities,
        min_sides=spec.min_sides,
        max_decoded_bytes=spec.max_decoded_bytes,
        min_side=spec.min_side,
    )
    gray = decoded.gray
    if int(gray.min()) == int(gray.max()):  # nothing to classify, whatever its size
        raise NotAChestXray(
            "This does not look like a frontal (PA/AP) chest radiograph: the image is blank "
            "(every pixel has the same value)."
        )
    header = None
    if spec.dicom_header and decoded.format is ImageFormat.DICOM:
        from service.io.dicom import parse_dicom

        header = parse_dicom(data, stop_before_pixels=True)
    return PreparedImage(
        format=decoded.format,
        width=decoded.width,
        height=decoded.height,
        model_gray=np.ascontiguousarray(resize_gray(gray, spec.model_size)),
        display_gray=(
            display_gray(gray, decoded.width, decoded.height, spec.heatmap_max_side)
            if spec.display
            else None
        ),
        dicom_header=header,
        colourfulness=decoded.colourfulness,
    )
