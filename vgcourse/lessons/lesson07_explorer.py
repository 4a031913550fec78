r"""Lesson 07's explorer: gradient norm against time lag at initialization and the adding-problem training
curve of an RNN, an LSTM and a GRU side by side, as the recurrent spectral radius, the LSTM forget-gate
bias and the sequence length change."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional, Union

import torch

from .._validate import check_choice, check_int, check_positive
from ..data import ADDING_BASELINE_MSE
from ..device import get_device
from ..models import CELLS
from .lesson07_adding import adding_run, init_grad_vs_lag

#: Colours of the three cells in lesson 07's plots.
CELL_COLORS: dict[str, str] = {"rnn": "tab:red", "lstm": "tab:blue", "gru": "tab:green"}


#: Spectral radii and forget-gate biases the explorer offers (``None``: PyTorch's default init).
EXPLORER_RADII: tuple[Optional[float], ...] = (None, 0.5, 0.9, 1.0, 1.2, 1.5, 2.0)


EXPLORER_FORGET_BIASES: tuple[float, ...] = (-1.0, 0.0, 1.0, 2.0, 3.0, 5.0)


def gradient_through_time_explorer(
    *,
    cell: str = "lstm",
    T: int = 30,
    rho: Optional[float] = None,
    forget_bias: float = 1.0,
    lengths: Sequence[int] = tuple(range(10, 101, 10)),
    hidden_size: int = 32,
    n: int = 4000,
    steps: int = 300,
    lr: float = 2e-2,
    batch_size: int = 64,
    probe_size: int = 64,
    seed: int = 0,
    device: Optional[Union[torch.device, str]] = None,
):
    r"""Explorer: cell, sequence length ``T``, RNN spectral radius ``rho``, LSTM ``forget_bias`` -> memory.

    Left: the gradient against the lag at initialization for all three cells
    (:func:`init_grad_vs_lag` on ``probe_size`` sequences of length ``T``), the selected cell
    thick. Along the RNN's path :math:`\partial h_T/\partial h_k = \prod_t \mathrm{diag}(\phi'(a_t))W_{hh}`
    shrinks like :math:`\rho(W_{hh})^{T-k}` or faster (Pascanu, Mikolov & Bengio 2013); the LSTM's
    cell state has :math:`\partial c_t/\partial c_{t-1} = \mathrm{diag}(f_t)`, held open by a large
    forget-gate bias (Gers et al. 2000; Jozefowicz et al. 2015). Right: the selected cell trained on
    the adding problem of length ``T`` (:func:`adding_run` with this budget), its test MSE against
    the baseline :math:`1/6` of predicting a constant.

    The sequence-length slider steps through ``lengths``. Every setting is computed once on
    ``device`` (default :func:`vgcourse.get_device`) and cached for the session: the first visit of a
    setting trains a model (a few seconds on a CPU), later visits only redraw, and a control the
    selected cell does not use (the radius for an LSTM, the bias for an RNN) never retrains.
    ``explorer.state`` holds the last ``settings``, the three ``curves``, the ``history`` of the
    trained model, ``reach`` (the selected curve's largest lag over lag 0) and ``final_mse``.
    """
    from ..widgets import Explorer, dropdown, slider

    check_choice("cell", cell, CELLS)
    check_choice("rho", rho, EXPLORER_RADII)
    check_choice("forget_bias", forget_bias, EXPLORER_FORGET_BIASES)
    if isinstance(lengths, (str, bytes)) or not isinstance(lengths, Sequence) or len(lengths) < 2:
        raise TypeError(f"lengths must be a sequence of at least 2 integers, got {lengths!r}")
    lengths = tuple(check_int("lengths[i]", t, minimum=2) for t in lengths)
    step = lengths[1] - lengths[0]
    if step < 1 or any(b - a != step for a, b in zip(lengths, lengths[1:])):
        raise ValueError(f"lengths must be evenly spaced and increasing, got {lengths}")
    check_choice("T", T, lengths)
    budget = dict(
        hidden_size=check_int("hidden_size", hidden_size, minimum=1),
        n=check_int("n", n, minimum=1),
        steps=check_int("steps", steps, minimum=1),
        lr=check_positive("lr", lr),
        batch_size=check_int("batch_size", batch_size, minimum=1),
    )
    probe_size = check_int("probe_size", probe_size, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    device = get_device(device)
    state: dict = {}

    def update(axes, cell, T, rho, forget_bias):
        T = int(T)
        settings = dict(recurrent_radius=rho, forget_bias=forget_bias)
        curves = {
            c: init_grad_vs_lag(
                c,
                T,
                **settings,
                hidden_size=budget["hidden_size"],
                batch=probe_size,
                seed=seed,
                device=device,
            )
            for c in CELLS
        }
        _, history = adding_run(cell, T, seed=seed, **settings, **budget, device=device)
        reach = float(curves[cell][-1] / curves[cell][0])
        state.update(
            settings=dict(cell=cell, T=T, rho=rho, forget_bias=forget_bias),
            curves=curves,
            history=history,
            reach=reach,
            final_mse=history.eval_loss[-1],
        )
        for c, curve in curves.items():
            axes[0].semilogy(curve, color=CELL_COLORS[c], lw=3 if c == cell else 1, label=c.upper())
        axes[0].set(xlabel="lag", ylabel="gradient norm", title="at initialization")
        axes[0].legend(fontsize=7)
        axes[1].semilogy(history.eval_steps, history.eval_loss, "o-", ms=3, color=CELL_COLORS[cell])
        axes[1].axhline(ADDING_BASELINE_MSE, color="k", ls=":", label="baseline 1/6")
        axes[1].set(
            xlabel="step", ylabel="test MSE", title=f"{cell.upper()} on the adding problem, T={T}"
        )
        axes[1].legend(fontsize=7)
        return (
            f"{cell.upper()}, T={T}: gradient at lag {T - 1} / lag 0 at init = {reach:.1e}; "
            f"test MSE after training = {history.eval_loss[-1]:.4f} "
            f"(baseline {ADDING_BASELINE_MSE:.4f})"
        )

    radii = [("PyTorch default", None), *EXPLORER_RADII[1:]]
    controls = {
        "cell": dropdown(CELLS, cell, "cell"),
        "T": slider(T, lengths[0], lengths[-1], step, "sequence length T", integer=True),
        "rho": dropdown(radii, rho, "RNN spectral radius"),
        "forget_bias": dropdown(EXPLORER_FORGET_BIASES, forget_bias, "LSTM forget bias"),
    }
    explorer = Explorer(
        update,
        controls,
        caption="switch the cell at T=30, then lengthen T; give the RNN a spectral radius near 1 and "
        "the LSTM a forget bias of 0 or 3, and compare the left curves with the training result on "
        "the right (a new setting trains for a few seconds; revisits are instant).",
        title="Gradient through time and learning the adding problem",
    )
    explorer.state = state
    return explorer
