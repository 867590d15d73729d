"""The post's networks as PyMC models: a spec (core.architecture) + a prior on every tensor.

The forward pass is :func:`forward`; :func:`build_model` wraps it with mini-batches and a
Categorical likelihood scaled to the full training set (``total_size``), as mini-batch ADVI needs.
"""

from __future__ import annotations

import numpy as np
import pymc as pm

from .architecture import LayerSpec, cnn_spec, mlp_spec, param_specs
from .layers import conv2d, dense, max_pool

__all__ = ["MODELS", "architecture", "build_model", "forward"]

MODELS = ("mlp", "cnn")


def architecture(model: str, sizes: tuple[int, ...] | None = None) -> list[LayerSpec]:
    """The layer spec of ``model``; ``sizes`` overrides the widths (mlp: hidden units, e.g. (800, 800);
    cnn: filters of each conv, then dense units, e.g. (32, 32, 256))."""
    if model == "mlp":
        return mlp_spec(tuple(sizes) if sizes else (800, 800))
    if model == "cnn":
        if sizes and len(sizes) < 3:
            raise ValueError("cnn sizes are the filters of the two conv layers and the dense units, e.g. 32 32 256")
        sizes = tuple(sizes) if sizes else (32, 32, 256)
        return cnn_spec(sizes[:2], 5, sizes[2:])
    raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")


def forward(spec: list[LayerSpec], x, params: dict):
    """Logits of the network ``spec`` for inputs ``x`` (batch, 28, 28, 1); params: name -> tensor.

    returns (batch, 10)
    """
    h = x
    for layer in spec:
        if layer.kind == "max_pool":
            h = max_pool(h, layer.kernel)
        else:
            op = conv2d if layer.kind == "conv2d" else dense
            h = op(h, params[f"{layer.name}.W"], params[f"{layer.name}.b"], layer.nonlinearity)
    return h


def build_model(spec: list[LayerSpec], prior, images: np.ndarray, labels: np.ndarray, batch_size: int = 500) -> pm.Model:
    """A PyMC model of ``spec`` with ``prior`` on every tensor, observing mini-batches.

    images : (n, 28, 28) float32 already scaled   labels : (n,) int
    Call with ``pytensor.config.floatX`` set to the float type wanted (float32 for speed).
    """
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    specs = param_specs(spec)
    coords = {dim: np.arange(size) for p in specs for dim, size in zip(p.dims, p.shape)}
    x = pm.pytensorf.floatX(np.asarray(images).reshape(len(images), 28, 28, 1))
    # labels in PyMC's intX: an int8 cast inside the graph is refused as observed data
    y = pm.pytensorf.intX(np.asarray(labels))
    with pm.Model(coords=coords) as model:
        x_batch, y_batch = pm.Minibatch(x, y, batch_size=batch_size)
        params = {p.name: prior(p) for p in specs}
        logits = forward(spec, x_batch, params)
        pm.Categorical("label", logit_p=logits, observed=y_batch, total_size=len(labels))
    return model
