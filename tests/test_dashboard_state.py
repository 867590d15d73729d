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
from dashboard import rundata
from dashboard.state import PAGE_SIZE, RunBrowser

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
    assert browser.run == "a-mlp-hier" and browser.data.name == "a-mlp-hier"


def test_empty_or_missing_folder_has_no_run(tmp_path):
    for path in (tmp_path, tmp_path / "missing"):
        browser = RunBrowser(path)
        assert browser.data is None and browser.param.run.objects == []


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
    data = browser.data
    assert data.labels.shape == (20, 300)
    assert set(data.measures) == set(MEASURES)
    assert all(v.shape == (300,) for v in data.measures.values())
    assert data.correct.mean() == pytest.approx(data.attrs["accuracy_mode"])
    assert list(data.hyperpriors) == ["dense_1.W_sd", "dense_1.b_sd", "dense_2.W_sd", "dense_2.b_sd"]
    assert data.layers == ("dense_1", "dense_2")
    assert data.weights["dense_1.W"][0].shape == (784 * 16,)


def test_switching_run_updates_layers_digit_and_bounds(browser):
    browser.run = "c-cnn-normal"
    assert browser.data.name == "c-cnn-normal"
    assert browser.param.layer.objects == ["conv_1", "conv_2", "dense_1", "dense_2"] and browser.layer == "conv_1"
    assert browser.param.digit.bounds == (0, 149)
    assert browser.digit == rundata.gallery_order(browser.data, browser.measure)[0]


@pytest.mark.parametrize("measure", list(MEASURES))
def test_gallery_shows_misclassified_most_uncertain_first(browser, measure):
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
    n = len(browser.gallery_digits())
    assert browser.page_count == -(-n // PAGE_SIZE)
    np.testing.assert_array_equal(browser.page_digits(), browser.gallery_digits()[:PAGE_SIZE])
    browser.turn_page(1)
    assert browser.page == min(1, browser.page_count - 1)
    browser.turn_page(100)
    assert browser.page == browser.page_count - 1
    browser.measure = "entropy"  # a new order starts at its first page
    assert browser.page == 0


def test_confusion_cell_filters_the_gallery(browser):
    data = browser.data
    true, predicted = data.true[~data.correct][0], data.predicted[~data.correct][0]
    browser.select_cell(true, predicted)
    assert browser.tab == "digits" and browser.cell == (true, predicted)
    digits = browser.gallery_digits()
    assert len(digits) > 0
    assert (data.true[digits] == true).all() and (data.predicted[digits] == predicted).all()
    assert len(digits) == ((data.true == true) & (data.predicted == predicted)).sum()
    browser.select_cell(3, 3)  # the diagonal: correct digits of class 3
    assert data.correct[browser.gallery_digits()].all()


def test_fixed_prior_runs_say_there_is_no_hyperprior(browser):
    assert rundata.fixed_prior_note(browser.data) is None
    browser.run = "c-cnn-normal"
    note = rundata.fixed_prior_note(browser.data)
    assert "no hyperprior" in note and "sd = 0.1" in note and "normal" in note


def test_mixture_prior_note_gives_its_parameters(browser):
    browser.run = "c-cnn-normal"
    attrs = {**browser.data.attrs, "prior": "mixture", "prior_params": {"pi": 0.5, "sigma1": 1.0, "sigma2": 0.00247875}}
    note = rundata.fixed_prior_note(dataclasses.replace(browser.data, attrs=attrs))
    assert "pi N(0, sigma1²)" in note and "sigma2 = 0.002479" in note and "no hyperprior" in note


def test_url_rejects_paths_and_unknown_values(browser):
    notices = browser.apply_query({"run": "../../etc/passwd", "tab": "secrets", "measure": "x", "digit": "-3"})
    assert len(notices) == 4
    assert browser.run == "a-mlp-hier" and browser.tab == "runs" and browser.measure == "chi_square"
    assert "../../etc/passwd" in browser.notice
    for bad in ("300", "1e3", "²", "7 ", ""):
        assert browser.apply_query({"digit": bad}), bad
    assert browser.apply_query({"run": "corrupt"})  # listed, but not usable
    assert browser.apply_query({"compare": "/tmp/x"})


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
    assert [data.name for data in browser.shown] == ["c-cnn-normal", "a-mlp-hier"]
    assert browser.query() == {
        "run": "c-cnn-normal",
        "tab": "digits",
        "digit": "120",
        "measure": "entropy",
        "compare": "a-mlp-hier",
    }


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
@given(st.dictionaries(st.sampled_from(["run", "compare", "tab", "digit", "measure", "other"]), st.text(max_size=30)))
def test_any_url_query_leaves_a_valid_state(folder, query):
    browser = RunBrowser(folder)
    notices = browser.apply_query(query)
    assert browser.run in browser.param.run.objects and browser.compare in browser.param.compare.objects.values()
    assert 0 <= browser.digit < browser.data.n_digits
    for notice in notices:  # each rejected value is named, as typed, in its notice
        key = notice.split("=", 1)[0].removeprefix("URL parameter ")
        assert repr(query[key]) in notice
