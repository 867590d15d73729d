"""The browser's back and forward buttons.

Panel pushes a history entry each time the synced URL changes, but does not listen for the
browser's ``popstate`` (holoviz/panel#7357), so going back changed the address bar and nothing
else. :class:`BackForward` closes that gap in the page: on ``popstate`` it hands the page's URL
to Panel's ``Location``, whose ``sync`` then sets the session's state from it.
"""

from __future__ import annotations

from panel.custom import JSComponent

__all__ = ["BackForward"]


class BackForward(JSComponent):
    """An invisible component: put one in the page of a session that syncs its state to the URL."""

    _esm = """
// After back or forward, the server answers with the state of the entry the browser went to, and
// Panel pushes that as a new entry (its query written its own way, e.g. without "compare="), which
// would drop the entries ahead (forward). Until the person next clicks or types, URL changes
// therefore rewrite the current entry instead of pushing one.
const state = window.__bnnBackForward ??= {restoring: false}
if (!state.installed) {
  const push = window.history.pushState.bind(window.history)
  window.history.pushState = (...args) => (state.restoring ? window.history.replaceState(...args) : push(...args))
  for (const event of ["pointerdown", "keydown"]) window.addEventListener(event, () => { state.restoring = false }, true)
  state.installed = true
}

export function render({ view, model }) {
  function restore() {
    state.restoring = true
    const location = [...view.model.document.all_models].find(
      (m) => m.constructor.__module__ === "panel.models.location")
    if (location != null && location.search !== window.location.search) location.search = window.location.search
  }
  window.addEventListener("popstate", restore)
  model.on("remove", () => window.removeEventListener("popstate", restore))
  return document.createElement("span")
}
"""
