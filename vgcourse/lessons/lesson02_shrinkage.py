r"""Chain-rule shrinkage: products of derivatives, their bounds, and Jacobian spectra per layer.

Lesson 02 ("chain-rule shrinkage"). For a chain of one-unit layers
:math:`h_i = \phi(a_i)`, :math:`a_i = w_i h_{i-1} + b_i`, :math:`h_0 = x`, the chain rule gives

.. math:: \frac{\partial h_n}{\partial x} = \prod_{i=1}^{n} w_i\,\phi'(a_i),

and since :math:`\sigma'(z) = \sigma(z)(1-\sigma(z)) \le 1/4`, a sigmoid chain obeys
:math:`|\partial h_n / \partial x| \le \prod_i |w_i| / 4^n`
(:func:`chain_factors`, :func:`derivative_bound`). For an MLP the factors are the layer Jacobians
:math:`J_\ell = \mathrm{diag}(\phi'(a_\ell)) W_\ell` (:mod:`vgcourse.jacobians`), and
:func:`prefix_singular_values` gives the singular values of :math:`J_\ell \cdots J_1` for every
:math:`\ell`, so that :math:`\sigma_{\max}(J_\ell \cdots J_1) \le \prod_k \max|\phi'|\,\|W_k\|_2`.
A product of :math:`t` similar factors behaves like :math:`C\rho^t`; :func:`decay_rate` fits the
per-layer (or per-step) factor :math:`\rho`.

The rest of the lesson's code lives beside this module: what training did to each layer
(:mod:`.lesson02_weight_change`), the seed articles' experiment (:mod:`.lesson02_seed_experiment`)
and its explorer (:mod:`.lesson02_seed_explorer`), and the contracting maps of Bengio, Simard &
Frasconi 1994 (:mod:`.lesson02_latch`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .. import activations as _act
from .._validate import check_int, check_positive, check_tensor
from ..jacobians import (
    closed_form_applies,
    layer_jacobians,
    layer_jacobians_batch,
    prefix_products,
    singular_values,
)

__all__ = [
    "chain_factors",
    "decay_rate",
    "derivative_bound",
    "prefix_singular_values",
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
    normalization the layer Jacobians are formed in closed form, all inputs at once
    (:func:`vgcourse.jacobians.layer_jacobians_batch`):
    :math:`J_\ell = \mathrm{diag}(\phi'(a_\ell)) W_\ell`, or
    :math:`I + s\,\mathrm{diag}(\phi'(a_\ell)) W_\ell` with a skip connection of scale :math:`s`;
    nets with batch or layer norm fall back to the autograd Jacobians of
    :func:`vgcourse.jacobians.layer_jacobians`, one input at a time. The products are computed in
    the net's dtype (call ``.double()`` on the net for deep products, which reach 1e-20 and below),
    their singular values in float64. Returns an array of shape (N, depth, k), largest first, with
    :math:`k = \min(\text{width}, \text{in\_features})`.
    """
    inputs = check_tensor("inputs", inputs, ndim=2)
    if inputs.shape[0] < 1:
        raise ValueError("inputs must hold at least one row")
    if closed_form_applies(net):  # raises TypeError unless net is a vgcourse.mlp model
        products = prefix_products(layer_jacobians_batch(net, inputs))
        return torch.stack([singular_values(P).cpu() for P in products], dim=1).numpy()
    first = next(net.parameters())
    return np.stack(
        [
            np.stack(
                [singular_values(P).cpu().numpy() for P in prefix_products(layer_jacobians(net, x))]
            )
            for x in inputs.to(first.dtype)
        ]
    )


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
