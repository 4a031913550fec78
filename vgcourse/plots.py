"""Plots the lessons share: labelled axes, log scales where magnitudes span decades, divergence marked.

The shared conventions (panels, style, line_colors, plot_lines, shared_norm, show) live in
:mod:`vgcourse.plot_style` and are re-exported here. Every function draws on ``ax`` (a new figure when ``None``) and returns the axes, so lessons can
compose panels: ``fig, axes = plt.subplots(1, 2); plot_grad_norms(..., ax=axes[0])``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.ticker import NullLocator

from . import activations as _act
from .plot_style import (  # noqa: F401  (vg.plots.panels, vg.plots.style, ...)
    LAYER_LABEL,
    line_colors,
    panels,
    plot_lines,
    shared_norm,
    show,
    style,
)
from .train import History


def _axes(ax: Axes | None, figsize=(6, 3.6)) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _log_y(ax: Axes) -> None:
    """Log y axis; minor ticks only when the data span at most 4 decades (they cost a redraw dearly)."""
    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    if lo > 0 and hi / lo > 1e4:
        ax.yaxis.set_minor_locator(NullLocator())
    ax.grid(True, which="major", alpha=0.3)


def _as_dict(curves, default_label: str) -> dict:
    if isinstance(curves, Mapping):
        return dict(curves)
    return {default_label: curves}


def plot_grad_norms(
    norms,
    *,
    ax: Axes | None = None,
    title: str | None = "Gradient norm per layer",
    ylabel: str = r"$\|\partial L / \partial W_\ell\|$",
    marker: str = "o",
) -> Axes:
    """Gradient norm per layer on a log scale, layer 1 (input) on the left.

    ``norms`` is one sequence of per-layer values or a dict ``label -> values`` for several curves.
    """
    ax = _axes(ax)
    for label, values in _as_dict(norms, "").items():
        values = np.asarray(values, dtype=float)
        layers = np.arange(1, len(values) + 1)
        ax.plot(
            layers, np.where(values > 0, values, np.nan), marker=marker, ms=3, label=label or None
        )
    _log_y(ax)
    ax.set_xlabel("layer (1 = nearest the input)")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if isinstance(norms, Mapping):
        ax.legend(fontsize=8)
    return ax


def plot_loss(
    histories,
    *,
    ax: Axes | None = None,
    log: bool = True,
    title: str | None = "Training loss",
    smooth: int = 1,
) -> Axes:
    """Loss per step for one :class:`History` or a dict ``label -> History``; divergence marked with x.

    ``smooth`` > 1 shows a running mean over that many steps.
    """
    ax = _axes(ax)
    for label, h in _as_dict(histories, "").items():
        loss = np.asarray(h.loss, dtype=float)
        finite = np.where(np.isfinite(loss), loss, np.nan)
        if smooth > 1 and len(finite) >= smooth:
            kernel = np.ones(smooth) / smooth
            shown = np.convolve(np.nan_to_num(finite, nan=0.0), kernel, mode="valid")
            steps = np.arange(smooth - 1, len(finite))
        else:
            shown, steps = finite, np.arange(len(finite))
        if h.diverged_at is not None and label:
            label = f"{label} (diverged at step {h.diverged_at})"
        (line,) = ax.plot(steps, shown, label=label or None, lw=1.2)
        if h.diverged_at is not None:
            last = finite[np.isfinite(finite)]
            y = last[-1] if len(last) else 1.0
            ax.plot([h.diverged_at], [y], "x", color=line.get_color(), ms=10, mew=2)
            if not label:
                ax.text(
                    0.02,
                    0.95,
                    f"diverged at step {h.diverged_at}",
                    transform=ax.transAxes,
                    fontsize=8,
                    va="top",
                    color=line.get_color(),
                )
    if log:
        _log_y(ax)
    else:
        ax.grid(True, alpha=0.3)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if title:
        ax.set_title(title)
    if isinstance(histories, Mapping):
        ax.legend(fontsize=8)
    return ax


def plot_layer_heatmap(
    values,
    *,
    ax: Axes | None = None,
    log: bool = True,
    label: str = "gradient norm",
    title: str | None = None,
    steps: Sequence[int] | None = None,
) -> Axes:
    """A (steps x layers) statistic as a heatmap: layers on the y axis (input at the bottom), steps on x.

    ``values`` is an array or a :class:`History` (its ``grad_norms``). With ``log`` the colour scale
    is logarithmic, so a thousandfold gap between layers is visible.
    """
    ax = _axes(ax, figsize=(7, 3.2))
    data = np.asarray(values.grad_norms if isinstance(values, History) else values, dtype=float)
    if data.ndim != 2:
        raise ValueError(f"values must be 2-D (steps x layers), got shape {data.shape}")
    shown = data.T.copy()
    norm = None
    if log:
        positive = shown[np.isfinite(shown) & (shown > 0)]
        if positive.size:
            norm = LogNorm(vmin=positive.min(), vmax=positive.max())
            shown[~(shown > 0)] = np.nan
    x = np.asarray(steps) if steps is not None else np.arange(data.shape[0])
    extent = (x[0] - 0.5, x[-1] + 0.5, 0.5, data.shape[1] + 0.5) if len(x) else None
    image = ax.imshow(
        shown,
        aspect="auto",
        origin="lower",
        norm=norm,
        cmap="viridis",
        extent=extent,
        interpolation="nearest",
    )
    ax.figure.colorbar(image, ax=ax, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("layer (1 = input side)")
    if title:
        ax.set_title(title)
    return ax


def plot_histograms(
    samples,
    *,
    ax: Axes | None = None,
    bins: int = 60,
    title: str | None = None,
    xlabel: str = "value",
    range_: tuple[float, float] | None = None,
    log_y: bool = False,
) -> Axes:
    """Overlaid per-layer histograms drawn as lines (one colour per layer, darker = deeper).

    ``samples`` is a dict ``label -> values`` or a sequence of value arrays (labelled "layer 1"...).
    Histograms are densities, so layers with different numbers of values compare directly.
    """
    ax = _axes(ax)
    if not isinstance(samples, Mapping):
        samples = {f"layer {i + 1}": s for i, s in enumerate(samples)}
    cmap = plt.get_cmap("viridis")
    n = max(1, len(samples))
    arrays = {
        k: np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v, dtype=float).ravel()
        for k, v in samples.items()
    }
    finite = [a[np.isfinite(a)] for a in arrays.values() if np.isfinite(a).any()]
    if range_ is None and finite:
        allv = np.concatenate(finite)
        lo, hi = np.percentile(allv, [0.5, 99.5])
        range_ = (float(lo), float(hi)) if hi > lo else (float(lo) - 1, float(hi) + 1)
    for i, (label, a) in enumerate(arrays.items()):
        a = a[np.isfinite(a)]
        if a.size == 0:
            continue
        density, edges = np.histogram(a, bins=bins, range=range_, density=True)
        centers = 0.5 * (edges[1:] + edges[:-1])
        ax.plot(centers, density, color=cmap(i / max(1, n - 1) * 0.9), label=label, lw=1.2)
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    if title:
        ax.set_title(title)
    if len(arrays) <= 12:
        ax.legend(fontsize=7, ncol=2, loc="upper right")
    return ax


def plot_weight_trajectories(
    trajectories,
    *,
    ax: Axes | None = None,
    title: str | None = "Weights during training",
    labels: Sequence[str] | None = None,
) -> Axes:
    """Weight values against step: ``trajectories`` is (steps x k), one line per tracked weight."""
    ax = _axes(ax)
    data = np.asarray(trajectories, dtype=float)
    if data.ndim == 1:
        data = data[:, None]
    for j in range(data.shape[1]):
        ax.plot(data[:, j], lw=1, label=labels[j] if labels else None)
    ax.set_xlabel("step")
    ax.set_ylabel("weight value")
    if title:
        ax.set_title(title)
    if labels:
        ax.legend(fontsize=7)
    ax.grid(True, alpha=0.3)
    return ax


def plot_activation(
    name: str, *, ax: Axes | None = None, z_range: tuple[float, float] = (-5, 5), **kw
) -> Axes:
    """An activation function and its derivative on one axis, the saturated region shaded."""
    ax = _axes(ax, figsize=(4, 3))
    z = torch.linspace(*z_range, 801)
    y = _act.function(name, z, **kw)
    d = _act.derivative(name, z, **kw)
    ax.plot(z, y, label=r"$\phi(z)$")
    ax.plot(z, d, "--", label=r"$\phi'(z)$")
    info = _act.info(name)
    if info.family == "saturating":
        sat = (d < 0.1 * info.max_derivative).numpy()
        ax.fill_between(
            z.numpy(),
            0,
            1,
            where=sat,
            transform=ax.get_xaxis_transform(),
            color="grey",
            alpha=0.15,
            label="saturated",
        )
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("z")
    ax.set_title(name)
    ax.legend(fontsize=7)
    return ax
