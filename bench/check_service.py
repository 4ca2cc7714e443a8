"""Drive a running service with the real originals and the bad inputs; print what happened.

    python -m bench.check_service --url http://127.0.0.1:8000 [--data ../shared/data/cxr]

Checks the service-core acceptance points end to end over real HTTP: every raster original
gives 200 on /predict and /explain (probabilities sum to 1, PNG sizes as stated), every bad
input gets its documented 4xx JSON error while the server keeps serving, and 16 concurrent
/predict calls succeed while /health stays fast (its latency is printed, not asserted).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import struct
import sys
import time
import zlib
from pathlib import Path

import cv2
import httpx
import numpy as np

RASTER = {".png", ".jpg", ".jpeg"}


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def blank_png(side: int) -> bytes:
    compressor = zlib.compressobj(9)
    row = b"\x00" * (side + 1)
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def _png_shape(encoded: str) -> tuple[int, ...]:
    array = np.frombuffer(base64.b64decode(encoded), np.uint8)
    return tuple(cv2.imdecode(array, cv2.IMREAD_UNCHANGED).shape)


def check_originals(http: httpx.Client, originals: Path) -> bool:
    ok = True
    for path in sorted(p for p in originals.glob("*/*") if p.suffix.lower() in RASTER):
        data = path.read_bytes()
        predicted = http.post("/predict", files={"file": (path.name, data)})
        explained = http.post("/explain", json={"image_base64": base64.b64encode(data).decode()})
        line = f"{path.parent.name}/{path.name}: predict {predicted.status_code}"
        line += f" explain {explained.status_code}"
        if predicted.status_code == 200 and explained.status_code == 200:
            body, gradcam = explained.json(), explained.json()["gradcam"]
            total = sum(predicted.json()["probabilities"].values())
            size = (gradcam["height"], gradcam["width"])
            sizes_ok = _png_shape(gradcam["heatmap_png_base64"]) == size
            sizes_ok &= _png_shape(gradcam["overlay_png_base64"])[:2] == size
            sums_ok = abs(total - 1) <= 1e-5
            ok &= sizes_ok and sums_ok
            line += f" label={body['label']} sum={total:.6f} png={size[1]}x{size[0]} ok={sizes_ok}"
            line += f" total_ms={predicted.json()['timing_ms']['total']}"
        else:
            ok = False
        print(line)
    return ok


def check_bad_inputs(http: httpx.Client, good_png: bytes) -> bool:
    cases = {
        "empty body": (http.post, {"url": "/predict"}, 422),
        "text file": (
            http.post,
            {"url": "/predict", "files": {"file": ("a.txt", b"hello\n" * 9)}},
            415,
        ),
        "truncated PNG": (
            http.post,
            {"url": "/predict", "files": {"file": ("t.png", good_png[: len(good_png) // 2])}},
            422,
        ),
        "25 MiB random": (
            http.post,
            {"url": "/predict", "files": {"file": ("r", os.urandom(25 * 2**20))}},
            413,
        ),
        "20000x20000 PNG": (
            http.post,
            {"url": "/predict", "files": {"file": ("b.png", blank_png(20000))}},
            413,
        ),
        "invalid base64": (http.post, {"url": "/predict", "json": {"image_base64": "%%%"}}, 422),
    }
    ok = True
    for name, (method, kwargs, expected) in cases.items():
        response = method(**kwargs)
        error = response.json().get("error", {})
        alive = http.get("/health").status_code == 200
        good = response.status_code == expected and set(error) == {"code", "message"} and alive
        ok &= good
        print(
            f"{name}: {response.status_code} {error.get('code')} (expected {expected}), "
            f"server alive={alive}"
        )
    return ok


async def check_concurrency(url: str, image: bytes) -> bool:
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        predictions = [
            asyncio.create_task(http.post("/predict", files={"file": ("x", image)}))
            for _ in range(16)
        ]
        await asyncio.sleep(0.05)
        health_ms = []
        while not all(task.done() for task in predictions):
            started = time.perf_counter()
            assert (await http.get("/health")).status_code == 200
            health_ms.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.05)
        statuses = [task.result().status_code for task in predictions]
    print(
        f"16 concurrent /predict: statuses={sorted(set(statuses))}; /health during them: "
        f"n={len(health_ms)} median={statistics.median(health_ms):.1f} ms "
        f"max={max(health_ms):.1f} ms"
    )
    return statuses == [200] * 16 and max(health_ms) < 100


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(
            os.environ.get("CXR_DATA_DIR", Path(__file__).resolve().parents[2] / "shared/data/cxr")
        ),
    )
    args = parser.parse_args()
    originals = args.data / "originals"
    with httpx.Client(base_url=args.url, timeout=120) as http:
        results = {"originals": check_originals(http, originals)}
        good_png = (originals / "covid/16745_7_1.png").read_bytes()
        results["bad inputs"] = check_bad_inputs(http, good_png)
    image = (originals / "normal/IM-0279-0001.jpeg").read_bytes()
    results["concurrency"] = asyncio.run(check_concurrency(args.url, image))
    print({name: "PASS" if passed else "FAIL" for name, passed in results.items()})
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
