"""Views that do their work only while shown, and keep what they built.

A tab's content is a function of some parameters of the session's :class:`~dashboard.state.RunBrowser`
(its *inputs*). Building it (HoloViews to Bokeh models, sent to the page) is what costs: hundreds
of milliseconds a plot on a busy machine. So:

- :class:`LazyView` updates only while its tab is open (``active``); a change while it is hidden
  marks it stale, and it catches up when the tab is next opened;
- :class:`CachedView` builds ``view(*inputs)`` and keeps the last views it built in the page,
  hidden: a tab opened again, or inputs seen again (a run, another, the first again), show a view
  already in the page, with no rebuilding and nothing sent but its style.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence

import panel as pn
import param
from panel.viewable import Viewer

__all__ = ["HIDDEN", "SHOWN", "CachedView", "LazyView"]

HIDDEN = {"display": "none"}
"""The style of a view kept in the page but out of its layout."""
SHOWN = {"display": ""}
"""The style of a view shown: "" leaves the display Bokeh lays it out with."""


class LazyView(Viewer):
    """A view of the parameters ``inputs`` of ``source`` that updates only while ``active``.

    It starts hidden, with nothing shown: setting ``active`` shows it. Subclasses implement
    :meth:`refresh`, called with the inputs' values (in ``inputs`` order) whenever they change while
    the view is active, and when it becomes active after a change.
    """

    active = param.Boolean(default=False, doc="Whether the view is shown; a hidden view catches up when shown")

    def __init__(self, source: param.Parameterized, inputs: Sequence[str], **params) -> None:
        super().__init__(**params)
        self.source = source
        self.inputs = tuple(inputs)
        self._stale = True
        if self.inputs:
            source.param.watch(self._inputs_changed, list(self.inputs))

    def values(self) -> tuple:
        """The inputs' current values, in ``inputs`` order."""
        return tuple(getattr(self.source, name) for name in self.inputs)

    def _inputs_changed(self, *events: param.parameterized.Event) -> None:
        self._stale = True
        if self.active:
            self._update()

    @param.depends("active", watch=True)
    def _shown(self) -> None:
        if self.active and self._stale:
            self._update()

    def _update(self) -> None:
        self._stale = False
        self.refresh(*self.values())

    def refresh(self, *values: object) -> None:
        """Show the view for these input values."""
        raise NotImplementedError


class CachedView(LazyView):
    """Shows ``view(*inputs)``, built when first shown for those values and kept for reuse.

    The last ``size`` views built stay in the page, all but the current one out of its layout; an
    older one is removed. Input values are compared as the cache's keys: RunData by identity (one
    object per loaded run file), settings by value. While hidden and stale, the view shows nothing,
    so that opening its tab never flashes an old run's view before the new one arrives.

    Views are hidden by their style (:data:`HIDDEN`), not by ``visible``: Bokeh lays the whole page out
    again for every change of a view's visibility, and not for a change of style. Each refresh
    changes the layout's children once (the shown view last), which lays the page out once.
    """

    def __init__(self, source: param.Parameterized, inputs: Sequence[str], view: Callable[..., pn.viewable.Viewable],
                 size: int = 2, **params) -> None:
        super().__init__(source, inputs, **params)
        self.view = view
        self.size = size
        self.built: OrderedDict[tuple[Hashable, ...], pn.viewable.Viewable] = OrderedDict()
        self._layout = pn.Column(sizing_mode="stretch_width")

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    def _inputs_changed(self, *events: param.parameterized.Event) -> None:
        super()._inputs_changed(*events)
        if not self.active:
            self._show(None)

    def refresh(self, *values: object) -> None:
        if values not in self.built:
            self.built[values] = self.view(*values)
            if len(self.built) > self.size:
                self.built.popitem(last=False)
        self.built.move_to_end(values)
        self._show(values)
        self._layout.objects = list(self.built.values())

    def _show(self, key: tuple | None) -> None:
        for built_key, view in self.built.items():
            view.styles = SHOWN if built_key == key else HIDDEN
