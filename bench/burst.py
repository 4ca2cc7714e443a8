"""A burst of concurrent uploads: every answer is 200 or 503 + Retry-After, and 503s are fast.

    python -m bench.burst [--requests 200] [--model-dir models/cxr-vgg16-3class]
                          [--url http://127.0.0.1:8000]

Without ``--url`` it starts the real service (the shipped model) on a free port. All requests
are sent at once, each with a real test-split image; a full model queue must refuse the excess
before reading their bodies (``CXR_MAX_QUEUE``, default 64), so their 503s come back in
milliseconds while the admitted ones wait for the model. Prints the counts and the latency
percentiles of each status, and whether every 503 carried Retry-After.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.soak import percentiles, real_images, start_service
from service.settings import Settings


def multipart(data: bytes) -> tuple[bytes, str]:
    boundary = "cxrburst0123456789"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    status = int((await reader.readline()).split()[1])
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


async def burst(url: str, images: list[bytes], requests: int) -> dict[str, Any]:
    """Each request on its own connection, opened beforehand; the clock runs from its first
    byte to the status line, so it measures the service, not this client uploading a body that
    a refused request no longer needs (the server answers without reading it)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    answers: list[tuple[int | str, float, bool]] = []
    gate = asyncio.Event()
    bodies = [multipart(data) for data in images]

    async def one(index: int) -> None:
        body, content_type = bodies[index % len(bodies)]
        reader, writer = await asyncio.open_connection(host, port)
        head = (
            f"POST /predict HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: {content_type}"
            f"\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        message = memoryview(head + body)
        await gate.wait()  # every request leaves at the same moment
        began = time.perf_counter()

        async def upload() -> None:
            # In 64 KiB pieces, so this one event loop also reads the answers meanwhile.
            for start in range(0, len(message), 65536):
                writer.write(message[start : start + 65536])
                await writer.drain()

        sending = asyncio.create_task(upload())
        try:
            status, headers, _ = await _read_answer(reader)
            answers.append((status, (time.perf_counter() - began) * 1000, "retry-after" in headers))
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
            answers.append((type(exc).__name__, (time.perf_counter() - began) * 1000, False))
        finally:
            sending.cancel()
            writer.close()

    tasks = [asyncio.create_task(one(i)) for i in range(requests)]
    await asyncio.sleep(1.0)  # connections open
    gate.set()
    await asyncio.gather(*tasks)
    statuses = Counter(status for status, _, _ in answers)
    by_status = {
        str(status): {"count": n, **percentiles([ms for s, ms, _ in answers if s == status])}
        for status, n in sorted(statuses.items(), key=str)
    }
    refused = [retry for status, _, retry in answers if status == 503]
    return {
        "requests": requests,
        "images": len(images),
        "by_status": by_status,
        "only_200_or_503": set(statuses) <= {200, 503},
        "every_503_has_retry_after": all(refused),
    }


def accepted(url: str, images: list[bytes]) -> list[bytes]:
    """The images this service answers with 200 one at a time: the burst is about overload, so
    it leaves out the few test X-rays the input gate refuses (a 422 is not an overload answer)."""
    with httpx.Client(base_url=url, timeout=60) as http:
        return [d for d in images if http.post("/predict", files={"file": ("x", d)}).is_success]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--model-dir", type=Path, default=Settings().model_dir)
    parser.add_argument("--url", help="an already running service (default: start one)")
    args = parser.parse_args()
    images = real_images(Settings().data_dir, 32)
    if args.url:
        report = asyncio.run(burst(args.url, accepted(args.url, images), args.requests))
    else:
        with start_service(args.model_dir) as server:
            report = asyncio.run(burst(server.url, accepted(server.url, images), args.requests))
    print(
        f"burst of {report['requests']} concurrent /predict uploads "
        f"({report['images']} test X-rays the gate accepts)"
    )
    for status, figures in report["by_status"].items():
        print(f"  {status}: {figures}")
    print(f"  only 200 or 503: {report['only_200_or_503']}")
    print(f"  every 503 has Retry-After: {report['every_503_has_retry_after']}")


if __name__ == "__main__":
    main()
