"""The dashboard app: ``panel serve dashboard/app.py`` (see :func:`create_app` and README).

Serve on this machine only (the default address is localhost)::

    panel serve dashboard/app.py --address 127.0.0.1 --port 5006 --allow-websocket-origin 127.0.0.1:5006 --warm

then open http://127.0.0.1:5006/app. ``--warm`` builds one session at start-up, so the imports and
the first run's loading are done before the first visitor. Runs are read from ``--args --runs DIR``,
else the environment variable ``BNN_RUNS_DIR``, else ``<repo>/cached_traces``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # `panel serve dashboard/app.py` runs this file as a script: make the packages importable
    sys.path.insert(0, str(ROOT))

import panel as pn
from threadpoolctl import threadpool_limits

from dashboard import views
from dashboard.history import BackForward
from dashboard.state import URL_PARAMETERS, RunBrowser

__all__ = ["create_app", "runs_folder"]

TITLE = "Bayesian neural networks on MNIST"
ENV_VAR = "BNN_RUNS_DIR"
DEFAULT_FOLDER = ROOT / "cached_traces"

pn.extension(sizing_mode="stretch_width", notifications=False)
# One server process answers every session with small matrix products (one digit's predictive draws):
# a multi-threaded BLAS only fights for the cores, and on a busy machine it was 100x slower (3 s vs 0.03 s).
threadpool_limits(limits=1)


def runs_folder(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> Path:
    """The runs folder: ``--runs DIR`` in ``argv``, else ``$BNN_RUNS_DIR``, else ``<repo>/cached_traces``."""
    parser = argparse.ArgumentParser(prog="panel serve dashboard/app.py --args")
    parser.add_argument("--runs", type=Path, help="folder of run files (*.nc)")
    args, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    environ = os.environ if environ is None else environ
    return args.runs or (Path(environ[ENV_VAR]) if environ.get(ENV_VAR) else DEFAULT_FOLDER)


def _sync_url(browser: RunBrowser) -> None:
    """Apply the session URL's valid parameters, then keep the URL in step with the browser."""
    location = pn.state.location
    browser.apply_query(dict(parse_qsl(location.search.lstrip("?"))))

    def start_sync() -> None:
        # only once the page is loaded: until then the page would put back its own (unchecked) URL;
        # the URL then holds only validated values, so syncing cannot apply a rejected one
        location.search = "?" + urlencode(browser.query())
        location.sync(browser, {key: key for key in URL_PARAMETERS})

    pn.state.onload(start_sync)


def create_app(folder: str | Path) -> pn.template.FastListTemplate:
    """The whole app for the runs in ``folder``: a sidebar of selectors and one tab per view."""
    browser = RunBrowser(folder)
    template = pn.template.FastListTemplate(
        title=TITLE,
        sidebar_width=280,
        accent_base_color="#1f77b4",
        header_background="#1f4e79",
        theme_toggle=False,
        # Panel's busy flag is process-wide: its spinner would send every session a patch (two, busy and
        # idle) for every event of any session; the views' own work is short
        busy_indicator=None,
    )
    if browser.data is None:
        template.main.append(views.empty_view(browser))
        return template
    if pn.state.location is not None:
        _sync_url(browser)
        template.header.append(BackForward(width=0, height=0, margin=0, sizing_mode="fixed"))
    template.sidebar.extend(views.sidebar(browser))
    template.main.append(views.tabs(browser))
    return template


if __name__.startswith("bokeh"):
    create_app(runs_folder()).servable(title=TITLE)
