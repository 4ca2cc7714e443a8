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

import httpx

from bench.soak import percentiles, real_images, start_service
from service.settings import Settings


async def burst(url: str, images: list[bytes], requests: int) -> dict[str, Any]:
    answers: list[tuple[int | str, float, bool]] = []
    gate = asyncio.Event()

    async def one(http: httpx.AsyncClient, index: int) -> None:
        await gate.wait()  # every request leaves at the same moment
        began = time.perf_counter()
        try:
            response = await http.post(
                "/predict", files={"file": ("x", images[index % len(images)])}
            )
            status: int | str = response.status_code
            retry = "retry-after" in response.headers
        except httpx.HTTPError as exc:
            status, retry = type(exc).__name__, False
        answers.append((status, (time.perf_counter() - began) * 1000, retry))

    limits = httpx.Limits(max_connections=requests, max_keepalive_connections=requests)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as http:
        await http.get("/health")
        tasks = [asyncio.create_task(one(http, i)) for i in range(requests)]
        await asyncio.sleep(0.2)
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
        "by_status": by_status,
        "only_200_or_503": set(statuses) <= {200, 503},
        "every_503_has_retry_after": all(refused),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--model-dir", type=Path, default=Settings().model_dir)
    parser.add_argument("--url", help="an already running service (default: start one)")
    args = parser.parse_args()
    images = real_images(Settings().data_dir, 32)
    if args.url:
        report = asyncio.run(burst(args.url, images, args.requests))
    else:
        with start_service(args.model_dir) as server:
            report = asyncio.run(burst(server.url, images, args.requests))
    print(f"burst of {report['requests']} concurrent /predict uploads")
    for status, figures in report["by_status"].items():
        print(f"  {status}: {figures}")
    print(f"  only 200 or 503: {report['only_200_or_503']}")
    print(f"  every 503 has Retry-After: {report['every_503_has_retry_after']}")


if __name__ == "__main__":
    main()
