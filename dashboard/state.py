"""What one browser session looks at: the :class:`RunBrowser`, and the URL parameters it accepts.

The views read and set these parameters only; heavy data comes from :mod:`dashboard.rundata`,
shared by all sessions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import param

from core.store import RunFileError, RunSummary
from core.uncertainty import MEASURES

from . import rundata
from .rundata import RunData

__all__ = ["NO_COMPARE", "PAGE_SIZE", "TABS", "URL_PARAMETERS", "RunBrowser"]

TABS = {
    "runs": "Runs",
    "elbo": "ELBO",
    "hyperpriors": "Hyperpriors",
    "weights": "Weights",
    "accuracy": "Accuracy",
    "uncertainty": "Uncertainty",
    "digits": "Digits",
}
"""Tab key (as in the URL) -> tab title, in display order."""

NO_COMPARE = ""
PAGE_SIZE = 40
URL_PARAMETERS = ("run", "tab", "digit", "measure", "compare")
"""Parameters kept in the URL's query string, under the same names."""


class RunBrowser(param.Parameterized):
    """The selected run, comparison run, tab, layer, measure, digit and view settings of a session.

    The run list is read once, when the browser is made. Runs are chosen by name among the
    usable files of that listing only; a name is never turned into a path.
    """

    run = param.Selector(default=None, objects=[], label="Run")
    compare = param.Selector(default=NO_COMPARE, objects=[NO_COMPARE], label="Compare with")
    tab = param.Selector(default="runs", objects=list(TABS))
    layer = param.Selector(default=None, objects=[], label="Layer")
    measure = param.Selector(default="chi_square", objects=list(MEASURES), label="Uncertainty measure")
    digit = param.Integer(default=0, bounds=(0, None), label="Digit (test index)")
    window = param.Integer(default=50, bounds=(1, 5000), label="Smoothing window (iterations)")
    log_scale = param.Boolean(default=False, label="Log scale of −ELBO")
    start = param.Integer(default=1, bounds=(1, None), label="Start at iteration")
    reverse = param.Boolean(default=False, label="Least uncertain first")
    page = param.Integer(default=0, bounds=(0, None))
    cell = param.Tuple(default=None, allow_None=True, length=2, doc="(true, predicted) filter of the gallery")
    notice = param.String(default="", doc="Message for the person, e.g. about a rejected URL value")

    def __init__(self, folder: str | Path, **params) -> None:
        super().__init__(**params)
        self.folder = Path(folder)
        self.summaries: list[RunSummary] = rundata.list_runs(self.folder)
        self.data: RunData | None = None
        self._set_choices([s.name for s in self.summaries if not s.error])
        self._open_first(self.param.run.objects)

    # --- listing and loading -------------------------------------------------------------------

    @property
    def errors(self) -> list[RunSummary]:
        """The files of the listing that cannot be used, with their messages."""
        return [s for s in self.summaries if s.error]

    def _set_choices(self, names: list[str]) -> None:
        self.param.run.objects = names
        self.param.compare.objects = {"(none)": NO_COMPARE, **{n: n for n in names}}

    def _open_first(self, names: list[str]) -> None:
        if names:
            self.run = names[0]

    def _summary(self, name: str) -> RunSummary:
        return next(s for s in self.summaries if s.name == name and not s.error)

    def load(self, name: str) -> RunData:
        """The data of the listed run ``name``. Raises RunFileError if the file became unusable."""
        return rundata.run_data(self._summary(name).path)

    @param.depends("run", watch=True)
    def _on_run(self) -> None:
        try:
            data = self.load(self.run)
        except RunFileError as exc:
            # the file changed since it was listed: drop it and fall back to another run
            self.summaries = [
                RunSummary(s.name, s.path, error=str(exc)) if s.name == self.run else s for s in self.summaries
            ]
            self._set_choices([s.name for s in self.summaries if not s.error])
            self.notice = str(exc)
            self._open_first(self.param.run.objects)
            return
        self.data = data
        self.param.layer.objects = list(data.layers)
        self.param.digit.bounds = (0, data.n_digits - 1)
        self.param.start.bounds = (1, max(1, len(data.elbo) - 1))
        ranked = rundata.gallery_order(data, self.measure)
        self.param.update(
            layer=data.layers[0],
            digit=int(ranked[0]) if len(ranked) else 0,
            start=1,
            cell=None,
            page=0,
            compare=NO_COMPARE if self.compare == self.run else self.compare,
        )

    @property
    def compare_data(self) -> RunData | None:
        """The comparison run's data, or None when no (usable) run is chosen for comparison."""
        if self.compare == NO_COMPARE:
            return None
        try:
            return self.load(self.compare)
        except RunFileError as exc:
            self.notice = str(exc)
            return None

    @property
    def shown(self) -> list[RunData]:
        """The selected run's data, then the comparison run's when one is chosen."""
        return [self.data] + ([self.compare_data] if self.compare_data else [])

    # --- gallery -------------------------------------------------------------------------------

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
        """Filter the gallery to one confusion-matrix cell and show it."""
        self.param.update(cell=(int(true), int(predicted)), tab="digits")

    # --- URL -----------------------------------------------------------------------------------

    def apply_query(self, query: Mapping[str, str]) -> list[str]:
        """Apply URL query values (raw strings) that are valid; return a notice for each that is not.

        The run must be a listed usable run, compare one too (or empty), tab and measure known
        keys, digit an integer index of the run's test set. Rejected values leave the default.
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
        for key, choices in (("tab", list(TABS)), ("measure", list(MEASURES)), ("compare", self.param.compare.objects)):
            value = query.get(key)
            if value is None:
                continue
            if value in choices:
                setattr(self, key, value)
            else:
                reject(key, value, f"choose one of {', '.join(c for c in choices if c) or 'no runs'}")
        digit = query.get("digit")
        if digit is not None and self.data is not None:
            if digit.isascii() and digit.isdigit() and int(digit) < self.data.n_digits:
                self.digit = int(digit)
            else:
                reject("digit", digit, f"not a digit index between 0 and {self.data.n_digits - 1}")
        if notices:
            self.notice = " ".join(notices)
        return notices

    def query(self) -> dict[str, str]:
        """The URL parameters of the current view, as strings; unset ones are left out, as Panel's sync does."""
        return {key: str(getattr(self, key)) for key in URL_PARAMETERS if getattr(self, key) not in (None, "")}
