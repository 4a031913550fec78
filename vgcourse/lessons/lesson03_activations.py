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
from typing import Callable

import torch
from torch import nn

from .. import activations as _act
from .._validate import (
    check_int,
    check_module,
    check_positive,
    check_tensor,
)

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
