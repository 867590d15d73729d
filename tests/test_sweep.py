import math

from core.inference import FitConfig
from core.sweep import folder_summary, mixture_grid, run_sweep


def test_blundell_grid():
    grid = mixture_grid()
    assert len(grid) == 27
    assert {round(-math.log(p["sigma2"])) for p in grid} == {6, 7, 8}
    assert {p["pi"] for p in grid} == {0.25, 0.5, 0.75}


def test_sweep_ranks_points_by_validation_accuracy(mnist_dir, tmp_path):
    grid = mixture_grid(pis=(0.5,), log_s1=(0.0,), log_s2=(-6.0, -1.0))
    results = run_sweep("mlp", grid, FitConfig(iterations=60, batch_size=100, learning_rate=0.01), str(mnist_dir),
                        tmp_path, sizes=(16,), n_train=2000, n_test=300)
    assert len(results) == 2 and results[0]["val_accuracy"] >= results[1]["val_accuracy"]
    assert all((tmp_path / f"{r['name']}.nc").exists() for r in results)
    # the folder's summary covers every point trained there, in the same order
    summary = folder_summary(tmp_path)
    assert [r["name"] for r in summary] == [r["name"] for r in results]
    assert summary[0]["pi"] == 0.5 and summary[0]["iterations"] == 60
