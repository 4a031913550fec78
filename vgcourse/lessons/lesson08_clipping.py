r"""Exploding gradients and gradient clipping (lesson 08): the one-unit RNN "cliff" and its tools.

**The one-unit RNN** of Pascanu, Mikolov & Bengio 2013 (sec. 2.3, "the geometrical
interpretation") has one sigmoid unit, no input, and two parameters, a weight :math:`w` and a
bias :math:`b`:

.. math::
    x_t = w\,\sigma(x_{t-1}) + b, \qquad t = 1, \dots, T, \qquad
    L(w, b) = (x_T - x^\star)^2 ,

started from a given :math:`x_0` and trained so that :math:`x_T` hits the target :math:`x^\star`
(the paper uses :math:`T = 50`; the values of :math:`x_0` and :math:`x^\star` here are our choice).
By the chain rule the gradient is a sum of products of the factors
:math:`\partial x_j / \partial x_{j-1} = w\,\sigma'(x_{j-1})`:

.. math::
    \frac{\partial x_T}{\partial b} = \sum_{k=1}^{T} \prod_{j=k+1}^{T} w\,\sigma'(x_{j-1}), \qquad
    \frac{\partial x_T}{\partial w} = \sum_{k=1}^{T} \sigma(x_{k-1}) \prod_{j=k+1}^{T} w\,\sigma'(x_{j-1}).

Since :math:`\sigma' \le 1/4`, every factor is at most :math:`|w|/4` in size: for :math:`|w| < 4`
both sums are bounded by :math:`1/(1 - |w|/4)` and nothing can explode (the sigmoid case of the
paper's sec. 2.1 condition: largest singular value of the recurrent matrix, here :math:`|w|`,
below :math:`1/\gamma` with :math:`\gamma = 1/4` the bound on :math:`\sigma'`).
For larger :math:`w` the map :math:`x \mapsto w\sigma(x) + b` can have two stable fixed points with
an unstable one between them; where the unstable fixed point passes through :math:`x_0` (the line
:func:`cliff_bias`), :math:`x_T` jumps from one basin to the other, the loss has a wall, and the
factors there are :math:`w\sigma'(x_0) > 1`, so the gradient grows like :math:`(w\sigma'(x_0))^T`.

**Gradient clipping by norm** (the paper's sec. 3.2, Algorithm 1): if
:math:`\|g\| \ge c` then :math:`g \leftarrow c\, g / \|g\|`. It bounds every step of gradient
descent by :math:`\eta c` and keeps the gradient's direction. :func:`gd_trajectories` runs plain
and clipped gradient descent on the one-unit loss surface, vectorised over many starting points.

The other helpers measure what the lesson shows: :func:`rnn_lag_gradients` (gradient vs time lag
of an RNN with spectral radius :math:`\rho`), :func:`growth_rate` (the geometric growth factor of a
sequence), :func:`flat_grad` / :func:`cosine` (did clipping change the gradient's direction?),
and two plots, :func:`plot_loss_surface` and :func:`plot_norm_trace`. :class:`ClippingExperiment`
is the lesson's exploding network trained with and without clipping (runs cached), and
:func:`clipping_explorer` its interactive explorer (learning rate against threshold).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Optional, Union

import numpy as np
import torch
from torch import nn

from .._validate import check_int, check_module, check_positive, check_real, check_tensor

ArrayLike = Union[float, np.ndarray, torch.Tensor]


def _array(name: str, value: Any) -> np.ndarray:
    """A float64 NumPy array from a number, array or tensor, with finite entries."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().double().numpy()
    elif isinstance(value, bool) or not isinstance(value, (numbers.Real, np.ndarray, list, tuple)):
        raise TypeError(
            f"{name} must be a number, a list, a NumPy array or a tensor, got {type(value).__name__}"
        )
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must hold real numbers, got {value!r}") from None
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite values (NaN or Inf)")
    return arr


def _pair(w: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    w, b = _array("w", w), _array("b", b)
    try:
        w, b = np.broadcast_arrays(w, b)
    except ValueError:
        raise ValueError(
            f"w and b must have broadcastable shapes, got {w.shape} and {b.shape}"
        ) from None
    return w, b


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # = 1 / (1 + exp(-x)), without overflow warnings


def one_unit_rnn(w: ArrayLike, b: ArrayLike, *, x0: float = 0.5, T: int = 50) -> np.ndarray:
    r"""The final state :math:`x_T` of :math:`x_t = w\,\sigma(x_{t-1}) + b` (module docstring).

    ``w`` and ``b`` may be arrays of any broadcastable shapes (e.g. a grid from ``np.meshgrid``);
    the result has their broadcast shape.
    """
    w, b = _pair(w, b)
    x0 = check_real("x0", x0)
    T = check_int("T", T, minimum=1)
    x = np.full(w.shape, x0)
    for _ in range(T):
        x = w * _sigmoid(x) + b
    return x


def one_unit_grad(
    w: ArrayLike,
    b: ArrayLike,
    *,
    x0: float = 0.5,
    target: float = 0.7,
    T: int = 50,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Loss :math:`L = (x_T - x^\star)^2` and its exact gradient, ``(L, dL/dw, dL/db)``.

    The derivatives are carried forward with the state (forward-mode differentiation):
    :math:`u_t = \partial x_t/\partial w = \sigma(x_{t-1}) + w\sigma'(x_{t-1})\,u_{t-1}` and
    :math:`v_t = \partial x_t/\partial b = 1 + w\sigma'(x_{t-1})\,v_{t-1}`, with
    :math:`u_0 = v_0 = 0`; unrolled, these are the sums of products in the module docstring. Then
    :math:`\partial L/\partial\theta = 2(x_T - x^\star)\,\partial x_T/\partial\theta`. Vectorised over
    broadcastable ``w`` and ``b``. Float64; for huge :math:`|w|` the products can overflow to
    ``inf``, which is returned as such.
    """
    w, b = _pair(w, b)
    x0 = check_real("x0", x0)
    target = check_real("target", target)
    T = check_int("T", T, minimum=1)
    x = np.full(w.shape, x0)
    u = np.zeros(w.shape)
    v = np.zeros(w.shape)
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(T):
            s = _sigmoid(x)
            factor = w * s * (1.0 - s)
            u = s + factor * u
            v = 1.0 + factor * v
            x = w * s + b
        err = x - target
        return err**2, 2.0 * err * u, 2.0 * err * v


def one_unit_loss(
    w: ArrayLike, b: ArrayLike, *, x0: float = 0.5, target: float = 0.7, T: int = 50
) -> np.ndarray:
    r"""The loss :math:`(x_T - x^\star)^2` of the one-unit RNN, vectorised over ``w`` and ``b``."""
    target = check_real("target", target)
    return (one_unit_rnn(w, b, x0=x0, T=T) - target) ** 2


def critical_weight(x0: float = 0.5) -> float:
    r"""The weight :math:`w_c = 1/\sigma'(x_0)` above which a fixed point at :math:`x_0` is unstable.

    At :math:`w > w_c` the factor :math:`w\sigma'(x_0)` exceeds 1, so the gradient on the cliff line
    grows like :math:`(w\sigma'(x_0))^T`. For :math:`x_0 = 0.5`, :math:`w_c \approx 4.255`.
    """
    x0 = check_real("x0", x0)
    s = 1.0 / (1.0 + math.exp(-x0))
    return 1.0 / (s * (1.0 - s))


def cliff_bias(w: ArrayLike, *, x0: float = 0.5) -> np.ndarray:
    r"""The bias :math:`b^*(w) = x_0 - w\,\sigma(x_0)` that makes :math:`x_0` a fixed point.

    On this line :math:`x_t = x_0` for every :math:`t`. For :math:`w > w_c` (:func:`critical_weight`)
    that fixed point is unstable, the basins of the two stable fixed points meet there, and the loss
    surface has its cliff: a bias slightly above :math:`b^*` sends :math:`x_T` to the upper fixed
    point, slightly below to the lower one.
    """
    w = _array("w", w)
    x0 = check_real("x0", x0)
    return x0 - w / (1.0 + math.exp(-x0))


@dataclass
class Trajectories:
    """Gradient-descent paths on the one-unit loss surface, from :func:`gd_trajectories`.

    ``w[k, i]``, ``b[k, i]`` are the parameters of path ``i`` after ``k`` steps (``k = 0`` is the
    start), ``loss[k, i]`` the loss there; ``grad_norm[k, i]`` is the gradient norm before step
    ``k + 1`` (before clipping) and ``clipped[k, i]`` whether that step was clipped.
    ``stopped[i]`` is the step at which path ``i`` met a non-finite gradient and stopped, else -1.
    """

    w: np.ndarray
    b: np.ndarray
    loss: np.ndarray
    grad_norm: np.ndarray
    clipped: np.ndarray
    stopped: np.ndarray
    lr: float
    clip_norm: Optional[float]

    @property
    def step_lengths(self) -> np.ndarray:
        r"""Length of every step, :math:`\|\theta_{k+1} - \theta_k\|`, shape (steps, paths)."""
        return np.hypot(np.diff(self.w, axis=0), np.diff(self.b, axis=0))


def gd_trajectories(
    w0: ArrayLike,
    b0: ArrayLike,
    *,
    lr: float,
    steps: int,
    clip_norm: float | None = None,
    x0: float = 0.5,
    target: float = 0.7,
    T: int = 50,
) -> Trajectories:
    r"""Gradient descent :math:`\theta \leftarrow \theta - \eta\,\hat g` on the one-unit loss, many paths at once.

    ``w0`` and ``b0`` are the starting points (numbers or 1-D arrays of equal length). With
    ``clip_norm`` :math:`= c`, each gradient is clipped by Pascanu et al.'s Algorithm 1:
    :math:`\hat g = g \min(1, c/\|g\|)`, so every step is at most :math:`\eta c` long. A path whose
    gradient becomes non-finite stops there (its later entries repeat its last point).
    """
    w, b = _pair(w0, b0)
    if w.ndim > 1:
        raise ValueError(f"w0 and b0 must be numbers or 1-D arrays, got shape {w.shape}")
    w, b = np.atleast_1d(w).astype(np.float64), np.atleast_1d(b).astype(np.float64)
    lr = check_positive("lr", lr)
    steps = check_int("steps", steps, minimum=1)
    if clip_norm is not None:
        clip_norm = check_positive("clip_norm", clip_norm)
    n = w.shape[0]
    W = np.empty((steps + 1, n))
    B = np.empty((steps + 1, n))
    L = np.empty((steps + 1, n))
    norms = np.full((steps, n), np.nan)
    clipped = np.zeros((steps, n), dtype=bool)
    stopped = np.full(n, -1)
    W[0], B[0] = w, b
    for k in range(steps + 1):
        loss, gw, gb = one_unit_grad(w, b, x0=x0, target=target, T=T)
        L[k] = loss
        if k == steps:
            break
        with np.errstate(over="ignore", invalid="ignore"):
            norm = np.hypot(gw, gb)
        ok = np.isfinite(norm) & (stopped < 0)
        stopped[~np.isfinite(norm) & (stopped < 0)] = k
        norms[k] = norm
        scale = np.ones(n)
        if clip_norm is not None:
            big = ok & (norm > clip_norm)
            scale[big] = clip_norm / norm[big]
            clipped[k] = big
        w = np.where(ok, w - lr * scale * np.where(ok, gw, 0.0), w)
        b = np.where(ok, b - lr * scale * np.where(ok, gb, 0.0), b)
        W[k + 1], B[k + 1] = w, b
    return Trajectories(W, B, L, norms, clipped, stopped, lr, clip_norm)


def flat_grad(params: nn.Module | list[torch.Tensor]) -> torch.Tensor:
    r"""All parameter gradients as one flat vector :math:`g` (a copy), in parameter order.

    ``params`` is a module or a list of tensors; a parameter without a gradient contributes zeros,
    so vectors from the same model always line up.
    """
    if isinstance(params, nn.Module):
        params = list(check_module("params", params).parameters())
    elif isinstance(params, (list, tuple)):
        params = list(params)
        if not params or not all(isinstance(p, torch.Tensor) for p in params):
            raise TypeError("params must be an nn.Module or a non-empty list of tensors")
    else:
        raise TypeError(
            f"params must be an nn.Module or a list of tensors, got {type(params).__name__}"
        )
    return torch.cat(
        [
            (p.grad if p.grad is not None else torch.zeros_like(p)).detach().reshape(-1).clone()
            for p in params
        ]
    )


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    r"""Cosine similarity :math:`\langle a, b\rangle / (\|a\|\,\|b\|)` of two vectors, in float64.

    1 means the same direction. Both must be non-zero vectors of the same length.
    """
    a = check_tensor("a", a).detach().double().reshape(-1)
    b = check_tensor("b", b).detach().double().reshape(-1)
    if a.shape != b.shape:
        raise ValueError(
            f"a and b must have the same number of entries, got {a.numel()} and {b.numel()}"
        )
    na, nb = float(a.norm()), float(b.norm())
    if na == 0 or nb == 0:
        raise ValueError("the cosine of a zero vector is undefined; got a vector of norm 0")
    return float(a @ b) / (na * nb)


def growth_rate(values: Any) -> float:
    r"""Geometric growth factor :math:`r` per index of a positive sequence: :math:`v_k \approx C r^k`.

    The least-squares slope of :math:`\log v_k` against :math:`k`, exponentiated. ``r > 1`` means
    the values grow (explode) along the sequence, ``r < 1`` that they shrink (vanish).
    """
    v = _array("values", values).reshape(-1)
    if v.size < 2:
        raise ValueError(f"values must hold at least 2 numbers, got {v.size}")
    if np.any(v <= 0):
        raise ValueError("values must all be > 0 (a growth rate is fitted to their logarithms)")
    slope = np.polyfit(np.arange(v.size), np.log(v), 1)[0]
    return float(np.exp(slope))


def rnn_lag_gradients(
    rho: float,
    *,
    hidden: int = 32,
    T: int = 50,
    input_scale: float = 1e-3,
    n: int = 16,
    seed: int = 0,
    nonlinearity: str = "tanh",
) -> np.ndarray:
    r"""Gradient norm against time lag in an Elman RNN whose recurrent matrix has spectral radius ``rho``.

    The RNN (:func:`vgcourse.rnn_model`, 1 input, ``hidden`` units, linear head on the last step)
    gets :math:`W_{hh} = \rho\,Q` with :math:`Q` a random orthogonal matrix (every singular value is
    :math:`\rho`) and zero biases, and ``n`` input sequences of length ``T`` with entries
    :math:`\mathcal N(0, \text{input\_scale}^2)`. Back-propagation multiplies the gradient by
    :math:`W_{hh}^\top \mathrm{diag}(\phi'(a_t))` once per step back; with small inputs
    :math:`\phi' \approx 1` and the norm grows or shrinks by :math:`\rho` per step (Pascanu et al.
    2013, sec. 2.1). Returns ``g`` of length ``T`` with ``g[k]`` :math:`= \|\partial L/\partial x_{T-1-k}\|`
    (over the batch), :math:`L = \sum_i \hat y_i`: ``g[0]`` is the last input, ``g[T-1]`` the first.
    """
    from ..models import rnn_model
    from .lesson07_lstm_gru import grad_vs_lag

    rho = check_positive("rho", rho)
    hidden = check_int("hidden", hidden, minimum=1)
    T = check_int("T", T, minimum=2)
    input_scale = check_positive("input_scale", input_scale)
    n = check_int("n", n, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    gen = torch.Generator().manual_seed(seed)
    net = rnn_model("rnn", 1, hidden, 1, nonlinearity=nonlinearity)
    with torch.no_grad():
        for p in net.parameters():  # seeded, independent of the global generator
            p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(max(1, p.shape[-1])))
        q, r = torch.linalg.qr(torch.randn(hidden, hidden, generator=gen, dtype=torch.float64))
        q = q * torch.sign(torch.diagonal(r))  # a uniformly random orthogonal matrix
        net.rnn.weight_hh_l0.copy_(rho * q.float())
        net.rnn.bias_hh_l0.zero_()
        net.rnn.bias_ih_l0.zero_()
    X = input_scale * torch.randn(n, T, 1, generator=gen)
    return grad_vs_lag(net, X, reduce="norm")  # lesson 07's BPTT measurement, over the whole batch


# -- lesson 08's training experiment and its explorer ------------------------------------------
