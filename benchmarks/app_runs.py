"""The runs the app benchmarks serve: ``cached_traces/``, or synthetic runs if it holds none."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from benchmarks.workloads import SHIPPED_RUNS

__all__ = ["Runs"]


class Runs:
    """The folder served: ``folder`` if it holds runs, else synthetic runs in a temporary folder.

    Synthetic runs (:func:`core.synthetic.synthetic_run`) are small networks over 10,000 random
    "digits", so the inspector's work is lighter than a real run's.
    """

    def __init__(self, folder: Path | None) -> None:
        folder = folder or SHIPPED_RUNS
        self._tmp = None
        if any(folder.glob("[!.]*.nc")):
            self.folder, self.kind = folder, f"runs in {folder}"
        else:
            from core import store
            from core.synthetic import synthetic_run

            self._tmp = tempfile.TemporaryDirectory(prefix="bnn-bench-runs-")
            self.folder = Path(self._tmp.name)
            for model, prior in (("cnn", "normal"), ("mlp", "hierarchical")):
                store.save_run(synthetic_run(model, prior, n_digits=10_000, seed=0), self.folder / f"{model}-synthetic.nc")
            self.kind = f"synthetic runs (core/synthetic.py, 10,000 digits; {folder} holds no run)"
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
        """Remove the synthetic runs, if any."""
        if self._tmp:
            self._tmp.cleanup()
