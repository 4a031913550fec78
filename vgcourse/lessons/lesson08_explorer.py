r"""Lesson 08's explorer: the learning rate and the clipping threshold (as a multiple of the median
observed gradient norm) on a log grid, the run with and without clipping, the loss and the norms."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.axes import Axes

from .._validate import check_int, check_positive
from ..train import History
from .lesson08_experiment import ClippingExperiment

if TYPE_CHECKING:
    from ..widgets import Explorer

#: The ranges of :func:`clipping_explorer`'s sliders (both logarithmic, 0.1 decade a step).
EXPLORER_LR_RANGE: tuple[float, float] = (1e-2, 1.0)


EXPLORER_MULTIPLIER_RANGE: tuple[float, float] = (0.1, 100.0)


EXPLORER_DECADE_STEP = 0.1


def _grid_exponents(bounds: tuple[float, float]) -> list[float]:
    lo, hi = (math.log10(v) for v in bounds)
    n = round((hi - lo) / EXPLORER_DECADE_STEP)
    return [round(lo + k * EXPLORER_DECADE_STEP, 6) for k in range(n + 1)]


def explorer_lrs() -> tuple[float, ...]:
    r"""Every learning rate the explorer's slider can show: :math:`10^{-2}, 10^{-1.9}, \dots, 10^0`.

    These exact floats are what :func:`clipping_explorer` trains with at each slider position, so
    runs made beforehand with them (e.g. a learning-rate sweep in the lesson) are reused.
    """
    return tuple(10.0**e for e in _grid_exponents(EXPLORER_LR_RANGE))


def _on_grid(value: float, bounds: tuple[float, float]) -> float:
    """``value`` as the canonical float of its slider position when it is one (up to rounding).

    A browser computes a log slider's value as ``10 ** x`` in JavaScript, which can differ from
    Python's float in the last bit; snapping makes equal settings hit the same cached run. Values
    between slider positions (set from code) are kept as they are.
    """
    lo = math.log10(bounds[0])
    k = round((math.log10(value) - lo) / EXPLORER_DECADE_STEP)
    canonical = 10.0 ** round(lo + k * EXPLORER_DECADE_STEP, 6)
    return canonical if math.isclose(canonical, value, rel_tol=1e-9) else value


def _in_range(name: str, value: Any, bounds: tuple[float, float]) -> float:
    value = check_positive(name, value)
    lo, hi = bounds
    if not lo * (1 - 1e-9) <= value <= hi * (1 + 1e-9):
        raise ValueError(
            f"{name} must be between {lo:g} and {hi:g} (the slider's range), got {value!r}"
        )
    return value


class _RunPlot:
    """The explorer's two panels, drawn once and then updated in place (``Explorer(clear=False)``).

    Left: the mini-batch loss (running mean of 5 steps unless the run diverged), a cross and a note
    where it diverged, chance as a dashed line. Right: the gradient norm per step before clipping,
    the clipped steps as red dots, the threshold as a dotted line, a cross where it diverged. The
    same picture as :func:`vgcourse.plots.plot_loss` and :func:`plot_norm_trace` draw, without
    rebuilding ticks and texts on every change.
    """

    def __init__(self, axes: list[Axes], chance: float):
        from matplotlib.ticker import MaxNLocator, NullLocator

        ax_loss, ax_norm = axes[0], axes[1]
        (self.loss,) = ax_loss.plot([], [], lw=1.2)
        color = self.loss.get_color()
        (self.loss_x,) = ax_loss.plot([], [], "x", color=color, ms=10, mew=2)
        ax_loss.axhline(chance, color="grey", ls="--", lw=0.8)
        self.loss_note = ax_loss.text(
            0.02, 0.95, "", transform=ax_loss.transAxes, fontsize=8, va="top", color=color
        )
        ax_loss.set(yscale="log", xlabel="step", ylabel="loss")
        (self.norm,) = ax_norm.plot([], [], lw=1.0)
        (self.dots,) = ax_norm.plot([], [], ".", ms=4, color="crimson", label="clipped step")
        self.threshold = ax_norm.axhline(1.0, color="k", ls=":", lw=1)
        (self.norm_x,) = ax_norm.plot([], [], "x", color=self.norm.get_color(), ms=10, mew=2)
        self.norm_note = ax_norm.annotate(  # left of the cross: the divergence is the last step
            "",
            (0.0, 1.0),
            xytext=(-8, -4),
            textcoords="offset points",
            ha="right",
            va="top",
            fontsize=8,
            color=self.norm.get_color(),
        )
        ax_norm.set(
            yscale="log",
            xlabel="step",
            ylabel=r"$\|g\|$ (all parameters)",
            title="Gradient norm per step (before clipping)",
        )
        for ax in (ax_loss, ax_norm):  # minor log ticks are slow to lay out; redraws are frequent
            ax.xaxis.set_major_locator(
                MaxNLocator(integer=True, steps=[1, 2, 5, 10])
            )  # whole steps
            ax.yaxis.set_minor_locator(NullLocator())
            ax.grid(True, which="major", alpha=0.3)
        self.axes = (ax_loss, ax_norm)

    def show(self, history: History, clip_norm: float | None, lr: float) -> None:
        ax_loss, ax_norm = self.axes
        d = history.diverged_at
        loss = np.asarray(history.loss, dtype=np.float64)
        finite = np.where(np.isfinite(loss), loss, np.nan)
        smooth = 1 if d is not None else 5
        if len(finite) >= smooth > 1:
            shown = np.convolve(np.nan_to_num(finite), np.ones(smooth) / smooth, mode="valid")
            self.loss.set_data(np.arange(smooth - 1, len(finite)), shown)
        else:
            self.loss.set_data(np.arange(len(finite)), finite)
        good = finite[np.isfinite(finite)]
        if d is None:
            self.loss_x.set_data([], [])
        else:
            self.loss_x.set_data([d], [good[-1] if good.size else 1.0])
        self.loss_note.set_text("" if d is None else f"diverged at step {d}")
        ax_loss.set_title(f"Mini-batch loss (lr = {lr:.3g})")

        norms = np.asarray(history.total_grad_norm, dtype=np.float64)
        norms = np.where(np.isfinite(norms) & (norms > 0), norms, np.nan)
        steps = np.arange(len(norms))
        clipped = np.asarray(history.clipped, dtype=bool)
        self.norm.set_data(steps, norms)
        self.dots.set_data(steps[clipped], norms[clipped])
        self.threshold.set_visible(clip_norm is not None)
        if clip_norm is not None:
            self.threshold.set_ydata([clip_norm, clip_norm])
            self.threshold.set_label(f"threshold {clip_norm:.3g}")
        top = np.nanmax(norms) if np.isfinite(norms).any() else 1.0
        self.norm_x.set_data(*(([], []) if d is None else ([d], [top])))
        self.norm_note.set_text("" if d is None else f"non-finite at step {d}")
        self.norm_note.xy = (0.0 if d is None else d, top)
        shown_in_legend = ((self.dots, clipped.any()), (self.threshold, clip_norm is not None))
        handles = [h for h, on in shown_in_legend if on]
        if ax_norm.get_legend() is not None:
            ax_norm.get_legend().remove()
        if handles:
            ax_norm.legend(handles=handles, fontsize=7)
        for ax in self.axes:
            ax.relim(visible_only=True)
            ax.autoscale_view()


def clipping_explorer(
    experiment: ClippingExperiment,
    *,
    reference_norm: float,
    lr: float = 0.1,
    multiplier: float = 1.0,
    clip: bool = True,
    seed: int = 0,
) -> Explorer:
    r"""Explorer: learning rate, clipping threshold and clipping on/off -> one training run.

    Each setting trains ``experiment``'s network from ``seed`` with :meth:`ClippingExperiment.run`
    (cached there, so a setting seen before, by the explorer or by the lesson, redraws without
    training). The threshold is :math:`c = m\,\bar g`, a multiple ``multiplier`` :math:`= m` of
    ``reference_norm`` :math:`= \bar g`, the average gradient norm of pilot runs (Pascanu et al.
    2013, sec. 3.2's heuristic).

    Left: the mini-batch loss per step (log scale; a cross where the run diverged to NaN, the
    dotted line is chance, :math:`\ln C` for :math:`C` classes). Right: the total gradient norm
    :math:`\|g\|` per step before clipping (log scale), the threshold :math:`c` as a dotted line and
    the clipped steps (:math:`\|g\| > c`) as red dots; every clipped step is
    :math:`\eta c` long. The readout gives the threshold, the fraction of clipped steps and the
    outcome (step of divergence, or loss and accuracy on all the data). ``explorer.state`` holds
    the last run: ``lr``, ``clip_norm``, ``history``, ``loss``, ``accuracy``, ``clipped_fraction``.
    """
    from ..widgets import Explorer, checkbox, slider

    if not isinstance(experiment, ClippingExperiment):
        raise TypeError(f"experiment must be a ClippingExperiment, got {type(experiment).__name__}")
    reference_norm = check_positive("reference_norm", reference_norm)
    lr = _in_range("lr", lr, EXPLORER_LR_RANGE)
    multiplier = _in_range("multiplier", multiplier, EXPLORER_MULTIPLIER_RANGE)
    if not isinstance(clip, bool):
        raise TypeError(f"clip must be True or False, got {clip!r}")
    seed = check_int("seed", seed, minimum=0)
    chance = math.log(experiment.n_classes)
    state: dict[str, Any] = {}
    panels: list[_RunPlot] = []

    def update(axes, lr: float, multiplier: float, clip: bool) -> str:
        lr = _on_grid(lr, EXPLORER_LR_RANGE)
        multiplier = _on_grid(multiplier, EXPLORER_MULTIPLIER_RANGE)
        c = multiplier * reference_norm if clip else None
        run = experiment.run(lr, c, seed)
        h = run.history
        state.update(
            lr=lr,
            clip_norm=c,
            history=h,
            loss=run.loss,
            accuracy=run.accuracy,
            clipped_fraction=float(h.clipped.mean()),
        )
        if not axes[0].lines:  # a fresh figure, or the explorer wiped it after an error
            panels[:] = [_RunPlot(axes, chance)]
        panels[0].show(h, c, lr)
        threshold = f"{c:.3g} = {multiplier:.3g} x avg" if clip else "off"
        result = (
            f"diverged at step {h.diverged_at}"
            if h.diverged_at is not None
            else f"loss on all data {run.loss:.3f}, accuracy {run.accuracy:.0%}"
        )
        return (
            f"lr {lr:.3g} | threshold {threshold} | clipped {state['clipped_fraction']:.0%} "
            f"of steps | {result}"
        )

    lo_lr, hi_lr = (math.log10(v) for v in EXPLORER_LR_RANGE)
    lo_m, hi_m = (math.log10(v) for v in EXPLORER_MULTIPLIER_RANGE)
    step = EXPLORER_DECADE_STEP
    explorer = Explorer(
        update,
        {
            "lr": slider(lr, lo_lr, hi_lr, step, "learning rate", log=True),
            "multiplier": slider(multiplier, lo_m, hi_m, step, "threshold / avg norm", log=True),
            "clip": checkbox(clip, "clip by norm"),
        },
        title="Gradient clipping: learning rate vs threshold",
        caption="switch clipping off at lr 0.1; then raise the threshold past 10x; then try lr 0.3 "
        "with a small and a large threshold.",
        clear=False,
    )
    explorer.state = state
    return explorer
