"""dashboard.history: the session's state goes into the URL once per change, and a URL from back or forward
is applied as validated as any URL. (The page's side, one history entry per action, is tested in the browser.)"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl

import pytest
from panel.io.location import Location

from core import store
from core.synthetic import synthetic_run
from dashboard.history import BackForward, search, sync_url
from dashboard.probe_images import TRANSFORM_KEYS
from dashboard.state import URL_PARAMETERS, RunBrowser


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("runs")
    store.save_run(synthetic_run("mlp", "hierarchical", n_digits=120, seed=0), path / "a.nc")
    store.save_run(synthetic_run("cnn", "normal", n_digits=120, seed=1), path / "b.nc")
    return path


def test_the_url_is_written_once_per_change_in_canonical_form(folder):
    browser = RunBrowser(folder)
    location = Location(search="?run=a&digit=7&tab=elbo&bogus=1")
    writes = []
    location.param.watch(lambda event: writes.append(event.new), "search")
    sync_url(browser, location)  # outside a server the page counts as loaded at once
    assert (browser.run, browser.digit, browser.tab) == ("a", 7, "elbo")
    probe = ("probe", "probe_digit", *TRANSFORM_KEYS)  # the probe's settings at their defaults are left out
    assert writes == [search(browser)] and [k for k, _ in parse_qsl(writes[0][1:])] == [
        k for k in URL_PARAMETERS if k not in ("compare", "cell", *probe)]
    browser.run = "b"  # a run change resets digit, layer, start...: one write
    assert len(writes) == 2 and dict(parse_qsl(writes[-1][1:]))["run"] == "b"


def test_back_and_forward_apply_the_urls_they_go_to(folder):
    browser = RunBrowser(folder)
    location = Location(search="?run=a")
    sync_url(browser, location)
    first = location.search
    browser.param.update(compare="b", tab="weights", window=120)
    location.search = first  # what BackForward hands over on popstate
    assert (browser.compare, browser.tab, browser.window) == ("", "runs", 50)
    assert location.search == first


def test_a_hand_made_url_on_back_is_validated(folder):
    browser = RunBrowser(folder)
    location = Location(search="?run=a")
    sync_url(browser, location)
    location.search = "?run=a&window=0&tab=<script>"
    assert browser.window == 50 and browser.tab == "runs"
    assert "window='0'" in browser.notice and "tab='<script>'" in browser.notice


def test_back_forward_coalesces_entries_in_the_page():
    script = BackForward._esm
    assert "replaceState" in script and "pointerdown" in script and "popstate" in script
