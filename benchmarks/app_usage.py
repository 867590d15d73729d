"""What the served app uses of the machine: resident memory and CPU time of its process and children."""

from __future__ import annotations

from dashboard.serving import ServedApp

__all__ = ["cpu_s", "rss_mb"]


def _processes(app: ServedApp) -> list:
    import psutil

    process = psutil.Process(app.process.pid)
    return [process, *process.children(recursive=True)]


def rss_mb(app: ServedApp) -> float:
    """Resident memory of the server, MiB; NaN once it has exited."""
    import psutil

    try:
        return sum(p.memory_info().rss for p in _processes(app)) / 2**20
    except psutil.NoSuchProcess:
        return float("nan")


def cpu_s(app: ServedApp) -> float:
    """CPU seconds the server has used so far: beside wall time, it tells whether the server (one
    Python process) or the machine's other work (the browsers, say) holds a session up."""
    return sum(sum(p.cpu_times()[:2]) for p in _processes(app))
