"""Recognise the uploaded file type from its content (magic bytes), never from its name."""

from __future__ import annotations

from enum import StrEnum

from service.errors import UnsupportedMediaType


class ImageFormat(StrEnum):
    PNG = "png"
    JPEG = "jpeg"
    DICOM = "dicom"


_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_DICOM_PREAMBLE = 128  # Part-10 files: 128-byte preamble, then "DICM"


def sniff_format(data: bytes) -> ImageFormat:
    if data.startswith(_PNG_MAGIC):
        return ImageFormat.PNG
    if data.startswith(_JPEG_MAGIC):
        return ImageFormat.JPEG
    if data[_DICOM_PREAMBLE : _DICOM_PREAMBLE + 4] == b"DICM":
        return ImageFormat.DICOM
    raise UnsupportedMediaType(
        "Unrecognised file type: send a PNG, JPEG or DICOM (Part-10) chest radiograph."
    )
