"""``/docs`` (Swagger UI) and ``/redoc`` from assets installed with the project, never a CDN.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so they are blank in a hospital
network without internet, and their inline start-up script would break the CSP. Here the pinned
``fastapi-offline`` package supplies the JavaScript and CSS (only its files are used), and
Swagger UI starts from ``static/swagger-init.js``: no inline script, no request leaves the host.
(ReDoc's footer always asks for Redocly's logo from their CDN; the CSP blocks it in the browser.)
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles


def _assets_dir() -> Path:
    spec = find_spec("fastapi_offline")  # located, not imported: only its static files are used
    assert spec is not None and spec.origin is not None, "fastapi-offline is not installed"
    return Path(spec.origin).parent / "static"


ASSETS_DIR = _assets_dir()
TITLE = "Chest X-ray classifier with Grad-CAM: API"

# Relative URLs, so the pages also work behind a proxy that serves the app under a prefix.
SWAGGER_HTML = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{TITLE}</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="docs-assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs-assets/swagger-ui-bundle.js"></script>
  <script src="static/swagger-init.js"></script>
</body>
</html>
"""

REDOC_HTML = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{TITLE}</title>
  <link rel="icon" href="data:,">
</head>
<body>
  <redoc spec-url="openapi.json"></redoc>
  <script src="docs-assets/redoc.standalone.js"></script>
</body>
</html>
"""

router = APIRouter()
router.mount("/docs-assets", StaticFiles(directory=ASSETS_DIR), name="docs-assets")


@router.get("/docs", response_class=HTMLResponse, include_in_schema=False)
async def swagger_ui() -> HTMLResponse:
    return HTMLResponse(SWAGGER_HTML)


@router.get("/redoc", response_class=HTMLResponse, include_in_schema=False)
async def redoc() -> HTMLResponse:
    return HTMLResponse(REDOC_HTML)
