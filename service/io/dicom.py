"""DICOM Part-10 bytes -> one upright 8-bit grayscale image, or a clear refusal.

Order matters: the header is read and checked (modality, view, colour, frames, bit depth, pixel
budget) before any pixel data is decompressed, so a CT series or a decompression bomb costs a
header parse only. Pixels then go through the display pipeline a viewer would use: Modality LUT
(rescale slope/intercept), VOI LUT or window centre/width, then to 8 bits the way the service
treats PNGs (and the training data was converted): values that are 8-bit after the LUTs stay as
they are, anything else is min-max scaled to 0..255. Last comes MONOCHROME1 inversion, so bone is
always bright.

Patient data: messages and logs only ever name technical attributes (modality, view,
photometric interpretation, transfer syntax), never a patient, ID or date. pydicom's own
exception texts can quote element values, so they are never passed on.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterable

import numpy as np
import pydicom
from pydicom import config as pydicom_config
from pydicom.dataset import Dataset
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.processing import apply_modality_lut, apply_voi_lut

from service.errors import (
    InvalidImage,
    ServiceError,
    UnsuitableImage,
    UnsupportedMediaType,
)
from service.io.decode import check_pixel_budget

logger = logging.getLogger("service.dicom")

DEFAULT_MODALITIES = frozenset({"CR", "DX"})
LATERAL_VIEWS = frozenset({"LL", "RL"})
MONOCHROME = frozenset({"MONOCHROME1", "MONOCHROME2"})
_CODE_STRING = re.compile(r"[A-Z0-9_ ]{1,16}")

# pydicom's value validation warns AND logs with the offending value quoted ("Invalid value for
# VR AS: '62'"), a malformed PatientName included. The service copies patient attributes
# verbatim and never needs those messages, so validation is off, for reading and writing.
# ``service.dicom`` imports this module first, so every DICOM code path runs with it.
pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE
pydicom_config.settings.writing_validation_mode = pydicom_config.IGNORE


def safe_code(value: object) -> str:
    """A code-string attribute fit to echo (e.g. Modality), or a placeholder if it is not one."""
    text = str(value or "").strip().upper()
    return text if _CODE_STRING.fullmatch(text) else "(unrecognised value)"


def parse_dicom(data: bytes, *, stop_before_pixels: bool = False) -> Dataset:
    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=stop_before_pixels)
    except Exception as exc:  # pydicom raises many types on corrupt input; none is our bug
        logger.info("unreadable DICOM (%s)", type(exc).__name__)
        raise InvalidImage("The DICOM file is corrupt or truncated.") from exc
    # pydicom reads garbage after "DICM" as an empty dataset rather than failing.
    if "TransferSyntaxUID" not in ds.file_meta or "SOPClassUID" not in ds:
        raise InvalidImage("The DICOM file is corrupt: no valid file meta header or SOP class.")
    return ds


def check_eligible(ds: Dataset, modalities: Iterable[str] = DEFAULT_MODALITIES) -> None:
    """Raise ``UnsuitableImage`` unless ``ds`` is a single-frame grayscale frontal CR/DX image.

    Works on a full dataset or on header-only metadata (WADO-RS ``/metadata``), so the PACS
    path can skip ineligible instances without downloading their pixels.
    """
    allowed = sorted({m.upper() for m in modalities})
    modality = safe_code(ds.get("Modality"))
    if modality not in allowed:
        raise UnsuitableImage(
            f"DICOM modality {modality} is not a chest radiograph; this model accepts "
            f"{', '.join(allowed)} only."
        )
    if "Rows" not in ds or "Columns" not in ds:
        raise UnsuitableImage("The DICOM object contains no image.")
    view = safe_code(ds.get("ViewPosition")) if ds.get("ViewPosition") else ""
    if view in LATERAL_VIEWS:
        raise UnsuitableImage(
            f"Lateral view (ViewPosition {view}): the model is for frontal (PA/AP) views only."
        )
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    photometric = safe_code(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if samples != 1 or photometric not in MONOCHROME:
        raise UnsuitableImage(
            f"Colour DICOM ({photometric}, {samples} samples per pixel): the model needs a "
            "grayscale (MONOCHROME1/2) radiograph."
        )
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise UnsuitableImage(
            f"Multi-frame DICOM ({frames} frames): send a single-frame radiograph."
        )
    bits = int(ds.get("BitsStored", 0) or 0)
    if not 8 <= bits <= 16:
        raise UnsuitableImage(f"BitsStored {bits} is not supported; 8 to 16 bits are.")


def check_size(ds: Dataset, max_pixels: int) -> None:
    check_pixel_budget(int(ds.Columns), int(ds.Rows), max_pixels)


def _check_decoder(ds: Dataset) -> None:
    syntax = ds.file_meta.TransferSyntaxUID  # present: checked by parse_dicom
    try:
        available = get_decoder(syntax).is_available
    except NotImplementedError:
        available = False
    if not available:
        raise UnsupportedMediaType(
            f"DICOM transfer syntax {syntax.name} ({syntax}) cannot be decoded here; send "
            "uncompressed, JPEG, JPEG-LS, JPEG 2000 or RLE."
        )


def to_display_uint8(ds: Dataset, stored: np.ndarray) -> np.ndarray:
    """Stored values -> 8-bit display values: modality LUT, VOI/window, min-max, MONOCHROME1."""
    values = apply_voi_lut(apply_modality_lut(stored, ds), ds, index=0, prefer_lut=True)
    if values.dtype == np.uint8:
        gray = values  # already 8-bit display values (no rescale, no VOI or an 8-bit VOI LUT)
    else:
        values = values.astype(np.float64)
        low, high = float(values.min()), float(values.max())
        if high <= low:
            gray = np.zeros(values.shape, dtype=np.uint8)
        else:
            gray = np.rint((values - low) * (255.0 / (high - low))).astype(np.uint8)
    if safe_code(ds.get("PhotometricInterpretation")) == "MONOCHROME1":
        gray = 255 - gray  # MONOCHROME1: the lowest value is displayed white
    return np.ascontiguousarray(gray)


def decode_dicom(
    data: bytes, *, max_pixels: int, modalities: Iterable[str] = DEFAULT_MODALITIES
) -> np.ndarray:
    """Decode a DICOM chest radiograph to uint8 (height, width). Raises ``ServiceError``s."""
    ds = parse_dicom(data)
    try:
        if "PixelData" not in ds:
            if "Modality" not in ds:  # pydicom stops quietly at the end of a truncated file
                raise InvalidImage("The DICOM file is truncated or corrupt: no modality, no image.")
            check_eligible(ds, modalities)  # a better reason first (e.g. an SR or wrong modality)
            raise UnsuitableImage("The DICOM object contains no pixel data.")
        check_eligible(ds, modalities)
        check_size(ds, max_pixels)
        _check_decoder(ds)
        stored = ds.pixel_array
        if stored.ndim != 2:
            raise UnsuitableImage("The DICOM pixel data is not a single grayscale frame.")
        return to_display_uint8(ds, stored)
    except ServiceError:
        raise
    except Exception as exc:  # lazily parsed elements and codecs fail with many types
        logger.info("undecodable DICOM (%s)", type(exc).__name__)
        raise InvalidImage("The DICOM pixel data is corrupt or cannot be decoded.") from exc
