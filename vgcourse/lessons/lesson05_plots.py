r"""Lesson 05's figures: the parts of the gradient at batch norm's input, scale invariance, the
deep sigmoid network rescued, Ioffe & Szegedy's Figure 1, the noise of small-batch statistics, the
batch dependence of a prediction, the batch-size sweep and the train/eval mismatch.

Each function draws one figure of the notebook from numbers the notebook computed (shown at the end
of the cell, as any pyplot figure), so a plotting cell is one call; what the lesson teaches (the
batch-norm transform, its gradient, the measurements) stays in the notebook.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes

from ..plot_style import SMALL, line_colors, panels, plot_lines, style
from ..plots import plot_grad_norms, plot_loss
from ..train import History
from .lesson05_batch_norm import PreactivationPercentiles


def _np(values: Any) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
    return np.asarray(values, dtype=float)


def _batch_axis(ax: Axes, sizes: Sequence[int]) -> None:
    """A log-2 x axis with one tick per batch size."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(sizes), [str(m) for m in sizes])
    ax.set_xticks([], minor=True)


def plot_gradient_parts(
    col_norm: Any, along_x_hat: Any, sum_over_batch: Any, predicted: Any
) -> None:
    r"""Per feature: the size of the gradient at batch norm's input, its component along
    :math:`\hat x`, its sum over the batch, and the predicted :math:`\epsilon` term (black marks)."""
    fig, ax = panels(width=10, height=3.4)
    features = np.arange(len(_np(col_norm)))
    bars = {
        r"$\|\partial L/\partial x_{:,j}\|$ (scale of the gradient)": _np(col_norm),
        r"$|\sum_i \hat x_{ij}\,\partial L/\partial x_{ij}|$": np.abs(_np(along_x_hat)),
        r"$|\sum_i \partial L/\partial x_{ij}|$ (0 drawn at $10^{-20}$)": np.maximum(
            np.abs(_np(sum_over_batch)), 1e-20
        ),
    }
    for k, (label, values) in enumerate(bars.items()):
        ax.bar(features + 0.27 * (k - 1), values, 0.27, label=label)
    ax.plot(features, np.abs(_np(predicted)), "k_", ms=14, mew=2)
    ax.plot([], [], "k_", ms=14, mew=2, label=r"predicted $\gamma\epsilon/s^3\,\sum_i g_i\hat x_i$")
    style(ax, xlabel="feature j", ylabel="magnitude", logy=True, legend="outside")
    ax.set_title("The gradient reaching batch norm's input")
    fig.tight_layout()


def plot_scale_invariance(scales: Any, result: Mapping[float, np.ndarray]) -> None:
    """Left: the weight-gradient norm against the weight scale a, beside 1/a. Right: how much the
    output and the input gradient change from a = 1, for each epsilon.

    ``result[eps]`` has one row per scale: (output change, input-gradient change, weight-gradient
    ratio).
    """
    scales = _np(scales)
    fig, (left, right) = panels(2, width=5.5, height=3.8)
    colors = line_colors([f"eps={eps:g}" for eps in result])
    other = scales != 1.0  # a = 1 is the reference itself
    for eps, rows in result.items():
        c = colors[f"eps={eps:g}"]
        left.plot(scales, rows[:, 2], "o-", ms=3, color=c, label=f"measured, eps={eps:g}")
        right.plot(scales[other], rows[other, 0], "o-", ms=3, color=c, label=f"output, eps={eps:g}")
        right.plot(
            scales[other],
            rows[other, 1],
            "x--",
            ms=4,
            color=c,
            label=f"input gradient, eps={eps:g}",
        )
    left.plot(scales, 1 / scales, "k:", label="1/a")
    style(
        left,
        xlabel="weight scale a",
        ylabel=r"$\|\partial L/\partial(aW)\| \,/\, \|\partial L/\partial W\|$",
        title="The weight gradient scales as 1/a",
        logx=True,
        logy=True,
    )
    style(
        right,
        xlabel="weight scale a",
        ylabel="change from a = 1",
        title="Output and input gradient do not change",
        logx=True,
        logy=True,
    )
    fig.tight_layout()


def plot_rescue(histories: Mapping[str, History], *, smooth: int = 10) -> None:
    """Left: the median gradient norm per layer over training. Right: the training loss (running
    mean of ``smooth`` steps) beside ln 2, the loss of guessing 50/50."""
    fig, (left, right) = panels(2, width=5.5)
    medians = {k: np.median(h.grad_norms, axis=0) for k, h in histories.items()}
    plot_grad_norms(medians, ax=left, title="Gradient norm per layer (median over training)")
    plot_loss(histories, ax=right, log=False, smooth=smooth, title=None)
    right.axhline(np.log(2), color="grey", ls=":", lw=1, label="ln 2: guessing")
    style(right, title=f"Training loss (running mean of {smooth} steps)")
    fig.tight_layout()


def plot_figure1(
    histories: Mapping[str, Sequence[History]],
    percentiles: Mapping[str, PreactivationPercentiles],
    *,
    unit: int = 0,
) -> None:
    """Ioffe & Szegedy's Figure 1: (a) test accuracy against steps, every seed, one colour per
    network; (b, c) the percentiles of the input to one sigmoid over training, on one y scale."""
    fig, axes = panels(3, width=4.6, height=3.8)
    colors = line_colors(histories)
    for name, runs in histories.items():
        for i, h in enumerate(runs):
            axes[0].plot(
                h.eval_steps,
                h.eval_accuracy,
                color=colors[name],
                alpha=0.8,
                label=name if i == 0 else None,
            )
    style(axes[0], xlabel="training step", ylabel="test accuracy", title="(a) test accuracy")
    axes[0].set_ylim(0, 1)
    for ax, letter, (name, rec) in zip(axes[1:], "bc", percentiles.items()):
        curves = {
            f"{q:.0f}th percentile": (rec.steps, rec.values[:, i, unit])
            for i, q in enumerate(rec.q)
        }
        plot_lines(curves, ax=ax, colors=dict.fromkeys(curves, "k"))
        for line, ls in zip(ax.lines, ("--", "-", ":")):
            line.set_linestyle(ls)
        style(
            ax,
            xlabel="training step",
            ylabel="input to the sigmoid, z",
            title=f"({letter}) {name}, unit {unit}",
        )
    low = min(ax.get_ylim()[0] for ax in axes[1:])
    high = max(ax.get_ylim()[1] for ax in axes[1:])
    for ax in axes[1:]:
        ax.set_ylim(low, high)
    fig.tight_layout()


def plot_batch_statistics(sizes: Sequence[int], err_mean: Any, bias_var: Any) -> None:
    """Left: the error of the batch mean against batch size, beside 1/sqrt(m). Right: the mean
    biased batch variance over the population variance, beside (m-1)/m."""
    m = _np(sizes)
    fig, (left, right) = panels(2, width=5.5, height=3.4)
    left.plot(m, _np(err_mean), "o-", label=r"measured std of $\mu_B$ / $\sigma$")
    left.plot(m, 1 / np.sqrt(m), "k:", label=r"$1/\sqrt{m}$")
    right.plot(m, _np(bias_var), "o-", label=r"measured $E[\sigma_B^2]/\sigma^2$")
    right.plot(m, (m - 1) / m, "k:", label=r"$(m-1)/m$")
    style(
        left,
        xlabel="batch size m",
        ylabel=r"error of $\mu_B$ (units of $\sigma$)",
        logy=True,
        title="Batch mean: noisy for small m",
    )
    style(
        right,
        xlabel="batch size m",
        ylabel="ratio",
        title="Biased batch variance: too small for small m",
    )
    for ax in (left, right):
        _batch_axis(ax, sizes)
        ax.grid(True, alpha=0.3)
    fig.tight_layout()


def plot_batch_dependence(
    dependence: Mapping[tuple[str, str], Sequence[float]], chunk_sizes: Sequence[int]
) -> None:
    """The largest change of an output when the test images are run in chunks instead of as one
    batch, per chunk size and configuration (exact zeros drawn at 1e-9)."""
    fig, ax = panels(width=7, height=3.4)
    n = len(dependence)
    for k, (key, values) in enumerate(dependence.items()):
        offset = 0.8 / n * (k - (n - 1) / 2)
        ax.bar(
            np.arange(len(chunk_sizes)) + offset,
            np.maximum(values, 1e-9),
            0.8 / n,
            label=", ".join(key),
        )
    ax.set_xticks(range(len(chunk_sizes)), [f"chunks of {k}" for k in chunk_sizes])
    ax.set_ylim(1e-10, 1e4)
    style(
        ax,
        ylabel="largest change of an output",
        logy=True,
        title="Does a prediction depend on the rest of the batch?",
    )
    fig.tight_layout()


def plot_batch_size_sweep(
    sweep: Mapping[str, np.ndarray], batch_sizes: Sequence[int], steps: int
) -> None:
    """Test accuracy (eval mode) against batch size: the median over seeds as a line, each seed as a
    dot, one colour per normalisation."""
    fig, ax = panels(width=6.5, height=3.6)
    colors = line_colors(["batch", "layer", *sweep])
    for norm, acc in sweep.items():
        ax.plot(
            batch_sizes,
            np.median(acc, axis=1),
            "o-",
            color=colors[norm],
            label=f"{norm} norm (median)",
        )
        ax.plot(
            np.repeat(batch_sizes, acc.shape[1]), acc.ravel(), ".", color=colors[norm], alpha=0.5
        )
    _batch_axis(ax, batch_sizes)
    ax.set_ylim(0, 1)
    ax.grid(True, alpha=0.3)
    style(
        ax,
        xlabel="batch size",
        ylabel="test accuracy (eval mode)",
        title=f"Same {steps} steps at every batch size",
        legend="best",
    )
    fig.tight_layout()


def plot_mode_accuracy(
    batch_sizes: Sequence[int], train_acc: Sequence[float], eval_acc: float
) -> None:
    """Test accuracy of one network predicted in training mode, per test batch size, beside its
    evaluation-mode accuracy (dashed)."""
    fig, ax = panels(width=6.5, height=3.4)
    ax.bar(
        [str(b) for b in batch_sizes],
        train_acc,
        color="C3",
        label="training mode (model.eval() forgotten)",
    )
    ax.axhline(eval_acc, color="k", ls="--", label=f"evaluation mode: {eval_acc:.3f}")
    ax.set_ylim(0, 1)
    style(
        ax,
        xlabel="test batch size",
        ylabel="test accuracy",
        title="Same weights, two functions",
        legend="none",
    )
    ax.legend(fontsize=SMALL, loc="lower right")
    fig.tight_layout()
