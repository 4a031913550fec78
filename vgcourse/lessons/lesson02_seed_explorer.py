r"""Explorer of the seed experiment: which layers move under Adam and SGD, and when.

Lesson 02 ("chain-rule shrinkage"). :func:`seed_experiment_explorer` replays the runs of a
:class:`.lesson02_seed_experiment.SeedExperiment`: the relative weight change
:math:`\|W_t - W_0\|_F / \|W_0\|_F` of every layer at a chosen step :math:`t`, and the training
loss. Under SGD the first layer's bar collapses (its gradient is the product of nine Jacobians
with :math:`\sigma' \le 1/4`); under Adam, whose step is about :math:`\eta\,\mathrm{sign}(g)`
(Kingma & Ba 2015, Sec. 2.1), it is the tallest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import activations as _act
from .._validate import check_choice, check_int
from .lesson02_seed_experiment import SEED_OPTIMIZERS, SeedExperiment

__all__ = ["seed_experiment_explorer"]


class _SeedPanels:
    """The seed explorer's two panels, drawn once and then updated in place (``Explorer(clear=False)``).

    Left: one bar per tracked layer (log scale, fixed limits). Right: the running-mean training
    loss with the article's length and the chosen step as vertical lines.
    """

    def __init__(self, axes: list, layer_names: list[str], article_steps: int):
        from matplotlib.ticker import NullLocator

        n = len(layer_names)
        colors = ["C3"] + ["C0"] * (n - 2) + ["C2"] if n > 1 else ["C3"]
        self.ax_change, self.ax_loss = axes[0], axes[1]
        self.bars = self.ax_change.bar(layer_names, [1.0] * n, color=colors)
        self.ax_change.set(
            yscale="log",
            ylim=(1e-12, 10),
            xlabel="layer (1 = input side)",
            ylabel=r"$\|W_t - W_0\| / \|W_0\|$",
        )
        self.ax_change.yaxis.set_minor_locator(NullLocator())
        (self.loss,) = self.ax_loss.plot([], [], lw=1)
        self.ax_loss.axvline(article_steps, color="grey", ls="--", lw=1, label="100 epochs")
        self.step = self.ax_loss.axvline(0, color="C3", lw=1.5, label="step 0")
        self.ax_loss.set(xlabel="step", title="training loss")
        self.legend = self.ax_loss.legend(fontsize=7)

    def show(self, change: np.ndarray, t: int, loss: np.ndarray, width: int) -> None:
        for bar, value in zip(self.bars, np.maximum(change, 1e-12)):
            bar.set_height(value)
        self.ax_change.set_title(f"relative weight change at step {t}")
        self.loss.set_data(np.arange(width - 1, width - 1 + len(loss)), loss)
        self.step.set_xdata([t, t])
        self.legend.get_texts()[1].set_text(f"step {t}")
        self.ax_loss.set_ylabel(f"training loss ({width}-step mean)")
        self.ax_loss.relim()
        self.ax_loss.autoscale_view()


def seed_experiment_explorer(
    experiment: SeedExperiment,
    *,
    steps: Sequence[int] = (700, 1200),
    article_steps: int = 700,
    activations: Sequence[str] = ("sigmoid", "tanh", "relu"),
    lrs: Sequence[float] = (1e-3, 1e-2, 1e-1, 1.0),
    seeds: Sequence[int] = (0, 1, 2),
    activation: str = "sigmoid",
    optimizer: str = "adam",
    lr: float = 1e-3,
    seed: int = 0,
    at_step: int | None = None,
    step_increment: int = 50,
    smooth: int = 20,
):
    r"""Explorer: replay the seed experiment (:class:`SeedExperiment`) with any activation and optimizer.

    Left: the relative weight change :math:`\|W_t - W_0\|_F / \|W_0\|_F` of every layer (1 = input
    side, red; output, green) at the chosen step :math:`t`, log scale. Right: the training loss
    (``smooth``-step running mean) with :math:`t` and the article's 100 epochs (``article_steps``)
    marked. Under SGD the first layer's bar collapses (its gradient is the product of nine small
    Jacobians); under Adam, whose step is about :math:`\eta\,\mathrm{sign}(g)` (Kingma & Ba 2015,
    Sec. 2.1), it is the tallest, and the loss still sits at :math:`\ln 2` for 100 epochs.

    A new activation / optimizer / learning rate / seed / length trains the network once
    (:meth:`SeedExperiment.run`, cached, and shared with the lesson's own calls); the "show step"
    slider, the first control, only indexes into the cached per-step curves
    (:meth:`SeedExperiment.curves`). ``explorer.state`` holds the last ``settings``, the step
    ``t``, the per-layer ``change`` at ``t``, the ``loss`` curve and the :class:`SeedCurves`.
    """
    from ..widgets import Explorer, dropdown, slider

    if not isinstance(experiment, SeedExperiment):
        raise TypeError(
            "experiment must be a vgcourse.lessons.lesson02_seed_experiment.SeedExperiment, "
            f"got {type(experiment).__name__}"
        )
    if isinstance(steps, (str, bytes)) or not isinstance(steps, Sequence) or not steps:
        raise TypeError(f"steps must be a non-empty sequence of step counts, got {steps!r}")
    steps = [check_int("steps[i]", s, minimum=1) for s in steps]
    article_steps = check_int("article_steps", article_steps, minimum=1)
    for name, options, value in (
        ("activation", activations, activation),
        ("lr", lrs, lr),
        ("seed", seeds, seed),
    ):
        if isinstance(options, (str, bytes)) or not isinstance(options, Sequence) or not options:
            raise TypeError(f"{name}s must be a non-empty sequence, got {options!r}")
        check_choice(name, value, options)
    for a in activations:
        _act.canonical_name(a)
    check_choice("optimizer", optimizer, SEED_OPTIMIZERS)
    step_increment = check_int("step_increment", step_increment, minimum=1)
    smooth = check_int("smooth", smooth, minimum=1)
    longest = max(steps)
    at_step = check_int("at_step", article_steps if at_step is None else at_step, minimum=0)
    if at_step > longest:
        raise ValueError(f"at_step must be <= the longest run ({longest} steps), got {at_step}")
    n_layers = experiment.depth + 1
    layer_names = [str(i) for i in range(1, n_layers)] + ["out"]
    state: dict[str, Any] = {}
    panels: list[_SeedPanels] = []

    def update(axes, at_step, activation, optimizer, lr, seed, steps) -> str:
        curves = experiment.curves(activation, optimizer, float(lr), int(seed), int(steps))
        t = min(int(at_step), len(curves.change) - 1)
        change = curves.change[t]
        width = min(smooth, len(curves.loss))
        running = np.convolve(curves.loss, np.ones(width) / width, mode="valid")
        state.update(
            settings=dict(
                activation=activation, optimizer=optimizer, lr=lr, seed=seed, steps=steps
            ),
            t=t,
            change=change,
            loss=running,
            curves=curves,
        )
        if not axes[0].patches:  # a fresh figure, or the explorer wiped it after an error
            panels[:] = [_SeedPanels(axes, layer_names, article_steps)]
        panels[0].show(change, t, running, width)
        accuracy = (
            "" if math.isnan(curves.test_accuracy) else f", test acc {curves.test_accuracy:.0%}"
        )
        return (
            f"{activation} + {optimizer} (lr {lr:g}, seed {seed}) at step {t}: layer-1 change "
            f"{change[0]:.2g}, output {change[-1]:.2g} | after {curves.steps} steps: loss "
            f"{curves.final_loss:.3f}{accuracy}"
        )

    controls = {
        "at_step": slider(at_step, 0, longest, step_increment, "show step", integer=True),
        "activation": dropdown(list(activations), activation, "activation"),
        "optimizer": dropdown(list(SEED_OPTIMIZERS), optimizer, "optimizer"),
        "lr": dropdown(list(lrs), lr, "learning rate"),
        "seed": dropdown(list(seeds), seed, "seed"),
        "steps": dropdown(steps, longest, "train for"),
    }
    explorer = Explorer(
        update,
        controls,
        caption="slide through training; switch adam to sgd and watch layer 1's bar collapse; "
        "then try relu, or sgd with lr 0.1. A new setting trains once (a few seconds); the rest "
        "is cached.",
        title="Seed experiment: which layers move, and when?",
        clear=False,  # the panels move their artists: no ticks and texts rebuilt per redraw
    )
    explorer.state = state
    return explorer
