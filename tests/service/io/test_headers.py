"""Header checks before decoding, the shared pixel helpers, and codec failures of any kind."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from service.errors import ImageTooLarge, InvalidImage, UnsuitableImage
from service.io import pixels
from service.io.decode import decode_image
from service.io.dicom import decode_dicom
from service.io.headers import (
    check_rle_header,
    orientation_of,
    read_j2k_size,
    read_jpeg_header,
    read_png_header,
)
from tests.dicom_samples import dark_with_bright_spot, make_dicom
from tests.service.io import hostile

LIMIT = 50_000_000


def _png(image: Image.Image, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **params)
    return buffer.getvalue()


def test_png_header_facts_without_decoding(originals: Path) -> None:
    rgba = read_png_header((originals / "covid/16745_7_1.png").read_bytes())
    assert (rgba.width, rgba.height, rgba.channels, rgba.bytes_per_sample) == (623, 600, 4, 1)
    deep = read_png_header(hostile.blank_png_16bit(100))
    assert (deep.channels, deep.bytes_per_sample) == (1, 2)


def test_png_chunk_lengths_must_fit_the_file(originals: Path) -> None:
    data = (originals / "covid/COVID-00046.png").read_bytes()
    for bit in (8, 20, 31):
        with pytest.raises(InvalidImage, match="past the end"):
            read_png_header(hostile.flipped_idat_length(data, bit))
    with pytest.raises(InvalidImage, match="no image data"):
        read_png_header(data[:33] + hostile.png_chunk(b"IEND", b""))


def test_exif_orientation_found_after_the_image_data() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _png(Image.new("L", (80, 70)))
    iend = len(data) - 12
    late = data[:iend] + hostile.png_chunk(b"eXIf", exif.tobytes()[6:]) + data[iend:]
    assert read_png_header(late).orientation == 6
    assert decode_image(late, max_pixels=LIMIT).gray.shape == (80, 70)


@pytest.mark.parametrize(
    "block", [b"", b"\x00\x01\x02", b"MM\x00\x2a\xff\xff\xff\xff", b"II*\x00\x08\x00\x00\x00\x01"]
)
def test_malformed_exif_means_as_stored(block: bytes) -> None:
    assert orientation_of(block) == 1


def test_orientation_outside_1_to_8_is_ignored() -> None:
    exif = Image.Exif()
    exif[0x0112] = 9
    assert orientation_of(exif.tobytes()) == 1


def test_jpeg_frame_header(originals: Path) -> None:
    header = read_jpeg_header((originals / "normal/IM-0279-0001.jpeg").read_bytes())
    assert (header.width, header.height, header.channels) == (1616, 1121, 1)
    with pytest.raises(InvalidImage, match="no frame header"):
        read_jpeg_header(b"\xff\xd8\xff\xd9")
    with pytest.raises(InvalidImage, match="past the end"):
        read_jpeg_header(b"\xff\xd8\xff\xe0\x40\x00JFIF")


def test_decoded_memory_budget_and_min_side() -> None:
    gray16 = hostile.blank_png_16bit(300)  # 180,000 bytes decoded
    with pytest.raises(ImageTooLarge, match="MiB"):
        decode_image(gray16, max_pixels=LIMIT, max_decoded_bytes=100_000)
    with pytest.raises(UnsuitableImage, match="at least 400 pixels"):
        decode_image(gray16, max_pixels=LIMIT, min_side=400)
    small = decode_dicom(make_dicom(dark_with_bright_spot(64, 96)), max_pixels=LIMIT, min_side=64)
    assert small.shape == (64, 96)
    with pytest.raises(UnsuitableImage):
        decode_dicom(make_dicom(dark_with_bright_spot(64, 96)), max_pixels=LIMIT, min_side=65)


def test_jpeg_2000_and_rle_headers() -> None:
    siz = b"\xff\x4f\xff\x51" + struct.pack(">HHIIIIIIIIH", 41, 0, 96, 64, 0, 0, 96, 64, 0, 0, 1)
    assert read_j2k_size(siz) == (96, 64, 1)
    assert read_j2k_size(b"\x00\x00\x00\x0cjP  ") is None  # JP2 boxes: left to the decoder
    table = struct.pack("<16I", 2, 64, 100, *[0] * 13) + bytes(100)
    check_rle_header(table, 2)
    with pytest.raises(InvalidImage, match="segments"):
        check_rle_header(table, 1)
    with pytest.raises(InvalidImage, match="out of order"):
        check_rle_header(struct.pack("<16I", 2, 64, 64, *[0] * 13) + bytes(100), 2)
    with pytest.raises(InvalidImage, match="outside"):
        check_rle_header(struct.pack("<16I", 2, 64, 999, *[0] * 13) + bytes(100), 2)


def test_min_max_in_blocks_equals_the_whole_array_formula() -> None:
    rng = np.random.default_rng(3)
    for values in (
        rng.integers(100, 4000, (1500, 1300), dtype=np.uint16),  # several row blocks
        rng.normal(0, 1000, (37, 50)),
        rng.integers(-5, 5, 1000, dtype=np.int32),
    ):
        whole = values.astype(np.float64)
        low, high = whole.min(), whole.max()
        expected = np.rint((whole - low) * (255.0 / (high - low))).astype(np.uint8)
        np.testing.assert_array_equal(pixels.min_max_to_uint8(values), expected)
    assert not pixels.min_max_to_uint8(np.full((4, 4), 7, np.uint16)).any()


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [3, 4])
def test_colour_to_gray_in_blocks_equals_the_whole_array_formula(
    dtype: type[np.integer], channels: int
) -> None:
    import cv2

    top = np.iinfo(dtype).max
    colour = np.random.default_rng(5).integers(0, top, (1100, 1000, channels), dtype=dtype)
    whole = colour[:, :, :3].astype(np.float32)
    if channels == 4:
        whole *= colour[:, :, 3:4].astype(np.float32) / float(top)
    luma = cv2.cvtColor(whole, cv2.COLOR_BGR2GRAY)
    if dtype == np.uint8:
        expected = np.clip(np.rint(luma), 0, 255).astype(np.uint8)
    else:
        expected = pixels.min_max_to_uint8(luma)
    np.testing.assert_array_equal(pixels.color_to_gray_uint8(colour), expected)


def test_any_codec_failure_becomes_invalid_image(monkeypatch: pytest.MonkeyPatch) -> None:
    """pylibjpeg-rle raises PanicException, a BaseException: it must not escape as a 500."""

    class PanicException(BaseException):
        pass

    def panic(self: pydicom.Dataset) -> np.ndarray:
        raise PanicException("index out of bounds")

    monkeypatch.setattr(pydicom.Dataset, "pixel_array", property(panic))
    with pytest.raises(InvalidImage):
        decode_dicom(make_dicom(dark_with_bright_spot()), max_pixels=LIMIT)
