"""Hostile input against the served app, as a person's browser meets it: script and link payloads in
every URL parameter, in a run file's name and in a string attribute; a damaged ELBO history; a page
of another site that made its name resolve to this machine (DNS rebinding).

Every test asserts that no dialog fires, that the payload shows as the text it is, that the page
holds no link to a host but the app's, and that it asks no other host for anything.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, urlparse

import numpy as np
import pytest

from core import store
from core.synthetic import synthetic_run
from dashboard.serving import VIEWPORT, launch_chromium
from tests.browser.test_dashboard_browser import TEXT_JS, figure, open_app, text

pytestmark = pytest.mark.browser

SCRIPT = "<img src=x onerror=alert(1)>"
LINK = "[Session expired](https://evil.example/login)"
BARE = "https://evil.example www.evil.example cnn-normal.nc"
PAYLOADS = [SCRIPT, "<script>alert(2)</script>", LINK, BARE]
HOSTILE_RUN = "<img src=x onerror=alert(3)>[Session expired](https:evil.example) cnn-normal"
BROKEN = "<img src=x onerror=alert(4)> www.evil.example"

# every link on the page, inside Panel's shadow roots too
LINKS_JS = """
() => {
  const out = [];
  function walk(root) {
    for (const el of root.querySelectorAll("*")) {
      if (el.href !== undefined && el.getAttribute("href") != null) out.push(el.href);
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  }
  walk(document);
  return out;
}
"""


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run with a hostile name and prior, a plain run, one whose ELBO has NaN and infinite values,
    and an unusable file with a hostile name."""
    folder = tmp_path_factory.mktemp("hostile_runs")
    hostile = synthetic_run("cnn", "normal", n_digits=80, seed=1)
    hostile.attrs.update(prior=SCRIPT, label=LINK)
    store.save_run(hostile, folder / f"{HOSTILE_RUN}.nc")
    store.save_run(synthetic_run("mlp", "hierarchical", n_digits=80, seed=2), folder / "mlp-hier.nc")
    damaged = synthetic_run("mlp", "hierarchical", n_digits=80, seed=3)
    elbo = damaged["optimization"]["elbo"].values
    elbo[700:720], elbo[1500] = np.nan, np.inf
    store.save_run(damaged, folder / "nan-elbo.nc")
    (folder / f"{BROKEN}.nc").write_text("not a run")
    return folder


@pytest.fixture
def guarded(page, server):
    """The page, recording every dialog and every request to a host other than the app's."""
    app = urlparse(server).netloc
    dialogs, outside = [], []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("request", lambda request: outside.append(request.url) if _host(request.url) not in (app, "") else None)
    yield page
    assert not dialogs, f"a dialog fired: {dialogs}"
    assert not outside, f"the page asked other hosts: {outside}"
    links = [link for link in page.evaluate(LINKS_JS) if _host(link) not in (app, "")]
    assert not links, f"links to other hosts: {links}"


def _host(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme in ("data", "blob", "about", "javascript"):
        return urlparse(parsed.path).netloc if parsed.scheme == "blob" else ""
    return parsed.netloc


def page_text(page) -> str:
    return page.locator("body").evaluate(TEXT_JS)


@pytest.mark.parametrize("key", ["run", "compare", "tab", "digit", "measure"])
def test_url_parameter_payloads_show_as_text(guarded, server, key):
    for payload in PAYLOADS:
        open_app(guarded, f"{server}?{key}={quote(payload)}")
        notice = text(guarded.locator(".notice"))
        assert f"{key}={payload!r}" in notice, notice
        guarded.wait_for_timeout(300)  # an onerror handler would have fired by now


def test_hostile_file_name_and_attribute_show_as_text(guarded, server):
    open_app(guarded, f"{server}?run={quote(HOSTILE_RUN)}&compare=mlp-hier")
    runs = text(guarded.locator(".runs-table"))
    assert HOSTILE_RUN in runs and LINK in runs
    assert BROKEN in text(guarded.locator(".run-error"))
    guarded.locator(".bk-tab", has_text="Hyperpriors").click()
    note = text(guarded.locator(".no-hyperprior"))
    assert f"prior is {SCRIPT}" in note
    for tab in ("Accuracy", "Uncertainty", "Digits"):
        guarded.locator(".bk-tab", has_text=tab).click()
        guarded.wait_for_timeout(500)
        assert HOSTILE_RUN in page_text(guarded) or tab == "Digits"


def test_nonfinite_elbo_shows_the_finite_part_and_says_what_is_wrong(guarded, server):
    open_app(guarded, f"{server}?run=nan-elbo&tab=elbo")
    warning = text(guarded.locator(".elbo-summary"))
    assert "21 of the 2,000 stored ELBO values are NaN or infinite" in warning
    assert "701–720" in warning and "1,501" in warning
    curve = figure(guarded, "ELBO per iteration")
    values = [v for columns in curve["data"] for k, column in columns.items() if k == "elbo" for v in column]
    assert values and all(v is not None and np.isfinite(v) for v in values[-100:])  # the tail is drawn


def test_a_page_under_another_host_name_gets_no_data(playwright, server):
    """DNS rebinding: the browser resolves evil.test to this machine and sends Host and Origin evil.test,
    Sec-Fetch-Site same-origin; the app must show a refusal and none of the runs."""
    port = urlparse(server).port
    browser = launch_chromium(playwright, ["--host-resolver-rules=MAP evil.test 127.0.0.1"])
    try:
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(f"http://evil.test:{port}/app?run=mlp-hier")
        refusal = text(page.locator(".refused"))
        assert "Not served under this name" in refusal and f"evil.test:{port}" in refusal
        shown = page_text(page)
        assert "mlp-hier" not in shown and "nan-elbo" not in shown
    finally:
        browser.close()
