"""DICOM Part-10 bytes -> one upright 8-bit grayscale image, or a clear refusal.

Order matters: the header is read and checked (modality, view, colour, frames, bit depth, pixel
and memory budgets, the compressed frame's own header against Rows/Columns) before any pixel
data is decompressed, so a CT series or a decompression bomb costs a header parse only. Pixels
then go through the display pipeline a viewer would use: Modality LUT (rescale
slope/intercept), VOI LUT or window centre/width, then to 8 bits the way the service treats PNGs
(and the training data was converted): values that are 8-bit after the LUTs stay as they are,
anything else is min-max scaled to 0..255. Last comes MONOCHROME1 inversion, so bone is always
bright.

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
from pydicom.encaps import generate_fragments
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.processing import apply_modality_lut, apply_voi_lut
from pydicom.uid import (
    JPEG2000TransferSyntaxes,
    JPEGLSTransferSyntaxes,
    JPEGTransferSyntaxes,
    RLELossless,
)

from service.errors import (
    InvalidImage,
    ServiceError,
    UnsuitableImage,
    UnsupportedMediaType,
)
from service.io.headers import check_rle_header, read_j2k_size, read_jpeg_frame
from service.io.pixels import (
    check_decoded_bytes,
    check_min_side,
    check_pixel_budget,
    min_max_to_uint8,
)

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
    except MemoryError:
        raise
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


def check_pixel_data(ds: Dataset, max_decoded_bytes: int) -> None:
    """The pixel description must be consistent, within the memory budget and agree with the
    pixel data itself before a codec sees it: native codecs trust these numbers, and GDCM
    aborts the whole process on a JPEG frame that disagrees with BitsAllocated."""
    allocated = int(ds.get("BitsAllocated", 0) or 0)
    stored = int(ds.get("BitsStored", 0) or 0)
    if allocated not in (8, 16) or not 0 < stored <= allocated:
        raise InvalidImage(
            f"BitsAllocated {allocated} with BitsStored {stored} is not a valid grayscale pixel "
            "description; 8 or 16 bits allocated, at least as many as stored, are supported."
        )
    rows, columns = int(ds.Rows), int(ds.Columns)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    per_pixel = samples * frames * allocated // 8
    check_decoded_bytes(columns, rows, per_pixel, max_decoded_bytes)
    syntax = ds.file_meta.TransferSyntaxUID
    if not syntax.is_encapsulated:
        if len(ds.PixelData) < rows * columns * per_pixel:
            raise InvalidImage("The DICOM pixel data is shorter than its header says.")
        return
    items = generate_fragments(ds.PixelData)
    next(items, None)  # the Basic Offset Table
    fragment = next(items, b"")  # the frame's headers are at the start of its first fragment
    if syntax == RLELossless:
        check_rle_header(fragment, samples * allocated // 8)
        return
    if syntax in JPEGTransferSyntaxes or syntax in JPEGLSTransferSyntaxes:
        frame = read_jpeg_frame(fragment)
        found: tuple[int, int, int] | None = (frame.width, frame.height, frame.components)
    elif syntax in JPEG2000TransferSyntaxes:
        found = read_j2k_size(fragment)
    else:
        found = None
    if found is not None and found != (columns, rows, samples):
        width, height, components = found
        raise InvalidImage(
            f"The compressed image is {width}x{height} with {components} component(s); the "
            f"DICOM header says {columns}x{rows} with {samples}."
        )


def to_display_uint8(ds: Dataset, stored: np.ndarray) -> np.ndarray:
    """Stored values -> 8-bit display values: modality LUT, VOI/window, min-max, MONOCHROME1."""
    values = apply_voi_lut(apply_modality_lut(stored, ds), ds, index=0, prefer_lut=True)
    # 8-bit after the LUTs: already display values (no rescale, no VOI or an 8-bit VOI LUT).
    gray = values if values.dtype == np.uint8 else min_max_to_uint8(values)
    if safe_code(ds.get("PhotometricInterpretation")) == "MONOCHROME1":
        gray = 255 - gray  # MONOCHROME1: the lowest value is displayed white
    return np.ascontiguousarray(gray)


def decode_dicom(
    data: bytes,
    *,
    max_pixels: int,
    modalities: Iterable[str] = DEFAULT_MODALITIES,
    max_decoded_bytes: int = 2**62,
    min_side: int = 1,
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
        check_min_side(int(ds.Columns), int(ds.Rows), min_side)
        _check_decoder(ds)
        check_pixel_data(ds, max_decoded_bytes)
        stored = ds.pixel_array
        if stored.ndim != 2:
            raise UnsuitableImage("The DICOM pixel data is not a single grayscale frame.")
        return to_display_uint8(ds, stored)
    except (ServiceError, MemoryError, KeyboardInterrupt, SystemExit):
        raise  # a MemoryError is the worker's memory limit: its own answer (image_too_complex)
    except BaseException as exc:  # lazily parsed elements and codecs fail with many types,
        # some not even Exceptions (pylibjpeg-rle's PanicException is a BaseException)
        logger.info("undecodable DICOM (%s)", type(exc).__name__)
        raise InvalidImage("The DICOM pixel data is corrupt or cannot be decoded.") from exc
