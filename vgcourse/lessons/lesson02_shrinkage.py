r"""Chain-rule shrinkage: products of derivatives, weight changes, the seed experiment, contracting maps.

Lesson 02 ("chain-rule shrinkage") and later lessons use four groups of helpers.

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

**The seed experiment.** :class:`SeedExperiment` trains the seed articles' network (9 sigmoid
layers of 10 units on ``make_moons``, Glorot-uniform weights, batch size 32, binary
cross-entropy) with any activation, optimizer (:data:`SEED_OPTIMIZERS`), learning rate and seed,
recording weights and representations at every step, and caches the runs;
:func:`seed_experiment_explorer` replays them interactively.

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
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from .. import activations as _act
from .._validate import check_choice, check_int, check_positive, check_tensor

__all__ = [
    "SEED_OPTIMIZERS",
    "SeedCurves",
    "SeedExperiment",
    "SeedRun",
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
    "seed_experiment_explorer",
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
    from ..jacobians import layer_jacobians

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
    from ..models import weight_layers

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

    def relative_changes(self) -> np.ndarray:
        r"""(recorded steps + 1, layers): :meth:`relative_change` at every recorded step, in one pass.

        Row :math:`k` is :math:`\|W^{(t_k)} - W^{(0)}\|_F / \|W^{(0)}\|_F` for the recorded step
        :math:`t_k` = ``steps[k]`` (``inf`` for a layer that starts at zero).
        """
        cols = []
        for w in self._per_layer():
            start = w[0].norm()
            change = (w - w[0]).norm(dim=1)
            cols.append(change / start if float(start) > 0 else torch.full_like(change, math.inf))
        return torch.stack(cols, dim=1).numpy()

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


# -- the seed experiment (lesson 02) ------------------------------------------------------------------
def _keras_adam(params, lr: float) -> torch.optim.Optimizer:
    """Adam with Keras' epsilon, 1e-7 (PyTorch's default is 1e-8)."""
    return torch.optim.Adam(params, lr=lr, eps=1e-7)


#: The optimizers of the seed experiment, name -> what :func:`vgcourse.fit` accepts: PyTorch's Adam
#: (:math:`\varepsilon = 10^{-8}`), Adam with Keras' :math:`\varepsilon = 10^{-7}`, and plain SGD.
SEED_OPTIMIZERS: dict[str, Any] = {"adam": "adam", "adam-keras": _keras_adam, "sgd": "sgd"}


class SeedRun(NamedTuple):
    """One trained configuration of :class:`SeedExperiment` (unpacks as ``net, history, weights, spread``).

    ``history`` is :func:`vgcourse.fit`'s :class:`vgcourse.History`, ``weights`` a
    :class:`WeightRecorder` (every tracked weight matrix after every step) and ``spread`` a
    :class:`SpreadRecorder` (representation spread of the training inputs every ``spread_every``
    steps).
    """

    net: nn.Module
    history: Any
    weights: WeightRecorder
    spread: SpreadRecorder


class SeedCurves(NamedTuple):
    """What a run of ``steps`` steps recorded, as plain arrays (see :meth:`SeedExperiment.curves`).

    ``change`` is (steps + 1, layers): the relative weight change of each tracked layer at each
    step; ``loss`` (steps,) the mini-batch training loss; ``final_loss`` the mean loss over the
    last 10% of the steps (as :attr:`vgcourse.History.final_loss`); ``test_accuracy`` the accuracy
    on the test data after ``steps`` steps (nan without test data, or when training diverged).
    """

    steps: int
    change: np.ndarray
    loss: np.ndarray
    final_loss: float
    test_accuracy: float


class SeedExperiment:
    r"""The seed articles' experiment, trainable with any activation, optimizer, learning rate and seed.

    The seed articles (Keras walk-throughs of the vanishing gradient problem) train 9 sigmoid
    hidden layers of 10 units on ``make_moons`` with Adam (:math:`\eta = 10^{-3}`), binary
    cross-entropy, batch size 32 and Keras' default Glorot-uniform weights with zero biases, and
    compare the first layer's weights before and after 100 epochs. :meth:`run` trains
    ``vgcourse.mlp(in, 1, depth, width, activation, init="xavier_uniform")`` with
    ``vgcourse.fit(loss="bce")`` on ``train`` (on ``device``, default :func:`vgcourse.get_device`),
    recording every tracked weight matrix after every step (:class:`WeightRecorder`) and the
    representation spread of the training inputs (:class:`SpreadRecorder`); ``test`` is evaluated
    every ``eval_every`` steps (default: 100 epochs) and at the end.

    Runs are cached per setting (the ``cache_size`` most recently used are kept; a run keeps one
    float32 copy of the tracked weights per step, 3.3 kB for the 9x10 net, 4 MB for 1200 steps). Since
    :func:`vgcourse.fit` draws its mini-batches from its own seeded generator, the first :math:`t`
    steps of a run do not depend on how many steps it has in total: :meth:`curves` therefore reads a
    short run off a longer cached run with the same settings (the same numbers, bit for bit).
    """

    def __init__(
        self,
        train,
        test=None,
        *,
        depth: int = 9,
        width: int = 10,
        batch_size: int = 32,
        eval_every: int | None = None,
        spread_every: int = 10,
        device: torch.device | str | None = None,
        cache_size: int = 64,
    ):
        from .._validate import check_xy
        from ..device import get_device
        from ..train import epochs_to_steps

        if not isinstance(train, (tuple, list)) or len(train) != 2:
            raise TypeError(f"train must be a pair (X, y) of tensors, got {type(train).__name__}")
        self.X_train, self.y_train = check_xy(*train)
        if test is not None:
            if not isinstance(test, (tuple, list)) or len(test) != 2:
                raise TypeError(
                    f"test must be a pair (X, y) of tensors or None, got {type(test).__name__}"
                )
            test = check_xy(*test)
        self.test = test
        self.depth = check_int("depth", depth, minimum=1)
        self.width = check_int("width", width, minimum=1)
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.eval_every = check_int(
            "eval_every",
            epochs_to_steps(100, len(self.X_train), self.batch_size)
            if eval_every is None
            else eval_every,
            minimum=1,
        )
        self.spread_every = check_int("spread_every", spread_every, minimum=1)
        self.device = get_device(device)
        self.cache_size = check_int("cache_size", cache_size, minimum=1)
        self._runs: OrderedDict[tuple, SeedRun] = OrderedDict()
        self._curves = lru_cache(maxsize=4 * self.cache_size)(self._compute_curves)

    def _key(self, activation, optimizer, lr, seed, steps) -> tuple:
        _act.canonical_name(activation)
        if optimizer not in SEED_OPTIMIZERS:
            raise ValueError(
                f"optimizer must be one of {', '.join(map(repr, SEED_OPTIMIZERS))}; got {optimizer!r}"
            )
        return (
            activation,
            optimizer,
            check_positive("lr", lr),
            check_int("seed", seed, minimum=0),
            check_int("steps", steps, minimum=1),
        )

    def run(
        self,
        activation: str = "sigmoid",
        optimizer: str = "adam",
        lr: float = 1e-3,
        seed: int = 0,
        steps: int = 700,
    ) -> SeedRun:
        """Train one configuration (or return it from the cache): ``(net, history, weights, spread)``."""
        key = self._key(activation, optimizer, lr, seed, steps)
        if key in self._runs:
            self._runs.move_to_end(key)
            return self._runs[key]
        result = self._train(*key)
        self._runs[key] = result
        while len(self._runs) > self.cache_size:
            self._runs.popitem(last=False)
        return result

    def _train(self, activation: str, optimizer: str, lr: float, seed: int, steps: int) -> SeedRun:
        from ..models import mlp
        from ..train import fit

        torch.manual_seed(seed)
        net = mlp(
            self.X_train.shape[1],
            1,
            depth=self.depth,
            width=self.width,
            activation=activation,
            init="xavier_uniform",
            device=self.device,
        )
        weights = WeightRecorder(net)
        spread = SpreadRecorder(net, self.X_train, every=self.spread_every)
        history = fit(
            net,
            (self.X_train, self.y_train),
            steps=steps,
            lr=lr,
            optimizer=SEED_OPTIMIZERS[optimizer],
            batch_size=self.batch_size,
            loss="bce",
            seed=seed,
            eval_data=self.test,
            eval_every=self.eval_every if self.test is not None else None,
            callbacks=[weights, spread],
            progress=False,
        )
        return SeedRun(net, history, weights, spread)

    def _source(self, key: tuple) -> tuple:
        """The shortest cached run that covers the run ``key`` asks for (``key`` itself if none)."""
        *settings, steps = key
        covering = []
        for other, run in self._runs.items():
            if list(other[:-1]) != settings or other[-1] < steps:
                continue
            if run.history.diverged_at is not None and other != key:
                continue  # a run that diverged is only used for exactly its own setting
            if self.test is not None and other != key and steps not in run.history.eval_steps:
                continue  # no test accuracy recorded at that step: train the run itself
            covering.append(other)
        return min(covering, key=lambda k: k[-1], default=key)

    def curves(
        self,
        activation: str = "sigmoid",
        optimizer: str = "adam",
        lr: float = 1e-3,
        seed: int = 0,
        steps: int = 700,
    ) -> SeedCurves:
        """Relative weight change per step and layer, losses and test accuracy of one run (cached).

        Read off the shortest cached run with the same settings that covers ``steps`` steps (and
        has the test accuracy at step ``steps``), else off :meth:`run`.
        """
        key = self._key(activation, optimizer, lr, seed, steps)
        source = self._source(key)
        return self._curves(source, steps)

    def _compute_curves(self, source: tuple, steps: int) -> SeedCurves:
        _, history, weights, _ = self.run(*source)
        steps = min(steps, history.steps)  # a run that diverged stops early
        loss = np.asarray(history.loss[:steps], dtype=float)
        k = max(1, steps // 10)
        accuracy = float("nan")
        if self.test is not None and steps in history.eval_steps:  # not when training diverged
            accuracy = history.eval_accuracy[history.eval_steps.index(steps)]
        return SeedCurves(
            steps=steps,
            change=weights.relative_changes()[: steps + 1],
            loss=loss,
            final_loss=float(np.mean(loss[-k:])),
            test_accuracy=float(accuracy),
        )

    def __repr__(self) -> str:
        return (
            f"SeedExperiment(depth={self.depth}, width={self.width}, batch_size={self.batch_size}, "
            f"train={len(self.X_train)}, cached runs={len(self._runs)}, device={self.device})"
        )


class _SeedPanels:
    """The seed explorer's two panels, drawn once and then updated in place (``Explorer(clear=False)``).

    Left: one bar per tracked layer (log scale, fixed limits). Right: the running-mean training
    loss with the article's length and the chosen step as vertical lines.
    """

    def __init__(self, axes: list, layer_names: list[str], article_steps: int):
        from matplotlib.ticker import NullLocator

        n = len(layer_names)
        colors = ["C3"] + ["C0"] * (n - 2) + ["C2"] if n > 1 else ["C3"]
        self.ax_change, self.ax_loss = axes[0], axes[1]
        self.bars = self.ax_change.bar(layer_names, [1.0] * n, color=colors)
        self.ax_change.set(
            yscale="log",
            ylim=(1e-12, 10),
            xlabel="layer (1 = input side)",
            ylabel=r"$\|W_t - W_0\| / \|W_0\|$",
        )
        self.ax_change.yaxis.set_minor_locator(NullLocator())
        (self.loss,) = self.ax_loss.plot([], [], lw=1)
        self.ax_loss.axvline(article_steps, color="grey", ls="--", lw=1, label="100 epochs")
        self.step = self.ax_loss.axvline(0, color="C3", lw=1.5, label="step 0")
        self.ax_loss.set(xlabel="step", title="training loss")
        self.legend = self.ax_loss.legend(fontsize=7)

    def show(self, change: np.ndarray, t: int, loss: np.ndarray, width: int) -> None:
        for bar, value in zip(self.bars, np.maximum(change, 1e-12)):
            bar.set_height(value)
        self.ax_change.set_title(f"relative weight change at step {t}")
        self.loss.set_data(np.arange(width - 1, width - 1 + len(loss)), loss)
        self.step.set_xdata([t, t])
        self.legend.get_texts()[1].set_text(f"step {t}")
        self.ax_loss.set_ylabel(f"training loss ({width}-step mean)")
        self.ax_loss.relim()
        self.ax_loss.autoscale_view()


def seed_experiment_explorer(
    experiment: SeedExperiment,
    *,
    steps: Sequence[int] = (700, 1200),
    article_steps: int = 700,
    activations: Sequence[str] = ("sigmoid", "tanh", "relu"),
    lrs: Sequence[float] = (1e-3, 1e-2, 1e-1, 1.0),
    seeds: Sequence[int] = (0, 1, 2),
    activation: str = "sigmoid",
    optimizer: str = "adam",
    lr: float = 1e-3,
    seed: int = 0,
    at_step: int | None = None,
    step_increment: int = 50,
    smooth: int = 20,
):
    r"""Explorer: replay the seed experiment (:class:`SeedExperiment`) with any activation and optimizer.

    Left: the relative weight change :math:`\|W_t - W_0\|_F / \|W_0\|_F` of every layer (1 = input
    side, red; output, green) at the chosen step :math:`t`, log scale. Right: the training loss
    (``smooth``-step running mean) with :math:`t` and the article's 100 epochs (``article_steps``)
    marked. Under SGD the first layer's bar collapses (its gradient is the product of nine small
    Jacobians); under Adam, whose step is about :math:`\eta\,\mathrm{sign}(g)` (Kingma & Ba 2015,
    Sec. 2.1), it is the tallest, and the loss still sits at :math:`\ln 2` for 100 epochs.

    A new activation / optimizer / learning rate / seed / length trains the network once
    (:meth:`SeedExperiment.run`, cached, and shared with the lesson's own calls); the "show step"
    slider, the first control, only indexes into the cached per-step curves
    (:meth:`SeedExperiment.curves`). ``explorer.state`` holds the last ``settings``, the step
    ``t``, the per-layer ``change`` at ``t``, the ``loss`` curve and the :class:`SeedCurves`.
    """
    from ..widgets import Explorer, dropdown, slider

    if not isinstance(experiment, SeedExperiment):
        raise TypeError(
            f"experiment must be a vgcourse.shrinkage.SeedExperiment, got {type(experiment).__name__}"
        )
    if isinstance(steps, (str, bytes)) or not isinstance(steps, Sequence) or not steps:
        raise TypeError(f"steps must be a non-empty sequence of step counts, got {steps!r}")
    steps = [check_int("steps[i]", s, minimum=1) for s in steps]
    article_steps = check_int("article_steps", article_steps, minimum=1)
    for name, options, value in (
        ("activation", activations, activation),
        ("lr", lrs, lr),
        ("seed", seeds, seed),
    ):
        if isinstance(options, (str, bytes)) or not isinstance(options, Sequence) or not options:
            raise TypeError(f"{name}s must be a non-empty sequence, got {options!r}")
        check_choice(name, value, options)
    for a in activations:
        _act.canonical_name(a)
    check_choice("optimizer", optimizer, SEED_OPTIMIZERS)
    step_increment = check_int("step_increment", step_increment, minimum=1)
    smooth = check_int("smooth", smooth, minimum=1)
    longest = max(steps)
    at_step = check_int("at_step", article_steps if at_step is None else at_step, minimum=0)
    if at_step > longest:
        raise ValueError(f"at_step must be <= the longest run ({longest} steps), got {at_step}")
    n_layers = experiment.depth + 1
    layer_names = [str(i) for i in range(1, n_layers)] + ["out"]
    state: dict[str, Any] = {}
    panels: list[_SeedPanels] = []

    def update(axes, at_step, activation, optimizer, lr, seed, steps) -> str:
        curves = experiment.curves(activation, optimizer, float(lr), int(seed), int(steps))
        t = min(int(at_step), len(curves.change) - 1)
        change = curves.change[t]
        width = min(smooth, len(curves.loss))
        running = np.convolve(curves.loss, np.ones(width) / width, mode="valid")
        state.update(
            settings=dict(
                activation=activation, optimizer=optimizer, lr=lr, seed=seed, steps=steps
            ),
            t=t,
            change=change,
            loss=running,
            curves=curves,
        )
        if not axes[0].patches:  # a fresh figure, or the explorer wiped it after an error
            panels[:] = [_SeedPanels(axes, layer_names, article_steps)]
        panels[0].show(change, t, running, width)
        accuracy = (
            "" if math.isnan(curves.test_accuracy) else f", test acc {curves.test_accuracy:.0%}"
        )
        return (
            f"{activation} + {optimizer} (lr {lr:g}, seed {seed}) at step {t}: layer-1 change "
            f"{change[0]:.2g}, output {change[-1]:.2g} | after {curves.steps} steps: loss "
            f"{curves.final_loss:.3f}{accuracy}"
        )

    controls = {
        "at_step": slider(at_step, 0, longest, step_increment, "show step", integer=True),
        "activation": dropdown(list(activations), activation, "activation"),
        "optimizer": dropdown(list(SEED_OPTIMIZERS), optimizer, "optimizer"),
        "lr": dropdown(list(lrs), lr, "learning rate"),
        "seed": dropdown(list(seeds), seed, "seed"),
        "steps": dropdown(steps, longest, "train for"),
    }
    explorer = Explorer(
        update,
        controls,
        caption="slide through training; switch adam to sgd and watch layer 1's bar collapse; "
        "then try relu, or sgd with lr 0.1. A new setting trains once (a few seconds); the rest "
        "is cached.",
        title="Seed experiment: which layers move, and when?",
        clear=False,  # the panels move their artists: no ticks and texts rebuilt per redraw
    )
    explorer.state = state
    return explorer


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
