from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from service.errors import ImageTooLarge, InvalidImage, UnsupportedMediaType
from service.inference.preprocess import to_model_input
from service.io.decode import decode_image, to_gray_uint8
from service.io.sniff import ImageFormat, sniff_format

LIMIT = 50_000_000


def _encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def test_sniffs_by_content_not_name(originals: Path) -> None:
    assert sniff_format((originals / "normal/IM-0279-0001.jpeg").read_bytes()) is ImageFormat.JPEG
    assert sniff_format((originals / "covid/16745_7_1.png").read_bytes()) is ImageFormat.PNG
    dicom = next((originals / "dicom").glob("*.dcm")).read_bytes()
    assert sniff_format(dicom) is ImageFormat.DICOM
    with pytest.raises(UnsupportedMediaType):
        sniff_format(b"GIF89a" + b"\x00" * 200)


def test_every_original_decodes_upright_gray(raster_originals: list[Path]) -> None:
    for path in raster_originals:
        decoded = decode_image(path.read_bytes(), max_pixels=LIMIT)
        assert decoded.gray.dtype == np.uint8 and decoded.gray.ndim == 2
        with Image.open(path) as reference:
            assert (decoded.width, decoded.height) == ImageOps.exif_transpose(reference).size


def test_matches_the_training_set_conversion(data_dir: Path) -> None:
    """Decoding an original gives the pixels the dataset was built from (up to resizing)."""
    original = data_dir / "originals/covid/16745_7_1.png"  # RGBA, composited on black
    converted = data_dir / "images/covid/ieee8023_16745_7_1.png"
    ours = decode_image(original.read_bytes(), max_pixels=LIMIT).gray
    theirs = decode_image(converted.read_bytes(), max_pixels=LIMIT).gray
    ours_small = cv2.resize(ours, theirs.shape[::-1], interpolation=cv2.INTER_AREA)
    assert np.abs(ours_small.astype(int) - theirs.astype(int)).mean() < 3.0


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_like_pillow(orientation: int) -> None:
    pixels = np.arange(40 * 64, dtype=np.uint32).reshape(40, 64) % 251
    image = Image.fromarray(pixels.astype(np.uint8), mode="L")
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _encode(image, "PNG", exif=exif.tobytes())
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))))
    np.testing.assert_array_equal(decode_image(data, max_pixels=LIMIT).gray, expected)


def test_16_bit_png_is_min_max_scaled() -> None:
    ramp = np.linspace(1000, 3000, 100 * 80).reshape(100, 80).astype(np.uint16)
    ok, png = cv2.imencode(".png", ramp)
    assert ok
    gray = decode_image(png.tobytes(), max_pixels=LIMIT).gray
    assert gray.dtype == np.uint8 and gray.min() == 0 and gray.max() == 255


def test_rgba_composited_on_black_and_luma() -> None:
    bgra = np.zeros((4, 4, 4), np.uint8)
    bgra[..., 2] = 200  # red
    bgra[..., 3] = 128  # half transparent
    expected = round(0.299 * 200 * 128 / 255)
    assert abs(int(to_gray_uint8(bgra)[0, 0]) - expected) <= 1


def test_jpeg_and_gray_variants() -> None:
    rgb = Image.new("RGB", (30, 20), (10, 200, 30))
    decoded = decode_image(_encode(rgb, "JPEG", quality=95), max_pixels=LIMIT)
    assert decoded.format is ImageFormat.JPEG and decoded.gray.shape == (20, 30)
    assert decode_image(_encode(rgb.convert("L"), "PNG"), max_pixels=LIMIT).gray.shape == (20, 30)


def test_pixel_limit_checked_from_header() -> None:
    data = _encode(Image.new("L", (300, 300)), "PNG")
    with pytest.raises(ImageTooLarge, match="90,000"):
        decode_image(data, max_pixels=50_000)


def test_corrupt_data() -> None:
    data = _encode(Image.new("L", (300, 300), 7), "PNG")
    with pytest.raises(InvalidImage):
        decode_image(data[:60], max_pixels=LIMIT)
    with pytest.raises(InvalidImage):
        decode_image(b"\xff\xd8\xff" + b"\x00" * 100, max_pixels=LIMIT)


def test_large_jpeg_decoded_at_reduced_scale_keeps_its_size(originals: Path) -> None:
    """A 2972x2840 JPEG needs only >= 224/512 px: decoded at 1/4, reported at full size."""
    data = (originals / "covid/covid-19-pneumonia-7-PA.jpg").read_bytes()
    full = decode_image(data, max_pixels=LIMIT)
    reduced = decode_image(data, max_pixels=LIMIT, min_sides=(224, 512))
    assert (reduced.width, reduced.height) == (full.width, full.height) == (2972, 2840)
    assert reduced.gray.shape == (710, 743)
    # The model sees nearly the same tensor either way (DCT scaling is an area-like shrink).
    size = (224, 224)
    difference = to_model_input(full.gray, size) - to_model_input(reduced.gray, size)
    assert np.abs(difference).mean() < 1.5


def test_reduction_never_goes_below_the_needed_sides(originals: Path) -> None:
    data = (originals / "normal/IM-0279-0001.jpeg").read_bytes()  # 1616x1121
    decoded = decode_image(data, max_pixels=LIMIT, min_sides=(224, 512))
    assert min(decoded.gray.shape) >= 224 and max(decoded.gray.shape) >= 512
    assert decode_image(data, max_pixels=LIMIT, min_sides=(2000, 2000)).gray.shape == (1121, 1616)


def test_reduced_decode_respects_exif_orientation() -> None:
    image = Image.fromarray(
        np.tile(np.arange(1200, dtype=np.uint16) % 256, (800, 1)).astype(np.uint8), mode="L"
    )
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise
    data = _encode(image, "JPEG", quality=95, exif=exif.tobytes())
    full = decode_image(data, max_pixels=LIMIT)
    reduced = decode_image(data, max_pixels=LIMIT, min_sides=(100, 200))
    assert (full.width, full.height) == (reduced.width, reduced.height) == (800, 1200)
    assert full.gray.shape == (1200, 800) and reduced.gray.shape == (300, 200)
    small_full = cv2.resize(full.gray, (200, 300), interpolation=cv2.INTER_AREA)
    assert np.abs(small_full.astype(int) - reduced.gray.astype(int)).mean() < 3
