r"""Lesson 04's figures: the symmetry problem, per-layer second moments (measured and derived), the
checks of a single layer, the weight scale of each scheme, the tanh gain study, and the three
reproductions (Glorot & Bengio 2010, He et al. 2015, Saxe et al. 2014).

Each function draws one figure of the notebook from numbers the notebook computed (shown at the end
of the cell, as any pyplot figure), so a plotting cell is one call; what the lesson teaches (the
variance recursion, the measurements, the predictions) stays in the notebook.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.colors import Normalize

from ..plot_style import SMALL, line_colors, panels, style
from ..plots import plot_histograms, plot_loss
from ..train import History
from .lesson04_initialization import Propagation

#: y labels of the forward and the backward panel of a propagation figure
FORWARD_LABEL = r"$E[h_\ell^2]$"
BACKWARD_LABEL = r"$E[(\partial L/\partial a_\ell)^2]$"
_OPTIMIZER_NAMES = {"momentum": "SGD + momentum", "adam": "Adam", "sgd": "SGD"}


def _np(values: Any) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
    return np.asarray(values, dtype=float)


def _ln10(ax: Axes) -> None:
    ax.axhline(math.log(10), color="grey", ls=":", label=r"$\ln 10$")


def plot_symmetry(results: Mapping[str, tuple[History, float]], nets: Mapping[str, Any]) -> None:
    """Left: the training losses of the zero, constant and random inits. Middle and right: layer 1's
    weights after training for the last two nets, on one colour scale."""
    fig, axes = panels(3, width=4.7, height=3.8)
    plot_loss({k: h for k, (h, _) in results.items()}, ax=axes[0], log=False, smooth=10)
    _ln10(axes[0])
    style(axes[0], title="training loss, tanh net 2 x 32 units")
    shown = {name: _np(nets[name].hidden_layers[0].weight) for name in list(nets)[-2:]}
    vmax = max(float(np.abs(w).max()) for w in shown.values())
    for ax, (name, weight) in zip(axes[1:], shown.items()):
        image = ax.imshow(weight, aspect="auto", cmap="RdBu_r", norm=Normalize(-vmax, vmax))
        fig.colorbar(image, ax=ax, label="weight")
        style(ax, xlabel="input pixel j", ylabel="unit i", title=f"layer-1 weights after\n{name}")
    fig.tight_layout()


def plot_propagation(
    measured: Mapping[str, Propagation | Sequence[Propagation]],
    predicted: Mapping[str, Propagation] | None = None,
    *,
    axes: Sequence[Axes] | None = None,
    dots: bool = False,
) -> None:
    """Forward :math:`E[h_\\ell^2]` and backward :math:`E[(\\partial L/\\partial a_\\ell)^2]` per
    layer, one colour per net; ``predicted`` dashed in the same colour.

    A value of ``measured`` may be a list of runs (seeds), drawn faintly in the label's colour.
    ``dots``: measurements as dots only (so the predicted line shows through them).
    """
    if axes is None:
        fig, axes = panels(2, width=5.6, height=3.8)
    colors = line_colors(measured)
    note = (
        "" if predicted is None else f" ({'dots' if dots else 'solid'}: measured, dashed: derived)"
    )
    for ax, field, title, ylabel in (
        (axes[0], "act", "forward: activations", FORWARD_LABEL),
        (axes[1], "grad_preact", "backward: gradients", BACKWARD_LABEL),
    ):
        for label, runs in measured.items():
            runs = [runs] if isinstance(runs, Propagation) else list(runs)
            for i, run in enumerate(runs):
                y = getattr(run, field)
                ax.plot(
                    np.arange(1, len(y) + 1),
                    y,
                    "o" if dots else "o-",
                    ms=4 if dots else 3,
                    color=colors[label],
                    alpha=0.6 if len(runs) > 1 else 1.0,
                    label=label if i == 0 else None,
                )
            if predicted is not None and label in predicted:
                y = getattr(predicted[label], field)
                ax.plot(np.arange(1, len(y) + 1), y, "--", lw=1, color=colors[label])
        style(ax, ylabel=ylabel, title=title + note, logy=True, layers=True)
    axes[0].figure.tight_layout()


def plot_linear_check(linear_check: Mapping[str, tuple[float, float, float]]) -> None:
    """For each input distribution: the measured :math:`E[a^2]` of a linear layer beside the
    second-moment and the variance formula."""
    fig, ax = panels(width=7, height=3.4)
    for k, (name, values) in enumerate(linear_check.items()):
        ax.bar(np.arange(3) + 0.38 * k, values, width=0.36, label=name)
    ax.set_xticks(np.arange(3) + 0.19, ["measured E[a^2]", "n Var(w) E[x^2]", "n Var(w) Var(x)"])
    style(ax, ylabel="second moment of a", title="a linear layer: what propagates is E[x^2]")
    fig.tight_layout()


def plot_kept_moment(
    qs: Any, quadrature: Mapping[str, Any], monte_carlo: Mapping[str, Any]
) -> None:
    r"""The ratio :math:`E[\phi(a)^2]/q` per activation against :math:`q`: quadrature (lines) and
    Monte Carlo (dots)."""
    fig, ax = panels(width=6.5, height=3.6)
    colors = line_colors(quadrature)
    for act, ratio in quadrature.items():
        ax.plot(qs, ratio, color=colors[act], label=f"{act} (quadrature)")
        ax.plot(qs, monte_carlo[act], "o", ms=3, color=colors[act])
    style(
        ax,
        xlabel=r"$q = E[a^2]$",
        ylabel=r"$E[\phi(a)^2] / q$",
        title="second moment kept by the activation (dots: Monte Carlo)",
        logx=True,
    )
    fig.tight_layout()


def plot_backward_check(grad_a: Any, grad_x: Any, predicted_var: float) -> None:
    r"""Histograms of :math:`\partial L/\partial a` (log density: the spike at 0) and of
    :math:`\partial L/\partial x` against the predicted Gaussian."""
    fig, (left, right) = panels(2, width=5.5, height=3.4)
    left.hist(_np(grad_a).ravel(), bins=121, density=True, log=True)
    style(
        left, xlabel="value", ylabel="density", title=r"$\partial L/\partial a$: half is exactly 0"
    )
    values = _np(grad_x).ravel()
    right.hist(values, bins=121, density=True, alpha=0.7, label="measured")
    grid = np.linspace(values.min(), values.max(), 200)
    density = np.exp(-(grid**2) / (2 * predicted_var)) / np.sqrt(2 * np.pi * predicted_var)
    label = r"$\mathcal{N}(0,\ n_{out}\mathrm{Var}(w)\,E[(\partial L/\partial a)^2])$"
    right.plot(grid, density, "k--", label=label)
    style(right, xlabel="value", ylabel="density", title=r"$\partial L/\partial x$")
    fig.tight_layout()


def plot_default_linear(weight: Any, bound: float) -> None:
    r"""The histogram of a fresh ``nn.Linear`` weight against the density of
    :math:`U(\pm 1/\sqrt{n_{in}})`."""
    fig, ax = panels(width=6.5, height=3.4)
    w = _np(weight).ravel()
    ax.hist(w, bins=60, density=True, alpha=0.7, label="fresh nn.Linear(400, 300).weight")
    ax.hlines(
        1 / (2 * bound),
        -bound,
        bound,
        colors="k",
        linestyles="--",
        label=r"$U(\pm 1/\sqrt{n_{in}})$",
    )
    ax.set_ylim(0, 1.4 / (2 * bound))  # room for the legend above the flat density
    style(ax, xlabel="weight", ylabel="density", title="PyTorch's default Linear init")
    fig.tight_layout()


def plot_scheme_scales(
    schemes: Mapping[str, tuple[float, float, float]], fan_in: int, fan_out: int
) -> None:
    r"""Per scheme: the measured :math:`n_{in}\mathrm{Var}(w)` (bars) and the formula (black marks).

    ``schemes[name] = (measured Var(w), formula Var(w), difference from torch.nn.init)``.
    """
    fig, ax = panels(width=8.5, height=3.4)
    names = list(schemes)
    ax.bar(names, [fan_in * v[0] for v in schemes.values()], alpha=0.7, label="measured")
    ax.plot(names, [fan_in * v[1] for v in schemes.values()], "k_", ms=25, mew=2, label="formula")
    ax.tick_params(axis="x", rotation=30)
    style(
        ax,
        ylabel=r"$n_{in}\,\mathrm{Var}(w)$",
        title=f"weight scale per scheme ({fan_out} x {fan_in})",
        logy=True,
    )
    fig.tight_layout()


def plot_gain_study(
    gain_runs: Mapping[str, tuple[Propagation, Propagation]],
    sigma_w2: Any,
    sweep_measured: Any,
    sweep_predicted: Any,
) -> None:
    r"""Left and middle: the deep nets of ``gain_runs`` (``label -> (measured, mean-field)``),
    forward and backward. Right: tanh's gradient ratio layer 1 / last layer against
    :math:`\sigma_w^2`, measured and mean-field (order to chaos)."""
    fig, axes = panels(3, width=5, height=3.8)
    plot_propagation(
        {k: m for k, (m, _) in gain_runs.items()},
        {k: p for k, (_, p) in gain_runs.items()},
        axes=axes[:2],
    )
    ax = axes[2]
    ax.plot(sigma_w2, sweep_measured, "o", label="measured (median of 2 seeds)")
    ax.plot(sigma_w2, sweep_predicted, "--", label="mean-field")
    ax.axhline(1, color="grey", lw=0.8)
    ax.axvline(1, color="grey", ls=":", label=r"$\sigma_w^2 = 1$")
    depth = next(iter(gain_runs.values()))[0].depth
    style(
        ax,
        xlabel=r"$\sigma_w^2 = n\,\mathrm{Var}(w)$",
        ylabel=f"gradient $E[g^2]$: layer 1 / layer {depth}",
        title=f"tanh, {depth} layers: order to chaos",
        logx=True,
        logy=True,
    )
    ax.set_xticks(_np(sigma_w2), [f"{v:g}" for v in _np(sigma_w2)])
    ax.set_xticks([], minor=True)
    fig.tight_layout()


def plot_glorot(glorot: Mapping[str, tuple[Propagation, Any]]) -> None:
    r"""Glorot & Bengio's figures for each init (``label -> (measured, mean Jacobian singular values)``):
    activation histograms per layer (top), back-propagated and weight-gradient variances per layer
    (bottom left) and the Jacobians' mean singular values against the quarter-circle law (bottom
    right)."""
    fig, axes = panels(2, 2, width=6, height=3.5)
    for ax, (label, (m, _)) in zip(axes[:2], glorot.items()):
        plot_histograms(m.act_values, ax=ax, range_=(-1, 1), xlabel=r"$h_\ell = \tanh(a_\ell)$")
        style(ax, title=f"activations, {label} init", legend="none")
    colors = line_colors(glorot)
    for label, (m, sv) in glorot.items():
        layers = np.arange(1, m.depth + 1)
        axes[2].plot(layers, m.grad_preact, "o-", ms=3, color=colors[label], label=label)
        axes[2].plot(layers, m.grad_weight, "o--", ms=3, color=colors[label])
        axes[3].plot(layers, sv, "o-", ms=3, color=colors[label], label=label)
    title = (
        r"gradients: $\partial L/\partial a_\ell$ (solid), $\partial L/\partial W_\ell$ (dashed)"
    )
    style(axes[2], ylabel="variance", title=title, logy=True, layers=True)
    for v, label in ((1 / 3, "standard"), (1.0, "normalized")):
        mean = 8 / (3 * math.pi) * math.sqrt(v)
        axes[3].axhline(mean, ls=":", color="grey")
        axes[3].annotate(f"quarter-circle mean, {label}", (1, mean + 0.01), fontsize=SMALL)
    axes[3].set_ylim(0, 1.1)
    style(
        axes[3],
        ylabel="mean singular value",
        title=r"Jacobians $\partial h_\ell/\partial h_{\ell-1}$",
        layers=True,
    )
    fig.tight_layout()


def plot_he_training(
    he_runs: Mapping[tuple[str, str, int], tuple[Any, float, float]], smooth: int = 10
) -> None:
    """Training loss (running mean of ``smooth`` steps) of every run, one panel per optimizer, one
    colour per init and seed in both panels; ``he_runs[optimizer, label, seed] = (loss, ...)``."""
    optimizers = list(dict.fromkeys(o for o, _, _ in he_runs))
    fig, axes = panels(len(optimizers), width=5.2, height=3.6, sharey=True)
    axes = np.atleast_1d(axes)
    colors = line_colors(f"{label}, seed {seed}" for _, label, seed in he_runs)
    for ax, optimizer in zip(axes, optimizers):
        for (o, label, seed), (loss, *_) in he_runs.items():
            if o == optimizer:
                key = f"{label}, seed {seed}"
                shown = np.convolve(_np(loss), np.ones(smooth) / smooth, mode="valid")
                ax.plot(shown, color=colors[key], label=key)
        _ln10(ax)
        name = _OPTIMIZER_NAMES.get(optimizer, optimizer)
        style(ax, xlabel="step", title=f"30-layer ReLU MLP, {name}", legend="none")
    axes[0].set_ylabel(f"training loss (running mean of {smooth})")
    handles, labels = axes[0].get_legend_handles_labels()  # every run of the first optimizer
    axes[-1].legend(handles, labels, fontsize=SMALL, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()


def plot_saxe_spectra(
    spectra: Mapping[tuple[str, int], Any], depths: Sequence[int], width: int
) -> None:
    """Singular values of products of ``depth`` Gaussian matrices, sorted, against rank / width,
    and the orthogonal product's; the band below float64's resolution shaded."""
    fig, ax = panels(width=7.5, height=4)
    rank = np.arange(1, width + 1) / width
    for d in depths:
        ax.plot(rank, spectra["gaussian", d], label=f"Gaussian, depth {d}")
    ax.plot(rank, spectra["orthogonal", max(depths)], "k--", label="orthogonal, every depth")
    floor = 1e-15 * float(np.max(spectra["gaussian", max(depths)]))
    ax.axhspan(1e-20, floor, color="grey", alpha=0.2, label="below float64 precision")
    ax.set_ylim(1e-20, 1e2)
    title = f"singular values of a product of {width}x{width} random matrices"
    style(ax, xlabel="rank / width", ylabel="singular value", title=title, logy=True)
    fig.tight_layout()
