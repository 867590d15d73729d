"""Digit selection timed in one browser session; also the click order and latency percentiles app_load uses.

In one session on the Digits tab, click a thumbnail and wait until the inspector shows that digit
(its title names it and its vote histogram holds that digit's votes), timed in the page's own
clock from the click event, as a person's click starts it (Playwright's own work before it
dispatches the click, 40 to 150 ms here, is not the app's), by a check that runs in the page on
every animation frame from before the click; median and 95th percentile over ``clicks`` selections.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np

from benchmarks.app_page import INSPECTOR_TITLE, SELECTION_TIMEOUT_S, START_TIMEOUT_S, THUMBNAIL, VOTES_TITLE
from benchmarks.app_runs import Runs
from dashboard.serving import VIEWPORT, ServedApp

__all__ = ["click_order", "one_session", "percentiles"]

# Watches, in the page, from the next click event until the inspector shows `digit` (its title names
# the digit and its histogram holds `votes`), checking on every animation frame; window.__shownAt is
# then the page's clock (ms) from the click. The watch runs in the page from before the click: a
# check sent after the click (Playwright's wait_for_function) first runs when its message arrives,
# which for a page's first selection was over a second late, and would count that delay as the app's.
WATCH_SELECTION_JS = """
([digit, votes, titleClass, votesTitle]) => {
  const named = new RegExp("Test digit " + digit + "(?![0-9])");
  function shows() {
    let titled = false, counted = false;
    function walk(view) {
      const m = view.model;
      if (m && m.css_classes && m.css_classes.includes(titleClass) && named.test(m.text || "")) titled = true;
      if (m && m.type === "Figure" && m.title && m.title.text.includes(votesTitle)) {
        for (const r of m.renderers) {
          const data = r.data_source && r.data_source.data;
          if (data && data.draws && Array.from(data.draws).join() === votes.join()) counted = true;
        }
      }
      for (const child of view.child_views || []) walk(child);
    }
    for (const view of Object.values(Bokeh.index)) walk(view);
    return titled && counted;
  }
  window.__clickedAt = null;
  window.__shownAt = null;
  document.addEventListener("click", () => { window.__clickedAt = performance.now(); }, {capture: true, once: true});
  function frame() {
    if (window.__clickedAt !== null && shows()) window.__shownAt = performance.now() - window.__clickedAt;
    else requestAnimationFrame(frame);
  }
  requestAnimationFrame(frame);
}
"""

# which of the inspector's parts the page has (to skip with a clear message when it lacks one)
INSPECTOR_PARTS_JS = """
([titleClass, votesTitle]) => {
  const found = {title: false, votes: false};
  function walk(view) {
    const m = view.model;
    if (m && m.css_classes && m.css_classes.includes(titleClass)) found.title = true;
    if (m && m.type === "Figure" && m.title && m.title.text.includes(votesTitle)) found.votes = true;
    for (const child of view.child_views || []) walk(child);
  }
  if (window.Bokeh) for (const view of Object.values(Bokeh.index)) walk(view);
  return found;
}
"""


def percentiles(values_s: list[float]) -> dict:
    """Count, median, 95th percentile and maximum of latencies in seconds, in ms."""
    if not values_s:
        return {"n": 0}
    ms = np.asarray(values_s) * 1000.0
    return {"n": len(ms), "median_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95)),
            "max_ms": float(ms.max())}


async def _open_digits(context, runs: Runs, app: ServedApp):
    """A page on the Digits tab of ``runs.name``, its thumbnails loaded."""
    page = await context.new_page()
    page.set_default_timeout(START_TIMEOUT_S * 1000)
    await page.goto(f"{app.url}?run={runs.name}&tab=digits")
    await page.locator(THUMBNAIL).first.wait_for()
    return page


async def _thumbnails(page) -> list[int]:
    return [int(d) for d in await page.locator(THUMBNAIL).evaluate_all("els => els.map(e => e.dataset.digit)")]


async def _select(page, runs: Runs, digit: int) -> float:
    """Click ``digit``'s thumbnail; seconds from the click event until the inspector shows it."""
    await page.evaluate(WATCH_SELECTION_JS, [digit, runs.votes(digit), INSPECTOR_TITLE, VOTES_TITLE])
    await page.locator(f"{THUMBNAIL}[data-digit='{digit}']").click()
    await page.wait_for_function("() => window.__shownAt !== null", timeout=SELECTION_TIMEOUT_S * 1000)
    return await page.evaluate("window.__shownAt") / 1000.0


def click_order(thumbs: list[int], offset: int) -> list[int]:
    """Thumbnails to click in turn, starting at ``offset`` and never the one shown first."""
    rest = thumbs[1:]
    return rest[offset % len(rest):] + rest[: offset % len(rest)]


async def _missing_parts(page) -> list[str]:
    """What the digit selection needs that the page lacks, after waiting up to a minute."""
    deadline = time.perf_counter() + 60
    while True:
        missing = []
        if await page.locator(THUMBNAIL).count() < 2:
            missing.append(f"gallery thumbnails ({THUMBNAIL})")
        parts = await page.evaluate(INSPECTOR_PARTS_JS, [INSPECTOR_TITLE, VOTES_TITLE])
        if not parts["title"]:
            missing.append(f"inspector title (css class {INSPECTOR_TITLE})")
        if not parts["votes"]:
            missing.append(f"vote histogram (a figure titled {VOTES_TITLE!r})")
        if not missing or time.perf_counter() > deadline:
            return missing
        await asyncio.sleep(0.5)


async def one_session(browser, runs: Runs, app: ServedApp, clicks: int) -> dict:
    """Time ``clicks`` selections in one fresh browser context; ``{"skipped": why}`` if the page lacks a part."""
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        try:
            page = await _open_digits(context, runs, app)
        except Exception as exc:  # noqa: BLE001 - the dashboard is not there yet, or not as expected
            return {"skipped": f"the Digits tab did not show thumbnails ({THUMBNAIL}): {type(exc).__name__}: {exc}"[:400]}
        missing = await _missing_parts(page)
        if missing:
            return {"skipped": "the page lacks " + ", ".join(missing) + "; see the selectors in benchmarks/app_page.py"}
        latencies = []
        for digit in click_order(await _thumbnails(page), 0)[:clicks]:
            latencies.append(await _select(page, runs, digit))
        return percentiles(latencies) | {"samples_ms": [round(v * 1000, 1) for v in latencies]}
    finally:
        await context.close()
