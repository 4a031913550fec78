r"""Activations inside deep nets: dead ReLU units counted (a unit is dead when its derivative is zero on
every sample), activation statistics recorded during training, and gradient flow per activation (the
weight-gradient norm, the backward signal and the second moment :math:`E[h^2]` per layer)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .. import activations as _act
from .._validate import (
    check_int,
    check_module,
    check_tensor,
    check_xy,
)
from ..probes import Probe
from .lesson03_activations import suggested_init


# -- dead units -----------------------------------------------------------------------------------
def _activation_modules(net: nn.Module) -> list[tuple[str, nn.Module]]:
    return [
        (name or "model", m)
        for name, m in net.named_modules()
        if _act.name_of(m) not in (None, "identity")
    ]


@dataclass
class DeadUnits:
    """Result of :func:`dead_units`: per activation layer (forward order), the units and the dead ones.

    ``dead[l]`` counts units with :math:`\\phi'(z) = 0` on every sample, ``off[l]`` units with
    :math:`z \\le 0` on every sample (for Leaky ReLU / PReLU / ELU these are off but still pass a
    gradient back, so they can come back), ``units[l]`` the layer width.
    """

    names: list[str]
    units: np.ndarray
    dead: np.ndarray
    off: np.ndarray

    @property
    def fraction(self) -> np.ndarray:
        """Dead fraction per layer."""
        return self.dead / np.maximum(self.units, 1)

    @property
    def total_fraction(self) -> float:
        """Dead units over all layers divided by all units."""
        return float(self.dead.sum() / max(1, self.units.sum()))


def dead_units(net: nn.Module, X: torch.Tensor, *, batch_size: int = 2048) -> DeadUnits:
    r"""Count, per activation layer, the units that are **dead on the whole data set** ``X``.

    A unit is dead when the local derivative :math:`\phi'(z)` is exactly 0 for every sample: its
    incoming weights then get no gradient from any sample, so gradient descent cannot revive it
    (for ReLU: :math:`z \le 0` everywhere). Leaky ReLU, PReLU (slope :math:`\ne 0`) and ELU have
    :math:`\phi' > 0` everywhere, so they have no dead units by construction. Units are the
    features of dimension 1 (the columns of an MLP layer). Runs in eval mode, without gradients.
    """
    check_module("net", net)
    X = check_tensor("X", X)
    if X.ndim < 2 or X.shape[0] == 0:
        raise ValueError(f"X must be a batch of samples (N, ...), got shape {tuple(X.shape)}")
    batch_size = check_int("batch_size", batch_size, minimum=1)
    modules = _activation_modules(net)
    if not modules:
        raise ValueError("net has no activation modules (nn.ReLU, nn.Sigmoid, ...) to inspect")
    alive: dict[str, torch.Tensor] = {}
    on: dict[str, torch.Tensor] = {}

    def make_hook(name: str):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            z = inputs[0].detach()
            flat = z.reshape(z.shape[0], z.shape[1], -1) if z.ndim > 2 else z.unsqueeze(-1)
            d = _act.module_derivative(module, z)
            d = d.reshape(flat.shape)
            a = (d != 0).any(dim=2).any(dim=0)
            o = (flat > 0).any(dim=2).any(dim=0)
            alive[name] = alive[name] | a if name in alive else a
            on[name] = on[name] | o if name in on else o

        return hook

    handles = [m.register_forward_hook(make_hook(n)) for n, m in modules]
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    try:
        with torch.no_grad():
            for start in range(0, X.shape[0], batch_size):
                net(X[start : start + batch_size].to(device))
    finally:
        for h in handles:
            h.remove()
        net.train(was_training)
    names = [n for n, _ in modules if n in alive]
    return DeadUnits(
        names=names,
        units=np.array([alive[n].numel() for n in names]),
        dead=np.array([int((~alive[n]).sum()) for n in names]),
        off=np.array([int((~on[n]).sum()) for n in names]),
    )


# -- activation statistics during training --------------------------------------------------------
@dataclass
class ActivationRecorder:
    r"""A :func:`vgcourse.fit` callback recording each activation layer's output statistics on a fixed batch.

    Every ``every`` optimizer steps (and when :meth:`record` is called, e.g. before training) it runs
    ``X`` through the model without gradients under a :class:`vgcourse.Probe` and stores, per layer,
    the mean and standard deviation of the outputs (over units and samples) and the saturated
    fraction. This is the measurement behind Glorot & Bengio 2010, Figure 2.

    >>> rec = ActivationRecorder(X[:300], every=20)
    >>> rec.record(net)                       # step 0, before training
    >>> vg.fit(net, data, steps=1000, lr=0.1, optimizer="sgd", callbacks=[rec])
    >>> rec.steps, rec.mean, rec.std          # (T,), (T, layers), (T, layers)
    """

    X: torch.Tensor
    every: int = 10
    names: list[str] = field(default_factory=list, init=False)
    _steps: list[int] = field(default_factory=list, init=False, repr=False)
    _mean: list[list[float]] = field(default_factory=list, init=False, repr=False)
    _std: list[list[float]] = field(default_factory=list, init=False, repr=False)
    _sat: list[list[float]] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        self.X = check_tensor("X", self.X)
        if self.X.ndim < 2 or self.X.shape[0] < 2:
            raise ValueError(f"X must hold at least 2 samples, got shape {tuple(self.X.shape)}")
        self.every = check_int("every", self.every, minimum=1)

    def __call__(self, step: int, model: nn.Module, loss: float) -> None:
        """The callback: after optimizer step ``step`` (0-based) the model has made ``step + 1`` updates."""
        if (step + 1) % self.every == 0:
            self.record(model, step + 1)

    def record(self, model: nn.Module, step: int = 0) -> None:
        """Record the statistics now, labelled with ``step`` (the number of updates made so far)."""
        check_module("model", model)
        was_training = model.training
        model.eval()
        probe = Probe(model)
        try:
            probe.attach()
            with torch.no_grad():
                model(self.X.to(next(model.parameters()).device))
        finally:
            probe.detach()
            model.train(was_training)
        records = list(probe.activations.values())
        if not records:
            raise ValueError("model has no activation modules to record")
        if not self.names:
            self.names = [r.name for r in records]
        self._steps.append(int(step))
        self._mean.append([r.mean for r in records])
        self._std.append([r.std for r in records])
        self._sat.append([r.saturated for r in records])

    @property
    def steps(self) -> np.ndarray:
        """Number of updates made at each record."""
        return np.asarray(self._steps)

    @property
    def mean(self) -> np.ndarray:
        """(records x layers) mean activation."""
        return np.asarray(self._mean)

    @property
    def std(self) -> np.ndarray:
        """(records x layers) standard deviation of the activations."""
        return np.asarray(self._std)

    @property
    def saturated(self) -> np.ndarray:
        """(records x layers) saturated fraction (saturating activations only, else 0)."""
        return np.asarray(self._sat)


# -- gradient flow per activation -----------------------------------------------------------------
def gradient_flow(
    activation: str,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    depth: int,
    width: int,
    seeds: tuple[int, ...] = (0,),
    init: str | None = None,
    activation_kw: dict | None = None,
    loss: str = "cross_entropy",
) -> np.ndarray:
    """Weight-gradient norm per hidden layer at initialisation, one row per seed: ``(len(seeds), depth)``.

    Builds :func:`vgcourse.mlp` with ``activation`` and (by default) its :func:`suggested_init`,
    and calls :func:`vgcourse.layer_grad_norms` on ``(X, y)`` once per seed.
    """
    from ..models import mlp
    from ..train import layer_grad_norms

    X, y = check_xy(X, y)
    activation_kw = dict(activation_kw or {})
    scheme, init_kw = suggested_init(activation, **activation_kw)
    if init is not None:
        scheme, init_kw = init, {}
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    out_features = int(y.max()) + 1 if loss == "cross_entropy" else 1
    rows = []
    for seed in seeds:
        torch.manual_seed(check_int("seed", seed, minimum=0))
        net = mlp(
            X.shape[1],
            out_features,
            depth=depth,
            width=width,
            activation=activation,
            init=scheme,
            activation_kw=activation_kw,
            **init_kw,
        )
        rows.append(layer_grad_norms(net, X, y, loss))
    return np.stack(rows)


def layer_moments(net: nn.Module, X: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance (over samples and units) of every hidden layer's output of a :func:`vgcourse.mlp`."""
    if not hasattr(net, "forward_hidden"):
        raise TypeError("net must be a vgcourse.mlp model (it needs .forward_hidden)")
    X = check_tensor("X", X)
    with torch.no_grad():
        hs = net.forward_hidden(X.to(next(net.parameters()).device))
    means = np.array([float(h.mean()) for h in hs])
    variances = np.array([float(h.var()) for h in hs])
    return means, variances
