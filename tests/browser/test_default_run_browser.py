"""The run the app opens on: the one the runs folder's default-run.txt names, as a person sees it."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import store
from core.synthetic import synthetic_run
from dashboard import rundata
from dashboard.views import CSS
from tests.browser.test_dashboard_browser import control, open_app, query, text

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two runs and a default-run.txt naming the less accurate one."""
    folder = tmp_path_factory.mktemp("default_runs")
    store.save_run(synthetic_run("mlp", "hierarchical", n_digits=100, seed=0), folder / "first.nc")
    store.save_run(synthetic_run("cnn", "normal", n_digits=100, seed=1), folder / "second.nc")
    accuracies = {s.name: s.accuracy for s in rundata.list_runs(folder)}
    chosen = min(accuracies, key=accuracies.get)
    (folder / rundata.DEFAULT_RUN_FILE).write_text(f"{chosen}\n")
    return folder


def test_the_app_opens_on_the_run_default_run_txt_names(page, server, runs_dir):
    chosen = (runs_dir / rundata.DEFAULT_RUN_FILE).read_text().strip()
    open_app(page, server)
    assert query(page)["run"] == chosen and control(page, "Run", "select").input_value() == chosen
    assert not page.locator(f".{CSS.NOTICE}").filter(visible=True).count()
    other = "second" if chosen == "first" else "first"
    open_app(page, f"{server}?run={other}")  # the URL still chooses
    assert query(page)["run"] == other


def test_a_default_run_txt_naming_no_run_is_ignored_with_a_notice(page, server, runs_dir):
    default = runs_dir / rundata.DEFAULT_RUN_FILE
    chosen = default.read_text()
    default.write_text("../../etc/passwd")
    try:
        open_app(page, server)
        notice = text(page.locator(f".{CSS.NOTICE}"))
        assert "default-run.txt names '../../etc/passwd'" in notice and "most accurate" in notice
        best = max(rundata.list_runs(runs_dir), key=lambda s: s.accuracy).name
        assert query(page)["run"] == best
    finally:
        default.write_text(chosen)
