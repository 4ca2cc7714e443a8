"""Hostile files, built from the real originals: the crafted cases of issue 11 and more.

Every builder takes real bytes and returns edited bytes; nothing here is stored on disk.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from pathlib import Path

import pydicom
from pydicom.uid import (
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_chunks(data: bytes) -> list[tuple[int, bytes, int]]:
    """(offset, type, length) of every chunk of a well-formed PNG."""
    found, position = [], 8
    while position + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, position)
        found.append((position, kind, length))
        position += 12 + length
    return found


def with_ihdr(data: bytes, **fields: int) -> bytes:
    """The PNG with IHDR fields replaced (width, height, depth, colour), CRC fixed."""
    names = ("width", "height", "depth", "colour", "compression", "filter", "interlace")
    values = dict(zip(names, struct.unpack_from(">IIBBBBB", data, 16), strict=True))
    values.update(fields)
    header = struct.pack(">IIBBBBB", *(values[name] for name in names))
    return data[:8] + png_chunk(b"IHDR", header) + data[33:]


def flipped_idat_length(data: bytes, bit: int = 30) -> bytes:
    offset = next(o for o, kind, _ in png_chunks(data) if kind == b"IDAT")
    (length,) = struct.unpack_from(">I", data, offset)
    return data[:offset] + struct.pack(">I", length ^ (1 << bit)) + data[offset + 4 :]


def with_exif(data: bytes, exif: bytes) -> bytes:
    """An eXIf chunk right after IHDR (a truncated block, garbage, anything)."""
    return data[:33] + png_chunk(b"eXIf", exif) + data[33:]


def blank_png_16bit(side: int) -> bytes:
    """A valid side x side 16-bit gray PNG of zeros (7071: 50 Mpixel, ~0.4 MB, 100 MB raw)."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (2 * side + 1)  # filter byte + big-endian 16-bit samples
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 16, 0, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def with_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    """The JPEG with its frame header (SOF) claiming another size."""
    position = 2
    while True:
        marker = data[position + 1]
        (length,) = struct.unpack_from(">H", data, position + 2)
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            edited = bytearray(data)
            struct.pack_into(">HH", edited, position + 5, height, width)
            return bytes(edited)
        position += 2 + length


def bit_flips(data: bytes, seed: int, count: int, start: int = 0) -> bytes:
    rng = random.Random(seed)
    edited = bytearray(data)
    for _ in range(count):
        position = rng.randrange(start, len(edited))
        edited[position] ^= 1 << rng.randrange(8)
    return bytes(edited)


def dicom_bytes(ds: pydicom.Dataset, **write: object) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True, **write)  # type: ignore[arg-type]
    return buffer.getvalue()


def edited_dicom(data: bytes, **attributes: object) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(data))
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return dicom_bytes(ds)


def transcoded(data: bytes, syntax: UID, tmp: Path) -> bytes:
    """The same real image in another transfer syntax."""
    ds = pydicom.dcmread(io.BytesIO(data))
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        ds.decompress()
    if syntax == ImplicitVRLittleEndian:
        ds.file_meta.TransferSyntaxUID = syntax
        return dicom_bytes(ds, implicit_vr=True, little_endian=True)
    if syntax in (DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian):
        ds.file_meta.TransferSyntaxUID = syntax
        return dicom_bytes(ds)
    if syntax == JPEGLosslessSV1:
        return _gdcm_jpeg_lossless(dicom_bytes(ds), tmp)
    options = {JPEGLSNearLossless: {"jls_error": 2}, JPEG2000: {"j2k_cr": [20]}}
    ds.compress(syntax, **options.get(syntax, {}))  # type: ignore[arg-type]
    return dicom_bytes(ds)


def _gdcm_jpeg_lossless(data: bytes, tmp: Path) -> bytes:
    import gdcm

    (tmp / "in.dcm").write_bytes(data)
    reader = gdcm.ImageReader()
    reader.SetFileName(str(tmp / "in.dcm"))
    assert reader.Read()
    change = gdcm.ImageChangeTransferSyntax()
    change.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.JPEGLosslessProcess14_1))
    change.SetInput(reader.GetImage())
    assert change.Change()
    writer = gdcm.ImageWriter()
    writer.SetFileName(str(tmp / "out.dcm"))
    writer.SetFile(reader.GetFile())
    writer.SetImage(change.GetOutput())
    assert writer.Write()
    return (tmp / "out.dcm").read_bytes()


DECODED_SYNTAXES = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    RLELossless,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEG2000Lossless,
    JPEG2000,
    JPEGLosslessSV1,
)


def first_fragment_offset(data: bytes) -> int:
    """Where the first frame fragment's bytes start in an encapsulated DICOM."""
    pixel_data = data.index(b"\xe0\x7f\x10\x00")
    offset_table = data.index(b"\xfe\xff\x00\xe0", pixel_data)
    (table_length,) = struct.unpack_from("<I", data, offset_table + 4)
    return offset_table + 8 + table_length + 8
