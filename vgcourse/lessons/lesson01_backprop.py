r"""Back-propagation by hand on lesson 01's 2-2-1 sigmoid network, and its interactive explorer.

The network has 2 inputs, 2 sigmoid hidden units, 1 sigmoid output and the squared-error loss
(:math:`w_{ij}` connects input :math:`j` to hidden unit :math:`i`):

.. math::
    z = W_1 x + b_1,\quad h = \sigma(z),\quad z_{out} = v^\top h + c,\quad
    \hat y = \sigma(z_{out}),\quad L = \tfrac12(\hat y - y)^2 .

The backward pass is the chain rule, one local derivative per edge, with
:math:`\sigma'(z) = \sigma(z)(1 - \sigma(z)) \le 1/4`:

.. math::
    \delta_{out} = \frac{\partial L}{\partial z_{out}} = (\hat y - y)\,\hat y(1-\hat y),\qquad
    \frac{\partial L}{\partial v} = \delta_{out}\, h,\qquad \frac{\partial L}{\partial c} = \delta_{out},

.. math::
    \delta = \frac{\partial L}{\partial z} = \delta_{out}\, v \odot h \odot (1-h),\qquad
    \frac{\partial L}{\partial W_1} = \delta\, x^\top,\qquad \frac{\partial L}{\partial b_1} = \delta,

so :math:`\partial L/\partial w_{ij}` is the product of five factors
:math:`(\hat y - y)\cdot\hat y(1-\hat y)\cdot v_i\cdot h_i(1-h_i)\cdot x_j`
(Rumelhart, Hinton & Williams 1986; Nielsen 2015, ch. 2, the four equations of
back-propagation). Plain gradient descent repeats :math:`\theta \leftarrow \theta - \eta\,
\partial L/\partial\theta`.

Lesson 01 derives all of this from scratch in the notebook; this module is the clean reference
of the same computation, written without autograd and *batched*: every tensor may carry leading
batch dimensions, so one call trains many copies of the network at once (the explorer uses that
to precompute a whole slider's range in one pass).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from .._validate import check_int, check_positive, check_tensor

__all__ = [
    "LESSON_PARAMS",
    "Pass",
    "TinyParams",
    "chain_factors",
    "chain_rule_explorer",
    "forward_backward",
    "gradient_descent",
    "params_of",
    "plot_factors",
    "tiny_params",
]

#: The lesson's network: ``W1`` (rows: hidden units, columns: inputs), ``b1``, ``v`` (output
#: weights) and ``c`` (output bias), chosen so that every value can be followed by hand.
LESSON_PARAMS: dict[str, Any] = {
    "W1": ((0.4, -0.6), (0.3, 0.9)),
    "b1": (0.1, -0.2),
    "v": (0.7, -1.1),
    "c": 0.2,
}


class TinyParams(NamedTuple):
    """Parameters of a one-hidden-layer sigmoid net with one output, any leading batch shape ``...``.

    ``W1`` is (..., hidden, inputs), ``b1`` and ``v`` are (..., hidden), ``c`` is (...).
    Gradients (:attr:`Pass.grads`) have the same structure.
    """

    W1: torch.Tensor
    b1: torch.Tensor
    v: torch.Tensor
    c: torch.Tensor


class Pass(NamedTuple):
    """Everything one forward and backward pass computes (see the module docstring)."""

    z: torch.Tensor  #: (..., hidden) hidden pre-activations
    h: torch.Tensor  #: (..., hidden) hidden activations sigma(z)
    z_out: torch.Tensor  #: (...) output pre-activation
    y_hat: torch.Tensor  #: (...) prediction sigma(z_out)
    loss: torch.Tensor  #: (...) 0.5 * (y_hat - y)**2
    grads: TinyParams  #: dL/dW1, dL/db1, dL/dv, dL/dc


# -- argument checks -------------------------------------------------------------------------------
def _real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


def _check_params(params: Any) -> TinyParams:
    if not isinstance(params, TinyParams):
        raise TypeError(
            "params must be a vgcourse.backprop.TinyParams (make one with tiny_params() or "
            f"params_of(net)), got {type(params).__name__}"
        )
    W1, b1, v, c = (check_tensor(f"params.{n}", t) for n, t in zip(TinyParams._fields, params))
    if W1.ndim < 2 or not W1.is_floating_point():
        raise ValueError(
            f"params.W1 must be a floating-point (..., hidden, inputs) tensor, got shape "
            f"{tuple(W1.shape)} and dtype {W1.dtype}"
        )
    hidden = W1.shape[-2]
    for name, t in (("b1", b1), ("v", v)):
        if t.ndim < 1 or t.shape[-1] != hidden:
            raise ValueError(
                f"params.{name} must end in the {hidden} hidden units of W1, got shape {tuple(t.shape)}"
            )
    return TinyParams(W1, b1, v, c)


def _check_x(x: Any, params: TinyParams) -> torch.Tensor:
    if isinstance(x, (list, tuple)):
        x = torch.tensor([_real(f"x[{i}]", v) for i, v in enumerate(x)], dtype=torch.float64)
    x = check_tensor("x", x)
    n_in = params.W1.shape[-1]
    if x.ndim < 1 or x.shape[-1] != n_in:
        raise ValueError(f"x must end in the network's {n_in} inputs, got shape {tuple(x.shape)}")
    return x.to(device=params.W1.device, dtype=params.W1.dtype)


def _check_y(y: Any, params: TinyParams) -> torch.Tensor:
    if isinstance(y, torch.Tensor):
        return check_tensor("y", y).to(device=params.W1.device, dtype=params.W1.dtype)
    return torch.tensor(_real("y", y), device=params.W1.device, dtype=params.W1.dtype)


# -- the network -----------------------------------------------------------------------------------
def tiny_params(
    w11: float = 0.4,
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> TinyParams:
    """The lesson's 2-2-1 network (:data:`LESSON_PARAMS`) with :math:`w_{11}` set to ``w11``.

    float64 by default, so that hand calculations match autograd to the last digits; ``device``
    defaults to the CPU.
    """
    w11 = _real("w11", w11)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    kw = dict(dtype=dtype, device=device)
    W1 = torch.tensor(LESSON_PARAMS["W1"], **kw)
    W1[0, 0] = w11
    return TinyParams(
        W1,
        torch.tensor(LESSON_PARAMS["b1"], **kw),
        torch.tensor(LESSON_PARAMS["v"], **kw),
        torch.tensor(LESSON_PARAMS["c"], **kw),
    )


def params_of(net: nn.Module) -> TinyParams:
    """Detached copies of the parameters of ``Sequential(Linear, Sigmoid, Linear(hidden, 1), Sigmoid)``."""
    ok = (
        isinstance(net, nn.Sequential)
        and len(net) == 4
        and isinstance(net[0], nn.Linear)
        and isinstance(net[1], nn.Sigmoid)
        and isinstance(net[2], nn.Linear)
        and isinstance(net[3], nn.Sigmoid)
        and net[2].out_features == 1
        and net[2].in_features == net[0].out_features
    )
    if not ok:
        raise TypeError(
            "net must be nn.Sequential(nn.Linear(n_in, n_hidden), nn.Sigmoid(), "
            f"nn.Linear(n_hidden, 1), nn.Sigmoid()), got {net!r}"
        )
    return TinyParams(
        net[0].weight.detach().clone(),
        net[0].bias.detach().clone(),
        net[2].weight.detach()[0].clone(),
        net[2].bias.detach()[0].clone(),
    )


def forward_backward(params: TinyParams, x: Any, y: Any) -> Pass:
    r"""One forward and one backward pass by hand (no autograd): every value and every gradient.

    Implements the equations of the module docstring, broadcasting over leading batch dimensions
    of ``params``, ``x`` (..., inputs) and ``y`` (a number or a (...) tensor).
    """
    params = _check_params(params)
    return _forward_backward(params, _check_x(x, params), _check_y(y, params))


def _forward_backward(params: TinyParams, x: torch.Tensor, y: torch.Tensor) -> Pass:
    """:func:`forward_backward` on checked tensors (no argument checks: the training loop's body)."""
    W1, b1, v, c = params
    z = (W1 @ x[..., None])[..., 0] + b1
    h = torch.sigmoid(z)
    z_out = (v * h).sum(-1) + c
    y_hat = torch.sigmoid(z_out)
    loss = 0.5 * (y_hat - y) ** 2
    delta_out = (y_hat - y) * y_hat * (1 - y_hat)  # dL/dz_out
    delta = delta_out[..., None] * v * h * (1 - h)  # dL/dz, one entry per hidden unit
    grads = TinyParams(
        delta[..., :, None] * x[..., None, :], delta, delta_out[..., None] * h, delta_out
    )
    return Pass(z, h, z_out, y_hat, loss, grads)


def chain_factors(
    params: TinyParams, x: Any, y: Any, *, unit: int = 0, input: int = 0
) -> dict[str, torch.Tensor]:
    r"""The five chain-rule factors of :math:`\partial L/\partial w_{ij}`, in order from the loss down.

    ``unit`` is :math:`i` and ``input`` is :math:`j` (0-based; the names are 1-based, so the
    default is :math:`w_{11}`). Returns ``{"dL/dy_hat": ..., "dy_hat/dz_out": ...,
    "dz_out/dh1": ..., "dh1/dz1": ..., "dz1/dw11": ...}`` as tensors with the batch shape; their
    product is :math:`\partial L/\partial w_{ij}` (:attr:`Pass.grads` ``.W1[..., i, j]``).
    """
    p = forward_backward(params, x, y)
    W1 = params.W1
    unit = check_int("unit", unit, minimum=0)
    input = check_int("input", input, minimum=0)
    if unit >= W1.shape[-2]:
        raise ValueError(f"unit must be < {W1.shape[-2]} (hidden units), got {unit}")
    if input >= W1.shape[-1]:
        raise ValueError(f"input must be < {W1.shape[-1]} (inputs), got {input}")
    x = _check_x(x, params)
    y = _check_y(y, params)
    h_i = p.h[..., unit]
    i, j = unit + 1, input + 1
    return {
        "dL/dy_hat": p.y_hat - y,
        "dy_hat/dz_out": p.y_hat * (1 - p.y_hat),
        f"dz_out/dh{i}": params.v[..., unit].expand_as(h_i),
        f"dh{i}/dz{i}": h_i * (1 - h_i),
        f"dz{i}/dw{i}{j}": x[..., input].expand_as(h_i),
    }


def gradient_descent(
    params: TinyParams, x: Any, y: Any, *, lr: float, num_updates: int
) -> tuple[TinyParams, torch.Tensor]:
    r"""``num_updates`` steps of :math:`\theta \leftarrow \theta - \eta\,\partial L/\partial\theta`.

    Returns ``(final_params, losses)`` with ``losses[..., k]`` the loss after ``k`` updates
    (``k = 0 .. num_updates``, so ``losses[..., 0]`` is the starting loss). The gradients come from
    :func:`forward_backward`; batched parameters train independent copies side by side.
    """
    params = _check_params(params)
    x, y = _check_x(x, params), _check_y(y, params)
    lr = check_positive("lr", lr)
    num_updates = check_int("num_updates", num_updates, minimum=0)
    losses = []
    for _ in range(num_updates):
        p = _forward_backward(params, x, y)
        losses.append(p.loss)
        params = TinyParams(*(t - lr * g for t, g in zip(params, p.grads)))
    losses.append(_forward_backward(params, x, y).loss)
    return params, torch.stack(torch.broadcast_tensors(*losses), dim=-1)


# -- plots and the explorer ------------------------------------------------------------------------
def plot_factors(
    ax: Any, factors: Mapping[str, float], title: str = "Chain-rule factors of dL/dw11"
):
    r"""Horizontal bars of chain-rule factors (first factor on top), sigmoid derivatives in red.

    A dashed line marks :math:`\max\sigma' = 1/4`. ``factors`` maps names to numbers, e.g. the
    output of :func:`chain_factors` or :func:`vgcourse.gradcheck.chain_rule_factors`.
    """
    if not isinstance(factors, Mapping) or not factors:
        raise TypeError("factors must be a non-empty dict mapping factor names to numbers")
    values = [_real(f"factors[{n!r}]", float(v)) for n, v in factors.items()]
    bars = _FactorBars(ax, list(factors))
    bars.show(values, title)
    return ax


class _FactorBars:
    """The artists of :func:`plot_factors`, drawn once; :meth:`show` moves them to new values."""

    def __init__(self, ax: Any, names: list[str]):
        colors = ["C3" if n.startswith(("dy_hat/dz", "dh")) else "C0" for n in names]
        self.ax = ax
        self.bars = ax.barh(names[::-1], [0.0] * len(names), color=colors[::-1])
        self.labels = [ax.text(0, i, "", va="center", fontsize=8) for i in range(len(names))]
        ax.axvline(0.25, color="C3", ls="--", lw=1, label=r"$\max\ \sigma' = 1/4$")
        ax.axvline(0, color="k", lw=0.6)
        ax.set_xlabel("factor value")
        ax.legend(fontsize=8, loc="upper left")

    def show(self, values: Sequence[float], title: str) -> None:
        for bar, label, value in zip(self.bars, self.labels, values[::-1]):
            bar.set_width(value)
            label.set_x(value)
            label.set_text(f" {value:+.3g} ")
            label.set_horizontalalignment("left" if value >= 0 else "right")
        lim = max(1.0, 1.3 * max(abs(v) for v in values))
        self.ax.set_xlim(-lim, lim)
        self.ax.set_title(title)


class _ChainRulePanels:
    """The explorer's two panels, drawn once and then updated in place (``Explorer(clear=False)``)."""

    def __init__(self, axes: list, names: list[str]):
        self.factors = _FactorBars(axes[0], names)
        self.ax = axes[1]
        (self.curve,) = self.ax.plot([], [], "o-", ms=2)
        self.ax.set(xlabel="update", ylabel="loss", yscale="log")
        self.ax.grid(True, which="both", alpha=0.3)

    def show(self, factors: dict[str, float], curve: np.ndarray, grad: float, lr: float) -> None:
        self.factors.show(list(factors.values()), f"dL/dw11 = {grad:+.3g}")
        self.curve.set_data(np.arange(len(curve)), curve)
        self.ax.relim()
        self.ax.autoscale_view()
        self.ax.set_title(f"{len(curve) - 1} updates, lr = {lr:.2g}")


def _grid(lo: float, hi: float, step: float) -> tuple[float, ...]:
    """The values a slider from ``lo`` to ``hi`` in steps of ``step`` can take (rounded decimals)."""
    n = int(round((hi - lo) / step))
    return tuple(round(lo + k * step, 10) for k in range(n + 1))


def chain_rule_explorer(
    x: Sequence[float] = (1.5, -0.5),
    y: float = 1.0,
    *,
    w11: float = 0.4,
    lr: float = 0.5,
    num_updates: int = 20,
    max_updates: int = 100,
    device: torch.device | str | None = None,
):
    r"""Explorer: inputs :math:`x_1, x_2`, weight :math:`w_{11}`, learning rate, number of updates.

    Left: the five chain-rule factors of :math:`\partial L/\partial w_{11}` for lesson 01's
    network (:func:`chain_factors`, sigmoid derivatives in red, the :math:`1/4` bound dashed).
    Right: the loss :math:`\tfrac12(\hat y - y)^2` over real gradient-descent updates
    (:func:`gradient_descent`), log scale. Pushing :math:`w_{11}x_1` far from 0 saturates
    :math:`h_1`, so :math:`h_1(1-h_1) \to 0` and with it :math:`\partial L/\partial w_{11}`,
    however wrong the prediction: the sigmoid's vanishing gradient in one unit.

    Speed: for each setting of the other controls, one batched :func:`gradient_descent` trains the
    network for every value the :math:`x_1` slider can take (-4 to 4 in steps of 0.1) for
    ``max_updates`` updates, in float64 on ``device`` (default :func:`vgcourse.get_device`; the
    CPU instead of Apple's MPS, which has no float64); moving
    :math:`x_1` or the number of updates then only indexes into that result (cached with
    ``functools.lru_cache``). A value off the slider's grid is computed on its own. The returned
    explorer's ``state`` dict holds the last computed numbers: ``x``, ``w11``, ``lr``,
    ``num_updates``, ``factors`` (name -> float), ``grad`` (their product) and ``losses`` (the
    loss after 0..num_updates updates, numpy).
    """
    from ..device import get_device
    from ..widgets import Explorer, slider

    if isinstance(x, (str, bytes)) or not isinstance(x, Sequence) or len(x) != 2:
        raise TypeError(f"x must be a pair of numbers (x1, x2), got {x!r}")
    x1, x2 = (_real(f"x[{i}]", v) for i, v in enumerate(x))
    y = _real("y", y)
    w11 = _real("w11", w11)
    lr = check_positive("lr", lr)
    max_updates = check_int("max_updates", max_updates, minimum=1)
    num_updates = check_int("num_updates", num_updates, minimum=1)
    if num_updates > max_updates:
        raise ValueError(f"num_updates must be <= max_updates={max_updates}, got {num_updates}")
    device = get_device(device)
    if device.type == "mps":  # Apple's MPS has no float64, which the hand calculation uses
        device = torch.device("cpu")
    x1_grid = _grid(-4.0, 4.0, 0.1)
    state: dict[str, Any] = {}
    panels: list[_ChainRulePanels] = []

    @lru_cache(maxsize=64)
    def compute(x1_values: tuple[float, ...], x2: float, w11: float, lr: float):
        """Factors (n, 5) and losses (n, max_updates + 1) for each x1, on the device; numpy out."""
        xs = torch.tensor([(a, x2) for a in x1_values], dtype=torch.float64, device=device)
        params = tiny_params(w11, device=device)
        factors = chain_factors(params, xs, y)
        _, losses = gradient_descent(params, xs, y, lr=lr, num_updates=max_updates)
        table = torch.stack(list(factors.values()), dim=-1)
        return list(factors), table.cpu().numpy(), losses.cpu().numpy()

    def update(axes, x1: float, x2: float, w11: float, lr: float, num_updates: int) -> str:
        x1, x2, w11, lr = float(x1), float(x2), float(w11), float(lr)
        k = int(round((x1 - x1_grid[0]) / 0.1))
        if 0 <= k < len(x1_grid) and abs(x1_grid[k] - x1) < 1e-9:  # on the slider's grid
            names, table, losses = compute(x1_grid, x2, w11, lr)
            x1 = x1_grid[k]
        else:
            (names, table, losses), k = compute((x1,), x2, w11, lr), 0
        factors = dict(zip(names, table[k].tolist()))
        curve = losses[k, : num_updates + 1]
        grad = math.prod(factors.values())
        state.update(
            x=(x1, x2),
            w11=w11,
            lr=lr,
            num_updates=num_updates,
            factors=factors,
            grad=grad,
            losses=curve,
        )
        if not axes[0].patches:  # a fresh figure, or the explorer wiped it after an error
            panels[:] = [_ChainRulePanels(axes, names)]
        panels[0].show(factors, curve, grad, lr)
        return (
            f"x = ({x1:.2g}, {x2:.2g}), w11 = {w11:.2g}: dh1/dz1 = {factors['dh1/dz1']:.3g} | "
            f"dL/dw11 = {grad:+.3g} | loss {curve[0]:.4g} -> {curve[1]:.4g} after 1 update "
            f"-> {curve[-1]:.4g} after {num_updates}"
        )

    controls = dict(
        x1=slider(x1, -4, 4, 0.1, "x1"),
        x2=slider(x2, -4, 4, 0.1, "x2"),
        w11=slider(w11, -6, 6, 0.1, "w11"),
        lr=slider(lr, -2, 2, 0.1, "learning rate", log=True),
        num_updates=slider(num_updates, 1, max_updates, 1, "updates", integer=True),
    )
    explorer = Explorer(
        update,
        controls,
        caption="push w11 (or x1) to large values: h1 saturates, dh1/dz1 collapses towards 0 and "
        "so does dL/dw11, however wrong the prediction is. Then change the learning rate and count "
        "how many updates the loss needs.",
        title="Chain-rule factors and gradient descent on the 2-2-1 sigmoid network",
        clear=False,  # the panels move their artists: no ticks and texts rebuilt per redraw
    )
    explorer.state = state
    return explorer
