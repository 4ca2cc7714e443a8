"""Decode PNG / JPEG bytes into one 8-bit grayscale image.

This is the first half of the single decode-to-tensor path shared by training and serving
(the second half is ``service.inference.preprocess``). The conversion mirrors how the training
set was built (see ``../shared/data/cxr/README.md``): EXIF orientation applied, 16-bit images
min-max scaled to 0-255, alpha composited on black, colour converted with ITU-R 601-2 luma.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from service.errors import ImageTooLarge, InvalidImage
from service.io.sniff import ImageFormat, sniff_format

_EXIF_ORIENTATION_TAG = 0x0112


# libjpeg can decode at 1/2, 1/4 or 1/8 scale straight from the DCT coefficients: far
# cheaper than decoding a 3000-px radiograph in full only to shrink it to 224 px.
_JPEG_REDUCED = {
    8: cv2.IMREAD_REDUCED_GRAYSCALE_8,
    4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
    2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
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
) -> DecodedImage:
    """Sniff, check the pixel budget from the header, then decode. Raises ``ServiceError``s.

    ``min_sides`` = (shorter, longer) side the caller needs: a large JPEG may then be decoded
    at reduced scale, never below those sides. ``None`` decodes every pixel.
    """
    image_format = sniff_format(data)
    if image_format is ImageFormat.DICOM:
        from service.io.dicom import decode_dicom  # pydicom is only imported when needed

        gray = decode_dicom(data, max_pixels=max_pixels, modalities=dicom_modalities)
        return DecodedImage(gray=gray, format=image_format)
    width, height, orientation = _check_header(data, max_pixels=max_pixels)
    buffer = np.frombuffer(data, dtype=np.uint8)
    factor = _jpeg_reduction(width, height, min_sides) if image_format is ImageFormat.JPEG else 1
    if factor > 1:
        stored = cv2.imdecode(buffer, _JPEG_REDUCED[factor] | cv2.IMREAD_IGNORE_ORIENTATION)
    else:
        stored = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    if stored is None or stored.size == 0:
        raise InvalidImage(f"The {image_format.value.upper()} file is corrupt or truncated.")
    gray = np.ascontiguousarray(_apply_orientation(to_gray_uint8(stored), orientation))
    upright = (height, width) if orientation >= 5 else (width, height)  # 5-8 swap the axes
    return DecodedImage(gray=gray, format=image_format, original_size=upright)


def _jpeg_reduction(width: int, height: int, min_sides: tuple[int, int] | None) -> int:
    if min_sides is None:
        return 1
    shorter, longer = min_sides
    for factor in _JPEG_REDUCED:  # largest first
        reduced = sorted((-(-width // factor), -(-height // factor)))
        if reduced[0] >= shorter and reduced[1] >= longer:
            return factor
    return 1


def _check_header(data: bytes, *, max_pixels: int) -> tuple[int, int, int]:
    """Width, height and EXIF orientation, without decoding pixels (decompression bombs)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as header:
                width, height = header.size
                orientation = _orientation(header, data)
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"Image exceeds the limit of {max_pixels:,} pixels.") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidImage("The image header is corrupt or unreadable.") from exc
    check_pixel_budget(width, height, max_pixels)
    return width, height, orientation


def _orientation(header: Image.Image, data: bytes) -> int:
    """EXIF orientation (1 = upright). For a PNG, Pillow finds the eXIf chunk only by decoding
    every pixel (the chunk may follow the image data), which doubled /predict's decoding time;
    a PNG that does not contain those four bytes anywhere has no EXIF."""
    if header.format == "PNG" and b"eXIf" not in data:
        return 1
    return int(header.getexif().get(_EXIF_ORIENTATION_TAG, 1) or 1)


def check_pixel_budget(width: int, height: int, max_pixels: int) -> None:
    """Refuse empty images and images over the pixel limit, before any pixel is decoded."""
    if width <= 0 or height <= 0:
        raise InvalidImage("The image has no pixels.")
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"Image is {width}x{height} = {width * height:,} pixels; "
            f"the limit is {max_pixels:,} pixels."
        )


def to_gray_uint8(pixels: np.ndarray) -> np.ndarray:
    """Any OpenCV-decoded array (gray / BGR / BGRA, 8 or 16 bit) -> uint8 grayscale."""
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.ndim == 3:
        stored_dtype = pixels.dtype
        color = pixels[:, :, :3].astype(np.float32)
        if pixels.shape[2] == 4:  # composite on black, as the training data was built
            alpha = pixels[:, :, 3:4].astype(np.float32) / float(np.iinfo(stored_dtype).max)
            color *= alpha
        luma = cv2.cvtColor(color, cv2.COLOR_BGR2GRAY)
        if stored_dtype == np.uint8:
            return np.clip(np.rint(luma), 0, 255).astype(np.uint8)
        return _min_max_to_uint8(luma)
    if pixels.dtype == np.uint8:
        return pixels
    return _min_max_to_uint8(pixels)


def _min_max_to_uint8(pixels: np.ndarray) -> np.ndarray:
    values = pixels.astype(np.float64)
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.rint((values - low) * (255.0 / (high - low))).astype(np.uint8)


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
