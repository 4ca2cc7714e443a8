"""Pixel helpers shared by the PNG/JPEG and DICOM decoders, the worker and the renderer.

A leaf module (numpy and OpenCV only): ``decode.py`` and ``dicom.py`` both use it, so neither
imports the other for these, and the decode workers use it without loading the model stack.
"""

from __future__ import annotations

import cv2
import numpy as np

from service.errors import ImageTooLarge, InvalidImage, UnsuitableImage

# Conversions run over row blocks of about this many pixels, so a 50-Mpixel image costs its
# own raster plus a few MB of float64 temporaries instead of eight bytes per pixel at once.
_BLOCK_PIXELS = 1 << 20


def check_pixel_budget(width: int, height: int, max_pixels: int) -> None:
    """Refuse empty images and images over the pixel limit, before any pixel is decoded."""
    if width <= 0 or height <= 0:
        raise InvalidImage("The image has no pixels.")
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"Image is {width}x{height} = {width * height:,} pixels; "
            f"the limit is {max_pixels:,} pixels."
        )


def check_decoded_bytes(width: int, height: int, bytes_per_pixel: int, max_bytes: int) -> None:
    """Refuse an image whose decoded raster (all channels, all bits) would exceed ``max_bytes``:
    a 7071x7071 16-bit RGBA PNG is within the pixel limit but needs 400 MB to decode."""
    needed = width * height * bytes_per_pixel
    if needed > max_bytes:
        raise ImageTooLarge(
            f"Decoding this {width}x{height} image needs {needed / 2**20:,.0f} MiB; "
            f"the limit is {max_bytes / 2**20:,.0f} MiB."
        )


def check_min_side(width: int, height: int, min_side: int) -> None:
    if min(width, height) < min_side:
        raise UnsuitableImage(
            f"Image is {width}x{height} pixels; a chest radiograph needs at least "
            f"{min_side} pixels on each side."
        )


def _block_rows(columns: int) -> int:
    return max(1, _BLOCK_PIXELS // max(1, columns))


def min_max_to_uint8(values: np.ndarray) -> np.ndarray:
    """Scale any numeric array linearly so its minimum is 0 and its maximum 255 (rounded).

    A constant array becomes all zeros. Works in row blocks; the result is the same as the
    whole-array float64 formula ``rint((v - min) * 255 / (max - min))``.
    """
    low, high = float(values.min()), float(values.max())
    out = np.zeros(values.shape, dtype=np.uint8)
    if high <= low:
        return out
    scale = 255.0 / (high - low)
    rows_in = values.reshape(values.shape[0], -1) if values.ndim > 1 else values.reshape(1, -1)
    rows_out = out.reshape(rows_in.shape)
    step = _block_rows(rows_in.shape[1])
    for start in range(0, rows_in.shape[0], step):
        block = rows_in[start : start + step].astype(np.float64)
        block -= low
        block *= scale
        rows_out[start : start + step] = np.rint(block)
    return out


def colourfulness(pixels: np.ndarray) -> float:
    """Mean chroma (max - min channel over full scale, 0..1) of a BGR(A) image; 0 for gray.

    The input gate's colour check needs it, and the gray conversion throws colour away, so it is
    measured here, on a grid of at most ~128x128 pixels, in the image's own integer type.
    """
    if pixels.ndim != 3 or pixels.shape[2] < 3:
        return 0.0
    step_y, step_x = max(1, pixels.shape[0] // 128), max(1, pixels.shape[1] // 128)
    sample = pixels[::step_y, ::step_x, :3]
    chroma = sample.max(axis=2) - sample.min(axis=2)  # never negative: no overflow
    return float(chroma.mean() / float(np.iinfo(pixels.dtype).max))


def color_to_gray_uint8(pixels: np.ndarray) -> np.ndarray:
    """BGR / BGRA (8 or 16 bit) -> uint8 ITU-R 601-2 luma, alpha composited on black.

    8-bit input is rounded to 8 bits; 16-bit input is min-max scaled, as the training data was.
    Row blocks again: the float32 colour copy of a whole 50-Mpixel image would be 600 MB.
    """
    rows, columns = pixels.shape[:2]
    top = float(np.iinfo(pixels.dtype).max)
    luma = np.empty((rows, columns), dtype=np.float32)
    step = _block_rows(columns)
    for start in range(0, rows, step):
        block = pixels[start : start + step]
        color = block[:, :, :3].astype(np.float32)
        if block.shape[2] == 4:  # composite on black, as the training data was built
            color *= block[:, :, 3:4].astype(np.float32) / top
        luma[start : start + step] = cv2.cvtColor(color, cv2.COLOR_BGR2GRAY)
    if pixels.dtype != np.uint8:
        return min_max_to_uint8(luma)
    gray = np.empty((rows, columns), dtype=np.uint8)
    for start in range(0, rows, step):
        gray[start : start + step] = np.clip(np.rint(luma[start : start + step]), 0, 255)
    return gray


def resize_gray(gray: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a uint8 grayscale image to ``size`` = (height, width), aspect ratio not kept."""
    height, width = size
    if gray.shape[:2] == (height, width):
        return gray
    shrinking = gray.shape[0] >= height and gray.shape[1] >= width
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    resized: np.ndarray = cv2.resize(gray, (width, height), interpolation=interpolation)
    return resized


def output_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """Keep the input's aspect ratio; the longer side is min(input's longer side, max_side)."""
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def display_gray(gray: np.ndarray, width: int, height: int, max_side: int) -> np.ndarray:
    """The image at the heatmap's size (``output_size`` of the file's own width and height)."""
    out_width, out_height = output_size(width, height, max_side)
    if gray.shape[:2] == (out_height, out_width):
        return gray
    shrunk: np.ndarray = cv2.resize(gray, (out_width, out_height), interpolation=cv2.INTER_AREA)
    return shrunk
