"""``make crafted``: the hostile files of the hardening issue against the real service, while
``/health`` is probed: every answer a documented 4xx, and how fast ``/health`` stays.

    python -m bench.crafted [--seconds 60] [--clients 2]

Starts ``python -m service`` (the production launcher), builds the crafted cases from the real
originals with the tests' builders (``tests/service/io/hostile.py``: BitsAllocated 8->32 on JPEG
Baseline, JPEG-LS Rows/Columns enlarged, corrupt and zeroed RLE segments, a flipped IDAT length,
a 7071x7071 all-zero 16-bit PNG, a malformed eXIf chunk), sends them round and round from
``--clients`` clients for ``--seconds`` while ``/health`` is asked ten times a second, and prints
the status codes, the error codes and ``/health``'s percentiles (target: p99 < 100 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from pydicom.uid import JPEGLSLossless, RLELossless

from bench.soak import percentiles, start_service
from service.settings import Settings
from tests.service.io import hostile


def crafted_cases(originals: Path) -> dict[str, bytes]:
    png = (originals / "covid/COVID-00046.png").read_bytes()
    dicom = next((originals / "dicom").glob("c64d*.dcm")).read_bytes()  # JPEG Baseline CR
    with tempfile.TemporaryDirectory() as tmp:
        jpeg_ls = hostile.transcoded(dicom, JPEGLSLossless, Path(tmp))
        rle = hostile.transcoded(dicom, RLELossless, Path(tmp))
    segment = hostile.first_fragment_offset(rle) + 64
    return {
        "BitsAllocated 8->32 on JPEG Baseline": hostile.edited_dicom(dicom, BitsAllocated=32),
        "JPEG-LS Rows/Columns enlarged": hostile.edited_dicom(jpeg_ls, Rows=4000, Columns=4000),
        "RLE segment count corrupt": rle[: segment - 64] + b"\x07" + rle[segment - 63 :],
        "RLE segments zeroed": rle[:segment] + bytes(len(rle) - segment - 16) + rle[-16:],
        "IDAT length bit flipped": hostile.flipped_idat_length(png),
        "7071x7071 all-zero 16-bit PNG": hostile.blank_png_16bit(7071),
        "malformed eXIf": hostile.with_exif(png, b"MM\x00\x2a" + bytes(40))[: 33 + 20],
    }


async def run(url: str, cases: dict[str, bytes], seconds: float, clients: int) -> dict[str, Any]:
    answers: Counter[str] = Counter()
    health: list[float] = []
    deadline = time.perf_counter() + seconds

    async def sender(http: httpx.AsyncClient, offset: int) -> None:
        names = list(cases)
        index = offset
        while time.perf_counter() < deadline:
            name = names[index % len(names)]
            index += 1
            response = await http.post("/predict", files={"file": ("x", cases[name])})
            code = response.json()["error"]["code"] if response.status_code >= 400 else ""
            answers[f"{response.status_code} {code}".strip()] += 1

    async def prober(http: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            response = await http.get("/health")
            assert response.status_code == 200
            health.append((time.perf_counter() - began) * 1000)
            await asyncio.sleep(0.1)

    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        await asyncio.gather(prober(http), *(sender(http, i) for i in range(clients)))
    return {"answers": dict(answers), "health": {"probes": len(health), **percentiles(health)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=2)
    args = parser.parse_args()
    settings = Settings()
    cases = crafted_cases(settings.data_dir / "originals")
    with start_service(settings.model_dir) as server:
        report = asyncio.run(run(server.url, cases, args.seconds, args.clients))
        alive = httpx.get(server.url + "/health").status_code == 200
    print(f"{len(cases)} crafted files, {args.clients} clients, {args.seconds:g} s")
    print(f"  answers {report['answers']}")
    print(f"  /health {report['health']}; server alive at the end: {alive}")
    if any(key.startswith("5") for key in report["answers"]):
        raise SystemExit("a 5xx answer")


if __name__ == "__main__":
    main()
