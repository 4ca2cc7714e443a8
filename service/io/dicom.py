"""DICOM decoding. Recognised by the sniffer; decoding lands with the DICOM issue."""

from __future__ import annotations

import numpy as np

from service.errors import UnsupportedMediaType


def decode_dicom(data: bytes, *, max_pixels: int) -> np.ndarray:
    raise UnsupportedMediaType(
        "DICOM files are recognised but not supported yet; send a PNG or JPEG export."
    )
