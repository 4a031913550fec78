r"""Loss functions by name, so lessons and sweeps can say ``loss="bce"``.

* ``"cross_entropy"``: softmax cross-entropy on logits ``(N, C)`` and integer labels ``(N,)`` (or
  class probabilities ``(N, C)``). Logits with extra leading dimensions, such as a language model's
  ``(B, T, V)`` against ``(B, T)`` token labels, are flattened to ``(B*T, V)`` and ``(B*T,)``.
* ``"bce"`` (alias ``"binary_cross_entropy"``): :math:`-[y\log\sigma(z) + (1-y)\log(1-\sigma(z))]` on
  one logit per sample, ``(N,)`` or ``(N, 1)``, and labels in {0, 1}. Computed from logits
  (``BCEWithLogitsLoss``), which equals a sigmoid output unit followed by binary cross-entropy
  but never takes :math:`\log 0`.
* ``"mse"``: mean squared error, :math:`\frac1N\sum (\hat y - y)^2`.

Shapes are checked, never broadcast: PyTorch's ``mse_loss`` on an output ``(N,)`` and a target
``(N, 1)`` silently averages an ``(N, N)`` matrix of every output against every target (it only
warns). Here the output and the target must have the same shape, with one allowance for the usual
single-output head: an output ``(N, 1)`` against a target ``(N,)`` (also for ``"bce"``). Anything else
is a ``ValueError`` that names both shapes.

A callable ``loss(output, y) -> scalar tensor`` is accepted wherever a name is (its shapes are the
caller's business).
"""

from __future__ import annotations

from typing import Callable, Union

import torch
import torch.nn.functional as F

from ._validate import check_choice

LOSSES: tuple[str, ...] = ("cross_entropy", "bce", "binary_cross_entropy", "mse")
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
LossSpec = Union[str, LossFn]


def _shape_error(loss: str, output: torch.Tensor, y: torch.Tensor, allowed: str) -> ValueError:
    return ValueError(
        f"loss={loss!r}: the model's output has shape {tuple(output.shape)} and the target y has shape "
        f"{tuple(y.shape)}; {allowed}"
    )


def _elementwise(loss: str, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``output`` shaped like ``y`` (an ``(N, 1)`` output against an ``(N,)`` target is squeezed)."""
    if not isinstance(output, torch.Tensor):
        raise TypeError(
            f"loss={loss!r} needs the model's output to be a tensor, got {type(output).__name__}"
        )
    if output.shape == y.shape:
        return output
    if output.ndim == y.ndim + 1 and output.shape[-1] == 1 and output.shape[:-1] == y.shape:
        return output.squeeze(-1)
    raise _shape_error(
        loss, output, y, "they must be equal, or (N, 1) against (N,) (no broadcasting)"
    )


def _bce(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    output = _elementwise("bce", output, y)
    return F.binary_cross_entropy_with_logits(output, y.to(output.dtype))


def _mse(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    output = _elementwise("mse", output, y)
    return F.mse_loss(output, y.to(output.dtype))


def _cross_entropy(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if not isinstance(output, torch.Tensor):
        raise TypeError(
            f"loss='cross_entropy' needs the model's output to be a tensor, got {type(output).__name__}"
        )
    allowed = (
        "cross_entropy takes logits (N, C) with integer labels (N,) or probabilities (N, C), "
        "or logits (..., C) with labels (...), e.g. (B, T, V) with (B, T)"
    )
    if output.ndim >= 1 and output.shape == y.shape and y.is_floating_point():
        return F.cross_entropy(output.reshape(-1, output.shape[-1]), y.reshape(-1, y.shape[-1]))
    if output.ndim >= 2 and output.shape[:-1] == y.shape and not y.is_floating_point():
        return F.cross_entropy(output.reshape(-1, output.shape[-1]), y.reshape(-1))
    raise _shape_error("cross_entropy", output, y, allowed)


def get_loss(loss: LossSpec) -> LossFn:
    """Return the loss function for a name in :data:`LOSSES`, or ``loss`` itself if it is callable."""
    if callable(loss):
        return loss
    if not isinstance(loss, str):
        raise TypeError(f"loss must be a name in {LOSSES} or a callable, got {type(loss).__name__}")
    check_choice("loss", loss, LOSSES)
    if loss == "cross_entropy":
        return _cross_entropy
    if loss in ("bce", "binary_cross_entropy"):
        return _bce
    return _mse


def predictions(output: torch.Tensor, loss: LossSpec) -> torch.Tensor | None:
    """Predicted class labels for a classification loss (``None`` for regression or a custom loss)."""
    if loss == "cross_entropy":
        return output.argmax(dim=-1)
    if loss in ("bce", "binary_cross_entropy"):
        return (output.reshape(output.shape[0], -1)[:, 0] > 0).long()
    return None
