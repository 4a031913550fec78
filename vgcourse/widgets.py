"""Interactive explorers: ipywidgets controls driving real PyTorch computations, redrawn in place.

Every lesson's explorer is an :class:`Explorer`: a title, a short "what to try" caption, a row of
controls with a reset button, a one-line readout of the key numbers and a plot. The plot is a PNG in
an ``ipywidgets.Image``, so it updates in place (no flicker, no jumping layout) on ipywidgets 7.7
(Colab) and 8 alike.

**How a redraw works, and why it is fast.** A control change calls ``update(axes, **values)``,
which draws on the cleared axes (or, with ``clear=False``, moves the artists it drew before). The
figure is then rendered by matplotlib's Agg canvas, kept for the explorer's life so its caches stay
warm, and the pixel buffer is encoded as an RGB PNG by Pillow at zlib level 1: about half the time of
``Figure.savefig``, which builds a new canvas and renderer on every call. The layout is solved once
(constrained layout, at the first draw) and then frozen: every later redraw puts each axes, and
each colorbar or twin axes the update adds, back where the first draw put it.

**Changes made in the browser are drawn off the kernel's main thread.** ipykernel handles one comm
message at a time; drawn there, a learner holding an arrow key would queue one redraw per key
repeat and watch the plot lag behind for seconds. Instead the message handler only marks the
explorer as changed and a background thread draws it, so the kernel keeps reading messages while
the thread draws, and any number of changes that arrive meanwhile are drawn once, for the latest
values. Before a notebook cell runs, the kernel waits for that thread, so a cell never races a
redraw (seeded computations stay repeatable). Changes made from code (:meth:`Explorer.set`,
:meth:`Explorer.reset`, ``control.value = ...``) are drawn at once, before the call returns.

**Where widgets cannot render** (ipywidgets missing, a terminal, a notebook exported to static
HTML or viewed on a site that runs no kernel) the explorer's output carries its default plot as a
plain ``image/png`` next to the widget view, so it shows as an image.
"""

from __future__ import annotations

import base64
import contextvars
import html
import io
import numbers
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox
from PIL import Image as _PILImage

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


# -- the explorer -----------------------------------------------------------------------------------
#: The figure's suptitle, supxlabel and supylabel: placed by the layout engine like the axes.
_SUPER_TEXTS = ("_suptitle", "_supxlabel", "_supylabel")


@dataclass
class _Layout:
    """Where the first draw (constrained layout) put every axes: restored before each later draw."""

    specs: list  # each own axes' SubplotSpec
    own: list[Bbox]  # each own axes' position
    extra: list[Bbox]  # position of each axes the update added (colorbar, twin), in creation order
    sup: dict  # where the layout put the suptitle, supxlabel and supylabel (name -> (x, y))


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
        self._w = _widgets()
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
        if self.widget is not None and _in_kernel():
            bundle[WIDGET_VIEW_MIMETYPE] = {
                "version_major": 2,
                "version_minor": 0,
                "model_id": self.widget.model_id,
            }
        return bundle


def clear_data(ax) -> None:
    """Remove what was plotted on ``ax`` (lines, bars, collections, images, texts, the legend); keep the axes.

    A cheaper ``ax.clear()`` for the ``update`` of an ``Explorer(..., clear=False)`` that re-plots
    its data on every call: the axis objects and their ticks stay, so the next draw does not build
    them again (rebuilding ticks is about a third of redrawing a cleared panel). What stays is every
    setting of the axes (scale, tick locators, limits mode, labels, title): an update that changes
    one for some settings must set it on every call. The data limits are forgotten, autoscaling is
    switched back on (so the axes fit the new data) and the colour cycle starts again.
    """
    for container in list(ax.containers):
        container.remove()
    for artist in [*ax.lines, *ax.collections, *ax.patches, *ax.images, *ax.texts, *ax.tables]:
        artist.remove()
    legend = ax.get_legend()
    if legend is not None:
        legend.remove()
    ax.relim()
    ax.set_autoscale_on(True)
    ax.set_prop_cycle(None)  # colours start again at C0, as after ax.clear()


# -- the background redraw thread -------------------------------------------------------------------
class _Redrawer:
    """One daemon thread that draws explorers whose controls were moved in the browser.

    :meth:`request` queues an explorer once (a second request while it waits adds nothing), so
    changes that arrive during a redraw are drawn together, once, for the latest values. The
    redraw runs in a copy of the requesting message's context, so what it sends (the new image,
    any output) carries that message as its parent, as if it had been drawn in place.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: dict[Explorer, contextvars.Context] = {}  # in order of request
        self._busy: Explorer | None = None
        self._thread: threading.Thread | None = None
        self._hooked = False

    def request(self, explorer: Explorer) -> bool:
        """Queue ``explorer`` for the thread; False where no thread can run (then draw in place)."""
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                thread = threading.Thread(target=self._run, name="vgcourse-redraw", daemon=True)
                try:
                    thread.start()
                except RuntimeError:  # no threads here (e.g. a browser-only Python)
                    return False
                self._thread = thread
            self._queue[explorer] = contextvars.copy_context()  # keeps its place in the queue
            self._cond.notify_all()
        self._hook_cells()
        return True

    def wait(self, explorer: Explorer | None = None, timeout: float | None = None) -> bool:
        """Wait until ``explorer`` (every explorer when None) has no queued or running redraw."""

        def idle() -> bool:
            if explorer is None:
                return not self._queue and self._busy is None
            return explorer not in self._queue and self._busy is not explorer

        with self._cond:
            return self._cond.wait_for(idle, timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._queue))
                explorer = self._busy = next(iter(self._queue))
                context = self._queue.pop(explorer)
            try:
                context.run(explorer._redraw_if_dirty)
            finally:
                with self._cond:
                    self._busy = None
                    self._cond.notify_all()

    def _hook_cells(self) -> None:
        """Make every notebook cell wait for queued redraws, so cells never run beside one."""
        if self._hooked:
            return
        try:
            from IPython import get_ipython
        except ImportError:
            return
        shell = get_ipython()
        if shell is not None:
            shell.events.register("pre_run_cell", self._before_cell)
            self._hooked = True

    def _before_cell(self, *_: Any) -> None:
        self.wait()


_REDRAWER = _Redrawer()


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
    w = _widgets()
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
    w = _widgets()
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
    w = _widgets()
    if w is None:
        return value
    return w.Checkbox(value=value, description=description, indent=False, **kw)


# -- the gradient-flow explorer (lessons 05 and 09) -------------------------------------------------
def gradient_flow(
    *,
    depth: int,
    width: int,
    activation: str,
    init: str,
    norm: str | None = None,
    residual: bool = False,
    data=None,
    loss: str = "cross_entropy",
    seed: int = 0,
    device=None,
    **init_kw,
):
    """Build one MLP and probe it on ``data``: ``(grad_norms, activation_samples, probe)``.

    The computation behind the gradient-flow explorers: a fresh seeded :func:`vgcourse.mlp`, one
    forward/backward pass under a :class:`vgcourse.probes.Probe`.
    """
    import torch

    from .data import moons
    from .device import get_device
    from .models import mlp
    from .probes import probe_model
    from .train import layer_grad_norms

    X, y = data if data is not None else moons(256, 0.1, seed=0)
    n_classes = int(y.max()) + 1 if loss == "cross_entropy" else 1
    torch.manual_seed(seed)
    net = mlp(
        X.shape[1],
        n_classes,
        depth=depth,
        width=width,
        activation=activation,
        init=init,
        norm=norm,
        residual=residual,
        device=device or get_device(),
        **init_kw,
    )
    probe = probe_model(net, X, y, loss)
    norms = layer_grad_norms(net, X, y, loss)
    samples = {f"layer {i + 1}": r.values for i, r in enumerate(probe.activations.values())}
    return norms, samples, probe


def gradient_flow_explorer(
    *,
    depth: int = 10,
    width: int = 32,
    activation: str = "sigmoid",
    init: str = "standard",
    norm: str | None = None,
    residual: bool = False,
    controls: tuple[str, ...] = ("depth", "activation", "init"),
    max_depth: int = 50,
    data=None,
    caption: str = "",
    title: str | None = None,
    device=None,
) -> Explorer:
    """Explorer: MLP settings -> per-layer activation histograms (left) and gradient norms (right).

    ``controls`` picks which settings get a widget, among ``depth``, ``activation``, ``init``,
    ``norm`` and ``residual``; the others stay fixed at the given values. Each setting is computed
    once (cached), so going back to a setting only redraws. ``explorer.state`` holds the last
    setting (``config``), its per-layer gradient norms (``norms``), the activation samples shown
    (``samples``) and the largest saturated and dead fractions over the layers. The networks run
    on ``device`` (default: :func:`vgcourse.get_device`).
    """
    from functools import lru_cache

    from .activations import ACTIVATIONS
    from .inits import INITS
    from .plots import plot_grad_norms, plot_histograms

    fixed = dict(depth=depth, activation=activation, init=init, norm=norm, residual=residual)
    makers = {
        "depth": lambda: slider(depth, 1, max_depth, 1, "depth", integer=True),
        "activation": lambda: dropdown(
            [a for a in ACTIVATIONS if a != "swish"], activation, "activation"
        ),
        "init": lambda: dropdown([i for i in INITS if i != "zeros"], init, "init"),
        "norm": lambda: dropdown(
            [("none", None), ("batch", "batch"), ("layer", "layer")], norm, "norm"
        ),
        "residual": lambda: checkbox(residual, "skip connections"),
    }
    if isinstance(controls, str) or not all(isinstance(c, str) for c in controls):
        raise TypeError(
            f"controls must be a tuple of names among {sorted(makers)}; got {controls!r}"
        )
    unknown = set(controls) - set(makers)
    if unknown:
        raise ValueError(f"controls must be among {sorted(makers)}; got {sorted(unknown)}")
    widgets_ = {name: makers[name]() for name in controls}
    state: dict[str, Any] = {}

    @lru_cache(maxsize=128)
    def compute(depth: int, activation: str, init: str, norm: str | None, residual: bool):
        norms, samples, probe = gradient_flow(
            width=width,
            data=data,
            depth=depth,
            activation=activation,
            init=init,
            norm=norm,
            residual=residual,
            device=device,
        )
        shown = dict(list(samples.items())[:: max(1, len(samples) // 8)])
        sat = max((r.saturated for r in probe.activations.values()), default=0.0)
        dead = max((r.dead for r in probe.activations.values()), default=0.0)
        return norms, shown, sat, dead

    def update(axes, **values):
        config = {**fixed, **values}
        config["depth"] = int(config["depth"])
        norms, shown, sat, dead = compute(**config)
        state.update(config=config, norms=norms, samples=shown, saturated=sat, dead=dead)
        for ax in axes:
            clear_data(ax)
        plot_histograms(shown, ax=axes[0], title="activations per layer", xlabel="activation value")
        plot_grad_norms(norms, ax=axes[1])
        ratio = norms[0] / norms[-1] if norms[-1] > 0 else float("nan")
        return (
            f"layer 1 / layer {len(norms)} gradient norm: {ratio:.3g} | "
            f"max saturated: {sat:.0%} | max dead: {dead:.0%}"
        )

    return Explorer(
        update,
        widgets_,
        caption=caption
        or "raise the depth, then switch the activation "
        "or init and watch the gradient norm of layer 1 against the last layer.",
        title=title,
        clear=False,  # update re-plots on the kept axes (see clear_data)
        state=state,
    )
