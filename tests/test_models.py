import numpy as np
import pytest

from core.architecture import param_specs
from core.models import architecture, build_model
from core.priors import HierarchicalPrior, NormalPrior, ScaleMixturePrior, make_prior


@pytest.fixture
def tiny_data():
    rng = np.random.default_rng(0)
    return rng.random((40, 28, 28)).astype(np.float32), rng.integers(0, 10, 40)


def test_post_architectures_have_the_post_parameter_counts():
    count = lambda spec: sum(int(np.prod(p.shape)) for p in param_specs(spec))
    assert count(architecture("mlp")) == 1_276_810
    # the post: 160,298 with constant conv biases; here the 64 conv biases are random too
    assert count(architecture("cnn")) == 160_298 + 64


def test_hierarchical_prior_names_one_hyperprior_per_tensor(tiny_data):
    model = build_model(architecture("cnn", (2, 3, 4)), HierarchicalPrior(), *tiny_data, batch_size=10)
    names = {rv.name for rv in model.free_RVs}
    tensors = {f"{layer}.{t}" for layer in ("conv_1", "conv_2", "dense_1", "dense_2") for t in "Wb"}
    assert names == tensors | {f"{t}_sd" for t in tensors}
    assert model["conv_1.W"].type.shape == (5, 5, 1, 2)
    assert model.named_vars_to_dims["dense_1.W"] == ("dense_1_in", "dense_1_out")


def test_normal_prior_logp(tiny_data):
    model = build_model(architecture("mlp", (3,)), NormalPrior(0.1), *tiny_data, batch_size=10)
    point = {"dense_1.W": np.zeros((784, 3)), "dense_1.b": np.zeros(3), "dense_2.W": np.zeros((3, 10)), "dense_2.b": np.zeros(10)}
    logp = model.compile_logp(vars=[model["dense_1.b"]])(point)
    assert logp == pytest.approx(3 * (-np.log(0.1) - 0.5 * np.log(2 * np.pi)))


def test_scale_mixture_logp(tiny_data):
    prior = ScaleMixturePrior(pi=0.25, sigma1=1.0, sigma2=np.exp(-6))
    model = build_model(architecture("mlp", (3,)), prior, *tiny_data, batch_size=10)
    value = np.array([0.0, 0.3, -2.0])
    from scipy import stats

    expected = np.log(0.25 * stats.norm.pdf(value, 0, 1) + 0.75 * stats.norm.pdf(value, 0, np.exp(-6))).sum()
    logp = model.compile_logp(vars=[model["dense_1.b"]])({**model.initial_point(), "dense_1.b": value})
    assert logp == pytest.approx(expected, rel=1e-6)


def test_make_prior_rejects_unknown_and_bad_mixture():
    with pytest.raises(ValueError, match="unknown prior 'laplace'"):
        make_prior("laplace")
    with pytest.raises(ValueError, match="0 < pi < 1"):
        make_prior("mixture", pi=1.5)


def test_bad_sizes():
    with pytest.raises(ValueError, match="cnn sizes"):
        architecture("cnn", (32,))
    with pytest.raises(ValueError, match="unknown model"):
        architecture("resnet")
