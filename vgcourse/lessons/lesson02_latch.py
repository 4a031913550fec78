r"""Contracting maps: the one-neuron latch and tanh RNNs (Bengio, Simard & Frasconi 1994, Sec. III-IV).

Lesson 02 ("chain-rule shrinkage"). The one-neuron latch :math:`a_t = w \tanh(a_{t-1}) + h_t`
has, for :math:`w > 1`, two attractors :math:`\pm a^*` with :math:`a^* = w \tanh a^*`. Near an
attractor the map contracts with rate

.. math:: \rho = \left|\frac{\partial a_t}{\partial a_{t-1}}\right|_{a^*} = w\,(1 - \tanh^2 a^*) < 1,

so :math:`|\partial a_T / \partial a_0| \approx C \rho^T` vanishes exponentially: storing a bit
robustly (an attractor that noise cannot leave) and receiving a gradient from far in the future
are at odds (:func:`latch_fixed_point`, :func:`latch_rate`, :func:`latch_derivatives`,
:func:`latch_survival`). For a recurrent net :math:`h_t = \tanh(W h_{t-1} + b)` the rate is the
spectral radius of the Jacobian :math:`\mathrm{diag}(1 - h^{*2}) W` at the fixed point
(:func:`rnn_fixed_point_rate`, :func:`rnn_jacobian_norms`);
:func:`.lesson02_shrinkage.decay_rate` measures it.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .._validate import check_int, check_positive, check_tensor

__all__ = [
    "latch_derivatives",
    "latch_fixed_point",
    "latch_rate",
    "latch_survival",
    "rnn_fixed_point_rate",
    "rnn_jacobian_norms",
]


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


def _check_rnn(W, h0, b) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(W, h0, b)`` of :math:`h_t = \tanh(W h_{t-1} + b)` as float64, checked (``b`` defaults to 0)."""
    W = check_tensor("W", W, ndim=2).double()
    if W.shape[0] != W.shape[1]:
        raise ValueError(f"W must be square (hidden x hidden), got shape {tuple(W.shape)}")
    n = W.shape[0]
    if b is None:
        b = torch.zeros(n, dtype=torch.float64)
    else:
        b = check_tensor("b", b, ndim=1).double()
        if b.numel() != n:
            raise ValueError(f"b must have {n} entries to match W, got {b.numel()}")
    h = check_tensor("h0", h0, ndim=1).double()
    if h.numel() != n:
        raise ValueError(f"h0 must have {n} entries to match W, got {h.numel()}")
    return W, h, b


def rnn_jacobian_norms(W, h0, T: int, b=None) -> tuple[np.ndarray, torch.Tensor]:
    r"""Largest singular value of :math:`\partial h_t / \partial h_0` for :math:`h_t = \tanh(W h_{t-1} + b)`.

    Returns ``(norms, h_T)`` with ``norms[t]`` :math:`= \sigma_{max}(J_t \cdots J_1)`,
    :math:`J_t = \mathrm{diag}(1 - h_t^2) W`, for :math:`t = 0..T` (float64; ``norms[0] = 1``).
    Since :math:`|\tanh'| \le 1`, ``norms[t]`` :math:`\le \|W\|_2^t`.
    """
    W, h, b = _check_rnn(W, h0, b)
    T = check_int("T", T, minimum=1)
    P = torch.eye(W.shape[0], dtype=torch.float64)
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
    W, h, b = _check_rnn(W, h0, b)
    for _ in range(check_int("iters", iters, minimum=1)):
        h = torch.tanh(W @ h + b)
    J = (1 - h**2)[:, None] * W
    return float(torch.linalg.eigvals(J).abs().max()), h
