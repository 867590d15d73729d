"""What one browser session looks at: the :class:`RunBrowser`, and the URL parameters it accepts.

The browser holds the session's choices (run, comparison run, tab, layer, measure, digit, view
settings) and, as parameters the views depend on, the data they show: ``data`` (the chosen run)
and ``compared`` (the comparison run, or None). Both are loaded by the browser's own watchers when
``run`` or ``compare`` changes, in the same update as the settings that follow a run (its layers,
first digit, ELBO start), so a view sees them change together and is built once per change. Heavy
data comes from :mod:`dashboard.rundata`, shared by all sessions. The Probe tab's start and transform
are settings like the others; its drawing and upload (``drawn``, ``uploaded``) are the session's
data, never in the URL.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import param

from core.store import RunFileError, RunSummary
from core.uncertainty import MEASURES

from . import rundata, stats
from .probe_images import SOURCES, TRANSFORM_KEYS, Transform, Upload, foreign_count
from .rundata import RunData

__all__ = ["NO_COMPARE", "PAGE_SIZE", "TABS", "URL_PARAMETERS", "RunBrowser"]

TABS = {
    "runs": "Runs",
    "elbo": "ELBO",
    "hyperpriors": "Hyperpriors",
    "weights": "Weights",
    "accuracy": "Accuracy",
    "uncertainty": "Uncertainty",
    "calibration": "Calibration",
    "shift": "Shift",
    "digits": "Digits",
    "probe": "Probe",
}
"""Tab key (as in the URL) -> tab title, in display order."""

NO_COMPARE = ""
PAGE_SIZE = 40
URL_PARAMETERS = (
    "run", "compare", "tab", "measure", "layer", "window", "start", "log_scale", "cell", "reverse", "page", "digit",
    "probe", "probe_digit", *TRANSFORM_KEYS,
)
"""Parameters kept in the URL's query string, under the same names, in the order a query is applied
(a run resets what follows it; a filter resets the page; the probe's source comes before its digit)."""

_BOOLEANS = {"true": True, "false": False}


def _integer(value: str, lo: int, hi: int) -> int | None:
    """``value`` as a plain decimal integer in [lo, hi], else None (no sign, spaces, exponents or non-ASCII digits)."""
    if value.isascii() and value.isdigit() and lo <= int(value) <= hi:
        return int(value)
    return None


def _signed_integer(value: str, lo: int, hi: int) -> int | None:
    """``value`` as a decimal integer in [lo, hi] with an optional leading ``-``, else None."""
    if re.fullmatch(r"-?[0-9]{1,6}", value) and lo <= int(value) <= hi:
        return int(value)
    return None


def _decimal(value: str, lo: float, hi: float) -> float | None:
    """``value`` as a plain decimal number (``0.25``: no sign, exponent or spaces) in [lo, hi], else None."""
    if re.fullmatch(r"[0-9]{1,4}(\.[0-9]{1,4})?", value) and lo <= float(value) <= hi:
        return float(value)
    return None


_IDENTITY = Transform()  # the probe's transform that changes nothing: its settings' defaults


class RunBrowser(param.Parameterized):
    """The selected run, comparison run, tab, layer, measure, digit and view settings of a session.

    The run list is read once, when the browser is made. Runs are chosen by name among the
    usable files of that listing only; a name is never turned into a path.
    """

    run = param.Selector(default=None, objects=[], label="Run")
    compare = param.Selector(default=NO_COMPARE, objects=[NO_COMPARE], label="Compare with")
    tab = param.Selector(default="runs", objects=list(TABS))
    layer = param.Selector(default=None, objects=[], label="Layer")
    measure = param.Selector(default="chi_square", objects={name: key for key, name in MEASURES.items()},
                             label="Uncertainty measure")
    digit = param.Integer(default=0, bounds=(0, None), label="Digit (test index)")
    window = param.Integer(default=50, bounds=(1, 5000), label="Smoothing window (iterations)")
    log_scale = param.Boolean(default=True, label="Log scale of −ELBO")
    start = param.Integer(default=1, bounds=(1, None), label="Start at iteration")
    reverse = param.Boolean(default=False, label="Least uncertain first")
    page = param.Integer(default=0, bounds=(0, None), doc="Gallery page, from 0 (the URL counts from 1)")
    cell = param.Tuple(default=None, allow_None=True, length=2, doc="(true, predicted) filter of the gallery")
    notice = param.String(default="", doc="Message for the person, e.g. about a rejected URL value")

    # the Probe tab: where its digit starts, and the transform (probe_images.Transform) applied to it
    probe = param.Selector(default="test", objects={name: key for key, name in SOURCES.items()}, label="Start from")
    probe_digit = param.Integer(default=0, bounds=(0, None), doc="The probe's test digit or foreign digit (index)")
    thicken = param.Integer(default=_IDENTITY.thicken, bounds=(-3, 3), label="Thicken (px; − thins)")
    rotate = param.Integer(default=_IDENTITY.rotate, bounds=(-180, 180), label="Rotate (degrees)")
    shift_x = param.Integer(default=_IDENTITY.shift_x, bounds=(-14, 14), label="Shift x (px right)")
    shift_y = param.Integer(default=_IDENTITY.shift_y, bounds=(-14, 14), label="Shift y (px down)")
    blur = param.Number(default=_IDENTITY.blur, bounds=(0.0, 3.0), step=0.1, label="Blur sigma (px)")
    erase_x = param.Integer(default=_IDENTITY.erase_x, bounds=(0, 27), label="Erase at column")
    erase_y = param.Integer(default=_IDENTITY.erase_y, bounds=(0, 27), label="Erase at row")
    erase_size = param.Integer(default=_IDENTITY.erase_size, bounds=(0, 28), label="Erase square (px)")
    noise = param.Number(default=_IDENTITY.noise, bounds=(0.0, 1.0), step=0.05, label="Noise sd (of 0 to 1)")
    drawn = param.Array(default=None, allow_None=True,
                        doc="The session's drawing as the network takes it, (28, 28) uint8; not in the URL")
    uploaded = param.ClassSelector(class_=Upload, allow_None=True, doc="The session's decoded upload; not in the URL")

    summaries = param.ClassSelector(class_=tuple, default=(), constant=True,
                                    doc="The folder's listing (RunSummary objects): usable runs and unusable files")
    data = param.ClassSelector(class_=RunData, allow_None=True, constant=True, doc="The chosen run's data")
    compared = param.ClassSelector(class_=RunData, allow_None=True, constant=True,
                                   doc="The comparison run's data; None when no run is compared")

    def __init__(self, folder: str | Path, **params) -> None:
        super().__init__(**params)
        self.folder = Path(folder)
        with param.edit_constant(self):
            self.summaries = tuple(rundata.list_runs(self.folder))
        self._set_choices([s.name for s in self.summaries if not s.error])
        name, notice = rundata.default_run(self.folder, self.summaries)
        if name is not None:
            self.run = name
        if notice:
            self.notice = notice

    # --- listing and loading -------------------------------------------------------------------

    @property
    def errors(self) -> list[RunSummary]:
        """The files of the listing that cannot be used, with their messages."""
        return [s for s in self.summaries if s.error]

    def _set_choices(self, names: list[str]) -> None:
        self.param.run.objects = names
        self.param.compare.objects = {"(none)": NO_COMPARE, **{n: n for n in names}}

    def _summary(self, name: str) -> RunSummary:
        return next(s for s in self.summaries if s.name == name and not s.error)

    def load(self, name: str) -> RunData:
        """The data of the listed run ``name``. Raises RunFileError if the file became unusable."""
        return rundata.run_data(self._summary(name).path)

    def _drop(self, name: str, exc: RunFileError) -> None:
        """List the run ``name``, whose file changed since it was listed, as unusable, and say so."""
        with param.edit_constant(self):
            self.summaries = tuple(RunSummary(s.name, s.path, error=str(exc)) if s.name == name else s
                                   for s in self.summaries)
        self._set_choices([s.name for s in self.summaries if not s.error])
        self.notice = str(exc)

    @param.depends("run", watch=True)
    def _on_run(self) -> None:
        try:
            data = self.load(self.run)
        except RunFileError as exc:
            self._drop(self.run, exc)
            if self.param.run.objects:
                self.run = self.param.run.objects[0]
            return
        ranked = rundata.gallery_order(data, self.measure)
        keep_compare = self.compare != self.run
        # one batch, choices and values together: a view of several of these is built once, with the new
        # run's values (new layer choices alone would make the layer widgets pick the first, for the old run)
        with param.parameterized.batch_call_watchers(self), param.edit_constant(self):
            self.param.layer.objects = list(data.layers)
            self.param.digit.bounds = (0, data.n_digits - 1)
            self.param.start.bounds = (1, max(1, len(data.elbo) - 1))
            self.param.update(
                data=data,
                compare=self.compare if keep_compare else NO_COMPARE,
                compared=self.compared if keep_compare else None,
                layer=data.layers[0],
                digit=int(ranked[0]) if len(ranked) else 0,
                probe_digit=self.probe_digit if self.probe_digit < self._probe_digits(data, self.probe) else 0,
                start=min(stats.elbo_settled_start(data.elbo.values), self.param.start.bounds[1]),
                cell=None,
                page=0,
            )

    @param.depends("compare", watch=True)
    def _on_compare(self) -> None:
        compared = None
        if self.compare != NO_COMPARE:
            try:
                compared = self.load(self.compare)
            except RunFileError as exc:
                self._drop(self.compare, exc)
                self.compare = NO_COMPARE
                return
        with param.edit_constant(self):
            self.compared = compared

    # --- gallery and inspector -----------------------------------------------------------------

    @param.depends("measure", "reverse", "cell", watch=True)
    def _first_page(self) -> None:
        self.page = 0

    def gallery_digits(self) -> np.ndarray:
        """All digits of the gallery in display order (see :func:`rundata.gallery_order`). (n,)"""
        return rundata.gallery_order(self.data, self.measure, self.reverse, self.cell)

    @property
    def page_count(self) -> int:
        return max(1, math.ceil(len(self.gallery_digits()) / PAGE_SIZE))

    def page_digits(self) -> np.ndarray:
        """The digits on the current page, at most :data:`PAGE_SIZE`. (n,)"""
        return self.gallery_digits()[self.page * PAGE_SIZE : (self.page + 1) * PAGE_SIZE]

    def turn_page(self, step: int) -> None:
        """Go ``step`` pages forward (negative: back), staying within the gallery."""
        self.page = min(max(0, self.page + step), self.page_count - 1)

    def select_cell(self, true: int, predicted: int) -> None:
        """Filter the gallery to one confusion-matrix cell, show it, and inspect its first digit."""
        cell = (int(true), int(predicted))
        first = rundata.gallery_order(self.data, self.measure, self.reverse, cell)[:1]
        self.param.update(cell=cell, tab="digits", page=0, **({"digit": int(first[0])} if len(first) else {}))

    def select_digit(self, digit: int) -> str:
        """Inspect test digit ``digit`` if the run has it; else keep the current one and return why not ("" if done)."""
        last = self.data.n_digits - 1
        if not 0 <= digit <= last:
            return f"There is no test digit {digit}: this run's are numbered 0 to {last:,}. Still showing digit {self.digit}."
        self.digit = digit
        return ""

    # --- probe -----------------------------------------------------------------------------------

    @staticmethod
    def _probe_digits(data: RunData, source: str) -> int:
        """How many digits the probe's ``source`` numbers in ``data``: test digits, foreign digits, or none."""
        return {"test": data.n_digits, "foreign": foreign_count(data)}.get(source, 0)

    def transform(self) -> Transform:
        """The probe's transform, from the session's settings."""
        return Transform(**{key: getattr(self, key) for key in TRANSFORM_KEYS})

    def reset_transform(self) -> None:
        """Set every transform setting back to the one that changes nothing."""
        self.param.update({key: getattr(_IDENTITY, key) for key in TRANSFORM_KEYS})

    def select_probe(self, source: str, digit: int) -> str:
        """Probe test digit or foreign digit ``digit`` (``source`` "test" or "foreign") if the run has it;
        else keep the current one and return why not ("" if done)."""
        count = self._probe_digits(self.data, source)
        if not 0 <= digit < count:
            what = "test digit" if source == "test" else "foreign digit"
            return (f"There is no {what} {digit}: this run's are numbered 0 to {count - 1:,}. "
                    f"Still showing {what} {self.probe_digit}." if count else f"This run has no {what}s.")
        self.param.update(probe=source, probe_digit=digit)
        return ""

    def probe_foreign(self, digit: int) -> None:
        """Open foreign digit ``digit`` (its index in the run's ``shift_sample``) in the Probe tab."""
        if self.select_probe("foreign", int(digit)) == "":
            self.tab = "probe"

    # --- URL -----------------------------------------------------------------------------------

    def apply_query(self, query: Mapping[str, str]) -> list[str]:
        """Apply URL query values (raw strings) that are valid; return a notice for each that is not.

        Applied in the order of :data:`URL_PARAMETERS`. The run must be a listed usable run, compare
        one too (or empty); tab, measure and layer known keys; window, start, page and digit plain
        integers in range (page counted from 1); log_scale and reverse ``true`` or ``false``; cell
        ``true,predicted`` classes; probe a source of :data:`~dashboard.probe_images.SOURCES` (a
        drawing or an upload only if this session holds one: they are not in the URL), probe_digit an
        index of that source's digits, the transform's settings numbers in their sliders' ranges.
        Rejected values leave the current value. An absent ``compare`` or ``cell`` means none, and an
        absent probe setting its default: a URL without them shows no comparison, no filter, and test
        digit 0 unchanged in the probe.
        """
        notices = []

        def reject(key: str, value: str, why: str) -> None:
            notices.append(f"URL parameter {key}={value!r} ignored: {why}.")

        run = query.get("run")
        if run is not None:
            if run in self.param.run.objects:
                self.run = run
            else:
                reject("run", run, "no such run in this folder" + (f"; showing {self.run}" if self.run else ""))
        if self.data is None:
            return notices
        choices = {
            "compare": list(self.param.compare.objects),
            "tab": list(TABS),
            "measure": list(MEASURES),
            "layer": list(self.param.layer.objects),
        }
        ranges = {
            "window": self.param.window.bounds,
            "start": self.param.start.bounds,
            "digit": (0, self.data.n_digits - 1),
        }
        defaults = {key: getattr(_IDENTITY, key) for key in TRANSFORM_KEYS}
        settings = {"compare": NO_COMPARE, "cell": None, "probe": "test", "probe_digit": 0, **defaults}  # absent
        for key in URL_PARAMETERS[1:]:
            value = query.get(key)
            if value is None:
                if key in settings:
                    setattr(self, key, settings[key])
                continue
            if key == "probe":
                held = {"drawing": self.drawn, "upload": self.uploaded}
                if value not in SOURCES:
                    reject(key, value, f"choose one of {', '.join(SOURCES)}")
                elif value in held and held[value] is None:
                    reject(key, value, f"a {'drawing' if value == 'drawing' else 'file uploaded'} in another "
                                       "session is not in the URL: draw the digit or upload the file again")
                else:
                    self.probe = value
            elif key == "probe_digit":
                if self.probe not in ("test", "foreign"):  # the others number no digits: no index to apply
                    reject(key, value, f"probe={self.probe} has no digits to number; give probe=test or "
                                       "probe=foreign with it")
                else:
                    last = self._probe_digits(self.data, self.probe) - 1
                    number = _integer(value, 0, last)
                    if number is None:
                        reject(key, value, f"not a whole number between 0 and {last}")
                    else:
                        self.probe_digit = number
            elif key in defaults:
                bounds = self.param[key].bounds
                number = (_decimal(value, *bounds) if isinstance(defaults[key], float) else
                          _signed_integer(value, *bounds))
                if number is None:
                    reject(key, value, f"not a number between {bounds[0]:g} and {bounds[1]:g}")
                else:
                    setattr(self, key, number)
            elif key in choices:
                if value in choices[key]:
                    setattr(self, key, value)
                else:
                    reject(key, value, f"choose one of {', '.join(c for c in choices[key] if c) or 'no runs'}")
            elif key in ranges:
                lo, hi = ranges[key]
                number = _integer(value, lo, hi)
                if number is None:
                    reject(key, value, f"not a whole number between {lo} and {hi}")
                else:
                    setattr(self, key, number)
            elif key in ("log_scale", "reverse"):
                if value in _BOOLEANS:
                    setattr(self, key, _BOOLEANS[value])
                else:
                    reject(key, value, "choose true or false")
            elif key == "cell":
                parts = value.split(",")
                classes = [_integer(p, 0, stats.N_CLASSES - 1) for p in parts]
                if len(parts) == 2 and None not in classes:
                    self.cell = tuple(classes)
                else:
                    reject(key, value, "not a true and a predicted class from 0 to 9, as in cell=2,7")
            elif key == "page":
                number = _integer(value, 1, self.page_count)
                if number is None:
                    reject(key, value, f"not a page number between 1 and {self.page_count}")
                else:
                    self.page = number - 1
        if notices:
            self.notice = " ".join(notices)
        return notices

    def query(self) -> dict[str, str]:
        """The URL parameters of the current view as strings, in :data:`URL_PARAMETERS` order; no
        comparison, no filter and the probe's settings at their defaults are left out."""
        values = {
            "run": self.run,
            "compare": self.compare,
            "tab": self.tab,
            "measure": self.measure,
            "layer": self.layer,
            "window": str(self.window),
            "start": str(self.start),
            "log_scale": str(self.log_scale).lower(),
            "cell": None if self.cell is None else f"{self.cell[0]},{self.cell[1]}",
            "reverse": str(self.reverse).lower(),
            "page": str(self.page + 1),
            "digit": str(self.digit),
            "probe": self.probe,
            "probe_digit": str(self.probe_digit) if self.probe in ("test", "foreign") else None,
            **{key: f"{getattr(self, key):g}" for key in TRANSFORM_KEYS},
        }
        # the probe's settings only where they differ from their defaults: most views have none
        for key in ("probe", "probe_digit", *TRANSFORM_KEYS):
            default = self.param[key].default
            if values[key] == (default if isinstance(default, str) else f"{default:g}"):
                values[key] = None
        return {key: value for key, value in values.items() if value not in (None, "")}
