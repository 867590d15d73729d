"""One run <-> one netCDF file, laid out as ArviZ InferenceData groups (see docs/run-file.md).

The file is the only contract between training and the dashboard. Writes are atomic (a hidden temp
file in the same folder, then ``os.replace``), so a reader never sees half a run; loads validate the
schema and name the problem and the fix when a file is corrupt, truncated, foreign or of another
schema version.

The root attributes are defined in core/schema.py: :func:`build_run` checks a caller's against it, and
the reader's defaults (:func:`run_attrs`), the listings (:class:`RunSummary`), :data:`REQUIRED_ATTRS`
and the app's details rows (:func:`detail_fields`) are derived from it. :func:`approximation` is the
one reader of a run's variational means and sds.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import mmap
import os
import re
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import xarray as xr

from . import schema, uncertainty
from .architecture import param_specs, spec_from_json
from .schema import detail_fields

__all__ = [
    "RUN_SUFFIX",
    "SCHEMA",
    "SCHEMA_VERSION",
    "RunFileError",
    "RunSummary",
    "approximation",
    "approximation_dataset",
    "build_run",
    "detail_fields",
    "is_point_estimate",
    "list_runs",
    "load_run",
    "members",
    "members_dataset",
    "remove_stale_temporaries",
    "run_attrs",
    "save_run",
    "upgrade_run",
]

SCHEMA = "bnn-mnist-run"
# 2: the ELBO is recorded on the full-data scale (version 1 held PyMC's loss, that / (n_train / batch_size))
# 3: the uncertainty measures of every test digit are stored (/uncertainty), so a reader needs no SciPy
# 4: the shift suite's figures (/shift, /shift_digits, /shift_sample: core.shift.evaluate_suite)
SCHEMA_VERSION = 4
RUN_SUFFIX = ".nc"
# netCDF4 (the netCDF-C library) opens a run 5x faster than h5netcdf: 0.1 s against 0.5 s
ENGINE = "netcdf4"
# what `bnn upgrade` changes in a file of each older version (the versions it can bring up to date)
UPGRADES = {
    1: "the ELBO on the full-data scale",
    2: "the stored uncertainty measures",
    3: "the shift suite, from the run's own predictive (minutes)",
}

# group -> variables every run must have (hyperprior draws are optional: fixed priors have none)
REQUIRED = {
    "optimization": ("elbo",),
    "predictions": ("label", "probability", "expected_entropy"),
    "predictions_constant_data": ("image", "true_label"),
    # the measures of the mean probabilities; those of the spread between draws are there when the
    # predictive has two draws or more (core.uncertainty.defined_measures), least_confidence in files
    # written since it was added
    "uncertainty": ("entropy",),
    "shift": ("n_digits", "accuracy", "nll", "ece", "brier", "measure_mean", "measure_quantile", "auroc_shift"),
    "shift_digits": ("entropy",),
    "shift_sample": ("image", "true", "character", "label", "foreign_digit"),
    "variational_mean": (),
    "variational_sd": (),
    "posterior": (),
}
# root attributes every run must have, besides schema and schema_version (core/schema.py defines them all)
REQUIRED_ATTRS = schema.required_names()
# the first bytes of a netCDF-4 (HDF5) file and of the classic netCDF formats
SIGNATURES = (b"\x89HDF\r\n\x1a\n", b"CDF\x01", b"CDF\x02", b"CDF\x05")

# save_run's temporary files: ".<run name>.<8 random characters>.tmp", as tempfile.mkstemp names them
TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")
# A run's temporary file is written from start to end in one go (seconds for the largest run), so its
# modification time keeps up with its writer; one left untouched this long belongs to a write that was
# killed (kill -9, a power cut) before it could remove it. The age decides, not the writer's pid: a pid
# says nothing about a folder shared between machines, and pids are reused.
STALE_TEMP_S = 600


class RunFileError(ValueError):
    """A run file that cannot be used: corrupt, truncated, foreign, or of another schema version."""


def _encoding(ds: xr.Dataset) -> dict:
    # zlib + shuffle: float32 weights shrink ~10%, labels and images several-fold
    return {name: {"zlib": True, "complevel": 4, "shuffle": True} for name in ds.data_vars if ds[name].ndim}


def build_run(
    *,
    attrs: dict,
    elbo: np.ndarray,
    means: dict[str, np.ndarray | xr.DataArray],
    sds: dict[str, np.ndarray | xr.DataArray],
    hyper_draws: dict[str, np.ndarray],
    labels: np.ndarray,
    probability: np.ndarray,
    expected_entropy: np.ndarray,
    images: np.ndarray,
    true_labels: np.ndarray,
    shift: dict[str, xr.Dataset],
    members: dict[str, np.ndarray] | None = None,
) -> xr.DataTree:
    """Assemble a run as a DataTree with the groups of docs/run-file.md. The uncertainty measures, and
    the ``auroc`` attribute (the chi-square's), are computed here from the predictions.

    attrs : the root attributes of core/schema.py that a caller gives (checked: no unknown one, none that
        the writer sets itself, none of the wrong type, every required one)
    elbo : (iteration,)   means, sds : tensor name -> values (see :func:`approximation_dataset`)
    hyper_draws : name -> (draw,)   labels : (draw, digit) predicted per draw
    probability : (digit, class) mean predictive   expected_entropy : (digit,)
    images : (digit, 28, 28) uint8   true_labels : (digit,)
    shift : the groups of :func:`core.shift.evaluate_suite` (``shift``, ``shift_digits``, ``shift_sample``)
    members : a point-estimate run's (``method`` ``map`` or ``ensemble``) networks: tensor name ->
        (member, ...) values, in ``/members``; ``means`` and ``sds`` are then empty
    """
    schema.check_attrs(attrs)
    n_draws, n_digits = labels.shape
    if probability.shape != (n_digits, 10) or len(true_labels) != n_digits or len(images) != n_digits:
        raise ValueError("labels, probability, images and true_labels disagree on the number of digits")
    digit = np.arange(n_digits)
    measures = uncertainty_group(labels, probability, expected_entropy, true_labels)
    root = xr.Dataset(attrs={
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION, **_netcdf_attrs(attrs),
        "auroc": measures[_listed_measure(measures)].attrs["auroc"],  # for listings
    })
    architecture = attrs["architecture"]
    dims = {p.name: p.dims for p in param_specs(spec_from_json(
        architecture if isinstance(architecture, str) else json.dumps(architecture)))}
    optimization = xr.Dataset(
        {"elbo": ("iteration", np.asarray(elbo, dtype=np.float32))},
        coords={"iteration": np.arange(1, len(elbo) + 1)},
    )
    posterior = xr.Dataset(
        {name: (("chain", "draw"), np.asarray(v, dtype=np.float32)[None, :]) for name, v in hyper_draws.items()},
    )
    if hyper_draws:
        posterior = posterior.assign_coords(chain=[0], draw=np.arange(len(next(iter(hyper_draws.values())))))
    predictions = xr.Dataset(
        {
            "label": (("chain", "draw", "digit"), labels[None].astype(np.int8)),
            "probability": (("digit", "class"), probability.astype(np.float32)),
            "expected_entropy": ("digit", expected_entropy.astype(np.float32)),
        },
        coords={"chain": [0], "draw": np.arange(n_draws), "digit": digit, "class": np.arange(10)},
    )
    constant = xr.Dataset(
        {"image": (("digit", "row", "col"), images.astype(np.uint8)),
         "true_label": ("digit", true_labels.astype(np.int8))},
        coords={"digit": digit},
    )
    return xr.DataTree.from_dict(
        {
            "/": root,
            "optimization": optimization,
            "posterior": posterior,
            "variational_mean": approximation_dataset(means, dims),
            "variational_sd": approximation_dataset(sds, dims),
            **({"members": members_dataset(members, dims)} if members else {}),
            "predictions": predictions,
            "predictions_constant_data": constant,
            "uncertainty": measures,
            **{group: shift[group] for group in SHIFT_GROUPS},
        }
    )


def _listed_measure(measures: xr.Dataset) -> str:
    """The measure whose AUROC a run's listing gives: the chi-square (the post's), else the entropy."""
    return "chi_square" if "chi_square" in measures else "entropy"


def approximation_dataset(values: dict[str, np.ndarray | xr.DataArray], dims: dict[str, tuple[str, ...]]) -> xr.Dataset:
    """``/variational_mean`` or ``/variational_sd`` from each tensor's values by name, as float32.

    A weight tensor (a name of ``dims``, the architecture's parameters) gets its dims; any other name is
    a hyperprior, a scalar on the log scale (attribute ``transform = "log"``). A DataArray is kept as it
    is (its dims and attributes), cast to float32.
    """
    variables = {}
    for name, value in values.items():
        if isinstance(value, xr.DataArray):
            variables[name] = value.astype(np.float32)
        elif name in dims:
            variables[name] = xr.DataArray(np.asarray(value, dtype=np.float32), dims=dims[name])
        elif np.ndim(value) == 0:
            variables[name] = xr.DataArray(np.float32(value), attrs={"transform": "log"})
        else:
            raise ValueError(f"{name!r}: neither a parameter of the architecture nor a scalar hyperprior")
    return xr.Dataset(variables)


def members_dataset(members: dict[str, np.ndarray], dims: dict[str, tuple[str, ...]]) -> xr.Dataset:
    """``/members``: each tensor of each network of a point-estimate run, (member, *its dims) float32."""
    return xr.Dataset({name: (("member", *dims[name]), np.asarray(v, dtype=np.float32)) for name, v in members.items()})


def is_point_estimate(run: xr.DataTree) -> bool:
    """Whether ``run`` holds networks (``/members``: a MAP fit or a deep ensemble), not an approximation."""
    return "members" in run.children


def members(run: xr.DataTree, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Each tensor's values in every network of a point-estimate run, by name: (member, ...), the
    inverse of :func:`members_dataset`. ``names``: only those tensors, in that order (default: all)."""
    group = run["members"]
    return {n: group[n].values for n in (group.data_vars if names is None else names)}


def approximation(run: xr.DataTree, names: Iterable[str] | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Each tensor's variational mean and sd by name, from a loaded run: the inverse of
    :func:`approximation_dataset`. Weights in their own shapes; hyperpriors (``dense_1.W_sd``) as
    scalars on the log scale. ``names``: only those tensors, in that order (default: all, as stored)."""
    mean, sd = run["variational_mean"], run["variational_sd"]
    names = list(mean.data_vars) if names is None else list(names)
    return {n: mean[n].values for n in names}, {n: sd[n].values for n in names}


POINT_METHODS = ("map", "ensemble")
"""The ``method`` of a run that holds networks in ``/members`` rather than a mean-field approximation."""

SHIFT_GROUPS = ("shift", "shift_digits", "shift_sample")


def shift_groups(run: xr.DataTree, progress=None) -> dict[str, xr.Dataset]:
    """The shift suite of a loaded run (:func:`core.shift.evaluate_suite`) with its own predictive:
    ``n_draws`` draws from its approximation, seeded by its ``seed``, on its stored test digits."""
    from .predict import run_probabilities
    from .shift import evaluate_suite

    n_draws, seed = int(run.attrs["n_draws"]), int(run.attrs["seed"])
    constant = run["predictions_constant_data"]
    return evaluate_suite(lambda x: run_probabilities(run, x, n_draws=n_draws, seed=seed),
                          constant["image"].values, constant["true_label"].values, progress)


def uncertainty_group(
    labels: np.ndarray, probability: np.ndarray, expected_entropy: np.ndarray, true_labels: np.ndarray
) -> xr.Dataset:
    """Every measure of :data:`core.uncertainty.MEASURES` defined for ``labels``' draws
    (:func:`core.uncertainty.defined_measures`) for every digit, each (digit,) float32 with its axis
    label (``long_name``) and the AUROC (``auroc``) of telling the misclassified digits (by the draws'
    modal label) from the others. Shapes as in :func:`build_run`."""
    is_error = uncertainty.mode_label(labels) != np.asarray(true_labels)
    variables = {}
    for name in uncertainty.defined_measures(len(labels)):
        label = uncertainty.MEASURES[name]
        values = uncertainty.measure(name, labels, probability, expected_entropy)
        variables[name] = xr.Variable(
            "digit", values.astype(np.float32), {"long_name": label, "auroc": uncertainty.auroc(values, is_error)}
        )
    return xr.Dataset(variables, coords={"digit": np.arange(len(is_error))})


def _netcdf_attrs(attrs: dict) -> dict:
    """netCDF attributes are scalars or strings: nested values are stored as JSON text."""
    out = {}
    for key, value in attrs.items():
        if value is None:
            continue
        if isinstance(value, (dict, list, tuple)):
            value = json.dumps(value)
        elif isinstance(value, (bool, np.bool_)):
            value = int(value)
        out[key] = value
    return out


def run_attrs(run: xr.DataTree, defaults: bool = False) -> dict:
    """The root attributes, with the JSON-encoded ones (``versions``, ``prior_params``...) decoded.

    ``defaults``: with what a file written before an attribute existed is taken to hold for it
    (core/schema.py: ``lr_floor`` 0, ``compile_time_s`` NaN...), where the file lacks it."""
    out = {key: schema.decode(key, value) for key, value in run.attrs.items()}
    return schema.defaults() | out if defaults else out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_run(run: xr.DataTree, path: str | os.PathLike) -> Path:
    """Write ``run`` to ``path`` atomically: readers see the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)  # see TEMP_NAME
    os.close(fd)
    try:
        encoding = {node.path: _encoding(node.dataset) for node in run.subtree if node.has_data}
        run.to_netcdf(tmp, engine=ENGINE, encoding=encoding)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes the file private; a run is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files of :func:`save_run` in ``folder`` that no write will finish (see
    :data:`STALE_TEMP_S`); returns those deleted."""
    removed = []
    for path in Path(folder).glob(".*.tmp"):
        try:
            if TEMP_NAME.fullmatch(path.name) and time.time() - path.stat().st_mtime > STALE_TEMP_S:
                path.unlink()
                removed.append(path)
        except OSError:  # renamed by its writer, deleted by another cleaner, or a folder we may not write in
            continue
    return removed


def _unreadable(path: Path, exc: Exception) -> RunFileError:
    """Why netCDF could not read ``path``: a run of ours that is damaged (it holds the schema marker),
    which is to be made anew, or some other file, which is not ours to advise deleting."""
    why = f"{type(exc).__name__}: {exc}"
    try:
        with open(path, "rb") as fh:
            if not fh.read(8).startswith(SIGNATURES):
                return RunFileError(f"{path.name}: not a run file (neither netCDF nor HDF5); "
                                    "give a run file that `bnn train` wrote")
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
                ours = data.find(SCHEMA.encode()) >= 0
    except OSError as err:
        return RunFileError(f"{path.name}: cannot be read ({err.strerror}); check its permissions")
    if ours:
        return RunFileError(
            f"{path.name}: a damaged run file, corrupt or truncated ({why}); delete it and run its `bnn train` "
            "command again (with --resume it continues from its checkpoint, if this machine has one)"
        )
    return RunFileError(f"{path.name}: not a run file (a netCDF/HDF5 file that cannot be read, corrupt or "
                        f"truncated: {why}); give a run file that `bnn train` wrote")


def _read(path: Path) -> xr.DataTree:
    if path.is_dir():
        raise RunFileError(f"{path}: a folder, not a run file; `bnn list {path}` lists the runs in it")
    if not path.exists():
        raise RunFileError(f"{path}: not found; `bnn list FOLDER` lists the runs in a folder")
    try:
        with xr.open_datatree(path, engine=ENGINE) as tree:
            return tree.load()
    except Exception as exc:  # netCDF-C raises OSError, xarray ValueError, KeyError... on damaged files
        raise _unreadable(path, exc) from exc


def load_run(path: str | os.PathLike) -> xr.DataTree:
    """Read a run into memory and validate it.

    Raises
    ------
    RunFileError
        The file is missing, is not a run of this program, is a damaged one, lacks a group or
        variable, or has a schema version other than :data:`SCHEMA_VERSION`.
    """
    path = Path(path)
    run = _read(path)
    validate(run, path.name)
    return run


def upgrade_run(path: str | os.PathLike, progress=None) -> bool:
    """Bring a run file of an older version (a key of :data:`UPGRADES`) to :data:`SCHEMA_VERSION` in place,
    atomically. Returns False when the file is already current.

    1 -> 2: the ELBO history and ``final_elbo`` times ``n_train / batch_size``.
    2 -> 3: the ``uncertainty`` group, computed from the stored predictions.
    3 -> 4: the shift suite's groups, computed with the run's predictive (``n_draws`` draws, its seed);
    ``progress(done, total, name)`` is called after each of its sets.
    """
    path = Path(path)
    run = _read(path)
    version = _version(run.attrs)
    if version not in UPGRADES:
        validate(run, path.name)  # current (False below), or the message for that version
        return False
    if version < 2:
        scale = float(run.attrs["n_train"]) / float(run.attrs["batch_size"])
        elbo = run["optimization"]["elbo"]
        run["optimization"]["elbo"] = (elbo.astype(np.float64) * scale).astype(np.float32)
        if "final_elbo" in run.attrs:
            run.attrs["final_elbo"] = float(run.attrs["final_elbo"]) * scale
    if version < 3:
        predictions = run["predictions"]
        run["uncertainty"] = xr.DataTree(
            uncertainty_group(
                predictions["label"].values.reshape(-1, predictions.sizes["digit"]),
                predictions["probability"].values,
                predictions["expected_entropy"].values,
                run["predictions_constant_data"]["true_label"].values,
            )
        )
    if version < 4:
        for group, data in shift_groups(run, progress).items():
            run[group] = xr.DataTree(data)
    run.attrs["schema_version"] = SCHEMA_VERSION
    validate(run, path.name)
    save_run(run, path)
    return True


def _version(attrs) -> int:
    return int(np.ravel(attrs.get("schema_version", -1))[0])


def validate(run: xr.DataTree, name: str = "run") -> None:
    """Raise :class:`RunFileError` unless ``run`` follows schema :data:`SCHEMA_VERSION`."""
    _check_layout(run.attrs, {group: set(run[group].data_vars) for group in run.children}, name)


def _check_layout(attrs, variables: dict[str, set[str]], name: str) -> None:
    """The schema check of :func:`validate`, on root ``attrs`` and the variable names of each group."""
    if attrs.get("schema") != SCHEMA:
        raise RunFileError(f"{name}: not a run file (a netCDF file, but not a {SCHEMA} file: no schema attribute "
                           f"'{SCHEMA}'); give a run file that `bnn train` wrote")
    version = _version(attrs)
    if version > SCHEMA_VERSION:
        raise RunFileError(
            f"{name}: schema version {version} is newer than this program's ({SCHEMA_VERSION}); upgrade bnn-mnist."
        )
    if version in UPGRADES:
        changes = ", ".join(what for v, what in UPGRADES.items() if v >= version)
        raise RunFileError(
            f"{name}: schema version {version} is older than this program's ({SCHEMA_VERSION}); "
            f"`bnn upgrade {name}` brings it up to date in place ({changes}; nothing else changes)."
        )
    if version < SCHEMA_VERSION:
        raise RunFileError(
            f"{name}: schema version {version} is older than this program's ({SCHEMA_VERSION}); "
            f"re-create it with `bnn train`."
        )
    missing = [key for key in schema.required_names() if key not in attrs]
    for group, required in REQUIRED.items():
        if group not in variables:
            missing.append(f"group /{group}")
        else:
            missing += [f"/{group}/{v}" for v in required if v not in variables[group]]
    if attrs.get("method", "advi") in POINT_METHODS and "members" not in variables:
        missing.append("group /members (the networks of a point-estimate run)")
    if not missing and variables["variational_mean"] != variables["variational_sd"]:
        missing.append("matching variables in /variational_mean and /variational_sd")
    if missing:
        raise RunFileError(f"{name}: incomplete run file, missing {', '.join(missing)}")


def _read_header(path: Path) -> tuple[dict, dict[str, set[str]]]:
    """Root attributes and each group's variable names (not its dimensions' coordinates), read
    without loading any array: listing a folder needs only this."""
    import netCDF4

    def scalar(value):
        if isinstance(value, np.ndarray) and value.size == 1:
            return value.item()
        return value.item() if isinstance(value, np.generic) else value

    try:
        with netCDF4.Dataset(path, "r") as f:
            attrs = {key: scalar(f.getncattr(key)) for key in f.ncattrs()}
            variables = {name: set(group.variables) - set(group.dimensions) for name, group in f.groups.items()}
    except Exception as exc:  # netCDF-C raises OSError, KeyError... on damaged files
        raise _unreadable(path, exc) from exc
    return attrs, variables


@functools.lru_cache
def _summary_class(fields: tuple[schema.Field, ...]) -> type:
    """A listing's row: ``name``, ``path``, the fields of core/schema.py that have a ``summary`` name,
    and ``error``. Made from the definition, once per definition."""
    return dataclasses.make_dataclass(
        "RunSummary",
        [("name", str), ("path", Path),
         *[(f.summary, f.type, dataclasses.field(default=f.blank)) for f in fields],
         ("error", str, dataclasses.field(default=""))],
        frozen=True,
        module=__name__,
        namespace={"__doc__": "One row of a run listing; ``error`` is set (and the rest may be empty) for an "
                              "unusable file. Its fields are those of core/schema.py with a ``summary`` name."},
    )


RunSummary = _summary_class(schema.summary_fields())


def summarize(path: Path) -> RunSummary:
    """Read only the root attributes and the layout of a run file (cheap) and validate its schema."""
    fields = schema.summary_fields()
    summary = _summary_class(fields)
    try:
        attrs, variables = _read_header(path)
        _check_layout(attrs, variables, path.name)
    except RunFileError as exc:
        return summary(path.stem, path, error=str(exc))
    values = {f.summary: f.type(attrs[f.name]) if f.name in attrs else f.blank for f in fields}
    return summary(name=path.stem, path=path, **values)


def list_runs(folder: str | os.PathLike) -> list[RunSummary]:
    """Summaries of the ``*.nc`` runs in ``folder`` (not recursive; hidden temp files skipped), by name."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return [summarize(p) for p in sorted(folder.glob(f"[!.]*{RUN_SUFFIX}"))]
