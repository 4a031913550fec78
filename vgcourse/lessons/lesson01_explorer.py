r"""Lesson 01's plots and explorer: the chain-rule factors of the 2-2-1 network on a log |factor| axis
and the explorer that moves one weight and one input and shows the factors and the loss."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from matplotlib.ticker import LogLocator, NullLocator

from .._validate import check_int, check_positive, check_real
from .lesson01_backprop import chain_factors, gradient_descent, tiny_params


# -- plots and the explorer ------------------------------------------------------------------------
def plot_factors(
    ax: Any, factors: Mapping[str, float], title: str = "Chain-rule factors of dL/dw11"
):
    r"""Chain-rule factors as horizontal bars on a log :math:`|\text{factor}|` axis (first factor on
    top, sigmoid derivatives in red, each bar labelled with its signed value), and the running
    product :math:`|f_1 f_2 \cdots f_k|` down the bars: where it drops, that factor shrinks the
    gradient. Dashed lines mark :math:`\max\sigma' = 1/4` and 1. ``factors`` maps names to numbers,
    e.g. the output of :func:`chain_factors` or
    :func:`vgcourse.lessons.lesson01_network.chain_rule_factors`.
    """
    if not isinstance(factors, Mapping) or not factors:
        raise TypeError("factors must be a non-empty dict mapping factor names to numbers")
    values = [check_real(f"factors[{n!r}]", float(v)) for n, v in factors.items()]
    bars = _FactorBars(ax, list(factors))
    bars.show(values, title)
    return ax


#: The smallest magnitude the log axis shows (a factor of exactly 0 is drawn there).
FLOOR = 1e-12


class _FactorBars:
    """The artists of :func:`plot_factors`, drawn once; :meth:`show` moves them to new values."""

    def __init__(self, ax: Any, names: list[str]):
        colors = ["C3" if n.startswith(("dy_hat/dz", "dh")) else "C0" for n in names]
        self.ax = ax
        self.bars = ax.barh(names[::-1], [1.0] * len(names), left=FLOOR, color=colors[::-1])
        self.labels = [ax.text(1, i, "", va="center", fontsize=8) for i in range(len(names))]
        (self.product,) = ax.plot([], [], "k.-", lw=1, ms=6, label="running product")
        ax.axvline(0.25, color="C3", ls="--", lw=1)
        ax.axvline(1.0, color="k", ls=":", lw=0.8)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(numticks=6))
        ax.xaxis.set_minor_locator(NullLocator())  # minor log ticks cost a redraw
        ax.set_xlabel(r"|factor| (bars), |running product| (black); dashed: $\max\ \sigma' = 1/4$")
        ax.grid(True, axis="x", which="major", alpha=0.3)

    def show(self, values: Sequence[float], title: str) -> None:
        sizes = np.maximum(np.abs(values), FLOOR)
        running = np.maximum(np.abs(np.cumprod(values)), FLOOR)
        lo = max(FLOOR, min(1e-3, float(min(sizes.min(), running.min())) / 5))
        hi = max(10.0, 10 * float(sizes.max()))  # a decade of room for the labels
        for bar, label, value, size in zip(self.bars, self.labels, values[::-1], sizes[::-1]):
            bar.set_x(lo)
            bar.set_width(size - lo)
            label.set_x(size)
            label.set_text(f" {value:+.3g}")
        rows = np.arange(len(values))[::-1]  # the first factor is the top row
        self.product.set_data(running, rows)
        self.ax.set_xlim(lo, hi)
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
    x1, x2 = (check_real(f"x[{i}]", v) for i, v in enumerate(x))
    y = check_real("y", y)
    w11 = check_real("w11", w11)
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
