"""Posterior predictive from a stored mean-field approximation, in NumPy (no PyMC, no training data).

Given each weight tensor's variational mean and sd, draw networks and push digits through them.
Two exact ways to draw a layer's pre-activations ``a = x W + b`` with ``W ~ N(mu, sd^2)``:

* global: draw ``W`` once per posterior draw and use it for every digit (one network per draw);
* local (Kingma et al. 2015's local reparameterization): ``a ~ N(x mu + b_mu, x^2 sd^2 + b_sd^2)``
  drawn per digit. Each digit's predictive distribution is exactly the same as with global draws;
  only the correlation between digits within a draw is not kept, which no per-digit statistic uses.

Each layer is drawn the cheaper way (:func:`local_layers`): one normal per weight and draw
(global), or one per output, digit and draw (local). For the whole test set that makes the MLP's
first layer local (its input is the same under every draw, so its mean and variance are computed
once, not 100 times) and the conv layers global; for the inspector's single digit every layer is
local but the CNN's first, so no million-weight draws are made for one digit.

How it runs near the matrix products' floor (see :func:`sample_probabilities`):

* normals by Box-Muller in float32 from the bit generator's raw 64-bit words (:func:`_standard_normal`),
  3.4x faster than ``Generator.standard_normal``, whose ziggurat takes one call per number;
* a global convolution followed by a max-pool takes the pool first: ``pool(tanh(z + b)) = tanh(pool(z) + b)``
  (tanh is increasing, the bias is per channel), and its patches come grouped by their place in the
  pool window, so the pool is an elementwise maximum of contiguous blocks (:func:`_patches`); the
  first layer's patches are the same under every draw and are cut once per chunk of digits;
* the work is cut into tasks (digits x draws) whose arrays stay in the caches, run on one thread per
  core, each with a single-threaded BLAS;
* a convolutional network's large calls (the test set, the shift suite) run its whole forward pass in
  XLA instead, one call per draw and chunk of digits (:func:`_xla_forward`): its convolutions need no
  patch matrix. JAX is imported only then, never for the dashboard's single digits.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import threading

import numpy as np
import xarray as xr
from numpy.lib.stride_tricks import as_strided

from . import store
from .architecture import LayerSpec, param_specs, spec_from_json
from .layers import max_pool

__all__ = [
    "hyperprior_draws",
    "layer_costs",
    "local_layers",
    "member_probabilities",
    "network_params",
    "run_probabilities",
    "sample_probabilities",
    "summarize_draws",
]

_NORMAL_COST = 200  # one normal draw costs about as much as this many multiply-adds (the local/global choice)
_STEP_BUDGET = 2**19  # floats of the largest array of one step (2 MB: a step works in L2, two threads in L3)
_TASK_MACS = 2 * 10**8  # multiply-adds worth a task of their own (~4 ms on one core): less runs in one piece
_MAX_TASKS = 16  # enough tasks to keep the cores evenly busy
_MIN_ROWS = 256  # digits a task keeps for its matrix products when the digits are split among tasks
_WEIGHT_BLOCK = 2**20  # global weights drawn from one stream: a block of draws is about this many normals
_BY_DIGITS: bool | None = None  # cut the work by digits or by draws (None: whichever stores less; tests force it)
_NORMAL_PAIRS = 2**15  # Box-Muller pairs per pass: its temporaries (128 KB each) stay in L2
# A convolutional network's large calls run its whole forward pass in XLA: its convolutions beat
# patches @ W (no patch matrix to write and pack; CNN, 10,000 digits x 100 draws on 2 cores: 27 s against
# 43 s). Below this many multiply-adds NumPy stays, without JAX's import and compile (about 1.5 s, once
# per process and chunk shape).
_XLA_MIN_MACS = 10**11
_XLA_DIGITS = 1000  # digits per XLA call: chunks padded to a multiple of _XLA_PAD, so few shapes compile
_XLA_PAD = 250


def network_params(run: xr.DataTree) -> tuple[list[LayerSpec], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The architecture and each parameter tensor's variational mean and sd, from a loaded run."""
    spec = spec_from_json(run.attrs["architecture"])
    names = [p.name for p in param_specs(spec)]
    mean, sd = run["variational_mean"], run["variational_sd"]
    return spec, {n: mean[n].values for n in names}, {n: sd[n].values for n in names}


def layer_costs(spec: list[LayerSpec]) -> tuple[dict[str, tuple[int, int, int]], int]:
    """Per parameter layer (outputs, weights, multiply-adds) for one digit, and the largest
    intermediate array of one digit under one draw (conv patches, usually)."""
    h, w, c = 28, 28, 1
    costs, largest = {}, h * w * c
    for layer in spec:
        if layer.kind == "conv2d":
            h, w = h - layer.kernel + 1, w - layer.kernel + 1
            fan_in = layer.kernel**2 * c
            largest = max(largest, h * w * fan_in)
            c = layer.size
            costs[layer.name] = (h * w * c, fan_in * c, h * w * fan_in * c)
        elif layer.kind == "max_pool":
            h, w = h // layer.kernel, w // layer.kernel
        else:
            fan_in = h * w * c
            h, w, c = 1, 1, layer.size
            costs[layer.name] = (c, fan_in * c, fan_in * c)
        largest = max(largest, h * w * c)
    return costs, largest


def local_layers(spec: list[LayerSpec], n_digits: int, n_draws: int) -> set[str]:
    """The layers cheaper to draw locally (a normal per output) than globally (a normal per weight).

    The first layer's input is the same under every draw, so drawn locally its mean and variance
    are computed once; later layers cost a matrix product per draw either way (twice, locally).
    """
    costs, _ = layer_costs(spec)
    local = set()
    for i, (name, (outputs, weights, macs)) in enumerate(costs.items()):
        local_cost = n_draws * n_digits * outputs * _NORMAL_COST + 2 * macs * n_digits * (1 if i == 0 else n_draws)
        global_cost = n_draws * weights * _NORMAL_COST + n_draws * n_digits * macs
        if local_cost < global_cost:
            local.add(name)
    return local


# --- normals ------------------------------------------------------------------------------------------------

_RADIUS_SCALE = np.float32(2.0**-32)
_ANGLE_SCALE = np.float32(2 * np.pi * 2.0**-32)


def _bit_generator(seed: int, *key: int) -> np.random.PCG64:
    """The stream of one part of the work: independent of every other key's (SeedSequence spawn keys)."""
    return np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key))


def _standard_normal(bits: np.random.BitGenerator, shape: tuple[int, ...], out: np.ndarray | None = None) -> np.ndarray:
    """Standard normals of ``shape`` (into ``out``, a contiguous float32 array, if given), by Box-Muller
    from ``bits``' raw 64-bit words.

    Each word gives two 32-bit uniforms: ``u1 = (k1 + 1/2) / 2^32`` in (0, 1] and ``u2 = k2 / 2^32``,
    and ``sqrt(-2 ln u1) (cos, sin)(2 pi u2)`` are two independent standard normals (to float32
    rounding; the tails end at 6.8 sd, beyond which the normal has 1e-11 of its mass). Every operation
    is one of NumPy's SIMD float32 loops, on blocks that stay in L2: about 2.5 ns a number on one core
    against 8.5 for ``Generator.standard_normal(dtype=np.float32)`` (AMD EPYC, AVX-512).
    """
    if out is None:
        out = np.empty(shape, np.float32)
    flat = out.reshape(-1)  # a view: out is contiguous
    n = flat.size
    pairs = (n + 1) // 2
    block = max(1, min(pairs, _NORMAL_PAIRS))
    radius, angle = np.empty(block, np.float32), np.empty(block, np.float32)
    for start in range(0, pairs, block):
        m = min(block, pairs - start)
        words = bits.random_raw(m).view(np.uint32)  # 2m uniform 32-bit integers
        r, t = radius[:m], angle[:m]
        np.copyto(r, words[:m], casting="unsafe")
        r += 0.5
        r *= _RADIUS_SCALE
        np.log(r, out=r)
        r *= -2.0
        np.sqrt(r, out=r)
        np.copyto(t, words[m:], casting="unsafe")
        t *= _ANGLE_SCALE
        dst = flat[2 * start : 2 * (start + m)]
        odd = len(dst) < 2 * m  # n odd: the last pair's second number is not wanted
        if odd:
            dst = np.empty(2 * m, np.float32)
        np.cos(t, out=dst[:m])
        dst[:m] *= r
        np.sin(t, out=dst[m:])
        dst[m:] *= r
        if odd:
            flat[2 * start :] = dst[: n - 2 * start]
    return out


def _normal(bits: np.random.BitGenerator, mean: np.ndarray, sd: np.ndarray, shape: tuple[int, ...],
            out: np.ndarray | None = None) -> np.ndarray:
    """``mean + sd * eps`` with eps ~ N(0, 1) of ``shape`` (mean and sd broadcast to it), float32."""
    out = _standard_normal(bits, shape, out)
    out *= sd
    out += mean
    return out


# --- layers on blocks of digits x draws ---------------------------------------------------------------------
#
# Activations are (G, R, ...): R digits under G draws, or (1, R, ...) when they are the same under
# every draw (the input, until the first layer drawn). Weights of global layers are (G, ...).


def _activate(x: np.ndarray, nonlinearity: str) -> np.ndarray:
    """``tanh`` in place; ``softmax`` (and ``""``) leave logits as they are."""
    if nonlinearity == "tanh":
        np.tanh(x, out=x)
    elif nonlinearity not in ("softmax", ""):
        raise ValueError(f"unknown nonlinearity {nonlinearity!r}")
    return x


def _patches(x: np.ndarray, k: int, pool: int = 1, ones: bool = False) -> np.ndarray:
    """Every k x k patch of a valid stride-1 convolution, grouped by the output's place in its pool window.

    x : (R, h, w, c)   returns (pool^2, R * h' * w', k * k * c) with h' = (h - k + 1) // pool (and w'),
    ordered (di, dj, c) as conv weights (k, k, c, o) flatten; with ``ones`` a last column of ones
    (for the bias). Row i of group (pi, pj) is output position (pool * a + pi, pool * b + pj) of digit
    r, for (r, a, b) = i in C order; with pool 1 it is the plain patch matrix. In channels-last order
    a patch row's (dj, c) are one contiguous run of k * c floats, so this is one strided copy with
    runs of that length.
    """
    x = np.ascontiguousarray(x)
    r, h, w, c = x.shape
    a, b = (h - k + 1) // pool, (w - k + 1) // pool
    s_c = x.itemsize  # from the shape: a contiguous array's axes of length 1 may have any stride
    s_w, s_h, s_r = c * s_c, w * c * s_c, h * w * c * s_c
    view = as_strided(x, (pool, pool, r, a, b, k, k * c), (s_h, s_w, s_r, pool * s_h, pool * s_w, s_h, s_c),
                      writeable=False)
    if not ones:
        return np.ascontiguousarray(view).reshape(pool * pool, r * a * b, k * k * c)
    out = np.empty((pool, pool, r, a, b, k * k * c + 1), x.dtype)
    out[..., -1] = 1
    out[..., :-1].reshape(view.shape)[...] = view
    return out.reshape(pool * pool, r * a * b, k * k * c + 1)


def _max_of_groups(z: np.ndarray) -> np.ndarray:
    """Elementwise maximum over axis 0 of contiguous (groups, ...), in place into z[0]."""
    for i in range(1, len(z)):
        np.maximum(z[0], z[i], out=z[0])
    return z[0]


def _conv_global(h: np.ndarray, layer: LayerSpec, W: np.ndarray, b: np.ndarray, pool: int,
                 patches: np.ndarray | None) -> np.ndarray:
    """``pool(nonlinearity(conv(h, W) + b))`` under each of W's G draws (pool 1: no pool).

    h : (1 or G, R, hh, ww, c)   W : (G, k, k, c, o)   b : (G, o)   patches : h's :func:`_patches` with
    ones (the first layer's, cut once per chunk), or None.   returns (G, R, h', w', o)
    """
    g, o, k = W.shape[0], W.shape[-1], layer.kernel
    r = h.shape[1]
    oh, ow = h.shape[2] - k + 1, h.shape[3] - k + 1
    a, bb = oh // pool, ow // pool
    rows, fan_in = r * a * bb, k * k * h.shape[-1]
    if patches is not None or (h.shape[0] == 1 and g > 1):
        # the same input under every draw: one product with every draw's filters side by side, the
        # biases as a last row against the patches' column of ones (max(z + b) = max(z) + b)
        p = _patches(h[0], k, pool, ones=True) if patches is None else patches
        filters = np.concatenate([W.reshape(g, fan_in, o), b[:, None, :]], axis=1)  # (G, fan_in + 1, o)
        filters = filters.transpose(1, 0, 2).reshape(fan_in + 1, g * o)
        z = _max_of_groups((p.reshape(-1, fan_in + 1) @ filters).reshape(pool * pool, rows * g * o))
        out = z.reshape(rows, g, o).transpose(1, 0, 2)
        out = out if g == 1 else np.ascontiguousarray(out)
    else:  # a product per draw, on as many digits at a time as keep the patches within the step budget
        out = np.empty((g, rows, o), np.float32)
        sub = max(1, _STEP_BUDGET // (oh * ow * fan_in))
        for i in range(g):
            for s in range(0, r, sub):
                p = _patches(h[i if h.shape[0] > 1 else 0, s : s + sub], k, pool)
                part = p.shape[1]
                z = _max_of_groups((p.reshape(-1, fan_in) @ W[i].reshape(fan_in, o)).reshape(pool * pool, part * o))
                np.add(z.reshape(part, o), b[i], out=out[i, s * a * bb : s * a * bb + part])
    return _activate(out, layer.nonlinearity).reshape(g, r, a, bb, o)


def _dense_global(h: np.ndarray, layer: LayerSpec, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``nonlinearity(h W + b)`` under each of W's G draws.   h : (1 or G, R, ...)   returns (G, R, o)"""
    g, fan_in, o = W.shape
    x = h.reshape(h.shape[0], h.shape[1], fan_in)
    if x.shape[0] == 1 and g > 1:  # the same input under every draw: one product
        z = x[0] @ W.transpose(1, 0, 2).reshape(fan_in, g * o)
        out = np.add(z.reshape(-1, g, o).transpose(1, 0, 2), b[:, None, :])
    else:
        out = np.matmul(x, W)
        out += b[:, None, :]
    return _activate(out, layer.nonlinearity)


def _local_moments(h: np.ndarray, layer: LayerSpec, local: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sd of the pre-activations under local draws: (Gh, R, ...) for h's (Gh, R, ...)."""
    gh, r = h.shape[:2]
    if layer.kind == "conv2d":
        k = layer.kernel
        x = _patches(h.reshape((gh * r,) + h.shape[2:]), k)[0]
        shape = (gh, r, h.shape[2] - k + 1, h.shape[3] - k + 1, layer.size)
    else:
        x = h.reshape(gh * r, -1)
        shape = (gh, r, layer.size)
    mean = x @ local["W"]
    mean += local["b"]
    var = np.square(x) @ local["W_var"]
    var += local["b_var"]
    return mean.reshape(shape), np.sqrt(var, out=var).reshape(shape)


# --- the whole pass ------------------------------------------------------------------------------------------


def _steps(spec: list[LayerSpec], local: set[str]) -> list[tuple[LayerSpec, int]]:
    """The layers as the forward pass runs them, ``(layer, pool)``: a global convolution followed by a
    max-pool takes it (``pool`` its window; see the module's docstring); other layers have pool 1."""
    steps, h, w, i = [], 28, 28, 0
    while i < len(spec):
        layer, pool = spec[i], 1
        if layer.kind == "conv2d":
            h, w = h - layer.kernel + 1, w - layer.kernel + 1
            after = spec[i + 1] if i + 1 < len(spec) else None
            if (after is not None and after.kind == "max_pool" and layer.name not in local
                    and layer.nonlinearity in ("tanh", "") and h % after.kernel == 0 and w % after.kernel == 0):
                pool, i = after.kernel, i + 1
        elif layer.kind == "max_pool":
            h, w = h // layer.kernel, w // layer.kernel
        h, w = h // pool, w // pool
        steps.append((layer, pool))
        i += 1
    return steps


class _Pass:
    """One call of :func:`sample_probabilities`: its plan, drawn weights and output.

    A step pushes ``chunk`` digits through ``group`` draws, its arrays near ``_STEP_BUDGET`` floats.
    The work is cut into tasks one of two ways, whichever stores less:

    * by digits: a task is a chunk of digits under a block of draws. Every draw's global weights are
      drawn first; what the chunk gives under every draw (the first layer's patches, or its moments
      if drawn locally) is computed once per task. The CNN's way: its weights are few.
    * by draws: a task is a block of draws over every digit, and draws the block's weights itself.
      What each chunk gives under every draw is computed first, for all digits. The MLP's way: its
      first layer's moments are 1,600 floats a digit, its weights 641,000 a draw.

    Weights and tasks draw from streams of their own (SeedSequence spawn keys), so the result depends
    on the seed alone, not on which thread ran what.
    """

    def __init__(self, spec, means, sds, x, n_draws, seed):
        n = len(x)
        self.x, self.seed, self.n_draws = x, seed, n_draws
        self.out = np.empty((n_draws, n, 10), dtype=np.float32)
        local = local_layers(spec, n, n_draws)
        self.steps = _steps(spec, local)
        self.local = {
            layer.name: {
                "W": np.asarray(means[f"{layer.name}.W"], np.float32).reshape(-1, layer.size),
                "b": np.asarray(means[f"{layer.name}.b"], np.float32),
                "W_var": np.square(np.asarray(sds[f"{layer.name}.W"], np.float32)).reshape(-1, layer.size),
                "b_var": np.square(np.asarray(sds[f"{layer.name}.b"], np.float32)),
            }
            for layer, _ in self.steps if layer.name in local
        }
        self.global_layers = [layer for layer, _ in self.steps if layer.kind != "max_pool" and layer.name not in local]
        names = [f"{layer.name}.{t}" for layer in self.global_layers for t in "Wb"]
        self.means = {name: np.asarray(means[name], np.float32) for name in names}
        self.sds = {name: np.asarray(sds[name], np.float32) for name in names}
        self.first = self.steps[0][0] if self.steps and self.steps[0][0].kind != "max_pool" else None

        costs, _ = layer_costs(spec)
        work = n * n_draws * sum(macs for _, _, macs in costs.values())
        largest = self._largest()
        wanted = int(min(_MAX_TASKS, max(1, work // _TASK_MACS)))
        per_step = max(1, _STEP_BUDGET // largest)  # digit-draws a step holds
        per_draw = sum(mean.size for mean in self.means.values())
        per_digit = 0  # floats of what a digit gives under every draw
        if self.first is not None and self.first.name in local:
            per_digit = 2 * costs[self.first.name][0]
        elif self.first is not None and self.first.kind == "conv2d":
            per_digit = costs[self.first.name][2] // self.first.size  # its patches
        self.by_digits = n_draws * per_draw <= n * per_digit if _BY_DIGITS is None else _BY_DIGITS
        # a convolutional network drawn whole for each draw, on many digits: XLA (if the cores may be used)
        self.xla = (self.by_digits and not local and work >= _XLA_MIN_MACS
                    and any(layer.kind == "conv2d" for layer, _ in self.steps))
        # draws per weight stream: about a million normals, drawn in parallel
        self.weight_block = max(1, min(n_draws, _WEIGHT_BLOCK // max(1, per_draw)))

        self.chunk = min(n, per_step)
        if self.by_digits:  # enough chunks for the tasks wanted, if they stay large enough
            self.chunk = min(self.chunk, max(_MIN_ROWS, -(-n // wanted)))
        self.n_chunks = -(-n // max(1, self.chunk))
        self.chunk = -(-n // max(1, self.n_chunks))  # as even as can be
        self.group = max(1, min(n_draws, per_step // max(1, self.chunk)))
        if self.by_digits:
            groups = -(-n_draws // self.group)
            n_blocks = max(1, min(groups, -(-wanted // max(1, self.n_chunks))))
            self.block = -(-groups // n_blocks) * self.group
        else:
            self.block = max(1, min(self.weight_block, -(-n_draws // wanted)))
            self.group = min(self.group, self.block)
        self.n_blocks = -(-n_draws // self.block)
        self.weights = {}
        if self.by_digits:
            self.weights = {
                layer.name: tuple(np.empty((n_draws,) + self.means[f"{layer.name}.{t}"].shape, np.float32) for t in "Wb")
                for layer in self.global_layers
            }
        self.shared: list[dict] = [{} for _ in range(self.n_chunks)] if not self.by_digits else []

    def _largest(self) -> int:
        """Floats of the largest array a step holds per digit and draw: layer outputs (a convolution's
        before its pool), and the patches of the first and of local convolutions (a later global
        convolution cuts its digits to keep its patches within the step budget)."""
        h, w, c, largest = 28, 28, 1, 28 * 28
        for i, (layer, pool) in enumerate(self.steps):
            if layer.kind == "conv2d":
                k = layer.kernel
                h, w = h - k + 1, w - k + 1
                largest = max(largest, h * w * layer.size)
                if i == 0 or layer.name in self.local:
                    largest = max(largest, h * w * k * k * c)
                h, w, c = h // pool, w // pool, layer.size
            elif layer.kind == "max_pool":
                h, w = h // layer.kernel, w // layer.kernel
            else:
                h, w, c = 1, 1, layer.size
                largest = max(largest, c)
        return largest

    def rows(self, chunk: int) -> slice:
        return slice(chunk * self.chunk, min((chunk + 1) * self.chunk, len(self.x)))

    def draw_weights(self, draws: slice, bits: np.random.BitGenerator, weights: dict) -> None:
        """The global layers' weights of ``draws`` into ``weights`` (name -> (W, b), a draw per row)."""
        for layer in self.global_layers:
            for t, array in zip("Wb", weights[layer.name], strict=True):
                name = f"{layer.name}.{t}"
                # a few draws at a time where a tensor is large, so that mean + sd * eps runs in cache
                step = max(1, _STEP_BUDGET // 8 // max(1, array[0].size))
                for d in range(draws.start, draws.stop, step):
                    part = array[d : min(d + step, draws.stop)]
                    _normal(bits, self.means[name], self.sds[name], part.shape, out=part)

    def weight_task(self, block: int, cache: dict) -> None:
        """By digits: every global weight of a block of ``weight_block`` draws."""
        draws = slice(block * self.weight_block, min((block + 1) * self.weight_block, self.n_draws))
        self.draw_weights(draws, _bit_generator(self.seed, 0, block), self.weights)

    def shared_task(self, chunk: int, cache: dict) -> None:
        """By draws: what a chunk gives under every draw."""
        self._first(self.x[None, self.rows(chunk)], self.shared[chunk])

    def digits_task(self, task: tuple[int, int], cache: dict) -> None:
        """By digits: a chunk of digits under a block of draws.  ``cache`` is the thread's: what the
        chunk gives under every draw is kept for the chunk's next block."""
        c, block = task
        if cache.get("chunk") != c:
            cache.clear()
            cache["chunk"] = c
        rows, bits = self.rows(c), _bit_generator(self.seed, 1, c, block)
        for start in range(block * self.block, min((block + 1) * self.block, self.n_draws), self.group):
            group = slice(start, min(start + self.group, self.n_draws))
            weights = {name: (W[group], b[group]) for name, (W, b) in self.weights.items()}
            self.out[group, rows] = _softmax(self._forward(self.x[None, rows], group.stop - start, weights, bits, cache))

    def draws_task(self, block: int, cache: dict) -> None:
        """By draws: a block of draws over every digit, its weights drawn into the thread's buffers."""
        draws = slice(block * self.block, min((block + 1) * self.block, self.n_draws))
        if "weights" not in cache:
            cache["weights"] = {
                layer.name: tuple(np.empty((self.block,) + self.means[f"{layer.name}.{t}"].shape, np.float32)
                                  for t in "Wb")
                for layer in self.global_layers
            }
        size = draws.stop - draws.start
        block_weights = {name: (W[:size], b[:size]) for name, (W, b) in cache["weights"].items()}
        self.draw_weights(slice(0, size), _bit_generator(self.seed, 0, block), block_weights)
        bits = _bit_generator(self.seed, 1, block)
        for c in range(self.n_chunks):
            rows = self.rows(c)
            for start in range(0, size, self.group):
                group = slice(start, min(start + self.group, size))
                weights = {name: (W[group], b[group]) for name, (W, b) in block_weights.items()}
                logits = self._forward(self.x[None, rows], group.stop - start, weights, bits, self.shared[c])
                self.out[draws.start + group.start : draws.start + group.stop, rows] = _softmax(logits)

    def _first(self, h: np.ndarray, shared: dict) -> None:
        """What the first layer gives under every draw for the digits h (1, R, ...), into ``shared``."""
        layer, pool = self.steps[0]
        if layer.name in self.local:
            shared["moments"] = _local_moments(h, layer, self.local[layer.name])
        elif layer.kind == "conv2d":
            shared["patches"] = _patches(h[0], layer.kernel, pool, ones=True)

    def _forward(self, h: np.ndarray, g: int, weights: dict, bits: np.random.BitGenerator, shared: dict) -> np.ndarray:
        """Logits (g, R, 10) of the digits h (1, R, 28, 28, 1) under g draws."""
        if self.first is not None and not shared.keys() & {"moments", "patches"}:
            self._first(h, shared)
        for i, (layer, pool) in enumerate(self.steps):
            if layer.kind == "max_pool":
                pooled = max_pool(h.reshape((-1,) + h.shape[2:]), layer.kernel)
                h = pooled.reshape(h.shape[:2] + pooled.shape[1:])
            elif layer.name in self.local:
                mean, sd = shared["moments"] if i == 0 else _local_moments(h, layer, self.local[layer.name])
                h = _activate(_normal(bits, mean, sd, (g,) + mean.shape[1:]), layer.nonlinearity)
            elif layer.kind == "conv2d":
                h = _conv_global(h, layer, *weights[layer.name], pool, shared.get("patches") if i == 0 else None)
            else:
                h = _dense_global(h, layer, *weights[layer.name])
        return h.reshape(g, h.shape[1], -1)


@functools.cache
def _xla_available() -> bool:
    return importlib.util.find_spec("jax") is not None


@functools.cache
def _xla_forward(steps: tuple[tuple[LayerSpec, int], ...]):
    """The jitted forward pass of one drawn network: (digits, 28, 28, 1), then every parameter layer's
    W and b -> (digits, 10) probabilities. Global layers only; pools as in :func:`_steps`."""
    import jax
    import jax.numpy as jnp

    def pool(h, k):
        return jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, k, k, 1), (1, k, k, 1), "VALID")

    def forward(x, *params):
        h, params = x, iter(params)
        for layer, k in steps:
            if layer.kind == "max_pool":
                h = pool(h, layer.kernel)
                continue
            W, b = next(params), next(params)
            if layer.kind == "conv2d":
                h = jax.lax.conv_general_dilated(h, W, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
                h = (pool(h, k) if k > 1 else h) + b  # max(z) + b = max(z + b): the pool first
            else:
                h = h.reshape(h.shape[0], -1) @ W + b
            if layer.nonlinearity == "tanh":
                h = jnp.tanh(h)
            elif layer.nonlinearity not in ("softmax", ""):
                raise ValueError(f"unknown nonlinearity {layer.nonlinearity!r}")
        return jax.nn.softmax(h, axis=-1)

    return jax.jit(forward)


def _xla_predict(run: _Pass) -> None:
    """Every digit under every draw of ``run``'s drawn global weights, one XLA call per draw and chunk
    of digits (XLA spreads each over the cores)."""
    import jax

    n = len(run.x)
    forward = _xla_forward(tuple(run.steps))
    params = [array for layer in run.global_layers for array in run.weights[layer.name]]
    n_chunks = -(-n // _XLA_DIGITS)
    chunk = -(-n // n_chunks)
    padded = -(-chunk // _XLA_PAD) * _XLA_PAD
    for c in range(n_chunks):
        rows = slice(c * chunk, min((c + 1) * chunk, n))
        x = np.zeros((padded,) + run.x.shape[1:], np.float32)
        x[: rows.stop - rows.start] = run.x[rows]
        x = jax.device_put(x)
        for d in range(run.n_draws):
            run.out[d, rows] = np.asarray(forward(x, *(p[d] for p in params)))[: rows.stop - rows.start]


def _workers(tasks: int) -> int:
    """Threads for ``tasks`` tasks: one per core this process may use, no more than the BLAS is
    allowed (a server that limits it to one thread, as the dashboard does, gets one)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if tasks < 2 or cores < 2:
        return 1
    from threadpoolctl import threadpool_info

    blas = [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]
    return max(1, min(tasks, cores, *blas))


def _run(tasks: list, work, workers: int) -> None:
    """``work(task, cache)`` for every task, on ``workers`` threads taking the tasks in order, each
    with its own ``cache`` dict and a single-threaded BLAS (one product per core, no oversubscription)."""
    workers = min(workers, len(tasks))
    if workers <= 1:
        cache: dict = {}
        for task in tasks:
            work(task, cache)
        return
    from threadpoolctl import threadpool_limits

    queue, lock, errors = iter(tasks), threading.Lock(), []

    def loop():
        cache: dict = {}
        while not errors:
            with lock:
                task = next(queue, None)
            if task is None:
                return
            try:
                work(task, cache)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                errors.append(exc)

    with threadpool_limits(limits=1, user_api="blas"):
        threads = [threading.Thread(target=loop, name=f"predict-{i}", daemon=True) for i in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]


def _model_input(images: np.ndarray) -> np.ndarray:
    """Checked digits as the networks take them: (digit, 28, 28) -> (digit, 28, 28, 1) float32,
    integer pixels scaled by 1/256 as the training digits were (:meth:`core.data.MNIST.scale`).

    Floats 0..255 are refused rather than passed on: the network would see saturated digits and
    give confident, wrong predictions that nothing downstream could tell from right ones.
    """
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        one = "; for one digit pass image[None]" if images.shape == (28, 28) else ""
        raise ValueError(f"images: expected shape (digit, 28, 28), got {images.shape}{one}")
    integer = np.issubdtype(images.dtype, np.integer)
    if not (integer or np.issubdtype(images.dtype, np.floating)):
        raise ValueError(f"images: expected uint8 pixels 0..255 or floats in [0, 1], got dtype {images.dtype}; "
                         "convert them to one of those")
    if images.size and images.dtype != np.uint8:
        # NaN propagates through min and max, and an infinity is one of them: two passes, no copy
        low, high = images.min(), images.max()
        if integer and (low < 0 or high > 255):
            raise ValueError(f"images: integer pixels must lie in 0..255 (got min {low}, max {high}); "
                             "rescale them to uint8 pixels 0..255")
        if not integer and not (np.isfinite(low) and np.isfinite(high)):
            raise ValueError("images: values must be finite (got NaN or infinity); "
                             "give missing pixels the background value 0")
        if not integer and (low < 0 or high > 1):
            raise ValueError(f"images: float values must lie in [0, 1] (got min {low}, max {high}); "
                             "pass uint8 pixels 0..255, or divide by 256 as in training")
    x = images.astype(np.float32)
    if integer:
        x /= np.float32(256.0)
    return x[..., None]


def sample_probabilities(
    spec: list[LayerSpec],
    means: dict[str, np.ndarray],
    sds: dict[str, np.ndarray],
    images: np.ndarray,
    n_draws: int = 100,
    seed: int = 0,
) -> np.ndarray:
    """Predictive class probabilities of every digit under ``n_draws`` draws from the approximation.

    Parameters
    ----------
    spec, means, sds
        The network and each parameter tensor's variational mean and sd (:func:`network_params`).
    images : (digit, 28, 28)
        uint8 pixels 0..255 (0 is the background), scaled by 1/256 as the training digits were;
        other integer types must hold the same values. Or floats already scaled to [0, 1]:
        ``pixels / 256`` is exactly what training saw. One digit is ``image[None]``.
    n_draws
        Networks drawn from the approximation.
    seed
        Of the draws: the same seed gives the same probabilities (on any number of threads).

    Returns
    -------
    (draw, digit, class) float32

    Raises
    ------
    ValueError
        ``images`` has another shape, a non-numeric dtype, NaN or infinite values, integers outside
        0..255, or floats outside [0, 1] (pixels 0..255 as floats, say).

    Notes
    -----
    Large calls run on one thread per core (each with a single-threaded BLAS, set with threadpoolctl
    for the call's duration), or for a convolutional network in XLA on every core; at most as many
    threads as the BLAS is allowed: under ``threadpool_limits(1)``, as in the dashboard's server,
    everything runs in the calling thread, in NumPy.
    """
    x = _model_input(images)
    if not len(x) or not n_draws:
        return np.empty((n_draws, len(x), 10), dtype=np.float32)
    run = _Pass(spec, means, sds, x, n_draws, seed)
    if run.by_digits:
        tasks = [(c, b) for c in range(run.n_chunks) for b in range(run.n_blocks)]
        workers = _workers(len(tasks))
        if run.global_layers:
            _run(list(range(-(-n_draws // run.weight_block))), run.weight_task, workers)
        if run.xla and workers > 1 and _xla_available():
            _xla_predict(run)
        else:
            _run(tasks, run.digits_task, workers)
    else:
        workers = _workers(run.n_blocks)
        _run(list(range(run.n_chunks)), run.shared_task, workers)
        _run(list(range(run.n_blocks)), run.draws_task, workers)
    return run.out


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


def summarize_draws(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(draw, digit, class) probabilities -> what a run stores.

    returns labels (draw, digit) int8, mean probability (digit, class), expected entropy (digit,)
    """
    labels = probabilities.argmax(axis=-1).astype(np.int8)
    p = np.clip(probabilities, 1e-30, 1.0)
    expected_entropy = -(probabilities * np.log(p)).sum(axis=-1).mean(axis=0)
    return labels, probabilities.mean(axis=0), expected_entropy.astype(np.float32)


def hyperprior_draws(mean: dict[str, float], sd: dict[str, float], n_draws: int = 500, seed: int = 0) -> dict[str, np.ndarray]:
    """Draws of positive hyperpriors whose approximation is Normal on the log scale: name -> (draw,)."""
    rng = np.random.default_rng(seed)
    return {name: np.exp(mean[name] + sd[name] * rng.standard_normal(n_draws)).astype(np.float32) for name in mean}


def member_probabilities(spec: list[LayerSpec], members: dict[str, np.ndarray], images: np.ndarray) -> np.ndarray:
    """Class probabilities of every digit under each network of a point-estimate run (a MAP fit is
    one member, a deep ensemble several): members : tensor name -> (member, ...) values.

    Each member is :func:`sample_probabilities` with its values as means and sds of zero, one draw:
    ``mean + 0 * eps`` is the network itself, exactly, by the same code as the approximations'.

    Returns (member, digit, class) float32.
    """
    n = len(next(iter(members.values())))
    return np.concatenate([
        sample_probabilities(spec, {k: v[i] for k, v in members.items()},
                             {k: np.zeros_like(v[i]) for k, v in members.items()}, images, n_draws=1)
        for i in range(n)
    ])


def run_probabilities(run: xr.DataTree, images: np.ndarray, n_draws: int = 100, seed: int = 0) -> np.ndarray:
    """Predictive class probabilities of new digits under a loaded run (:func:`core.store.load_run`).

    Parameters
    ----------
    images : (digit, 28, 28)
        uint8 pixels 0..255 (0 is the background; as MNIST and a run's stored test digits are), or
        floats already scaled to [0, 1]: ``pixels / 256`` is exactly what training saw. Other
        integer types must hold values 0..255. One digit is ``image[None]``.
    n_draws
        Networks drawn from the approximation. A point-estimate run (``/members``) has its networks
        instead: each member is a draw, and ``n_draws`` and ``seed`` do not apply.
    seed
        Of the draws: the same seed gives the same probabilities.

    Returns
    -------
    (draw, digit, class) float32

    Raises
    ------
    ValueError
        ``images`` has another shape, a non-numeric dtype, NaN or infinite values, integers outside
        0..255, or floats outside [0, 1] (pixels 0..255 as floats, say).
    """
    if store.is_point_estimate(run):
        spec = spec_from_json(run.attrs["architecture"])
        return member_probabilities(spec, store.members(run, [p.name for p in param_specs(spec)]), images)
    spec, means, sds = network_params(run)
    return sample_probabilities(spec, means, sds, images, n_draws=n_draws, seed=seed)
