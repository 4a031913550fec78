"""Feedback for exercises: compare a learner's answer with the expected one and explain a mismatch.

Three kinds of check, one per kind of exercise:

* :func:`check_close` -- an implementation: the answer must equal the reference within the
  tolerances the exercise states (``rtol`` and ``atol`` both say what they mean:
  ``|got - expected| <= atol + rtol * |expected|``, NumPy's ``allclose``). ``mistakes`` names the
  typical wrong answers: when the learner's value matches one of them, the message says which
  mistake it is ("this is what a transposed Jacobian gives") instead of only "wrong".
* :func:`check_prediction` -- predict, then run: the learner writes a number before the
  experiment, and it is graded against the measurement within a stated factor or relative error.
* :func:`check_true` -- a design or debug task graded on its outcome (the repaired network trains,
  the gradient reaches layer 1), with a message that says what was measured.

Each prints a short confirmation when the answer is right and raises ``AssertionError`` saying
what was expected, what came back and a hint when it is not, so the failing cell tells the learner
what to fix.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

#: A typical wrong answer: the value it produces, or a test ``got -> bool`` that recognises it.
Mistake = Any | Callable[[np.ndarray], bool]


def _as_array(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().double().numpy()
    return np.asarray(value, dtype=float)


def _answer(what: str, got: Any) -> np.ndarray:
    """The learner's answer as a float array, or an ``AssertionError`` saying why it is not one."""
    if got is None:
        raise AssertionError(f"{what}: your code returned None; did you forget a `return`?")
    try:
        return _as_array(got)
    except (TypeError, ValueError):
        raise AssertionError(
            f"{what}: expected a number or array, got {type(got).__name__}"
        ) from None


def _check_tolerance(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


def _matches(got: np.ndarray, mistake: Mistake, rtol: float, atol: float) -> bool:
    """Whether ``got`` is what the typical ``mistake`` gives (a value, or a test on the answer)."""
    if callable(mistake):
        return bool(mistake(got))
    wrong = _as_array(mistake)
    if wrong.shape != got.shape:
        return False
    return bool(np.allclose(got, wrong, rtol=rtol, atol=atol))


def _which_mistake(
    got: np.ndarray, mistakes: Mapping[str, Mistake] | None, rtol: float, atol: float
) -> str:
    for description, mistake in (mistakes or {}).items():
        if _matches(got, mistake, rtol, atol):
            return description
    return ""


def check_close(
    what: str,
    got: Any,
    expected: Any,
    *,
    rtol: float = 1e-5,
    atol: float = 1e-8,
    hint: str = "",
    quiet: bool = False,
    mistakes: Mapping[str, Mistake] | None = None,
) -> None:
    """Assert that ``got`` equals ``expected`` within tolerance (same shape), with a helpful message.

    ``|got - expected| <= atol + rtol * |expected|`` elementwise. ``mistakes`` maps a description
    of a typical wrong answer ("a transposed Jacobian") to the value it produces, or to a test
    ``got -> bool``; a match is named in the message. A shape that is the transpose of the expected
    one is always named.
    """
    rtol, atol = _check_tolerance("rtol", rtol), _check_tolerance("atol", atol)
    g = _answer(what, got)
    e = _as_array(expected)
    if g.shape != e.shape:
        named = _which_mistake(g, mistakes, rtol, atol)
        if not named and g.ndim == 2 and g.shape == e.shape[::-1]:
            named = "a transposed matrix (rows and columns swapped)"
        because = f" That is what {named} gives." if named else ""
        raise AssertionError(
            f"{what}: expected shape {e.shape}, got shape {g.shape}.{because} {hint}".strip()
        )
    if not np.allclose(g, e, rtol=rtol, atol=atol, equal_nan=False):
        worst = np.unravel_index(np.argmax(np.abs(g - e)), g.shape) if g.shape else ()
        shown_g = g[worst] if g.shape else g
        shown_e = e[worst] if e.shape else e
        where = f" at index {tuple(int(i) for i in worst)}" if g.shape else ""
        named = _which_mistake(g, mistakes, rtol, atol)
        because = f" That is what {named} gives." if named else ""
        raise AssertionError(
            f"{what}: expected {float(shown_e):.6g}{where}, got {float(shown_g):.6g} "
            f"(tolerance: atol {atol:g} + rtol {rtol:g} x |expected|).{because} {hint}".strip()
        )
    if not quiet:
        print(f"correct: {what}")


def check_prediction(
    what: str,
    predicted: Any,
    measured: float,
    *,
    factor: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    hint: str = "",
    quiet: bool = False,
) -> None:
    """Grade a prediction made before an experiment against what the experiment measured.

    Give exactly one tolerance: ``factor`` (the prediction is within ``measured / factor`` and
    ``measured * factor``, for magnitudes that span decades; both must be positive), ``rtol``
    (``|predicted - measured| <= rtol * |measured|``) or ``atol`` (``|predicted - measured| <= atol``,
    e.g. a depth within 2 layers). The message shows both numbers either way, so the learner
    sees how far off the guess was.
    """
    given = {
        k: v for k, v in {"factor": factor, "rtol": rtol, "atol": atol}.items() if v is not None
    }
    if len(given) != 1:
        raise ValueError(f"give exactly one of factor, rtol, atol; got {sorted(given) or 'none'}")
    ((kind, tol),) = given.items()
    tol = _check_tolerance(kind, tol)
    if predicted is ... or predicted is None:
        raise AssertionError(
            f"{what}: write your prediction (a number) before running the experiment"
        )
    p = _answer(what, predicted)
    if p.shape != ():
        raise AssertionError(f"{what}: the prediction must be one number, got shape {p.shape}")
    p, m = float(p), float(measured)
    if kind == "factor":
        if tol < 1:
            raise ValueError(f"factor must be >= 1, got {tol:g}")
        if p <= 0 or m <= 0:
            ok = False
            window = f"within a factor of {tol:g} (both positive)"
        else:
            ok = abs(math.log(p / m)) <= math.log(tol) + 1e-12
            window = f"within a factor of {tol:g}, i.e. {m / tol:.3g} to {m * tol:.3g}"
    elif kind == "rtol":
        ok = abs(p - m) <= tol * abs(m)
        window = f"within {tol:.0%} of the measurement"
    else:
        ok = abs(p - m) <= tol
        window = f"within {tol:g} of the measurement"
    if not ok:
        raise AssertionError(
            f"{what}: you predicted {p:.4g}, the experiment measured {m:.4g}; a good prediction is "
            f"{window}. {hint}".strip()
        )
    if not quiet:
        print(f"correct: {what} (you predicted {p:.4g}, measured {m:.4g})")


def check_true(
    what: str, condition: bool, measured: str, *, hint: str = "", quiet: bool = False
) -> None:
    """Grade a design or debug task on its outcome: ``condition`` must hold.

    ``measured`` says in words what was measured ("final loss 0.08, first-layer gradient 3e-2"),
    so a failure shows the learner how far the repair got.
    """
    if not condition:
        raise AssertionError(f"{what}: not yet ({measured}). {hint}".strip())
    if not quiet:
        print(f"correct: {what} ({measured})")
