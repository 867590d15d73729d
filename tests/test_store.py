import os
import re
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from core import store, uncertainty
from core.store import RunFileError
from core.synthetic import synthetic_run


@pytest.fixture
def run():
    return synthetic_run("mlp", "hierarchical", n_digits=50)


def test_round_trip_keeps_every_group(tmp_path, run):
    path = store.save_run(run, tmp_path / "a.nc")
    back = store.load_run(path)
    for group in store.REQUIRED:
        xr.testing.assert_equal(back[group].to_dataset(), run[group].to_dataset())
    assert back.attrs["schema_version"] == store.SCHEMA_VERSION
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o044 == 0o044 & ~umask, "readable by others, as the umask allows"
    attrs = store.run_attrs(back)
    assert attrs["prior_params"] == {"hyper_sd": 1.0} and isinstance(attrs["architecture"], list)
    assert back["predictions"]["label"].dtype == np.int8
    assert back["predictions"]["label"].dims == ("chain", "draw", "digit")


def test_opens_without_this_project(tmp_path, run):
    path = store.save_run(run, tmp_path / "a.nc")
    tree = xr.open_datatree(path, engine="netcdf4")
    assert {"posterior", "variational_mean", "predictions", "optimization"} <= set(tree.children)
    assert tree["posterior"]["dense_1.W_sd"].dims == ("chain", "draw")
    tree.close()


def test_truncated_run_is_ours_to_make_again(tmp_path, run):
    """Only a file that holds our schema marker is called a damaged run, to be deleted and trained again."""
    path = store.save_run(run, tmp_path / "a.nc")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(RunFileError, match=r"^a.nc: a damaged run file, corrupt or truncated \(.*\); delete it and "
                                           r"run its `bnn train` command again"):
        store.load_run(path)


@pytest.mark.parametrize("content, why", [
    (b"hello", "neither netCDF nor HDF5"),
    (b"", "neither netCDF nor HDF5"),
    (b"\x89HDF\r\n\x1a\n" + b"\0" * 64, "a netCDF/HDF5 file that cannot be read, corrupt or truncated"),
])
def test_a_file_that_is_not_a_run_is_not_advised_deleted(tmp_path, content, why):
    (tmp_path / "junk.nc").write_bytes(content)
    for load in (store.load_run, store.upgrade_run):
        with pytest.raises(RunFileError, match=rf"^junk.nc: not a run file \({re.escape(why)}") as error:
            load(tmp_path / "junk.nc")
        assert "delete" not in str(error.value).lower() and "`bnn train` wrote" in str(error.value)
    assert (tmp_path / "junk.nc").read_bytes() == content


def test_missing_file_and_folder(tmp_path):
    for load in (store.load_run, store.upgrade_run):
        with pytest.raises(RunFileError, match=rf"^{re.escape(str(tmp_path / 'nope.nc'))}: not found; `bnn list"):
            load(tmp_path / "nope.nc")
        with pytest.raises(RunFileError, match=rf"^{re.escape(str(tmp_path))}: a folder, not a run file; `bnn list"):
            load(tmp_path)


def test_foreign_netcdf(tmp_path):
    xr.Dataset({"a": ("x", [1, 2])}).to_netcdf(tmp_path / "other.nc", engine="netcdf4")
    with pytest.raises(RunFileError, match="^other.nc: not a run file \\(a netCDF file, but not a bnn-mnist-run file"):
        store.load_run(tmp_path / "other.nc")


def test_a_run_made_before_compile_time_was_stored_loads(tmp_path, run):
    run.attrs.pop("compile_time_s", None)
    path = store.save_run(run, tmp_path / "old.nc")
    assert "compile_time_s" not in store.load_run(path).attrs
    assert store.list_runs(tmp_path)[0].error == ""


@pytest.mark.parametrize("version, message", [(store.SCHEMA_VERSION + 1, "newer than this program"), (0, "older")])
def test_other_schema_version(tmp_path, run, version, message):
    run.attrs["schema_version"] = version
    path = store.save_run(run, tmp_path / "v.nc")
    with pytest.raises(RunFileError, match=f"v.nc: schema version {version} is {message}"):
        store.load_run(path)


def test_version_1_is_upgraded_to_the_full_data_elbo(tmp_path, run):
    run.attrs.update(schema_version=1, n_train=1000, batch_size=10, final_elbo=-3.5)
    elbo = run["optimization"]["elbo"].values.copy()
    path = store.save_run(run.drop_nodes("uncertainty"), tmp_path / "old.nc")
    with pytest.raises(RunFileError, match=r"old.nc: schema version 1 is older .* `bnn upgrade old.nc` .*"
                                           r"\(the ELBO on the full-data scale, the stored uncertainty measures, the shift suite"):
        store.load_run(path)
    assert store.upgrade_run(path) is True
    back = store.load_run(path)
    np.testing.assert_allclose(back["optimization"]["elbo"].values, elbo * 100, rtol=1e-6)
    assert back.attrs["final_elbo"] == pytest.approx(-350.0)
    xr.testing.assert_identical(back["uncertainty"].to_dataset(), run["uncertainty"].to_dataset())
    assert store.upgrade_run(path) is False, "a current file is left as it is"
    np.testing.assert_allclose(store.load_run(path)["optimization"]["elbo"].values, elbo * 100, rtol=1e-6)


def test_version_2_is_upgraded_with_the_uncertainty_measures(tmp_path, run):
    old = run.drop_nodes("uncertainty")
    old.attrs["schema_version"] = 2
    path = store.save_run(old, tmp_path / "v2.nc")
    with pytest.raises(RunFileError, match=r"v2.nc: schema version 2 is older .* \(the stored uncertainty measures, "
                                           r"the shift suite, from the run's own predictive \(minutes\); nothing else"):
        store.load_run(path)
    assert store.upgrade_run(path) is True
    back = store.load_run(path)
    xr.testing.assert_identical(back["uncertainty"].to_dataset(), run["uncertainty"].to_dataset())
    xr.testing.assert_equal(back["optimization"].to_dataset(), run["optimization"].to_dataset())


def test_version_3_is_upgraded_with_the_shift_suite_of_its_own_predictive(tmp_path, run):
    old = run.drop_nodes(list(store.SHIFT_GROUPS))
    old.attrs["schema_version"] = 3
    path = store.save_run(old, tmp_path / "v3.nc")
    with pytest.raises(RunFileError, match=r"v3.nc: schema version 3 is older .* `bnn upgrade v3.nc` .*\(the shift suite"):
        store.load_run(path)
    done = []
    assert store.upgrade_run(path, progress=lambda *a: done.append(a)) is True
    back = store.load_run(path)
    assert done[-1][:2] == (36, 36) and back.attrs["schema_version"] == 4
    expected = store.shift_groups(back)  # the run's own predictive: n_draws draws, its seed
    for group in store.SHIFT_GROUPS:
        xr.testing.assert_allclose(back[group].to_dataset(), expected[group])
    xr.testing.assert_identical(back["predictions"].to_dataset(), run["predictions"].to_dataset())


def test_stored_measures_are_those_of_core_uncertainty(run):
    predictions = run["predictions"]
    labels = predictions["label"].values.reshape(-1, predictions.sizes["digit"])
    true = run["predictions_constant_data"]["true_label"].values
    stored = run["uncertainty"]
    assert set(stored.data_vars) == set(uncertainty.MEASURES)
    for name, label in uncertainty.MEASURES.items():
        values = uncertainty.measure(name, labels, predictions["probability"].values,
                                     predictions["expected_entropy"].values)
        np.testing.assert_allclose(stored[name].values, values, rtol=1e-6)
        assert stored[name].dtype == np.float32 and stored[name].attrs["long_name"] == label
        assert stored[name].attrs["auroc"] == uncertainty.auroc(values, uncertainty.mode_label(labels) != true)


def test_missing_group(tmp_path, run):
    del run["optimization"]
    with pytest.raises(RunFileError, match="missing group /optimization"):
        store.validate(run, "x")


def test_interrupted_write_leaves_no_file(tmp_path, run, monkeypatch):
    old = store.save_run(run, tmp_path / "a.nc")
    before = old.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.DataTree, "to_netcdf", crash)
    with pytest.raises(KeyboardInterrupt):
        store.save_run(run, tmp_path / "a.nc")
    with pytest.raises(KeyboardInterrupt):
        store.save_run(run, tmp_path / "b.nc")
    assert sorted(os.listdir(tmp_path)) == ["a.nc"]
    assert old.read_bytes() == before


def test_list_runs_reports_bad_files(tmp_path, run):
    store.save_run(run, tmp_path / "good.nc")
    (tmp_path / "bad.nc").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    (tmp_path / "text.nc").write_text("hello")
    (tmp_path / ".hidden.tmp.nc").write_text("in progress")
    summaries = {s.name: s for s in store.list_runs(tmp_path)}
    assert set(summaries) == {"good", "bad", "text"}
    assert summaries["good"].error == "" and summaries["good"].model == "mlp"
    assert summaries["bad"].error.startswith("bad.nc: not a run file (") and "corrupt or truncated" in summaries["bad"].error
    assert summaries["text"].error.startswith("text.nc: not a run file (neither netCDF nor HDF5)")
    for name in ("bad", "text"):  # worded as loading words them
        with pytest.raises(RunFileError) as loading:
            store.load_run(tmp_path / f"{name}.nc")
        assert str(loading.value).split(":")[:2] == summaries[name].error.split(":")[:2]
    assert store.list_runs(tmp_path / "nope") == []


def test_save_run_names_its_temporary_files_as_the_cleaner_expects(tmp_path, run, monkeypatch):
    written = []

    def crash(self, path, *args, **kwargs):
        written.append(Path(path))
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.DataTree, "to_netcdf", crash)
    with pytest.raises(KeyboardInterrupt):
        store.save_run(run, tmp_path / "mlp-normal.seed0.nc")
    assert written[0].parent == tmp_path and store.TEMP_NAME.fullmatch(written[0].name)


def test_stale_temporaries_are_removed_and_only_they(tmp_path):
    old = time.time() - store.STALE_TEMP_S - 60
    stale = tmp_path / ".mlp-normal.k3j_x9qa.tmp"  # a write killed long ago
    fresh = tmp_path / ".mlp-normal.a1b2c3d4.tmp"  # a write going on now
    others = [tmp_path / ".notes.tmp", tmp_path / "mlp-normal.a1b2c3d4.tmp", tmp_path / ".mlp-normal.a1b2c3d4.nc"]
    for path in (stale, fresh, *others):
        path.write_bytes(b"")
        if path is not fresh:
            os.utime(path, (old, old))
    assert store.remove_stale_temporaries(tmp_path) == [stale]
    assert not stale.exists() and fresh.exists() and all(p.exists() for p in others)
    assert store.remove_stale_temporaries(tmp_path / "nope") == []


def test_listing_checks_the_layout_as_loading_does(tmp_path, run):
    """The listing reads only the file's header; it must reject what load_run rejects, with the same message."""
    newer = run.copy(deep=False)
    newer.attrs = {**run.attrs, "schema_version": store.SCHEMA_VERSION + 1}
    store.save_run(newer, tmp_path / "newer.nc")
    store.save_run(run.drop_nodes("optimization"), tmp_path / "nogroup.nc")
    good = store.save_run(run, tmp_path / "good.nc")
    (tmp_path / "truncated.nc").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    summaries = {s.name: s for s in store.list_runs(tmp_path)}
    assert summaries["good"].error == "" and summaries["good"].iterations == run.attrs["iterations"]
    for name in ("newer", "nogroup", "truncated"):
        with pytest.raises(RunFileError) as loading:
            store.load_run(tmp_path / f"{name}.nc")
        assert summaries[name].error, name
        if name != "truncated":  # netCDF4 and xarray word a damaged file differently; both say "corrupt or truncated"
            assert summaries[name].error == str(loading.value)
        else:
            assert "corrupt or truncated" in summaries[name].error and "corrupt or truncated" in str(loading.value)


def test_the_approximation_is_read_back_by_name(tmp_path, run):
    back = store.load_run(store.save_run(run, tmp_path / "a.nc"))
    means, sds = store.approximation(back)
    assert list(means) == list(run["variational_mean"].data_vars) == list(sds)
    np.testing.assert_array_equal(means["dense_1.W"], run["variational_mean"]["dense_1.W"].values)
    assert sds["dense_1.W_sd"].shape == () and means["dense_1.W"].shape == (784, 16)
    only = store.approximation(back, ["dense_2.b", "dense_1.W"])
    assert [list(d) for d in only] == [["dense_2.b", "dense_1.W"]] * 2


def test_reading_with_the_defaults_of_older_files(run):
    run.attrs.pop("lr_floor", None)
    attrs = store.run_attrs(run, defaults=True)
    assert attrs["lr_floor"] == 0.0 and attrs["model"] == "mlp" and np.isnan(attrs["compile_time_s"])
    assert "lr_floor" not in store.run_attrs(run)


@pytest.mark.parametrize("method, n", [("map", 1), ("ensemble", 3)])
def test_a_point_estimate_holds_its_networks_and_the_measures_defined_for_them(tmp_path, method, n):
    from core.predict import run_probabilities

    path = store.save_run(synthetic_run("mlp", "normal", n_digits=30, method=method), tmp_path / "p.nc")
    run = store.load_run(path)
    assert store.is_point_estimate(run) and run.attrs["members"] == n and run.attrs["n_draws"] == n
    assert run["members"]["dense_1.W"].dims[0] == "member" and not run["variational_mean"].data_vars
    assert set(run["uncertainty"].data_vars) == set(uncertainty.defined_measures(n))
    # the members are the draws: no seed, no sampling
    p = run_probabilities(run, run["predictions_constant_data"]["image"].values[:4], n_draws=50, seed=1)
    assert p.shape == (n, 4, 10)
    np.testing.assert_array_equal(p, run_probabilities(run, run["predictions_constant_data"]["image"].values[:4], seed=2))


def test_a_point_estimate_without_its_networks_is_incomplete(tmp_path):
    run = synthetic_run("mlp", "normal", n_digits=30, method="map")
    del run["members"]
    with pytest.raises(RunFileError, match="/members"):
        store.validate(run)


def test_spread_measures_are_not_defined_for_a_single_network():
    assert uncertainty.defined_measures(1) == ["entropy", "least_confidence"]
    assert uncertainty.defined_measures(2) == list(uncertainty.MEASURES)
    np.testing.assert_allclose(uncertainty.least_confidence(np.array([[0.7, 0.2, 0.1], [1.0, 0.0, 0.0]])), [0.3, 0.0])
