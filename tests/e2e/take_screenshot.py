"""Screenshot of the page with a result, for the README (``docs/screenshot.png``).

Against a running service (``make serve``, ideally with the real model)::

    .venv/bin/python -m tests.e2e.take_screenshot \\
        --url http://127.0.0.1:8000 --file examples/pneumonia.jpeg --out docs/screenshot.png

Uses Debian's ``/usr/bin/chromium`` like the browser tests.
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, REPO_ROOT

RESULTS_SHOWN = """() => document.querySelector('#label').textContent !== '—'
  && !document.querySelector('#heat').hidden && document.querySelector('#spinner').hidden"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--file", type=Path, required=True, help="X-ray to upload")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "screenshot.png")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=980)
    parser.add_argument("--target", help="class for the Grad-CAM map (default: the top class)")
    args = parser.parse_args()
    if not args.file.is_file():
        parser.error(f"no file {args.file}: pass an X-ray, e.g. --file examples/pneumonia.jpeg")
    if not CHROMIUM.exists():
        parser.error(f"no Chromium at {CHROMIUM}: make system-deps (or set CXR_E2E_CHROMIUM)")
    url = args.url.rstrip("/")
    try:
        urllib.request.urlopen(f"{url}/ready", timeout=5).close()
    except (urllib.error.URLError, OSError) as exc:
        sys.exit(f"the service at {url} is not ready ({exc}): start it with make serve")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": args.width, "height": args.height})
        page.goto(f"{url}/")
        page.set_input_files("#file", str(args.file))
        page.wait_for_function(RESULTS_SHOWN, timeout=120_000)
        if args.target:
            page.select_option("#target", args.target)
            page.wait_for_function(
                "t => document.querySelector('#meta-target').textContent.startsWith(t)",
                arg=args.target,
                timeout=120_000,
            )
            page.wait_for_function(RESULTS_SHOWN, timeout=120_000)
        page.evaluate("document.activeElement && document.activeElement.blur()")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=args.out)
        browser.close()
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
