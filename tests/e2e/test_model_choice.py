"""The page's model selector against a service with three models (the tiny 3-class model and
two tiny binary ones): fed by GET /models, the heatmap's classes follow the chosen model, and a
new choice analyses the image on screen again with that model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import DESKTOP, csp_violation, running_service
from tests.e2e.test_page import NORMAL_JPEG, RESULTS_SHOWN, SPY_ON_FORMS, is_explain, upload


@pytest.fixture(scope="module")
def three_models_url(
    tiny_model_dir: Path, binary_model_dirs: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    extra = {"CXR_EXTRA_MODEL_DIRS": ",".join(str(p) for p in binary_model_dirs)}
    with running_service(tiny_model_dir, tmp_path_factory.mktemp("three"), extra) as url:
        yield url


@pytest.fixture
def three_models_page(browser: Any, three_models_url: str) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: csp_violation(message, errors))
    page.goto(f"{three_models_url}/")
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def options(page: Any, selector: str) -> list[str]:
    found: list[str] = page.eval_on_selector_all(f"{selector} option", "os => os.map(o => o.value)")
    return found


def test_the_model_selector_reanalyses_with_the_chosen_model(
    three_models_page: Any, originals: Path, artifacts: Path
) -> None:
    page = three_models_page
    page.wait_for_function("() => document.querySelectorAll('#model option').length === 3")
    assert page.locator("#model").is_visible()
    assert options(page, "#model") == [
        "tiny-test-model",
        "tiny-covid-vs-normal",
        "tiny-covid-vs-pneumonia",
    ]
    assert page.input_value("#model") == "tiny-test-model"  # the default
    assert options(page, "#target") == ["covid", "normal", "pneumonia"]
    page.evaluate(SPY_ON_FORMS)

    first = upload(page, originals / NORMAL_JPEG)
    assert first["model"]["name"] == "tiny-test-model"

    # Choosing a binary model analyses the same file again, with that model.
    with page.expect_response(lambda r: is_explain(r.request)) as answer:
        page.select_option("#model", "tiny-covid-vs-pneumonia")
    body = answer.value.json()
    page.wait_for_function(RESULTS_SHOWN)
    page.wait_for_function(
        "() => document.querySelector('#meta-model').textContent"
        ".startsWith('tiny-covid-vs-pneumonia')"
    )
    assert body["model"]["name"] == "tiny-covid-vs-pneumonia"
    assert list(body["probabilities"]) == ["covid", "pneumonia"]
    sent = page.evaluate("window.sentForms")
    assert ["model", "tiny-covid-vs-pneumonia"] in sent[-1]
    assert ["file", NORMAL_JPEG.split("/")[-1]] in sent[-1]
    assert options(page, "#target") == ["covid", "pneumonia"]
    assert page.eval_on_selector_all("#bars li", "ls => ls.map(l => l.dataset.class)") == [
        "covid",
        "pneumonia",
    ]
    assert page.inner_text("#model-info") == "tiny-covid-vs-pneumonia 0.0.1"
    page.screenshot(path=artifacts / "page-model-choice.png", full_page=True)

    # The heatmap's class choice now asks the chosen model for its class.
    with page.expect_response(lambda r: is_explain(r.request)) as answer:
        page.select_option("#target", "pneumonia")
    assert answer.value.json()["gradcam"]["target"] == "pneumonia"
    assert ["model", "tiny-covid-vs-pneumonia"] in page.evaluate("window.sentForms")[-1]
    page.wait_for_function(RESULTS_SHOWN)
