"""API keys and scopes on the routes; anonymous service on loopback only unless allowed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import Request
from fastapi.testclient import TestClient

from service.api.deps import Inferrer
from service.keys import new_key, write_keys
from service.main import create_app
from service.settings import Settings

DICOM = "application/dicom"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    path = tmp_path_factory.mktemp("keys") / "keys.json"
    scopes = {"viewer": {"infer"}, "bridge": {"pacs"}, "researcher": {"infer", "dicom-out"}}
    made = {name: new_key(name, frozenset(s)) for name, s in scopes.items()}
    write_keys(path, [record for _, record in made.values()])
    return path, {name: key for name, (key, _) in made.items()}


@pytest.fixture(scope="module")
def keyed(tiny_model_dir: Path, keys: tuple[Path, dict[str, str]]) -> Iterator[TestClient]:
    settings = Settings(model_dir=tiny_model_dir, background_load=False, api_keys_file=keys[0])
    app = create_app(settings)

    @app.get("/_whoami", include_in_schema=False)  # what the access log reads
    async def whoami(request: Request, _: Inferrer) -> dict[str, str | None]:
        return {"name": getattr(request.state, "api_key_name", "unset")}

    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def png(raster_originals: list[Path]) -> bytes:
    return next(p for p in raster_originals if p.suffix == ".png").read_bytes()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_no_or_wrong_key_is_401_with_a_challenge(keyed: TestClient, png: bytes) -> None:
    for headers in ({}, bearer("cxr_00000000_" + "a" * 43), {"Authorization": "Basic eDp5"}):
        response = keyed.post("/predict", files={"file": ("x.png", png)}, headers=headers)
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_scopes(keyed: TestClient, keys: tuple[Path, dict[str, str]], png: bytes) -> None:
    key = keys[1]
    upload = {"file": ("x.png", png)}
    assert keyed.post("/predict", files=upload, headers=bearer(key["viewer"])).status_code == 200
    assert keyed.post("/explain", files=upload, headers=bearer(key["viewer"])).status_code == 200
    refused = keyed.post("/predict", files=upload, headers=bearer(key["bridge"]))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    pacs = "/pacs/studies/1.2.3/analyze"
    assert keyed.post(pacs, headers=bearer(key["viewer"])).status_code == 403
    assert keyed.post(pacs, headers=bearer(key["bridge"])).status_code == 501  # no PACS set
    # A DICOM answer carries patient data: infer alone is not enough.
    as_dicom = {"Accept": DICOM, **bearer(key["viewer"])}
    refused = keyed.post("/explain", files=upload, headers=as_dicom)
    assert refused.status_code == 403 and "dicom-out" in refused.json()["error"]["message"]
    as_dicom = {"Accept": DICOM, **bearer(key["researcher"])}
    assert keyed.post("/explain", files=upload, headers=as_dicom).status_code == 406  # a PNG


def test_open_routes_and_the_key_name_for_the_log(
    keyed: TestClient, keys: tuple[Path, dict[str, str]]
) -> None:
    for path in ("/health", "/ready", "/model", "/", "/docs", "/redoc", "/openapi.json"):
        assert keyed.get(path).status_code == 200, path
    whoami = keyed.get("/_whoami", headers=bearer(keys[1]["researcher"]))
    assert whoami.json() == {"name": "researcher"}


def test_anonymous_only_on_loopback_unless_allowed(tiny_model_dir: Path, png: bytes) -> None:
    for allow, expected in ((False, 403), (True, 200)):
        settings = Settings(model_dir=tiny_model_dir, background_load=False, allow_anonymous=allow)
        for base_url, status in (
            ("http://127.0.0.1:8000", 200),
            ("http://10.1.2.3:8000", expected),
        ):
            with TestClient(create_app(settings), base_url=base_url) as client:
                response = client.post("/predict", files={"file": ("x.png", png)})
                assert response.status_code == status, (allow, base_url, response.text)
                assert client.get("/health").status_code == 200
