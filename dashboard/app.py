"""The dashboard app: ``panel serve dashboard/app.py`` (see :func:`create_app` and README).

Serve on this machine only (the default address is localhost)::

    panel serve dashboard/app.py --address 127.0.0.1 --port 5006 --allow-websocket-origin 127.0.0.1:5006 --warm

then open http://127.0.0.1:5006/app. ``--warm`` builds one session at start-up, so the imports and
the first run's loading are done before the first visitor. Runs are read from ``--args --runs DIR``,
else the environment variable ``BNN_RUNS_DIR``, else ``<repo>/cached_traces``.

A page asked for under a host name other than the loopback ones gets no data, only a refusal: a
page of another site whose name was made to resolve to this machine (DNS rebinding) sends its own
name as ``Host``, and Tornado lets such a same-origin websocket through. Serving under another name
(behind a proxy) takes ``--args --allow-host NAME`` as well; see SECURITY.md.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # `panel serve dashboard/app.py` runs this file as a script: make the packages importable
    sys.path.insert(0, str(ROOT))

import panel as pn
from threadpoolctl import threadpool_limits

from dashboard import frame, views
from dashboard.history import BackForward, sync_url
from dashboard.state import RunBrowser

__all__ = ["LOOPBACK_HOSTS", "create_app", "host_allowed", "options"]

TITLE = "Bayesian neural networks on MNIST"
ENV_VAR = "BNN_RUNS_DIR"
DEFAULT_FOLDER = ROOT / "cached_traces"

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
"""Host names the app answers to without ``--allow-host``."""

pn.extension(sizing_mode="stretch_width", notifications=False)
# One server process answers every session with small matrix products (one digit's predictive draws):
# a multi-threaded BLAS only fights for the cores, and on a busy machine it was 100x slower (3 s vs 0.03 s).
threadpool_limits(limits=1)
# The process holds every session's document: about 13,000 objects each, 950,000 in all with 50 sessions.
# At Python's default threshold (a young collection every 700 allocations) the objects of the selections
# in flight get promoted, and every 13 s or so a full collection scans them all and stops every session
# for 0.4 s. Collected every 20,000 allocations, they are freed before they are promoted.
gc.set_threshold(20_000, 10, 10)


# Panel's Fast design asks Google for its web font (Open Sans): on an offline or air-gapped machine the
# page would wait for a request that never answers. The app loads nothing from outside: text falls back
# to the browser's sans-serif. (A subclass cannot do this: Panel finds a design's files by its class name.)
pn.theme.Fast._resources = {**pn.theme.Fast._resources, "font": {}}


def options(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> dict:
    """``create_app``'s arguments from the app's own options (``panel serve ... --args OPTIONS``).

    ``folder``: ``--runs DIR``, else ``$BNN_RUNS_DIR``, else ``<repo>/cached_traces``;
    ``allowed_hosts``: :data:`LOOPBACK_HOSTS` and each ``--allow-host NAME``.
    """
    parser = argparse.ArgumentParser(prog="panel serve dashboard/app.py --args")
    parser.add_argument("--runs", type=Path, help="folder of run files (*.nc)")
    parser.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="a host name (or name:port) the page may be asked for, besides the loopback ones")
    args, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    environ = os.environ if environ is None else environ
    folder = args.runs or (Path(environ[ENV_VAR]) if environ.get(ENV_VAR) else DEFAULT_FOLDER)
    return {"folder": folder, "allowed_hosts": (*LOOPBACK_HOSTS, *args.allow_host)}


_HOST = re.compile(r"(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:[0-9]+)?")


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    """Whether a request's ``Host`` header (``name``, ``name:port``, ``[v6]:port``) is one of ``allowed``,
    each a name (any port) or a ``name:port``. Names compare without case; anything else a header
    might hold (user info, paths) is refused, not guessed at."""
    match = _HOST.fullmatch(host.strip().lower())
    if match is None:
        return False
    name, port = match.group(1), match.group(2)
    return any(entry.lower() in (name, f"{name}{port or ''}") for entry in allowed)


def _request_host() -> str | None:
    """The ``Host`` header of the request that opened this session; None outside a served session."""
    context = pn.state.curdoc.session_context if pn.state.curdoc is not None else None
    request = getattr(context, "request", None)
    return request.headers.get("Host") if request is not None else None


def create_app(folder: str | Path, allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS) -> pn.template.FastListTemplate:
    """The whole app for the runs in ``folder``: a sidebar of selectors and one tab per view, opened on
    the folder's default run (:func:`dashboard.rundata.default_run`) unless the URL names another.

    A session whose page was asked for under a host name not in ``allowed_hosts`` gets a refusal only.
    """
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
    host = _request_host()
    if host is not None and not host_allowed(host, allowed_hosts):
        template.main.append(views.refused_view(host, allowed_hosts))
        return template
    browser = RunBrowser(folder)
    if browser.data is None:
        template.main.append(views.empty_view(browser.folder, browser.summaries))
        return template
    if pn.state.location is not None:
        sync_url(browser, pn.state.location)
        template.header.append(BackForward(width=0, height=0, margin=0, sizing_mode="fixed"))
    template.sidebar.extend(frame.sidebar(browser))
    template.main.append(frame.Tabs(browser))
    return template


if __name__.startswith("bokeh"):
    create_app(**options()).servable(title=TITLE)
