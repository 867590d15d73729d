"""Cold start of the dashboard, and a page's open on the ready server, in headless Chromium.

The server is started as the README's ``scripts/dev serve`` starts it (``--warm``: imports, the run
listing and the first run's loading happen before it listens); a browser opens the page as soon
as the port accepts connections (as a browser retrying would), and the times from the process's
start until the server listens, until the page's response starts (the browser's navigation
timing), and until its Bokeh document has rendered (the tab bar is visible: first render). The
server is probed by connecting, not by requesting the page, which would make it build a session
that no person opened. The server is started ``COLD_STARTS`` times: the first start after a while
also reads the installed packages from disk (the page cache has let them go), so the first is
reported apart from the median of the others.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np

from benchmarks.app_page import READY, START_TIMEOUT_S
from dashboard.serving import VIEWPORT, ServedApp, serve_dashboard

__all__ = ["COLD_STARTS", "cold_started", "open_page"]

COLD_STARTS = 5  # server starts timed; the last one serves the remaining measurements


async def open_page(browser, app: ServedApp, since: float | None = None) -> tuple[float, float]:
    """Open the app in a fresh browser context: seconds from ``since`` (the server process's start by
    default) until the page's response starts, and until its document has rendered."""
    since = app.started if since is None else since
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        page = await context.new_page()
        page.set_default_timeout(START_TIMEOUT_S * 1000)
        navigated = time.perf_counter()
        await page.goto(app.url)
        response_ms = await page.evaluate("performance.getEntriesByType('navigation')[0].responseStart")
        await page.locator(READY).first.wait_for(state="visible")
        return navigated + response_ms / 1000 - since, time.perf_counter() - since
    finally:
        await context.close()


@asynccontextmanager
async def cold_started(browser, folder: Path) -> AsyncIterator[tuple[ServedApp, dict]]:
    """Start the server on ``folder`` ``COLD_STARTS`` times, timing each start; yields the last
    server, still running, and the times (the result's cold start entries)."""
    starts = []
    for i in range(COLD_STARTS):
        with serve_dashboard(folder, wait=False) as app:
            listening = app.wait_listening(START_TIMEOUT_S)
            starts.append((listening, *await open_page(browser, app)))
            if i == COLD_STARTS - 1:  # the last server stays up for the other measurements
                yield app, _summary(starts)


def _summary(starts: list[tuple[float, float, float]]) -> dict:
    listening, served, rendered = zip(*starts)
    return {
        "cold_starts": {"server_listening_s": listening, "page_served_s": served, "first_render_s": rendered},
        "server_listening_s": float(np.median(listening[1:])),
        "page_served_s": float(np.median(served[1:])),
        "cold_start_s": float(np.median(rendered[1:])),
        "cold_start_first_s": rendered[0],
    }
