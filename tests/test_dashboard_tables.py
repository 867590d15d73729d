"""dashboard.tables: the Runs tab's tables and the formatting of numbers."""

from __future__ import annotations

import dataclasses
import math

import pytest

from core import store
from core.synthetic import synthetic_run
from dashboard import rundata, tables


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs")
    store.save_run(synthetic_run("mlp", "hierarchical", n_digits=60, seed=0), path / "mlp-hier.nc")
    store.save_run(synthetic_run("cnn", "normal", n_digits=60, seed=1), path / "cnn-normal.nc")
    (path / "broken.nc").write_bytes(b"not a run")
    return path


@pytest.mark.parametrize("seconds, shown", [(12.34, "12.3 s"), (2700, "45 min"), (7560, "2.1 h"), (math.nan, "–")])
def test_durations(seconds, shown):
    assert tables.duration(seconds) == shown


def test_numbers_and_significant_digits():
    assert tables.number(None, ".2f") == tables.number(math.inf, ".2f") == "–"
    assert tables.number(-47304.07, ",.0f") == "-47,304"
    assert tables.significant(0.0009118819655545162) == "0.0009119"
    assert tables.significant(1.0) == "1" and tables.significant(12345.678) == "1.235e+04"


def test_runs_table_has_the_usable_runs(folder):
    table = tables.runs_table(rundata.list_runs(folder))
    assert list(table["Run"]) == ["cnn-normal", "mlp-hier"]
    assert {"Accuracy (%)", "ELBO at end (nats)", "Training time", "Speed (it/s)"} <= set(table.columns)


def test_run_details_one_column_per_run_with_rounded_values(folder):
    mlp, cnn = (rundata.run_data(folder / f"{name}.nc") for name in ("mlp-hier", "cnn-normal"))
    mixture = dataclasses.replace(cnn, name="mixture", attrs={
        **cnn.attrs, "prior_params": {"pi": 0.25, "sigma1": 1.0, "sigma2": 0.0009118819655545162},
        "learning_rate": 0.0012345678})
    details = tables.run_details([mlp, mixture])
    assert list(details.columns) == ["mlp-hier", "mixture"]
    assert details.loc["Prior", "mlp-hier"] == "hierarchical"
    assert details.loc["Prior parameters", "mixture"] == "pi = 0.25, sigma1 = 1, sigma2 = 0.0009119"
    assert details.loc["Learning rate", "mixture"] == "0.001235"
    assert details.loc["Layers", "mlp-hier"] == "dense_1, dense_2"
    assert details.loc["Accuracy, mode of draws", "mlp-hier"].endswith(" %")
