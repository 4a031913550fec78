r"""Loss functions by name, so lessons and sweeps can say ``loss="bce"``.

* ``"cross_entropy"``: softmax cross-entropy on logits ``(N, C)`` and integer labels ``(N,)``.
* ``"bce"`` (alias ``"binary_cross_entropy"``): :math:`-[y\log\sigma(z) + (1-y)\log(1-\sigma(z))]` on
  one logit per sample, ``(N,)`` or ``(N, 1)``, and labels in {0, 1}. Computed from logits
  (``BCEWithLogitsLoss``), which equals a sigmoid output unit followed by binary cross-entropy
  but never takes :math:`\log 0`.
* ``"mse"``: mean squared error, :math:`\frac1N\sum (\hat y - y)^2`.

A callable ``loss(output, y) -> scalar tensor`` is accepted wherever a name is.
"""

from __future__ import annotations

from typing import Callable, Union

import torch
import torch.nn.functional as F

from ._validate import check_choice

LOSSES: tuple[str, ...] = ("cross_entropy", "bce", "binary_cross_entropy", "mse")
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
LossSpec = Union[str, LossFn]


def _bce(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if output.ndim == 2 and output.shape[1] == 1:
        output = output.squeeze(1)
    return F.binary_cross_entropy_with_logits(output, y.to(output.dtype))


def _mse(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if output.ndim == y.ndim + 1 and output.shape[-1] == 1:
        output = output.squeeze(-1)
    return F.mse_loss(output, y.to(output.dtype))


def get_loss(loss: LossSpec) -> LossFn:
    """Return the loss function for a name in :data:`LOSSES`, or ``loss`` itself if it is callable."""
    if callable(loss):
        return loss
    if not isinstance(loss, str):
        raise TypeError(f"loss must be a name in {LOSSES} or a callable, got {type(loss).__name__}")
    check_choice("loss", loss, LOSSES)
    if loss == "cross_entropy":
        return F.cross_entropy
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
