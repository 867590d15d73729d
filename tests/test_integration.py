"""Real MNIST subsets through the whole pipeline: CLI -> ADVI -> predictive -> run file."""

import numpy as np
import pytest
import xarray as xr

from core import cli, store
from core.runs import checkpoint_path


@pytest.mark.parametrize("model, sizes, iterations, floor", [
    ("mlp", ["32"], 300, 0.80),
    ("cnn", ["4", "4", "16"], 200, 0.60),
])
def test_tiny_networks_beat_chance(mnist_dir, tmp_path, model, sizes, iterations, floor):
    args = ["train", "--model", model, "--prior", "hierarchical", "--sizes", *sizes, "--iterations", str(iterations),
            "--batch-size", "100", "--learning-rate", "0.01", "--n-train", "5000", "--n-test", "1000",
            "--data-dir", str(mnist_dir), "--out", str(tmp_path), "--name", "tiny", "--no-progress"]
    assert cli.main(args) == 0
    path = tmp_path / "tiny.nc"
    run = store.load_run(path)
    assert run.attrs["accuracy_mode"] > floor, "chance is 0.10"
    assert run["optimization"].sizes["iteration"] == iterations
    assert run["predictions"]["label"].shape == (1, 100, 1000)
    assert set(run["posterior"].data_vars) == {f"{p}_sd" for p in run["variational_mean"].data_vars if "_sd" not in p}
    tree = xr.open_datatree(path, engine="netcdf4")  # readable without this project
    assert tree["predictions_constant_data"]["true_label"].shape == (1000,)
    tree.close()


def test_resume_continues_a_real_run(mnist_dir, tmp_path):
    base = ["train", "--model", "mlp", "--prior", "normal", "--sizes", "16", "--batch-size", "100",
            "--n-train", "2000", "--n-test", "200", "--data-dir", str(mnist_dir), "--out", str(tmp_path),
            "--name", "r", "--checkpoint-every", "50", "--no-progress", "--draws", "20"]
    assert cli.main(base + ["--iterations", "100"]) == 0
    first = store.load_run(tmp_path / "r.nc")["optimization"]["elbo"].values
    assert checkpoint_path(tmp_path, "r").exists()
    assert cli.main(base + ["--iterations", "150", "--resume"]) == 0
    elbo = store.load_run(tmp_path / "r.nc")["optimization"]["elbo"].values
    assert len(elbo) == 150
    np.testing.assert_array_equal(elbo[:100], first)


def test_resume_on_another_machine_continues_from_the_run_file(mnist_dir, tmp_path, capsys):
    """Checkpoints stay on the machine; the run file (in git) is enough to go on elsewhere."""
    base = ["train", "--model", "mlp", "--prior", "hierarchical", "--sizes", "16", "--batch-size", "100",
            "--n-train", "2000", "--n-test", "200", "--data-dir", str(mnist_dir), "--out", str(tmp_path),
            "--name", "r", "--no-progress", "--draws", "20"]
    assert cli.main(base + ["--iterations", "100"]) == 0
    first = store.load_run(tmp_path / "r.nc")
    checkpoint_path(tmp_path, "r").unlink()
    assert cli.main(base + ["--iterations", "150", "--resume"]) == 0
    run = store.load_run(tmp_path / "r.nc")
    elbo = run["optimization"]["elbo"].values
    assert len(elbo) == 150 and run.attrs["iterations"] == 150
    np.testing.assert_array_equal(elbo[:100], first["optimization"]["elbo"].values)
    # it went on from where the stored approximation was, not from a fresh start
    assert abs(elbo[100:110].mean() - elbo[90:100].mean()) < abs(elbo[100:110].mean() - elbo[:10].mean())
    assert run.attrs["wall_time_s"] > first.attrs["wall_time_s"]

    checkpoint_path(tmp_path, "r").unlink()
    assert cli.main(base + ["--iterations", "200", "--resume", "--learning-rate", "0.02"]) == 1
    err = capsys.readouterr().err
    assert "made for other settings" in err and "learning_rate" in err
    # a run that holds its iterations already is left as it is
    before = (tmp_path / "r.nc").stat().st_mtime_ns
    assert cli.main(base + ["--iterations", "150", "--resume"]) == 0
    assert (tmp_path / "r.nc").stat().st_mtime_ns == before


def test_a_run_made_before_the_step_size_floor_continues_as_it_was_fitted(mnist_dir, tmp_path, capsys):
    """Run files without lr_floor / lr_hold were fitted with a cosine to 0: they continue with those
    settings, and the new defaults are refused as other settings."""
    base = ["train", "--model", "mlp", "--prior", "normal", "--sizes", "16", "--batch-size", "100",
            "--n-train", "2000", "--n-test", "200", "--data-dir", str(mnist_dir), "--out", str(tmp_path),
            "--name", "old", "--no-progress", "--draws", "20"]
    before = ["--lr-floor", "0", "--lr-hold", "0"]
    assert cli.main(base + before + ["--iterations", "60"]) == 0
    path = tmp_path / "old.nc"
    run = store.load_run(path)
    del run.attrs["lr_floor"], run.attrs["lr_hold"]  # as such files were written
    store.save_run(run, path)
    checkpoint_path(tmp_path, "old").unlink()

    assert cli.main(base + ["--iterations", "80", "--resume"]) == 1
    err = capsys.readouterr().err
    assert "made for other settings" in err and "lr_floor" in err
    assert cli.main(base + before + ["--iterations", "80", "--resume"]) == 0
    assert store.load_run(path).attrs["iterations"] == 80


def test_map_and_an_ensemble_of_its_seeds(mnist_dir, tmp_path):
    """A MAP run is one network; an ensemble's first member is the MAP fit of the same seed, and its
    members are its draws. Both hold the measures of a point estimate only where they are defined."""
    base = ["train", "--model", "mlp", "--prior", "normal", "--sizes", "32", "--batch-size", "100", "--iterations",
            "150", "--learning-rate", "0.01", "--n-train", "5000", "--n-test", "500", "--data-dir", str(mnist_dir),
            "--out", str(tmp_path), "--no-progress"]
    assert cli.main(base + ["--method", "map", "--name", "m"]) == 0
    assert cli.main(base + ["--method", "ensemble", "--members", "3", "--name", "e"]) == 0
    single, ensemble = store.load_run(tmp_path / "m.nc"), store.load_run(tmp_path / "e.nc")
    assert single.attrs["method"] == "map" and ensemble.attrs["method"] == "ensemble"
    assert single.attrs["accuracy_mode"] > 0.8 and ensemble.attrs["accuracy_mode"] > 0.8
    assert single["members"]["dense_1.W"].shape == (1, 784, 32) and ensemble["members"]["dense_1.W"].shape == (3, 784, 32)
    np.testing.assert_array_equal(single["members"]["dense_1.W"][0], ensemble["members"]["dense_1.W"][0])
    assert not single["variational_mean"].data_vars and ensemble["predictions"]["label"].shape == (1, 3, 500)
    assert set(single["uncertainty"].data_vars) == {"entropy", "least_confidence"}
    assert "mutual_information" in ensemble["uncertainty"] and "mutual_information" in ensemble["shift_digits"]
    assert np.isnan(single["shift"]["auroc_shift"].sel(separating="mutual_information")).all()
    assert single["optimization"]["elbo"][-20:].mean() > single["optimization"]["elbo"][:20].mean()


def test_a_point_estimate_of_the_hierarchical_prior_is_refused(mnist_dir, tmp_path, capsys):
    args = ["train", "--model", "mlp", "--prior", "hierarchical", "--method", "map", "--data-dir", str(mnist_dir),
            "--out", str(tmp_path)]
    with pytest.raises(SystemExit):
        cli.main(args)
    assert "no useful mode" in capsys.readouterr().err and not list(tmp_path.iterdir())
