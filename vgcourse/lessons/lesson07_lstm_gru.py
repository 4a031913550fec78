r"""Gradients through time: Jacobian products of recurrent networks, measured lag by lag (lesson 07).

**Back-propagation through time.** A vanilla (Elman) RNN computes
:math:`a_t = W_{hh} h_{t-1} + W_{xh} x_t + b`, :math:`h_t = \phi(a_t)`. The gradient of a loss
:math:`L` that reads :math:`h_T` with respect to an earlier state :math:`h_k` is

.. math::
    \frac{\partial L}{\partial h_k} = \Big(\frac{\partial h_T}{\partial h_k}\Big)^{\!\top}
    \frac{\partial L}{\partial h_T}, \qquad
    \frac{\partial h_T}{\partial h_k} = \prod_{t=k+1}^{T} \frac{\partial h_t}{\partial h_{t-1}}
    = \prod_{t=k+1}^{T} \mathrm{diag}\big(\phi'(a_t)\big)\, W_{hh}

(the product taken with the latest factor on the left). :func:`hidden_jacobian_norms` computes
the spectral norm of this product for every lag :math:`T-k`.

**Pascanu, Mikolov & Bengio 2013, section "The mechanics".** If :math:`|\phi'| \le \gamma`
(:math:`\gamma = 1` for tanh, :math:`1/4` for the sigmoid, see :data:`GAMMA`) then

.. math::
    \Big\|\frac{\partial h_T}{\partial h_k}\Big\|_2 \le \big(\gamma\, \sigma_{\max}(W_{hh})\big)^{T-k},

so :math:`\sigma_{\max}(W_{hh}) < 1/\gamma` is *sufficient* for the gradient to vanish
exponentially (:func:`vanishing_bound`), and :math:`\sigma_{\max} > 1/\gamma` is *necessary* for it
to explode. For a linear RNN (:math:`\phi(z) = z`) the product is :math:`W_{hh}^{T-k}`, whose norm
grows or decays like :math:`\rho(W_{hh})^{T-k}` (Gelfand's formula), :math:`\rho` the spectral
radius: :math:`\rho < 1` vanishes, and :math:`\rho > 1` is necessary to explode.
:func:`scale_matrix_` and :func:`scale_recurrent_` set :math:`\rho` or :math:`\sigma_{\max}`.

**Gated cells.** The LSTM (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al.
2000) keeps a cell state :math:`c_t = f_t \odot c_{t-1} + i_t \odot g_t` whose direct Jacobian
:math:`\partial c_t/\partial c_{t-1} = \mathrm{diag}(f_t)` is 1 when the forget gate is open
(the "constant error carousel"); the GRU (Cho et al. 2014) has
:math:`h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}`. :func:`state_jacobian_norms` measures
:math:`\|\partial s_T / \partial s_k\|` for any recurrence step, and :func:`grad_vs_lag` measures,
for any sequence model, the norm of the gradient of its last output with respect to the input at
every earlier step. :func:`train_cells` trains RNN, LSTM and GRU models side by side.

**The adding problem and the explorer.** :func:`adding_run` trains one cell on the adding problem
(Hochreiter & Schmidhuber 1997, sec. 5.4), cached per setting; :func:`init_grad_vs_lag` measures the
gradient against the lag at initialization, cached; :func:`gradient_through_time_explorer` shows
both for a chosen cell, sequence length, RNN spectral radius and LSTM forget-gate bias (lesson 07).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any, Callable, Optional, Union

import numpy as np
import torch
from torch import nn

from .._validate import check_choice, check_int, check_module, check_positive, check_tensor
from ..data import ADDING_BASELINE_MSE, adding_problem
from ..device import get_device, seed_everything
from ..losses import LossSpec, get_loss
from ..models import CELLS, model_device, rnn_model
from ..train import History, fit

#: Upper bound :math:`\gamma` of :math:`|\phi'|` for each recurrent nonlinearity (Pascanu et al. 2013).
GAMMA: dict[str, float] = {"tanh": 1.0, "sigmoid": 0.25, "relu": 1.0, "identity": 1.0}
NONLINEARITIES: tuple[str, ...] = tuple(GAMMA)
SCALE_BY: tuple[str, ...] = ("spectral_radius", "singular_value")
REDUCTIONS: tuple[str, ...] = ("median", "mean", "none")

State = Union[torch.Tensor, tuple]
Step = Callable[[torch.Tensor, Any], Any]


# -- matrices -----------------------------------------------------------------------------------
def _square(name: str, W: Any) -> torch.Tensor:
    W = check_tensor(name, W, ndim=2)
    if W.shape[0] != W.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {tuple(W.shape)}")
    return W


def spectral_radius(W: torch.Tensor) -> float:
    r""":math:`\rho(W) = \max_i |\lambda_i(W)|`, the largest eigenvalue modulus of a square matrix."""
    W = _square("W", W)
    return float(torch.linalg.eigvals(W.detach().cpu().double()).abs().max())


def largest_singular_value(W: torch.Tensor) -> float:
    r""":math:`\sigma_{\max}(W) = \|W\|_2`, the spectral norm (always :math:`\ge \rho(W)`)."""
    W = check_tensor("W", W, ndim=2)
    return float(torch.linalg.matrix_norm(W.detach().cpu().double(), ord=2))


def scale_matrix_(W: torch.Tensor, value: float, *, by: str = "spectral_radius") -> torch.Tensor:
    r"""Multiply ``W`` in place so that its spectral radius (or largest singular value) is ``value``.

    Scaling by :math:`s` multiplies every eigenvalue and singular value by :math:`s`, so one
    division fixes either. Returns ``W``.
    """
    W = _square("W", W)
    value = check_positive("value", value)
    check_choice("by", by, SCALE_BY)
    current = spectral_radius(W) if by == "spectral_radius" else largest_singular_value(W)
    if current == 0:
        raise ValueError(
            f"W has {by.replace('_', ' ')} 0 (it is nilpotent or zero); cannot rescale"
        )
    with torch.no_grad():
        W.mul_(value / current)
    return W


def scale_recurrent_(model: nn.Module, value: float, *, by: str = "spectral_radius") -> nn.Module:
    """Rescale every recurrent matrix ``weight_hh*`` of the vanilla RNNs in ``model`` (in place).

    Works on ``nn.RNN``/``nn.RNNCell`` and on models holding them (e.g. ``vg.rnn_model("rnn", ...)``).
    LSTM and GRU stack their gate matrices into one non-square ``weight_hh``, which has no
    spectral radius, so they raise ``ValueError``. Returns ``model``.
    """
    check_module("model", model)
    value = check_positive("value", value)
    check_choice("by", by, SCALE_BY)
    found = 0
    for module in model.modules():
        if isinstance(module, (nn.LSTM, nn.GRU, nn.LSTMCell, nn.GRUCell)):
            raise ValueError(
                f"scale_recurrent_ needs vanilla RNN layers (nn.RNN, nn.RNNCell); got "
                f"{type(module).__name__}, whose weight_hh stacks gate matrices"
            )
        if isinstance(module, (nn.RNN, nn.RNNCell)):
            for name, param in module.named_parameters():
                if name.startswith("weight_hh"):
                    scale_matrix_(param.data, value, by=by)
                    found += 1
    if not found:
        raise ValueError("model has no nn.RNN or nn.RNNCell layer to rescale")
    return model


# -- the vanilla recurrence and its Jacobians ------------------------------------------------------
def _phi(nonlinearity: str, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(phi(a), phi'(a))``."""
    if nonlinearity == "tanh":
        h = torch.tanh(a)
        return h, 1 - h * h
    if nonlinearity == "sigmoid":
        h = torch.sigmoid(a)
        return h, h * (1 - h)
    if nonlinearity == "relu":
        return torch.relu(a), (a > 0).to(a.dtype)
    return a, torch.ones_like(a)


def _drive(W_hh: Any, drive: Any) -> tuple[torch.Tensor, torch.Tensor, bool]:
    W = _square("W_hh", W_hh)
    U = check_tensor("drive", drive)
    if U.ndim not in (2, 3):
        raise ValueError(
            f"drive must have shape (T, n) or (batch, T, n), got shape {tuple(U.shape)}"
        )
    single = U.ndim == 2
    U = U.unsqueeze(0) if single else U
    if U.shape[-1] != W.shape[0]:
        raise ValueError(
            f"drive's last dimension ({U.shape[-1]}) must equal the hidden size of W_hh ({W.shape[0]})"
        )
    if U.shape[1] < 1:
        raise ValueError("drive must have at least one time step")
    return W.detach().double(), U.detach().to(W.device).double(), single


def rnn_unroll(
    W_hh: torch.Tensor,
    drive: torch.Tensor,
    *,
    nonlinearity: str = "tanh",
    h0: Optional[torch.Tensor] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Run :math:`h_t = \phi(W_{hh} h_{t-1} + u_t)` and return ``(h, phi_prime)`` (float64).

    ``drive`` holds :math:`u_t = W_{xh} x_t + b` for every step, shape ``(T, n)`` or
    ``(batch, T, n)``; ``h0`` defaults to zeros. Both outputs have the shape of ``drive``:
    :math:`h_1..h_T` and :math:`\phi'(a_1)..\phi'(a_T)`.
    """
    check_choice("nonlinearity", nonlinearity, NONLINEARITIES)
    W, U, single = _drive(W_hh, drive)
    B, T, n = U.shape
    h = torch.zeros(B, n, dtype=W.dtype, device=W.device)
    if h0 is not None:
        h0 = check_tensor("h0", h0)
        if h0.shape[-1] != n:
            raise ValueError(f"h0 must have {n} entries per sequence, got shape {tuple(h0.shape)}")
        h = h + h0.detach().to(W.device).double()
    hs, ds = [], []
    for t in range(T):
        h, d = _phi(nonlinearity, h @ W.T + U[:, t])
        hs.append(h)
        ds.append(d)
    H, D = torch.stack(hs, 1), torch.stack(ds, 1)
    return (H[0], D[0]) if single else (H, D)


def hidden_jacobian_norms(
    W_hh: torch.Tensor,
    drive: torch.Tensor,
    *,
    nonlinearity: str = "tanh",
    h0: Optional[torch.Tensor] = None,
) -> np.ndarray:
    r"""Spectral norms :math:`\|\partial h_T/\partial h_{T-\ell}\|_2` for every lag :math:`\ell = 0..T`.

    The Jacobian product :math:`\prod_{t=T-\ell+1}^{T} \mathrm{diag}(\phi'(a_t)) W_{hh}` is
    accumulated from the last step backwards, in float64, along the trajectory of
    :func:`rnn_unroll` (same arguments). Entry 0 is the identity (norm 1). Returns an array of
    shape ``(T + 1,)``, or ``(batch, T + 1)`` for a batched ``drive``.
    """
    _, D = rnn_unroll(W_hh, drive, nonlinearity=nonlinearity, h0=h0)
    single = D.ndim == 2
    D = D.unsqueeze(0) if single else D
    W = W_hh.detach().to(D.device).double()
    B, T, n = D.shape
    P = torch.eye(n, dtype=D.dtype, device=D.device).expand(B, n, n)
    norms = [torch.ones(B, dtype=D.dtype, device=D.device)]
    for t in range(T - 1, -1, -1):
        P = P @ (D[:, t, :, None] * W)  # right-multiply by J_t = diag(phi'(a_t)) W
        norms.append(torch.linalg.matrix_norm(P, ord=2))
    out = torch.stack(norms, 1).cpu().numpy()
    return out[0] if single else out


def vanishing_bound(W_hh: torch.Tensor, lags: Any, *, nonlinearity: str = "tanh") -> np.ndarray:
    r"""Pascanu et al.'s bound :math:`(\gamma\,\sigma_{\max}(W_{hh}))^{\ell}` at each lag :math:`\ell`."""
    check_choice("nonlinearity", nonlinearity, NONLINEARITIES)
    lags = np.asarray(lags, dtype=float)
    if lags.ndim != 1 or (lags < 0).any():
        raise ValueError("lags must be a 1-D sequence of non-negative numbers")
    return (GAMMA[nonlinearity] * largest_singular_value(W_hh)) ** lags


def log_slope(values: Any, lags: Any = None) -> float:
    r"""Least-squares slope of :math:`\ln(\text{values})` against the lag: the decay rate per step.

    For :math:`v_\ell = C r^\ell` it returns :math:`\ln r` exactly (negative: vanishing; positive:
    exploding). ``lags`` defaults to ``0, 1, 2, ...``. Every value must be finite and positive.
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or len(v) < 2:
        raise ValueError(
            f"values must be a 1-D sequence of at least 2 numbers, got shape {v.shape}"
        )
    if not (np.isfinite(v).all() and (v > 0).all()):
        raise ValueError("values must all be finite and > 0 to take their logarithm")
    x = np.arange(len(v), dtype=float) if lags is None else np.asarray(lags, dtype=float)
    if x.shape != v.shape:
        raise ValueError(f"lags must have the shape of values {v.shape}, got {x.shape}")
    return float(np.polyfit(x, np.log(v), 1)[0])


# -- any recurrence, any model ------------------------------------------------------------------------
def _as_list(state: State) -> tuple[list, bool]:
    if isinstance(state, torch.Tensor):
        return [state], True
    if (
        isinstance(state, (tuple, list))
        and state
        and all(isinstance(s, torch.Tensor) for s in state)
    ):
        return list(state), False
    raise TypeError("state0 must be a tensor or a tuple of tensors (e.g. (h0, c0) for an LSTM)")


def state_jacobian_norms(
    step: Step, x: torch.Tensor, state0: State, *, which: int = 0
) -> np.ndarray:
    r"""Spectral norms :math:`\|\partial s_T / \partial s_{T-\ell}\|_2` for ``\ell = 0..T-1``, by autograd.

    ``step(x_t, state) -> state`` is one step of any recurrence: ``state`` is a tensor (RNN, GRU:
    :math:`h`) or a tuple (LSTM: ``(h, c)``), and ``which`` picks the component whose Jacobian is
    measured (``1`` for the LSTM's cell state). ``x`` is one sequence, shape ``(T, features)``, and
    ``state0`` one unbatched state. The step must accept a batch (``nn.RNNCell``, ``nn.LSTMCell``,
    ``nn.GRUCell`` do): the sequence is run as :math:`n` identical copies, copy :math:`i` adds a zero
    perturbation to its state after every step, and one backward pass of
    :math:`\sum_i s_T^{(i)}[i]` gives row :math:`i` of every Jacobian
    :math:`\partial s_T/\partial s_t` at once. Every path through time (gates included) is counted.
    """
    if not callable(step):
        raise TypeError(f"step must be callable, got {type(step).__name__}")
    x = check_tensor("x", x, ndim=2)
    state, single = _as_list(state0)
    which = check_int("which", which, minimum=0)
    if which >= len(state):
        raise ValueError(f"which must index the state (0..{len(state) - 1}), got {which}")
    if any(s.ndim != 1 for s in state):
        raise ValueError(
            f"state0 must hold unbatched state vectors, got shapes {[tuple(s.shape) for s in state]}"
        )
    T, n = x.shape[0], state[which].shape[0]
    ref = state[which]
    eps = torch.zeros(T, n, n, dtype=ref.dtype, device=ref.device, requires_grad=True)
    s = [v.expand(n, v.shape[0]) for v in state]  # n identical copies of the sequence
    xs = x.to(ref.device).unsqueeze(1).expand(T, n, x.shape[1])
    for t in range(T):
        new = step(xs[t], s[0] if single else tuple(s))
        s, _ = _as_list(new)
        if which >= len(s) or s[which].shape != (n, n):
            got = tuple(s[which].shape) if which < len(s) else f"{len(s)} tensors"
            raise ValueError(
                f"step must return a batched state like state0: got {got}, expected ({n}, {n})"
            )
        s[which] = s[which] + eps[t]
    out = s[which]
    (J,) = torch.autograd.grad(out.diagonal().sum(), eps)  # J[t, i, j] = d s_T[i] / d s_{t+1}[j]
    norms = torch.linalg.matrix_norm(J.double(), ord=2)
    return norms.flip(0).detach().cpu().numpy()


def grad_vs_lag(
    model: nn.Module,
    X: torch.Tensor,
    y: Optional[torch.Tensor] = None,
    *,
    loss: LossSpec = "mse",
    reduce: str = "median",
) -> np.ndarray:
    r"""Norm of the gradient of the model's last output with respect to the input at every lag.

    Returns :math:`\|\partial\, \mathrm{out} / \partial x_{T-\ell}\|` for :math:`\ell = 0..T-1`
    (lag 0 = the last step), per sequence, reduced over the batch by ``reduce`` (``"median"``,
    ``"mean"`` or ``"none"`` for the ``(batch, T)`` array). ``model`` maps ``(batch, T, features)``
    to an output (a bare ``nn.RNN``/``nn.LSTM``/``nn.GRU`` with ``batch_first=True`` is accepted;
    its last step's output is used). Without ``y`` the differentiated quantity is the sum of the
    outputs, so each sequence gets its own gradient; with ``y`` it is ``loss(output, y)``.

    For an RNN :math:`\partial\,\mathrm{out}/\partial x_k = (\partial\,\mathrm{out}/\partial h_T)
    (\partial h_T/\partial h_k)\,\mathrm{diag}(\phi'(a_k)) W_{xh}`: the Jacobian product of BPTT
    measured through the input, which works for every cell type and on every device. The model's
    mode and parameter gradients are left unchanged (cuDNN needs train mode for backward).
    """
    check_module("model", model)
    X = check_tensor("X", X, ndim=3)
    check_choice("reduce", reduce, REDUCTIONS)
    device = model_device(model)
    X = X.detach().to(device).clone().requires_grad_(True)
    out = model(X)
    if isinstance(out, tuple):  # bare nn.RNN / nn.LSTM / nn.GRU
        out = out[0][:, -1]
    if y is None:
        objective = out.sum()
    else:
        y = check_tensor("y", y)
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"y must have {X.shape[0]} rows like X, got shape {tuple(y.shape)}")
        objective = get_loss(loss)(out, y.to(device))
    (grad,) = torch.autograd.grad(objective, X)
    norms = grad.double().norm(dim=2).flip(1).cpu().numpy()  # (batch, T), column 0 = lag 0
    if reduce == "median":
        return np.median(norms, axis=0)
    if reduce == "mean":
        return norms.mean(axis=0)
    return norms


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
