r"""Lesson 08's figures, one function a figure: the error signal and weight gradients per layer, the
RNN gradient against the lag, the cliff of the one-unit RNN (surface, slice, gradient-descent paths),
a divergence to NaN, clipping by norm against by value, the threshold sweep and the learning-rate
axis of the explorer.

Each function draws from numbers the notebook computed (or, for the paths, from the few runs the
figure shows), so a plotting cell is one call; what the lesson teaches (the chain-rule products,
the cliff formula, Algorithm 1, the measurements) stays in the notebook and in
:mod:`vgcourse.lessons.lesson08_clipping`. The building blocks, :func:`plot_loss_surface` and
:func:`plot_norm_trace`, are in :mod:`vgcourse.lessons.lesson08_plots`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..plot_style import SMALL, line_colors, panels, plot_lines, show, style
from ..plots import plot_loss
from ..train import History
from .lesson08_clipping import gd_trajectories, one_unit_loss
from .lesson08_plots import plot_loss_surface, plot_norm_trace


def plot_backward_profiles(profiles: Mapping[float, np.ndarray], depth: int) -> None:
    r"""Left: the error signal :math:`\|\delta_\ell\|` per layer for each gain (median of seeds),
    dotted the prediction :math:`g^{L-\ell}`; right: the weight gradient per layer.

    ``profiles[g]`` has shape (seeds, 2, layers): signal and weight-gradient norms."""
    fig, (ax1, ax2) = panels(2, width=5.5, height=3.8)
    layers = np.arange(1, depth + 1)
    label = {g: f"g = {g}" for g in profiles}
    colors = line_colors(label.values())
    signal = {label[g]: (layers, np.median(p[:, 0], 0)) for g, p in profiles.items()}
    predicted = {
        label[g]: (layers, np.median(p[:, 0, -1]) * g ** (depth - layers))
        for g, p in profiles.items()
    }
    weight = {label[g]: (layers, np.median(p[:, 1], 0)) for g, p in profiles.items()}
    ax1.plot([], [], "k:", label=r"prediction $g^{L-\ell}$")
    common = dict(colors=colors, marker="o", layers=True, logy=True)
    plot_lines(signal, ax=ax1, dotted=predicted, ylabel=r"$\|\delta_\ell\|$", **common)
    ax1.set_title(r"Error signal $\|\partial L/\partial a_\ell\|$ (median of seeds)", fontsize=10)
    plot_lines(weight, ax=ax2, ylabel=r"$\|\partial L/\partial W_\ell\|$", **common)
    ax2.set_title(r"Weight gradient $\|\partial L/\partial W_\ell\|$", fontsize=10)
    show(fig)


def plot_lag_gradients(
    lag_norms: Mapping[tuple[float, float], np.ndarray],
    rhos: Sequence[float],
    input_scales: Sequence[float],
) -> None:
    r""":math:`\|\partial L/\partial x_{T-k}\|` against the lag :math:`k`, one panel per input scale,
    one colour per spectral radius :math:`\rho` (dotted :math:`\rho^k` for inputs below 1)."""
    fig, axes = panels(len(input_scales), width=5.5, height=3.8, sharey=True)
    colors = line_colors(rf"$\rho$ = {rho}" for rho in rhos)
    for ax, scale in zip(np.atleast_1d(axes), input_scales):
        lags = np.arange(len(lag_norms[rhos[0], scale]))
        curves = {rf"$\rho$ = {rho}": (lags, lag_norms[rho, scale]) for rho in rhos}
        dotted = {rf"$\rho$ = {rho}": (lags, lag_norms[rho, scale][0] * rho**lags) for rho in rhos}
        saturating = scale >= 1
        plot_lines(
            curves,
            ax=ax,
            dotted=None if saturating else dotted,
            colors=colors,
            logy=True,
            xlabel="lag $k$ (steps between input and loss)",
            title=f"inputs of size {scale:g}"
            + (" (tanh saturates)" if saturating else r" (dotted: $\rho^k$)"),
            legend="best" if ax is np.atleast_1d(axes)[0] else "none",
        )
    np.atleast_1d(axes)[0].set_ylabel(r"$\|\partial L/\partial x_{T-k}\|$")
    show(fig)


def plot_cliff_surfaces(
    w_axis: np.ndarray, b_axis: np.ndarray, loss_grid: np.ndarray, gnorm_grid: np.ndarray
) -> None:
    """The one-unit RNN's loss in 3-D (capped at 25), and its loss and gradient norm from above
    (log colour scales), the line :math:`w = 4` dotted: left of it no explosion is possible."""
    fig = plt.figure(figsize=(16, 4.4), layout="constrained")
    ax3d = fig.add_subplot(1, 3, 1, projection="3d")
    w3, b3 = np.meshgrid(np.linspace(1, 9, 121), np.linspace(-5, 1, 121))
    capped = np.minimum(one_unit_loss(w3, b3), 25)
    ax3d.plot_surface(w3, b3, capped, cmap="viridis", linewidth=0, antialiased=False)
    ax3d.view_init(elev=30, azim=-60)
    ax3d.set(xlabel="$w$", ylabel="$b$", title="Loss (capped at 25): a valley with a wall")
    ax_loss, ax_grad = fig.add_subplot(1, 3, 2), fig.add_subplot(1, 3, 3)
    plot_loss_surface(w_axis, b_axis, loss_grid, ax=ax_loss, vmin=1e-4)
    plot_loss_surface(
        w_axis,
        b_axis,
        gnorm_grid,
        ax=ax_grad,
        cmap="magma",
        x0=None,
        label=r"$\|\nabla L\|$",
        title="One-unit RNN: gradient norm",
    )
    for ax in (ax_loss, ax_grad):
        ax.axvline(4, color="grey", lw=0.8, ls=":")
    plt.show()


def plot_cliff_slice(
    b_line: np.ndarray,
    loss_line: np.ndarray,
    b_star: float,
    dist: np.ndarray,
    gb_above: np.ndarray,
    gb_below: np.ndarray,
    at_cliff: float,
) -> None:
    r"""Left: the loss along a slice across the cliff at ``b_star``; right:
    :math:`|\partial L/\partial b|` against the distance to the cliff on both sides, dashed the
    closed-form value ``at_cliff`` on it."""
    fig, (ax1, ax2) = panels(2, width=5.5, height=3.8)
    ax1.plot(b_line, loss_line)
    ax1.axvline(b_star, color="k", ls="--", lw=0.8, label=r"cliff $b^*$")
    style(ax1, xlabel="bias $b$  (w = 6)", ylabel="loss", title="Loss along the slice", logy=True)
    ax2.plot(dist, np.abs(gb_above), "o-", ms=3, label=r"$b = b^* + d$")
    ax2.plot(dist, np.abs(gb_below), "s-", ms=3, label=r"$b = b^* - d$")
    formula = r"$|2(x_0-x^\star)(\lambda^T-1)/(\lambda-1)|$"
    ax2.axhline(abs(at_cliff), color="k", ls="--", lw=0.8, label=formula)
    style(
        ax2,
        xlabel="distance to the cliff $d$",
        ylabel=r"$|\partial L/\partial b|$",
        title="Gradient near the cliff",
        logx=True,
        logy=True,
    )
    show(fig)


def plot_cliff_paths(
    examples: Sequence[tuple[float, float]],
    *,
    lr: float,
    clip_norm: float,
    steps: int = 60,
    colors: Sequence[str] = ("black", "red"),
) -> None:
    r"""Left: plain (solid) and clipped (dashed) gradient descent from each start in ``examples``
    on the loss map, the largest plain step of the first start annotated; right: the step lengths
    from the first start, with the cap :math:`\eta c` dotted."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12.5, 4.3), layout="constrained")
    wz, bz = np.linspace(2, 9, 281), np.linspace(-5, 0, 201)
    title = "Gradient descent near the cliff (solid: plain, dashed: clipped)"
    plot_loss_surface(wz, bz, one_unit_loss(*np.meshgrid(wz, bz)), ax=ax1, vmin=1e-4, title=title)
    for i, ((ws, bs), color) in enumerate(zip(examples, colors)):
        for clip, ls in [(None, "-"), (clip_norm, "--")]:
            tr = gd_trajectories(ws, bs, lr=lr, steps=steps, clip_norm=clip)
            ax1.plot(tr.w[:, 0], tr.b[:, 0], ls, color=color, lw=1.3)
            if i == 0:
                label = "clipped" if clip else "plain"
                ax2.plot(tr.step_lengths[:, 0], ls, color=color, label=label)
        ax1.plot(ws, bs, "o", color=color, ms=6)
    jump = gd_trajectories(*examples[0], lr=lr, steps=steps)
    k = int(np.argmax(jump.step_lengths[:, 0]))
    ax1.annotate(
        f"step {k}: gradient norm {jump.grad_norm[k, 0]:.0f},\nthrown to "
        f"({jump.w[k + 1, 0]:.1f}, {jump.b[k + 1, 0]:.1f})",
        (jump.w[k, 0], jump.b[k, 0]),
        xytext=(0.04, 0.12),
        textcoords="axes fraction",
        fontsize=SMALL,
        bbox=dict(fc="white", alpha=0.8),
        arrowprops=dict(arrowstyle="->"),
    )
    ax2.axhline(lr * clip_norm, color="grey", ls=":", lw=1, label=r"$\eta c$")
    style(
        ax2,
        xlabel="step",
        ylabel=r"step length $\|\theta_{k+1}-\theta_k\|$",
        title=f"Step lengths from the {colors[0]} start {tuple(examples[0])}",
        logy=True,
    )
    plt.show()


def plot_divergence(histories: Mapping[str, History], lr: float) -> None:
    """Left: the training loss of each run, a cross where it diverged; right: the gradient norm
    per step (the same crosses)."""
    fig, (ax1, ax2) = panels(2, width=5.5, height=3.8)
    plot_loss(histories, ax=ax1, title=f"Training loss, no clipping (lr = {lr}); x: diverged_at")
    for label, h in histories.items():
        plot_norm_trace(h, ax=ax2, label=label, annotate=False)
    show(fig)


def plot_clip_directions(
    g2: torch.Tensor,
    by_norm: torch.Tensor,
    by_value: torch.Tensor,
    value_thresholds: Sequence[float],
    cos_value: Sequence[float],
    cos_norm: float,
) -> None:
    """Left: a 2-D gradient and its two clipped versions as arrows, with the angles (the box and
    the circle of radius c dotted); right: the cosine between a network's gradient and its
    clipped version, by value against the threshold and by norm."""
    fig, (ax1, ax2) = panels(2, width=5.5, height=3.8)
    arrows = [
        (g2, "gradient $g$", "k"),
        (by_norm, "clipped by norm (c = 1)", "tab:blue"),
        (by_value, "clipped by value (c = 1)", "tab:red"),
    ]
    for vec, label, color in arrows:
        arrow = dict(arrowstyle="->", color=color, lw=2)
        ax1.annotate("", xy=vec.tolist(), xytext=(0, 0), arrowprops=arrow)
        angle = math.degrees(math.atan2(vec[1], vec[0]))
        ax1.plot([], [], color=color, label=f"{label}: angle {angle:.1f} deg")
    ax1.add_patch(plt.Rectangle((-1, -1), 2, 2, fill=False, ls=":", color="tab:red"))
    ax1.add_patch(plt.Circle((0, 0), 1, fill=False, ls=":", color="tab:blue"))
    ax1.set(xlim=(-0.2, 3.2), ylim=(-0.3, 1.2), aspect="equal")
    style(ax1, xlabel="$g_1$", ylabel="$g_2$", title="Clipping a 2-D gradient")
    ax2.plot(value_thresholds, cos_value, "o-", color="tab:red", label="clip_grad_value_")
    ax2.axhline(cos_norm, color="tab:blue", label=f"clip_grad_norm_ (cosine {cos_norm:.6f})")
    ax2.set_ylim(0, 1.05)
    style(
        ax2,
        xlabel="value threshold (quantiles 50%-99% of $|g_i|$)",
        ylabel="cosine(g, clipped g)",
        title="Direction after clipping, section 4's network",
        logx=True,
    )
    show(fig)


def plot_threshold_sweep(
    sweep: Mapping[float, Sequence[tuple[History, float, float]]],
    chance: float,
    shown: Mapping[str, History],
    trace: History,
    clip_norm: float,
) -> None:
    r"""Left: the loss on all data after training against the threshold :math:`c/\bar g` (every
    seed a dot, the median a line, chance dashed); middle: the mini-batch loss of the runs in
    ``shown``; right: the gradient-norm trace of ``trace`` with its threshold ``clip_norm``."""
    fig, (ax1, ax2, ax3) = panels(3, width=5.0, height=3.8)
    multipliers = list(sweep)
    for m, runs in sweep.items():
        ax1.plot([m] * len(runs), [v for _, v, _ in runs], "o", color="tab:blue", alpha=0.6)
    median = [np.median([v for _, v, _ in sweep[m]]) for m in multipliers]
    ax1.plot(multipliers, median, "-", color="tab:blue", label="clipped: median of seeds")
    ax1.axhline(chance, color="grey", ls="--", label="chance, ln 3")
    n_seeds = len(next(iter(sweep.values())))
    style(
        ax1,
        xlabel=r"threshold $c / \bar g$",
        ylabel="loss on all data after training",
        title=f"All {n_seeds} unclipped runs diverged (NaN)",
        logx=True,
    )
    plot_loss(shown, ax=ax2, smooth=5, title="Mini-batch loss, seed 0 (running mean of 5)")
    title = r"Seed 0, $c = \bar g$: norms before clipping"
    plot_norm_trace(trace, clip_norm=clip_norm, ax=ax3, title=title)
    show(fig)


def plot_lr_axis(lrs: Sequence[float], lr_axis: Mapping[str, Sequence[Any]], chance: float) -> None:
    """The loss on all data after training against the learning rate for each setting in
    ``lr_axis`` (label -> runs, one per learning rate); a diverged run is a cross at 3 x chance."""
    fig, ax = panels(width=7.5, height=3.8)
    colors = line_colors(lr_axis)
    for label, runs in lr_axis.items():
        finite = [(lr, r.loss) for lr, r in zip(lrs, runs) if r.history.diverged_at is None]
        ax.plot(*zip(*finite), "o-", ms=4, color=colors[label], label=label)
        diverged = [lr for lr, r in zip(lrs, runs) if r.history.diverged_at is not None]
        if diverged:
            ax.plot(diverged, [3 * chance] * len(diverged), "x", color=colors[label], mew=2)
            ax.plot([], [], "x", color=colors[label], mew=2, label=f"{label}: diverged (NaN)")
    ax.axhline(chance, color="grey", ls="--", lw=0.8, label="chance, ln 3")
    style(
        ax,
        xlabel="learning rate",
        ylabel="loss on all data after training",
        title="Seed 0 at every position of the explorer's learning-rate slider",
        logx=True,
        logy=True,
    )
    show(fig)
