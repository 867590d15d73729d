"""Priors on parameter tensors, each named by layer and tensor so the app can group them by layer.

A prior is a callable ``prior(param) -> random variable`` used inside a ``pm.Model`` context; it
plays the role of the ``init`` the post passed to each Lasagne layer. Three families:

* :class:`NormalPrior`: every tensor ~ Normal(0, sd), sd = 0.1 in the post.
* :class:`HierarchicalPrior`: one HalfNormal(hyper_sd) hyperprior per tensor, ``{tensor}_sd``,
  and the tensor ~ Normal(0, that hyperprior): each layer learns its own regularization.
* :class:`ScaleMixturePrior`: Blundell et al. (2015), each weight ~ pi N(0, s1^2) + (1 - pi) N(0, s2^2).

Every tensor is random, conv biases included: the post's Lasagne code left conv biases at constant
zero by accident (Lasagne's default ``b`` was not given a prior); here they have the same prior as
every other tensor.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import pymc as pm

from .architecture import ParamSpec

__all__ = ["PRIORS", "HierarchicalPrior", "NormalPrior", "ScaleMixturePrior", "hyperprior_name", "make_prior"]


def hyperprior_name(param: str) -> str:
    """``dense_1.W`` -> ``dense_1.W_sd``, the name of its hyperprior in the model and the run file."""
    return f"{param}_sd"


@dataclass(frozen=True)
class NormalPrior:
    """Every tensor ~ Normal(0, sd)."""

    sd: float = 0.1
    kind = "normal"

    def __call__(self, param: ParamSpec):
        return pm.Normal(param.name, 0.0, self.sd, shape=param.shape, dims=param.dims)


@dataclass(frozen=True)
class HierarchicalPrior:
    """Tensor ~ Normal(0, s) with s ~ HalfNormal(hyper_sd), one s per tensor."""

    hyper_sd: float = 1.0
    kind = "hierarchical"

    def __call__(self, param: ParamSpec):
        sd = pm.HalfNormal(hyperprior_name(param.name), self.hyper_sd)
        return pm.Normal(param.name, 0.0, sd, shape=param.shape, dims=param.dims)


@dataclass(frozen=True)
class ScaleMixturePrior:
    """Each weight ~ pi N(0, sigma1^2) + (1 - pi) N(0, sigma2^2), with sigma1 > sigma2 (Blundell et al. 2015)."""

    pi: float = 0.5
    sigma1: float = 1.0
    sigma2: float = math.exp(-6.0)
    kind = "mixture"

    def __post_init__(self):
        if not 0.0 < self.pi < 1.0 or self.sigma1 <= 0 or self.sigma2 <= 0:
            raise ValueError(f"scale mixture needs 0 < pi < 1 and positive sigmas, got {self}")

    def __call__(self, param: ParamSpec):
        return pm.NormalMixture(
            param.name, w=[self.pi, 1.0 - self.pi], mu=[0.0, 0.0], sigma=[self.sigma1, self.sigma2], shape=param.shape, dims=param.dims
        )


PRIORS = {"normal": NormalPrior, "hierarchical": HierarchicalPrior, "mixture": ScaleMixturePrior}


def make_prior(kind: str, **params: float):
    """A prior by name (``normal``, ``hierarchical``, ``mixture``) with its parameters."""
    if kind not in PRIORS:
        raise ValueError(f"unknown prior {kind!r}; choose one of {', '.join(PRIORS)}")
    return PRIORS[kind](**params)


def prior_params(prior) -> dict[str, float]:
    """The prior's parameters, for the run file's ``prior_params`` attribute."""
    return asdict(prior)
