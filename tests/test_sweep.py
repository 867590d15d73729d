import json
import math
import re
import subprocess
import sys

from core.sweep import mixture_grid
from tests.conftest import ROOT


def test_blundell_grid():
    grid = mixture_grid()
    assert len(grid) == 27
    assert {round(-math.log(p["sigma2"])) for p in grid} == {6, 7, 8}
    assert {p["pi"] for p in grid} == {0.25, 0.5, 0.75}


def sweep(*args: str, module: str = "core") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300, check=False)


def test_bnn_sweep_ranks_points_by_validation_accuracy(mnist_dir, tmp_path):
    done = sweep("sweep", "--iterations", "60", "--sizes", "16", "--n-train", "2000", "--n-test", "300", "--draws", "20",
                 "--pi", "0.5", "--log-s1", "0", "--log-s2", "-6", "-1", "--data-dir", str(mnist_dir), "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    # the sweep's own lines only: dask's INFO logs of its start and stop are kept for -v
    assert not re.search(r"INFO.*distributed\.|distributed\.\S+ - INFO", done.stderr), done.stderr
    assert "validation accuracy" in done.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert len(summary) == 2 and summary[0]["val_accuracy"] >= summary[1]["val_accuracy"]
    assert all((tmp_path / f"{r['name']}.nc").exists() for r in summary)
    assert summary[0]["pi"] == 0.5 and summary[0]["iterations"] == 60
    assert [line.split()[0] for line in done.stdout.splitlines()] == [r["name"] for r in summary]


def test_python_m_core_sweep_is_bnn_sweep():
    done = sweep("--help", module="core.sweep")
    assert done.returncode == 0 and done.stdout.startswith("usage: bnn sweep")
