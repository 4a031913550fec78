"""Lesson 03's multi-panel figures: Glorot & Bengio's saturation experiment and SELU's moments.

Each function draws one figure of the notebook (shown at the end of the cell, as any pyplot figure)
from the numbers the notebook computed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from ..plot_style import panels, style
from ..plots import plot_loss


def plot_glorot_saturation(glorot: Mapping[tuple, tuple], seed: int, width: int) -> None:
    """Mean ± std of each hidden layer's activations during training, sigmoid and tanh (cf. Glorot &
    Bengio 2010, Fig. 2), and both training losses against the ln 10 plateau.

    ``glorot[(activation, seed)] = (recorder, history, accuracy)``.
    """
    fig, axes = panels(3, width=5.3, height=4)
    for ax, act in zip(axes[:2], ["sigmoid", "tanh"]):
        rec = glorot[(act, seed)][0]
        for layer in range(rec.mean.shape[1]):
            m, s = rec.mean[:, layer], rec.std[:, layer]
            ax.plot(rec.steps, m, label=f"layer {layer + 1}")
            ax.fill_between(rec.steps, m - s, m + s, alpha=0.15)
        style(
            ax,
            xlabel="SGD step (batch size 10)",
            ylabel="activation value: mean ± std",
            title=f"{act}: 4 x {width}, standard init (cf. Glorot & Bengio Fig. 2)",
        )
    plot_loss(
        {act: glorot[(act, seed)][1] for act in ["sigmoid", "tanh"]},
        ax=axes[2],
        smooth=20,
        title="training loss (running mean of 20 steps)",
    )
    axes[2].axhline(
        math.log(10), color="grey", ls=":", label="ln 10 (predict the class frequencies)"
    )
    style(axes[2])
    fig.tight_layout()


def plot_selu_moments(moments: Mapping[str, tuple], predicted: np.ndarray) -> None:
    """Mean and variance of each layer's activations per activation and seed (``moments[act] =
    (means, variances)``, seeds x layers), with the moment map's prediction dotted."""
    fig, axes = panels(2, width=6, height=3.8)
    depth = predicted.shape[0]
    layers = np.arange(1, depth + 1)
    for color, (act, stats) in zip(["C0", "C1", "C2"], moments.items()):
        for ax, values in zip(axes, stats):
            for i, row in enumerate(values):
                ax.plot(layers, row, color=color, lw=1, label=act if i == 0 else None)
    for ax, k, what in zip(axes, (0, 1), ("mean", "variance")):
        ax.plot(layers, predicted[:, k], "k:", label="moment map g")
        style(
            ax,
            ylabel=f"{what} of the layer's activations",
            layers=True,
            logy=k == 1,
            title=f"{what} through {depth} lecun_normal layers, input mean 0.5, var 2.25",
        )
    fig.tight_layout()
