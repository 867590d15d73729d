"""The dashboard as its users meet it: cold start, digit-selection latency, concurrent sessions, memory.

    python benchmarks/app.py [--runs DIR] [--clicks 30] [--sessions 10 50] [--seconds 60]

Serves ``dashboard/app.py`` with ``panel serve`` (:func:`dashboard.serving.serve_dashboard`) on a
free local port, on a folder of runs (``cached_traces/`` by default; if it holds no run, synthetic
ones: :mod:`benchmarks.app_runs`), and drives it with headless Chromium (Playwright) and, for the
concurrency levels, with protocol-level clients. Each measurement lives in a module of its own:

* cold start, and a page's open on the ready server: :mod:`benchmarks.app_start`;
* digit selection in one browser session: :mod:`benchmarks.app_selection`;
* concurrent sessions (:mod:`benchmarks.app_load`), driven by Bokeh protocol clients
  (:mod:`benchmarks.app_protocol`), with the server's memory and CPU use (:mod:`benchmarks.app_usage`).

If the page lacks what the selection needs (thumbnails, the inspector: :mod:`benchmarks.app_page`),
that part is skipped with a message naming what is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.app_load import concurrent_sessions
from benchmarks.app_runs import Runs
from benchmarks.app_selection import one_session
from benchmarks.app_start import COLD_STARTS, cold_started, open_page
from benchmarks.app_usage import rss_mb
from benchmarks.workloads import ROOT
from dashboard.serving import CHROMIUM, launch_chromium

__all__ = ["measure", "run", "table"]


async def _measure(runs: Runs, clicks: int, sessions: tuple[int, ...], seconds: float) -> dict:
    from playwright.async_api import async_playwright

    result: dict = {"runs": runs.kind, "run_opened": runs.name}
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        try:
            async with cold_started(browser, runs.folder) as (app, cold_starts):
                result |= cold_starts
                result["page_open_s"] = (await open_page(browser, app, since=time.perf_counter()))[1]
                result["server_rss_mb_after_first_session"] = rss_mb(app)
                result["selection"] = await one_session(browser, runs, app, clicks)
                result["concurrency"] = []
                if "skipped" not in result["selection"]:
                    for n in sessions:
                        print(f"  app: {n} concurrent sessions for {seconds:.0f} s", flush=True)
                        result["concurrency"].append(await concurrent_sessions(runs, app, n, seconds))
                result["server_rss_mb_end"] = rss_mb(app)
        finally:
            await browser.close()
    return result


def measure(runs_dir: Path | None, clicks: int, sessions: tuple[int, ...], seconds: float) -> dict:
    """All the app's measurements; ``{"skipped": why}`` without Chromium or Playwright."""
    if not CHROMIUM.exists():
        return {"skipped": f"{CHROMIUM} is missing (apt-get install chromium)"}
    try:
        import playwright  # noqa: F401
    except ImportError:
        return {"skipped": "playwright is not installed (pip install playwright)"}
    if not (ROOT / "dashboard" / "app.py").exists():
        return {"skipped": "dashboard/app.py does not exist yet"}
    runs = Runs(runs_dir)
    try:
        return asyncio.run(_measure(runs, clicks, sessions, seconds))
    finally:
        runs.close()


def run(settings) -> dict:
    """The measurements with ``settings`` (:class:`benchmarks.settings.Settings`), as benchmarks/run.py runs them."""
    print(f"  app: cold start, {settings.app_clicks} selections, sessions {settings.app_sessions}", flush=True)
    return measure(settings.runs_dir, settings.app_clicks, settings.app_sessions, settings.app_session_seconds)


def table(result: dict) -> str:
    """The result as a Markdown table."""
    if "skipped" in result:
        return f"skipped: {result['skipped']}"
    lines = [f"Served: {result['runs']}; the Digits tab of `{result['run_opened']}`.", "",
             "| measure | value |", "|---|---|",
             (f"| cold start, median of starts 2 to {COLD_STARTS}: process start to server listening (`--warm`) "
              f"| {result['server_listening_s']:.1f} s |"),
             f"| cold start, median: process start to page served (response start) | {result['page_served_s']:.1f} s |",
             f"| cold start, median: process start to first render | {result['cold_start_s']:.1f} s |",
             (f"| cold start, first start (packages read from disk): process start to first render "
              f"| {result['cold_start_first_s']:.1f} s |"),
             f"| page open on the ready server, fresh browser context (tab bar visible) | {result['page_open_s']:.1f} s |",
             f"| server memory after two pages opened | {result['server_rss_mb_after_first_session']:.0f} MiB |"]
    selection = result["selection"]
    if "skipped" in selection:
        lines.append(f"| digit selection | skipped: {selection['skipped']} |")
    elif selection["n"]:
        lines.append(f"| digit selection, one session: median / p95 / max (n = {selection['n']}) "
                     f"| {selection['median_ms']:.0f} / {selection['p95_ms']:.0f} / {selection['max_ms']:.0f} ms |")
    if result["concurrency"]:
        lines.append(f"| concurrent sessions: clients | {result['concurrency'][0]['client']} (server latency through "
                     "the websocket) |")
    for c in result["concurrency"]:
        s, start = c["selection"], c["session_start"]
        sel = f"{s['median_ms']:.0f} / {s['p95_ms']:.0f} ms (n = {s['n']})" if s["n"] else "none completed"
        st = f"{start['median_ms'] / 1000:.1f} / {start['p95_ms'] / 1000:.1f} s" if start["n"] else "none loaded"
        lines += [(f"| {c['sessions']} sessions: sessions loaded | {c['sessions_loaded']} of {c['sessions']}, "
                   f"start median / p95 {st} |"),
                  f"| {c['sessions']} sessions: selection median / p95 over {c['seconds']:.0f} s | {sel} |",
                  f"| {c['sessions']} sessions: errors | {c['errors']} {'; '.join(c['error_examples'][:2])} |",
                  f"| {c['sessions']} sessions: server peak memory | {c['server_peak_rss_mb']:.0f} MiB |",
                  (f"| {c['sessions']} sessions: server CPU (share of one core) opening / selecting "
                   f"| {c['server_cpu_opening']:.0%} / {c['server_cpu_selecting']:.0%} |"),
                  (f"| {c['sessions']} sessions: clients' CPU (share of one core) opening / selecting "
                   f"| {c['client_cpu_opening']:.0%} / {c['client_cpu_selecting']:.0%} |")]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Measure with the command line's settings; print the table and the JSON."""
    parser = argparse.ArgumentParser(description="Cold start, selection latency and concurrency of the dashboard.")
    parser.add_argument("--runs", type=Path, default=None, help="folder of runs (default cached_traces/, else synthetic)")
    parser.add_argument("--clicks", type=int, default=30, help="digit selections timed in one session")
    parser.add_argument("--sessions", type=int, nargs="*", default=[10, 50], help="concurrency levels")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long each concurrency level is driven")
    args = parser.parse_args(argv)
    result = measure(args.runs, args.clicks, tuple(args.sessions), args.seconds)
    print(table(result))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
