"""What the explorers need to know about where they run (a kernel, ipywidgets), and their argument checks."""

from __future__ import annotations

import numbers
from typing import Any, Callable

UpdateFn = Callable[..., "str | None"]

#: Errors an ``update`` raises for a setting it cannot compute (a shape that does not fit, a
#: divergence): the explorer shows them in the readout instead of raising. Others are bugs: raised.
SETTING_ERRORS: tuple[type[BaseException], ...] = (ValueError, RuntimeError, ArithmeticError)

#: The MIME type under which Jupyter frontends find a widget to render.
WIDGET_VIEW_MIMETYPE = "application/vnd.jupyter.widget-view+json"


def _in_kernel() -> bool:
    """True inside a Jupyter kernel (where a widget can reach a frontend), False in a terminal or script."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _widgets():
    """The ipywidgets module, or None where it is not installed."""
    try:
        import ipywidgets
    except ImportError:
        return None
    return ipywidgets


# -- checks -----------------------------------------------------------------------------------------
def _check_count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= 1, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _check_figsize(figsize: Any) -> tuple[float, float]:
    ok = (
        isinstance(figsize, (tuple, list))
        and len(figsize) == 2
        and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in figsize)
    )
    if not ok:
        raise TypeError(
            f"figsize must be a pair of numbers (width, height) in inches, got {figsize!r}"
        )
    if not all(0 < v < 100 for v in figsize):
        raise ValueError(f"figsize must be two numbers between 0 and 100 inches, got {figsize!r}")
    return float(figsize[0]), float(figsize[1])


def _check_text(name: str, value: Any, *, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        allowed = "a string or None" if optional else "a string"
        raise TypeError(f"{name} must be {allowed}, got {value!r} ({type(value).__name__})")
    return value
