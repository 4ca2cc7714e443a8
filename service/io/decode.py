"""Decode PNG / JPEG bytes into one 8-bit grayscale image.

This is the first half of the single decode-to-tensor path shared by training and serving
(the second half is ``service.inference.preprocess``). The conversion mirrors how the training
set was built (see ``../shared/data/cxr/README.md``): EXIF orientation applied, 16-bit images
min-max scaled to 0-255, alpha composited on black, colour converted with ITU-R 601-2 luma.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from service.errors import InvalidImage
from service.io.headers import RasterHeader, read_jpeg_header, read_png_header
from service.io.pixels import (
    check_decoded_bytes,
    check_min_side,
    check_pixel_budget,
    color_to_gray_uint8,
    colourfulness,
    min_max_to_uint8,
)
from service.io.sniff import ImageFormat, sniff_format

# No memory budget of the caller's own: only the pixel limit applies (training, tools).
_UNBOUNDED = 2**62

# libjpeg can decode at 1/2, 1/4 or 1/8 scale straight from the DCT coefficients: far
# cheaper than decoding a 3000-px radiograph in full only to shrink it to 224 px.
_JPEG_REDUCED = {
    8: cv2.IMREAD_REDUCED_GRAYSCALE_8,
    4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
    2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
}
# Colour JPEGs are decoded reduced in colour: the input gate needs their colourfulness (a photo
# is not a radiograph), and the gray conversion then happens here, as for every colour image.
_JPEG_REDUCED_COLOR = {
    8: cv2.IMREAD_REDUCED_COLOR_8,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    2: cv2.IMREAD_REDUCED_COLOR_2,
}


@dataclass(frozen=True)
class DecodedImage:
    """An upright 8-bit grayscale image, and the size of the file's own image.

    ``gray`` may be smaller than the file (a JPEG decoded at reduced scale); ``width`` and
    ``height`` always describe the file's upright image.
    """

    gray: np.ndarray  # uint8, shape (rows, columns)
    format: ImageFormat
    original_size: tuple[int, int] | None = None  # (width, height) when gray is reduced
    colourfulness: float = 0.0  # mean chroma of the file's colours (``pixels.colourfulness``)

    @property
    def height(self) -> int:
        return self.original_size[1] if self.original_size else int(self.gray.shape[0])

    @property
    def width(self) -> int:
        return self.original_size[0] if self.original_size else int(self.gray.shape[1])


def decode_image(
    data: bytes,
    *,
    max_pixels: int,
    dicom_modalities: Iterable[str] = ("CR", "DX"),
    min_sides: tuple[int, int] | None = None,
    max_decoded_bytes: int = _UNBOUNDED,
    min_side: int = 1,
) -> DecodedImage:
    """Sniff, check the header (pixel and memory budgets, smallest side), then decode.

    Raises ``ServiceError``s for anything wrong with the file. ``min_sides`` = (shorter,
    longer) side the caller needs: a large JPEG may then be decoded at reduced scale, never
    below those sides. ``None`` decodes every pixel. This runs in the calling process; the
    service runs it in a decode worker process (``service.io.workers``).
    """
    image_format = sniff_format(data)
    if image_format is ImageFormat.DICOM:
        from service.io.dicom import decode_dicom  # pydicom is only imported when needed

        gray = decode_dicom(
            data,
            max_pixels=max_pixels,
            modalities=dicom_modalities,
            max_decoded_bytes=max_decoded_bytes,
            min_side=min_side,
        )
        return DecodedImage(gray=gray, format=image_format)
    header = read_png_header(data) if image_format is ImageFormat.PNG else read_jpeg_header(data)
    width, height = header.width, header.height
    check_pixel_budget(width, height, max_pixels)
    check_min_side(width, height, min_side)
    factor = _jpeg_reduction(width, height, min_sides) if image_format is ImageFormat.JPEG else 1
    _check_raster_bytes(header, factor, max_decoded_bytes)
    buffer = np.frombuffer(data, dtype=np.uint8)
    if factor > 1:
        modes = _JPEG_REDUCED_COLOR if header.channels >= 3 else _JPEG_REDUCED
        stored = cv2.imdecode(buffer, modes[factor] | cv2.IMREAD_IGNORE_ORIENTATION)
    else:
        stored = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    if stored is None or stored.size == 0:
        raise InvalidImage(f"The {image_format.value.upper()} file is corrupt or truncated.")
    orientation = header.orientation
    gray = np.ascontiguousarray(_apply_orientation(to_gray_uint8(stored), orientation))
    upright = (height, width) if orientation >= 5 else (width, height)  # 5-8 swap the axes
    return DecodedImage(
        gray=gray, format=image_format, original_size=upright, colourfulness=colourfulness(stored)
    )


def _check_raster_bytes(header: RasterHeader, factor: int, max_bytes: int) -> None:
    if factor > 1:  # decoded at 1/factor scale (gray, or 8-bit colour for a colour JPEG)
        width, height = -(-header.width // factor), -(-header.height // factor)
        per_pixel = 3 if header.channels >= 3 else 1
    else:
        width, height = header.width, header.height
        per_pixel = header.channels * header.bytes_per_sample
    check_decoded_bytes(width, height, per_pixel, max_bytes)


def _jpeg_reduction(width: int, height: int, min_sides: tuple[int, int] | None) -> int:
    if min_sides is None:
        return 1
    shorter, longer = min_sides
    for factor in _JPEG_REDUCED:  # largest first
        reduced = sorted((-(-width // factor), -(-height // factor)))
        if reduced[0] >= shorter and reduced[1] >= longer:
            return factor
    return 1


def to_gray_uint8(pixels: np.ndarray) -> np.ndarray:
    """Any OpenCV-decoded array (gray / BGR / BGRA, 8 or 16 bit) -> uint8 grayscale."""
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.ndim == 3:
        return color_to_gray_uint8(pixels)
    if pixels.dtype == np.uint8:
        return pixels
    return min_max_to_uint8(pixels)


def _apply_orientation(gray: np.ndarray, orientation: int) -> np.ndarray:
    # EXIF 1..8: identity, mirror, rotate 180, flip, transpose, rotate 90 CW, transverse, 90 CCW.
    if orientation == 2:
        return gray[:, ::-1]
    if orientation == 3:
        return gray[::-1, ::-1]
    if orientation == 4:
        return gray[::-1, :]
    if orientation == 5:
        return gray.T
    if orientation == 6:
        return np.rot90(gray, k=-1)
    if orientation == 7:
        return np.rot90(gray, 2).T
    if orientation == 8:
        return np.rot90(gray, k=1)
    return gray
