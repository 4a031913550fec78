"""Interactive explorers: ipywidgets controls driving real PyTorch computations, redrawn in place.

Every lesson's explorer is an :class:`Explorer`: a row of controls on top, a short "what to try"
caption, a reset button, a plot and a one-line readout of the key numbers. The plot is rendered by
matplotlib to PNG and shown in an ``ipywidgets.Image``, so it updates in place (no flicker, no
jumping layout) on ipywidgets 7.7 (Colab) and 8 alike. Where widgets cannot render (a terminal, a
static HTML export, ipywidgets missing) the explorer shows its default plot as a static image.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any, Callable

from matplotlib.figure import Figure

UpdateFn = Callable[..., "str | None"]


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _widgets():
    try:
        import ipywidgets
    except ImportError:
        return None
    return ipywidgets


class Explorer:
    """A consistent interactive explorer.

    ``update(axes, **values)`` draws on the (already cleared) list of axes for the current control
    values and may return a short readout string (e.g. "first/last layer gradient ratio: 3e-5").
    ``controls`` maps keyword names to ipywidgets controls (or, for the static fallback, to plain
    default values). ``caption`` says what to try. ``ncols``/``nrows`` lay out the axes.

    For tests and scripts: :meth:`set` changes controls programmatically and redraws;
    :attr:`readout`, :attr:`png` and :attr:`redraws` expose what was drawn.
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
    ):
        if not callable(update):
            raise TypeError(f"update must be callable, got {type(update).__name__}")
        if not isinstance(controls, Mapping) or not controls:
            raise TypeError(
                "controls must be a non-empty dict mapping argument names to widgets or values"
            )
        self.update = update
        self.controls = dict(controls)
        self.caption = caption
        self.title = title
        self.figure = Figure(figsize=figsize, dpi=dpi, layout="constrained")
        axes = self.figure.subplots(nrows, ncols, squeeze=False)
        self.axes = [ax for row in axes for ax in row]
        self.defaults = {k: _from_widget(getattr(c, "value", c)) for k, c in self.controls.items()}
        self.readout: str = ""
        self.png: bytes = b""
        self.redraws = 0
        self.error: str | None = None
        self._w = _widgets()
        self._build()
        self.redraw()

    # -- state ----------------------------------------------------------------------------
    def values(self) -> dict[str, Any]:
        """The current value of every control."""
        return {k: _from_widget(getattr(c, "value", c)) for k, c in self.controls.items()}

    def redraw(self, *_: Any) -> None:
        """Recompute and redraw for the current control values (called on every control change)."""
        for ax in self.axes:
            ax.clear()
        try:
            readout = self.update(self.axes, **self.values())
            self.error = None
        except (ValueError, RuntimeError, FloatingPointError) as err:
            readout = f"cannot compute this setting: {err}"
            self.error = str(err)
        self.readout = readout or ""
        buf = io.BytesIO()
        self.figure.savefig(buf, format="png", pil_kwargs={"compress_level": 1})
        self.png = buf.getvalue()
        if self.redraws == 0:
            # lay the figure out once (constrained layout is half the cost of a redraw), then keep
            # the axes where they are: later redraws are faster and the plot does not jump
            self.figure.set_layout_engine("none")
        self.redraws += 1
        if self._image is not None:
            self._image.value = self.png
            self._readout.value = f"<code>{self.readout}</code>"

    def set(self, **values: Any) -> None:
        """Change controls programmatically (one redraw), as a learner moving sliders would."""
        unknown = set(values) - set(self.controls)
        if unknown:
            raise ValueError(
                f"unknown control(s) {sorted(unknown)}; controls are {sorted(self.controls)}"
            )
        self._muted = True
        try:
            for k, v in values.items():
                c = self.controls[k]
                if hasattr(c, "value"):
                    _set_value(c, v)
                else:
                    self.controls[k] = v
        finally:
            self._muted = False
        self.redraw()

    def reset(self, *_: Any) -> None:
        """Put every control back to its starting value."""
        self.set(**self.defaults)

    # -- widgets --------------------------------------------------------------------------
    def _on_change(self, change: dict) -> None:
        if change.get("name") == "value" and not self._muted:
            self.redraw()

    def _build(self) -> None:
        self._muted = False
        self._image = None
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

    def _ipython_display_(self) -> None:
        from IPython.display import Image, display

        if self.widget is not None and _in_kernel():
            display(self.widget)
        else:  # static fallback: the default plot as an image
            display(Image(data=self.png))
            if self.readout:
                print(self.readout)


#: ipywidgets reads a selection value of ``None`` as "nothing selected" (an empty dropdown), so a
#: dropdown option whose value is ``None`` carries this stand-in, mapped back by :class:`Explorer`.
NONE = "__none__"


def _from_widget(value):
    return None if value == NONE else value


def _set_value(control, value) -> None:
    """Set a control's value, ``None`` included (see :data:`NONE`)."""
    options = [o[1] if isinstance(o, tuple) else o for o in getattr(control, "options", ())]
    control.value = NONE if value is None and NONE in options else value


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
    """A dropdown with the course's defaults."""
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
    """A checkbox with the course's defaults."""
    w = _widgets()
    if w is None:
        return value
    return w.Checkbox(value=value, description=description, indent=False, **kw)


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
) -> Explorer:
    """Explorer: MLP settings -> per-layer activation histograms (left) and gradient norms (right).

    ``controls`` picks which settings get a widget, among ``depth``, ``activation``, ``init``,
    ``norm`` and ``residual``; the others stay fixed at the given values.
    """
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
    unknown = set(controls) - set(makers)
    if unknown:
        raise ValueError(f"controls must be among {sorted(makers)}; got {sorted(unknown)}")
    widgets_ = {name: makers[name]() for name in controls}

    def update(axes, **values):
        config = {**fixed, **values}
        norms, samples, probe = gradient_flow(width=width, data=data, **config)
        shown = dict(list(samples.items())[:: max(1, len(samples) // 8)])
        plot_histograms(shown, ax=axes[0], title="activations per layer", xlabel="activation value")
        plot_grad_norms(norms, ax=axes[1])
        ratio = norms[0] / norms[-1] if norms[-1] > 0 else float("nan")
        sat = max((r.saturated for r in probe.activations.values()), default=0.0)
        dead = max((r.dead for r in probe.activations.values()), default=0.0)
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
    )
