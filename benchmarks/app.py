"""The dashboard as its users meet it: cold start, digit-selection latency, concurrent sessions, memory.

    python benchmarks/app.py [--runs DIR] [--clicks 30] [--sessions 10 50] [--seconds 60]

Serves ``dashboard/app.py`` with ``panel serve`` on a free local port, on a folder of runs
(``cached_traces/`` by default; if it holds no run, synthetic ones written by
``tests/synthetic.py`` into a temporary folder: small networks over 10,000 random "digits", so the
inspector's work is lighter than a real run's), and drives it with headless Chromium (Playwright):

* cold start: from the server process's start until the page is served (HTTP 200) and until its
  Bokeh document has rendered (the tab bar is visible) in a browser started beforehand;
* digit selection: in one session on the Digits tab, click a thumbnail and wait until the
  inspector shows that digit (its title names it and its vote histogram holds that digit's votes);
  median and 95th percentile over ``--clicks`` selections;
* concurrency: N browser sessions open the Digits tab at once (session start latency), then each
  selects digits in a loop for ``--seconds``; selection latency percentiles, errors (pages that
  fail to load, selections not shown within 30 s, JavaScript errors) and the server's peak memory
  (resident memory of the server process, sampled every 0.5 s). Browser and server share the
  machine: on a small machine the browser's rendering is part of the latency measured.

If the page lacks what the selection needs (thumbnails, the inspector), that part is skipped with
a message naming what is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.workloads import ROOT

__all__ = ["measure", "run", "table"]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
START_TIMEOUT_S = 180.0
SELECTION_TIMEOUT_S = 30.0

# what the measurements look for in the dashboard (dashboard/views.py, dashboard/gallery.py)
READY = ".bk-tab"  # the tab bar: rendered once the session's document is
THUMBNAIL = "figure.thumb"  # gallery thumbnails, data-digit = test index
INSPECTOR_TITLE = "inspector-title"  # css class of the inspector's title ("Test digit N ...")
VOTES_TITLE = "Predicted label across posterior draws"  # the inspector's vote histogram; column "draws"

# true when the inspector shows `digit`: its title names the digit and its histogram holds `votes`
SHOWS_DIGIT_JS = """
([digit, votes, titleClass, votesTitle]) => {
  const named = new RegExp("Test digit " + digit + "(?![0-9])");
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
  if (!window.Bokeh) return false;
  for (const view of Object.values(Bokeh.index)) walk(view);
  return titled && counted;
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _percentiles(values_s: list[float]) -> dict:
    if not values_s:
        return {"n": 0}
    ms = np.asarray(values_s) * 1000.0
    return {"n": len(ms), "median_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95)),
            "max_ms": float(ms.max())}


class Runs:
    """The folder served: ``folder`` if it holds runs, else synthetic runs in a temporary folder."""

    def __init__(self, folder: Path | None) -> None:
        folder = folder or ROOT / "cached_traces"
        self._tmp = None
        if any(folder.glob("[!.]*.nc")):
            self.folder, self.kind = folder, f"runs in {folder}"
        else:
            from core import store
            from tests.synthetic import synthetic_run

            self._tmp = tempfile.TemporaryDirectory(prefix="bnn-bench-runs-")
            self.folder = Path(self._tmp.name)
            for model, prior in (("cnn", "normal"), ("mlp", "hierarchical")):
                store.save_run(synthetic_run(model, prior, n_digits=10_000, seed=0), self.folder / f"{model}-synthetic.nc")
            self.kind = f"synthetic runs (tests/synthetic.py, 10,000 digits; {folder} holds no run)"
        self.path = min(self.folder.glob("[!.]*.nc"))  # the run the app opens first
        self.name = self.path.stem
        self._labels = None

    def votes(self, digit: int) -> list[int]:
        """The run's vote count per class for ``digit`` (what the inspector's histogram shows)."""
        if self._labels is None:
            from core import store

            labels = store.load_run(self.path)["predictions"]["label"].values
            self._labels = labels.reshape(-1, labels.shape[-1])
        return np.bincount(self._labels[:, digit], minlength=10).tolist()

    def close(self) -> None:
        if self._tmp:
            self._tmp.cleanup()


class Server:
    """``panel serve dashboard/app.py`` on a free port, in its own process group (stopped with it)."""

    def __init__(self, folder: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/app"
        env = {k: v for k, v in os.environ.items() if k != "BNN_RUNS_DIR"}
        self._log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - open while the server runs; stop() closes it
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "panel", "serve", "dashboard/app.py", "--address", "127.0.0.1",
             "--port", str(self.port), "--allow-websocket-origin", f"127.0.0.1:{self.port}", "--args", "--runs", str(folder)],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_http(self) -> float:
        """Seconds from the process's start until the page answers 200."""
        deadline = self.started + START_TIMEOUT_S
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"panel serve exited with {self.process.returncode}: {self.log()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url, timeout=10) as response:
                    if response.status == 200:
                        return time.perf_counter() - self.started
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"panel serve did not answer within {START_TIMEOUT_S:.0f} s: {self.log()[-2000:]}")

    def _processes(self) -> list:
        import psutil

        process = psutil.Process(self.process.pid)
        return [process, *process.children(recursive=True)]

    def rss_mb(self) -> float:
        import psutil

        try:
            return sum(p.memory_info().rss for p in self._processes()) / 2**20
        except psutil.NoSuchProcess:
            return float("nan")

    def cpu_s(self) -> float:
        """CPU seconds the server has used so far: beside wall time, it tells whether the server (one
        Python process) or the machine's other work (the browsers, say) holds a session up."""
        return sum(sum(p.cpu_times()[:2]) for p in self._processes())

    def log(self) -> str:
        self._log.seek(0)
        return self._log.read()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)
        self._log.close()


async def _open_digits(context, runs: Runs, server: Server):
    """A page on the Digits tab of ``runs.name``, its thumbnails loaded."""
    page = await context.new_page()
    page.set_default_timeout(START_TIMEOUT_S * 1000)
    await page.goto(f"{server.url}?run={runs.name}&tab=digits")
    await page.locator(THUMBNAIL).first.wait_for()
    return page


async def _thumbnails(page) -> list[int]:
    return [int(d) for d in await page.locator(THUMBNAIL).evaluate_all("els => els.map(e => e.dataset.digit)")]


async def _select(page, runs: Runs, digit: int) -> float:
    """Click ``digit``'s thumbnail; seconds until the inspector shows it."""
    start = time.perf_counter()
    await page.locator(f"{THUMBNAIL}[data-digit='{digit}']").click()
    await page.wait_for_function(SHOWS_DIGIT_JS, arg=[digit, runs.votes(digit), INSPECTOR_TITLE, VOTES_TITLE],
                                 polling="raf", timeout=SELECTION_TIMEOUT_S * 1000)
    return time.perf_counter() - start


def _order(thumbs: list[int], offset: int) -> list[int]:
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


async def _one_session(browser, runs: Runs, server: Server, clicks: int) -> dict:
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        try:
            page = await _open_digits(context, runs, server)
        except Exception as exc:  # noqa: BLE001 - the dashboard is not there yet, or not as expected
            return {"skipped": f"the Digits tab did not show thumbnails ({THUMBNAIL}): {type(exc).__name__}: {exc}"[:400]}
        missing = await _missing_parts(page)
        if missing:
            return {"skipped": "the page lacks " + ", ".join(missing) + "; see the selectors at the top of benchmarks/app.py"}
        latencies = []
        for digit in _order(await _thumbnails(page), 0)[:clicks]:
            latencies.append(await _select(page, runs, digit))
        return _percentiles(latencies) | {"samples_ms": [round(v * 1000, 1) for v in latencies]}
    finally:
        await context.close()


async def _concurrent(browser, runs: Runs, server: Server, n_sessions: int, seconds: float) -> dict:
    """``n_sessions`` pages open at once, then select digits in a loop for ``seconds``."""
    errors: list[str] = []
    starts: list[float] = []
    latencies: list[float] = []
    peak_rss = [server.rss_mb()]
    contexts = [await browser.new_context(viewport=VIEWPORT) for _ in range(n_sessions)]

    async def sample_memory(stop: asyncio.Event) -> None:
        while not stop.is_set():
            peak_rss.append(server.rss_mb())
            await asyncio.sleep(0.5)

    async def open_page(context):
        start = time.perf_counter()
        try:
            page = await _open_digits(context, runs, server)
        except Exception as exc:  # noqa: BLE001 - any failure to load is a counted error
            errors.append(f"load: {type(exc).__name__}: {str(exc)[:200]}")
            return None
        page.on("pageerror", lambda exc: errors.append(f"javascript: {str(exc)[:200]}"))
        starts.append(time.perf_counter() - start)
        return page

    async def select_loop(page, index: int, deadline: float) -> None:
        order = _order(await _thumbnails(page), index)
        i = 0
        while time.perf_counter() < deadline:
            digit = order[i % len(order)]
            i += 1
            try:
                latencies.append(await _select(page, runs, digit))
            except Exception as exc:  # noqa: BLE001 - any failed selection is a counted error
                errors.append(f"selection: {type(exc).__name__}: {str(exc)[:200]}")

    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_memory(stop))
    try:
        cpu0, t0 = server.cpu_s(), time.perf_counter()
        pages = await asyncio.gather(*(open_page(c) for c in contexts))
        cpu1, t1 = server.cpu_s(), time.perf_counter()
        deadline = time.perf_counter() + seconds
        await asyncio.gather(*(select_loop(p, i, deadline) for i, p in enumerate(pages) if p is not None))
        cpu2, t2 = server.cpu_s(), time.perf_counter()
    finally:
        stop.set()
        await sampler
        for context in contexts:
            await context.close()
    return {
        "sessions": n_sessions, "seconds": seconds, "sessions_loaded": len(starts),
        "session_start": _percentiles(starts), "selection": _percentiles(latencies),
        "errors": len(errors), "error_examples": sorted(set(errors))[:5],
        "server_peak_rss_mb": float(np.nanmax(peak_rss)),
        # share of one core the server used while the pages opened, and while they selected digits
        "server_cpu_opening": (cpu1 - cpu0) / (t1 - t0), "server_cpu_selecting": (cpu2 - cpu1) / (t2 - t1),
    }


async def _measure(runs: Runs, clicks: int, sessions: tuple[int, ...], seconds: float) -> dict:
    from playwright.async_api import async_playwright

    result: dict = {"runs": runs.kind, "run_opened": runs.name}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        server = Server(runs.folder)
        try:
            result["server_http_s"] = server.wait_http()
            context = await browser.new_context(viewport=VIEWPORT)
            page = await context.new_page()
            page.set_default_timeout(START_TIMEOUT_S * 1000)
            await page.goto(server.url)
            await page.locator(READY).first.wait_for(state="visible")
            result["cold_start_s"] = time.perf_counter() - server.started
            await context.close()
            result["server_rss_mb_after_first_session"] = server.rss_mb()
            result["selection"] = await _one_session(browser, runs, server, clicks)
            result["concurrency"] = []
            if "skipped" not in result["selection"]:
                for n in sessions:
                    print(f"  app: {n} concurrent sessions for {seconds:.0f} s", flush=True)
                    result["concurrency"].append(await _concurrent(browser, runs, server, n, seconds))
            result["server_rss_mb_end"] = server.rss_mb()
        finally:
            server.stop()
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
    print(f"  app: cold start, {settings.app_clicks} selections, sessions {settings.app_sessions}", flush=True)
    return measure(settings.runs_dir, settings.app_clicks, settings.app_sessions, settings.app_session_seconds)


def table(result: dict) -> str:
    if "skipped" in result:
        return f"skipped: {result['skipped']}"
    lines = [f"Served: {result['runs']}; the Digits tab of `{result['run_opened']}`.", "",
             "| measure | value |", "|---|---|",
             f"| cold start: process start to page served (HTTP 200) | {result['server_http_s']:.1f} s |",
             f"| cold start: process start to first render (tab bar visible) | {result['cold_start_s']:.1f} s |",
             f"| server memory after the first session | {result['server_rss_mb_after_first_session']:.0f} MiB |"]
    selection = result["selection"]
    if "skipped" in selection:
        lines.append(f"| digit selection | skipped: {selection['skipped']} |")
    elif selection["n"]:
        lines.append(f"| digit selection, one session: median / p95 / max (n = {selection['n']}) "
                     f"| {selection['median_ms']:.0f} / {selection['p95_ms']:.0f} / {selection['max_ms']:.0f} ms |")
    for c in result["concurrency"]:
        s, start = c["selection"], c["session_start"]
        sel = f"{s['median_ms']:.0f} / {s['p95_ms']:.0f} ms (n = {s['n']})" if s["n"] else "none completed"
        st = f"{start['median_ms'] / 1000:.1f} / {start['p95_ms'] / 1000:.1f} s" if start["n"] else "none loaded"
        lines += [f"| {c['sessions']} sessions: pages loaded | {c['sessions_loaded']} of {c['sessions']}, start median / p95 {st} |",
                  f"| {c['sessions']} sessions: selection median / p95 over {c['seconds']:.0f} s | {sel} |",
                  f"| {c['sessions']} sessions: errors | {c['errors']} {'; '.join(c['error_examples'][:2])} |",
                  f"| {c['sessions']} sessions: server peak memory | {c['server_peak_rss_mb']:.0f} MiB |",
                  (f"| {c['sessions']} sessions: server CPU (share of one core) opening / selecting "
                   f"| {c['server_cpu_opening']:.0%} / {c['server_cpu_selecting']:.0%} |")]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
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
