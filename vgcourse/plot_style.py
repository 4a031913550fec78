"""What every figure of the course repeats, written once, so a lesson's plotting cell stays short.

* :func:`panels`: a row (or grid) of axes sized for a notebook;
* :func:`style`: labels, log axes with a grid, integer ticks for layer axes, a legend off the data;
* :func:`line_colors`: one fixed colour per configuration, the same in every panel of a figure;
* :func:`plot_lines`: curves ``label -> y`` (or ``label -> (x, y)``), with optional dotted
  companions (a prediction beside each measurement) in the same colour;
* :func:`shared_norm`: one colour scale for heatmaps that are compared side by side;
* :func:`show`: tight layout, then display.

A typical cell::

    fig, (ax1, ax2) = vg.plots.panels(2)
    vg.plots.plot_lines(act, ax=ax1, dotted=predicted_act, layers=True, logy=True,
                        ylabel=r"$E[h_\\ell^2]$", title="forward")
    vg.plots.plot_lines(grad, ax=ax2, layers=True, logy=True, ylabel="gradient", title="backward")
    vg.plots.show(fig)

All of these are also reachable as ``vg.plots.<name>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullLocator

from ._validate import check_choice, check_int, check_positive

__all__ = ["LAYER_LABEL", "line_colors", "panels", "plot_lines", "shared_norm", "show", "style"]

#: the x label of every per-layer plot of the course
LAYER_LABEL = "layer (1 = nearest the input)"
#: font size of legends and small annotations
SMALL = 8
_LEGEND_PLACES = ("best", "outside", "none")


def panels(
    ncols: int = 1,
    nrows: int = 1,
    *,
    width: float = 5.0,
    height: float = 3.6,
    **subplot_kw: Any,
) -> tuple[Figure, Any]:
    """A figure of ``nrows x ncols`` axes, each ``width x height`` inches; returns ``(fig, axes)``.

    ``axes`` is one Axes for a single panel, else a flat array (``fig, (ax1, ax2) = panels(2)``).
    Extra keywords go to :func:`matplotlib.pyplot.subplots` (``sharey=True``, ...).
    """
    ncols, nrows = check_int("ncols", ncols, minimum=1), check_int("nrows", nrows, minimum=1)
    width, height = check_positive("width", width), check_positive("height", height)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), **subplot_kw)
    if isinstance(axes, np.ndarray):
        axes = axes.ravel()
    return fig, axes


def line_colors(labels: Iterable[Any]) -> dict[Any, Any]:
    """One colour per label, in order (matplotlib's default cycle): pass the same mapping to every
    panel of a figure so a configuration has one colour throughout."""
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {label: cycle[i % len(cycle)] for i, label in enumerate(dict.fromkeys(labels))}


def style(
    ax: Axes,
    *,
    xlabel: str | None = None,
    ylabel: str | None = None,
    title: str | None = None,
    logx: bool = False,
    logy: bool = False,
    layers: bool = False,
    legend: str = "best",
) -> Axes:
    """Label ``ax`` and apply the course's conventions; returns ``ax``.

    ``logx``/``logy``: log scale with a major grid (minor ticks dropped when the axis spans more
    than 4 decades: they clutter and cost a redraw). ``layers=True``: the x axis counts layers,
    integer ticks, labelled :data:`LAYER_LABEL` unless ``xlabel`` is given. ``legend``: ``"best"``
    (inside, where it covers least data), ``"outside"`` (right of the axes) or ``"none"``; a legend
    is drawn only when some artist has a label.
    """
    check_choice("legend", legend, _LEGEND_PLACES)
    if layers:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        xlabel = xlabel or LAYER_LABEL
    for on, axis, set_scale in ((logx, ax.xaxis, ax.set_xscale), (logy, ax.yaxis, ax.set_yscale)):
        if on:
            set_scale("log")
            lo, hi = axis.get_view_interval()
            if lo > 0 and hi / lo > 1e4:
                axis.set_minor_locator(NullLocator())
    if logx or logy:
        ax.grid(True, which="major", alpha=0.3)
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)
    _, labels = ax.get_legend_handles_labels()
    if labels and legend == "best":
        ax.legend(fontsize=SMALL, framealpha=0.8)
    elif labels and legend == "outside":
        ax.legend(fontsize=SMALL, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    return ax


def _xy(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """``y`` (x = 1, 2, ...) or an ``(x, y)`` pair as float arrays."""
    if isinstance(values, tuple) and len(values) == 2:
        x, y = (np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v) for v in values)
    else:
        y = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values)
        x = np.arange(1, len(y) + 1)
    x, y = x.astype(float), y.astype(float)
    if x.shape != y.shape or y.ndim != 1:
        raise ValueError(f"a curve needs x and y of one equal length, got {x.shape} and {y.shape}")
    return x, y


def plot_lines(
    curves: Mapping[Any, Any] | Sequence[float],
    *,
    ax: Axes | None = None,
    dotted: Mapping[Any, Any] | None = None,
    colors: Mapping[Any, Any] | None = None,
    marker: str | None = None,
    **style_kw: Any,
) -> Axes:
    """Draw ``curves`` (``label -> y`` or ``label -> (x, y)``; one bare sequence for one curve) on
    ``ax`` and :func:`style` it with ``style_kw`` (``xlabel``, ``logy``, ``layers``, ...).

    ``dotted`` holds companion curves under the same labels (a prediction, a reference), drawn
    dotted in the curve's colour; ``colors`` fixes a colour per label (see :func:`line_colors`).
    On a log axis, values <= 0 are left out rather than drawn at the bottom.
    """
    if ax is None:
        _, ax = panels()
    if not isinstance(curves, Mapping):
        curves = {None: curves}
    colors = dict(colors) if colors is not None else line_colors(curves)
    log_y = style_kw.get("logy", False)
    for label, values in curves.items():
        x, y = _xy(values)
        if log_y:
            y = np.where(y > 0, y, np.nan)
        color = colors.get(label)
        ax.plot(x, y, marker=marker, ms=3, color=color, label=None if label is None else label)
        if dotted is not None and label in dotted:
            dx, dy = _xy(dotted[label])
            ax.plot(dx, np.where(dy > 0, dy, np.nan) if log_y else dy, ":", color=color)
    return style(ax, **style_kw)


def shared_norm(arrays: Iterable[Any], *, log: bool = True) -> Normalize:
    """One colour scale covering every array (for heatmaps compared side by side): a ``LogNorm``
    over the positive finite values when ``log``, else a linear ``Normalize``."""
    values = np.concatenate(
        [
            np.asarray(a.detach().cpu() if isinstance(a, torch.Tensor) else a, float).ravel()
            for a in arrays
        ]
    )
    values = values[np.isfinite(values) & (values > 0 if log else True)]
    if values.size == 0:
        raise ValueError(
            "shared_norm needs at least one finite (and, with log=True, positive) value"
        )
    lo, hi = float(values.min()), float(values.max())
    return LogNorm(lo, hi) if log else Normalize(lo, hi)


def show(fig: Figure | None = None) -> None:
    """Tight layout, then show ``fig`` (the current figure when ``None``)."""
    (fig or plt.gcf()).tight_layout()
    plt.show()
