"""Lesson 01's figures: the loss under gradient descent, the backward signal per layer, and the
gradient check's error against step size, per tensor, per entry, against depth and for a bug.

Each function draws one figure of the notebook (shown at the end of the cell, as any pyplot figure)
from numbers the notebook computed, so a plotting cell is one call; what the lesson teaches (the δ
recursion, the finite differences) stays in the notebook.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from ..plot_style import panels, style

#: CS231n's rules of thumb for the relative error of a gradient check
VERDICT_LINES = ((1e-2, "probably wrong"), (1e-4, "uncomfortable"), (1e-7, "good below"))


def _short(name: str) -> str:
    return name.replace(".linear", "")


def plot_descent(losses: Sequence[float], first_order: tuple[float, float], lr: float) -> None:
    """The loss per update, with the first-order prediction of the first step."""
    fig, ax = panels(width=6, height=3.4)
    ax.plot(range(len(losses)), losses, "o-", ms=3, label=f"gradient descent, lr = {lr}")
    ax.plot([0, 1], first_order, "r--", label=r"first-order prediction $-\eta\|g\|^2$")
    style(
        ax,
        xlabel="update",
        ylabel=r"loss $\frac{1}{2}(\hat y - y)^2$",
        logy=True,
        title="The four steps, repeated",
    )
    fig.tight_layout()


def plot_delta_study(study: Mapping[int, dict]) -> None:
    """Left: ‖δ_ℓ‖ per layer for each seed. Right: the measured shrink factor per layer beside its
    bound max σ'·‖W_{ℓ+1}‖₂ and the 1/4 line (``study``: seed -> the lesson's ``delta_study``)."""
    fig, (left, right) = panels(2, width=5.5)
    for s, run in study.items():
        norms, bound = run["norms"], run["bound"]
        layers = np.arange(1, len(norms) + 1)
        left.plot(layers, norms, "o-", ms=3, color=f"C{s}", label=f"seed {s}")
        right.plot(
            layers[:-1],
            norms[:-1] / norms[1:],
            "o-",
            ms=3,
            color=f"C{s}",
            label=f"seed {s}: measured",
        )
        right.plot(layers[:-1], bound, "x:", color=f"C{s}", label=f"seed {s}: bound")
    right.axhline(0.25, color="C3", ls="--", label=r"$1/4$")
    style(
        left,
        ylabel=r"$\|\delta_\ell\|$",
        logy=True,
        layers=True,
        title="Backward signal per layer (last = output)",
    )
    right.set_ylim(0, 0.45)
    style(
        right,
        xlabel=r"layer $\ell$",
        ylabel=r"$\|\delta_\ell\| / \|\delta_{\ell+1}\|$",
        layers=True,
        title=r"Shrink factor vs $\max\sigma'\cdot\|W_{\ell+1}\|_2$",
    )
    fig.tight_layout()


def plot_step_size_sweep(hs: np.ndarray, sweep: Mapping[torch.dtype, np.ndarray]) -> None:
    """Relative error of central differences against the step size h, per precision, with the
    fitted ε/h rounding lines, the h² truncation line and CS231n's 1e-7."""
    rounding_range = {torch.float32: (1e-6, 1e-3), torch.float64: (1e-12, 1e-8)}
    fig, ax = panels(width=10, height=4.2)
    for (dtype, err), color in zip(sweep.items(), ("C1", "C0")):
        name, eps = str(dtype).replace("torch.", ""), torch.finfo(dtype).eps
        ax.plot(hs, err, "o-", ms=3, color=color, label=f"{name}: max relative error")
        lo, hi = rounding_range[dtype]
        sel = (hs >= lo) & (hs <= hi)
        k = np.median(err[sel] * hs[sel] / eps)  # the constant of the eps/h line
        ax.plot(
            hs,
            k * eps / hs,
            ":",
            color=color,
            lw=1,
            label=rf"rounding $\propto \epsilon/h$ ({name})",
        )
    right = (hs >= 1e-3) & (hs <= 1e-1)
    c2 = np.median(sweep[torch.float64][right] / hs[right] ** 2)
    ax.plot(hs, c2 * hs**2, "k--", lw=1, label=r"truncation $\propto h^2$")
    ax.axhline(1e-7, color="C2", lw=1, label="CS231n: good below 1e-7")
    ax.axvline(
        1e-6, color="0.5", lw=0.8, ls="-.", label="h = 1e-6 (torch.autograd.gradcheck default)"
    )
    ax.set_ylim(1e-12, 3)
    style(
        ax,
        xlabel="step size h",
        ylabel="relative error vs. exact gradient",
        logx=True,
        logy=True,
        legend="outside",
        title="Central differences: truncation vs rounding (2-2-1 net, 9 parameters)",
    )
    fig.tight_layout()


def _verdict_lines(ax, x_text: float) -> None:
    for level, text in VERDICT_LINES:
        ax.axhline(level, color="0.4", ls="--", lw=0.8)
        ax.text(x_text, level, text, fontsize=7, ha="right", va="bottom")


def _tensor_bars(ax, reports: Mapping[str, Mapping[str, float]], colors: Sequence[str]) -> None:
    """Grouped bars: one group per parameter tensor, one bar per report."""
    names = list(next(iter(reports.values())))
    width = 0.8 / len(reports)
    for j, ((label, rep), color) in enumerate(zip(reports.items(), colors)):
        offset = (j - (len(reports) - 1) / 2) * width
        ax.bar(np.arange(len(names)) + offset, list(rep.values()), width, color=color, label=label)
    ax.set_xticks(
        range(len(names)), [_short(n) for n in names], rotation=30, fontsize=7, ha="right"
    )
    _verdict_lines(ax, len(names) - 0.5)


def plot_check_per_tensor(
    report: Mapping[float, Mapping[str, float]],
    g_a: torch.Tensor,
    r: torch.Tensor,
    envelope: torch.Tensor,
    owner: np.ndarray,
) -> None:
    """Left: gradient_check's largest relative error per tensor at each h. Right: each entry's
    error against its gradient |g_a|, under the rounding envelope ε|L|/(h|g_a|)."""
    fig, (left, right) = panels(2, width=5.75, height=3.8)
    _tensor_bars(left, {f"h = {h:.0e}": rep for h, rep in report.items()}, ("C0", "C1"))
    style(left, ylabel="max relative error", logy=True, title="gradient_check per parameter tensor")
    for i, name in enumerate(next(iter(report.values()))):
        sel = owner == i
        right.plot(g_a.abs()[sel], r[sel], "o", ms=3, label=_short(name))
    order = torch.argsort(g_a.abs())
    right.plot(g_a.abs()[order], envelope[order], "k--", lw=1, label=r"$\epsilon|L|/(h|g_a|)$")
    style(
        right,
        xlabel=r"$|g_a|$ (gradient entry)",
        ylabel="relative error",
        logx=True,
        logy=True,
        title="Each entry at h = 1e-6",
    )
    fig.tight_layout()


def plot_check_vs_depth(rows: np.ndarray, depths: Sequence[int], median) -> None:
    """Left: the first and output layers' errors against depth (each seed and the median).
    Right: the first layer's gradient norm against depth. ``rows``: (depth, seed, first-layer
    error, output-layer error, first-layer gradient norm); ``median(col)``: per depth."""
    fig, (left, right) = panels(2, width=5.5)
    left.plot(
        rows[:, 0], rows[:, 2], "o", color="C3", alpha=0.5, ms=4, label="first layer (each seed)"
    )
    left.plot(depths, median(2), "-", color="C3", label="first layer (median)")
    left.plot(
        rows[:, 0], rows[:, 3], "s", color="C0", alpha=0.5, ms=4, label="output layer (each seed)"
    )
    left.axhline(1e-7, color="C2", lw=1, label="good below 1e-7")
    left.axhline(1e-2, color="0.4", ls="--", lw=0.8, label="'probably wrong' above 1e-2")
    style(
        left,
        xlabel="depth (hidden layers)",
        ylabel="max relative error (h = 1e-6)",
        logy=True,
        title="Gradient check vs depth (backprop is correct)",
    )
    right.plot(rows[:, 0], rows[:, 4], "o", color="C3", alpha=0.5, ms=4)
    right.plot(depths, median(4), "-", color="C3")
    style(
        right,
        xlabel="depth (hidden layers)",
        ylabel=r"$\|\partial L/\partial W_1\|$",
        logy=True,
        title="First layer's gradient norm vs depth",
    )
    fig.tight_layout()


def plot_bug_report(correct: Mapping[str, float], buggy: Mapping[str, float]) -> None:
    """gradient_check's error per tensor for the correct and the buggy sigmoid backward (h = 1e-4)."""
    fig, ax = panels(width=7, height=3.4)
    _tensor_bars(ax, {"correct sigmoid": correct, "buggy backward": buggy}, ("C0", "C3"))
    style(
        ax,
        ylabel="max relative error (h = 1e-4)",
        logy=True,
        title="gradient_check finds the bug, and where it is",
    )
    fig.tight_layout()
