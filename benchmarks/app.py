"""The dashboard as its users meet it: cold start, digit-selection latency, concurrent sessions, memory.

    python benchmarks/app.py [--runs DIR] [--clicks 30] [--sessions 10 50] [--seconds 60]

Serves ``dashboard/app.py`` with ``panel serve`` on a free local port, on a folder of runs
(``cached_traces/`` by default; if it holds no run, synthetic ones written by
``tests/synthetic.py`` into a temporary folder: small networks over 10,000 random "digits", so the
inspector's work is lighter than a real run's), and drives it with headless Chromium (Playwright)
and, for the concurrency levels, with protocol-level clients:

* cold start: the server is started as the README's ``scripts/dev serve`` starts it (``--warm``:
  imports, the run listing and the first run's loading happen before it listens); a browser opens
  the page as soon as the port accepts connections (as a browser retrying would), and the times
  from the process's start until the server listens, until the page's response starts (the
  browser's navigation timing), and until its Bokeh document has rendered (the tab bar is
  visible: first render). The server is probed by connecting, not by requesting the page, which
  would make it build a session that no person opened. Then the time a page takes to open on the
  ready server, in a fresh browser context (nothing cached). The server is started
  ``COLD_STARTS`` times: the first start after a while also reads the installed packages from disk
  (the page cache has let them go), so the first is reported apart from the median of the others;
* digit selection: in one session on the Digits tab, click a thumbnail and wait until the
  inspector shows that digit (its title names it and its vote histogram holds that digit's votes),
  timed in the page's own clock from the click event, as a person's click starts it (Playwright's
  own work before it dispatches the click, 40 to 150 ms here, is not the app's), by a check that
  runs in the page on every animation frame from before the click; median and 95th percentile over
  ``--clicks`` selections;
* concurrency: N sessions open the Digits tab at once (session start latency), then each selects
  digits in a loop for ``--seconds``; selection latency percentiles, errors (sessions that fail to
  open, selections not shown within 30 s, the server's error replies and the tracebacks in its log),
  the server's peak memory (resident memory of the server process, sampled every 0.5 s) and CPU use.
  These sessions are not browsers but Bokeh protocol clients (:class:`ProtocolSession`): each
  requests the page as a browser does, then pulls the session's document through the websocket,
  sets the gallery's ``selected`` as a click does, and waits for the server's patches to show the
  digit as the page would (the same check as in the browser); a session has started when its
  document holds the gallery and the inspector. What they measure is the server's answer through
  the websocket, without the browser's rendering: N headless browsers on a 2-core machine measured
  the browsers (at 50, every selection timed out while the server used 29% of a core). The clients
  (one Python process) still share the machine with the server: their CPU use is reported too.

If the page lacks what the selection needs (thumbnails, the inspector), that part is skipped with
a message naming what is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
from bokeh.client.websocket import WebSocketClientConnectionWrapper
from bokeh.document import Document
from bokeh.document.events import DocumentChangedEvent, DocumentPatchedEvent, MessageSentEvent
from bokeh.events import DocumentReady
from bokeh.models import GlyphRenderer, Plot
from bokeh.protocol import Protocol
from bokeh.protocol.message import Message
from bokeh.protocol.receiver import Receiver
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketError, websocket_connect

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
COLD_STARTS = 5  # server starts timed; the last one serves the remaining measurements
START_TIMEOUT_S = 180.0
SELECTION_TIMEOUT_S = 30.0
CLIENT = "Bokeh protocol clients, no browser rendering"  # what drives the concurrency levels
MAX_MESSAGE_BYTES = 20 * 2**20  # bokeh.client's limit on one websocket message

# what the measurements look for in the dashboard (dashboard/views.py, dashboard/gallery.py)
READY = ".bk-tab"  # the tab bar: rendered once the session's document is
THUMBNAIL = "figure.thumb"  # gallery thumbnails, data-digit = test index
INSPECTOR_TITLE = "inspector-title"  # css class of the inspector's title ("Test digit N ...")
VOTES_TITLE = "Predicted label across posterior draws"  # the inspector's vote histogram; column "draws"

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
            [sys.executable, "-m", "panel", "serve", "dashboard/app.py", "--address", "127.0.0.1", "--port", str(self.port),
             "--allow-websocket-origin", f"127.0.0.1:{self.port}", "--warm", "--args", "--runs", str(folder)],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_listening(self) -> float:
        """Seconds from the process's start until its port accepts connections."""
        deadline = self.started + START_TIMEOUT_S
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"panel serve exited with {self.process.returncode}: {self.log()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return time.perf_counter() - self.started
            except OSError:
                time.sleep(0.02)
        raise TimeoutError(f"panel serve did not listen within {START_TIMEOUT_S:.0f} s: {self.log()[-2000:]}")

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
    """Click ``digit``'s thumbnail; seconds from the click event until the inspector shows it."""
    await page.evaluate(WATCH_SELECTION_JS, [digit, runs.votes(digit), INSPECTOR_TITLE, VOTES_TITLE])
    await page.locator(f"{THUMBNAIL}[data-digit='{digit}']").click()
    await page.wait_for_function("() => window.__shownAt !== null", timeout=SELECTION_TIMEOUT_S * 1000)
    return await page.evaluate("window.__shownAt") / 1000.0


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


class ProtocolSession:
    """One session of the dashboard, opened as a browser opens it but not rendered.

    It requests the page (the server builds the session's document then) and speaks Bokeh's
    websocket protocol (``bokeh.protocol``) as the page's BokehJS does: pull the document, announce
    it ready (Panel runs the app's on-load callbacks then), send the client's changes and apply the
    server's patches. ``bokeh.client.ClientSession`` speaks the same protocol, but each of its calls
    runs an event loop of its own until a reply and applies the server's patches only meanwhile, so
    50 of them at once would take 50 threads polling the server with round trips; these share one
    asyncio loop.
    """

    def __init__(self, url: str, query: str, decoder: ThreadPoolExecutor) -> None:
        self.url, self.query = url, query
        self.document: Document | None = None
        self.server_errors: list[str] = []  # texts of the server's ERROR replies
        self._decoder = decoder
        self._protocol = Protocol()
        self._receiver = Receiver(self._protocol)
        self._socket: WebSocketClientConnectionWrapper | None = None
        self._reader: asyncio.Task | None = None
        self._acked = False
        self._reply: tuple[float, Message] | None = None  # arrival time, PULL-DOC-REPLY
        self._pending: list[tuple[float, Message]] = []  # PATCH-DOCs not applied yet, with their arrival times
        self._applied_at = 0.0  # arrival time of the last message applied to the document
        self._arrived = asyncio.Event()
        self._closed: str | None = None  # why the websocket is closed
        self._outbox: list[DocumentPatchedEvent] = []

    async def open(self) -> float:
        """Open the session; seconds from the page request until its document holds the inspector."""
        requested = time.perf_counter()
        http = AsyncHTTPClient(force_instance=True)  # the shared one queues requests beyond 10
        try:
            page = await http.fetch(f"{self.url}?{self.query}", connect_timeout=START_TIMEOUT_S,
                                    request_timeout=START_TIMEOUT_S)
        finally:
            http.close()
        token = re.search(r'"token":\s*"([^"]+)"', page.body.decode())
        if token is None:
            raise ConnectionError("the page holds no Bokeh session token")
        # as the page's script: the app's ws endpoint with the page's query, the token as subprotocol
        request = HTTPRequest(f"ws{self.url.removeprefix('http')}/ws?{self.query}",
                              connect_timeout=START_TIMEOUT_S, request_timeout=START_TIMEOUT_S)
        socket = await websocket_connect(request, subprotocols=["bokeh", token.group(1)],
                                         max_message_size=MAX_MESSAGE_BYTES)
        self._socket = WebSocketClientConnectionWrapper(socket)
        self._reader = asyncio.create_task(self._read())
        await self._until(lambda: self._acked)
        await self._protocol.create("PULL-DOC-REQ").send(self._socket)
        await self._until(lambda: self._reply is not None)
        arrived, reply = self._reply
        # decoding a document costs the client a few tenths of a second of CPU: in a thread, so that
        # the loop keeps timing the other sessions' messages as they arrive
        document = Document()
        await asyncio.get_running_loop().run_in_executor(self._decoder, reply.push_to_document, document)
        document.on_change(self._changed)
        self.document, self._applied_at = document, arrived
        held_when_pulled = self._holds_inspector()  # as pulled, before the patches that arrived meanwhile
        self._apply_pending()
        self._outbox.append(MessageSentEvent(document, "bokeh_event", DocumentReady()))
        await self._flush()
        return (arrived if held_when_pulled else await self._until(self._holds_inspector)) - requested

    def gallery_digits(self) -> list[int]:
        """The digits of the gallery's thumbnails, in order."""
        return [item["digit"] for item in self._gallery().items]

    async def select(self, digit: int, votes: list[int]) -> float:
        """Set the gallery's ``selected``, as a click on a thumbnail does; seconds until the inspector shows ``digit``."""
        start = time.perf_counter()
        self._gallery().selected = digit
        await self._flush()
        named = re.compile(f"Test digit {digit}(?![0-9])")

        def shown() -> bool:  # what WATCH_SELECTION_JS checks in the page
            return (any(named.search(m.text or "") for m in self._titles())
                    and any(np.asarray(draws).tolist() == votes for draws in self._votes()))

        async with asyncio.timeout(SELECTION_TIMEOUT_S):
            return await self._until(shown) - start

    async def close(self) -> None:
        if self._socket is not None:
            self._socket.close(1000, "benchmark done")
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)

    def _gallery(self):
        # the DigitGallery's Bokeh data model: the one with its two properties
        return next((m for m in self.document.models if {"items", "selected"} <= m.properties()), None)

    def _titles(self) -> list:
        # properties() first: a missing attribute costs a Bokeh model a fuzzy search for its error message
        return [m for m in self.document.models if "css_classes" in m.properties() and INSPECTOR_TITLE in m.css_classes]

    def _votes(self) -> list:
        return [r.data_source.data["draws"] for m in self.document.models
                if isinstance(m, Plot) and m.title is not None and VOTES_TITLE in (m.title.text or "")
                for r in m.renderers if isinstance(r, GlyphRenderer) and "draws" in r.data_source.data]

    def _holds_inspector(self) -> bool:
        gallery = self._gallery()
        return gallery is not None and len(gallery.items) > 1 and bool(self._titles()) and bool(self._votes())

    async def _receive(self) -> Message | None:
        while (fragment := await self._socket.read_message()) is not None:
            message = await self._receiver.consume(fragment)
            if message is not None:
                return message
        return None

    async def _read(self) -> None:
        """Take the server's messages as they arrive; patches are applied once the document is decoded."""
        try:
            while (message := await self._receive()) is not None:
                arrived = time.perf_counter()
                match message.msgtype:
                    case "ACK":
                        self._acked = True
                    case "PULL-DOC-REPLY":
                        self._reply = (arrived, message)
                    case "PATCH-DOC":
                        self._pending.append((arrived, message))
                    case "ERROR":
                        self.server_errors.append(str(message.content.get("text", message.content)))
                self._apply_pending()
                self._arrived.set()
            self._closed = "the server closed the websocket"
        except Exception as exc:  # noqa: BLE001 - handed to whoever waits for the server, as why it stopped
            self._closed = f"reading the server's messages failed: {type(exc).__name__}: {exc}"
        finally:
            self._closed = self._closed or "closed by the client"
            self._arrived.set()

    def _apply_pending(self) -> None:
        if self.document is None:
            return
        for arrived, message in self._pending:
            message.apply_to_document(self.document, self)
            self._applied_at = arrived
        self._pending.clear()

    async def _until(self, condition: Callable[[], bool]) -> float:
        """Wait for the server's messages until ``condition()``; the arrival time of the last one applied."""
        while not condition():
            if self._closed:
                raise ConnectionError(self._closed)
            self._arrived.clear()
            await self._arrived.wait()
        return self._applied_at

    def _changed(self, event: DocumentChangedEvent) -> None:
        # the client's own changes go to the server; the server's patches (applied with setter self) do not
        if isinstance(event, DocumentPatchedEvent) and event.setter is not self:
            self._outbox.append(event)

    async def _flush(self) -> None:
        events, self._outbox = self._outbox, []
        if events:
            await self._protocol.create("PATCH-DOC", events).send(self._socket)


def _server_exceptions(log: str) -> list[str]:
    """The exception line of each traceback in (a part of) the server's log."""
    found = []
    for block in log.split("Traceback (most recent call last):")[1:]:
        lines = [line for line in block.splitlines() if line and not line.startswith(" ")]
        found.append(lines[0] if lines else "a traceback")
    return found


async def _concurrent(runs: Runs, server: Server, n_sessions: int, seconds: float) -> dict:
    """``n_sessions`` protocol clients open the Digits tab at once, then select digits in a loop for ``seconds``."""
    # Bokeh's Python decoder ignores the model definitions a document carries, so the dashboard's own
    # components (JSComponents) must be defined here too: the app's module imports all its pages use
    importlib.import_module("dashboard.app")
    errors: list[str] = []
    starts: list[float] = []
    latencies: list[float] = []
    peak_rss = [server.rss_mb()]
    log_start = len(server.log())
    decoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bokeh-decode")
    query = urlencode({"run": runs.name, "tab": "digits"})
    sessions = [ProtocolSession(server.url, query, decoder) for _ in range(n_sessions)]

    async def sample_memory(stop: asyncio.Event) -> None:
        while not stop.is_set():
            peak_rss.append(server.rss_mb())
            await asyncio.sleep(0.5)

    async def open_session(session: ProtocolSession) -> bool:
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                starts.append(await session.open())
            return True
        except (OSError, TimeoutError, HTTPClientError, WebSocketError) as exc:  # what a failed open raises
            errors.append(f"open: {type(exc).__name__}: {str(exc)[:200]}")
            return False

    async def select_loop(session: ProtocolSession, index: int, deadline: float) -> None:
        order = _order(session.gallery_digits(), index)
        i = 0
        while time.perf_counter() < deadline:
            digit = order[i % len(order)]
            i += 1
            try:
                latencies.append(await session.select(digit, runs.votes(digit)))
            except TimeoutError:
                errors.append(f"selection: digit not shown within {SELECTION_TIMEOUT_S:.0f} s")
            except (ConnectionError, WebSocketError) as exc:  # the session is lost
                errors.append(f"selection: {type(exc).__name__}: {str(exc)[:200]}")
                return

    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_memory(stop))
    try:
        cpu0, client0, t0 = server.cpu_s(), time.process_time(), time.perf_counter()
        opened = await asyncio.gather(*(open_session(s) for s in sessions))
        cpu1, client1, t1 = server.cpu_s(), time.process_time(), time.perf_counter()
        deadline = time.perf_counter() + seconds
        await asyncio.gather(*(select_loop(s, i, deadline) for i, (s, ok) in enumerate(zip(sessions, opened)) if ok))
        cpu2, client2, t2 = server.cpu_s(), time.process_time(), time.perf_counter()
    finally:
        stop.set()
        await sampler
        await asyncio.gather(*(s.close() for s in sessions))
        decoder.shutdown()
    errors += [f"server error reply: {text[:200]}" for s in sessions for text in s.server_errors]
    errors += [f"server exception: {line[:200]}" for line in _server_exceptions(server.log()[log_start:])]
    return {
        "sessions": n_sessions, "seconds": seconds, "client": CLIENT, "sessions_loaded": len(starts),
        "session_start": _percentiles(starts), "selection": _percentiles(latencies),
        "errors": len(errors), "error_examples": sorted(set(errors))[:5],
        "server_peak_rss_mb": float(np.nanmax(peak_rss)),
        # share of one core the server used while the sessions opened, and while they selected digits
        "server_cpu_opening": (cpu1 - cpu0) / (t1 - t0), "server_cpu_selecting": (cpu2 - cpu1) / (t2 - t1),
        # the same for this process, the clients, which share the machine's cores with the server
        "client_cpu_opening": (client1 - client0) / (t1 - t0), "client_cpu_selecting": (client2 - client1) / (t2 - t1),
    }


async def _open_page(browser, server: Server, since: float | None = None) -> tuple[float, float]:
    """Open the app in a fresh browser context: seconds from ``since`` (the server process's start by
    default) until the page's response starts, and until its document has rendered."""
    since = server.started if since is None else since
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        page = await context.new_page()
        page.set_default_timeout(START_TIMEOUT_S * 1000)
        navigated = time.perf_counter()
        await page.goto(server.url)
        response_ms = await page.evaluate("performance.getEntriesByType('navigation')[0].responseStart")
        await page.locator(READY).first.wait_for(state="visible")
        return navigated + response_ms / 1000 - since, time.perf_counter() - since
    finally:
        await context.close()


async def _measure(runs: Runs, clicks: int, sessions: tuple[int, ...], seconds: float) -> dict:
    from playwright.async_api import async_playwright

    result: dict = {"runs": runs.kind, "run_opened": runs.name}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        starts = []
        for i in range(COLD_STARTS):
            server = Server(runs.folder)
            try:
                listening = server.wait_listening()
                starts.append((listening, *await _open_page(browser, server)))
            except BaseException:
                server.stop()
                raise
            if i < COLD_STARTS - 1:
                server.stop()
        listening, served, rendered = zip(*starts)
        result["cold_starts"] = {"server_listening_s": listening, "page_served_s": served, "first_render_s": rendered}
        result["server_listening_s"] = float(np.median(listening[1:]))
        result["page_served_s"] = float(np.median(served[1:]))
        result["cold_start_s"] = float(np.median(rendered[1:]))
        result["cold_start_first_s"] = rendered[0]
        try:
            result["page_open_s"] = (await _open_page(browser, server, since=time.perf_counter()))[1]
            result["server_rss_mb_after_first_session"] = server.rss_mb()
            result["selection"] = await _one_session(browser, runs, server, clicks)
            result["concurrency"] = []
            if "skipped" not in result["selection"]:
                for n in sessions:
                    print(f"  app: {n} concurrent sessions for {seconds:.0f} s", flush=True)
                    result["concurrency"].append(await _concurrent(runs, server, n, seconds))
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
