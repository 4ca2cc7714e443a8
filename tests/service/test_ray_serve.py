"""Ray Serve with 2 replicas on a two-node local cluster answers like the single process:
``/predict``, ``/explain`` and the errors are the same, and both replicas take requests."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.ray


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def serve_url(ray_cluster: object, tiny_model_dir: Path) -> Iterator[str]:
    from ray import serve

    from service.ray_serve import application

    port = _free_port()
    # One proxy (on the head): a proxy per node would bind the same port twice on one machine.
    serve.start(proxy_location="HeadOnly", http_options={"host": "127.0.0.1", "port": port})
    # At most 2 requests per replica: the proxy prefers replicas on its own node and sends to
    # the other node's only when those are full, which the fast tiny model rarely makes them.
    environment = {"CXR_MODEL_DIR": str(tiny_model_dir)}
    deployment = application(2, environment=environment, max_ongoing_requests=2)
    serve.run(deployment, name="cxr", route_prefix="/")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()


def _without_timing(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != "timing_ms"}


def _inputs(raster_originals: list[Path], originals: Path) -> list[tuple[str, bytes]]:
    dicom = sorted((originals / "dicom").glob("*.dcm"))[0]
    return [(p.name, p.read_bytes()) for p in [*raster_originals[:2], dicom]]


def test_ready_and_health(serve_url: str) -> None:
    assert httpx.get(f"{serve_url}/ready").status_code == 200
    assert httpx.get(f"{serve_url}/health").status_code == 200


@pytest.mark.parametrize("route", ["/predict", "/explain"])
def test_answers_equal_the_single_process(
    serve_url: str,
    client: TestClient,
    raster_originals: list[Path],
    originals: Path,
    route: str,
) -> None:
    for name, data in _inputs(raster_originals, originals):
        served = httpx.post(f"{serve_url}{route}", files={"file": (name, data)}, timeout=60)
        single = client.post(route, files={"file": (name, data)})
        assert served.status_code == single.status_code == 200, (name, served.text)
        assert _without_timing(served.json()) == _without_timing(single.json()), name


@pytest.mark.parametrize(
    ("route", "files", "data"),
    [
        ("/predict", {"file": ("notes.txt", b"not an image")}, None),
        ("/predict", {"file": ("empty.png", b"")}, None),
        ("/predict", {"file": ("cut.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40)}, None),
        ("/explain", None, {"target": "no-such-class"}),
        ("/predict", None, None),
    ],
)
def test_errors_equal_the_single_process(
    serve_url: str,
    client: TestClient,
    raster_originals: list[Path],
    route: str,
    files: dict[str, tuple[str, bytes]] | None,
    data: dict[str, str] | None,
) -> None:
    if data is not None:  # a valid image with a bad form field
        files = {"file": ("x.png", raster_originals[0].read_bytes())}
    served = httpx.post(f"{serve_url}{route}", files=files, data=data, timeout=60)
    single = client.post(route, files=files, data=data)
    assert served.status_code == single.status_code >= 400
    assert served.json() == single.json()


def test_both_replicas_take_requests(serve_url: str, raster_originals: list[Path]) -> None:
    image = raster_originals[0].read_bytes()

    def replica() -> str:
        answer = httpx.post(f"{serve_url}/predict", files={"file": ("x.png", image)}, timeout=60)
        assert answer.status_code == 200
        return answer.headers["x-serve-replica"]

    seen: set[str] = set()
    with ThreadPoolExecutor(16) as pool:
        for _ in range(3):  # concurrent requests go to the less busy of two sampled replicas
            seen |= set(pool.map(lambda _: replica(), range(16)))
            if len(seen) == 2:
                break
    assert len(seen) == 2
