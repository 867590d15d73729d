"""Screenshots of the dashboard on the shipped runs, for the README and for reviewing a training round.

    python scripts/screenshot_runs.py [--tabs elbo,uncertainty] [--out docs/screenshots]

Serves ``dashboard/app.py`` on ``cached_traces/`` on a free local port, opens each run's tabs in
headless Chromium (Debian's, at /usr/bin/chromium) at 1280x800, and writes ``<tab>-<run>.png``
(the ELBO on a log scale of -ELBO).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core import store  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
RENDER_WAIT_S = 3.0  # plots draw on canvases after the tab's DOM appears


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(runs: Path, port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "panel", "serve", "dashboard/app.py", "--address", "127.0.0.1", "--port",
               str(port), "--allow-websocket-origin", f"127.0.0.1:{port}", "--warm", "--args", "--runs", str(runs)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/app", timeout=5):
                return process
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"panel serve exited with {process.returncode}")
            time.sleep(0.5)
    os.killpg(process.pid, signal.SIGTERM)
    raise SystemExit("panel serve did not answer within 120 s")


def main(argv: list[str] | None = None) -> int:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=ROOT / "cached_traces", help="folder of runs")
    parser.add_argument("--tabs", default="elbo", help="comma-separated tab keys (as in the URL)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args(argv)
    names = [r.name for r in store.list_runs(args.runs) if not r.error]
    args.out.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    server = _serve(args.runs, port)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            for name in names:
                for tab in args.tabs.split(","):
                    page.goto(f"http://127.0.0.1:{port}/app?run={name}&tab={tab}")
                    page.locator(".bk-tab").first.wait_for(timeout=60_000)
                    if tab == "elbo":  # on a log scale of -ELBO the tail, where convergence shows, is readable
                        page.locator(".bk-Checkbox", has_text="Log scale").locator("input").click()
                    time.sleep(RENDER_WAIT_S)
                    path = args.out / f"{tab}-{name}.png"
                    page.screenshot(path=path)
                    print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path, flush=True)
            browser.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
    return 0


if __name__ == "__main__":
    sys.exit(main())
