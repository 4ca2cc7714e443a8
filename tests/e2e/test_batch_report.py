"""The ``cxr-score`` report opens in a real Chromium: every plot and overlay is drawn from the
file itself (no request leaves the page), with the confusion matrix and the disclaimer."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from service.batch.cli import main
from tests.tiny_model import CLASSES


def test_report_opens_in_chromium(
    browser: Any, data_dir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    for label in CLASSES:
        (archive / label).mkdir(parents=True)
        for source in sorted((data_dir / "images" / label).glob("*.png"))[:2]:
            shutil.copy(source, archive / label / source.name)
    report = tmp_path / "report.html"
    out = tmp_path / "results.csv"
    argv = [str(archive), "--out", str(out), "--model", str(tiny_model_dir)]
    assert main([*argv, "--report", str(report)]) == 0

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    try:
        page.goto(report.as_uri())
        page.wait_for_load_state("load")
        assert "NOT FOR DIAGNOSTIC USE" in page.inner_text("body")
        assert page.locator("h2", has_text="Confusion matrix").count() == 1
        drawn = page.eval_on_selector_all(
            "img", "images => images.map(i => i.complete && i.naturalWidth > 0)"
        )
        assert len(drawn) >= 3 + len(CLASSES) and all(drawn)  # 3 plots + the overlays
        page.screenshot(path=str(Path("tests/artifacts") / "batch-report.png"), full_page=True)
    finally:
        context.close()
    assert requests == [report.as_uri()]  # self-contained: nothing else was fetched
