"""Screenshots of the dashboard on the shipped runs, for the README and for reviewing a training round.

    python scripts/screenshot_runs.py [--tabs elbo,uncertainty,probe] [--out docs/screenshots]

Serves ``dashboard/app.py`` on ``cached_traces/`` on a free local port, opens each run's tabs in
headless Chromium (Debian's, at /usr/bin/chromium) at 1280x800, and writes ``<tab>-<run>.png``
(the ELBO on a log scale of -ELBO; the probe on test digit 0, as the run's networks are fed it).
The synthetic-run screenshots the README links come from the browser tests (``BNN_SCREENSHOTS=1``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core import store
from dashboard.serving import VIEWPORT, ServerError, launch_chromium, serve_dashboard

START_TIMEOUT_S = 120.0  # the warm-up session loads a shipped run, larger than the tests' synthetic ones
RENDER_WAIT_S = 3.0  # plots draw on canvases after the tab's DOM appears


def main(argv: list[str] | None = None) -> int:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=ROOT / "cached_traces", help="folder of runs")
    parser.add_argument("--tabs", default="elbo", help="comma-separated tab keys (as in the URL)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args(argv)
    names = [r.name for r in store.list_runs(args.runs) if not r.error]
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        with serve_dashboard(args.runs, timeout_s=START_TIMEOUT_S) as app, sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            page = browser.new_page(viewport=VIEWPORT)
            for name in names:
                for tab in args.tabs.split(","):
                    page.goto(f"{app.url}?run={name}&tab={tab}")
                    page.locator(".bk-tab").first.wait_for(timeout=60_000)
                    time.sleep(RENDER_WAIT_S)
                    path = args.out / f"{tab}-{name}.png"
                    page.screenshot(path=path)
                    print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path, flush=True)
            browser.close()
    except ServerError as exc:
        raise SystemExit(str(exc)) from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
