"""Cross-site requests, CORS and the security headers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.api.page import STATIC_DIR
from service.dicom import study
from service.keys import new_key, write_keys
from service.main import create_app
from service.settings import Settings

PACS_ROUTE = "/pacs/studies/1.2.3/analyze"
VIEWER = "https://viewer.example.org"


@pytest.fixture(scope="module")
def cors_client(tiny_model_dir: Path) -> Iterator[TestClient]:
    settings = Settings(
        model_dir=tiny_model_dir,
        background_load=False,
        cors_origins=f"{VIEWER}/",
        dicomweb_url="http://127.0.0.1:9/dicom-web",  # configured, so a request would go out
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def pacs_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []

    class RecordingPacs:
        def __init__(self, settings: Settings) -> None:
            calls.append("created")
            raise AssertionError("the PACS must not be contacted")

    monkeypatch.setattr(study, "Pacs", RecordingPacs)
    return calls


CROSS_SITE = [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Origin": "http://testserver.evil.example", "Sec-Fetch-Site": "cross-site"},
]


@pytest.mark.parametrize("headers", CROSS_SITE)
def test_cross_site_form_post_to_pacs_is_refused_before_any_pacs_request(
    cors_client: TestClient, pacs_calls: list[str], headers: dict[str, str]
) -> None:
    form = {"field": "value"}  # what an HTML form on another site would send
    response = cors_client.post(PACS_ROUTE, data=form, headers=headers)
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "forbidden"
    assert pacs_calls == []


def test_cross_site_refusal_comes_before_authentication(
    tiny_model_dir: Path, tmp_path: Path, pacs_calls: list[str]
) -> None:
    path = tmp_path / "keys.json"
    write_keys(path, [new_key("bridge", frozenset({"pacs"}))[1]])
    settings = Settings(model_dir=tiny_model_dir, background_load=False, api_keys_file=path)
    with TestClient(create_app(settings)) as client:
        response = client.post(PACS_ROUTE, headers={"Origin": "https://evil.example"})
        assert response.status_code == 403
        assert client.post(PACS_ROUTE).status_code == 401
    assert pacs_calls == []


def test_same_origin_and_allowed_origins_pass(cors_client: TestClient) -> None:
    for headers in (
        {},  # curl, scripts: no browser headers
        {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},
        {"Origin": VIEWER, "Sec-Fetch-Site": "cross-site"},
    ):
        response = cors_client.post("/predict", headers=headers)
        assert response.status_code == 422, (headers, response.text)  # reached the route
        assert response.json()["error"]["code"] == "empty_upload"


def test_cors_allows_only_the_configured_origins(
    cors_client: TestClient, client: TestClient
) -> None:
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization"}  # fmt: skip
    allowed = cors_client.options("/predict", headers={"Origin": VIEWER, **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == VIEWER
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    other = cors_client.options("/predict", headers={"Origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in other.headers
    # Default: no origin at all.
    default = client.options("/predict", headers={"Origin": VIEWER, **preflight})
    assert "access-control-allow-origin" not in default.headers
    simple = cors_client.get("/model", headers={"Origin": VIEWER})
    assert simple.headers["access-control-allow-origin"] == VIEWER
    assert "retry-after" in simple.headers["access-control-expose-headers"].lower()


@pytest.mark.parametrize(
    "path", ["/", "/static/app.js", "/static/style.css", "/docs", "/redoc", "/model", "/nope"]
)
def test_security_headers_everywhere(client: TestClient, path: str) -> None:
    headers = client.get(path).headers
    policy = headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    script_src = re.search(r"script-src ([^;]*)", policy)
    assert script_src is not None and script_src.group(1).strip() == "'self'"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"


def test_pages_have_no_inline_script(client: TestClient) -> None:
    pages = [(STATIC_DIR / "index.html").read_text(), client.get("/docs").text,
             client.get("/redoc").text]  # fmt: skip
    for html in pages:
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
        assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers
        assert "http://" not in html and "https://" not in html  # nothing from another host
