"""dashboard.rundata and dashboard.state on a folder of small synthetic runs, without a server."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from core import store
from core.synthetic import synthetic_run
from core.uncertainty import MEASURES
from dashboard import rundata, stats
from dashboard.probe_images import TRANSFORM_KEYS
from dashboard.state import PAGE_SIZE, URL_PARAMETERS, RunBrowser

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Two hierarchical runs, a fixed-prior CNN run, a corrupt file and a file of another schema."""
    path = tmp_path_factory.mktemp("runs")
    store.save_run(synthetic_run("mlp", "hierarchical", n_digits=300, seed=0), path / "a-mlp-hier.nc")
    store.save_run(synthetic_run("mlp", "hierarchical", n_digits=200, seed=1), path / "b-mlp-hier.nc")
    store.save_run(synthetic_run("cnn", "normal", n_digits=150, seed=2), path / "c-cnn-normal.nc")
    (path / "corrupt.nc").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    xr.Dataset({"x": ("t", np.arange(3))}).to_netcdf(path / "other.nc", engine="netcdf4")
    return path


@pytest.fixture
def browser(folder) -> RunBrowser:
    return RunBrowser(folder)


def test_dashboard_does_not_import_training_code():
    code = "import dashboard.app, sys; assert 'pymc' not in sys.modules and 'pytensor' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


def test_listing_keeps_unusable_files_with_their_messages(browser):
    assert browser.param.run.objects == ["a-mlp-hier", "b-mlp-hier", "c-cnn-normal"]
    errors = {s.name: s.error for s in browser.errors}
    assert set(errors) == {"corrupt", "other"}
    assert "corrupt or truncated" in errors["corrupt"]
    assert "not a bnn-mnist-run file" in errors["other"]
    best = max((s for s in browser.summaries if not s.error), key=lambda s: s.accuracy).name
    assert browser.run == best and browser.data.name == best


def test_the_default_run_file_names_the_first_run(folder, tmp_path):
    (tmp_path / "runs").symlink_to(folder)
    runs = tmp_path / "runs"
    summaries = rundata.list_runs(runs)
    best = max((s for s in summaries if not s.error), key=lambda s: s.accuracy).name
    assert rundata.default_run(runs, summaries) == (best, "")
    named = tmp_path / "named"
    named.mkdir()
    for path in folder.glob("*.nc"):
        (named / path.name).symlink_to(path)
    listing = rundata.list_runs(named)
    (named / rundata.DEFAULT_RUN_FILE).write_text("c-cnn-normal\n")
    assert rundata.default_run(named, listing) == ("c-cnn-normal", "")
    assert RunBrowser(named).run == "c-cnn-normal"
    for bad in ("../a-mlp-hier", "corrupt", "a-mlp-hier.nc", str(folder / "a-mlp-hier.nc")):
        (named / rundata.DEFAULT_RUN_FILE).write_text(bad)  # a path, an unusable run, a file name: refused
        name, notice = rundata.default_run(named, listing)
        assert name == best and repr(bad) in notice and rundata.DEFAULT_RUN_FILE in notice
    browser = RunBrowser(named)
    assert browser.run == best and rundata.DEFAULT_RUN_FILE in browser.notice


def test_empty_or_missing_folder_has_no_run(tmp_path):
    for path in (tmp_path, tmp_path / "missing"):
        browser = RunBrowser(path)
        assert browser.data is None and browser.param.run.objects == []
        assert rundata.default_run(path, browser.summaries) == (None, "")


def test_runs_are_cached_by_path_and_mtime(folder, tmp_path):
    first = rundata.run_data(folder / "a-mlp-hier.nc")
    assert rundata.run_data(folder / "a-mlp-hier.nc") is first
    copy = tmp_path / "copy.nc"
    store.save_run(synthetic_run("mlp", "hierarchical", n_digits=50, seed=5), copy)
    assert rundata.run_data(copy).n_digits == 50
    store.save_run(synthetic_run("mlp", "hierarchical", n_digits=60, seed=5), copy)
    os.utime(copy, ns=(1, os.stat(copy).st_mtime_ns + 10**9))  # a later mtime, whatever the clock's resolution
    assert rundata.run_data(copy).n_digits == 60


def test_a_vanished_file_is_a_run_file_error(tmp_path):
    with pytest.raises(store.RunFileError, match="gone"):
        rundata.run_data(tmp_path / "deleted.nc")


def test_run_data_derives_labels_measures_and_weights(browser):
    browser.run = "a-mlp-hier"
    data = browser.data
    assert data.labels.shape == (20, 300)
    assert set(data.measures) == set(MEASURES)
    assert all(v.shape == (300,) for v in data.measures.values())
    assert data.correct.mean() == pytest.approx(data.attrs["accuracy_mode"])
    assert list(data.hyperpriors) == ["dense_1.W_sd", "dense_1.b_sd", "dense_2.W_sd", "dense_2.b_sd"]
    assert data.layers == ("dense_1", "dense_2")
    assert data.layer_tensors("dense_1") == ("dense_1.W", "dense_1.b") and data.layer_tensors("conv_1") == ()
    summary = rundata.weight_summary(data, "dense_1.W")
    assert summary.size == 784 * 16 and summary.mean.total == 784 * 16
    assert rundata.weight_summary(data, "dense_1.W") is summary  # computed once per loaded run


def test_runs_tested_on_other_digits_are_told_apart(folder):
    a, b = rundata.run_data(folder / "a-mlp-hier.nc"), rundata.run_data(folder / "b-mlp-hier.nc")
    assert rundata.different_digits(a, a) is None
    assert "300" in rundata.different_digits(a, b) and "200" in rundata.different_digits(a, b)
    same_size = dataclasses.replace(a, true=(a.true + 1) % 10)
    assert "labels" in rundata.different_digits(a, same_size)
    other_images = dataclasses.replace(a, images=a.images[::-1])
    assert "images" in rundata.different_digits(a, other_images)


def test_switching_run_updates_data_layers_digit_and_bounds_in_one_event(browser):
    browser.run = "a-mlp-hier"
    seen = []
    browser.param.watch(lambda *events: seen.append({e.name for e in events}), ["data", "layer", "digit", "start"])
    browser.run = "c-cnn-normal"
    assert len(seen) == 1 and {"data", "layer", "digit"} <= seen[0]  # a view of these is built once, for the new run
    assert browser.data.name == "c-cnn-normal"
    assert browser.param.layer.objects == ["conv_1", "conv_2", "dense_1", "dense_2"] and browser.layer == "conv_1"
    assert browser.param.digit.bounds == (0, 149)
    assert browser.digit == rundata.gallery_order(browser.data, browser.measure)[0]
    assert browser.start == stats.elbo_settled_start(browser.data.elbo.values)  # past any initial drop
    assert browser.log_scale


def test_the_data_params_are_set_by_the_browser_only(browser):
    with pytest.raises(TypeError, match="Constant"):
        browser.data = None
    with pytest.raises(TypeError, match="Constant"):
        browser.compared = browser.data


def test_comparing_loads_the_compared_run_once(browser):
    browser.run = "a-mlp-hier"
    browser.compare = "b-mlp-hier"
    assert browser.compared is rundata.run_data(browser.folder / "b-mlp-hier.nc")
    assert (browser.data.name, browser.compared.name) == ("a-mlp-hier", "b-mlp-hier")
    assert browser.notice == ""
    browser.run = "b-mlp-hier"  # a run is not compared with itself
    assert browser.compare == "" and browser.compared is None


@pytest.mark.parametrize("measure", list(MEASURES))
def test_gallery_shows_misclassified_most_uncertain_first(browser, measure):
    browser.run = "a-mlp-hier"
    data = browser.data
    browser.measure = measure
    digits = browser.gallery_digits()
    assert set(digits) == set(np.flatnonzero(~data.correct))
    values = data.measures[measure][digits]
    assert (np.diff(values) <= 0).all()
    browser.reverse = True
    reversed_values = data.measures[measure][browser.gallery_digits()]
    assert (np.diff(reversed_values) >= 0).all()


def test_gallery_pages(browser):
    browser.run = "a-mlp-hier"
    n = len(browser.gallery_digits())
    assert browser.page_count == -(-n // PAGE_SIZE)
    np.testing.assert_array_equal(browser.page_digits(), browser.gallery_digits()[:PAGE_SIZE])
    browser.turn_page(1)
    assert browser.page == min(1, browser.page_count - 1)
    browser.turn_page(100)
    assert browser.page == browser.page_count - 1
    browser.measure = "entropy"  # a new order starts at its first page
    assert browser.page == 0


def test_confusion_cell_filters_the_gallery_and_inspects_its_first_digit(browser):
    browser.run = "a-mlp-hier"
    data = browser.data
    true, predicted = data.true[~data.correct][0], data.predicted[~data.correct][0]
    browser.select_cell(true, predicted)
    assert browser.tab == "digits" and browser.cell == (true, predicted)
    digits = browser.gallery_digits()
    assert len(digits) > 0
    assert (data.true[digits] == true).all() and (data.predicted[digits] == predicted).all()
    assert len(digits) == ((data.true == true) & (data.predicted == predicted)).sum()
    assert browser.digit == digits[0]
    browser.select_cell(3, 3)  # the diagonal: correct digits of class 3
    assert data.correct[browser.gallery_digits()].all()


def test_an_out_of_range_digit_is_refused_with_a_reason(browser):
    before = browser.digit
    last = browser.data.n_digits - 1
    for bad in (last + 1, 99999, -1):
        refusal = browser.select_digit(bad)
        assert str(bad) in refusal and f"0 to {last:,}" in refusal and browser.digit == before
    assert browser.select_digit(last) == "" and browser.digit == last


def test_url_rejects_paths_and_unknown_values(browser):
    browser.run = "a-mlp-hier"
    notices = browser.apply_query({"run": "../../etc/passwd", "tab": "secrets", "measure": "x", "digit": "-3"})
    assert len(notices) == 4
    assert browser.run == "a-mlp-hier" and browser.tab == "runs" and browser.measure == "chi_square"
    assert "../../etc/passwd" in browser.notice
    for bad in ("300", "1e3", "²", "7 ", ""):
        assert browser.apply_query({"digit": bad}), bad
    assert browser.apply_query({"run": "corrupt"})  # listed, but not usable
    assert browser.apply_query({"compare": "/tmp/x"})


@pytest.mark.parametrize("key, bad", [
    ("layer", "conv_9"), ("layer", "../dense_1"), ("window", "0"), ("window", "5001"), ("window", "-5"),
    ("start", "0"), ("start", "99999"), ("start", "1.5"), ("log_scale", "yes"), ("log_scale", "True"),
    ("reverse", "1"), ("cell", "2"), ("cell", "2,10"), ("cell", "2,-1"), ("cell", "a,b"), ("cell", "1,2,3"),
    ("page", "0"), ("page", "999"), ("page", "x"),
])
def test_url_settings_are_validated_with_a_notice(browser, key, bad):
    browser.run = "a-mlp-hier"
    before = browser.query()
    notices = browser.apply_query({key: bad})
    assert len(notices) == 1 and f"{key}={bad!r}" in notices[0] and f"{key}={bad!r}" in browser.notice
    assert browser.query() == before


def test_url_settings_round_trip(browser):
    data = rundata.run_data(browser.folder / "a-mlp-hier.nc")
    true, predicted = int(data.true[~data.correct][0]), int(data.predicted[~data.correct][0])
    query = {"run": "a-mlp-hier", "compare": "b-mlp-hier", "tab": "weights", "measure": "entropy", "layer": "dense_2",
             "window": "200", "start": "40", "log_scale": "false", "cell": f"{true},{predicted}", "reverse": "true",
             "page": "1", "digit": "17"}
    assert browser.apply_query(query) == []
    assert (browser.layer, browser.window, browser.start, browser.log_scale, browser.cell, browser.reverse) == (
        "dense_2", 200, 40, False, (true, predicted), True)
    assert browser.query() == query
    again = RunBrowser(browser.folder)
    again.apply_query(browser.query())
    assert again.query() == query
    # a URL without compare or cell shows no comparison and no filter (the entry back went to had none)
    assert browser.apply_query({"run": "a-mlp-hier"}) == []
    assert browser.compare == "" and browser.compared is None and browser.cell is None


def test_url_applies_valid_values_in_order(browser):
    assert (
        browser.apply_query(
            {"digit": "120", "run": "c-cnn-normal", "tab": "digits", "measure": "entropy", "compare": "a-mlp-hier"}
        )
        == []
    )
    assert (browser.run, browser.digit, browser.tab, browser.measure, browser.compare) == (
        "c-cnn-normal",
        120,
        "digits",
        "entropy",
        "a-mlp-hier",
    )
    assert (browser.data.name, browser.compared.name) == ("c-cnn-normal", "a-mlp-hier")
    query = browser.query()
    assert {k: query[k] for k in ("run", "tab", "digit", "measure", "compare")} == {
        "run": "c-cnn-normal",
        "tab": "digits",
        "digit": "120",
        "measure": "entropy",
        "compare": "a-mlp-hier",
    }
    probe = ("probe", "probe_digit", *TRANSFORM_KEYS)  # the probe's settings at their defaults are left out
    assert list(query) == [k for k in URL_PARAMETERS if k != "cell" and k not in probe]


def test_inspector_probabilities_are_cached_draws_per_class(browser):
    probs = rundata.inspector_probabilities(browser.data, 7)
    assert probs.shape == (100, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert rundata.inspector_probabilities(browser.data, 7) is probs


def test_a_file_damaged_while_served_keeps_the_open_session_consistent(tmp_path):
    import panel as pn

    store.save_run(synthetic_run("mlp", "hierarchical", n_digits=80, seed=5), tmp_path / "a.nc")
    store.save_run(synthetic_run("cnn", "normal", n_digits=80, seed=6), tmp_path / "b.nc")
    browser = RunBrowser(tmp_path)
    browser.run = "a"
    data = browser.data
    # the open run's file is truncated, and the app's cache lets go of it
    with open(tmp_path / "a.nc", "r+b") as f:
        f.truncate(1000)
    pn.state.clear_caches()
    browser.digit = 11
    probs = rundata.inspector_probabilities(browser.data, browser.digit)  # from the loaded run, not the file
    assert browser.data is data and probs.shape == (100, 10) and browser.notice == ""
    # the damaged run is dropped with a message as soon as the session asks for it again
    browser.run = "b"
    browser.run = "a"
    assert browser.run == "b" and "a.nc" in browser.notice and browser.param.run.objects == ["b"]


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from([*URL_PARAMETERS, "other"]), st.text(max_size=30)))
def test_any_url_query_leaves_a_valid_state(folder, query):
    browser = RunBrowser(folder)
    notices = browser.apply_query(query)
    assert browser.run in browser.param.run.objects and browser.compare in browser.param.compare.objects
    assert 0 <= browser.digit < browser.data.n_digits
    assert browser.layer in browser.data.layers and 0 <= browser.page < browser.page_count
    assert (browser.compared is None) == (browser.compare == "")
    for notice in notices:  # each rejected value is named, as typed, in its notice
        key = notice.split("=", 1)[0].removeprefix("URL parameter ")
        assert repr(query[key]) in notice
