"""The session's state in the URL, and the browser's back and forward buttons: one history entry per action.

:func:`sync_url` applies the URL the page was opened with (validated by
:meth:`~dashboard.state.RunBrowser.apply_query`), then writes the browser's state into the URL
once per change, and applies the URL the back and forward buttons go to.

Panel's ``Location`` pushes a history entry for every change of its ``search``, and an action
often changes the URL more than once (a new run brings its first digit, layer and ELBO start):
back then stepped through intermediate states that looked the same. Panel does not listen for the
browser's ``popstate`` either (holoviz/panel#7357), so back changed the address bar and nothing
else. :class:`BackForward` closes both gaps in the page.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import panel as pn
from panel.custom import JSComponent
from panel.io.location import Location

from .state import URL_PARAMETERS, RunBrowser

__all__ = ["BackForward", "search", "sync_url"]


def search(browser: RunBrowser) -> str:
    """The URL's query string (``?run=...``) for the browser's state, in one canonical form."""
    return "?" + urlencode(browser.query(), safe=",")


def sync_url(browser: RunBrowser, location: Location) -> None:
    """Apply ``location``'s valid URL parameters to ``browser`` now; once the page has loaded, write the
    browser's state into the URL after each change, and apply the URL back and forward go to."""
    browser.apply_query(dict(parse_qsl(location.search.lstrip("?"))))

    def write(*events) -> None:
        location.search = search(browser)

    def read(event) -> None:
        # the URL of the entry back or forward went to, handed over by BackForward; our own writes
        # come back here too, and are the browser's state already
        if event.new != search(browser):
            browser.apply_query(dict(parse_qsl(event.new.lstrip("?"))))

    def start() -> None:
        # only once the page is loaded: until then the page would put back its own (unchecked) URL;
        # the URL then holds only validated values
        write()
        browser.param.watch(write, list(URL_PARAMETERS))
        location.param.watch(read, "search")

    pn.state.onload(start)


class BackForward(JSComponent):
    """An invisible component: put one in the page of a session that syncs its state to the URL.

    In the page it makes every URL change a new history entry only if it is the first since the
    person last clicked or typed; the others (the rest of one action's changes, the app writing its
    validated state into the URL it was opened with, the state of an entry back or forward went to)
    replace the current entry. On ``popstate`` it hands the page's URL to Panel's ``Location``.
    """

    _esm = """
const state = window.__bnnHistory ??= {replace: true}
if (!state.installed) {
  const push = window.history.pushState.bind(window.history)
  window.history.pushState = (...args) => {
    if (state.replace) {
      window.history.replaceState(...args)
    } else {
      push(...args)
      state.replace = true
    }
  }
  for (const event of ["pointerdown", "keydown"]) window.addEventListener(event, () => { state.replace = false }, true)
  state.installed = true
}

export function render({ view, model }) {
  function restore() {
    state.replace = true
    const location = [...view.model.document.all_models].find(
      (m) => m.constructor.__module__ === "panel.models.location")
    if (location != null && location.search !== window.location.search) location.search = window.location.search
  }
  window.addEventListener("popstate", restore)
  model.on("remove", () => window.removeEventListener("popstate", restore))
  return document.createElement("span")
}
"""
