"""Per-run data the views need, computed once per run file and shared by every session.

A run is loaded through ``pn.cache`` keyed by its path and modification time, so all sessions
share one copy and a re-written file is read again. What the views derive from the stored arrays
(modal labels, weight samples) is computed at load time, once, and the uncertainty measures and
their AUROCs are read as stored, so switching runs or measures in a session costs no recomputation.
"""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import panel as pn
import xarray as xr

from core import predict, store, uncertainty
from core.architecture import param_specs, spec_from_json

from . import plots
from .text import literal

__all__ = [
    "RunData",
    "fixed_prior_note",
    "gallery_order",
    "inspector_probabilities",
    "list_runs",
    "load_run_data",
    "run_data",
]

WEIGHT_SAMPLE = 50_000  # weights per tensor kept for the weight histograms


@dataclass(frozen=True, eq=False)
class RunData:
    """One loaded run and what the views derive from it. Arrays are read-only by convention.

    images : (digit, 28, 28) uint8   true, predicted : (digit,)   labels : (draw, digit)
    correct : (digit,) bool   measures : measure name -> (digit,)   auroc : measure name -> float
    hyperpriors : ``{layer}.{tensor}_sd`` -> (draw,)   weights : ``{layer}.{tensor}`` -> (mean, sd), each (n,)
    """

    name: str
    path: Path
    mtime_ns: int
    run: xr.DataTree = field(repr=False)
    attrs: dict
    layers: tuple[str, ...]
    elbo: xr.DataArray = field(repr=False)
    hyperpriors: dict[str, np.ndarray] = field(repr=False)
    weights: dict[str, tuple[np.ndarray, np.ndarray]] = field(repr=False)
    images: np.ndarray = field(repr=False)
    true: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    predicted: np.ndarray = field(repr=False)
    correct: np.ndarray = field(repr=False)
    measures: dict[str, np.ndarray] = field(repr=False)
    auroc: dict[str, float]

    @property
    def n_digits(self) -> int:
        return len(self.true)

    @property
    def n_draws(self) -> int:
        return self.labels.shape[0]

    @property
    def hierarchical(self) -> bool:
        return bool(self.hyperpriors)


def _derive(path: Path, mtime_ns: int, run: xr.DataTree) -> RunData:
    attrs = store.run_attrs(run)
    spec = spec_from_json(run.attrs["architecture"])
    params = param_specs(spec)
    predictions = run["predictions"]
    labels = predictions["label"].values.reshape(-1, predictions.sizes["digit"])  # chains stacked into draws
    true = run["predictions_constant_data"]["true_label"].values.astype(np.int64)
    predicted = uncertainty.mode_label(labels)
    stored = run["uncertainty"]
    measures = {name: stored[name].values for name in uncertainty.MEASURES}
    mean, sd = run["variational_mean"], run["variational_sd"]
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
        weights={p.name: plots.weight_sample(mean[p.name].values, sd[p.name].values, WEIGHT_SAMPLE) for p in params},
        images=run["predictions_constant_data"]["image"].values,
        true=true,
        labels=labels,
        predicted=predicted,
        correct=predicted == true,
        measures=measures,
        auroc={name: float(stored[name].attrs["auroc"]) for name in uncertainty.MEASURES},
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
    """Digits for the gallery, most uncertain under ``measure`` first (least uncertain first if ``reverse``).

    Without ``cell`` these are the misclassified digits; with ``cell = (true, predicted)`` the
    digits of that confusion-matrix cell (right or wrong). Ties keep digit order. Returns (n,) indices.
    """
    if cell is None:
        digits = np.flatnonzero(~data.correct)
    else:
        digits = np.flatnonzero((data.true == cell[0]) & (data.predicted == cell[1]))
    values = data.measures[measure][digits]
    order = np.argsort(values if reverse else -values, kind="stable")
    return digits[order]


@functools.lru_cache(maxsize=512)
def _probabilities(data: RunData, digit: int, n_draws: int) -> np.ndarray:
    # from the loaded run, never from its file again: a file damaged or replaced while the app serves
    # must not break the page of a session that opened it intact
    probs = predict.run_probabilities(data.run, data.images[digit][None], n_draws=n_draws, seed=digit)[:, 0]
    probs.setflags(write=False)
    return probs


def inspector_probabilities(data: RunData, digit: int, n_draws: int = INSPECTOR_DRAWS) -> np.ndarray:
    """Class probabilities of one digit under ``n_draws`` fresh draws from the run's approximation.

    Returns (draw, class). Cached per loaded run (``RunData`` hashes by identity, and every session
    shares the one ``load_run_data`` gives) and digit, so a digit revisited, or opened by several
    sessions, is computed once; seeded by the digit, so it is reproducible.
    """
    return _probabilities(data, int(digit), n_draws)


_PRIOR_FORMS = {
    "normal": "every weight ~ N(0, sd²)",
    "mixture": "every weight ~ pi N(0, sigma1²) + (1 - pi) N(0, sigma2²)",
}


def fixed_prior_note(data: RunData) -> str | None:
    """For a run without hyperprior draws, a Markdown sentence giving its prior and fixed parameters
    (the file's values as literal text); else None."""
    if data.hierarchical:
        return None
    prior = data.attrs.get("prior", "unknown")
    params = data.attrs.get("prior_params") or {}
    if isinstance(params, dict):
        values = ", ".join(
            f"{literal(key)} = {value:.4g}" if isinstance(value, float) else f"{literal(key)} = {literal(value)}"
            for key, value in params.items()
        )
    else:
        values = literal(params)
    form = _PRIOR_FORMS.get(prior, "")
    return (
        f"This run's prior is **{literal(prior)}**{f' ({form})' if form else ''} with fixed parameters: "
        f"{values or 'none recorded'}. There is no hyperprior: nothing to show here."
    )
