r"""What :func:`vgcourse.diagnose` accepts as a batch and as a model output, made uniform.

Practitioners' models take more than one tensor and return more than logits. This module turns
what they pass into a :class:`Batch` (the positional input, forward keyword arguments such as an
attention mask, the target) and what the model returns into the tensor the loss compares with the
target, or the loss the model computed itself:

* **inputs**: a tensor ``X``; a ``(X, y)`` pair (a DataLoader batch); a dict of forward keyword
  arguments (``{"input_ids": ..., "attention_mask": ..., "labels": ...}``, passed as
  ``model(**X)``); extra keyword arguments in ``forward_kwargs``. ``batch_dim`` says which dimension
  of ``X`` holds the samples (1 for a sequence-first ``nn.RNN`` with ``batch_first=False``).
* **outputs**: a tensor; a tuple, list or namedtuple (its first tensor, e.g. ``nn.LSTM``'s
  ``(output, (h, c))`` or a ``return_dict=False`` transformer); a dict or a Hugging Face
  ``ModelOutput`` (its ``logits``); or anything, through ``output_fn(out) -> tensor``. An output
  carrying its own ``loss`` (a Hugging Face model given ``labels``) is used as the loss when no
  ``y`` is given. ``(B, T, V)`` logits against ``(B, T)`` token targets are a language model's
  cross-entropy (:mod:`vgcourse.losses` flattens them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from ._validate import check_int, check_tensor


@dataclass
class Batch:
    """One batch as the model takes it: ``model(X, **kwargs)`` (``X`` may be ``None``), target ``y``."""

    X: torch.Tensor | None
    y: torch.Tensor | None
    kwargs: dict[str, Any] = field(default_factory=dict)
    batch_dim: int = 0
    size: int = 0  # the number of samples
    classes: int | None = None  # the logits' last dimension, once a cross-entropy loss saw them

    def shapes(self) -> str:
        """The caller's shapes in words, for error messages."""
        parts = [] if self.X is None else [f"X has shape {tuple(self.X.shape)}"]
        parts += [
            f"{k} shape {tuple(v.shape)}"
            for k, v in self.kwargs.items()
            if isinstance(v, torch.Tensor)
        ]
        if self.y is not None:
            parts.append(f"y shape {tuple(self.y.shape)}")
        return ", ".join(parts)

    def to(self, device: torch.device) -> Batch:
        move = lambda v: v.to(device) if isinstance(v, torch.Tensor) else v  # noqa: E731
        return Batch(
            move(self.X),
            move(self.y),
            {k: move(v) for k, v in self.kwargs.items()},
            self.batch_dim,
            self.size,
            self.classes,
        )

    def split(self, parts: int) -> list[Batch]:
        """``parts`` batches of consecutive samples (every tensor with the batch size is split)."""
        if parts == 1:
            return [self]

        def cut(v: Any, dim: int) -> list[Any]:
            if isinstance(v, torch.Tensor) and v.ndim > dim and v.shape[dim] == self.size:
                return list(torch.tensor_split(v, parts, dim=dim))
            if isinstance(v, torch.Tensor) and v.ndim and v.shape[0] == self.size:
                return list(torch.tensor_split(v, parts, dim=0))
            return [v] * parts

        Xs = cut(self.X, self.batch_dim)
        ys = cut(self.y, self.batch_dim)
        kws = {k: cut(v, self.batch_dim) for k, v in self.kwargs.items()}
        return [
            Batch(Xs[i], ys[i], {k: v[i] for k, v in kws.items()}, self.batch_dim)
            for i in range(parts)
        ]


def _batch_size(value: torch.Tensor, dim: int, name: str) -> int:
    if value.ndim <= dim:
        raise ValueError(
            f"{name} of shape {tuple(value.shape)} has no batch dimension {dim} (batch_dim={dim})"
        )
    return int(value.shape[dim])


def make_batch(
    X: Any,
    y: Any,
    forward_kwargs: Mapping[str, Any] | None,
    batch_dim: int,
) -> Batch:
    """Check and normalise what the caller passed (see the module docstring)."""
    batch_dim = check_int("batch_dim", batch_dim, minimum=0)
    if forward_kwargs is not None and not isinstance(forward_kwargs, Mapping):
        raise TypeError(
            f"forward_kwargs must be a dict of keyword arguments, got {type(forward_kwargs).__name__}"
        )
    kwargs = dict(forward_kwargs or {})
    if isinstance(X, (tuple, list)):
        if y is not None or len(X) != 2:
            raise TypeError(
                "pass either X and y, or one (X, y) batch as X (a tuple or list of two)"
            )
        X, y = X
    if isinstance(X, Mapping):
        overlap = set(X) & set(kwargs)
        if overlap:
            raise ValueError(f"{sorted(overlap)} given both in X and in forward_kwargs")
        kwargs = {**X, **kwargs}
        X = None
    else:
        X = check_tensor("X", X)
    for key, value in kwargs.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            check_tensor(key, value)  # non-finite inputs are an error, as for X
    if y is not None:
        y = check_tensor("y", y)
    first = (
        X
        if X is not None
        else next((v for v in kwargs.values() if isinstance(v, torch.Tensor)), None)
    )
    if first is None:
        raise TypeError("no input tensor: pass X as a tensor or a dict holding tensors")
    size = _batch_size(first, batch_dim, "X" if X is not None else "the first input")
    if y is not None:
        y_size = y.shape[batch_dim] if y.ndim > batch_dim else None
        if y.ndim == 0 or size not in (y.shape[0], y_size):
            raise ValueError(
                f"X and y must have the same number of rows (samples along batch_dim={batch_dim}); "
                f"got shapes {tuple(first.shape)} and {tuple(y.shape)}"
            )
    return Batch(X, y, kwargs, batch_dim, size)


def _first_tensor(values: Any) -> torch.Tensor | None:
    for v in values:
        if isinstance(v, torch.Tensor):
            return v
    return None


def output_tensor(out: Any, output_fn: Callable[[Any], torch.Tensor] | None) -> torch.Tensor:
    """The tensor of a model output that the loss compares with the target."""
    if output_fn is not None:
        result = output_fn(out)
        if not isinstance(result, torch.Tensor):
            raise TypeError(f"output_fn must return a tensor, got {type(result).__name__}")
        return result
    if isinstance(out, torch.Tensor):
        return out
    logits = out.get("logits") if isinstance(out, Mapping) else getattr(out, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(out, (tuple, list)):
        found = _first_tensor(out)
        if found is not None:
            return found
    if isinstance(out, Mapping):
        found = _first_tensor(v for k, v in out.items() if k != "loss")
        if found is not None:
            return found
    raise TypeError(
        f"the model returned a {type(out).__name__}, which holds no tensor to compare with y; pass "
        "output_fn=lambda out: ... returning the logits"
    )


def model_loss(out: Any) -> torch.Tensor | None:
    """The loss a model computed itself (``out.loss`` or ``out["loss"]``), if any."""
    loss = out.get("loss") if isinstance(out, Mapping) else getattr(out, "loss", None)
    return loss if isinstance(loss, torch.Tensor) and loss.ndim == 0 else None
