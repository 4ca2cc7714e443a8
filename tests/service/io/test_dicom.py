"""DICOM decoding: display pipeline, transfer syntaxes, refusals, and no patient data in errors."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

from service.errors import (
    ImageTooLarge,
    InvalidImage,
    ServiceError,
    UnsuitableImage,
    UnsupportedMediaType,
)
from service.io.decode import decode_image
from service.io.dicom import decode_dicom
from service.io.sniff import ImageFormat
from tests.dicom_samples import (
    BIRTH_DATE,
    PATIENT_ID,
    PATIENT_NAME,
    dark_with_bright_spot,
    make_dataset,
    make_dicom,
    to_bytes,
)

LIMIT = 50_000_000


def _refusal(
    data: bytes,
    error: type[ServiceError],
    *,
    limit: int = LIMIT,
    modalities: tuple[str, ...] = ("CR", "DX"),
) -> ServiceError:
    with pytest.raises(error) as raised:
        decode_dicom(data, max_pixels=limit, modalities=modalities)
    for secret in (PATIENT_NAME, "Secretpatient", PATIENT_ID, BIRTH_DATE):
        assert secret not in raised.value.message
    return raised.value


def test_real_dicoms_decode_like_pydicom(originals: Path) -> None:
    files = sorted((originals / "dicom").glob("*.dcm"))
    assert len(files) == 2
    for path in files:
        decoded = decode_image(path.read_bytes(), max_pixels=LIMIT)
        assert decoded.format is ImageFormat.DICOM
        assert decoded.gray.dtype == np.uint8 and decoded.gray.shape == (1024, 1024)
        # 8-bit MONOCHROME2 without rescale or VOI: kept as stored, like an 8-bit PNG.
        np.testing.assert_array_equal(decoded.gray, pydicom.dcmread(path).pixel_array)


def test_monochrome1_is_inverted() -> None:
    stored = dark_with_bright_spot(high=65535)
    as_m1 = decode_dicom(make_dicom(stored, photometric="MONOCHROME1"), max_pixels=LIMIT)
    inverse_m2 = decode_dicom(make_dicom(65535 - stored), max_pixels=LIMIT)
    np.testing.assert_array_equal(as_m1, inverse_m2)
    assert as_m1[0, 0] == 255 and as_m1[40, 40] == 0  # background white, spot black


@pytest.mark.parametrize("bits", [8, 10, 12, 14, 16])
def test_bits_stored_8_to_16_span_0_to_255(bits: int) -> None:
    high = 2**bits - 1
    ramp = np.linspace(0, high, 64 * 64).reshape(64, 64)
    stored = ramp.astype(np.uint8 if bits == 8 else np.uint16)
    gray = decode_dicom(make_dicom(stored, bits_stored=bits), max_pixels=LIMIT)
    assert gray.dtype == np.uint8 and gray.min() == 0 and gray.max() == 255
    assert np.all(np.diff(gray.astype(int), axis=1) >= 0)  # monotonic: no wrap-around


def test_rescale_then_window() -> None:
    """The window is in rescaled (modality) units: stored 1000 + intercept -1000 = 0 = centre."""
    stored = np.tile(np.arange(0, 2000, 2000 / 64, dtype=np.float64), (8, 1)).astype(np.uint16)
    data = make_dicom(
        stored,
        bits_stored=12,
        RescaleIntercept=-1000,
        RescaleSlope=1,
        WindowCenter=0,
        WindowWidth=400,
    )
    gray = decode_dicom(data, max_pixels=LIMIT)
    below, inside, above = (
        stored[0] < 790,
        abs(stored[0].astype(int) - 1000) < 150,
        stored[0] > 1210,
    )
    assert np.all(gray[0, below] == 0) and np.all(gray[0, above] == 255)
    assert np.all((gray[0, inside] > 0) & (gray[0, inside] < 255))
    centre = int(np.argmin(abs(stored[0].astype(int) - 1000)))
    assert abs(int(gray[0, centre]) - 128) <= 10


def test_voi_lut_sequence_is_used() -> None:
    stored = np.tile(np.arange(0, 256, 4, dtype=np.uint16), (4, 1))
    item = pydicom.Dataset()
    item.LUTDescriptor = [256, 0, 8]
    item.LUTData = [255 - value for value in range(256)]  # a VOI LUT that inverts
    item["LUTData"].VR = "US"
    data = make_dicom(stored, bits_stored=8, VOILUTSequence=pydicom.Sequence([item]))
    gray = decode_dicom(data, max_pixels=LIMIT)
    # An 8-bit VOI LUT gives display values: used as they are (stored 252 -> 3).
    np.testing.assert_array_equal(gray[0], 255 - stored[0])


@pytest.mark.parametrize(
    "syntax", [ExplicitVRLittleEndian, RLELossless, JPEGLSLossless, JPEG2000Lossless]
)
def test_compressed_transfer_syntaxes(syntax: UID) -> None:
    stored = dark_with_bright_spot(64, 96)
    reference = decode_dicom(make_dicom(stored, bits_stored=12), max_pixels=LIMIT)
    decoded = decode_dicom(make_dicom(stored, bits_stored=12, syntax=syntax), max_pixels=LIMIT)
    np.testing.assert_array_equal(decoded, reference)


def test_modality_must_be_cr_or_dx() -> None:
    error = _refusal(make_dicom(dark_with_bright_spot(), modality="CT"), UnsuitableImage)
    assert "modality CT" in error.message and "CR, DX" in error.message
    assert decode_dicom(make_dicom(dark_with_bright_spot(), modality="CR"), max_pixels=LIMIT).size
    _refusal(
        make_dicom(dark_with_bright_spot(), modality="CR"), UnsuitableImage, modalities=("DX",)
    )


@pytest.mark.parametrize("view", ["LL", "RL"])
def test_lateral_views_refused(view: str) -> None:
    error = _refusal(make_dicom(dark_with_bright_spot(), view=view), UnsuitableImage)
    assert "Lateral" in error.message and view in error.message


def test_unstated_view_accepted() -> None:
    assert decode_dicom(make_dicom(dark_with_bright_spot(), view=None), max_pixels=LIMIT).size


def test_colour_refused() -> None:
    rgb = np.zeros((32, 32, 3), np.uint8)
    error = _refusal(make_dicom(rgb, photometric="RGB"), UnsuitableImage)
    assert "Colour" in error.message and "RGB" in error.message


def test_multi_frame_refused() -> None:
    error = _refusal(make_dicom(np.zeros((3, 32, 32), np.uint16)), UnsuitableImage)
    assert "3 frames" in error.message


def test_pixel_budget_checked_before_decoding() -> None:
    ds = make_dataset(np.zeros((200, 300), np.uint16))
    ds.PixelData = b"\x00" * 10  # would fail to decode: the size check must come first
    error = _refusal(to_bytes(ds), ImageTooLarge, limit=50_000)
    assert "300x200" in error.message


@pytest.mark.filterwarnings("ignore:End of file reached")
def test_corrupt_dicoms_are_invalid_image() -> None:
    good = make_dicom(dark_with_bright_spot())
    _refusal(good[:300], InvalidImage)  # truncated header
    _refusal(good[:132] + b"\xff" * 400, InvalidImage)  # garbage after the magic
    ds = make_dataset(dark_with_bright_spot())
    ds.PixelData = ds.PixelData[:1000]  # too little pixel data
    _refusal(to_bytes(ds), InvalidImage)


def test_no_pixel_data_is_unsuitable() -> None:
    ds = make_dataset(dark_with_bright_spot())
    del ds.PixelData
    assert "no pixel data" in _refusal(to_bytes(ds), UnsuitableImage).message


def test_undecodable_transfer_syntax_is_415() -> None:
    ds = make_dataset(dark_with_bright_spot())
    ds.file_meta.TransferSyntaxUID = UID("1.2.840.10008.1.2.4.100")  # MPEG2: a video codec
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + b"\x00" * 60])
    ds["PixelData"].VR = "OB"
    assert "MPEG2" in _refusal(to_bytes(ds), UnsupportedMediaType).message


def test_patient_values_are_not_echoed_even_in_odd_fields() -> None:
    """A modality field abused to carry a name is not echoed back verbatim."""
    error = _refusal(make_dicom(dark_with_bright_spot(), modality=PATIENT_NAME), UnsuitableImage)
    assert "unrecognised" in error.message


def test_jpeg_lossless_process_14(tmp_path: Path) -> None:
    """The syntax CR/DX modalities often use; encoded here with GDCM (pydicom cannot)."""
    import gdcm

    stored = dark_with_bright_spot(64, 96)
    source = make_dicom(stored, bits_stored=12)
    (tmp_path / "in.dcm").write_bytes(source)
    reader = gdcm.ImageReader()
    reader.SetFileName(str(tmp_path / "in.dcm"))
    assert reader.Read()
    change = gdcm.ImageChangeTransferSyntax()
    change.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.JPEGLosslessProcess14_1))
    change.SetInput(reader.GetImage())
    assert change.Change()
    writer = gdcm.ImageWriter()
    writer.SetFileName(str(tmp_path / "out.dcm"))
    writer.SetFile(reader.GetFile())
    writer.SetImage(change.GetOutput())
    assert writer.Write()
    compressed = (tmp_path / "out.dcm").read_bytes()
    assert pydicom.dcmread(io.BytesIO(compressed)).file_meta.TransferSyntaxUID == JPEGLosslessSV1
    np.testing.assert_array_equal(
        decode_dicom(compressed, max_pixels=LIMIT), decode_dicom(source, max_pixels=LIMIT)
    )
