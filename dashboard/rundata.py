"""Per-run data the views need, computed once per run file and shared by every session.

A run is loaded through ``pn.cache`` keyed by its path and modification time, so all sessions
share one copy and a re-written file is read again. What every view needs from the stored arrays
(modal labels) is derived at load time, once, and the uncertainty measures and their AUROCs are read
as stored, so switching runs or measures in a session costs no recomputation. What one view needs
(a tensor's weight histograms, a digit's fresh predictive draws) is computed the first time it is
asked for and cached per loaded run.

The folder's default run is named in :data:`DEFAULT_RUN_FILE`, else it is the most accurate run.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import panel as pn
import xarray as xr

from core import calibration, predict, store, uncertainty
from core.architecture import param_specs, spec_from_json

from . import stats

__all__ = [
    "DEFAULT_RUN_FILE",
    "RunData",
    "default_run",
    "different_digits",
    "gallery_order",
    "image_probabilities",
    "inspector_probabilities",
    "list_runs",
    "load_run_data",
    "run_data",
    "weight_summary",
]

DEFAULT_RUN_FILE = "default-run.txt"
"""A text file in the runs folder holding the name of the run the app opens on (e.g. ``cnn-hierarchical``)."""
DEFAULT_RUN_MAX_BYTES = 1000  # a run name is short; the file is read no further


@dataclass(frozen=True, eq=False)
class RunData:
    """One loaded run and what the views derive from it. Arrays are read-only by convention.

    images : (digit, 28, 28) uint8   true, predicted : (digit,)   labels : (draw, digit)
    correct : (digit,) bool   measures : measure name -> (digit,)   auroc : measure name -> float
    hyperpriors : ``{layer}.{tensor}_sd`` -> (draw,)   tensors : the weight tensors' names
    ``{layer}.{tensor}`` in layer order, W before b (their values: :func:`weight_summary`)
    reliability, calibration : the mean predictive's confidence bins and figures (core.calibration)
    shift, shift_digits, shift_sample : the run file's shift-suite groups (core.shift.evaluate_suite)
    """

    name: str
    path: Path
    mtime_ns: int
    run: xr.DataTree = field(repr=False)
    attrs: dict
    layers: tuple[str, ...]
    elbo: xr.DataArray = field(repr=False)
    hyperpriors: dict[str, np.ndarray] = field(repr=False)
    tensors: tuple[str, ...] = field(repr=False)
    images: np.ndarray = field(repr=False)
    true: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    predicted: np.ndarray = field(repr=False)
    correct: np.ndarray = field(repr=False)
    measures: dict[str, np.ndarray] = field(repr=False)
    auroc: dict[str, float]
    reliability: calibration.Reliability = field(repr=False)
    calibration: dict[str, float] = field(repr=False)
    shift: xr.Dataset = field(repr=False)
    shift_digits: xr.Dataset = field(repr=False)
    shift_sample: xr.Dataset = field(repr=False)

    @property
    def n_digits(self) -> int:
        return len(self.true)

    @property
    def n_draws(self) -> int:
        return self.labels.shape[0]

    @property
    def hierarchical(self) -> bool:
        return bool(self.hyperpriors)

    @property
    def method(self) -> str:
        """``advi``, ``map`` or ``ensemble`` (core/schema.py)."""
        return str(self.attrs.get("method", "advi"))

    @property
    def point_estimate(self) -> bool:
        """Networks (a MAP fit, a deep ensemble) rather than a posterior approximation."""
        return store.is_point_estimate(self.run)

    @property
    def objective(self) -> str:
        """What ``elbo`` holds: the ELBO of an approximation, or a point estimate's log posterior density."""
        return "log posterior" if self.point_estimate else "ELBO"

    def ranking_measure(self, measure: str) -> str:
        """``measure`` if the run has it, else the predictive entropy, which every run has."""
        return measure if measure in self.measures else "entropy"

    def measure_absent(self, measure: str) -> str:
        """Why the run has no ``measure`` (a sentence), or "" when it has it."""
        if measure in self.measures:
            return ""
        if measure in uncertainty.SPREAD_MEASURES and self.n_draws == 1:
            return (f"{uncertainty.MEASURES[measure]} is not defined for {self.name}: a single network "
                    f"({self.method.upper()}) has no spread between draws. Its entropy and least confidence are.")
        return (f"{uncertainty.MEASURES[measure]} is not stored in {self.name}: the file was written before this "
                "measure existed (`bnn evaluate` on it adds it).")

    def layer_tensors(self, layer: str) -> tuple[str, ...]:
        """The names of the weight tensors of ``layer`` (``dense_1.W``, ``dense_1.b``); () if it has no such layer."""
        return tuple(name for name in self.tensors if name.split(".")[0] == layer)


def _derive(path: Path, mtime_ns: int, run: xr.DataTree) -> RunData:
    attrs = store.run_attrs(run)
    spec = spec_from_json(run.attrs["architecture"])
    params = param_specs(spec)
    predictions = run["predictions"]
    labels = predictions["label"].values.reshape(-1, predictions.sizes["digit"])  # chains stacked into draws
    true = run["predictions_constant_data"]["true_label"].values.astype(np.int64)
    predicted = uncertainty.mode_label(labels)
    stored = run["uncertainty"]
    # the measures the run defines (a single network has no spread between draws), in MEASURES' order
    measures = {name: stored[name].values for name in uncertainty.MEASURES if name in stored.data_vars}
    posterior = run["posterior"]
    return RunData(
        name=path.stem,
        path=path,
        mtime_ns=mtime_ns,
        run=run,
        attrs=attrs,
        layers=tuple(dict.fromkeys(p.layer for p in params)),
        elbo=run["optimization"]["elbo"],
        # hyperpriors in layer order, W before b, like the parameters they scale
        hyperpriors={
            f"{p.name}_sd": posterior[f"{p.name}_sd"].values.ravel()
            for p in params
            if f"{p.name}_sd" in posterior.data_vars
        },
        tensors=tuple(p.name for p in params),
        images=run["predictions_constant_data"]["image"].values,
        true=true,
        labels=labels,
        predicted=predicted,
        correct=predicted == true,
        measures=measures,
        auroc={name: float(stored[name].attrs["auroc"]) for name in measures},
        reliability=calibration.reliability(predictions["probability"].values, true),
        calibration=calibration.calibration_summary(predictions["probability"].values, true),
        shift=run["shift"].to_dataset(),
        shift_digits=run["shift_digits"].to_dataset(),
        shift_sample=run["shift_sample"].to_dataset(),
    )


INSPECTOR_DRAWS = 100  # fresh posterior draws behind the digit inspector's charts


@pn.cache(max_items=8)
def load_run_data(path: str, mtime_ns: int) -> RunData:
    """Load and derive a run; cached across sessions by ``(path, mtime_ns)``.

    Raises :class:`core.store.RunFileError` for an unusable file (not cached, so a fixed file loads).
    """
    data = _derive(Path(path), mtime_ns, store.load_run(path))
    # A process's first prediction for a network is slower (first BLAS calls, fresh memory: 0.25 s
    # against 0.04 s for the CNN): pay that beside the page's start, not on the first digit clicked.
    threading.Thread(
        target=predict.run_probabilities,
        args=(data.run, data.images[:1]),
        kwargs={"n_draws": INSPECTOR_DRAWS, "seed": 0},
        name=f"warm-up {data.name}",
        daemon=True,
    ).start()
    return data


def run_data(path: Path) -> RunData:
    """The cached :class:`RunData` of the run file at ``path``, re-read if the file changed.

    Raises :class:`core.store.RunFileError` for an unusable or vanished file.
    """
    try:
        mtime_ns = os.stat(path).st_mtime_ns
    except FileNotFoundError as exc:
        raise store.RunFileError(f"{Path(path).name}: the file is gone; reload the page for the current list") from exc
    return load_run_data(str(path), mtime_ns)


@pn.cache(max_items=4)
def _list_runs(folder: str, listing: tuple[tuple[str, int, int], ...]) -> list[store.RunSummary]:
    return store.list_runs(folder)


def list_runs(folder: Path) -> list[store.RunSummary]:
    """``core.store.list_runs(folder)``, cached until a file in the folder is added, removed or changed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    listing = []
    for path in folder.glob(f"*{store.RUN_SUFFIX}"):
        try:
            stat = path.stat()
        except FileNotFoundError:  # removed while listing
            continue
        listing.append((path.name, stat.st_mtime_ns, stat.st_size))
    return _list_runs(str(folder), tuple(sorted(listing)))


def gallery_order(
    data: RunData, measure: str, reverse: bool = False, cell: tuple[int, int] | None = None
) -> np.ndarray:
    """Digits for the gallery, most uncertain under ``measure`` (:meth:`RunData.ranking_measure`) first
    (least uncertain first if ``reverse``).

    Without ``cell`` these are the misclassified digits; with ``cell = (true, predicted)`` the
    digits of that confusion-matrix cell (right or wrong). Ties keep digit order. Returns (n,) indices.
    """
    if cell is None:
        digits = np.flatnonzero(~data.correct)
    else:
        digits = np.flatnonzero((data.true == cell[0]) & (data.predicted == cell[1]))
    values = data.measures[data.ranking_measure(measure)][digits]
    order = np.argsort(values if reverse else -values, kind="stable")
    return digits[order]


@functools.lru_cache(maxsize=512)
def _probabilities(data: RunData, pixels: bytes, n_draws: int, seed: int) -> np.ndarray:
    # from the loaded run, never from its file again: a file damaged or replaced while the app serves
    # must not break the page of a session that opened it intact
    image = np.frombuffer(pixels, dtype=np.uint8).reshape(1, 28, 28)
    probs = predict.run_probabilities(data.run, image, n_draws=n_draws, seed=seed)[:, 0]
    probs.setflags(write=False)
    return probs


def image_probabilities(data: RunData, image: np.ndarray, n_draws: int = INSPECTOR_DRAWS, seed: int = 0) -> np.ndarray:
    """Class probabilities of one image, (28, 28) uint8, under ``n_draws`` fresh draws (seeded by ``seed``)
    from the run's approximation. Returns (draw, class).

    Cached per loaded run (``RunData`` hashes by identity, and every session shares the one
    ``load_run_data`` gives), pixels, draws and seed: an image seen again, or by another session, is
    computed once.
    """
    image = np.ascontiguousarray(image, dtype=np.uint8)
    if image.shape != (28, 28):
        raise ValueError(f"image: expected (28, 28) uint8, got shape {image.shape}")
    return _probabilities(data, image.tobytes(), int(n_draws), int(seed))


def inspector_probabilities(data: RunData, digit: int, n_draws: int = INSPECTOR_DRAWS) -> np.ndarray:
    """Class probabilities of test digit ``digit`` under ``n_draws`` fresh draws from the run's approximation,
    seeded by the digit, so reproducible (:func:`image_probabilities`). Returns (draw, class)."""
    return image_probabilities(data, data.images[int(digit)], n_draws, seed=int(digit))


@functools.lru_cache(maxsize=64)
def weight_summary(data: RunData, name: str) -> stats.WeightSummary:
    """Histograms of all the weights of tensor ``name`` (``dense_1.W``) of a loaded run, and a sample for a
    scatter plot (see :func:`dashboard.stats.weight_summary`). Computed the first time a session asks,
    then shared: 1.3 million weights take a fraction of a second once, and their histograms a few
    hundred numbers. A point-estimate run's are its networks' values: their mean over the members and
    their sd across them (zero for a MAP fit, one network)."""
    if data.point_estimate:
        (values,) = store.members(data.run, [name]).values()
        return stats.weight_summary(values.mean(axis=0), values.std(axis=0))
    return stats.weight_summary(data.run["variational_mean"][name].values, data.run["variational_sd"][name].values)


@functools.lru_cache(maxsize=64)
def different_digits(a: RunData, b: RunData) -> str | None:
    """Why runs ``a`` and ``b`` were not tested on the same digits (a sentence naming the runs), or None
    when they were: the same number of test digits, the same labels and the same images, in order."""
    if a.n_digits != b.n_digits:
        return f"{a.name} was tested on {a.n_digits:,} digits and {b.name} on {b.n_digits:,}"
    mismatched = int(np.count_nonzero(a.true != b.true))
    if mismatched:
        return f"the test labels of {a.name} and {b.name} differ at {mismatched:,} of the {a.n_digits:,} digits"
    if not np.array_equal(a.images, b.images):
        return f"the test images of {a.name} and {b.name} differ"
    return None


def default_run(folder: Path, summaries: Sequence[store.RunSummary]) -> tuple[str | None, str]:
    """The run to open first among the usable runs of ``summaries``, and a notice ("" if none).

    The run named in ``folder/default-run.txt`` (:data:`DEFAULT_RUN_FILE`: a name, not a path, read
    as text and matched exactly against the listing), else the most accurate run (ties: the first by
    name). A file naming no usable run is ignored with a notice. (None, "") for no usable run.
    """
    usable = [s for s in summaries if not s.error]
    if not usable:
        return None, ""
    best = max(usable, key=lambda s: s.accuracy if np.isfinite(s.accuracy) else -np.inf).name
    path = Path(folder) / DEFAULT_RUN_FILE
    if not path.is_file():  # absent (or a folder, a pipe...: nothing to read a name from)
        return best, ""
    try:
        with open(path, "rb") as fh:
            named = fh.read(DEFAULT_RUN_MAX_BYTES).decode("utf-8", errors="replace").strip()
    except OSError as exc:
        return best, f"{DEFAULT_RUN_FILE} cannot be read ({exc.strerror}); showing the most accurate run, {best}."
    if named in {s.name for s in usable}:
        return named, ""
    return best, (f"{DEFAULT_RUN_FILE} names {named!r}, which is not a usable run of this folder; "
                  f"showing the most accurate run, {best}.")
