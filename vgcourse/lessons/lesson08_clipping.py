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

import functools
import math
import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Optional, Union

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from torch import nn

from .._validate import check_int, check_module, check_positive, check_tensor, check_xy
from ..device import get_device
from ..models import mlp
from ..train import History, evaluate, fit

if TYPE_CHECKING:
    from ..widgets import Explorer

ArrayLike = Union[float, np.ndarray, torch.Tensor]


def _real(name: str, value: Any) -> float:
    """A finite real number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


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
    x0 = _real("x0", x0)
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
    x0 = _real("x0", x0)
    target = _real("target", target)
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
    target = _real("target", target)
    return (one_unit_rnn(w, b, x0=x0, T=T) - target) ** 2


def critical_weight(x0: float = 0.5) -> float:
    r"""The weight :math:`w_c = 1/\sigma'(x_0)` above which a fixed point at :math:`x_0` is unstable.

    At :math:`w > w_c` the factor :math:`w\sigma'(x_0)` exceeds 1, so the gradient on the cliff line
    grows like :math:`(w\sigma'(x_0))^T`. For :math:`x_0 = 0.5`, :math:`w_c \approx 4.255`.
    """
    x0 = _real("x0", x0)
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
    x0 = _real("x0", x0)
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
    X = (input_scale * torch.randn(n, T, 1, generator=gen)).requires_grad_()
    net(X).sum().backward()
    per_step = X.grad.norm(dim=(0, 2)).numpy().astype(np.float64)
    return per_step[::-1].copy()


def plot_loss_surface(
    w: np.ndarray,
    b: np.ndarray,
    values: np.ndarray,
    *,
    ax: Axes | None = None,
    label: str = r"loss $(x_T - x^\star)^2$",
    title: str | None = "One-unit RNN: loss surface",
    x0: float | None = 0.5,
    cmap: str = "viridis",
    vmin: float | None = None,
) -> Axes:
    """A (w, b) map of ``values`` (loss or gradient norm) with a logarithmic colour scale.

    ``w`` and ``b`` are the 1-D, increasing and evenly spaced grid axes, ``values`` has shape ``(len(b), len(w))`` (as from
    ``np.meshgrid(w, b)``). With ``x0``, the cliff line :func:`cliff_bias` is drawn dashed where
    :math:`w > w_c`. ``vmin`` is the bottom of the colour scale (default: the smallest positive
    value, at most 12 decades below the largest).
    """
    import matplotlib.pyplot as plt

    w = _array("w", w).reshape(-1)
    b = _array("b", b).reshape(-1)
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (b.size, w.size):
        raise ValueError(
            f"values must have shape (len(b), len(w)) = {(b.size, w.size)}, got {values.shape}"
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    positive = values[np.isfinite(values) & (values > 0)]
    if positive.size == 0:
        raise ValueError("values has no finite positive entry to show on a log colour scale")
    shown = np.where(np.isfinite(values) & (values > 0), values, np.nan)
    low = max(positive.min(), positive.max() * 1e-12)
    if vmin is not None:
        low = check_positive("vmin", vmin)
        if low >= positive.max():
            raise ValueError(
                f"vmin must be below the largest value {positive.max():.3g}, got {vmin!r}"
            )
    norm = LogNorm(vmin=low, vmax=positive.max())
    if w.size < 2 or b.size < 2 or np.any(np.diff(w) <= 0) or np.any(np.diff(b) <= 0):
        raise ValueError("w and b must be increasing grid axes with at least 2 points each")
    dw, db = (w[-1] - w[0]) / (w.size - 1), (b[-1] - b[0]) / (b.size - 1)
    image = ax.imshow(  # the grids here are evenly spaced: imshow draws them much faster
        shown,
        origin="lower",
        aspect="auto",
        extent=(w[0] - dw / 2, w[-1] + dw / 2, b[0] - db / 2, b[-1] + db / 2),
        norm=norm,
        cmap=cmap,
        interpolation="nearest",
    )
    ax.figure.colorbar(image, ax=ax, label=label)
    if x0 is not None:
        wc = critical_weight(x0)
        ws = np.linspace(max(wc, w.min()), w.max(), 100)
        if ws.size and ws[0] < ws[-1]:
            ax.plot(ws, cliff_bias(ws, x0=x0), "--", color="white", lw=1, label="cliff $b^*(w)$")
            ax.legend(loc="lower left", fontsize=7)
    ax.set_xlim(w[0], w[-1])
    ax.set_ylim(b[0], b[-1])
    ax.set_xlabel("recurrent weight $w$")
    ax.set_ylabel("bias $b$")
    if title:
        ax.set_title(title)
    return ax


def plot_norm_trace(
    history: History,
    *,
    clip_norm: float | None = None,
    ax: Axes | None = None,
    label: str | None = None,
    title: str | None = "Gradient norm per step (before clipping)",
    annotate: bool = True,
) -> Axes:
    """The total gradient norm per step (log scale), clipped steps as dots, divergence as an x.

    ``history`` comes from :func:`vgcourse.fit`; ``clip_norm`` draws the threshold as a line.
    ``annotate=False`` leaves out the "non-finite at step k" text (for several runs on one axis).
    """
    import matplotlib.pyplot as plt

    if not isinstance(history, History):
        raise TypeError(f"history must be a vgcourse History, got {type(history).__name__}")
    if clip_norm is not None:
        clip_norm = check_positive("clip_norm", clip_norm)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.6))
    norms = np.asarray(history.total_grad_norm, dtype=np.float64)
    finite = np.where(np.isfinite(norms) & (norms > 0), norms, np.nan)
    steps = np.arange(len(norms))
    (line,) = ax.plot(steps, finite, lw=1.0, label=label)
    clipped = np.asarray(history.clipped, dtype=bool)
    if clipped.size and clipped.any():
        ax.plot(steps[clipped], finite[clipped], ".", ms=4, color="crimson", label="clipped step")
    if clip_norm is not None:
        ax.axhline(clip_norm, color="k", ls=":", lw=1, label=f"threshold {clip_norm:.3g}")
    if history.diverged_at is not None:
        good = finite[np.isfinite(finite)]
        top = good.max() if good.size else 1.0
        ax.plot([history.diverged_at], [top], "x", color=line.get_color(), ms=10, mew=2)
    if history.diverged_at is not None and annotate:
        ax.annotate(
            f"non-finite at step {history.diverged_at}",
            (history.diverged_at, top),
            xytext=(4, -12),
            textcoords="offset points",
            fontsize=8,
            color=line.get_color(),
        )
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(r"$\|g\|$ (all parameters)")
    if title:
        ax.set_title(title)
    if label is not None or clip_norm is not None or clipped.any():
        ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    return ax


# -- lesson 08's training experiment and its explorer ------------------------------------------


class ClipRun(NamedTuple):
    """One run of :meth:`ClippingExperiment.run`: what :func:`vgcourse.fit` recorded, and the loss
    and accuracy on all of the experiment's data after the last step (NaN when the run diverged)."""

    history: History
    loss: float
    accuracy: float


class ClippingExperiment:
    r"""Lesson 08's exploding network, trained with plain SGD with or without clipping; runs cached.

    The network (:meth:`net`) is a ReLU MLP of ``depth`` hidden layers of ``width`` units whose
    weights are He initialization times a gain :math:`g`,
    :math:`W_\ell \sim \mathcal N(0,\, 2g^2/\text{fan\_in})`, biases zero. By the variance argument
    (He et al. 2015, sec. 2.2) each layer then multiplies the size of the back-propagated error
    signal by about :math:`g`, and every weight gradient starts about :math:`g^{L-1}` times larger
    than with :math:`g = 1`: at a large learning rate plain SGD diverges to NaN within a few steps.

    :meth:`run` trains a fresh seeded network with :func:`vgcourse.fit`: plain SGD at ``lr``,
    ``steps`` mini-batches of ``batch_size`` (the data order fixed by the seed), and, when
    ``clip_norm`` :math:`= c` is given, the gradient clipped by norm before every step (Pascanu,
    Mikolov & Bengio 2013, sec. 3.2, Algorithm 1: if :math:`\|g\| \ge c` then
    :math:`g \leftarrow c\,g/\|g\|`, over all parameters at once, so no step is longer than
    :math:`\eta c`). It then measures the loss and accuracy on all of ``(X, y)``. Each result is
    cached per ``(lr, clip_norm, seed)``: a cached run is exactly what training with those settings
    gives (seeded runs on the CPU are bit-for-bit repeatable), so lessons, tables and
    :func:`clipping_explorer` can share one experiment without training anything twice.
    """

    def __init__(
        self,
        X: torch.Tensor,
        y: torch.Tensor,
        *,
        depth: int = 10,
        width: int = 32,
        gain: float = 1.5,
        steps: int = 100,
        batch_size: int | None = 64,
        device: torch.device | str | None = None,
        cache_size: int = 1024,
    ):
        X, y = check_xy(X, y)
        if X.ndim != 2 or not X.is_floating_point():
            raise ValueError(
                f"X must be a 2-D float tensor (samples, features), got shape {tuple(X.shape)} "
                f"and dtype {X.dtype}"
            )
        if y.ndim != 1 or y.is_floating_point() or int(y.min()) < 0:
            raise ValueError(
                "y must be a 1-D tensor of class indices 0, 1, ... (cross-entropy targets), "
                f"got shape {tuple(y.shape)} and dtype {y.dtype}"
            )
        self.depth = check_int("depth", depth, minimum=1)
        self.width = check_int("width", width, minimum=1)
        self.gain = check_positive("gain", gain)
        self.steps = check_int("steps", steps, minimum=1)
        self.batch_size = (
            None if batch_size is None else check_int("batch_size", batch_size, minimum=1)
        )
        cache_size = check_int("cache_size", cache_size, minimum=1)
        self.device = get_device(device)
        self.X, self.y = X.to(self.device), y.to(self.device)
        self.n_classes = int(y.max()) + 1
        self._run = functools.lru_cache(maxsize=cache_size)(self._train)

    def __repr__(self) -> str:
        return (
            f"ClippingExperiment({len(self.X)} samples, depth={self.depth}, width={self.width}, "
            f"gain={self.gain:g}, steps={self.steps}, batch_size={self.batch_size}, "
            f"device={str(self.device)!r}, cached runs={self._run.cache_info().currsize})"
        )

    def net(self, seed: int = 0) -> nn.Module:
        """A fresh network for ``seed`` (seeded with ``torch.manual_seed``), on the experiment's device."""
        seed = check_int("seed", seed, minimum=0)
        torch.manual_seed(seed)
        return mlp(
            self.X.shape[1],
            self.n_classes,
            depth=self.depth,
            width=self.width,
            activation="relu",
            init="kaiming_normal",
            gain=self.gain * math.sqrt(2),  # He's gain sqrt(2), times g
            device=self.device,
        )

    def run(self, lr: float, clip_norm: float | None = None, seed: int = 0) -> ClipRun:
        """Train :meth:`net` ``(seed)`` at learning rate ``lr`` (clipping at ``clip_norm``, or not); cached."""
        lr = check_positive("lr", lr)
        if clip_norm is not None:
            clip_norm = check_positive("clip_norm", clip_norm)
        seed = check_int("seed", seed, minimum=0)
        return self._run(lr, clip_norm, seed)

    def _train(self, lr: float, clip_norm: float | None, seed: int) -> ClipRun:
        net = self.net(seed)
        history = fit(
            net,
            (self.X, self.y),
            steps=self.steps,
            lr=lr,
            optimizer="sgd",
            batch_size=self.batch_size,
            clip_norm=clip_norm,
            seed=seed,
            record=False,
            progress=False,
        )
        if history.diverged_at is not None:
            return ClipRun(history, float("nan"), float("nan"))
        loss, accuracy = evaluate(net, (self.X, self.y))
        return ClipRun(history, loss, accuracy)


#: The ranges of :func:`clipping_explorer`'s sliders (both logarithmic, 0.1 decade a step).
EXPLORER_LR_RANGE: tuple[float, float] = (1e-2, 1.0)
EXPLORER_MULTIPLIER_RANGE: tuple[float, float] = (0.1, 100.0)
EXPLORER_DECADE_STEP = 0.1


def _grid_exponents(bounds: tuple[float, float]) -> list[float]:
    lo, hi = (math.log10(v) for v in bounds)
    n = round((hi - lo) / EXPLORER_DECADE_STEP)
    return [round(lo + k * EXPLORER_DECADE_STEP, 6) for k in range(n + 1)]


def explorer_lrs() -> tuple[float, ...]:
    r"""Every learning rate the explorer's slider can show: :math:`10^{-2}, 10^{-1.9}, \dots, 10^0`.

    These exact floats are what :func:`clipping_explorer` trains with at each slider position, so
    runs made beforehand with them (e.g. a learning-rate sweep in the lesson) are reused.
    """
    return tuple(10.0**e for e in _grid_exponents(EXPLORER_LR_RANGE))


def _on_grid(value: float, bounds: tuple[float, float]) -> float:
    """``value`` as the canonical float of its slider position when it is one (up to rounding).

    A browser computes a log slider's value as ``10 ** x`` in JavaScript, which can differ from
    Python's float in the last bit; snapping makes equal settings hit the same cached run. Values
    between slider positions (set from code) are kept as they are.
    """
    lo = math.log10(bounds[0])
    k = round((math.log10(value) - lo) / EXPLORER_DECADE_STEP)
    canonical = 10.0 ** round(lo + k * EXPLORER_DECADE_STEP, 6)
    return canonical if math.isclose(canonical, value, rel_tol=1e-9) else value


def _in_range(name: str, value: Any, bounds: tuple[float, float]) -> float:
    value = check_positive(name, value)
    lo, hi = bounds
    if not lo * (1 - 1e-9) <= value <= hi * (1 + 1e-9):
        raise ValueError(
            f"{name} must be between {lo:g} and {hi:g} (the slider's range), got {value!r}"
        )
    return value


class _RunPlot:
    """The explorer's two panels, drawn once and then updated in place (``Explorer(clear=False)``).

    Left: the mini-batch loss (running mean of 5 steps unless the run diverged), a cross and a note
    where it diverged, chance as a dashed line. Right: the gradient norm per step before clipping,
    the clipped steps as red dots, the threshold as a dotted line, a cross where it diverged. The
    same picture as :func:`vgcourse.plots.plot_loss` and :func:`plot_norm_trace` draw, without
    rebuilding ticks and texts on every change.
    """

    def __init__(self, axes: list[Axes], chance: float):
        from matplotlib.ticker import MaxNLocator, NullLocator

        ax_loss, ax_norm = axes[0], axes[1]
        (self.loss,) = ax_loss.plot([], [], lw=1.2)
        color = self.loss.get_color()
        (self.loss_x,) = ax_loss.plot([], [], "x", color=color, ms=10, mew=2)
        ax_loss.axhline(chance, color="grey", ls="--", lw=0.8)
        self.loss_note = ax_loss.text(
            0.02, 0.95, "", transform=ax_loss.transAxes, fontsize=8, va="top", color=color
        )
        ax_loss.set(yscale="log", xlabel="step", ylabel="loss")
        (self.norm,) = ax_norm.plot([], [], lw=1.0)
        (self.dots,) = ax_norm.plot([], [], ".", ms=4, color="crimson", label="clipped step")
        self.threshold = ax_norm.axhline(1.0, color="k", ls=":", lw=1)
        (self.norm_x,) = ax_norm.plot([], [], "x", color=self.norm.get_color(), ms=10, mew=2)
        self.norm_note = ax_norm.annotate(  # left of the cross: the divergence is the last step
            "",
            (0.0, 1.0),
            xytext=(-8, -4),
            textcoords="offset points",
            ha="right",
            va="top",
            fontsize=8,
            color=self.norm.get_color(),
        )
        ax_norm.set(
            yscale="log",
            xlabel="step",
            ylabel=r"$\|g\|$ (all parameters)",
            title="Gradient norm per step (before clipping)",
        )
        for ax in (ax_loss, ax_norm):  # minor log ticks are slow to lay out; redraws are frequent
            ax.xaxis.set_major_locator(
                MaxNLocator(integer=True, steps=[1, 2, 5, 10])
            )  # whole steps
            ax.yaxis.set_minor_locator(NullLocator())
            ax.grid(True, which="major", alpha=0.3)
        self.axes = (ax_loss, ax_norm)

    def show(self, history: History, clip_norm: float | None, lr: float) -> None:
        ax_loss, ax_norm = self.axes
        d = history.diverged_at
        loss = np.asarray(history.loss, dtype=np.float64)
        finite = np.where(np.isfinite(loss), loss, np.nan)
        smooth = 1 if d is not None else 5
        if len(finite) >= smooth > 1:
            shown = np.convolve(np.nan_to_num(finite), np.ones(smooth) / smooth, mode="valid")
            self.loss.set_data(np.arange(smooth - 1, len(finite)), shown)
        else:
            self.loss.set_data(np.arange(len(finite)), finite)
        good = finite[np.isfinite(finite)]
        if d is None:
            self.loss_x.set_data([], [])
        else:
            self.loss_x.set_data([d], [good[-1] if good.size else 1.0])
        self.loss_note.set_text("" if d is None else f"diverged at step {d}")
        ax_loss.set_title(f"Mini-batch loss (lr = {lr:.3g})")

        norms = np.asarray(history.total_grad_norm, dtype=np.float64)
        norms = np.where(np.isfinite(norms) & (norms > 0), norms, np.nan)
        steps = np.arange(len(norms))
        clipped = np.asarray(history.clipped, dtype=bool)
        self.norm.set_data(steps, norms)
        self.dots.set_data(steps[clipped], norms[clipped])
        self.threshold.set_visible(clip_norm is not None)
        if clip_norm is not None:
            self.threshold.set_ydata([clip_norm, clip_norm])
            self.threshold.set_label(f"threshold {clip_norm:.3g}")
        top = np.nanmax(norms) if np.isfinite(norms).any() else 1.0
        self.norm_x.set_data(*(([], []) if d is None else ([d], [top])))
        self.norm_note.set_text("" if d is None else f"non-finite at step {d}")
        self.norm_note.xy = (0.0 if d is None else d, top)
        shown_in_legend = ((self.dots, clipped.any()), (self.threshold, clip_norm is not None))
        handles = [h for h, on in shown_in_legend if on]
        if ax_norm.get_legend() is not None:
            ax_norm.get_legend().remove()
        if handles:
            ax_norm.legend(handles=handles, fontsize=7)
        for ax in self.axes:
            ax.relim(visible_only=True)
            ax.autoscale_view()


def clipping_explorer(
    experiment: ClippingExperiment,
    *,
    reference_norm: float,
    lr: float = 0.1,
    multiplier: float = 1.0,
    clip: bool = True,
    seed: int = 0,
) -> Explorer:
    r"""Explorer: learning rate, clipping threshold and clipping on/off -> one training run.

    Each setting trains ``experiment``'s network from ``seed`` with :meth:`ClippingExperiment.run`
    (cached there, so a setting seen before, by the explorer or by the lesson, redraws without
    training). The threshold is :math:`c = m\,\bar g`, a multiple ``multiplier`` :math:`= m` of
    ``reference_norm`` :math:`= \bar g`, the average gradient norm of pilot runs (Pascanu et al.
    2013, sec. 3.2's heuristic).

    Left: the mini-batch loss per step (log scale; a cross where the run diverged to NaN, the
    dotted line is chance, :math:`\ln C` for :math:`C` classes). Right: the total gradient norm
    :math:`\|g\|` per step before clipping (log scale), the threshold :math:`c` as a dotted line and
    the clipped steps (:math:`\|g\| > c`) as red dots; every clipped step is
    :math:`\eta c` long. The readout gives the threshold, the fraction of clipped steps and the
    outcome (step of divergence, or loss and accuracy on all the data). ``explorer.state`` holds
    the last run: ``lr``, ``clip_norm``, ``history``, ``loss``, ``accuracy``, ``clipped_fraction``.
    """
    from ..widgets import Explorer, checkbox, slider

    if not isinstance(experiment, ClippingExperiment):
        raise TypeError(f"experiment must be a ClippingExperiment, got {type(experiment).__name__}")
    reference_norm = check_positive("reference_norm", reference_norm)
    lr = _in_range("lr", lr, EXPLORER_LR_RANGE)
    multiplier = _in_range("multiplier", multiplier, EXPLORER_MULTIPLIER_RANGE)
    if not isinstance(clip, bool):
        raise TypeError(f"clip must be True or False, got {clip!r}")
    seed = check_int("seed", seed, minimum=0)
    chance = math.log(experiment.n_classes)
    state: dict[str, Any] = {}
    panels: list[_RunPlot] = []

    def update(axes, lr: float, multiplier: float, clip: bool) -> str:
        lr = _on_grid(lr, EXPLORER_LR_RANGE)
        multiplier = _on_grid(multiplier, EXPLORER_MULTIPLIER_RANGE)
        c = multiplier * reference_norm if clip else None
        run = experiment.run(lr, c, seed)
        h = run.history
        state.update(
            lr=lr,
            clip_norm=c,
            history=h,
            loss=run.loss,
            accuracy=run.accuracy,
            clipped_fraction=float(h.clipped.mean()),
        )
        if not axes[0].lines:  # a fresh figure, or the explorer wiped it after an error
            panels[:] = [_RunPlot(axes, chance)]
        panels[0].show(h, c, lr)
        threshold = f"{c:.3g} = {multiplier:.3g} x avg" if clip else "off"
        result = (
            f"diverged at step {h.diverged_at}"
            if h.diverged_at is not None
            else f"loss on all data {run.loss:.3f}, accuracy {run.accuracy:.0%}"
        )
        return (
            f"lr {lr:.3g} | threshold {threshold} | clipped {state['clipped_fraction']:.0%} "
            f"of steps | {result}"
        )

    lo_lr, hi_lr = (math.log10(v) for v in EXPLORER_LR_RANGE)
    lo_m, hi_m = (math.log10(v) for v in EXPLORER_MULTIPLIER_RANGE)
    step = EXPLORER_DECADE_STEP
    explorer = Explorer(
        update,
        {
            "lr": slider(lr, lo_lr, hi_lr, step, "learning rate", log=True),
            "multiplier": slider(multiplier, lo_m, hi_m, step, "threshold / avg norm", log=True),
            "clip": checkbox(clip, "clip by norm"),
        },
        title="Gradient clipping: learning rate vs threshold",
        caption="switch clipping off at lr 0.1; then raise the threshold past 10x; then try lr 0.3 "
        "with a small and a large threshold.",
        clear=False,
    )
    explorer.state = state
    return explorer
