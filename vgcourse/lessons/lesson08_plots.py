r"""Lesson 08's plots of the cliff: the loss surface of the one-unit RNN over (w, b) with the gradient
descent trajectories on it, and the gradient-norm trace of a run with its clipped steps marked."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm

from .._validate import check_positive
from ..train import History
from .lesson08_clipping import _array, cliff_bias, critical_weight


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
