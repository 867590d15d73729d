"""Concurrent sessions: N protocol clients open the Digits tab at once, then select digits in a loop.

Reported: session start latency, selection latency percentiles, errors (sessions that fail to
open, selections not shown within 30 s, the server's error replies and the tracebacks in its log),
the server's peak memory (resident memory of the server process, sampled every 0.5 s) and CPU use.
The clients (:class:`~benchmarks.app_protocol.ProtocolSession`, one Python process) share the
machine with the server: their CPU use is reported too.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import numpy as np
from tornado.httpclient import HTTPClientError
from tornado.websocket import WebSocketError

from benchmarks.app_page import SELECTION_TIMEOUT_S, START_TIMEOUT_S
from benchmarks.app_protocol import ProtocolSession
from benchmarks.app_runs import Runs
from benchmarks.app_selection import click_order, percentiles
from benchmarks.app_usage import cpu_s, rss_mb
from dashboard.serving import ServedApp

__all__ = ["CLIENT", "concurrent_sessions"]

CLIENT = "Bokeh protocol clients, no browser rendering"  # what drives the concurrency levels


def _server_exceptions(log: str) -> list[str]:
    """The exception line of each traceback in (a part of) the server's log."""
    found = []
    for block in log.split("Traceback (most recent call last):")[1:]:
        lines = [line for line in block.splitlines() if line and not line.startswith(" ")]
        found.append(lines[0] if lines else "a traceback")
    return found


async def concurrent_sessions(runs: Runs, app: ServedApp, n_sessions: int, seconds: float) -> dict:
    """``n_sessions`` protocol clients open the Digits tab at once, then select digits in a loop for ``seconds``."""
    # Bokeh's Python decoder ignores the model definitions a document carries, so the dashboard's own
    # components (JSComponents) must be defined here too: the app's module imports all its pages use
    importlib.import_module("dashboard.app")
    errors: list[str] = []
    starts: list[float] = []
    latencies: list[float] = []
    peak_rss = [rss_mb(app)]
    log_start = len(app.log())
    decoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bokeh-decode")
    query = urlencode({"run": runs.name, "tab": "digits"})
    sessions = [ProtocolSession(app.url, query, decoder) for _ in range(n_sessions)]

    async def sample_memory(stop: asyncio.Event) -> None:
        while not stop.is_set():
            peak_rss.append(rss_mb(app))
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
        order = click_order(session.gallery_digits(), index)
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
        cpu0, client0, t0 = cpu_s(app), time.process_time(), time.perf_counter()
        opened = await asyncio.gather(*(open_session(s) for s in sessions))
        # the decoded documents live until the end: frozen, the clients' full collections no longer scan
        # them. Else with 50 sessions each takes 0.2 to 0.4 s and pauses all the clients at once, which
        # browsers never do
        gc.collect()
        gc.freeze()
        cpu1, client1, t1 = cpu_s(app), time.process_time(), time.perf_counter()
        deadline = time.perf_counter() + seconds
        await asyncio.gather(*(select_loop(s, i, deadline) for i, (s, ok) in enumerate(zip(sessions, opened)) if ok))
        cpu2, client2, t2 = cpu_s(app), time.process_time(), time.perf_counter()
    finally:
        gc.unfreeze()
        stop.set()
        await sampler
        await asyncio.gather(*(s.close() for s in sessions))
        decoder.shutdown()
    errors += [f"server error reply: {text[:200]}" for s in sessions for text in s.server_errors]
    errors += [f"server exception: {line[:200]}" for line in _server_exceptions(app.log()[log_start:])]
    return {
        "sessions": n_sessions, "seconds": seconds, "client": CLIENT, "sessions_loaded": len(starts),
        "session_start": percentiles(starts), "selection": percentiles(latencies),
        "errors": len(errors), "error_examples": sorted(set(errors))[:5],
        "server_peak_rss_mb": float(np.nanmax(peak_rss)),
        # share of one core the server used while the sessions opened, and while they selected digits
        "server_cpu_opening": (cpu1 - cpu0) / (t1 - t0), "server_cpu_selecting": (cpu2 - cpu1) / (t2 - t1),
        # the same for this process, the clients, which share the machine's cores with the server
        "client_cpu_opening": (client1 - client0) / (t1 - t0), "client_cpu_selecting": (client2 - client1) / (t2 - t1),
    }
