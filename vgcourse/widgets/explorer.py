"""The :class:`Explorer`: controls, a caption, a reset button, one Agg canvas drawn straight to a PNG in an
``ipywidgets.Image`` (redrawn in place, layout frozen after the first draw) and a one-line readout;
without widgets, the static PNG and readout; :func:`clear_data` for artist reuse."""

from __future__ import annotations

import base64
import html
import io
import numbers
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from PIL import Image as _PILImage

from . import _env
from ._env import (
    SETTING_ERRORS,
    WIDGET_VIEW_MIMETYPE,
    UpdateFn,
    _check_count,
    _check_figsize,
    _check_text,
)
from .canvas import _SUPER_TEXTS, _Layout
from .controls import _from_widget, _option_values, _same, _set_value, _slider_bounds
from .redraw import _REDRAWER


class Explorer:
    """A consistent interactive explorer.

    ``update(axes, **values)`` draws on the list of axes for the current control values and may
    return a short readout string (e.g. "first/last layer gradient ratio: 3e-5"). ``controls``
    maps keyword names to ipywidgets controls (use :func:`slider`, :func:`dropdown`,
    :func:`checkbox`) or, for a fixed argument, to a plain value. ``caption`` says what to try;
    ``title`` names the explorer; ``ncols`` x ``nrows`` axes share a ``figsize`` figure (inches)
    drawn at ``dpi`` dots per inch.

    With ``clear=True`` (default) each ``update`` starts from cleared axes: what the last one drew
    is gone, twin axes and colorbars included. With ``clear=False`` the update owns its axes: it
    either re-plots after :func:`clear_data` (which keeps the axes' ticks) or creates its artists
    when the axes are empty and later only changes their data (``line.set_ydata``, ``ax.relim()``,
    ``ax.autoscale_view()``). Both skip rebuilding the axes' ticks, about 40% of redrawing a
    two-panel line plot. After a setting that could not be computed the axes are cleared anyway.

    ``state`` is a dict the explorer's ``update`` may fill with what it computed (for tests and
    for the lesson's own checks); explorer factories often assign their own after construction.

    For tests and scripts: :meth:`set` changes controls programmatically and redraws;
    :attr:`readout`, :attr:`png`, :attr:`redraws` and :attr:`error` expose what was drawn;
    :meth:`wait` waits for redraws requested from the browser.
    """

    def __init__(
        self,
        update: UpdateFn,
        controls: Mapping[str, Any],
        *,
        caption: str = "",
        ncols: int = 2,
        nrows: int = 1,
        figsize: tuple[float, float] = (9.5, 3.6),
        dpi: int = 80,
        title: str | None = None,
        clear: bool = True,
        state: dict | None = None,
    ):
        if not callable(update):
            raise TypeError(f"update must be callable, got {type(update).__name__}")
        if not isinstance(controls, Mapping) or not controls:
            raise TypeError(
                "controls must be a non-empty dict mapping argument names to widgets or values, "
                f"got {controls!r}"
            )
        bad_keys = [k for k in controls if not isinstance(k, str) or not k.isidentifier()]
        if bad_keys:
            raise TypeError(f"controls keys must be argument names (identifiers), got {bad_keys!r}")
        if not isinstance(clear, bool):
            raise TypeError(f"clear must be True or False, got {clear!r}")
        if state is not None and not isinstance(state, dict):
            raise TypeError(f"state must be a dict or None, got {type(state).__name__}")
        self.update = update
        self.controls = dict(controls)
        self.caption = _check_text("caption", caption)
        self.title = _check_text("title", title, optional=True)
        self.clear = clear
        self.state: dict = {} if state is None else state
        self.figure = Figure(
            figsize=_check_figsize(figsize), dpi=_check_count("dpi", dpi), layout="constrained"
        )
        self._canvas = FigureCanvasAgg(self.figure)  # kept: its renderer's text caches stay warm
        grid = self.figure.subplots(
            _check_count("nrows", nrows), _check_count("ncols", ncols), squeeze=False
        )
        self.axes = [ax for row in grid for ax in row]
        self.defaults = self.values()
        self.readout: str = ""
        self.png: bytes = b""
        self.redraws = 0
        self.error: str | None = None
        self._layout: _Layout | None = None
        self._wipe = False  # clear the axes before the next update even with clear=False
        self._lock = threading.RLock()  # one redraw at a time (main thread or background thread)
        self._dirty = False  # a change from the browser waits to be drawn
        self._muted = False  # set() is changing several controls: one redraw at the end
        self._w = _env._widgets()
        self._build()
        self.redraw()

    # -- state ----------------------------------------------------------------------------------
    def values(self) -> dict[str, Any]:
        """The current value of every control (a plain value stands for itself)."""
        return {k: _from_widget(getattr(c, "value", c)) for k, c in self.controls.items()}

    def redraw(self, *_: Any) -> None:
        """Recompute and redraw for the current control values, before returning."""
        with self._lock:
            # this draw covers any browser change still waiting for the background thread
            self._dirty = False
            self._draw()

    def set(self, **values: Any) -> None:
        """Change controls programmatically (one redraw), as a learner moving sliders would.

        A value a control cannot take (outside a slider's range, not among a dropdown's options)
        raises ``ValueError`` naming the control and what it allows.
        """
        unknown = set(values) - set(self.controls)
        if unknown:
            raise ValueError(
                f"unknown control(s) {sorted(unknown)}; controls are {sorted(self.controls)}"
            )
        with self._lock:
            self._muted = True
            try:
                for name, value in values.items():
                    self._set_control(name, value)
            finally:
                self._muted = False
            self.redraw()

    def reset(self, *_: Any) -> None:
        """Put every control back to its starting value (one redraw)."""
        self.set(**self.defaults)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the changes made in the browser are drawn; False if ``timeout`` seconds passed first."""
        return _REDRAWER.wait(self, timeout)

    # -- drawing --------------------------------------------------------------------------------
    def _draw(self) -> None:
        values = self.values()
        self._prepare()
        try:
            readout = self.update(self.axes, **values)
            self.error = None
        except SETTING_ERRORS as err:
            readout = self._show_error(err)
        except Exception as err:  # a bug in update: say so, then raise it
            self.error = f"{type(err).__name__}: {err}"
            self._wipe = True
            raise
        self.readout = "" if readout is None else str(readout)
        self._render()
        self.png = self._encode()
        self.redraws += 1
        self._push()

    def _show_error(self, err: BaseException) -> str:
        """Empty axes with the reason in the first: a plot never claims a setting it did not compute."""
        self._remove_extras()
        for ax in self.axes:
            ax.clear()
        message = f"cannot compute this setting: {err}"
        self.axes[0].text(
            0.5,
            0.5,
            message,
            transform=self.axes[0].transAxes,
            ha="center",
            va="center",
            wrap=True,
            color="firebrick",
        )
        self.error = str(err)
        self._wipe = True
        return message

    def _prepare(self) -> None:
        """Restore the frozen layout and start from clean axes.

        With ``clear=True`` (or after an error) everything the last update drew goes: its artists,
        the twin axes and colorbars it added, figure-level text and legends. With ``clear=False``
        the update owns its artists; only the layout is restored.
        """
        full = self.clear or self._wipe
        if full:
            self._remove_extras()
        if self._layout is not None:
            for ax, spec, pos in zip(self.axes, self._layout.specs, self._layout.own):
                if ax.get_subplotspec() is not spec:  # a colorbar split it
                    ax.set_subplotspec(spec)
                ax.set_position(pos)
        if full:
            for ax in self.axes:
                ax.clear()
            self._wipe = False

    def _remove_extras(self) -> None:
        """Remove what an update added beyond the explorer's own axes: twin axes, colorbars, figure text."""
        fig = self.figure
        for ax in [ax for ax in fig.axes if ax not in self.axes]:
            ax.remove()
        for artists in (fig.texts, fig.legends, fig.lines, fig.patches, fig.images, fig.artists):
            artists.clear()
        for name in _SUPER_TEXTS:
            if getattr(fig, name, None) is not None:
                setattr(fig, name, None)

    def _render(self) -> None:
        """Draw the figure on the Agg canvas at the frozen layout (solving it where there is none)."""
        fig = self.figure
        extra = [ax for ax in fig.axes if ax not in self.axes]
        layout = self._layout
        if layout is not None and len(extra) == len(layout.extra):
            for ax, pos in zip([*self.axes, *extra], [*layout.own, *layout.extra]):
                ax.set_position(pos)  # undo the space a new colorbar took from its parent
            for name, xy in layout.sup.items():
                text = getattr(fig, name, None)
                if text is not None:
                    text.set_position(xy)
            self._canvas.draw()
            return
        # first draw, or the update added other axes than at the last layout: solve it (once)
        fig.set_layout_engine("constrained")
        self._canvas.draw()
        self._layout = _Layout(
            specs=[ax.get_subplotspec() for ax in self.axes],
            own=[ax.get_position(original=True).frozen() for ax in self.axes],
            extra=[ax.get_position(original=True).frozen() for ax in extra],
            sup={
                name: getattr(fig, name).get_position()
                for name in _SUPER_TEXTS
                if getattr(fig, name, None) is not None
            },
        )
        fig.set_layout_engine("none")

    def _encode(self) -> bytes:
        """The canvas as PNG: RGB when the figure is opaque (a quarter less to compress), zlib level 1."""
        rgba = np.asarray(self._canvas.buffer_rgba())
        height, width = rgba.shape[:2]
        image = _PILImage.frombuffer("RGBA", (width, height), rgba, "raw", "RGBA", 0, 1)
        if to_rgba(self.figure.get_facecolor())[3] >= 1.0:
            image = image.convert("RGB")
        buf = io.BytesIO()
        image.save(buf, format="PNG", compress_level=1)
        return buf.getvalue()

    def _push(self) -> None:
        """Show the new readout, then the new plot, in the widget (no-op without widgets)."""
        if self._image is None:
            return
        self._readout.value = f"<code>{html.escape(self.readout)}</code>"
        self._image.value = self.png

    # -- controls -------------------------------------------------------------------------------
    def _set_control(self, name: str, value: Any) -> None:
        control = self.controls[name]
        if not hasattr(control, "value"):
            self.controls[name] = value
            return
        options = _option_values(control)
        if options is not None:
            if not any(_same(value, o) for o in options):
                raise ValueError(f"{name} must be one of {options}; got {value!r}")
            _set_value(control, value)
            return
        bounds = _slider_bounds(control)
        if bounds is not None:
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
            lo, hi = bounds
            slack = 1e-9 * max(abs(lo), abs(hi), 1.0)
            if not lo - slack <= value <= hi + slack:
                raise ValueError(
                    f"{name} must be between {lo:g} and {hi:g} (the slider's range); got {value!r}"
                )
            if isinstance(control.value, numbers.Integral) and value != int(value):
                raise ValueError(f"{name} must be a whole number, got {value!r}")
        try:
            control.value = value
        except Exception as err:  # traitlets' TraitError: the control refuses this kind of value
            if type(err).__name__ != "TraitError":
                raise
            kind = type(control.value).__name__
            raise TypeError(
                f"{name} takes a {kind} value (like {control.value!r}); got {value!r}"
            ) from err

    def _on_change(self, change: Mapping[str, Any]) -> None:
        if self._muted:
            return
        if getattr(change.get("owner"), "_property_lock", None):
            # the browser sent this change (ipywidgets holds the synced keys while it applies
            # them): draw it on the background thread, so the kernel keeps reading messages
            self._dirty = True
            if _REDRAWER.request(self):
                return
        self.redraw()

    def _redraw_if_dirty(self) -> None:
        """Background thread: draw the latest values if a browser change still waits for it."""
        with self._lock:
            if not self._dirty:
                return
            self._dirty = False
            try:
                self._draw()
            except Exception as err:  # nobody to raise it to: show it
                self.readout = f"error in this explorer's update: {type(err).__name__}: {err}"
                self._push()

    # -- display --------------------------------------------------------------------------------
    def _build(self) -> None:
        self._image = None
        self._readout = None
        self.widget = None
        w = self._w
        if w is None:
            return
        widgets = [c for c in self.controls.values() if isinstance(c, w.Widget)]
        for c in widgets:
            c.observe(self._on_change, names="value")
        reset = w.Button(
            description="reset",
            tooltip="back to the starting values",
            layout=w.Layout(width="80px"),
        )
        reset.on_click(self.reset)
        self._reset_button = reset
        self._image = w.Image(format="png", layout=w.Layout(max_width="100%"))
        self._readout = w.HTML()
        header = []
        if self.title:
            header.append(w.HTML(f"<b>{self.title}</b>"))
        if self.caption:
            header.append(w.HTML(f"<i>What to try:</i> {self.caption}"))
        controls = w.HBox(
            [*widgets, reset], layout=w.Layout(flex_flow="row wrap", align_items="center")
        )
        self.widget = w.VBox([*header, controls, self._readout, self._image])

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, Any]:
        """The widget view where a kernel can serve it, and always the plot as PNG and the readout as text.

        Frontends that render widgets (JupyterLab, Notebook, Colab, VS Code) rank the widget view
        first; everything else (static HTML export, nbviewer, GitHub, a reopened notebook without
        its kernel, a terminal) falls back to the image or the text.
        """
        text = (
            f"{self.title or 'Explorer'}: {self.readout}"
            if self.readout
            else (self.title or "Explorer")
        )
        bundle: dict[str, Any] = {
            "text/plain": text,
            "image/png": base64.b64encode(self.png).decode("ascii"),
        }
        if self.widget is not None and _env._in_kernel():
            bundle[WIDGET_VIEW_MIMETYPE] = {
                "version_major": 2,
                "version_minor": 0,
                "model_id": self.widget.model_id,
            }
        return bundle
