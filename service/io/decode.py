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


@dataclass(frozen=True)
class DecodedImage:
    """An upright 8-bit grayscale image at the file's own resolution."""

    gray: np.ndarray  # uint8, shape (height, width)
    format: ImageFormat

    @property
    def height(self) -> int:
        return int(self.gray.shape[0])

    @property
    def width(self) -> int:
        return int(self.gray.shape[1])


def decode_image(
    data: bytes, *, max_pixels: int, dicom_modalities: Iterable[str] = ("CR", "DX")
) -> DecodedImage:
    """Sniff, check the pixel budget from the header, then decode. Raises ``ServiceError``s."""
    image_format = sniff_format(data)
    if image_format is ImageFormat.DICOM:
        from service.io.dicom import decode_dicom  # pydicom is only imported when needed

        gray = decode_dicom(data, max_pixels=max_pixels, modalities=dicom_modalities)
        return DecodedImage(gray=gray, format=image_format)
    orientation = _check_header(data, max_pixels=max_pixels)
    stored = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if stored is None or stored.size == 0:
        raise InvalidImage(f"The {image_format.value.upper()} file is corrupt or truncated.")
    gray = _apply_orientation(to_gray_uint8(stored), orientation)
    return DecodedImage(gray=np.ascontiguousarray(gray), format=image_format)


def _check_header(data: bytes, *, max_pixels: int) -> int:
    """Read width, height and EXIF orientation without decoding pixels (decompression bombs)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as header:
                width, height = header.size
                orientation = int(header.getexif().get(_EXIF_ORIENTATION_TAG, 1) or 1)
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"Image exceeds the limit of {max_pixels:,} pixels.") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidImage("The image header is corrupt or unreadable.") from exc
    if width <= 0 or height <= 0:
        raise InvalidImage("The image has no pixels.")
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"Image is {width}x{height} = {width * height:,} pixels; "
            f"the limit is {max_pixels:,} pixels."
        )
    return orientation


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
