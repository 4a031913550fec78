r"""Lesson 06's figures: the spectrum of a 29-block Jacobian product beside the backward signal,
the growth of the residual stream against its bound, the plain-vs-residual depth sweep, the
training curves in the layout of He et al.'s Fig. 4, and the plain/residual CNN training curves.

Each function draws one figure of the notebook from numbers the notebook computed (shown at the end
of the cell, as any pyplot figure), so a plotting cell is one call; what the lesson teaches (the
Jacobian of a residual block, the variance recursion, the measurements) stays in the notebook.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import NullLocator

from ..plot_style import SMALL, line_colors, panels, style
from ..plots import plot_loss
from .lesson06_resnets import SweepResult

#: singular values below this (exact zeros included) are drawn on the floor of the log axis
FLOOR = 1e-20
#: one colour per network of sections 2 and 3, in both panels and both figures
SPECTRUM_COLORS = {"plain": "C3", "residual, s=1": "C0", "residual, s=1/L": "C2"}
#: plain and residual CNNs of section 6
CNN_COLORS = {"plain": "C3", "residual": "C0"}


def depth_axis(ax: Axes, depths: Sequence[int]) -> None:
    """A log-scaled x axis labelled with the depths themselves."""
    ax.set_xscale("log")
    ax.set_xticks(list(depths), [str(d) for d in depths])
    ax.xaxis.set_minor_locator(NullLocator())


def plot_spectra_and_backward(
    spectra: Mapping[str, Sequence[Any]], backward: Mapping[str, Sequence[Any]], depth: int
) -> None:
    r"""Left: the singular values of :math:`J_L\cdots J_2` for each network and seed; right: the
    median over seeds of the backward signal :math:`\|\partial L/\partial h_\ell\|` per block."""
    fig, (left, right) = panels(2, width=5.5, height=3.8)
    for name, runs in spectra.items():
        for i, sv in enumerate(runs):
            sv = np.asarray(sv, dtype=float)
            left.plot(
                np.arange(1, len(sv) + 1),
                np.maximum(sv, FLOOR),
                color=SPECTRUM_COLORS[name],
                alpha=0.7,
                label=name if i == 0 else None,
            )
    style(
        left,
        xlabel="index (largest first)",
        ylabel="singular value",
        title=f"Spectrum of $J_{{{depth}}}\\cdots J_2$ ({len(runs)} seeds)",
        logy=True,
    )
    for name, runs in backward.items():
        median = np.median(np.asarray(runs, dtype=float), axis=0)
        blocks = np.arange(1, len(median) + 1)
        right.plot(blocks, median, "o-", ms=3, color=SPECTRUM_COLORS[name], label=name)
    style(
        right,
        xlabel="block (1 = nearest the input)",
        ylabel=r"$\|\partial L/\partial h_\ell\|$",
        title="Backward signal per block (median of seeds)",
        logy=True,
        layers=True,
    )
    fig.tight_layout()


def plot_stream_growth(
    depths: Sequence[int],
    growth: Mapping[str, np.ndarray],
    bound: Mapping[str, Sequence[float]],
) -> None:
    r"""The growth :math:`q_L/q_1` of the residual stream at initialization against depth (median
    over seeds), with the bound :math:`g(s)^{L-1}` dotted in the same colour where there is one."""
    fig, ax = panels(width=7.5, height=3.8)
    colors = line_colors(growth)
    for name, runs in growth.items():
        ax.plot(depths, np.median(runs, axis=1), "o-", ms=4, color=colors[name], label=name)
        if name in bound:
            ax.plot(depths, bound[name], ":", color=colors[name], label=f"bound, {name}")
    style(
        ax,
        xlabel="depth L (hidden layers)",
        ylabel=r"$q_L / q_1$",
        title="Growth of the residual stream at initialization (median of seeds)",
        logy=True,
        legend="outside",
    )
    depth_axis(ax, depths)
    fig.tight_layout()


def plot_depth_sweep(
    grad_depths: Sequence[int],
    first_grads: Mapping[str, np.ndarray],
    train_depths: Sequence[int],
    sweeps: Mapping[str, SweepResult],
    steps: int,
) -> None:
    """Left: the first-layer gradient at initialization against depth (median over seeds; values
    that underflow sit on the floor). Right: the training loss after ``steps`` steps against depth
    (line: median, dots: seeds), with chance (ln 10) dashed. One colour per network in both."""
    fig, (left, right) = panels(2, width=6, height=4)
    colors = line_colors(first_grads)
    for name, runs in first_grads.items():
        median = np.maximum(np.median(runs, axis=1), 1e-30)
        left.plot(grad_depths, median, "o-", ms=4, color=colors[name], label=name)
    style(
        left,
        xlabel="depth (hidden layers)",
        ylabel=r"$\|\partial L/\partial W_1\|$ at init",
        title="First-layer gradient at initialization",
        logy=True,
    )
    depth_axis(left, grad_depths)
    for name, sweep in sweeps.items():
        c = colors[name]
        right.plot(train_depths, sweep.median("train_loss"), "o-", ms=4, color=c, label=name)
        for j in range(len(sweep.seeds)):
            right.plot(train_depths, sweep.train_loss[:, j], ".", color=c, alpha=0.4)
    right.axhline(np.log(10), color="grey", ls="--", lw=1, label="chance (ln 10)")
    style(
        right,
        xlabel="depth (hidden layers)",
        ylabel="training loss",
        title=f"Training loss after {steps} steps (line: median, dots: seeds)",
        logy=True,
    )
    depth_axis(right, train_depths)
    fig.tight_layout()


def plot_shallow_vs_deep(
    sweeps: Mapping[str, SweepResult], names: Sequence[str], shallow: int, deep: int
) -> None:
    """One panel per network in ``names``: the training loss of the shallow (thin) and the deep
    (thick) net, mean over seeds, smoothed over 10 steps (the layout of He et al.'s Fig. 4)."""
    fig, axes = panels(len(names), width=4.7, height=3.8, sharey=True)
    for ax, name in zip(np.atleast_1d(axes), names):
        sweep = sweeps[name]
        for d, lw, color in ((shallow, 1.0, "C1"), (deep, 2.2, "C0")):
            curve = np.mean([sweep.histories[(d, s)].loss for s in sweep.seeds], axis=0)
            smooth = np.convolve(curve, np.ones(10) / 10, mode="valid")
            ax.plot(np.arange(len(smooth)) + 9, smooth, lw=lw, color=color, label=f"{d} layers")
        style(ax, xlabel="step", title=f"{name} ({len(sweep.seeds)} seeds, smoothed)", logy=True)
    np.atleast_1d(axes)[0].set_ylabel("training loss")
    fig.tight_layout()


def plot_cnn_training(cnn: Mapping[str, SweepResult], blocks: Sequence[int]) -> None:
    """One panel per CNN depth: the training loss of the plain and the residual CNN for every
    seed (smoothed over 10 steps; first seed opaque), one colour per architecture."""
    fig, axes = panels(len(blocks), width=6, height=3.6, squeeze=False)
    for ax, nb in zip(axes, blocks):
        for name, sweep in cnn.items():
            for j, s in enumerate(sweep.seeds):
                plot_loss(
                    {f"{name} (seed {s})": sweep.histories[(nb, s)]},
                    ax=ax,
                    smooth=10,
                    title=f"{1 + 2 * nb} convolutions, BN",
                )
                ax.lines[-1].set_color(CNN_COLORS[name])
                ax.lines[-1].set_alpha(1.0 if j == 0 else 0.5)
        ax.legend(fontsize=SMALL)
    fig.tight_layout()
