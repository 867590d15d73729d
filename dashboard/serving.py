"""The dashboard served on a folder of runs in a child process, and the headless Chromium that opens it.

What the browser tests, ``scripts/screenshot_runs.py`` and the app benchmarks share::

    with serve_dashboard(folder) as app:
        browser = launch_chromium(playwright)
        browser.new_page(viewport=VIEWPORT).goto(app.url)

:func:`serve_dashboard` starts ``python -m panel serve dashboard/app.py`` on a free local port, as
``scripts/dev serve`` starts it (``--warm``), in a process group of its own, and stops that group
on exit. This module imports neither Panel nor Playwright: the process that drives the server
should not pay for the server's imports.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.async_api import Browser as AsyncBrowser
    from playwright.async_api import Playwright as AsyncPlaywright
    from playwright.sync_api import Browser, Playwright

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "VIEWPORT",
    "ServedApp",
    "ServerError",
    "free_port",
    "launch_chromium",
    "serve_dashboard",
]

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"
HOST = "127.0.0.1"
STOP_TIMEOUT_S = 15.0  # after SIGTERM, before SIGKILL
LOG_TAIL_CHARS = 3000  # of the server's log, in the message of a failed start

# Playwright cannot download its browsers here: Debian's Chromium (apt-get install chromium)
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # nothing in the background that competes with the page for the cores, or reaches the network
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
VIEWPORT = {"width": 1280, "height": 800}


class ServerError(RuntimeError):
    """The served dashboard exited, or did not answer in time; the message ends with its log's tail."""


def free_port(host: str = HOST) -> int:
    """A TCP port on ``host`` that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class ServedApp:
    """A running ``panel serve`` of the dashboard."""

    url: str  # the app's page, http://127.0.0.1:PORT/app
    port: int
    process: subprocess.Popen
    log_path: Path  # the server's stdout and stderr
    started: float  # time.perf_counter() just before the process was started

    def log(self) -> str:
        """The server's output so far."""
        return self.log_path.read_text(errors="replace")

    def wait_listening(self, timeout_s: float) -> float:
        """Wait until the port accepts connections; seconds since the process's start.

        Connecting does not make the server build a session, as requesting the page would.
        """

        def listening() -> bool:
            with socket.create_connection((HOST, self.port), timeout=1):
                return True

        return self._wait_until(listening, timeout_s, poll_s=0.02, what="listen")

    def wait_answering(self, timeout_s: float) -> float:
        """Wait until the page is served (HTTP 200); seconds since the process's start."""

        def answering() -> bool:
            with urllib.request.urlopen(self.url, timeout=5) as response:
                return response.status == 200

        return self._wait_until(answering, timeout_s, poll_s=0.5, what="serve the page")

    def _wait_until(self, ready: Callable[[], bool], timeout_s: float, poll_s: float, what: str) -> float:
        """Poll ``ready()`` (an OSError counts as not ready) until the deadline, ``timeout_s`` after the start."""
        deadline = self.started + timeout_s
        while True:
            if self.process.poll() is not None:
                raise ServerError(f"panel serve exited with {self.process.returncode}:\n{self._log_tail()}")
            try:
                if ready():
                    return time.perf_counter() - self.started
            except OSError:
                pass
            if time.perf_counter() > deadline:
                raise ServerError(f"panel serve did not {what} within {timeout_s:.0f} s:\n{self._log_tail()}")
            time.sleep(poll_s)

    def _log_tail(self) -> str:
        return self.log()[-LOG_TAIL_CHARS:]


@contextmanager
def serve_dashboard(
    folder: Path,
    *,
    port: int | None = None,
    extra_args: Sequence[str] = (),
    log_path: Path | None = None,
    timeout_s: float = 60.0,
    warm: bool = True,
    wait: bool = True,
) -> Iterator[ServedApp]:
    """Serve ``dashboard/app.py`` on the runs in ``folder``; stop it and its children on exit.

    ``port``: a free one by default. ``extra_args`` go to ``panel serve`` before the app's own
    arguments. ``log_path``: where the server's output goes (kept); by default a temporary file,
    removed on exit. ``warm``: the session built at start-up, as ``scripts/dev serve`` does.
    ``wait``: return once the page is served, else at once, to time the start with
    :meth:`ServedApp.wait_listening` or :meth:`ServedApp.wait_answering`. Raises
    :class:`ServerError` if the server exits or does not serve the page within ``timeout_s`` of
    its start.
    """
    port = port or free_port()
    own_log = log_path is None
    if own_log:
        handle, name = tempfile.mkstemp(prefix="panel-serve-", suffix=".log")
        os.close(handle)
        log_path = Path(name)
    command = [sys.executable, "-m", "panel", "serve", str(APP), "--address", HOST, "--port", str(port),
               "--allow-websocket-origin", f"{HOST}:{port}", *(["--warm"] if warm else []), *extra_args,
               "--args", "--runs", str(folder)]
    # the folder comes from --runs only, never from the caller's environment
    env = {k: v for k, v in os.environ.items() if k != "BNN_RUNS_DIR"}
    try:
        with open(log_path, "w") as log:
            started = time.perf_counter()
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        try:
            app = ServedApp(f"http://{HOST}:{port}/app", port, process, log_path, started)
            if wait:
                app.wait_answering(timeout_s)
            yield app
        finally:
            _stop(process)
    finally:
        if own_log:
            log_path.unlink(missing_ok=True)


def _stop(process: subprocess.Popen) -> None:
    """Stop the server's process group: the server and anything it started."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT_S)
    except ProcessLookupError:  # the whole group has exited already
        process.wait()


def launch_chromium(
    playwright: Playwright | AsyncPlaywright, extra_args: Sequence[str] = ()
) -> Browser | Awaitable[AsyncBrowser]:
    """Headless Chromium from Playwright's ``sync_playwright()`` or ``async_playwright()``, with
    ``CHROMIUM_ARGS`` and then ``extra_args``.

    Returns what ``playwright.chromium.launch`` returns: a Browser, or with the async API an
    awaitable of one.
    """
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *extra_args])
