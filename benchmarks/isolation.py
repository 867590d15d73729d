"""One measurement per Python process, with a hard time cap.

A process of its own gives each implementation a clean peak memory (``ru_maxrss``), and keeps one
implementation's settings from leaking into the next: PyTensor's JAX dispatch turns JAX's 64-bit
mode on or off from ``floatX`` when it is first imported, for every JAX user of the process.

A worker prints one JSON object per line, prefixed with :data:`PREFIX` (libraries print too). It
reports as it goes, so that a worker stopped at its cap still says how far it got.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

from benchmarks.workloads import ROOT

__all__ = ["PREFIX", "WorkerResult", "emit", "peak_rss_mb", "run_worker"]

PREFIX = "BENCH "


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit(**event) -> None:
    """Report ``event`` (with this process's peak memory and the load average) to the orchestrator."""
    event |= {"peak_rss_mb": round(peak_rss_mb(), 1), "load_1min": os.getloadavg()[0]}
    print(PREFIX + json.dumps(event), flush=True)


@dataclass
class WorkerResult:
    """What a worker reported. ``status``: ``ok``, ``capped`` (stopped at its time cap) or ``failed``."""

    status: str
    events: list[dict] = field(default_factory=list)
    wall_s: float = 0.0
    error: str = ""

    @property
    def last(self) -> dict:
        return self.events[-1] if self.events else {}

    def latest(self, key: str):
        """The most recent value of ``key`` in the events, or None."""
        return next((e[key] for e in reversed(self.events) if key in e), None)


def run_worker(args: list[str], cap_s: float, floatx: str | None = None) -> WorkerResult:
    """Run ``python *args`` from the repository root; stop it (and what it started) after ``cap_s``.

    ``floatx`` sets PyTensor's floatX for the whole process (``PYTENSOR_FLAGS``), before anything
    imports PyTensor's JAX dispatch.
    """
    env = dict(os.environ)
    if floatx:
        env["PYTENSOR_FLAGS"] = ",".join(f for f in (env.get("PYTENSOR_FLAGS"), f"floatX={floatx}") if f)
    events: list[dict] = []
    with tempfile.TemporaryFile(mode="w+") as stderr:
        start = time.perf_counter()
        process = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr,
                                   text=True, start_new_session=True)
        reader = threading.Thread(target=_read_events, args=(process.stdout, events), daemon=True)
        reader.start()
        status = "ok"
        try:
            process.wait(timeout=cap_s)
        except subprocess.TimeoutExpired:
            status = "capped"
        finally:
            _stop(process)
        reader.join(timeout=10)
        wall = time.perf_counter() - start
        stderr.seek(0)
        tail = stderr.read()[-3000:]
    if status == "ok" and process.returncode != 0:
        status = "failed"
    return WorkerResult(status, events, wall, tail if status == "failed" else "")


def _read_events(stream, events: list[dict]) -> None:
    for line in stream:
        if line.startswith(PREFIX):
            events.append(json.loads(line[len(PREFIX):]))


def _stop(process: subprocess.Popen) -> None:
    """Stop the worker's process group if it still runs: SIGTERM, then SIGKILL after 10 s."""
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
