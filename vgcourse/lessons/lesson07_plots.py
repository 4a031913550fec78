r"""Lesson 07's figures: the BPTT product checked against autograd, Jacobian norms against the lag
for chosen recurrent matrices (with :math:`\rho^{\ell}` and Pascanu et al.'s bound beside them),
gradient-against-lag curves over seeds (median and min-max band) and the learning curves of the
cells trained side by side.

Each function draws one figure of the notebook from numbers the notebook computed, so a plotting
cell is one call; what the lesson teaches (BPTT as a product of Jacobians, the bound, the cells)
stays in the notebook and in :mod:`vgcourse.lessons.lesson07_lstm_gru`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes

from ..plot_style import line_colors, panels, show, style
from .lesson07_lstm_gru import vanishing_bound


def plot_band(
    ax: Axes, curves: Any, *, label: str, color: Any = None, x: Any = None, lw: float = 1.5
) -> Axes:
    """The median over seeds (rows of ``curves``) as a line, the min-max range as a band."""
    curves = np.atleast_2d(np.asarray(curves, dtype=float))
    x = np.arange(curves.shape[1]) if x is None else np.asarray(x, dtype=float)
    (line,) = ax.plot(x, np.median(curves, 0), label=label, color=color, lw=lw)
    ax.fill_between(x, curves.min(0), curves.max(0), color=line.get_color(), alpha=0.15)
    return ax


def plot_lag_curves(
    curves: Mapping[str, Any],
    *,
    ylabel: str,
    title: str,
    colors: Mapping[str, Any] | None = None,
    xlabel: str = r"lag $\ell$",
    width: float = 7.0,
) -> None:
    """One gradient-against-lag curve per label (median over seeds, min-max band), log y axis."""
    fig, ax = panels(width=width, height=4.0)
    colors = dict(colors) if colors is not None else line_colors(curves)
    for label, values in curves.items():
        plot_band(ax, values, label=label, color=colors.get(label))
    style(ax, xlabel=xlabel, ylabel=ylabel, title=title, logy=True)
    show(fig)


def plot_bptt_check(norms: Any, lag: int, autograd_norm: float) -> None:
    r""":math:`\|\partial h_T/\partial h_k\|_2` of the hand-built Jacobian product at every lag, and
    autograd's value at one lag (a cross) on top."""
    fig, ax = panels(width=6.5)
    norms = np.asarray(norms, dtype=float)
    ax.plot(np.arange(len(norms)), norms, "o-", ms=3, label="product of Jacobians")
    ax.plot([lag], [autograd_norm], "kx", ms=10, mew=2, label="autograd through nn.RNN")
    style(
        ax,
        xlabel="lag $T-k$ (steps back in time)",
        ylabel=r"$\|\partial h_T/\partial h_k\|_2$",
        title="BPTT: the gradient path through time of a default-init RNN",
        logy=True,
    )
    show(fig)


def plot_jacobian_settings(
    jac: Mapping[str, Sequence[tuple[Any, Any]]],
    settings: Mapping[str, tuple[str, str, float]],
    groups: Sequence[tuple[str, Sequence[str]]],
) -> None:
    r"""One panel per ``(title, labels)`` group: :math:`\|\partial h_T/\partial h_k\|_2` against
    the lag for each setting (median and min-max over its random matrices), dashed beside it
    :math:`\rho^{\ell}` (linear RNNs and :math:`\rho > 1`) or the bound
    :math:`(\gamma\sigma_{\max})^{\ell}` (settings scaled by their largest singular value).

    ``jac`` maps a label to its ``(norms, W)`` pairs, ``settings`` a label to
    ``(nonlinearity, scaled by, value)``.
    """
    fig, axes = panels(len(groups), width=4.7, height=3.8)
    colors = line_colors(settings)
    for ax, (title, labels) in zip(np.atleast_1d(axes), groups):
        for label in labels:
            phi, by, value = settings[label]
            curves = np.array([c for c, _ in jac[label]])
            lags = np.arange(curves.shape[1])
            plot_band(ax, curves, label=label, color=colors[label])
            if phi == "identity" or (by == "spectral_radius" and value > 1):
                dashed, name = value**lags, rf"$\rho^{{lag}}$ = {value}$^{{lag}}$"
            elif by == "singular_value":
                dashed, name = vanishing_bound(jac[label][0][1], lags, nonlinearity=phi), "bound"
            else:
                continue
            ax.plot(lags, dashed, "--", color=colors[label], lw=1, label=name)
        style(ax, xlabel="lag $T-k$", ylabel=r"$\|\partial h_T/\partial h_k\|_2$", logy=True)
        ax.set_title(title, fontsize=10)
    show(fig)


def plot_learning_curves(
    runs: Mapping[tuple[str, int], tuple[Any, Any]],
    *,
    metric: str = "eval_loss",
    colors: Mapping[str, Any] | None = None,
    reference: tuple[float, str] | None = None,
    ylabel: str = "test MSE",
    title: str | None = None,
    logy: bool = False,
    ylim: tuple[float, float] | None = None,
) -> None:
    """The test curve (``metric`` of each History: ``eval_loss`` or ``eval_accuracy``) of every
    ``(label, seed)`` run, one colour per label, seed 0 solid and later seeds dashed; ``reference``
    a ``(value, label)`` drawn as a dotted black line (the baseline, chance)."""
    labels = list(dict.fromkeys(label for label, _ in runs))
    colors = dict(colors) if colors is not None else line_colors(labels)
    several = len({seed for _, seed in runs}) > 1
    fig, ax = panels(width=7.0, height=4.0)
    for (label, seed), (_model, history) in runs.items():
        name = f"{label} (seed {seed})" if several else str(label)
        ax.plot(
            history.eval_steps,
            getattr(history, metric),
            color=colors[label],
            ls="-" if seed == min(s for lb, s in runs if lb == label) else "--",
            marker="o",
            ms=3,
            label=name,
        )
    if reference is not None:
        ax.axhline(reference[0], color="k", ls=":", label=reference[1])
    if ylim is not None:
        ax.set_ylim(*ylim)
    if not logy:
        ax.grid(True, alpha=0.3)
    style(ax, xlabel="training step", ylabel=ylabel, title=title, logy=logy, legend="outside")
    show(fig)
