r"""Variance propagation at initialization: the mean-field predictions of every layer's second moments.

Lesson 04 derives how the second moments of activations and gradients change from layer to layer,
and this module turns the derivation into numbers a notebook can compare with measurements
(:mod:`.lesson04_measurements`, explored in :mod:`.lesson04_explorer`).

**Forward.** A linear layer :math:`a = W h` with weights drawn independently of :math:`h`,
zero-mean with variance :math:`v = \mathrm{Var}(w)`, gives (LeCun et al. 1998; Glorot & Bengio 2010,
sec. 4.2.1; He et al. 2015, sec. 2.2, eq. 7)

.. math:: \mathbb E[a_i^2] = n_{in}\, v\, \mathbb E[h^2],

with the *second moment* :math:`\mathbb E[h^2]` of the input, which equals :math:`\mathrm{Var}(h)`
only when :math:`h` has zero mean (the point He et al. make about ReLU outputs). With wide layers
:math:`a` is close to Gaussian, so the next layer sees
:math:`\mathbb E[\phi(a)^2] = \mathbb E_{z\sim\mathcal N(0,q)}[\phi(z)^2]` with :math:`q=\mathbb E[a^2]`.
For ReLU this is exactly :math:`q/2`; for tanh it is :math:`\approx q` while :math:`q \ll 1`
(the linear regime) and below :math:`q` beyond. This is the mean-field recursion of Poole et al.
2016 and Schoenholz et al. 2017 (eq. 3 there, with :math:`\sigma_b = 0`):

.. math:: q_{\ell+1} = n_\ell\, v_{\ell+1}\, \mathbb E_{z\sim\mathcal N(0,q_\ell)}[\phi(z)^2].

**Backward.** :math:`\partial L/\partial h = W^\top \partial L/\partial a` sums over the
:math:`n_{out}` outputs of the layer, and :math:`\partial L/\partial a = \phi'(a) \odot \partial L/\partial h`:

.. math::
    \mathrm{Var}\Big(\frac{\partial L}{\partial h_{\ell-1}}\Big) = n_{out}\, v_\ell\,
    \mathrm{Var}\Big(\frac{\partial L}{\partial a_\ell}\Big), \qquad
    \mathrm{Var}\Big(\frac{\partial L}{\partial a_\ell}\Big) = \mathbb E[\phi'(a_\ell)^2]\,
    \mathrm{Var}\Big(\frac{\partial L}{\partial h_\ell}\Big)

(Glorot & Bengio 2010, sec. 4.2.1; He et al. 2015, eq. 13-14), treating the backward signal as
independent of the forward pass, the usual mean-field assumption.


**Mean-field fixed point.** Iterating the forward recursion on square layers,
:math:`q \mapsto \sigma_w^2\,\mathbb E_{z\sim\mathcal N(0,q)}[\phi(z)^2]` with
:math:`\sigma_w^2 = n v`, converges to :math:`q^*`; there
:math:`\chi_1 = \sigma_w^2\,\mathbb E[\phi'(z)^2]` is the per-layer factor of the squared gradient:
below 1 gradients vanish, above 1 they explode (:func:`fixed_point`; Schoenholz et al. 2017).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from .. import activations as _act
from .._validate import check_choice, check_int, check_positive
from ..inits import INITS

__all__ = [
    "Propagation",
    "derivative_second_moment",
    "fixed_point",
    "forward_factor",
    "predict_propagation",
    "predicted_second_moments",
    "second_moment",
    "weight_variance",
]


def weight_variance(scheme: str, fan_in: int, fan_out: int, **kw) -> float:
    r"""The variance :math:`v` of one weight entry under ``scheme`` (see :mod:`vgcourse.inits`).

    ==================  ==========================================================
    scheme              :math:`v = \mathrm{Var}(w)`
    ==================  ==========================================================
    zeros               :math:`0`
    normal              :math:`\mathrm{std}^2` (``std`` keyword, default 0.01)
    standard            :math:`b^2/3 = 1/(3 n_{in})` for :math:`U(-b, b)`, :math:`b = 1/\sqrt{n_{in}}`
    xavier_*            :math:`2 g^2 / (n_{in} + n_{out})` (Glorot & Bengio 2010, eq. 16)
    kaiming_*           :math:`g^2 / n_{in}`, :math:`g` = ``calculate_gain(nonlinearity, a)``
                        (default ReLU: :math:`g^2 = 2`, He et al. 2015, eq. 10)
    lecun_normal        :math:`g^2 / n_{in}` (default :math:`g = 1`)
    orthogonal          :math:`g^2 / \max(n_{in}, n_{out})` (every row or column has norm :math:`g`)
    ==================  ==========================================================
    """
    check_choice("scheme", scheme, INITS)
    fan_in = check_int("fan_in", fan_in, minimum=1)
    fan_out = check_int("fan_out", fan_out, minimum=1)
    gain = kw.get("gain")
    if gain is not None:
        gain = check_positive("gain", gain)
    if scheme == "zeros":
        return 0.0
    if scheme == "normal":
        return check_positive("std", kw.get("std", 0.01)) ** 2
    if scheme == "standard":
        return 1.0 / (3.0 * fan_in)
    if scheme.startswith("xavier"):
        return 2.0 * (gain or 1.0) ** 2 / (fan_in + fan_out)
    if scheme.startswith("kaiming"):
        if gain is None:
            gain = nn.init.calculate_gain(kw.get("nonlinearity", "relu"), kw.get("a"))
        return gain**2 / fan_in
    if scheme == "lecun_normal":
        return (gain or 1.0) ** 2 / fan_in
    return (gain or 1.0) ** 2 / max(fan_in, fan_out)  # orthogonal


@lru_cache(maxsize=4)
def _standard_normal_grid(num_points: int) -> tuple[torch.Tensor, torch.Tensor]:
    u = torch.linspace(-10.0, 10.0, num_points, dtype=torch.float64)
    return u, torch.exp(-0.5 * u**2) / math.sqrt(2 * math.pi)


def _gauss_expectation(fn, q: float, num_points: int = 4000) -> float:
    """:math:`\\mathbb E_{z\\sim\\mathcal N(0,q)}[f(z)]` by the trapezoid rule over :math:`\\pm 10\\sqrt q`.

    An even number of points keeps 0 exactly midway between two nodes, so the kinks and jumps of
    ReLU-like functions at 0 cost no accuracy (the error is below 1e-6).
    """
    if q == 0:
        return float(fn(torch.zeros(1, dtype=torch.float64))[0])
    u, density = _standard_normal_grid(num_points)
    return float(torch.trapezoid(fn(math.sqrt(q) * u) * density, u))


def _check_q(q) -> float:
    return check_positive("q", q, allow_zero=True)


def second_moment(activation: str, q: float) -> float:
    r""":math:`\mathbb E_{z\sim\mathcal N(0,q)}[\phi(z)^2]`: the second moment after the activation.

    ReLU gives exactly :math:`q/2` (half of a symmetric distribution is cut to zero; He et al.
    2015, sec. 2.2); the identity gives :math:`q`; tanh gives :math:`\approx q` for small
    :math:`q` and at most 1.
    """
    key = _act.canonical_name(activation)
    q = _check_q(q)
    return _gauss_expectation(lambda z: _act.function(key, z) ** 2, q)


def derivative_second_moment(activation: str, q: float) -> float:
    r""":math:`\mathbb E_{z\sim\mathcal N(0,q)}[\phi'(z)^2]`: the backward factor of the activation.

    ReLU: :math:`1/2`; tanh: 1 at :math:`q = 0`, falling as units saturate. Times
    :math:`\sigma_w^2 = n v` this is Schoenholz et al.'s :math:`\chi_1` (2017, eq. 5), the factor by
    which the squared gradient grows (> 1) or shrinks (< 1) per layer.
    """
    key = _act.canonical_name(activation)
    q = _check_q(q)
    return _gauss_expectation(lambda z: _act.derivative(key, z) ** 2, q)


def forward_factor(activation: str, q: float = 1.0) -> float:
    r""":math:`\mathbb E[\phi(z)^2] / q` for :math:`z\sim\mathcal N(0,q)`: 1/2 for ReLU, 1 for identity.

    The inverse of this factor is the squared "gain" a scheme needs to keep the forward second
    moment constant; compare ``torch.nn.init.calculate_gain``.
    """
    q = check_positive("q", q)
    return second_moment(activation, q) / q


def fixed_point(
    activation: str, sigma_w2: float, *, q0: float = 1.0, iterations: int = 1000
) -> tuple[float, float]:
    r"""The mean-field fixed point :math:`q^*` of :math:`q \mapsto \sigma_w^2\,\mathbb E_{z\sim\mathcal N(0,q)}[\phi(z)^2]` and :math:`\chi_1` there.

    :math:`\sigma_w^2 = n\,\mathrm{Var}(w)` (e.g. :math:`g^2` for LeCun normal with gain
    :math:`g`), biases zero. Returns ``(q_star, chi)`` with
    :math:`\chi_1 = \sigma_w^2\,\mathbb E_{z\sim\mathcal N(0,q^*)}[\phi'(z)^2]`, the per-layer
    factor of the squared gradient deep in the network: :math:`\chi_1 < 1` ordered (gradients
    vanish), :math:`> 1` chaotic (they explode), :math:`= 1` the edge of chaos (Schoenholz et al.
    2017, sec. 3; Poole et al. 2016). Found by iterating the map ``iterations`` times from ``q0``;
    where :math:`q^* = 0` the approach is slow (power law), so the returned :math:`q` is small but
    not exactly 0.
    """
    key = _act.canonical_name(activation)
    sigma_w2 = check_positive("sigma_w2", sigma_w2)
    q = check_positive("q0", q0)
    iterations = check_int("iterations", iterations, minimum=1)
    for _ in range(iterations):
        new = sigma_w2 * second_moment(key, q)
        if not math.isfinite(new):
            raise ValueError(
                f"the second moment diverges for activation={activation!r}, sigma_w2={sigma_w2}"
            )
        if abs(new - q) <= 1e-12 * max(1.0, q):
            q = new
            break
        q = new
    return q, sigma_w2 * derivative_second_moment(key, q)


@dataclass
class Propagation:
    r"""Per-layer second moments, layer 1 (input side) first; arrays of length ``depth``.

    ``preact``: :math:`\mathbb E[a_\ell^2]` (the Linear layer's output); ``act``:
    :math:`\mathbb E[h_\ell^2]` (the block's output); ``grad_preact``:
    :math:`\mathbb E[(\partial L/\partial a_\ell)^2]`; ``grad_act``:
    :math:`\mathbb E[(\partial L/\partial h_\ell)^2]`; ``grad_weight``:
    :math:`\mathbb E[(\partial L/\partial W_\ell)^2]` (measured only; ``nan`` in predictions).
    All are means over samples and units. For zero-mean quantities (pre-activations, gradients)
    a second moment is a variance. With ``keep_values``, :func:`measure_propagation` also keeps a
    sample of each layer's outputs :math:`h_\ell` (``act_values``) and of
    :math:`\partial L/\partial a_\ell` (``grad_values``) for histograms.
    """

    preact: np.ndarray
    act: np.ndarray
    grad_preact: np.ndarray
    grad_act: np.ndarray
    grad_weight: np.ndarray = field(default_factory=lambda: np.zeros(0))
    act_values: list[torch.Tensor] = field(default_factory=list)
    grad_values: list[torch.Tensor] = field(default_factory=list)

    @property
    def depth(self) -> int:
        return len(self.preact)


def predict_propagation(
    depth: int,
    scheme: str,
    activation: str = "relu",
    *,
    width: int,
    in_features: int | None = None,
    out_features: int = 10,
    input_second_moment: float = 1.0,
    output_grad_var: float = 1.0,
    multiplier: float = 1.0,
    **init_kw,
) -> Propagation:
    r"""Mean-field prediction of every layer's forward and backward second moments.

    The network is a :func:`vgcourse.mlp` with ``depth`` hidden layers of ``width`` units, every
    Linear layer (the output layer too) initialised with ``scheme`` and then multiplied by
    ``multiplier`` (its variance by ``multiplier**2``), biases zero. Forward:
    :math:`q_1 = n_0 v_1 \mathbb E[x^2]`, :math:`m_\ell = \mathbb E_{\mathcal N(0,q_\ell)}[\phi^2]`,
    :math:`q_{\ell+1} = n_\ell v_{\ell+1} m_\ell`. Backward, starting from output gradients of
    variance ``output_grad_var`` (what :func:`measure_propagation` uses when ``y`` is ``None``):
    :math:`g^h_L = n_{out} v_{out}\,\mathrm{Var}(\partial L/\partial \hat y)`,
    :math:`g^a_\ell = \mathbb E[\phi'(a_\ell)^2]\, g^h_\ell`,
    :math:`g^h_{\ell-1} = n_\ell v_\ell\, g^a_\ell` (module docstring).
    """
    depth = check_int("depth", depth, minimum=1)
    width = check_int("width", width, minimum=1)
    in_features = check_int(
        "in_features", in_features if in_features is not None else width, minimum=1
    )
    out_features = check_int("out_features", out_features, minimum=1)
    m0 = check_positive("input_second_moment", input_second_moment, allow_zero=True)
    g_out = check_positive("output_grad_var", output_grad_var, allow_zero=True)
    mult2 = check_positive("multiplier", multiplier, allow_zero=True) ** 2
    key = _act.canonical_name(activation)
    v_first = mult2 * weight_variance(scheme, in_features, width, **init_kw)
    v_hidden = mult2 * weight_variance(scheme, width, width, **init_kw)
    v_out = mult2 * weight_variance(scheme, width, out_features, **init_kw)
    preact, act, dphi = np.zeros(depth), np.zeros(depth), np.zeros(depth)
    m = m0
    for i in range(depth):
        fan_in = in_features if i == 0 else width
        v = v_first if i == 0 else v_hidden
        preact[i] = fan_in * v * m
        m = act[i] = second_moment(key, preact[i])
        dphi[i] = derivative_second_moment(key, preact[i])
    grad_act, grad_preact = np.zeros(depth), np.zeros(depth)
    g = out_features * v_out * g_out
    for i in reversed(range(depth)):
        grad_act[i] = g
        grad_preact[i] = dphi[i] * g
        g = width * (v_first if i == 0 else v_hidden) * grad_preact[i]
    return Propagation(preact, act, grad_preact, grad_act, np.full(depth, np.nan))


def predicted_second_moments(
    depth: int,
    scheme: str,
    activation: str = "relu",
    *,
    width: int,
    input_second_moment: float = 1.0,
    **init_kw,
) -> np.ndarray:
    r"""Predicted :math:`\mathbb E[h_\ell^2]` after each of ``depth`` square ``width x width`` layers.

    A shortcut for ``predict_propagation(...).act`` with ``in_features = width``. For ReLU with
    :math:`v = 1/n` every layer halves the second moment (:math:`2^{-\ell}`), with :math:`v = 2/n`
    it stays constant (He et al. 2015, sec. 2.2).
    """
    return predict_propagation(
        depth,
        scheme,
        activation,
        width=width,
        in_features=width,
        input_second_moment=input_second_moment,
        **init_kw,
    ).act
