"""Hostile files through the HTTP app: a documented 4xx (or a result), never a 5xx, and the
server keeps serving. Built here from the real originals (``hostile.py``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydicom.uid import UID, JPEGLSLossless, RLELossless

from service.io.workers import DecodePool
from service.main import create_app
from service.settings import Settings
from tests.service.io import hostile
from tests.service.io.misbehaving import misbehaving

# Every code a bad file may get (README, "Errors"); anything else, or a 5xx, fails.
DOCUMENTED = {
    413: {"image_too_large", "image_too_complex"},
    415: {"unsupported_media_type"},
    422: {"invalid_image", "unsuitable_image", "decode_timeout", "not_a_chest_xray"},
}


def _answer(client: TestClient, data: bytes, route: str = "/predict") -> tuple[int, str]:
    response = client.post(route, files={"file": ("upload", data)})
    if response.status_code == 200:
        return 200, ""
    code = response.json()["error"]["code"]
    assert code in DOCUMENTED.get(response.status_code, set()), (response.status_code, code)
    return response.status_code, code


def _still_serving(client: TestClient, good: bytes) -> None:
    assert client.get("/health").status_code == 200
    assert client.post("/predict", files={"file": ("ok", good)}).status_code == 200


@pytest.fixture(scope="module")
def png(originals: Path) -> bytes:
    return (originals / "covid/COVID-00046.png").read_bytes()


@pytest.fixture(scope="module")
def jpeg(originals: Path) -> bytes:
    return (originals / "normal/IM-0279-0001.jpeg").read_bytes()


@pytest.fixture(scope="module")
def dicom(originals: Path) -> bytes:
    return next((originals / "dicom").glob("c64d*.dcm")).read_bytes()  # JPEG Baseline CR


@pytest.fixture(scope="module")
def syntaxes(dicom: bytes, tmp_path_factory: pytest.TempPathFactory) -> dict[UID, bytes]:
    tmp = tmp_path_factory.mktemp("transcoded")
    return {s: hostile.transcoded(dicom, s, tmp) for s in hostile.DECODED_SYNTAXES}


def test_crafted_cases_of_issue_11(
    client: TestClient, png: bytes, dicom: bytes, syntaxes: dict[UID, bytes]
) -> None:
    rle = syntaxes[RLELossless]
    segment = hostile.first_fragment_offset(rle) + 64
    cases = {
        "BitsAllocated 8->32 on JPEG Baseline": (
            hostile.edited_dicom(dicom, BitsAllocated=32),
            422,
            "invalid_image",
        ),
        "JPEG-LS Rows/Columns enlarged": (
            hostile.edited_dicom(syntaxes[JPEGLSLossless], Rows=4000, Columns=4000),
            422,
            "invalid_image",
        ),
        "RLE segment count corrupt": (
            rle[: segment - 64] + b"\x07" + rle[segment - 63 :],
            422,
            "invalid_image",
        ),
        "RLE segments zeroed": (
            rle[:segment] + bytes(len(rle) - segment - 16) + rle[-16:],
            422,
            "invalid_image",
        ),
        "IDAT length bit flipped": (hostile.flipped_idat_length(png), 422, "invalid_image"),
        "7071x7071 all-zero 16-bit PNG": (
            hostile.blank_png_16bit(7071),
            422,
            "not_a_chest_xray",  # decodes within the limits; blank: the input gate's refusal
        ),
    }
    for name, (data, status, code) in cases.items():
        assert _answer(client, data) == (status, code), name
    _still_serving(client, png)


def test_header_edits(client: TestClient, png: bytes, jpeg: bytes, dicom: bytes) -> None:
    cases = {
        "PNG 60000x60000": (hostile.with_ihdr(png, width=60000, height=60000), 413),
        "PNG bit depth 3": (hostile.with_ihdr(png, depth=3), 422),
        "PNG colour type 5": (hostile.with_ihdr(png, colour=5), 422),
        "PNG 40x40 (below the minimum side)": (hostile.with_ihdr(png, width=40, height=40), 422),
        "JPEG 65000x65000": (hostile.with_jpeg_size(jpeg, 65000, 65000), 413),
        "JPEG height 0": (hostile.with_jpeg_size(jpeg, 1616, 0), 422),
        "JPEG 30x20 (below the minimum side)": (hostile.with_jpeg_size(jpeg, 30, 20), 422),
        "DICOM BitsStored > BitsAllocated": (hostile.edited_dicom(dicom, BitsStored=12), 422),
        "DICOM BitsAllocated 12": (hostile.edited_dicom(dicom, BitsAllocated=12), 422),
        "DICOM 30000x30000": (hostile.edited_dicom(dicom, Rows=30000, Columns=30000), 413),
        "DICOM Rows halved": (hostile.edited_dicom(dicom, Rows=512), 422),
    }
    for name, (data, status) in cases.items():
        assert _answer(client, data)[0] == status, name
    _still_serving(client, png)


def test_malformed_exif_is_ignored_or_refused(client: TestClient, png: bytes) -> None:
    blocks = {
        "not TIFF": b"\x00\x01\x02",
        "IFD past the end": b"MM\x00\x2a\xff\xff\xff\xff",
        "entry count past the end": b"MM\x00\x2a\x00\x00\x00\x08\xff\xff" + bytes(20),
        "truncated entry": b"II*\x00\x08\x00\x00\x00\x01\x00\x12\x01\x03\x00\x01\x00",
        "orientation as text": b"MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x02\x00\x00\x00"
        b"\x04ab\x00\x00\x00\x00\x00\x00",
    }
    for name, block in blocks.items():
        assert _answer(client, hostile.with_exif(png, block)) == (200, ""), name
    truncated_chunk = hostile.with_exif(png, b"MM\x00\x2a" + bytes(40))[: 33 + 20]
    assert _answer(client, truncated_chunk) == (422, "invalid_image")
    _still_serving(client, png)


def test_every_decoded_transfer_syntax(
    client: TestClient, png: bytes, syntaxes: dict[UID, bytes]
) -> None:
    for syntax, data in syntaxes.items():
        assert _answer(client, data) == (200, ""), syntax.name
        assert _answer(client, data, "/explain") == (200, ""), syntax.name
        assert _answer(client, data[: len(data) * 7 // 10])[0] in DOCUMENTED, syntax.name
        assert _answer(client, data[:200])[0] in DOCUMENTED, syntax.name
        for seed in range(3):
            flipped = hostile.bit_flips(data, seed, count=16, start=len(data) // 2)
            _answer(client, flipped)  # a result or a documented 4xx
    _still_serving(client, png)


def test_truncations_and_bit_flips_of_every_original(
    client: TestClient, originals: Path, png: bytes
) -> None:
    for path in sorted(originals.glob("*/*")):
        if path.suffix.lower() not in {".png", ".jpg", ".jpeg", ".dcm"}:
            continue
        data = path.read_bytes()
        for cut in (len(data) // 2, 300, 60):
            assert _answer(client, data[:cut])[0] in {200, *DOCUMENTED}, (path.name, cut)
        for seed in range(2):
            _answer(client, hostile.bit_flips(data, seed, count=8))
    _still_serving(client, png)


@pytest.fixture
def misbehaving_client(settings: Settings) -> Iterator[TestClient]:
    """The app with a decode task that aborts or hangs on request (``misbehaving.py``)."""
    settings = settings.model_copy(update={"decode_timeout_seconds": 5.0})
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        pools = client.app.state.service.pools  # type: ignore[attr-defined]
        pools.decode.close()
        pools.decode = DecodePool(workers=2, memory_mb=1536, timeout_seconds=5, task=misbehaving)
        pools.decode.start()
        yield client


def test_worker_killed_mid_decode(misbehaving_client: TestClient, png: bytes) -> None:
    response = misbehaving_client.post("/predict", files={"file": ("x", b"ABORT")})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_image"
    _still_serving(misbehaving_client, png)
    assert _answer(misbehaving_client, b"HOG") == (413, "image_too_complex")
    _still_serving(misbehaving_client, png)


def test_health_answers_while_a_decode_hangs(
    misbehaving_client: TestClient, png: bytes, tmp_path: Path
) -> None:
    started = tmp_path / "started"
    with ThreadPoolExecutor(1) as requests:
        slow = requests.submit(
            misbehaving_client.post,
            "/predict",
            files={"file": ("x", b"SLEEP " + str(started).encode())},
        )
        while not started.exists():  # the worker has the file and is "decoding" it
            assert not slow.done()
            threading.Event().wait(0.01)
        assert misbehaving_client.get("/health").status_code == 200
        assert misbehaving_client.get("/ready").status_code == 200
        assert not slow.done()  # /health answered while the decode was still running
        response = slow.result()
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "decode_timeout"
    _still_serving(misbehaving_client, png)
