"""core.runs: train_run's parts (the attributes it writes, the continuation it finds) and evaluate_run."""

import math
from types import SimpleNamespace

import numpy as np

from core import runs, schema, store
from core.architecture import mlp_spec
from core.inference import FitConfig
from core.priors import NormalPrior
from core.synthetic import synthetic_run


def test_the_attributes_of_a_trained_run_are_those_the_schema_defines():
    result = SimpleNamespace(elbo=np.linspace(-100.0, -10.0, 200), backend="jax", wall_time_s=12.0,
                             iterations_per_s=16.6, compile_time_s=3.0)
    attrs = runs.run_attributes(model="mlp", prior_kind="normal", prior=NormalPrior(), spec=mlp_spec((8,)),
                                config=FitConfig(iterations=200), result=result, validation={"accuracy_mode": 0.5,
                                "accuracy_mean": 0.6}, label="try", n_train=500, n_draws=5, command="bnn train")
    schema.check_attrs(attrs | {"accuracy_mode": 0.4, "accuracy_mean": 0.45, "predict_time_s": 1.0})
    assert attrs["iterations"] == 200 and attrs["prior_params"] == {"sd": 0.1} and "epsilon" in attrs
    written = {f.name for f in schema.FIELDS if not f.computed}
    assert written - set(attrs) == {"accuracy_mode", "accuracy_mean", "predict_time_s"}, "every field is written"


def test_model_key_names_what_was_fitted():
    key = runs.model_key(mlp_spec((8,)), "normal", NormalPrior(sd=0.2), 500)
    assert key["prior_params"] == {"sd": 0.2} and key["n_train"] == 500 and key["architecture"].startswith("[{")


def test_evaluate_keeps_every_other_attribute(tmp_path):
    run = synthetic_run("mlp", "hierarchical", n_digits=40)
    run.attrs["from_a_newer_version"] = "kept"  # not defined here: written as the file had it
    path = store.save_run(run, tmp_path / "r.nc")
    runs.evaluate_run(path, n_draws=7, seed=1)
    again = store.load_run(path)
    assert again["predictions"].sizes["draw"] == 7 and again.attrs["n_draws"] == 7
    assert again.attrs["from_a_newer_version"] == "kept" and again.attrs["label"] == "synthetic"
    assert again.attrs["schema_version"] == store.SCHEMA_VERSION and math.isfinite(again.attrs["auroc"])
    for group in ("variational_mean", "variational_sd", "optimization", "posterior"):
        assert again[group].to_dataset().identical(run[group].to_dataset()), group
