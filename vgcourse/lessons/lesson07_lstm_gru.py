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

from typing import Any, Callable, Optional, Union

import numpy as np
import torch
from torch import nn

from .._validate import check_choice, check_int, check_module, check_positive, check_tensor
from ..losses import LossSpec, get_loss
from ..models import model_device

#: Upper bound :math:`\gamma` of :math:`|\phi'|` for each recurrent nonlinearity (Pascanu et al. 2013).
GAMMA: dict[str, float] = {"tanh": 1.0, "sigmoid": 0.25, "relu": 1.0, "identity": 1.0}
NONLINEARITIES: tuple[str, ...] = tuple(GAMMA)
SCALE_BY: tuple[str, ...] = ("spectral_radius", "singular_value")
REDUCTIONS: tuple[str, ...] = ("median", "mean", "norm", "none")

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
    ``"mean"``, ``"norm"``: the norm over the whole batch, :math:`\sqrt{\sum_i g_i^2}`, or ``"none"``
    for the ``(batch, T)`` array). ``model`` maps ``(batch, T, features)``
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
    if reduce == "norm":
        return np.sqrt((norms**2).sum(axis=0))
    return norms
