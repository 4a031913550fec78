"""Feedback for exercises: compare a learner's answer with the expected one and explain a mismatch.

``check_close("sigmoid'(0)", got, 0.25, hint="use sigma(z) * (1 - sigma(z))")`` prints a short
confirmation when the answer is right and raises ``AssertionError`` saying what was expected, what
came back and a hint when it is not, so the failing cell tells the learner what to fix.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def _as_array(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().double().numpy()
    return np.asarray(value, dtype=float)


def check_close(
    what: str,
    got: Any,
    expected: Any,
    *,
    rtol: float = 1e-5,
    atol: float = 1e-8,
    hint: str = "",
    quiet: bool = False,
) -> None:
    """Assert that ``got`` equals ``expected`` within tolerance (same shape), with a helpful message."""
    if got is None:
        raise AssertionError(f"{what}: your code returned None; did you forget a `return`?")
    try:
        g = _as_array(got)
    except (TypeError, ValueError):
        raise AssertionError(
            f"{what}: expected a number or array, got {type(got).__name__}"
        ) from None
    e = _as_array(expected)
    if g.shape != e.shape:
        raise AssertionError(
            f"{what}: expected shape {e.shape}, got shape {g.shape}. {hint}".strip()
        )
    if not np.allclose(g, e, rtol=rtol, atol=atol, equal_nan=False):
        worst = np.unravel_index(np.argmax(np.abs(g - e)), g.shape) if g.shape else ()
        shown_g = g[worst] if g.shape else g
        shown_e = e[worst] if e.shape else e
        where = f" at index {tuple(int(i) for i in worst)}" if g.shape else ""
        raise AssertionError(
            f"{what}: expected {float(shown_e):.6g}{where}, got {float(shown_g):.6g}. {hint}".strip()
        )
    if not quiet:
        print(f"correct: {what}")
