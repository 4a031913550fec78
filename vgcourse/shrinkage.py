r"""Chain-rule shrinkage: products of derivatives, weight-change records, and contracting maps.

Lesson 02 ("chain-rule shrinkage") and later lessons use three groups of helpers.

**Products of chain-rule factors.** For a chain of one-unit layers
:math:`h_i = \phi(a_i)`, :math:`a_i = w_i h_{i-1} + b_i`, :math:`h_0 = x`, the chain rule gives

.. math:: \frac{\partial h_n}{\partial x} = \prod_{i=1}^{n} w_i\,\phi'(a_i),

and since :math:`\sigma'(z) = \sigma(z)(1-\sigma(z)) \le 1/4`, a sigmoid chain obeys
:math:`|\partial h_n / \partial x| \le \prod_i |w_i| / 4^n`
(:func:`chain_factors`, :func:`derivative_bound`). For an MLP the factors are the layer Jacobians
:math:`J_\ell = \mathrm{diag}(\phi'(a_\ell)) W_\ell`, and :func:`prefix_singular_values` gives the
singular values of :math:`J_\ell \cdots J_1` for every :math:`\ell`, so that
:math:`\sigma_{\max}(J_\ell \cdots J_1) \le \prod_k \max|\phi'|\,\|W_k\|_2`.

**What training did to each layer.** The relative weight change
:math:`\|W_\ell^{after} - W_\ell^{before}\|_F / \|W_\ell^{before}\|_F` (:func:`relative_change`)
and the per-step update:data ratio :math:`\|W_\ell^{(t)} - W_\ell^{(t-1)}\|_F / \|W_\ell^{(t-1)}\|_F`
(Karpathy's diagnostic; healthy steps are about :math:`10^{-3}`), both recorded during
:func:`vgcourse.fit` by a :class:`WeightRecorder` callback, which also keeps weight trajectories. The forward face of the
same product: :func:`representation_spread` (recorded by :class:`SpreadRecorder`) measures how
different the hidden representations of different inputs are; a tiny Jacobian product maps every
input to nearly the same top-layer vector.

**Contracting maps** (Bengio, Simard & Frasconi 1994, Sec. III-IV). The one-neuron latch
:math:`a_t = w \tanh(a_{t-1}) + h_t` has, for :math:`w > 1`, two attractors :math:`\pm a^*` with
:math:`a^* = w \tanh a^*`. Near an attractor the map contracts with rate

.. math:: \rho = \left|\frac{\partial a_t}{\partial a_{t-1}}\right|_{a^*} = w\,(1 - \tanh^2 a^*) < 1,

so :math:`|\partial a_T / \partial a_0| \approx C \rho^T` vanishes exponentially: storing a bit
robustly (an attractor that noise cannot leave) and receiving a gradient from far in the future
are at odds (:func:`latch_fixed_point`, :func:`latch_rate`, :func:`latch_derivatives`,
:func:`latch_survival`). For a recurrent net :math:`h_t = \tanh(W h_{t-1} + b)` the rate is the
spectral radius of the Jacobian :math:`\mathrm{diag}(1 - h^{*2}) W` at the fixed point
(:func:`rnn_fixed_point_rate`, :func:`rnn_jacobian_norms`); :func:`decay_rate` measures it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from . import activations as _act
from ._validate import check_int, check_positive, check_tensor

__all__ = [
    "SpreadRecorder",
    "WeightRecorder",
    "chain_factors",
    "decay_rate",
    "derivative_bound",
    "latch_derivatives",
    "latch_fixed_point",
    "latch_rate",
    "latch_survival",
    "prefix_singular_values",
    "relative_change",
    "representation_spread",
    "rnn_fixed_point_rate",
    "rnn_jacobian_norms",
    "snapshot",
    "tracked_weights",
]


# -- products of chain-rule factors ---------------------------------------------------------------
def _as_vector(name: str, value, dtype=torch.float64) -> torch.Tensor:
    if isinstance(value, (list, tuple)):
        value = torch.tensor([float(v) for v in value], dtype=dtype)
    t = check_tensor(name, value)
    if t.ndim != 1 or t.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence, got shape {tuple(t.shape)}")
    return t.to(dtype)


def chain_factors(
    x: float, weights, biases=None, activation: str = "sigmoid"
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The chain-rule factors of a chain of one-unit layers, and their product.

    The chain is :math:`h_0 = x`, :math:`a_i = w_i h_{i-1} + b_i`, :math:`h_i = \phi(a_i)`
    (:math:`i = 1..n`). Returns ``(factors, product)``: ``factors[i-1]`` is
    :math:`\partial h_i / \partial h_{i-1} = w_i \phi'(a_i)` and ``product`` is
    :math:`\partial h_n / \partial x = \prod_i w_i \phi'(a_i)`, computed in float64 without
    autograd (the closed-form derivatives of :func:`vgcourse.activations.derivative`).
    ``biases`` defaults to zeros.
    """
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise TypeError(f"x must be a real number, got {x!r} ({type(x).__name__})")
    if not math.isfinite(x):
        raise ValueError(f"x must be finite, got {x!r}")
    w = _as_vector("weights", weights)
    b = torch.zeros_like(w) if biases is None else _as_vector("biases", biases)
    if b.shape != w.shape:
        raise ValueError(
            f"biases must have one entry per weight: got {b.numel()} biases for {w.numel()} weights"
        )
    _act.canonical_name(activation)
    h = torch.tensor(float(x), dtype=torch.float64)
    factors = []
    for wi, bi in zip(w, b):
        a = wi * h + bi
        factors.append(wi * _act.derivative(activation, a))
        h = _act.function(activation, a)
    f = torch.stack(factors)
    return f, torch.prod(f)


def derivative_bound(activation: str, n: int, weight_bound: float = 1.0) -> float:
    r""":math:`(B \max_z |\phi'(z)|)^n`: the largest :math:`|\partial h_n/\partial x|` a chain of ``n``
    one-unit layers with :math:`|w_i| \le B` (``weight_bound``) can have.

    For the sigmoid, :math:`\max \sigma' = 1/4`, so the bound is :math:`(B/4)^n`; with
    :math:`B \le 1`, ten layers give at most :math:`4^{-10} \approx 9.5 \times 10^{-7}`.
    """
    n = check_int("n", n, minimum=0)
    weight_bound = check_positive("weight_bound", weight_bound)
    return float((weight_bound * _act.info(activation).max_derivative) ** n)


def prefix_singular_values(net: nn.Module, inputs: torch.Tensor) -> np.ndarray:
    r"""Singular values of :math:`J_\ell \cdots J_1` for every hidden layer :math:`\ell`, at each input.

    ``net`` is a :func:`vgcourse.mlp` model; ``inputs`` is (N, in_features). For blocks without
    normalization the layer Jacobians are formed in closed form, all inputs at once:
    :math:`J_\ell = \mathrm{diag}(\phi'(a_\ell)) W_\ell`, or
    :math:`I + s\,\mathrm{diag}(\phi'(a_\ell)) W_\ell` with a skip connection of scale :math:`s`;
    nets with batch or layer norm fall back to the autograd Jacobians of
    :func:`vgcourse.jacobians.layer_jacobians`, one input at a time. Computed in the net's dtype:
    call ``.double()`` on the net for deep products, which reach 1e-20 and below. Returns an array
    of shape (N, depth, k), largest first, with :math:`k = \min(\text{width}, \text{in\_features})`.
    """
    from .jacobians import layer_jacobians

    blocks = getattr(net, "blocks", None)
    if blocks is None:
        raise TypeError(
            f"net must be a vgcourse.mlp model (it needs .blocks), got {type(net).__name__}"
        )
    inputs = check_tensor("inputs", inputs, ndim=2)
    if inputs.shape[0] < 1:
        raise ValueError("inputs must hold at least one row")
    first = next(net.parameters())
    closed_form = all(
        isinstance(b.norm, nn.Identity) and _act.name_of(b.act) is not None for b in blocks
    )
    if closed_form:
        with torch.no_grad():
            h = inputs.to(device=first.device, dtype=first.dtype)
            product, values = None, []
            for block in blocks:
                a = block.linear(h)
                d = _act.module_derivative(block.act, a)
                d = torch.ones_like(a) if d is None else d
                J = d[:, :, None] * block.linear.weight[None]
                if block.residual:
                    J = (
                        torch.eye(J.shape[1], dtype=J.dtype, device=J.device)
                        + block.residual_scale * J
                    )
                product = J if product is None else J @ product
                values.append(torch.linalg.svdvals(product).double().cpu())
                h = block(h)
        return torch.stack(values, dim=1).numpy()
    out = []
    for x in inputs.to(first.dtype):
        product, values = None, []
        for J in layer_jacobians(net, x):
            product = J if product is None else J @ product
            values.append(torch.linalg.svdvals(product.double()).cpu().numpy())
        out.append(np.stack(values))
    return np.stack(out)


# -- what training did to each layer -------------------------------------------------------------
def tracked_weights(
    model: nn.Module, include_output: bool = True
) -> list[tuple[str, nn.Parameter]]:
    """The weight matrices whose change lessons track, input -> output, as ``(name, parameter)``.

    The hidden layers of :func:`vgcourse.models.weight_layers`, plus, for a :func:`vgcourse.mlp`
    model with ``include_output``, the output layer (named ``"output"``).
    """
    from .models import weight_layers

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(include_output, bool):
        raise TypeError(f"include_output must be True or False, got {include_output!r}")
    layers = list(weight_layers(model))
    out = getattr(model, "output_layer", None)
    if include_output and isinstance(out, nn.Linear):
        layers.append(("output", out.weight))
    if not layers:
        raise ValueError(f"model has no weight matrices to track ({type(model).__name__})")
    return layers


def snapshot(model: nn.Module, include_output: bool = True) -> list[torch.Tensor]:
    """Detached CPU copies of the tracked weights (:func:`tracked_weights`), input -> output."""
    return [p.detach().to("cpu", copy=True) for _, p in tracked_weights(model, include_output)]


def _as_list(name: str, value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise TypeError(f"{name} must be a tensor or a list of tensors, got {type(value).__name__}")
    return [check_tensor(f"{name}[{i}]", v) for i, v in enumerate(value)]


def relative_change(before, after) -> np.ndarray:
    r"""Per-layer relative change :math:`\|A_\ell - B_\ell\|_F / \|B_\ell\|_F` of two weight lists.

    ``before`` and ``after`` are tensors or equal-length lists of same-shape tensors (for
    example two :func:`snapshot` calls around training). A layer whose ``before`` is all zeros gets
    ``inf`` (or 0 if it did not change).
    """
    b_list, a_list = _as_list("before", before), _as_list("after", after)
    if len(b_list) != len(a_list):
        raise ValueError(
            f"before and after must hold the same number of layers, got {len(b_list)} and {len(a_list)}"
        )
    out = []
    for i, (b, a) in enumerate(zip(b_list, a_list)):
        if b.shape != a.shape:
            raise ValueError(
                f"layer {i}: before has shape {tuple(b.shape)} but after has shape {tuple(a.shape)}"
            )
        diff = float((a.detach().double().cpu() - b.detach().double().cpu()).norm())
        denom = float(b.detach().double().norm())
        out.append(diff / denom if denom > 0 else (0.0 if diff == 0 else math.inf))
    return np.asarray(out)


class WeightRecorder:
    r"""A :func:`vgcourse.fit` callback that keeps every tracked weight matrix after every step.

    >>> rec = WeightRecorder(net)             # records the weights before training
    >>> history = vg.fit(net, data, steps=700, lr=1e-3, callbacks=[rec])
    >>> rec.relative_change()                 # per layer, start -> end
    >>> rec.update_ratios()                   # (steps, layers): ||W_t - W_{t-1}|| / ||W_{t-1}||
    >>> rec.trajectories(0, k=5)              # (steps + 1, 5): five weights of layer 1 over time

    Memory: one float32 copy of the tracked weights per recorded step (a 9x10 MLP for 700 steps
    is about 0.3 MB). ``every`` records every ``every``-th step only (the last step always).
    """

    def __init__(self, model: nn.Module, *, include_output: bool = True, every: int = 1):
        self.names = [n for n, _ in tracked_weights(model, include_output)]
        self.include_output = include_output
        self.every = check_int("every", every, minimum=1)
        self.shapes = [tuple(p.shape) for _, p in tracked_weights(model, include_output)]
        self._sizes = [math.prod(s) for s in self.shapes]
        self.steps: list[int] = [0]
        self.losses: list[float] = []
        self._rows: list[torch.Tensor] = [self._flat(model)]
        self._stacked: torch.Tensor | None = None

    def _flat(self, model: nn.Module) -> torch.Tensor:
        params = [p for _, p in tracked_weights(model, self.include_output)]
        if [math.prod(p.shape) for p in params] != self._sizes:
            raise ValueError(
                "the model's tracked weights changed shape since the recorder was made"
            )
        return torch.cat([p.detach().reshape(-1).float().cpu() for p in params])

    def __call__(self, step: int, model: nn.Module, loss: float) -> None:
        self.losses.append(float(loss))
        if (step + 1) % self.every == 0 or step == 0:
            self.steps.append(step + 1)
            self._rows.append(self._flat(model))
            self._stacked = None

    def finish(self, model: nn.Module) -> None:
        """Record the final weights if the last step was skipped by ``every``."""
        last = len(self.losses)
        if self.steps[-1] != last:
            self.steps.append(last)
            self._rows.append(self._flat(model))
            self._stacked = None

    # -- views -------------------------------------------------------------------------------
    @property
    def weights(self) -> torch.Tensor:
        """(recorded steps + 1, total weights) float32: every tracked weight, flattened, over time.

        Cached between recordings: treat it (and the views :meth:`layer` returns) as read-only.
        """
        if self._stacked is None or len(self._stacked) != len(self._rows):
            self._stacked = torch.stack(self._rows)
        return self._stacked

    def layer(self, index: int) -> torch.Tensor:
        """(recorded steps + 1, fan_out * fan_in): the weights of one tracked layer over time."""
        index = check_int("index", index, minimum=-len(self.names))
        if index >= len(self.names):
            raise ValueError(
                f"index must be < {len(self.names)} (layers: {self.names}), got {index}"
            )
        index %= len(self.names)
        start = sum(self._sizes[:index])
        return self.weights[:, start : start + self._sizes[index]]

    def _per_layer(self) -> list[torch.Tensor]:
        W = self.weights.double()
        return list(torch.split(W, self._sizes, dim=1))

    def weight_norms(self) -> np.ndarray:
        r"""(recorded steps + 1, layers): :math:`\|W_\ell^{(t)}\|_F`."""
        return torch.stack([w.norm(dim=1) for w in self._per_layer()], dim=1).numpy()

    def mean_abs(self) -> np.ndarray:
        """(recorded steps + 1, layers): the mean absolute weight of each layer."""
        return torch.stack([w.abs().mean(dim=1) for w in self._per_layer()], dim=1).numpy()

    def relative_change(self, step: int | None = None) -> np.ndarray:
        r"""Per layer, :math:`\|W^{(t)} - W^{(0)}\|_F / \|W^{(0)}\|_F` at recorded ``step`` (default: last)."""
        i = len(self.steps) - 1 if step is None else self._index(step)
        layers = self._per_layer()
        return np.asarray(
            [
                float((w[i] - w[0]).norm() / w[0].norm()) if float(w[0].norm()) > 0 else math.inf
                for w in layers
            ]
        )

    def update_ratios(self) -> np.ndarray:
        r"""(recorded steps, layers): update:data ratio :math:`\|W^{(t)} - W^{(t-1)}\|_F / \|W^{(t-1)}\|_F`.

        With ``every > 1`` a row spans ``every`` optimizer steps.
        """
        cols = []
        for w in self._per_layer():
            diff = (w[1:] - w[:-1]).norm(dim=1)
            cols.append(diff / w[:-1].norm(dim=1).clamp_min(1e-30))
        return torch.stack(cols, dim=1).numpy()

    def trajectories(self, index: int, k: int = 5, seed: int = 0) -> np.ndarray:
        """(recorded steps + 1, k): ``k`` weights of tracked layer ``index``, picked at random (seeded)."""
        k = check_int("k", k, minimum=1)
        w = self.layer(index)
        k = min(k, w.shape[1])
        pick = torch.randperm(w.shape[1], generator=torch.Generator().manual_seed(seed))[:k]
        return w[:, pick].numpy()

    def _index(self, step: int) -> int:
        step = check_int("step", step, minimum=0)
        if step not in self.steps:
            raise ValueError(
                f"step {step} was not recorded; recorded steps run from 0 to {self.steps[-1]} "
                f"every {self.every}"
            )
        return self.steps.index(step)

    def __repr__(self) -> str:
        return f"WeightRecorder(layers={self.names}, recorded={len(self.steps)} snapshots)"


def representation_spread(model: nn.Module, X: torch.Tensor) -> np.ndarray:
    r"""Per hidden layer, how different the representations of different inputs are.

    For hidden layer :math:`\ell` with outputs :math:`h_\ell(x_1), \dots, h_\ell(x_N)`, the mean
    over units of the standard deviation over the samples. When the product of layer Jacobians is
    tiny, every input is mapped to almost the same top-layer vector (spread near 0) and the output
    cannot depend on the input: the forward face of vanishing gradients. ``model`` must have
    ``forward_hidden`` (a :func:`vgcourse.mlp` model). Runs without gradients, in eval mode.
    """
    if not hasattr(model, "forward_hidden"):
        raise TypeError(
            f"model must be a vgcourse.mlp model (it needs forward_hidden), got {type(model).__name__}"
        )
    X = check_tensor("X", X)
    if X.ndim < 2 or X.shape[0] < 2:
        raise ValueError(f"X must hold at least 2 samples (rows), got shape {tuple(X.shape)}")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            device = next(model.parameters()).device
            hidden = model.forward_hidden(X.to(device))
    finally:
        model.train(was_training)
    return np.asarray([float(h.double().std(dim=0).mean()) for h in hidden])


class SpreadRecorder:
    """A :func:`vgcourse.fit` callback: :func:`representation_spread` on ``X`` every ``every`` steps.

    ``steps`` holds the step counts (0 = before training) and ``spread`` a (records, layers) array.
    """

    def __init__(self, model: nn.Module, X: torch.Tensor, *, every: int = 10):
        self.X = check_tensor("X", X)
        self.every = check_int("every", every, minimum=1)
        self.steps: list[int] = [0]
        self._rows: list[np.ndarray] = [representation_spread(model, self.X)]

    def __call__(self, step: int, model: nn.Module, loss: float) -> None:
        if (step + 1) % self.every == 0:
            self.steps.append(step + 1)
            self._rows.append(representation_spread(model, self.X))

    @property
    def spread(self) -> np.ndarray:
        """(records, hidden layers): the spread of each hidden layer at each recorded step."""
        return np.stack(self._rows)


# -- contracting maps (Bengio, Simard & Frasconi 1994) ---------------------------------------------
def _check_real(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def latch_fixed_point(w: float, *, tol: float = 1e-13, max_iter: int = 100_000) -> float:
    r"""The positive attractor :math:`a^* = w \tanh a^*` of the one-neuron latch (0 when :math:`w \le 1`).

    Found by iterating the map from :math:`a = w` (float64) until it moves less than ``tol``.
    For :math:`w > 1` the map has attractors :math:`\pm a^*` and a repeller at 0; for
    :math:`0 < w \le 1` the only fixed point is 0 (no bit can be stored).
    """
    w = check_positive("w", _check_real("w", w))
    if w <= 1:
        return 0.0
    a = w
    for _ in range(check_int("max_iter", max_iter, minimum=1)):
        new = w * math.tanh(a)
        if abs(new - a) < tol:
            return new
        a = new
    return a


def latch_rate(w: float) -> float:
    r"""Contraction rate :math:`\rho = w\,(1 - \tanh^2 a^*)` of the one-neuron latch at its attractor."""
    a = latch_fixed_point(w)
    return float(w) * (1.0 - math.tanh(a) ** 2)


def latch_derivatives(
    w: float, a0: float, T: int, inputs: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Run :math:`a_t = w \tanh(a_{t-1}) + h_t` for ``T`` steps; return ``(a, da_t/da_0)``, each (T+1,).

    The derivative is the product of the chain-rule factors
    :math:`\partial a_t / \partial a_{t-1} = w (1 - \tanh^2 a_{t-1})` (float64, no autograd).
    ``inputs`` (length ``T``, default zeros) are the :math:`h_1..h_T`.
    """
    w = _check_real("w", w)
    a = torch.tensor(_check_real("a0", a0), dtype=torch.float64)
    T = check_int("T", T, minimum=1)
    if inputs is None:
        h = torch.zeros(T, dtype=torch.float64)
    else:
        h = check_tensor("inputs", inputs, ndim=1).double()
        if h.numel() != T:
            raise ValueError(f"inputs must have T={T} entries, got {h.numel()}")
    states, derivs = [a], [torch.ones((), dtype=torch.float64)]
    for t in range(T):
        factor = w * (1 - torch.tanh(a) ** 2)
        a = w * torch.tanh(a) + h[t]
        states.append(a)
        derivs.append(derivs[-1] * factor)
    return torch.stack(states), torch.stack(derivs)


def latch_survival(
    w: float, noise_std: float, T: int, *, n_trials: int = 1000, seed: int = 0
) -> float:
    r"""Fraction of noisy runs that still hold their bit after ``T`` steps.

    Each trial starts at the attractor :math:`+a^*` and runs :math:`a_t = w\tanh(a_{t-1}) + h_t`
    with :math:`h_t \sim \mathcal N(0, \text{noise\_std}^2)`; it survives if :math:`a_T > 0`.
    For :math:`w \le 1` there is no attractor away from 0 and trials start at :math:`a_0 = 1`.
    """
    w = check_positive("w", _check_real("w", w))
    noise_std = check_positive("noise_std", noise_std, allow_zero=True)
    T = check_int("T", T, minimum=1)
    n_trials = check_int("n_trials", n_trials, minimum=1)
    g = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    start = latch_fixed_point(w) if w > 1 else 1.0
    a = torch.full((n_trials,), start, dtype=torch.float64)
    for _ in range(T):
        a = w * torch.tanh(a) + noise_std * torch.randn(n_trials, generator=g, dtype=torch.float64)
    return float((a > 0).double().mean())


def _check_square(W) -> torch.Tensor:
    W = check_tensor("W", W, ndim=2).double()
    if W.shape[0] != W.shape[1]:
        raise ValueError(f"W must be square (hidden x hidden), got shape {tuple(W.shape)}")
    return W


def _check_bias(b, n: int) -> torch.Tensor:
    if b is None:
        return torch.zeros(n, dtype=torch.float64)
    b = check_tensor("b", b, ndim=1).double()
    if b.numel() != n:
        raise ValueError(f"b must have {n} entries to match W, got {b.numel()}")
    return b


def rnn_jacobian_norms(W, h0, T: int, b=None) -> tuple[np.ndarray, torch.Tensor]:
    r"""Largest singular value of :math:`\partial h_t / \partial h_0` for :math:`h_t = \tanh(W h_{t-1} + b)`.

    Returns ``(norms, h_T)`` with ``norms[t]`` :math:`= \sigma_{max}(J_t \cdots J_1)`,
    :math:`J_t = \mathrm{diag}(1 - h_t^2) W`, for :math:`t = 0..T` (float64; ``norms[0] = 1``).
    Since :math:`|\tanh'| \le 1`, ``norms[t]`` :math:`\le \|W\|_2^t`.
    """
    W = _check_square(W)
    n = W.shape[0]
    b = _check_bias(b, n)
    h = check_tensor("h0", h0, ndim=1).double()
    if h.numel() != n:
        raise ValueError(f"h0 must have {n} entries to match W, got {h.numel()}")
    T = check_int("T", T, minimum=1)
    P = torch.eye(n, dtype=torch.float64)
    norms = [1.0]
    for _ in range(T):
        h = torch.tanh(W @ h + b)
        P = ((1 - h**2)[:, None] * W) @ P
        norms.append(float(torch.linalg.matrix_norm(P, ord=2)))
    return np.asarray(norms), h


def rnn_fixed_point_rate(W, h0, b=None, *, iters: int = 2000) -> tuple[float, torch.Tensor]:
    r"""Iterate :math:`h \leftarrow \tanh(W h + b)` from ``h0`` and return ``(rho, h*)``.

    ``rho`` is the spectral radius of the Jacobian :math:`\mathrm{diag}(1 - h^{*2}) W` at the
    point reached: the asymptotic per-step rate at which :math:`\|\partial h_t/\partial h_0\|`
    shrinks (Gelfand's formula) when the iteration converges to a fixed point.
    """
    W = _check_square(W)
    n = W.shape[0]
    b = _check_bias(b, n)
    h = check_tensor("h0", h0, ndim=1).double()
    if h.numel() != n:
        raise ValueError(f"h0 must have {n} entries to match W, got {h.numel()}")
    for _ in range(check_int("iters", iters, minimum=1)):
        h = torch.tanh(W @ h + b)
    J = (1 - h**2)[:, None] * W
    return float(torch.linalg.eigvals(J).abs().max()), h


def decay_rate(values, start: int = 0, stop: int | None = None) -> float:
    r"""Per-step factor :math:`\hat\rho = e^{s}`, with :math:`s` the least-squares slope of
    :math:`\log v_t` against :math:`t` over ``values[start:stop]`` (positive values only).

    For :math:`v_t = C\rho^t` it returns :math:`\rho` exactly.
    """
    v = np.asarray(values, dtype=float).ravel()
    start = check_int("start", start, minimum=0)
    v = v[start:stop]
    t = np.arange(start, start + len(v), dtype=float)
    keep = np.isfinite(v) & (v > 0)
    if keep.sum() < 2:
        raise ValueError(
            f"values[{start}:{stop}] must hold at least 2 positive finite entries to fit a rate, "
            f"got {int(keep.sum())}"
        )
    slope = np.polyfit(t[keep], np.log(v[keep]), 1)[0]
    return float(np.exp(slope))
