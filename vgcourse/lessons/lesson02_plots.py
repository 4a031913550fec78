r"""Lesson 02's figures: Adam's plateau, the symptoms of a vanished gradient (weight trajectories,
loss, weight change, weight size, gradient heatmaps), the depth trade-off on the spirals and the
latch's robustness-versus-gradient trade-off.

Each function draws one multi-panel figure of the notebook from numbers the notebook computed (it
is shown at the end of the cell, as any pyplot figure), so a plotting cell is one call; what the
lesson teaches (the chain-rule products, the Jacobians, the measurements) stays in the notebook.
One configuration (a seed, an optimizer) keeps one colour in every panel of a figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator

from ..plot_style import LAYER_LABEL, SMALL, line_colors, panels, plot_lines, shared_norm, style
from .lesson02_seed_experiment import SeedRun
from .lesson02_weight_change import WeightRecorder

__all__ = [
    "layer_names",
    "plot_depth_tradeoff",
    "plot_grad_heatmaps",
    "plot_latch_tradeoff",
    "plot_plateau",
    "plot_symptoms",
    "plot_trajectories",
]


def _np(values: Any) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
    return np.asarray(values, dtype=float)


def layer_names(recorder: WeightRecorder) -> list[str]:
    """Short names of a recorder's tracked layers, input -> output: ``"1"``, ``"2"``, ..., ``"out"``."""
    names = [str(i + 1) for i in range(len(recorder.names))]
    if recorder.names[-1] == "output":
        names[-1] = "out"
    return names


def _running_mean(loss: Any, window: int) -> tuple[np.ndarray, np.ndarray]:
    """``(steps, mean of the last window losses)``: the loss curve as the notebook reads it."""
    loss = _np(loss)
    window = max(1, min(int(window), len(loss)))
    return np.arange(window, len(loss) + 1), np.convolve(loss, np.ones(window) / window, "valid")


def _mark_step(axes: Sequence[Axes], step: int | None) -> None:
    if step is not None:
        for ax in axes:
            ax.axvline(step, color="grey", ls="--", lw=1)


def plot_plateau(
    runs: Mapping[int, SeedRun],
    *,
    article_steps: int | None = None,
    layers: Sequence[int] = (0, 4, 8, 9),
    smooth: int = 20,
) -> None:
    """Adam's plateau, one colour per seed: the training loss (running mean over ``smooth`` steps),
    the spread of the top hidden layer's representations across the training inputs, and the
    norms of some layers' weights (first seed); the dashed line marks ``article_steps``."""
    fig, axes = panels(3, width=4.4, height=3.5)
    colors = line_colors(f"seed {s}" for s in runs)
    loss = {f"seed {s}": _running_mean(run.history.loss, smooth) for s, run in runs.items()}
    plot_lines(loss, ax=axes[0], colors=colors, xlabel="step", ylabel="training loss")
    axes[0].set_title(f"Adam: training loss ({smooth}-step mean)")
    spread = {f"seed {s}": (run.spread.steps, run.spread.spread[:, -1]) for s, run in runs.items()}
    plot_lines(spread, ax=axes[1], colors=colors, logy=True, xlabel="step", legend="none")
    style(axes[1], ylabel="spread of the top layer across inputs", legend="none")
    axes[1].set_title("Are inputs told apart?")
    first, recorder = next(iter(runs)), next(iter(runs.values())).weights
    names, norms = layer_names(recorder), recorder.weight_norms()
    label = {n: "output layer" if n == "out" else f"layer {n}" for n in names}
    curves = {label[names[i]]: (recorder.steps, norms[:, i]) for i in layers}
    plot_lines(curves, ax=axes[2], xlabel="step", ylabel=r"$\|W_\ell\|_F$")
    axes[2].set_title(f"Adam, seed {first}: weight norms")
    _mark_step(axes, article_steps)
    fig.tight_layout()


def plot_trajectories(
    recorders: Mapping[str, WeightRecorder],
    *,
    steps: int,
    layers: Sequence[int] = (0, -1),
    k: int = 5,
) -> None:
    """``k`` weights of each of ``layers`` (rows: first and output layer) against the step, one column
    per run (``recorders``: name -> recorder), over the first ``steps`` steps."""
    fig, axes = panels(len(recorders), len(layers), width=5.5, height=2.7, sharex=True)
    axes = np.asarray(axes).reshape(len(layers), len(recorders))
    for col, (name, recorder) in enumerate(recorders.items()):
        names, x = layer_names(recorder), np.asarray(recorder.steps)[: steps + 1]
        for row, layer in enumerate(layers):
            label = "output layer" if names[layer] == "out" else f"layer {names[layer]}"
            axes[row, col].plot(x, recorder.trajectories(layer, k=k)[: steps + 1], lw=1)
            style(axes[row, col], ylabel="weight value", title=f"{name}: {label}, {k} weights")
            axes[row, col].grid(True, alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("step")
    fig.tight_layout()


def _bars(ax: Axes, values: Mapping[str, Any], colors: Mapping[str, Any], labels=None) -> None:
    """Grouped bars, one group per layer, one bar (and colour) per entry of ``values``."""
    width = 0.8 / len(values)
    for k, (name, v) in enumerate(values.items()):
        v = _np(v)
        x = np.arange(1, len(v) + 1) + width * (k - (len(values) - 1) / 2)
        ax.bar(x, v, width=width, color=colors[name], label=labels[name] if labels else name)


def plot_symptoms(
    histories: Mapping[str, Any],
    changes: Mapping[str, Any],
    mean_abs: Mapping[str, Any],
    *,
    steps: int,
    names: Sequence[str],
    smooth: int = 20,
) -> None:
    r"""Three symptoms, one colour per run: the training loss over the first ``steps`` steps
    (running mean over ``smooth``), each layer's relative weight change
    :math:`\|W_{steps} - W_0\|/\|W_0\|` (0 drawn at :math:`10^{-12}`) and each layer's mean
    :math:`|w|` (``mean_abs`` also holds ``"init"``). ``names`` labels the layers."""
    fig, axes = panels(3, width=4.4, height=3.5)
    colors = line_colors([*histories, *mean_abs])
    loss = {name: _running_mean(_np(h.loss)[:steps], smooth) for name, h in histories.items()}
    plot_lines(loss, ax=axes[0], colors=colors, xlabel="step", ylabel="training loss")
    axes[0].set(xlim=(0, steps), ylim=(0.6, 0.85), title=f"Loss ({smooth}-step mean)")
    _bars(axes[1], {n: np.maximum(_np(c), 1e-12) for n, c in changes.items()}, colors)
    style(axes[1], logy=True, ylabel=rf"$\|W_{{{steps}}} - W_0\| / \|W_0\|$", legend="none")
    axes[1].set_title("Relative weight change (0 shown at 1e-12)")
    labels = {n: n if n == "init" else f"{n}, {steps} steps" for n in mean_abs}
    _bars(axes[2], mean_abs, colors, labels)
    style(axes[2], ylabel="mean |w|", title="Are the weights near zero?")
    for ax in axes[1:]:
        ax.set_xticks(np.arange(1, len(names) + 1), list(names))
        ax.set_xlabel("layer")
    axes[2].legend(fontsize=SMALL)
    fig.tight_layout()


def plot_grad_heatmaps(histories: Mapping[str, Any]) -> None:
    """The gradient norm of every hidden layer at every step, one heatmap per run (title -> History),
    on one shared log colour scale so the runs compare directly."""
    fig, axes = panels(len(histories), width=5.8, height=3.4, layout="constrained")
    axes = np.atleast_1d(axes)
    grads = [_np(h.grad_norms) for h in histories.values()]
    norm = shared_norm(grads, log=True)
    for ax, title, g in zip(axes, histories, grads):
        image = ax.imshow(
            np.where(g > 0, g, np.nan).T,
            aspect="auto",
            origin="lower",
            norm=norm,
            cmap="viridis",
            extent=(-0.5, len(g) - 0.5, 0.5, g.shape[1] + 0.5),
            interpolation="nearest",
        )
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        style(ax, xlabel="step", ylabel=LAYER_LABEL, title=title)
    fig.colorbar(image, ax=list(axes), label="gradient norm (one scale)")


def plot_depth_tradeoff(depths: Sequence[int], results: Any, *, settings: str = "") -> None:
    """Training loss (log scale) and training accuracy on the spirals against the number of hidden
    layers: the median over seeds (line) and every seed (dots); ``results`` is (depths, seeds, 2)
    and ``settings`` (the optimizer and budget) goes into the title."""
    results = _np(results)
    fig, axes = panels(2, width=5.0, height=3.4)
    x = np.asarray(depths)
    for k, label in enumerate(("training loss (cross-entropy)", "training accuracy")):
        axes[k].plot(x, np.median(results[:, :, k], 1), "o-", label="median over seeds")
        seeds = np.repeat(x, results.shape[1])
        axes[k].plot(seeds, results[:, :, k].ravel(), "k.", alpha=0.4, label="one seed")
        style(axes[k], xlabel="sigmoid hidden layers (width 10)", ylabel=label, logy=k == 0)
        axes[k].set_xticks(x)
        axes[k].grid(True, alpha=0.3)
    title = "Spirals: depth buys capacity until the gradient vanishes"
    fig.suptitle(f"{title} ({settings})" if settings else title)
    fig.tight_layout()


def plot_latch_tradeoff(w_grid: Any, survival: Any, rho: Any, *, T: int, noise_std: float) -> None:
    r"""Against the recurrent weight :math:`w`: the fraction of noisy runs that still hold the bit
    after ``T`` steps (left axis) and the gradient over ``T`` steps, :math:`\rho^T` (right, log)."""
    fig, ax = panels(width=6.5, height=3.6)
    w_grid = _np(w_grid)
    ax.plot(w_grid, _np(survival), "o-", color="C0", label=f"bit still held after {T} noisy steps")
    style(ax, xlabel="recurrent weight w", ylabel="fraction of runs", legend="none")
    ax.set(ylim=(0, 1.05), title=f"Latch: robustness vs gradient (noise std {noise_std})")
    right = ax.twinx()
    label = rf"$\rho^{{{T}}}$ (gradient over {T} steps)"
    right.plot(w_grid, _np(rho) ** T, "s--", color="C3", label=label)
    style(right, logy=True, ylabel=r"$|\partial a_T/\partial a_0| \approx \rho^T$", legend="none")
    right.grid(False)
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="lower left", fontsize=SMALL)  # the empty corner
    fig.tight_layout()
