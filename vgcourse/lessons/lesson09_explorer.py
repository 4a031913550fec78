r"""Lesson 09's clinic explorer: pick a broken model (a case) and a repair (a fix), see its loss curve and
per-layer gradient norms at initialization or after training, with :class:`Clinic` computing and
caching every combination."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .._validate import check_choice, check_int
from .lesson09_capstone import CASES, FIXES, WHEN, Clinic, resolve

if TYPE_CHECKING:
    from ..widgets import Explorer


def _smoothed(loss: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Running mean over ``k`` steps and the step each value belongs to (its window's last)."""
    values = np.convolve(loss, np.ones(k) / k, mode="valid")
    return np.arange(k - 1, k - 1 + len(values)), values


def clinic_explorer(
    clinic: Clinic,
    *,
    case: str = "deep sigmoid",
    fix: str = "none",
    when: str = "at initialization",
    seed: int = 0,
) -> Explorer:
    r"""Explorer: pick a broken model, a fix and when to diagnose; see the check-up and the training.

    Left: the check-up's plot (:meth:`DiagnosisReport.plot`: RMS gradient per weight,
    :math:`\|\nabla W_\ell\|/\sqrt{|W_\ell|}`, per weight layer on a log scale, flagged layers red),
    at initialization or after training, titled with its findings. Right: the mini-batch training
    loss of ``seed`` (running mean of 10 steps, log scale; a cross where the run diverged), the
    broken model's in grey, and the "learned nothing" level (:math:`\ln C` for the classifiers, the
    adding problem's predict-1 MSE :math:`1/6` for the RNNs). The readout gives the final loss,
    the first/last gradient ratio after training and the findings. A fix that does not apply to
    the model (batch norm for an RNN) is reported as such, not drawn. Every run comes from
    :meth:`Clinic.run`, cached there: settings the lesson has run redraw without training.
    ``explorer.state`` holds the last setting's ``run``, ``report``, ``problems`` and ``ratio``.
    """
    from matplotlib.ticker import NullLocator

    from ..plots import plot_loss
    from ..widgets import Explorer, dropdown

    if not isinstance(clinic, Clinic):
        raise TypeError(f"clinic must be a Clinic, got {type(clinic).__name__}")
    resolve(case, fix)
    check_choice("when", when, WHEN)
    seed = check_int("seed", seed, minimum=0)
    state: dict[str, Any] = {}
    no_minor_ticks = NullLocator()

    def update(axes, case: str, fix: str, when: str) -> str:
        state.clear()
        r, broken = clinic.run(case, fix, seed), clinic.run(case, "none", seed)
        report = r["before"] if when == WHEN[0] else r["after"]
        state.update(
            case=case, fix=fix, when=when, run=r, report=report, problems=list(report.problems)
        )
        state["ratio"] = r["ratio"]
        report.plot(axes[0])
        over_time = (
            f" (first/last time step {report.time_grad_ratio:.2g})"
            if report.time_grad_ratio
            else ""
        )
        axes[0].set_title(
            f"{case} + {fix}, {when}: " + (", ".join(report.problems) or "healthy") + over_time,
            fontsize=9,
        )
        h, level = r["history"], clinic.level(case)
        if fix != "none":
            axes[1].plot(*_smoothed(broken["history"].loss, 10), color="grey", label="broken")
        plot_loss(
            {fix if fix != "none" else "broken": h},
            ax=axes[1],
            smooth=10,
            title=f"training loss, seed {seed}",
        )
        axes[1].axhline(level, color="grey", ls=":", lw=1, label="learned nothing")
        low, high = axes[1].get_ylim()
        axes[1].set_ylim(min(low, level / 4), max(high, 2 * level))
        axes[1].set(xlabel="step", ylabel="MSE" if CASES[case].kind == "rnn" else "cross-entropy")
        axes[1].legend(fontsize=8)
        for ax in axes:  # minor log ticks cost more to lay out than the rest of the plot: keep
            low, high = ax.get_ylim()  # them only where they label a short range, as plots does
            if low > 0 and high / low > 1e2:
                ax.yaxis.set_minor_locator(no_minor_ticks)
        loss_text = (
            f"diverged at step {h.diverged_at}"
            if h.diverged_at is not None
            else f"final loss {h.final_loss:.3g}"
        )
        return (
            f"{case} + {fix}: {loss_text} | first/last gradient {r['ratio']:.2g} | "
            f"findings {when}: {report.problems or 'none'}"
        )

    explorer = Explorer(
        update,
        {
            "case": dropdown(list(CASES), case, "broken model"),
            "fix": dropdown(list(FIXES), fix, "fix"),
            "when": dropdown(list(WHEN), when, "diagnose"),
        },
        title="Diagnose and fix",
        caption="pick a fix for the deep sigmoid net, then a wrong one (clip norm); switch the "
        "diagnosis to 'after training'; try the vanilla RNN with GRU and with the LSTM.",
        figsize=(10, 3.8),
    )
    explorer.state = state
    return explorer
