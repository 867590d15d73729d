"""dashboard.lazy: views built only while shown, and kept for the inputs they were built for."""

from __future__ import annotations

import panel as pn
import param

from dashboard.lazy import HIDDEN, CachedView, LazyView


class Source(param.Parameterized):
    a = param.Integer(default=0)
    b = param.Integer(default=0)
    other = param.Integer(default=0)


def counting_view(calls: list):
    def view(a: int, b: int) -> pn.pane.Markdown:
        calls.append((a, b))
        return pn.pane.Markdown(f"{a} {b}")

    return view


def shown(cached: CachedView) -> list[str]:
    return [view.object for view in cached.built.values() if view.styles != HIDDEN]


def test_a_cached_view_is_built_when_first_shown_and_not_again():
    source, calls = Source(), []
    cached = CachedView(source, ("a", "b"), counting_view(calls))
    source.a = 1
    assert calls == []  # hidden: nothing built
    cached.active = True
    assert calls == [(1, 0)] and shown(cached) == ["1 0"]
    cached.active = False
    cached.active = True  # the tab revisited with the same inputs
    source.other = 5  # a parameter the view does not show
    assert calls == [(1, 0)]


def test_inputs_seen_before_show_the_view_built_for_them():
    source, calls = Source(), []
    cached = CachedView(source, ("a", "b"), counting_view(calls), size=2)
    cached.active = True
    source.a = 1
    source.a = 0
    assert calls == [(0, 0), (1, 0)] and shown(cached) == ["0 0"]
    layout = cached.__panel__()
    assert [v.object for v in layout] == ["1 0", "0 0"]  # both in the page, the shown one last
    assert layout[-1].styles != HIDDEN
    source.b = 1
    assert list(cached.built) == [(0, 0), (0, 1)] and len(layout) == 2  # the least recently shown removed


def test_a_hidden_view_shows_nothing_stale_and_catches_up_when_shown():
    source, calls = Source(), []
    cached = CachedView(source, ("a", "b"), counting_view(calls))
    cached.active = True
    cached.active = False
    source.param.update(a=3, b=4)  # one change of two inputs
    assert shown(cached) == [] and calls == [(0, 0)]
    cached.active = True
    assert calls == [(0, 0), (3, 4)] and shown(cached) == ["3 4"]


def test_a_lazy_view_refreshes_only_while_active():
    class Counter(LazyView):
        def __init__(self, source):
            super().__init__(source, ("a",))
            self.seen = []

        def refresh(self, a):
            self.seen.append(a)

        def __panel__(self):
            return pn.Column()

    source = Source()
    counter = Counter(source)
    source.a = 1
    source.a = 2
    assert counter.seen == []
    counter.active = True
    source.a = 3
    assert counter.seen == [2, 3]
