"""Readable checks: a claim the prose makes, the number that backs it, one line of output.

A lesson states a fact ("layer 1 gets less than 1e-3 of the last layer's gradient") and then checks
it on the numbers it just measured. :func:`claim` turns that check into one line a learner reads::

    >>> ratio = 2.1e-05
    >>> claim("layer 1 gets less than 1e-3 of the last layer's gradient", ratio < 1e-3, measured=ratio)
    ✓ layer 1 gets less than 1e-3 of the last layer's gradient (measured 2.1e-05)

When the claim does not hold it raises :class:`ClaimError` (an ``AssertionError``) that repeats the
claim and the measured value, so a notebook test (nbval) fails and says what broke.

Some numbers only hold at full scale (a width of 1024, thousands of steps). ``scale="full"`` says so:
at quick scale the line is printed, marked as not checked, with the quick-scale measurement beside
it; at full scale (``VGCOURSE_SCALE=full``) it is checked like any other claim.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ._validate import check_choice

__all__ = ["ClaimError", "claim", "format_measured"]

PASS, FAIL, SKIPPED = "✓", "✗", "·"


class ClaimError(AssertionError):
    """A claim of the lesson did not hold on the numbers measured."""


def _format_number(value: float) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    value = float(value)
    if not math.isfinite(value) or value == 0:
        return f"{value:g}"
    return f"{value:.3g}"


def format_measured(value: Any) -> str:
    """A short text for a measured value: numbers to 3 significant digits, tensors and arrays as
    numbers or lists, mappings as ``key=value`` pairs, strings as they are."""
    if isinstance(value, str):
        return value
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        value = value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, np.ndarray):
        value = value.item() if value.size == 1 else value.tolist()
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={format_measured(v)}" for k, v in value.items())
    if isinstance(value, Sequence):
        return "[" + ", ".join(format_measured(v) for v in value) + "]"
    if isinstance(value, (numbers.Real, np.generic)):
        return _format_number(value)
    return repr(value)


def _as_bool(holds: Any) -> bool:
    if isinstance(holds, torch.Tensor):
        if holds.numel() != 1 or holds.dtype != torch.bool:
            raise TypeError(
                f"holds must be a bool (the claim's test), got a tensor of shape "
                f"{tuple(holds.shape)} and dtype {holds.dtype}"
            )
        return bool(holds.item())
    if isinstance(holds, (bool, np.bool_)):
        return bool(holds)
    raise TypeError(
        f"holds must be a bool (the claim's test, e.g. ratio < 1e-3), got {holds!r} "
        f"({type(holds).__name__}); pass the number itself as measured="
    )


def claim(
    statement: str,
    holds: Any,
    *,
    measured: Any = None,
    scale: str = "any",
) -> None:
    """Print ``✓ statement (measured …)`` if ``holds`` is true, else raise :class:`ClaimError`.

    ``holds`` is the test of the claim (a bool, NumPy bool or one-element bool tensor), ``measured``
    the number (or numbers) it was decided on, printed beside the claim. ``scale="full"`` marks a
    claim that holds only at full scale: it is checked only when ``vg.scale() == "full"``, and at
    quick scale printed with ``·`` and "full scale, not checked at quick scale". Returns ``None``, so
    a cell that ends with a claim shows only the printed line.
    """
    if not isinstance(statement, str) or not statement.strip():
        raise TypeError(f"statement must be a non-empty string, got {statement!r}")
    check_choice("scale", scale, ("any", "full"))
    ok = _as_bool(holds)
    shown = "" if measured is None else f" (measured {format_measured(measured)})"
    if scale == "full":
        from .device import scale as current_scale

        if current_scale() != "full":
            print(f"{SKIPPED} {statement}{shown} [full scale, not checked at quick scale]")
            return
    if not ok:
        raise ClaimError(f"{FAIL} {statement}: does not hold{shown}")
    print(f"{PASS} {statement}{shown}")
