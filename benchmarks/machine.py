"""What the figures were measured on: CPU, cores, memory, load, library versions, commit and date.

Load averages are part of the result: on a shared machine they say how far two results compare.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import shutil
import subprocess
from datetime import UTC, datetime

from benchmarks.workloads import ROOT

__all__ = ["describe", "load_average"]

PACKAGES = ("pymc", "pytensor", "jax", "jaxlib", "numpyro", "numpy", "scipy", "xarray", "panel", "bokeh",
            "holoviews", "playwright", "psutil")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            return next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        import psutil

        return round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        return None


def _git(*args: str) -> str | None:
    """Output of a read-only git command in the repository, or None outside a checkout."""
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def _gpu() -> str:
    if shutil.which("nvidia-smi") is None:
        return "not available"
    out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True,
                         timeout=30, check=False)
    return out.stdout.strip() or "not available"


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def describe() -> dict:
    versions = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            pass
    status = _git("status", "--porcelain")
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "memory_gib": _memory_gib(),
        "load_average": load_average(),
        "gpu": _gpu(),
        "platform": platform.platform(),
        "versions": versions,
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
    }
