r"""Lesson 03's tools: how an activation function shapes the gradient a deep net receives.

Everything here works on the course's activation names (:data:`vgcourse.ACTIVATIONS`) and on any
``nn.Module`` whose activations are PyTorch modules.

* **Expected derivative.** For pre-activations :math:`z \sim \mathcal N(\mu, \sigma^2)` each layer
  multiplies the backward signal by :math:`\phi'(z)`; its average
  :math:`\mathbb E[\phi'(z)]` is estimated by Monte Carlo with autograd
  (:func:`mc_expected_derivative`), computed in closed form where one exists
  (:func:`closed_form_expected_derivative`) and by quadrature (:func:`gaussian_expectation`).
* **Saturation.** A saturating unit (sigmoid, tanh, softsign) passes back less than 10% of its
  largest derivative beyond :math:`|z| > t` (:func:`saturation_threshold`).
* **Non-zero mean.** :class:`CenteredSigmoid` is :math:`\sigma(z) - \tfrac12 = \tfrac12\tanh(z/2)`;
  :func:`center_sigmoids` rewrites a sigmoid MLP into the *same function* with centred units, so
  any difference in training is pure optimisation (LeCun et al. 1998, "Efficient BackProp",
  sec. 4.3-4.4). :func:`same_sign_fraction` measures the sign-sharing of weight-gradient rows.
* **Dead units.** :func:`dead_units` counts units whose derivative is exactly 0 on every sample of a
  data set (ReLU units that no input turns on).
* **Activation statistics during training.** :class:`ActivationRecorder` is a :func:`vgcourse.fit`
  callback that records each hidden layer's mean and standard deviation on a fixed batch
  (Glorot & Bengio 2010, sec. 3.1, Figure 2).
* **SELU's fixed point.** :func:`selu_moment_map` is the mean/variance map of Klambauer et al.
  2017 (sec. 2) in closed form; :func:`solve_selu_constants` finds :math:`\alpha_{01}, \lambda_{01}`
  numerically and :func:`selu_constants_closed_form` from the formulas derived in lesson 03.
* **Explorer.** :func:`activation_explorer`: activation, its parameter and depth -> function and
  derivative, activation histograms per layer, gradient norm per layer.
"""

from __future__ import annotations

import copy
import math
import numbers
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from .. import activations as _act
from .._validate import (
    check_choice,
    check_int,
    check_module,
    check_positive,
    check_tensor,
    check_xy,
)
from ..probes import Probe

#: Activations whose derivative tends to 0 on both sides (sigmoid-like).
SATURATING = ("sigmoid", "tanh", "softsign")

#: The initialisation each activation is paired with in lesson 03: the variance of Glorot & Bengio
#: 2010's normalized init (eq. 16), drawn from a normal, gain 1, for the saturating functions; He et
#: al. 2015 for the rectifiers (the leaky slope enters the gain); LeCun's Var = 1/n for SELU
#: (Klambauer et al. 2017) and for the identity.
SUGGESTED_INIT: dict[str, tuple[str, dict]] = {
    "identity": ("lecun_normal", {}),
    "sigmoid": ("xavier_normal", {}),
    "tanh": ("xavier_normal", {}),
    "softsign": ("xavier_normal", {}),
    "relu": ("kaiming_normal", {}),
    "leaky_relu": ("kaiming_normal", {"nonlinearity": "leaky_relu"}),
    "prelu": ("kaiming_normal", {"nonlinearity": "leaky_relu"}),
    "elu": ("kaiming_normal", {}),
    "selu": ("lecun_normal", {}),
    "silu": ("kaiming_normal", {}),
    "gelu": ("kaiming_normal", {}),
}


def _check_real(name: str, value, *, finite: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if finite and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return value


def _slope(name: str, kw: dict) -> float:
    p = {**_act.info(name).defaults, **kw}
    return float(p.get("negative_slope", p.get("init", 0.0)))


def _function(name: str, z: torch.Tensor, **kw) -> torch.Tensor:
    r""":math:`\phi(z)` in ``z``'s dtype (``vgcourse.activations.function`` leaves PReLU's weight in
    float32, which fails on a float64 ``z``)."""
    with torch.no_grad():
        return _act.activation(name, **kw).to(device=z.device, dtype=z.dtype)(z)


def suggested_init(name: str, **activation_kw) -> tuple[str, dict]:
    """``(scheme, init_kw)`` for :func:`vgcourse.mlp` with activation ``name`` (:data:`SUGGESTED_INIT`).

    For ``leaky_relu``/``prelu`` the slope :math:`a` enters He's gain
    :math:`\\sqrt{2/(1+a^2)}` (He et al. 2015, eq. 15).
    """
    key = _act.canonical_name(name)
    scheme, kw = SUGGESTED_INIT[key]
    kw = dict(kw)
    if key in ("leaky_relu", "prelu"):
        kw["a"] = _slope(key, activation_kw)
    return scheme, kw


# -- expectations under a Gaussian ---------------------------------------------------------------
def gaussian_expectation(
    fn: Callable[[torch.Tensor], torch.Tensor],
    *,
    mean: float = 0.0,
    std: float = 1.0,
    num_points: int = 20001,
    breakpoints: tuple[float, ...] = (0.0,),
) -> float:
    r""":math:`\mathbb E_{z\sim\mathcal N(\mu,\sigma^2)}[f(z)] = \int f(z)\,\varphi_{\mu,\sigma}(z)\,dz` by quadrature.

    Composite Simpson rule in float64 over :math:`\mu \pm 12\sigma`, split at ``breakpoints``
    (the kink of ReLU-like functions at 0; each piece is evaluated with one-sided limits at its
    ends), so each piece is smooth and the error falls like
    :math:`h^4`: about 1e-12 with the default ``num_points`` for the functions of this course.
    ``fn`` maps a float64 tensor to a tensor of the same shape.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    mean = _check_real("mean", mean)
    std = check_positive("std", std)
    num_points = check_int("num_points", num_points, minimum=101)
    lo, hi = mean - 12 * std, mean + 12 * std
    cuts = sorted({lo, hi, *(float(b) for b in breakpoints if lo < b < hi)})
    per = max(101, num_points // (len(cuts) - 1)) | 1  # Simpson needs an odd number of points
    weights = torch.ones(per, dtype=torch.float64)
    weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0
    total = 0.0
    for a, b in zip(cuts[:-1], cuts[1:]):
        z = torch.linspace(a, b, per, dtype=torch.float64)
        density = torch.exp(-0.5 * ((z - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))
        inside = z.clone()  # one-sided limits at the piece's ends (a step at a kink is not sampled)
        inside[0] = torch.nextafter(z[0], z[1])
        inside[-1] = torch.nextafter(z[-1], z[-2])
        values = fn(inside)
        if not isinstance(values, torch.Tensor) or values.shape != z.shape:
            raise ValueError("fn must return a tensor of the same shape as its input")
        total += float((weights * values.double() * density).sum()) * (b - a) / (per - 1) / 3
    return total


def mc_expected_derivative(
    name: str,
    *,
    n: int = 100_000,
    mean: float = 0.0,
    std: float = 1.0,
    seed: int = 0,
    **kw,
) -> tuple[float, float]:
    r"""Monte-Carlo estimate of :math:`\mathbb E[\phi'(z)]`, :math:`z\sim\mathcal N(\mu,\sigma^2)`, and its standard error.

    Draws ``n`` samples (seeded generator), differentiates the activation *module* with autograd
    (so the estimate does not rely on the closed-form derivative) and returns
    ``(mean of phi'(z_i), std / sqrt(n))``. The error of the estimate is, with 99.7% probability,
    below 3 standard errors.
    """
    n = check_int("n", n, minimum=2)
    mean = _check_real("mean", mean)
    std = check_positive("std", std)
    g = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    z = (mean + std * torch.randn(n, generator=g, dtype=torch.float64)).requires_grad_(True)
    module = _act.activation(name, **kw).double()
    (grad,) = torch.autograd.grad(module(z).sum(), z)
    return float(grad.mean()), float(grad.std() / math.sqrt(n))


def _phi(x: float) -> float:
    """Standard normal CDF."""
    return 0.5 * math.erfc(-x / math.sqrt(2))


def closed_form_expected_derivative(name: str, *, std: float = 1.0, **kw) -> float | None:
    r""":math:`\mathbb E[\phi'(z)]` for :math:`z\sim\mathcal N(0,\sigma^2)` in closed form, or ``None``.

    * identity: 1; ReLU: :math:`P(z>0) = 1/2`; Leaky ReLU / PReLU with slope :math:`a`: :math:`(1+a)/2`.
    * SiLU and GELU: :math:`1/2`. Both are :math:`\phi(z) = z\,g(z)` with :math:`g(z)+g(-z) = 1`, so
      :math:`\phi(z)-\phi(-z) = z`, hence :math:`\phi'(z)+\phi'(-z) = 1` and the symmetric average is 1/2.
    * ELU: :math:`\tfrac12 + \alpha\,\mathbb E[e^z;\,z<0] = \tfrac12 + \alpha e^{\sigma^2/2}\Phi(-\sigma)`;
      SELU: :math:`\lambda` times that with :math:`\alpha = \alpha_{01}`.
    * sigmoid, tanh, softsign: no elementary closed form (``None``).
    """
    key = _act.canonical_name(name)
    std = check_positive("std", std)
    if key == "identity":
        return 1.0
    if key == "relu":
        return 0.5
    if key in ("leaky_relu", "prelu"):
        return (1.0 + _slope(key, kw)) / 2.0
    if key in ("silu", "gelu"):
        if kw.get("approximate", "none") != "none":
            return None
        return 0.5
    if key in ("elu", "selu"):
        alpha = float(kw.get("alpha", 1.0)) if key == "elu" else _act.SELU_ALPHA
        value = 0.5 + alpha * math.exp(std**2 / 2) * _phi(-std)
        return value * (_act.SELU_LAMBDA if key == "selu" else 1.0)
    return None


def saturation_threshold(name: str, *, fraction: float = 0.1, **kw) -> float | None:
    r"""The :math:`t` beyond which a saturating unit is *saturated*: :math:`\phi'(z) < f\,\max\phi'` for :math:`|z| > t`.

    Found by bisection on the closed-form derivative (even and decreasing in :math:`|z|` for
    sigmoid, tanh and softsign). ``None`` for non-saturating families. With the default
    :math:`f = 0.1` (the threshold of :mod:`vgcourse.probes`): sigmoid 3.63, tanh 1.82, softsign 2.16.
    """
    key = _act.canonical_name(name)
    fraction = check_positive("fraction", fraction)
    if fraction >= 1:
        raise ValueError(f"fraction must be between 0 and 1, got {fraction!r}")
    if key not in SATURATING:
        return None
    target = fraction * _act.info(key).max_derivative
    lo, hi = 0.0, 1.0
    while float(_act.derivative(key, torch.tensor(hi, dtype=torch.float64), **kw)) >= target:
        hi *= 2
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if float(_act.derivative(key, torch.tensor(mid, dtype=torch.float64), **kw)) >= target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def activation_table(
    names: tuple[str, ...] | None = None, *, n: int = 100_000, seed: int = 0
) -> list[dict]:
    r"""One row per activation, for :math:`z \sim \mathcal N(0, 1)`.

    Columns: ``name``, ``family``, ``max_derivative``, ``mean_output`` :math:`\mathbb E[\phi(z)]`,
    ``mc`` and ``mc_se`` (Monte Carlo :math:`\mathbb E[\phi']` and its standard error),
    ``quadrature`` (:func:`vgcourse.activations.expected_derivative`), ``closed_form`` (or ``None``),
    ``second_moment`` :math:`\mathbb E[\phi'(z)^2]` and ``saturates_beyond`` (or ``None``).
    Default names: every activation except the ``swish`` alias.
    """
    if names is None:
        names = tuple(a for a in _act.ACTIVATIONS if a != "swish")
    rows = []
    for i, name in enumerate(names):
        key = _act.canonical_name(name)
        mc, se = mc_expected_derivative(key, n=n, seed=seed + i)
        rows.append(
            dict(
                name=name,
                family=_act.info(key).family,
                max_derivative=_act.info(key).max_derivative,
                mean_output=gaussian_expectation(lambda z, k=key: _function(k, z)),
                mc=mc,
                mc_se=se,
                quadrature=_act.expected_derivative(key),
                closed_form=closed_form_expected_derivative(key),
                second_moment=gaussian_expectation(lambda z, k=key: _act.derivative(k, z) ** 2),
                saturates_beyond=saturation_threshold(key),
            )
        )
    return rows


def format_table(rows: list[dict], columns: tuple[str, ...] | None = None, digits: int = 4) -> str:
    """A Markdown table of ``rows`` (dicts); floats to ``digits`` significant digits, ``None`` as a dash."""
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise TypeError("rows must be a non-empty list of dicts")
    columns = tuple(columns or rows[0].keys())
    missing = [c for c in columns if c not in rows[0]]
    if missing:
        raise ValueError(f"columns {missing} are not in the rows; available: {list(rows[0])}")

    def cell(v) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.{digits}g}"
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


# -- non-zero mean outputs -----------------------------------------------------------------------
class CenteredSigmoid(nn.Module):
    r""":math:`\sigma(z) - \tfrac12 = \tfrac12\tanh(z/2)`: the sigmoid's shape and derivative, mean output 0 at :math:`z=0`."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(z) - 0.5


def center_sigmoids(net: nn.Module) -> nn.Module:
    r"""A copy of a sigmoid :func:`vgcourse.mlp` computing the **same function** with :class:`CenteredSigmoid` units.

    Each hidden unit outputs :math:`h = h_c + \tfrac12` with :math:`h_c = \sigma(z) - \tfrac12`; the
    next layer computes :math:`W h + b = W h_c + (b + \tfrac12 W\mathbf 1)`, so the copy uses
    centred units and biases :math:`b + \tfrac12 W \mathbf 1`. Only the parametrisation differs, so
    any difference in training is one of optimisation (LeCun et al. 1998, sec. 4.3-4.4).
    """
    check_module("net", net)
    blocks = getattr(net, "blocks", None)
    if blocks is None or not hasattr(net, "output_layer"):
        raise TypeError("net must be a vgcourse.mlp model (it needs .blocks and .output_layer)")
    if any(not isinstance(b.act, nn.Sigmoid) for b in blocks):
        raise ValueError("every hidden activation of net must be nn.Sigmoid")
    if any(getattr(b, "residual", False) or not isinstance(b.norm, nn.Identity) for b in blocks):
        raise ValueError("net must be a plain MLP (no norm layers, no skip connections)")
    out = copy.deepcopy(net)
    following = [b.linear for b in out.blocks[1:]] + [out.output_layer]
    with torch.no_grad():
        for block, nxt in zip(out.blocks, following):
            block.act = CenteredSigmoid()
            nxt.bias += 0.5 * nxt.weight.sum(dim=1)
    return out


def same_sign_fraction(grad: torch.Tensor) -> float:
    r"""Fraction of rows of a weight gradient whose non-zero entries all have one sign.

    For one sample, :math:`\partial L/\partial W_{ij} = \delta_i h_j`: if every input :math:`h_j > 0`
    (sigmoid outputs), row :math:`i` has the sign of :math:`\delta_i` throughout, so the fraction is 1
    and the unit's incoming weights can only all grow or all shrink together (LeCun et al. 1998,
    sec. 4.3). Rows that are entirely zero are left out.
    """
    grad = check_tensor("grad", grad, ndim=2)
    nonzero = grad != 0
    rows = nonzero.any(dim=1)
    if not bool(rows.any()):
        raise ValueError("grad is all zeros; no row has a sign")
    pos = ((grad > 0) | ~nonzero).all(dim=1)
    neg = ((grad < 0) | ~nonzero).all(dim=1)
    return float(((pos | neg) & rows).float().sum() / rows.float().sum())


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


# -- SELU -----------------------------------------------------------------------------------------
def elu_gaussian_moments(mean: float, std: float, alpha: float = 1.0) -> tuple[float, float]:
    r""":math:`(\mathbb E[\mathrm{elu}_\alpha(z)],\ \mathbb E[\mathrm{elu}_\alpha(z)^2])` for :math:`z\sim\mathcal N(m, s^2)`, in closed form.

    With :math:`\Phi` the normal CDF, :math:`\varphi` its density and :math:`r = m/s`:

    .. math::
        \mathbb E[z;\,z>0] = m\Phi(r) + s\varphi(r),\quad
        \mathbb E[z^2;\,z>0] = (m^2+s^2)\Phi(r) + ms\varphi(r),\quad
        \mathbb E[e^{kz};\,z<0] = e^{km + k^2s^2/2}\,\Phi\!\big(-(m + ks^2)/s\big),

    so :math:`\mathbb E[\mathrm{elu}] = \mathbb E[z;z>0] + \alpha(\mathbb E[e^z;z<0] - \Phi(-r))` and
    :math:`\mathbb E[\mathrm{elu}^2] = \mathbb E[z^2;z>0] + \alpha^2(\mathbb E[e^{2z};z<0] - 2\mathbb E[e^z;z<0] + \Phi(-r))`.
    """
    m = _check_real("mean", mean)
    s = check_positive("std", std)
    alpha = _check_real("alpha", alpha)
    r = m / s
    dens = math.exp(-0.5 * r * r) / math.sqrt(2 * math.pi)

    def exp_neg(k: float) -> float:
        return math.exp(k * m + 0.5 * k * k * s * s) * _phi(-(m + k * s * s) / s)

    pos1 = m * _phi(r) + s * dens
    pos2 = (m * m + s * s) * _phi(r) + m * s * dens
    e1, e2, p_neg = exp_neg(1.0), exp_neg(2.0), _phi(-r)
    first = pos1 + alpha * (e1 - p_neg)
    second = pos2 + alpha**2 * (e2 - 2 * e1 + p_neg)
    return first, second


def selu_moment_map(
    mu: float,
    nu: float,
    *,
    omega: float = 0.0,
    tau: float = 1.0,
    alpha: float = _act.SELU_ALPHA,
    lam: float = _act.SELU_LAMBDA,
) -> tuple[float, float]:
    r"""Klambauer et al. 2017 (sec. 2): the map :math:`g: (\mu, \nu) \mapsto (\tilde\mu, \tilde\nu)` of a SELU layer.

    Inputs with mean :math:`\mu` and variance :math:`\nu`, one unit with weights :math:`w`,
    :math:`\omega = \sum_i w_i`, :math:`\tau = \sum_i w_i^2`: by the central limit theorem
    :math:`z = w^\top x \sim \mathcal N(\mu\omega, \nu\tau)`, and
    :math:`\tilde\mu = \mathbb E[\mathrm{selu}(z)]`,
    :math:`\tilde\nu = \mathbb E[\mathrm{selu}(z)^2] - \tilde\mu^2` (closed form,
    :func:`elu_gaussian_moments`). With :math:`\omega = 0, \tau = 1` and the constants
    :math:`\alpha_{01}, \lambda_{01}`, :math:`(0, 1)` is a fixed point.
    """
    mu = _check_real("mu", mu)
    nu = check_positive("nu", nu)
    omega = _check_real("omega", omega)
    tau = check_positive("tau", tau)
    lam = check_positive("lam", lam)
    first, second = elu_gaussian_moments(mu * omega, math.sqrt(nu * tau), alpha)
    m = lam * first
    return m, lam**2 * second - m * m


def iterate_moment_map(
    mu: float, nu: float, steps: int, *, omega: float = 0.0, tau: float = 1.0
) -> np.ndarray:
    """Apply :func:`selu_moment_map` ``steps`` times from ``(mu, nu)``: array ``(steps + 1, 2)``, start included."""
    steps = check_int("steps", steps, minimum=0)
    path = [(float(mu), float(nu))]
    for _ in range(steps):
        path.append(selu_moment_map(*path[-1], omega=omega, tau=tau))
    return np.asarray(path)


def moment_map_jacobian(mu: float = 0.0, nu: float = 1.0, *, h: float = 1e-6, **kw) -> np.ndarray:
    r"""Jacobian :math:`\partial(\tilde\mu,\tilde\nu)/\partial(\mu,\nu)` of :func:`selu_moment_map` by central differences.

    At the fixed point its spectral norm below 1 makes :math:`g` a contraction there (Klambauer et
    al. 2017, sec. 2), so nearby means and variances are pulled back to :math:`(0, 1)`.
    """
    h = check_positive("h", h)
    J = np.zeros((2, 2))
    for j, (dm, dn) in enumerate(((h, 0.0), (0.0, h))):
        plus = selu_moment_map(mu + dm, nu + dn, **kw)
        minus = selu_moment_map(mu - dm, nu - dn, **kw)
        J[:, j] = (np.asarray(plus) - np.asarray(minus)) / (2 * h)
    return J


def selu_constants_closed_form() -> tuple[float, float]:
    r""":math:`(\alpha_{01}, \lambda_{01})` from :math:`\mathbb E[\mathrm{selu}(z)] = 0`, :math:`\mathbb E[\mathrm{selu}(z)^2] = 1`, :math:`z \sim \mathcal N(0,1)`.

    The mean condition does not involve :math:`\lambda`:
    :math:`\tfrac{1}{\sqrt{2\pi}} + \alpha\,(e^{1/2}\Phi(-1) - \tfrac12) = 0`, so
    :math:`\alpha_{01} = \sqrt{2/\pi}\,/\,(1 - e^{1/2}\,\mathrm{erfc}(1/\sqrt2))`. Then
    :math:`\lambda_{01} = \big(\tfrac12 + \alpha_{01}^2(e^2\Phi(-2) - 2e^{1/2}\Phi(-1) + \tfrac12)\big)^{-1/2}`.
    """
    alpha = math.sqrt(2 / math.pi) / (1 - math.exp(0.5) * math.erfc(1 / math.sqrt(2)))
    inner = math.exp(2) * _phi(-2) - 2 * math.exp(0.5) * _phi(-1) + 0.5
    lam = 1 / math.sqrt(0.5 + alpha**2 * inner)
    return alpha, lam


def solve_selu_constants(
    *, target_mean: float = 0.0, target_var: float = 1.0, tol: float = 1e-13
) -> tuple[float, float]:
    r"""Solve :math:`\mathbb E[\lambda\,\mathrm{elu}_\alpha(z)] = \mu^*`, :math:`\mathrm{Var}[\lambda\,\mathrm{elu}_\alpha(z)] = \nu^*` numerically.

    For :math:`z \sim \mathcal N(0, 1)`, the expectations by quadrature of PyTorch's own ``elu``
    (:func:`gaussian_expectation`). The mean is :math:`\lambda` times a quantity decreasing in
    :math:`\alpha`, so for :math:`\mu^* = 0` bisection on :math:`\alpha` alone gives
    :math:`\alpha`, then :math:`\lambda` follows from the variance. Only ``target_mean = 0`` has
    this decoupling; other targets raise ``ValueError``.
    """
    target_mean = _check_real("target_mean", target_mean)
    target_var = check_positive("target_var", target_var)
    if target_mean != 0.0:
        raise ValueError(f"target_mean must be 0 (the SELU fixed point), got {target_mean!r}")
    tol = check_positive("tol", tol)
    fn = torch.nn.functional.elu

    def mean_elu(alpha: float) -> float:
        return gaussian_expectation(lambda z: fn(z, alpha=alpha))

    lo, hi = 0.0, 10.0  # mean_elu(0) = 1/sqrt(2 pi) > 0, mean_elu(10) < 0
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if mean_elu(mid) > 0:
            lo = mid
        else:
            hi = mid
    alpha = 0.5 * (lo + hi)
    m = mean_elu(alpha)
    second = gaussian_expectation(lambda z: fn(z, alpha=alpha) ** 2)
    lam = math.sqrt(target_var / (second - m * m))
    return alpha, lam


# -- the lesson's explorer ------------------------------------------------------------------------
EXPLORER_ACTIVATIONS = tuple(a for a in _act.ACTIVATIONS if a not in ("swish", "identity"))


def _explorer_kw(activation: str, slope: float, alpha: float) -> dict:
    key = _act.canonical_name(activation)
    if key == "leaky_relu":
        return {"negative_slope": float(slope)}
    if key == "prelu":
        return {"init": float(slope)}
    if key == "elu":
        return {"alpha": float(alpha)}
    return {}


def activation_explorer(
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    activation: str = "sigmoid",
    depth: int = 10,
    width: int = 32,
    max_depth: int = 40,
    slope: float = 0.01,
    alpha: float = 1.0,
    seed: int = 0,
    layers_shown: int = 6,
    device: torch.device | str | None = None,
):
    r"""Explorer: pick an activation (and its slope or alpha) and a depth; see :math:`\phi, \phi'`,
    the activation histograms per layer and the gradient norm per layer of a fresh MLP on ``(X, y)``.

    The MLP uses :func:`suggested_init`; results are cached per setting (the slope counts only for
    Leaky ReLU / PReLU, alpha only for ELU), so returning to a setting is instant, and the function
    panel is redrawn only when the activation or its parameter changes. ``explorer.state`` holds
    the last setting (``activation``, ``depth``, ``kw``: the activation's parameters), the
    per-layer gradient norms (``norms``), the largest dead and saturated fractions over the layers
    (``dead``, ``saturated``) and :math:`\mathbb E[\phi'(z)]` for :math:`z\sim\mathcal N(0,1)`
    (``expected_derivative``). The networks run on ``device`` (default:
    :func:`vgcourse.get_device`). Returns a :class:`vgcourse.widgets.Explorer` (display it as a
    cell's last expression).
    """
    from functools import lru_cache

    from ..device import get_device
    from ..models import mlp
    from ..plots import plot_activation, plot_grad_norms, plot_histograms
    from ..probes import probe_model
    from ..train import layer_grad_norms
    from ..widgets import Explorer, clear_data, dropdown, slider

    X, y = check_xy(X, y)
    check_choice("activation", activation, EXPLORER_ACTIVATIONS)
    depth = check_int("depth", depth, minimum=1)
    width = check_int("width", width, minimum=1)
    max_depth = check_int("max_depth", max_depth, minimum=depth)
    layers_shown = check_int("layers_shown", layers_shown, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    n_classes = int(y.max()) + 1
    device = get_device(device)
    X, y = X.to(device), y.to(device)
    state: dict = {}
    drawn: dict = {}  # what the function panel shows now

    @lru_cache(maxsize=256)
    def compute(name: str, depth: int, kw_items: tuple):
        kw = dict(kw_items)
        scheme, init_kw = suggested_init(name, **kw)
        torch.manual_seed(seed)
        net = mlp(
            X.shape[1],
            n_classes,
            depth=depth,
            width=width,
            activation=name,
            init=scheme,
            activation_kw=kw,
            device=device,
            **init_kw,
        )
        probe = probe_model(net, X, y)
        records = list(probe.activations.values())
        step = max(1, -(-len(records) // layers_shown))
        samples = {f"layer {i + 1}": records[i].values for i in range(0, len(records), step)}
        if f"layer {len(records)}" not in samples:
            samples[f"layer {len(records)}"] = records[-1].values
        norms = np.asarray(layer_grad_norms(net, X, y))
        dead = max(r.dead for r in records)
        saturated = max(r.saturated for r in records)
        return norms, samples, dead, saturated

    def update(axes, activation: str, depth: int, slope: float, alpha: float) -> str:
        depth = int(depth)
        kw = _explorer_kw(activation, slope, alpha)
        key = (activation, tuple(sorted(kw.items())))
        norms, samples, dead, saturated = compute(activation, depth, key[1])
        expected = _act.expected_derivative(activation, **kw)
        state.update(
            activation=activation,
            depth=depth,
            kw=kw,
            norms=norms,
            dead=dead,
            saturated=saturated,
            expected_derivative=expected,
        )
        if drawn.get("function") != key or not axes[0].lines:  # the function panel changed
            clear_data(axes[0])
            plot_activation(activation, ax=axes[0], **kw)
            drawn["function"] = key
        for ax in axes[1:]:
            clear_data(ax)
        plot_histograms(samples, ax=axes[1], title="activations per layer", xlabel=r"$\phi(z)$")
        plot_grad_norms(norms, ax=axes[2])
        ratio = norms[0] / norms[-1] if norms[-1] > 0 else float("nan")
        used = ", ".join(f"{k}={v:g}" for k, v in kw.items()) or "no parameter"
        return (
            f"{activation} ({used}), depth {depth}: layer 1 / layer {len(norms)} gradient norm "
            f"{ratio:.3g} | E[phi'(z)], z~N(0,1): {expected:.3f} "
            f"| max saturated {saturated:.0%} | max dead {dead:.0%}"
        )

    controls = {
        "activation": dropdown(EXPLORER_ACTIVATIONS, activation, "activation"),
        "depth": slider(depth, 1, max_depth, 1, "depth", integer=True),
        "slope": slider(slope, 0.0, 1.0, 0.01, "leaky/PReLU slope"),
        "alpha": slider(alpha, 0.1, 3.0, 0.1, "ELU alpha"),
    }
    return Explorer(
        update,
        controls,
        caption="switch sigmoid -> tanh -> relu at depth 10, then raise the depth; for leaky_relu "
        "move the slope, for elu move alpha, and watch the gradient norm of layer 1.",
        title="Activation explorer: function, activations per layer, gradient per layer",
        ncols=3,
        figsize=(12.5, 3.6),
        clear=False,  # update keeps the axes and re-plots only what changed
        state=state,
    )


__all__ = [
    "SATURATING",
    "EXPLORER_ACTIVATIONS",
    "SUGGESTED_INIT",
    "ActivationRecorder",
    "CenteredSigmoid",
    "DeadUnits",
    "activation_table",
    "center_sigmoids",
    "activation_explorer",
    "closed_form_expected_derivative",
    "dead_units",
    "elu_gaussian_moments",
    "format_table",
    "gaussian_expectation",
    "gradient_flow",
    "iterate_moment_map",
    "layer_moments",
    "mc_expected_derivative",
    "moment_map_jacobian",
    "same_sign_fraction",
    "saturation_threshold",
    "selu_constants_closed_form",
    "selu_moment_map",
    "solve_selu_constants",
]
