"""The controls: :func:`slider`, :func:`dropdown`, :func:`checkbox` with the course's defaults (they
return the plain value without ipywidgets), and the helpers that read and set any control."""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

from . import _env

if TYPE_CHECKING:
    pass


# -- controls ---------------------------------------------------------------------------------------
#: ipywidgets reads a selection value of ``None`` as "nothing selected" (an empty dropdown), so a
#: dropdown option whose value is ``None`` carries this stand-in, mapped back by :class:`Explorer`.
NONE = "__none__"


def _from_widget(value):
    return None if isinstance(value, str) and value == NONE else value


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # e.g. arrays: not a dropdown option
        return False


def _set_value(control, value) -> None:
    """Set a control's value, ``None`` included (see :data:`NONE`)."""
    options = [o[1] if isinstance(o, tuple) else o for o in getattr(control, "options", ())]
    control.value = NONE if value is None and NONE in options else value


def _option_values(control) -> list | None:
    """A selection control's option values (``None`` for the stand-in), or None for other controls."""
    options = getattr(control, "options", None)
    if options is None or isinstance(options, str):
        return None
    return [_from_widget(o[1] if isinstance(o, tuple) else o) for o in options]


def _slider_bounds(control) -> tuple[float, float] | None:
    """A slider's (min, max) in value units (a log slider's ``min``/``max`` are exponents)."""
    lo, hi = getattr(control, "min", None), getattr(control, "max", None)
    if not isinstance(lo, numbers.Real) or not isinstance(hi, numbers.Real):
        return None
    base = getattr(control, "base", None)
    if isinstance(base, numbers.Real):
        return float(base) ** lo, float(base) ** hi
    return lo, hi


def slider(
    value: float,
    lo: float,
    hi: float,
    step: float,
    description: str,
    *,
    log: bool = False,
    integer: bool = False,
    **kw,
):
    """A slider with the course's defaults: redraw on release (``continuous_update=False``).

    With ``log=True`` it is a ``FloatLogSlider``: ``lo`` and ``hi`` are then *exponents* of 10
    (``slider(1e-2, -4, 0, 0.25, "lr", log=True)`` spans 1e-4 to 1) while ``value`` is the value itself.
    Without ipywidgets it returns ``value`` (the explorer then shows that setting, statically).
    """
    w = _env._widgets()
    if w is None:
        return value
    common = dict(
        value=value,
        description=description,
        continuous_update=False,
        style={"description_width": "initial"},
        **kw,
    )
    if integer:
        return w.IntSlider(min=int(lo), max=int(hi), step=int(step), **common)
    if log:
        return w.FloatLogSlider(min=lo, max=hi, step=step, base=10, readout_format=".2g", **common)
    return w.FloatSlider(min=lo, max=hi, step=step, **common)


def dropdown(options, value, description: str, **kw):
    """A dropdown with the course's defaults; ``options`` are values or ``(label, value)`` pairs.

    A value of ``None`` is allowed (see :data:`NONE`). Without ipywidgets it returns ``value``.
    """
    w = _env._widgets()
    if w is None:
        return value
    # every option as a (label, value) pair, so plain values and pairs can be mixed
    pairs = [o if isinstance(o, tuple) and len(o) == 2 else (str(o), o) for o in options]
    options = [(label, NONE if v is None else v) for label, v in pairs]
    control = w.Dropdown(
        options=options, description=description, style={"description_width": "initial"}, **kw
    )
    _set_value(control, value)
    return control


def checkbox(value: bool, description: str, **kw):
    """A checkbox with the course's defaults. Without ipywidgets it returns ``value``."""
    w = _env._widgets()
    if w is None:
        return value
    return w.Checkbox(value=value, description=description, indent=False, **kw)
