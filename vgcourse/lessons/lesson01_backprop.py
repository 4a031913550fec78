r"""Back-propagation by hand on lesson 01's 2-2-1 sigmoid network, and its interactive explorer.

The network has 2 inputs, 2 sigmoid hidden units, 1 sigmoid output and the squared-error loss
(:math:`w_{ij}` connects input :math:`j` to hidden unit :math:`i`):

.. math::
    z = W_1 x + b_1,\quad h = \sigma(z),\quad z_{out} = v^\top h + c,\quad
    \hat y = \sigma(z_{out}),\quad L = \tfrac12(\hat y - y)^2 .

The backward pass is the chain rule, one local derivative per edge, with
:math:`\sigma'(z) = \sigma(z)(1 - \sigma(z)) \le 1/4`:

.. math::
    \delta_{out} = \frac{\partial L}{\partial z_{out}} = (\hat y - y)\,\hat y(1-\hat y),\qquad
    \frac{\partial L}{\partial v} = \delta_{out}\, h,\qquad \frac{\partial L}{\partial c} = \delta_{out},

.. math::
    \delta = \frac{\partial L}{\partial z} = \delta_{out}\, v \odot h \odot (1-h),\qquad
    \frac{\partial L}{\partial W_1} = \delta\, x^\top,\qquad \frac{\partial L}{\partial b_1} = \delta,

so :math:`\partial L/\partial w_{ij}` is the product of five factors
:math:`(\hat y - y)\cdot\hat y(1-\hat y)\cdot v_i\cdot h_i(1-h_i)\cdot x_j`
(Rumelhart, Hinton & Williams 1986; Nielsen 2015, ch. 2, the four equations of
back-propagation). Plain gradient descent repeats :math:`\theta \leftarrow \theta - \eta\,
\partial L/\partial\theta`.

Lesson 01 derives all of this from scratch in the notebook; this module is the clean reference
of the same computation, written without autograd and *batched*: every tensor may carry leading
batch dimensions, so one call trains many copies of the network at once (the explorer uses that
to precompute a whole slider's range in one pass).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn

from .._validate import check_int, check_positive, check_real, check_tensor

__all__ = [
    "LESSON_PARAMS",
    "Pass",
    "TinyParams",
    "chain_factors",
    "forward_backward",
    "gradient_descent",
    "params_of",
    "tiny_params",
]

#: The lesson's network: ``W1`` (rows: hidden units, columns: inputs), ``b1``, ``v`` (output
#: weights) and ``c`` (output bias), chosen so that every value can be followed by hand.
LESSON_PARAMS: dict[str, Any] = {
    "W1": ((0.4, -0.6), (0.3, 0.9)),
    "b1": (0.1, -0.2),
    "v": (0.7, -1.1),
    "c": 0.2,
}


class TinyParams(NamedTuple):
    """Parameters of a one-hidden-layer sigmoid net with one output, any leading batch shape ``...``.

    ``W1`` is (..., hidden, inputs), ``b1`` and ``v`` are (..., hidden), ``c`` is (...).
    Gradients (:attr:`Pass.grads`) have the same structure.
    """

    W1: torch.Tensor
    b1: torch.Tensor
    v: torch.Tensor
    c: torch.Tensor


class Pass(NamedTuple):
    """Everything one forward and backward pass computes (see the module docstring)."""

    z: torch.Tensor  #: (..., hidden) hidden pre-activations
    h: torch.Tensor  #: (..., hidden) hidden activations sigma(z)
    z_out: torch.Tensor  #: (...) output pre-activation
    y_hat: torch.Tensor  #: (...) prediction sigma(z_out)
    loss: torch.Tensor  #: (...) 0.5 * (y_hat - y)**2
    grads: TinyParams  #: dL/dW1, dL/db1, dL/dv, dL/dc


# -- argument checks -------------------------------------------------------------------------------


def _check_params(params: Any) -> TinyParams:
    if not isinstance(params, TinyParams):
        raise TypeError(
            "params must be a vgcourse.backprop.TinyParams (make one with tiny_params() or "
            f"params_of(net)), got {type(params).__name__}"
        )
    W1, b1, v, c = (check_tensor(f"params.{n}", t) for n, t in zip(TinyParams._fields, params))
    if W1.ndim < 2 or not W1.is_floating_point():
        raise ValueError(
            f"params.W1 must be a floating-point (..., hidden, inputs) tensor, got shape "
            f"{tuple(W1.shape)} and dtype {W1.dtype}"
        )
    hidden = W1.shape[-2]
    for name, t in (("b1", b1), ("v", v)):
        if t.ndim < 1 or t.shape[-1] != hidden:
            raise ValueError(
                f"params.{name} must end in the {hidden} hidden units of W1, got shape {tuple(t.shape)}"
            )
    return TinyParams(W1, b1, v, c)


def _check_x(x: Any, params: TinyParams) -> torch.Tensor:
    if isinstance(x, (list, tuple)):
        x = torch.tensor([check_real(f"x[{i}]", v) for i, v in enumerate(x)], dtype=torch.float64)
    x = check_tensor("x", x)
    n_in = params.W1.shape[-1]
    if x.ndim < 1 or x.shape[-1] != n_in:
        raise ValueError(f"x must end in the network's {n_in} inputs, got shape {tuple(x.shape)}")
    return x.to(device=params.W1.device, dtype=params.W1.dtype)


def _check_y(y: Any, params: TinyParams) -> torch.Tensor:
    if isinstance(y, torch.Tensor):
        return check_tensor("y", y).to(device=params.W1.device, dtype=params.W1.dtype)
    return torch.tensor(check_real("y", y), device=params.W1.device, dtype=params.W1.dtype)


# -- the network -----------------------------------------------------------------------------------
def tiny_params(
    w11: float = 0.4,
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> TinyParams:
    """The lesson's 2-2-1 network (:data:`LESSON_PARAMS`) with :math:`w_{11}` set to ``w11``.

    float64 by default, so that hand calculations match autograd to the last digits; ``device``
    defaults to the CPU.
    """
    w11 = check_real("w11", w11)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    kw = dict(dtype=dtype, device=device)
    W1 = torch.tensor(LESSON_PARAMS["W1"], **kw)
    W1[0, 0] = w11
    return TinyParams(
        W1,
        torch.tensor(LESSON_PARAMS["b1"], **kw),
        torch.tensor(LESSON_PARAMS["v"], **kw),
        torch.tensor(LESSON_PARAMS["c"], **kw),
    )


def params_of(net: nn.Module) -> TinyParams:
    """Detached copies of the parameters of ``Sequential(Linear, Sigmoid, Linear(hidden, 1), Sigmoid)``."""
    ok = (
        isinstance(net, nn.Sequential)
        and len(net) == 4
        and isinstance(net[0], nn.Linear)
        and isinstance(net[1], nn.Sigmoid)
        and isinstance(net[2], nn.Linear)
        and isinstance(net[3], nn.Sigmoid)
        and net[2].out_features == 1
        and net[2].in_features == net[0].out_features
    )
    if not ok:
        raise TypeError(
            "net must be nn.Sequential(nn.Linear(n_in, n_hidden), nn.Sigmoid(), "
            f"nn.Linear(n_hidden, 1), nn.Sigmoid()), got {net!r}"
        )
    return TinyParams(
        net[0].weight.detach().clone(),
        net[0].bias.detach().clone(),
        net[2].weight.detach()[0].clone(),
        net[2].bias.detach()[0].clone(),
    )


def forward_backward(params: TinyParams, x: Any, y: Any) -> Pass:
    r"""One forward and one backward pass by hand (no autograd): every value and every gradient.

    Implements the equations of the module docstring, broadcasting over leading batch dimensions
    of ``params``, ``x`` (..., inputs) and ``y`` (a number or a (...) tensor).
    """
    params = _check_params(params)
    return _forward_backward(params, _check_x(x, params), _check_y(y, params))


def _forward_backward(params: TinyParams, x: torch.Tensor, y: torch.Tensor) -> Pass:
    """:func:`forward_backward` on checked tensors (no argument checks: the training loop's body)."""
    W1, b1, v, c = params
    z = (W1 @ x[..., None])[..., 0] + b1
    h = torch.sigmoid(z)
    z_out = (v * h).sum(-1) + c
    y_hat = torch.sigmoid(z_out)
    loss = 0.5 * (y_hat - y) ** 2
    delta_out = (y_hat - y) * y_hat * (1 - y_hat)  # dL/dz_out
    delta = delta_out[..., None] * v * h * (1 - h)  # dL/dz, one entry per hidden unit
    grads = TinyParams(
        delta[..., :, None] * x[..., None, :], delta, delta_out[..., None] * h, delta_out
    )
    return Pass(z, h, z_out, y_hat, loss, grads)


def chain_factors(
    params: TinyParams, x: Any, y: Any, *, unit: int = 0, input: int = 0
) -> dict[str, torch.Tensor]:
    r"""The five chain-rule factors of :math:`\partial L/\partial w_{ij}`, in order from the loss down.

    ``unit`` is :math:`i` and ``input`` is :math:`j` (0-based; the names are 1-based, so the
    default is :math:`w_{11}`). Returns ``{"dL/dy_hat": ..., "dy_hat/dz_out": ...,
    "dz_out/dh1": ..., "dh1/dz1": ..., "dz1/dw11": ...}`` as tensors with the batch shape; their
    product is :math:`\partial L/\partial w_{ij}` (:attr:`Pass.grads` ``.W1[..., i, j]``).
    """
    p = forward_backward(params, x, y)
    W1 = params.W1
    unit = check_int("unit", unit, minimum=0)
    input = check_int("input", input, minimum=0)
    if unit >= W1.shape[-2]:
        raise ValueError(f"unit must be < {W1.shape[-2]} (hidden units), got {unit}")
    if input >= W1.shape[-1]:
        raise ValueError(f"input must be < {W1.shape[-1]} (inputs), got {input}")
    x = _check_x(x, params)
    y = _check_y(y, params)
    h_i = p.h[..., unit]
    i, j = unit + 1, input + 1
    return {
        "dL/dy_hat": p.y_hat - y,
        "dy_hat/dz_out": p.y_hat * (1 - p.y_hat),
        f"dz_out/dh{i}": params.v[..., unit].expand_as(h_i),
        f"dh{i}/dz{i}": h_i * (1 - h_i),
        f"dz{i}/dw{i}{j}": x[..., input].expand_as(h_i),
    }


def gradient_descent(
    params: TinyParams, x: Any, y: Any, *, lr: float, num_updates: int
) -> tuple[TinyParams, torch.Tensor]:
    r"""``num_updates`` steps of :math:`\theta \leftarrow \theta - \eta\,\partial L/\partial\theta`.

    Returns ``(final_params, losses)`` with ``losses[..., k]`` the loss after ``k`` updates
    (``k = 0 .. num_updates``, so ``losses[..., 0]`` is the starting loss). The gradients come from
    :func:`forward_backward`; batched parameters train independent copies side by side.
    """
    params = _check_params(params)
    x, y = _check_x(x, params), _check_y(y, params)
    lr = check_positive("lr", lr)
    num_updates = check_int("num_updates", num_updates, minimum=0)
    losses = []
    for _ in range(num_updates):
        p = _forward_backward(params, x, y)
        losses.append(p.loss)
        params = TinyParams(*(t - lr * g for t, g in zip(params, p.grads)))
    losses.append(_forward_backward(params, x, y).loss)
    return params, torch.stack(torch.broadcast_tensors(*losses), dim=-1)
