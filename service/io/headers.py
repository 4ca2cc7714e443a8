"""Image facts read from the container and codestream headers alone, before any decoding.

Plain byte parsing (no codec): PNG chunks, JPEG markers (also inside DICOM: baseline, extended,
lossless and JPEG-LS frames), the JPEG 2000 SIZ segment and the RLE segment table. The
decoders refuse what these say is malformed or too big, so a file that lies about its size or
structure costs a header walk, not a codec run on attacker-chosen dimensions.
"""

from __future__ import annotations

import logging
import struct
import warnings
from dataclasses import dataclass
from itertools import pairwise

from PIL import Image

from service.errors import InvalidImage

logger = logging.getLogger("service.io")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_EXIF_ORIENTATION_TAG = 0x0112
_MAX_CHUNK_LENGTH = 2**31 - 1  # the PNG specification's own limit

# Bit depths the PNG specification allows per colour type, and the channels OpenCV decodes
# that type to (gray+alpha and palette with transparency both become BGRA).
_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
_PNG_DECODED_CHANNELS = {0: 1, 2: 3, 3: 4, 4: 4, 6: 4}

# SOF0-SOF15 except DHT (C4), JPG (C8) and DAC (CC), plus JPEG-LS SOF55 (F7).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC} | {0xF7}
_JPEG_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01, 0xD8}


@dataclass(frozen=True)
class RasterHeader:
    """What a PNG or JPEG header says about the image, and the EXIF orientation (1-8)."""

    width: int
    height: int
    channels: int  # of the array OpenCV decodes the whole file to
    bytes_per_sample: int  # 1 or 2
    orientation: int = 1


def _corrupt(what: str) -> InvalidImage:
    return InvalidImage(f"The image is corrupt: {what}.")


def read_png_header(data: bytes) -> RasterHeader:
    """IHDR checked against the specification, then every chunk length checked against the
    file: a length running past the end (one flipped bit can make it 2 GB) is refused."""
    if len(data) < 8 + 25 or not data.startswith(PNG_SIGNATURE):
        raise _corrupt("the PNG header is truncated")
    length, kind = struct.unpack_from(">I4s", data, 8)
    if kind != b"IHDR" or length != 13:
        raise _corrupt("the PNG header (IHDR) is missing or malformed")
    width, height, depth, colour, compression, filtering, interlace = struct.unpack_from(
        ">IIBBBBB", data, 16
    )
    if not (0 < width <= _MAX_CHUNK_LENGTH and 0 < height <= _MAX_CHUNK_LENGTH):
        raise _corrupt(f"the PNG header gives an impossible size {width}x{height}")
    if depth not in _PNG_DEPTHS.get(colour, ()) or compression or filtering or interlace > 1:
        raise _corrupt("the PNG header has an invalid colour type, bit depth or method")
    exif = _walk_png_chunks(data)
    return RasterHeader(
        width=width,
        height=height,
        channels=_PNG_DECODED_CHANNELS[colour],
        bytes_per_sample=2 if depth == 16 else 1,
        orientation=orientation_of(exif) if exif is not None else 1,
    )


def _walk_png_chunks(data: bytes) -> bytes | None:
    """Check every chunk's length and type up to IEND; return the eXIf payload, if any.

    The eXIf chunk may follow the image data; walking the chunks finds it without decoding a
    pixel (Pillow decodes the whole image to find it). A file that simply ends after complete
    chunks is left to the decoder, which knows whether the image data was complete.
    """
    position, seen_image_data, exif = 8, False, None
    while position + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, position)
        if length > _MAX_CHUNK_LENGTH or position + 12 + length > len(data):
            raise _corrupt("a PNG chunk runs past the end of the file")
        if not kind.isalpha():
            raise _corrupt("a PNG chunk has an invalid type")
        if kind == b"IEND":
            break
        if kind == b"IDAT":
            seen_image_data = True
        elif kind == b"eXIf" and exif is None:
            exif = data[position + 8 : position + 8 + length]
        position += 12 + length
    if not seen_image_data:
        raise _corrupt("the PNG file has no image data")
    return exif


def orientation_of(exif: bytes) -> int:
    """EXIF orientation 1-8 from an EXIF block; 1 (as stored) if it is absent or malformed.

    A malformed EXIF block is ignored, as browsers and viewers do: it says nothing reliable.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns on each corrupt entry: said below
            value = Image.Exif()
            value.load(exif)
            orientation = value.get(_EXIF_ORIENTATION_TAG, 1)
    except Exception:  # Pillow's TIFF parser raises struct.error, ValueError, ... on garbage
        logger.info("malformed EXIF block ignored")
        return 1
    return orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1


@dataclass(frozen=True)
class JpegFrame:
    width: int
    height: int
    components: int
    precision: int  # bits per sample
    exif: bytes | None = None


def read_jpeg_frame(data: bytes) -> JpegFrame:
    """The frame header (SOF) of a JPEG or JPEG-LS codestream, and its EXIF (APP1) block.

    Walks the marker segments from SOI; every segment length must fit in the data, and the
    frame header must come before the first scan.
    """
    if not data.startswith(b"\xff\xd8"):
        raise _corrupt("the JPEG data does not start with a start-of-image marker")
    position, exif = 2, None
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            raise _corrupt("the JPEG marker structure is broken")
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker in _JPEG_STANDALONE:
            position += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image or a scan before any frame header
            break
        (length,) = struct.unpack_from(">H", data, position + 2)
        segment = data[position + 4 : position + 2 + length]
        if length < 2 or position + 2 + length > len(data):
            raise _corrupt("a JPEG marker segment runs past the end of the data")
        if marker in _JPEG_SOF:
            if len(segment) < 6:
                raise _corrupt("the JPEG frame header is truncated")
            precision, height, width, components = struct.unpack_from(">BHHB", segment)
            if width == 0 or height == 0 or components == 0:
                raise _corrupt(f"the JPEG frame header gives an impossible size {width}x{height}")
            return JpegFrame(width, height, components, precision, exif)
        if marker == 0xE1 and segment.startswith(b"Exif\x00\x00") and exif is None:
            exif = segment
        position += 2 + length
    raise _corrupt("the JPEG data has no frame header")


def read_jpeg_header(data: bytes) -> RasterHeader:
    frame = read_jpeg_frame(data)
    return RasterHeader(
        width=frame.width,
        height=frame.height,
        channels=1 if frame.components == 1 else 3,  # OpenCV: gray, or BGR for YCbCr/CMYK
        bytes_per_sample=2 if frame.precision > 8 else 1,
        orientation=orientation_of(frame.exif) if frame.exif is not None else 1,
    )


def read_j2k_size(data: bytes) -> tuple[int, int, int] | None:
    """(width, height, components) from a raw JPEG 2000 codestream's SIZ segment; ``None``
    for a JP2-wrapped stream (decoders read the box format themselves)."""
    if not data.startswith(b"\xff\x4f\xff\x51"):
        return None
    if len(data) < 4 + 38:
        raise _corrupt("the JPEG 2000 size segment is truncated")
    x_size, y_size, x_offset, y_offset = struct.unpack_from(">IIII", data, 8)
    (components,) = struct.unpack_from(">H", data, 40)
    width, height = x_size - x_offset, y_size - y_offset
    if width <= 0 or height <= 0 or components == 0:
        raise _corrupt("the JPEG 2000 size segment gives an impossible size")
    return width, height, components


def check_rle_header(fragment: bytes, segments: int) -> None:
    """DICOM RLE: a 64-byte table, ``segments`` offsets (first 64), increasing, inside the data."""
    if len(fragment) < 64:
        raise _corrupt("the RLE header is truncated")
    count, *offsets = struct.unpack_from("<16I", fragment)
    if count != segments:
        raise _corrupt(f"the RLE data has {count} segments where the header implies {segments}")
    used = offsets[:count]
    if used[0] != 64 or any(b <= a for a, b in pairwise(used)):
        raise _corrupt("the RLE segment offsets are out of order")
    if used[-1] >= len(fragment):
        raise _corrupt("the RLE segment table points outside the data")
