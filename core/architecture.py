"""Network architectures as data: a list of layer specs, and the parameter tensors they imply.

Pure Python: the model builder (PyMC) and the predictive code (NumPy) read the same spec, and a
run file stores it as JSON, so a run can be re-created without this module's defaults.

Images enter as (batch, 28, 28, 1), channels last. A dense layer flattens its input first.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

__all__ = ["LayerSpec", "ParamSpec", "cnn_spec", "mlp_spec", "param_specs", "spec_from_json", "spec_to_json"]

INPUT_SHAPE = (28, 28, 1)
N_CLASSES = 10


@dataclass(frozen=True)
class LayerSpec:
    """One layer. ``kind`` is ``dense``, ``conv2d`` or ``max_pool``.

    ``size`` is the number of units (dense), of filters (conv2d), or unused (max_pool);
    ``kernel`` the conv's square kernel side or the pool's window side.
    ``nonlinearity`` is ``tanh`` or ``softmax`` (the output layer: its logits feed the likelihood).
    """

    name: str
    kind: str
    size: int = 0
    kernel: int = 0
    nonlinearity: str = "tanh"


@dataclass(frozen=True)
class ParamSpec:
    """One parameter tensor: ``name`` like ``dense_1.W``, its shape and dimension names."""

    name: str
    layer: str
    tensor: str
    shape: tuple[int, ...]
    dims: tuple[str, ...]


def mlp_spec(hidden: tuple[int, ...] = (800, 800)) -> list[LayerSpec]:
    """The post's MLP: 784 -> 800 tanh -> 800 tanh -> 10 softmax."""
    layers = [LayerSpec(f"dense_{i + 1}", "dense", n) for i, n in enumerate(hidden)]
    return layers + [LayerSpec(f"dense_{len(hidden) + 1}", "dense", N_CLASSES, nonlinearity="softmax")]


def cnn_spec(filters: tuple[int, ...] = (32, 32), kernel: int = 5, dense: tuple[int, ...] = (256,)) -> list[LayerSpec]:
    """The post's CNN: (conv 5x5 tanh, max-pool 2x2) x 2 -> dense 256 tanh -> dense 10 softmax."""
    layers: list[LayerSpec] = []
    for i, n in enumerate(filters):
        layers.append(LayerSpec(f"conv_{i + 1}", "conv2d", n, kernel))
        layers.append(LayerSpec(f"pool_{i + 1}", "max_pool", kernel=2, nonlinearity=""))
    layers += [LayerSpec(f"dense_{i + 1}", "dense", n) for i, n in enumerate(dense)]
    return layers + [LayerSpec(f"dense_{len(dense) + 1}", "dense", N_CLASSES, nonlinearity="softmax")]


def param_specs(spec: list[LayerSpec], input_shape: tuple[int, ...] = INPUT_SHAPE) -> list[ParamSpec]:
    """Every parameter tensor of the network, in layer order (W before b).

    Conv weights are (kernel, kernel, channels_in, filters); dense weights are (n_in, n_out).
    """
    params = []
    h, w, c = input_shape
    flat = None  # width of the activations once flattened by a dense layer
    for layer in spec:
        if layer.kind == "conv2d":
            k, name = layer.kernel, layer.name
            params.append(ParamSpec(f"{name}.W", name, "W", (k, k, c, layer.size),
                                    (f"{name}_kh", f"{name}_kw", f"{name}_in", f"{name}_out")))
            params.append(ParamSpec(f"{name}.b", name, "b", (layer.size,), (f"{name}_out",)))
            h, w, c = h - k + 1, w - k + 1, layer.size
        elif layer.kind == "max_pool":
            if h % layer.kernel or w % layer.kernel:
                raise ValueError(f"{layer.name}: a {h}x{w} input does not tile into {layer.kernel}x{layer.kernel} windows")
            h, w = h // layer.kernel, w // layer.kernel
        elif layer.kind == "dense":
            n_in = flat if flat is not None else h * w * c
            name = layer.name
            params.append(ParamSpec(f"{name}.W", name, "W", (n_in, layer.size), (f"{name}_in", f"{name}_out")))
            params.append(ParamSpec(f"{name}.b", name, "b", (layer.size,), (f"{name}_out",)))
            flat = layer.size
        else:
            raise ValueError(f"{layer.name}: unknown layer kind {layer.kind!r}")
        if min(h, w) < 1:
            raise ValueError(f"{layer.name}: the input is too small for this layer")
    return params


def spec_to_json(spec: list[LayerSpec]) -> str:
    return json.dumps([asdict(layer) for layer in spec])


def spec_from_json(text: str) -> list[LayerSpec]:
    return [LayerSpec(**layer) for layer in json.loads(text)]
