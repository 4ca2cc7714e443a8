"""/docs and /redoc render in Chromium with every request to another host blocked."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import DESKTOP, csp_violation


@pytest.fixture
def offline_page(browser: Any, service_url: str) -> Iterator[tuple[Any, list[str], list[str]]]:
    """A page that may only reach the service; yields it, the blocked URLs and any errors."""
    context = browser.new_context(viewport=DESKTOP)
    local = urlsplit(service_url).netloc
    blocked: list[str] = []
    errors: list[str] = []

    def only_local(route: Any) -> None:
        url = route.request.url
        if urlsplit(url).scheme in ("data", "blob") or urlsplit(url).netloc == local:
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: csp_violation(message, errors))
    try:
        yield page, blocked, errors
    finally:
        context.close()


def test_swagger_ui_renders_every_operation_offline(
    offline_page: tuple[Any, list[str], list[str]], service_url: str
) -> None:
    page, blocked, errors = offline_page
    page.goto(f"{service_url}/docs")
    page.wait_for_selector(".opblock-summary-path")
    paths = set(page.locator(".opblock-summary-path").all_inner_texts())
    assert {"/predict", "/explain", "/health", "/model"} <= {p.strip() for p in paths}
    assert page.locator(".btn.authorize").count() == 1  # the Bearer key can be entered
    assert blocked == [] and errors == []


def test_redoc_renders_offline(
    offline_page: tuple[Any, list[str], list[str]], service_url: str
) -> None:
    page, blocked, errors = offline_page
    page.goto(f"{service_url}/redoc")
    page.locator("h2", has_text="Class probabilities for a chest radiograph").wait_for()
    # ReDoc always tries to show Redocly's logo from its CDN; the CSP stops it in the browser,
    # before any request: nothing else may be reported.
    assert blocked == []
    assert all("cdn.redoc.ly/redoc/logo-mini.svg" in error for error in errors), errors


def test_page_links_to_the_offline_docs(page: Any, service_url: str) -> None:
    link = page.get_by_role("link", name="API documentation")
    assert link.get_attribute("href") == "docs"
    link.click()
    page.wait_for_selector(".opblock-summary-path")
    assert page.url == f"{service_url}/docs"
