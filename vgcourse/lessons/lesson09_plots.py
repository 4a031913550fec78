r"""Lesson 09's figures and tables: the repairs compared, greedy pretraining's reconstruction
curves, SGD and Adam fine-tuning, the depth trade-off and the timing of the batched sweep.

Each function draws one figure (or writes one Markdown table) of the notebook from numbers the
notebook computed, so a plotting cell is one call; what the lesson teaches (the experiments, the
entropy floor of a reconstruction, the measurements) stays in the notebook.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes

from ..plot_style import SMALL, line_colors, panels, show, style
from ..train import History
from .lesson09_capstone import CASES, FIXES, Clinic

__all__ = [
    "plot_adam_finetuning",
    "plot_depth_tradeoff",
    "plot_pretraining",
    "plot_repairs",
    "plot_sgd_finetuning",
    "plot_timings",
    "repair_table",
    "timing_table",
]

#: a run of the clinic (``Clinic.run``'s dict) or of the lesson's fine-tuning (``history`` and more)
Run = Mapping[str, Any]


def _running_mean(values: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Running mean over ``k`` steps (non-finite values as 0) and the step of each window's end."""
    values = np.asarray(values, dtype=float)
    if k <= 1 or len(values) < k:
        return np.arange(len(values)), values
    finite = np.where(np.isfinite(values), values, 0.0)
    return np.arange(k - 1, len(values)), np.convolve(finite, np.ones(k) / k, mode="valid")


def _loss_curve(ax: Axes, history: History, label: str, color: Any, smooth: int, **kw) -> None:
    """A training loss (running mean of ``smooth`` steps); a cross where the run diverged."""
    loss = np.asarray(history.loss, dtype=float)
    if history.diverged_at is not None:
        label = f"{label} (diverged at step {history.diverged_at})"
        finite = loss[np.isfinite(loss)]
        ax.plot(np.arange(len(loss)), loss, color=color, lw=1.2, label=label, **kw)
        last = finite[-1] if len(finite) else 1.0
        ax.plot([history.diverged_at], [last], "x", color=color, ms=10, mew=2)
        return
    ax.plot(*_running_mean(loss, smooth), color=color, lw=1.2, label=label, **kw)


def _level_line(ax: Axes, level: float, label: str) -> None:
    ax.axhline(level, color="grey", ls=":", lw=1, label=label)


def repair_table(results: Mapping[tuple[str, str], Sequence[Run]]) -> str:
    """The comparison table of section 2.2 as Markdown: per (case, fix), the findings of seed 0
    before and after training, the final loss (median and range over the seeds, or the steps at
    which they diverged), the median first/last gradient ratio after training and the median
    seconds of training."""
    lines = [
        "| broken model | fix (lesson) | problems at init | problems after training | "
        "loss after budget: median (range) | grad ratio first/last | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for case, fix in sorted(results, key=lambda row: list(CASES).index(row[0])):
        runs = results[case, fix]
        first = runs[0]
        losses = [r["history"].final_loss for r in runs]
        diverged = [r["history"].diverged_at for r in runs]
        if None not in diverged:
            loss_text = f"diverged at steps {diverged}"
        else:
            loss_text = f"{np.median(losses):.3g} ({min(losses):.3g}-{max(losses):.3g})"
        ratios = np.array([r["ratio"] for r in runs], dtype=float)
        if np.all(np.isnan(ratios)):
            ratio_text = "nan"
        else:
            ratio_text = f"{np.nanmedian(ratios):.2g}" + (
                " + nan" if np.isnan(ratios).any() else ""
            )
        seconds = np.median([r["history"].seconds for r in runs])
        fix_text = "-" if fix == "none" else f"{fix} ({FIXES[fix].lesson})"
        before = ", ".join(first["before"].problems) or "none"
        after = ", ".join(first["after"].problems) or "none"
        lines.append(
            f"| {case} | {fix_text} | {before} | {after} | {loss_text} | {ratio_text} "
            f"| {seconds:.2f} |"
        )
    return "\n".join(lines)


def plot_repairs(clinic: Clinic, pairs: Sequence[tuple[str, str]], seed: int = 0) -> None:
    """The training loss of each broken model (one panel per case) and of its repairs, seed
    ``seed``, on a log scale, with the case's "learned nothing" level dotted; one colour per fix
    across the panels."""
    colors = line_colors(["broken", *(fix for _, fix in pairs)])
    fig, axes = panels(2, 2, width=6.0, height=3.5)
    for i, (ax, case) in enumerate(zip(axes, CASES)):
        for fix in ["none", *(f for c, f in pairs if c == case)]:
            label = "broken" if fix == "none" else fix
            _loss_curve(ax, clinic.run(case, fix, seed)["history"], label, colors[label], 10)
        rnn = CASES[case].kind == "rnn"
        _level_line(ax, clinic.level(case), "predict-1 baseline" if rnn else "chance (ln 10)")
        style(
            ax,
            xlabel="step",
            ylabel="MSE" if rnn else "cross-entropy",
            title=f"({'abcd'[i]}) {case}: training loss, seed {seed}",
            logy=True,
        )
    show(fig)


def plot_pretraining(losses: Sequence[Any], floors: Sequence[float], smooth: int = 5) -> None:
    """Each layer's reconstruction cross-entropy during greedy pretraining (running mean of
    ``smooth`` steps), with the entropy floor of that layer's input dotted in its colour."""
    fig, ax = panels(1, width=7.5, height=3.8)
    colors = line_colors(range(len(losses)))
    for layer, (curve, floor) in enumerate(zip(losses, floors)):
        ax.plot(*_running_mean(curve, smooth), color=colors[layer], label=f"layer {layer + 1}")
        ax.axhline(floor, color=colors[layer], ls=":", lw=1)
    style(
        ax,
        xlabel="autoencoder step (per layer)",
        ylabel="reconstruction cross-entropy",
        title="Greedy pretraining, seed 0 (dotted: entropy floor of each layer's input)",
        legend="outside",
    )
    show(fig)


def plot_sgd_finetuning(runs: Mapping[tuple[str, int], Run], chance: float) -> None:
    """SGD fine-tuning from random and from pretrained weights: left, the training loss (running
    mean of 20 steps, log scale); right, the top hidden layer's mean activation +- its std at each
    probe. One colour per (init, seed) in both panels; random init solid, pretrained dashed."""
    colors = line_colors(runs)
    fig, (ax_loss, ax_top) = panels(2, width=6.0, height=3.8)
    for (init, s), r in runs.items():
        h, ls = r["history"], "-" if init == "random" else "--"
        _loss_curve(ax_loss, h, f"{init}, seed {s}", colors[init, s], 20, ls=ls)
        mean, std = h.stats["act_mean"][:, -1], h.stats["act_std"][:, -1]
        ax_top.plot(h.stats_steps, mean, ls, marker="o", ms=3, color=colors[init, s])
        ax_top.fill_between(h.stats_steps, mean - std, mean + std, color=colors[init, s], alpha=0.1)
    _level_line(ax_loss, chance, "chance (ln 10)")
    style(
        ax_loss,
        xlabel="SGD step",
        ylabel="cross-entropy",
        logy=True,
        title="SGD fine-tuning (running mean of 20 steps)",
    )
    ax_top.set_ylim(0, 1)
    style(
        ax_top,
        xlabel="SGD step",
        ylabel="top hidden layer: mean ± std",
        title="Top hidden layer (cf. Glorot & Bengio 2010, sec. 3.1)",
    )
    show(fig)


def plot_adam_finetuning(
    runs: Mapping[tuple[str, int], Run], names: Mapping[str, str], chance: float
) -> None:
    """Adam fine-tuning of each start (``names``: init -> label), every seed, running mean of 20
    steps on a log scale; one colour per start, one line style per seed."""
    colors = line_colors(names)
    fig, ax = panels(1, width=7.5, height=3.8)
    seeds = list(dict.fromkeys(s for _, s in runs))
    for (init, s), r in runs.items():
        ls = ["-", "--", ":", "-."][seeds.index(s) % 4]
        _loss_curve(ax, r["history"], f"{names[init]}, seed {s}", colors[init], 20, ls=ls)
    _level_line(ax, chance, "chance (ln 10)")
    style(
        ax,
        xlabel="Adam step",
        ylabel="cross-entropy",
        title="Adam fine-tuning (running mean of 20 steps)",
        logy=True,
        legend="outside",
    )
    show(fig)


def plot_depth_tradeoff(
    depths: Sequence[int],
    accuracy: Mapping[int, Sequence[float]],
    ratio: Mapping[int, Any],
    chance: float,
) -> None:
    """The depth sweep: left, the training accuracy per seed (dots) and its median (line) against
    the number of hidden layers, chance dotted; right, the median first/last hidden-layer gradient
    ratio at initialization on a log scale (``chance``: the accuracy of a guess)."""
    fig, (ax_acc, ax_ratio) = panels(2, width=5.5, height=3.6)
    for d in depths:
        ax_acc.plot([d] * len(accuracy[d]), accuracy[d], "o", color="tab:blue", alpha=0.4, ms=4)
    ax_acc.plot(depths, [np.median(accuracy[d]) for d in depths], "-", color="tab:blue")
    ax_acc.axhline(chance, color="grey", ls=":", lw=1)
    ax_acc.set_ylim(0, 1.05)
    hidden = "number of hidden sigmoid layers"
    style(ax_acc, xlabel=hidden, ylabel="training accuracy after 200 steps", layers=True)
    ax_acc.set_title("capacity: training accuracy (dotted: chance)")
    ax_ratio.plot(depths, [np.median(ratio[d]) for d in depths], "s--", color="tab:red")
    style(
        ax_ratio, xlabel=hidden, ylabel="first / last layer gradient norm", logy=True, layers=True
    )
    ax_ratio.set_title("gradient flow at init (median over seeds)")
    show(fig)


def timing_table(timings: Sequence[tuple[str, str, float]], n_models: int, steps: int) -> str:
    """The timings of section 5 (device, method, seconds) as Markdown, with the throughput."""
    lines = [
        f"| device | method | seconds for {n_models} models x {steps} steps | "
        "models x steps per second |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {dev} | {method} | {sec:.3f} | {n_models * steps / sec:,.0f} |"
        for dev, method, sec in timings
    ]
    return "\n".join(lines)


def plot_timings(timings: Sequence[tuple[str, str, float]], n_models: int) -> None:
    """The seconds each way of running the same sweep took, as horizontal bars."""
    fig, ax = panels(1, width=7.0, height=0.6 + 0.6 * len(timings))
    ax.barh([f"{dev}: {method}" for dev, method, _ in timings], [s for *_, s in timings])
    for y, (*_, seconds) in enumerate(timings):
        ax.text(seconds, y, f" {seconds:.2f} s", va="center", fontsize=SMALL)
    style(ax, xlabel="seconds", title=f"The same sweep of {n_models} models, {len(timings)} ways")
    show(fig)
