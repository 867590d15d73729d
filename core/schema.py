"""The run file's root attributes, defined once: name, type, meaning, the app's label, whether every
file has it, and what a file without it means.

Everything else about the attributes is derived from :data:`FIELDS`: what ``core.store.build_run``
accepts and checks, ``core.store.REQUIRED_ATTRS`` and the validation of a loaded file, the defaults
a reader assumes for files written before a field existed, ``core.store.RunSummary`` (a listing's
row), the rows of the app's details table (:func:`detail_fields`), and the attribute table of
docs/run-file.md (:func:`markdown_table`, checked by tests/test_schema.py; ``python -m core.schema``
prints it).

This module imports nothing heavy: the dashboard reads it through ``core.store``.

Adding an optional field is one :class:`Field` here (and ``bnn train`` writing it, in
``core.runs.run_attributes``); it does not change the schema version. A required one does (see
docs/run-file.md, Versioning).
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass

__all__ = ["ABSENT", "FIELDS", "Field", "check_attrs", "decode", "defaults", "detail_fields", "field_named",
           "markdown_table", "required_names", "summary_fields"]


class _Absent:
    """No default: a reader has nothing to assume for a file without the field."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()

# how each type is written in docs/run-file.md; dicts and lists are stored as JSON text
_TYPE_NAMES = {str: "str", int: "int", float: "float", dict: "JSON", list: "JSON"}


@dataclass(frozen=True)
class Field:
    """One root attribute of the run file.

    type      str, int, float, or dict / list (stored as JSON text, decoded by ``core.store.run_attrs``)
    meaning   what it holds, as docs/run-file.md says it (Markdown)
    label     its row in the app's details table; "" keeps it out of the table
    required  every valid file has it (a missing one makes the file invalid)
    default   what a reader takes for a file without it: the setting such files were made with, or
              NaN / "" for "not recorded"; :data:`ABSENT` when there is nothing to assume
    summary   its name in ``core.store.RunSummary`` (a listing's row); "" keeps it out of listings
    computed  set by the writer (``core.store.build_run``), never by a caller
    """

    name: str
    type: type
    meaning: str
    label: str = ""
    required: bool = False
    default: object = ABSENT
    summary: str = ""
    computed: bool = False

    def __post_init__(self):
        if self.type not in _TYPE_NAMES:
            raise ValueError(f"field {self.name!r}: type must be one of {', '.join(t.__name__ for t in _TYPE_NAMES)}")
        if self.summary and self.type not in (str, int, float):
            raise ValueError(f"field {self.name!r}: a listing holds str, int or float, not {self.type.__name__}")

    @property
    def json(self) -> bool:
        return self.type in (dict, list)

    @property
    def blank(self) -> object:
        """A listing's value when the file gives none: the default, else "", 0 or NaN by type."""
        if self.default is not ABSENT:
            return self.default
        return {str: "", int: 0, float: math.nan}[self.type]


_NAN = math.nan

FIELDS: tuple[Field, ...] = (
    Field("schema", str, "always `bnn-mnist-run`: tells a run from other netCDF files", required=True, computed=True),
    Field("schema_version", int, "`4`; a loader refuses other versions with a message saying what to do "
          "(`bnn upgrade` brings a file of version 1, 2 or 3 to 4)", required=True, computed=True),
    Field("model", str, "`mlp` or `cnn`", "Model", required=True, summary="model"),
    Field("prior", str, "`normal`, `hierarchical` or `mixture`", "Prior", required=True, summary="prior"),
    Field("method", str, "how the weights were fitted: `advi` (mean-field ADVI), `map` (the posterior's mode: one "
          "network) or `ensemble` (a deep ensemble of MAP fits from different seeds); a file without it is `advi`",
          "Method", default="advi", summary="method"),
    Field("members", int, "`map` and `ensemble`: the networks in `/members` (1 for `map`); the predictive's draws",
          "Networks"),
    Field("prior_params", dict, 'the prior\'s parameters, e.g. `{"sd": 0.1}`, `{"hyper_sd": 1.0}`, '
          '`{"pi": 0.5, "sigma1": 1.0, "sigma2": 0.0025}`', "Prior parameters"),
    Field("architecture", list, "list of layers `{name, kind, size, kernel, nonlinearity}` (see "
          "`core/architecture.py`)", required=True),
    Field("label", str, "free text shown in the app, e.g. `start: post's N(0, 1)`", "Label", default="",
          summary="label"),
    Field("iterations", int, "steps run (of each member, for an ensemble), those of every part of a resumed run",
          "Iterations",
          required=True, summary="iterations"),
    Field("batch_size", int, "mini-batch size", "Batch size"),
    Field("n_train", int, "training digits: the likelihood's `total_size`", "Training digits"),
    Field("optimizer", str, "`adam` or `adagrad_window`", "Optimizer"),
    Field("learning_rate", float, "the (peak) step size, e.g. `0.005`", "Learning rate"),
    Field("epsilon", float, "the optimizer's epsilon (`--preset blog`: 1.0); absent: the optimizer's own default"),
    Field("lr_schedule", str, "`cosine` or `constant`", "Schedule"),
    Field("lr_floor", float, "cosine: where the decay ends, a fraction of `learning_rate`; a file without it was "
          "made with 0 (a cosine to 0)", "Step-size floor (of the peak)", default=0.0),
    Field("lr_hold", float, "cosine: the fraction of iterations held at the floor at the end; a file without it was "
          "made with 0", "Held at the floor (of iterations)", default=0.0),
    Field("start", str, "start of the variational means: `glorot`, or `post` (the post's N(0, 1))",
          "Start of the means"),
    Field("start_sigma", float, "start of the variational sds", "Start of the sds"),
    Field("seed", int, "seed of start values, mini-batches and noise, e.g. `0`", "Seed"),
    Field("backend", str, "what the last part that stepped was compiled for: `jax`, `numba` or `c`", "Backend",
          default=""),
    Field("float", str, "`float32` or `float64`", "Float"),
    Field("checkpoint_every", int, "steps between checkpoints (it does not change the fit)"),
    Field("versions", dict, "versions of python, pymc, pytensor, jax, numpy, xarray"),
    Field("machine", str, "CPU/GPU the run was trained on", "Machine"),
    Field("n_draws", int, "posterior predictive draws in `/predictions` (for `map` and `ensemble`, its networks)",
          "Predictive draws"),
    Field("accuracy_mode", float, "test accuracy from the mode of the draws' labels (as in the post)",
          "Accuracy, mode of draws", default=_NAN, summary="accuracy"),
    Field("accuracy_mean", float, "test accuracy from the mean predictive probability", "Accuracy, mean probability"),
    Field("val_accuracy_mode", float, "`accuracy_mode` on the 10,000 held-out training images (what a choice of "
          "settings may look at)"),
    Field("val_accuracy_mean", float, "`accuracy_mean` on the 10,000 held-out training images"),
    Field("final_elbo", float, "mean ELBO (full-data scale, as `elbo`) over the last 5% of iterations; for `map` "
          "and `ensemble`, the log posterior density that `elbo` holds for them", "ELBO at end (nats)", default=_NAN,
          summary="final_elbo"),
    Field("elbo_change", float, "relative change between the means of the last 5% and the 5% before (convergence "
          "check)", "ELBO relative change at end"),
    Field("auroc", float, "AUROC of the default uncertainty (the chi-square of the votes; the predictive entropy for "
          "`map`, which has no votes) for telling errors from correct digits", "AUROC (chi-square, or entropy)",
          computed=True),
    Field("wall_time_s", float, "time spent stepping, summed over every part of a resumed run, compiling excluded "
          "(files written before compiling was timed apart also counted each part's first step, where JAX "
          "compiles)", "Training time", default=_NAN, summary="wall_time_s"),
    Field("iterations_per_s", float, "stepping speed of the last part that stepped (kept when `--resume` finds "
          "nothing left to train)", "Speed (it/s)", default=_NAN, summary="iterations_per_s"),
    Field("compile_time_s", float, "of that same part: PyTensor's compile of the ADVI step plus its first step; "
          "absent from older files", default=_NAN),
    Field("predict_time_s", float, "time to draw the test set's predictive"),
    Field("created", str, "ISO 8601 time the file was written", "Created", required=True, summary="created"),
    Field("command", str, "the command line that made the run", "Command"),
)


def field_named(name: str) -> Field | None:
    return next((f for f in FIELDS if f.name == name), None)


def required_names() -> tuple[str, ...]:
    """The attributes a caller must give and every valid file has (the writer's own aside)."""
    return tuple(f.name for f in FIELDS if f.required and not f.computed)


def defaults() -> dict[str, object]:
    """What a reader takes for each attribute that a file (written before it existed) lacks."""
    return {f.name: f.default for f in FIELDS if f.default is not ABSENT}


def summary_fields() -> tuple[Field, ...]:
    """The fields of a listing's row, in order (``core.store.RunSummary``)."""
    return tuple(f for f in FIELDS if f.summary)


def detail_fields() -> list[tuple[str, str]]:
    """(attribute, label) of each row of the app's details table, in order."""
    return [(f.name, f.label) for f in FIELDS if f.label]


def _matches(f: Field, value) -> bool:
    if f.json:
        if isinstance(value, str):  # already JSON text, e.g. core.architecture.spec_to_json
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                return False
        return isinstance(value, (dict, list, tuple)) and (f.type is dict) == isinstance(value, dict)
    if f.type is str:
        return isinstance(value, str)
    if isinstance(value, bool):
        return False
    if f.type is int:
        return isinstance(value, numbers.Integral)
    return isinstance(value, numbers.Real)


def check_attrs(attrs: dict) -> None:
    """Refuse what a writer's caller must not give: an unknown attribute, one the writer sets itself
    (``schema``, ``schema_version``, ``auroc``), a required one missing, or a value of the wrong type.
    A value of None is not written, as if it were not given."""
    given = {k: v for k, v in attrs.items() if v is not None}
    known = {f.name: f for f in FIELDS}
    unknown = sorted(k for k in given if k not in known)
    if unknown:
        raise ValueError(f"unknown run-file attribute(s) {', '.join(unknown)}: define each as a Field in core/schema.py")
    computed = sorted(k for k in given if known[k].computed)
    if computed:
        raise ValueError(f"run-file attribute(s) {', '.join(computed)} are set by the writer, not by its caller")
    missing = [k for k in required_names() if k not in given]
    if missing:
        raise ValueError(f"run-file attribute(s) {', '.join(missing)} missing: every run has them")
    wrong = [f"{k} ({type(v).__name__}, not {_TYPE_NAMES[known[k].type]})" for k, v in given.items()
             if not _matches(known[k], v)]
    if wrong:
        raise ValueError(f"run-file attribute(s) of the wrong type: {', '.join(wrong)}")


def decode(key: str, value):
    """A stored attribute's value as a reader wants it: JSON text decoded, NumPy scalars as Python's.

    A known field is decoded by its type; an attribute this program does not know (a newer file's)
    is decoded when it looks like JSON."""
    f = field_named(key)
    if isinstance(value, str) and (f.json if f else value[:1] in "[{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if hasattr(value, "item") and getattr(value, "shape", None) == ():  # NumPy scalar
        return value.item()
    return value


def markdown_table() -> str:
    """The root attributes table of docs/run-file.md."""
    lines = ["| attribute | type | required | meaning |", "|---|---|---|---|"]
    for f in FIELDS:
        meaning = f.meaning + (" (set by the writer)" if f.computed else "")
        lines.append(f"| `{f.name}` | {_TYPE_NAMES[f.type]} | {'yes' if f.required else ''} | {meaning} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
