"""Argument checks shared by every public function.

Each check raises ``TypeError`` (wrong kind of value) or ``ValueError`` (right kind, bad value)
with a message that names the argument, shows the bad value and says what is allowed, so a
learner reading a traceback in a notebook knows what to change.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import torch


def check_int(name: str, value: Any, *, minimum: int | None = None) -> int:
    """Return ``value`` if it is an integer (not a bool) and at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_real(name: str, value: Any) -> float:
    """Return ``value`` as a float if it is a finite real number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


def check_positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a float if it is a finite real number > 0 (or >= 0)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    ok = value >= 0 if allow_zero else value > 0
    if not ok or value != value or value in (float("inf"), float("-inf")):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return value


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``, else list the allowed values."""
    allowed = tuple(allowed)
    if value not in allowed:
        listing = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name} must be one of {listing}; got {value!r}")
    return value


def check_tensor(
    name: str, value: Any, *, finite: bool = True, ndim: int | None = None
) -> torch.Tensor:
    """Return ``value`` as a tensor; reject non-finite entries and a wrong number of dimensions."""
    if not isinstance(value, torch.Tensor):
        try:
            import numpy as np

            if isinstance(value, np.ndarray):
                value = torch.from_numpy(value)
            else:
                raise TypeError
        except TypeError:
            raise TypeError(
                f"{name} must be a torch.Tensor or numpy array, got {type(value).__name__}"
            ) from None
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(value.shape)}")
    if finite and value.is_floating_point() and not bool(torch.isfinite(value).all()):
        bad = int((~torch.isfinite(value)).sum())
        raise ValueError(
            f"{name} contains {bad} non-finite value(s) (NaN or Inf); clean the data first"
        )
    return value


def check_xy(X: Any, y: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Check a data pair: tensors, finite, and the same number of rows."""
    X = check_tensor("X", X)
    y = check_tensor("y", y)
    if X.ndim == 0 or y.ndim == 0:
        raise ValueError(
            f"X and y must have a batch dimension; got shapes {tuple(X.shape)} and {tuple(y.shape)}"
        )
    if X.shape[0] != y.shape[0]:
        raise ValueError(
            f"X and y must have the same number of rows (samples); got X with {X.shape[0]} "
            f"and y with {y.shape[0]}"
        )
    return X, y


def check_module(name: str, value: Any) -> torch.nn.Module:
    """Return ``value`` if it is an ``nn.Module`` with at least one parameter."""
    if not isinstance(value, torch.nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(value).__name__}")
    if next(value.parameters(), None) is None:
        raise ValueError(f"{name} has no parameters; there are no gradients to study")
    return value


# -- tensors and dtypes for vgcourse.gradcheck --------------------------------------------------------------------------
def _check_dtype(name: str, dtype: Any, *, allow_none: bool = False) -> torch.dtype | None:
    if dtype is None and allow_none:
        return None
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        allowed = "a floating-point torch.dtype such as torch.float64 or torch.float32"
        if allow_none:
            allowed += ", or None (keep each tensor's own dtype)"
        raise TypeError(f"{name} must be {allowed}; got {dtype!r}")
    return dtype


def _as_tensor_list(name: str, params: Any) -> tuple[list[torch.Tensor], bool]:
    """``params`` as a non-empty list of floating tensors, and whether a single tensor was given."""
    single = isinstance(params, torch.Tensor)
    if single:
        items = [params]
    elif isinstance(params, Sequence) and not isinstance(params, (str, bytes)):
        items = list(params)
    else:
        raise TypeError(
            f"{name} must be a tensor or a sequence of tensors, got {type(params).__name__}"
        )
    if not items:
        raise ValueError(f"{name} is empty; give at least one tensor")
    for i, p in enumerate(items):
        if not isinstance(p, torch.Tensor):
            raise TypeError(f"{name}[{i}] must be a torch.Tensor, got {type(p).__name__}")
        if not p.is_floating_point():
            raise TypeError(
                f"{name}[{i}] must be a floating-point tensor (gradients need real numbers), "
                f"got dtype {p.dtype}"
            )
        check_tensor(f"{name}[{i}]", p)
    return items, single
