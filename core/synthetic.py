"""A small but complete run built without training, for the tests, benchmarks and screenshots that need a run file.

It is built by core's own store (:func:`core.store.build_run`), so it has every part a trained run
has; it imports neither PyMC nor the dashboard.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from . import predict, shift, store
from .architecture import cnn_spec, mlp_spec, param_specs, spec_to_json
from .uncertainty import mode_label

__all__ = ["POINT_MEMBERS", "synthetic_run"]


POINT_MEMBERS = {"map": 1, "ensemble": 3}


def synthetic_run(model: str = "mlp", prior: str = "hierarchical", n_digits: int = 300, seed: int = 0,
                  method: str = "advi") -> xr.DataTree:
    """A tiny network with random weights, its predictions on random 'digits' and a fake ELBO curve.

    Digits are noise with a bright block whose position encodes the label; the predictions are the
    network's mixed with the truth, so they are mostly right and partly uncertain. ``method``
    ``map`` or ``ensemble`` gives a point-estimate run of 1 or 3 networks (not for the hierarchical
    prior, which has no point estimate).
    """
    if method != "advi" and prior == "hierarchical":
        raise ValueError("a point estimate has no hyperpriors: give prior='normal' or 'mixture'")
    rng = np.random.default_rng(seed)
    spec = mlp_spec((16,)) if model == "mlp" else cnn_spec((4, 4), 5, (8,))
    labels = rng.integers(0, 10, n_digits).astype(np.int8)
    images = rng.integers(0, 60, (n_digits, 28, 28)).astype(np.uint8)
    for i, y in enumerate(labels):
        images[i, 2 + 2 * y : 6 + 2 * y, 4:24] = 255
    means, sds, hyper_mean, hyper_sd = {}, {}, {}, {}
    for p in param_specs(spec):
        means[p.name] = xr.DataArray(rng.normal(0, 0.3, p.shape).astype(np.float32), dims=p.dims)
        sds[p.name] = xr.DataArray(np.full(p.shape, 0.05, np.float32), dims=p.dims)
        if prior == "hierarchical":
            hyper_mean[f"{p.name}_sd"] = float(rng.normal(-1, 0.5))
            hyper_sd[f"{p.name}_sd"] = 0.1
    weights, spreads = {k: v.values for k, v in means.items()}, {k: v.values for k, v in sds.items()}
    members = None
    if method == "advi":
        n_draws = 20

        def predictive(x, n_draws):
            return predict.sample_probabilities(spec, weights, spreads, x, n_draws=n_draws, seed=seed)
    else:
        n_draws = POINT_MEMBERS[method]
        members = {k: v + rng.normal(0, 0.1, (n_draws, *v.shape)).astype(np.float32) for k, v in weights.items()}
        means, sds = {}, {}

        def predictive(x, n_draws):
            return predict.member_probabilities(spec, members, x)
    probs = predictive(images, n_draws)
    # make the predictions informative: mix the network's draws with the truth, or for about 15%
    # of the digits with a wrong class, so that there are errors to rank
    target = np.where(rng.random(n_digits) < 0.15, (labels + rng.integers(1, 10, n_digits)) % 10, labels)
    onehot = np.eye(10, dtype=np.float32)[target]
    probs = 0.5 * probs + 0.5 * onehot[None] * (rng.random((n_draws, n_digits, 1)) > 0.2)
    probs /= probs.sum(-1, keepdims=True)
    drawn, mean_p, exp_h = predict.summarize_draws(probs)
    for name, mean in hyper_mean.items():
        means[name] = xr.DataArray(np.float32(mean), attrs={"transform": "log"})
        sds[name] = xr.DataArray(np.float32(hyper_sd[name]), attrs={"transform": "log"})
    iterations = 2000
    elbo = -(5e4 * np.exp(-np.arange(iterations) / 300) + 2e4 + rng.normal(0, 500, iterations))
    attrs = {
        "model": model,
        "prior": prior,
        "method": method,
        "prior_params": {"hyper_sd": 1.0} if prior == "hierarchical" else {"sd": 0.1},
        "architecture": spec_to_json(spec),
        "label": "synthetic",
        "iterations": iterations,
        "batch_size": 50,
        "optimizer": "adam",
        "learning_rate": 0.01,
        "seed": seed,
        "backend": "numpy",
        "wall_time_s": 12.5,
        "iterations_per_s": iterations / 12.5,
        "n_draws": n_draws,
        **({"members": n_draws} if members else {}),
        "created": "2026-01-01T00:00:00+00:00",
    }
    attrs["accuracy_mode"] = float((mode_label(drawn) == labels).mean())
    attrs["accuracy_mean"] = float((mean_p.argmax(1) == labels).mean())
    attrs["final_elbo"] = float(elbo[-100:].mean())
    return store.build_run(
        attrs=attrs,
        elbo=elbo,
        means=means,
        sds=sds,
        members=members,
        hyper_draws=predict.hyperprior_draws(hyper_mean, hyper_sd, 200, seed),
        labels=drawn,
        probability=mean_p,
        expected_entropy=exp_h,
        images=images,
        true_labels=labels,
        # 5 draws, not 20: the suite is 70,000 digits, and the tests build many runs
        shift=shift.evaluate_suite(lambda x: predictive(x, 5), images, labels),
    )
