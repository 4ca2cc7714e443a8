"""The page against a service that requires an API key: it asks once, keeps it for the tab."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.keys import new_key, write_keys
from tests.e2e.conftest import DESKTOP, running_service
from tests.e2e.test_page import NORMAL_JPEG, RESULTS_SHOWN, is_explain


@pytest.fixture(scope="module")
def keyed_service(
    tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    folder = tmp_path_factory.mktemp("keyed")
    key, record = new_key("page-test", frozenset({"infer"}))
    write_keys(folder / "keys.json", [record])
    env = {"CXR_API_KEYS_FILE": str(folder / "keys.json")}
    with running_service(tiny_model_dir, folder, env) as url:
        yield url, key


def test_page_asks_for_a_key_and_keeps_it_in_session_storage(
    browser: Any, keyed_service: tuple[str, str], originals: Path
) -> None:
    url, key = keyed_service
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{url}/")
    try:
        # Without a key: 401, the form appears, the error is said in words.
        with page.expect_response(lambda r: is_explain(r.request)) as first:
            page.set_input_files("#file", str(originals / NORMAL_JPEG))
        assert first.value.status == 401
        page.locator("#key-form").wait_for()
        assert "(401)" in page.locator("#error-title").inner_text()

        # A wrong key is refused and the page asks again.
        page.fill("#api-key", "cxr_00000000_" + "x" * 43)
        with page.expect_response(lambda r: is_explain(r.request)) as wrong:
            page.click("#key-use")
        assert wrong.value.status == 401
        page.locator("#key-form").wait_for()
        assert "did not accept" in page.locator("#key-why").inner_text()

        # The right key: the same file is analysed again, with the Bearer header.
        page.fill("#api-key", key)
        with page.expect_response(lambda r: is_explain(r.request)) as answer:
            page.click("#key-use")
        assert answer.value.status == 200
        assert answer.value.request.headers["authorization"] == f"Bearer {key}"
        page.wait_for_function(RESULTS_SHOWN)
        assert page.locator("#key-form").is_hidden()
        stored = page.evaluate("() => [sessionStorage.getItem('cxr-api-key'), localStorage.length]")
        assert stored == [key, 0]
        assert key not in page.content()
    finally:
        context.close()
