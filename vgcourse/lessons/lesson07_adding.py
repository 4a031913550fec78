r"""The three cells trained side by side (:func:`train_cells`) and the adding problem (Hochreiter &
Schmidhuber 1997, sec. 5.4; Arjovsky et al. 2016, sec. 4.2): seeded runs cached per setting, and the
gradient against time lag at initialization (:func:`init_grad_vs_lag`)."""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from functools import lru_cache
from typing import Any, Optional, Union

import numpy as np
import torch
from torch import nn

from .._validate import check_choice, check_int, check_positive, check_tensor
from ..data import adding_problem
from ..device import get_device, seed_everything
from ..losses import LossSpec
from ..models import CELLS, rnn_model
from ..train import History, fit
from .lesson07_lstm_gru import grad_vs_lag, scale_recurrent_


# -- training the three cells side by side ----------------------------------------------------------
def train_cells(
    data: tuple[torch.Tensor, torch.Tensor],
    *,
    cells: Iterable[str] = CELLS,
    seeds: Iterable[int] = (0,),
    hidden_size: int = 32,
    steps: int,
    lr: float,
    batch_size: Optional[int] = None,
    loss: LossSpec = "cross_entropy",
    forget_bias: Optional[float] = None,
    recurrent_radius: Optional[float] = None,
    clip_norm: Optional[float] = None,
    eval_data: Optional[tuple[torch.Tensor, torch.Tensor]] = None,
    eval_every: Optional[int] = None,
    device: Optional[Union[torch.device, str]] = None,
) -> dict[tuple[str, int], tuple[nn.Module, History]]:
    """Train one :func:`vgcourse.rnn_model` per (cell, seed) on ``data`` with :func:`vgcourse.fit`.

    ``X`` has shape ``(n, T, features)``. The output size is 1 for ``loss="mse"`` (regression) and
    the number of classes (``y.max() + 1``) otherwise. Each run seeds everything with its seed
    before building the model, so results are repeatable. ``forget_bias`` applies to LSTMs only
    (Jozefowicz et al. 2015 recommend 1.0); ``recurrent_radius`` to vanilla RNNs only (their
    :math:`W_{hh}` is rescaled to that spectral radius before training, :func:`scale_recurrent_`).
    ``None`` keeps PyTorch's default initialization. Returns ``{(cell, seed): (model, history)}``.
    """
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError("data must be a pair (X, y)")
    X = check_tensor("X", data[0], ndim=3)
    y = check_tensor("y", data[1])
    cells = tuple(cells)
    if not cells:
        raise ValueError(f"cells must name at least one of {CELLS}")
    for cell in cells:
        check_choice("cell", cell, CELLS)
    seeds = tuple(check_int("seed", s, minimum=0) for s in seeds)
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    hidden_size = check_int("hidden_size", hidden_size, minimum=1)
    if recurrent_radius is not None:
        recurrent_radius = check_positive("recurrent_radius", recurrent_radius)
    out_size = 1 if loss == "mse" else int(y.max()) + 1
    results: dict[tuple[str, int], tuple[nn.Module, History]] = {}
    for cell in cells:
        for seed in seeds:
            seed_everything(seed)
            model = rnn_model(
                cell,
                X.shape[-1],
                hidden_size,
                out_size,
                forget_bias=forget_bias if cell == "lstm" else None,
                device=device,
            )
            if cell == "rnn" and recurrent_radius is not None:
                scale_recurrent_(model, recurrent_radius)
            history = fit(
                model,
                (X, y),
                steps=steps,
                lr=lr,
                batch_size=batch_size,
                loss=loss,
                clip_norm=clip_norm,
                record=False,
                seed=seed,
                eval_data=eval_data,
                eval_every=eval_every,
            )
            results[(cell, seed)] = (model, history)
    return results


# -- the adding problem, cached, and the lesson's explorer --------------------------------------------
def _optional_real(name: str, value: Any, *, positive: bool = False) -> Optional[float]:
    if value is None:
        return None
    if positive:
        return check_positive(name, value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != value:
        raise TypeError(f"{name} must be a real number or None, got {value!r}")
    return float(value)


def _cell_settings(cell: str, recurrent_radius: Any, forget_bias: Any) -> tuple:
    """Validate, and keep only the setting the cell uses: the radius for the RNN, the bias for the LSTM."""
    check_choice("cell", cell, CELLS)
    radius = _optional_real("recurrent_radius", recurrent_radius, positive=True)
    bias = _optional_real("forget_bias", forget_bias)
    return (radius if cell == "rnn" else None), (bias if cell == "lstm" else None)


@lru_cache(maxsize=128)
def _adding_run(
    cell, T, seed, radius, bias, n, hidden_size, steps, lr, batch_size, clip_norm, device
):
    data = adding_problem(n, T, seed=1)
    test = adding_problem(500, T, seed=2)
    runs = train_cells(
        data,
        cells=(cell,),
        seeds=(seed,),
        hidden_size=hidden_size,
        steps=steps,
        lr=lr,
        batch_size=batch_size,
        loss="mse",
        forget_bias=bias,
        recurrent_radius=radius,
        clip_norm=clip_norm,
        eval_data=test,
        eval_every=max(1, steps // 10),
        device=device,
    )
    return runs[(cell, seed)]


def adding_run(
    cell: str,
    T: int,
    *,
    seed: int = 0,
    recurrent_radius: Optional[float] = None,
    forget_bias: Optional[float] = None,
    n: int = 4000,
    hidden_size: int = 32,
    steps: int = 300,
    lr: float = 2e-2,
    batch_size: int = 64,
    clip_norm: Optional[float] = 1.0,
    device: Optional[Union[torch.device, str]] = None,
) -> tuple[nn.Module, History]:
    r"""One ``cell`` model trained on the adding problem of length ``T``; cached per setting.

    The task (Hochreiter & Schmidhuber 1997, sec. 5.4; the form of Arjovsky et al. 2016): sum the two
    marked values of a length-``T`` sequence (:func:`vgcourse.data.adding_problem`). Predicting the
    constant 1 gives :math:`\mathrm{MSE} = \mathrm{Var}(u_1 + u_2) = 1/6`
    (:data:`vgcourse.data.ADDING_BASELINE_MSE`), so a model near 1/6 has learned nothing.

    Trains with :func:`train_cells` (Adam, MSE, gradient-norm clipping at ``clip_norm``) on ``n``
    sequences drawn with seed 1, evaluating on 500 test sequences (seed 2) every ``steps // 10``
    steps; the model is seeded with ``seed``. ``recurrent_radius`` (RNN only) rescales
    :math:`W_{hh}` to that spectral radius; ``forget_bias`` (LSTM only) sets the forget-gate bias;
    each is ignored for the other cells, so those share one cached run. Returns ``(model, history)``:
    the same objects for the same settings (do not train the model further; copy it first).
    """
    radius, bias = _cell_settings(cell, recurrent_radius, forget_bias)
    T = check_int("T", T, minimum=2)
    seed = check_int("seed", seed, minimum=0)
    n = check_int("n", n, minimum=1)
    hidden_size = check_int("hidden_size", hidden_size, minimum=1)
    steps = check_int("steps", steps, minimum=1)
    lr = check_positive("lr", lr)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    clip_norm = _optional_real("clip_norm", clip_norm, positive=True)
    device = get_device(device)
    args = (cell, T, seed, radius, bias, n, hidden_size, steps, lr, batch_size, clip_norm)
    return _adding_run(*args, str(device))


@lru_cache(maxsize=512)
def _init_grad_vs_lag(cell, T, radius, bias, hidden_size, batch, seed, device):
    X, _ = adding_problem(batch, T, seed=0)
    seed_everything(seed)
    net = rnn_model(cell, 2, hidden_size, 1, forget_bias=bias, device=device)
    if radius is not None:
        scale_recurrent_(net, radius)
    return grad_vs_lag(net, X)


def init_grad_vs_lag(
    cell: str,
    T: int,
    *,
    recurrent_radius: Optional[float] = None,
    forget_bias: Optional[float] = None,
    hidden_size: int = 32,
    batch: int = 64,
    seed: int = 0,
    device: Optional[Union[torch.device, str]] = None,
) -> np.ndarray:
    r"""Median :math:`\|\partial\,\hat y/\partial x_{T-\ell}\|` over sequences, :math:`\ell = 0..T-1`, at
    initialization; cached per setting.

    A seeded :func:`vgcourse.rnn_model` (``cell``, 2 inputs, ``hidden_size`` units, 1 output; RNN
    :math:`W_{hh}` rescaled to spectral radius ``recurrent_radius``, LSTM forget-gate bias
    ``forget_bias``, each used by its cell only) on ``batch`` adding-problem sequences of length
    ``T`` (seed 0), measured by :func:`grad_vs_lag`: the BPTT Jacobian product seen through the
    input. Straight lines on a log axis are exponential decay, :math:`\|\cdot\| \propto r^\ell`.
    """
    radius, bias = _cell_settings(cell, recurrent_radius, forget_bias)
    T = check_int("T", T, minimum=2)
    hidden_size = check_int("hidden_size", hidden_size, minimum=1)
    batch = check_int("batch", batch, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    device = get_device(device)
    return _init_grad_vs_lag(cell, T, radius, bias, hidden_size, batch, seed, str(device)).copy()
