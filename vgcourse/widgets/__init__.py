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

The package: :mod:`.explorer` (the Explorer core), :mod:`.canvas` (frozen layout, artist reuse), :mod:`.controls` (slider, dropdown, checkbox),
:mod:`.redraw` (the background redraw thread), :mod:`.gradient_flow` (the gradient-flow explorer),
:mod:`._env` (kernel and ipywidgets detection, argument checks).
"""

from ._env import SETTING_ERRORS, WIDGET_VIEW_MIMETYPE, UpdateFn
from .canvas import clear_data
from .controls import NONE, checkbox, dropdown, slider
from .explorer import Explorer
from .gradient_flow import gradient_flow, gradient_flow_explorer

__all__ = [
    "NONE",
    "SETTING_ERRORS",
    "WIDGET_VIEW_MIMETYPE",
    "Explorer",
    "UpdateFn",
    "checkbox",
    "clear_data",
    "dropdown",
    "gradient_flow",
    "gradient_flow_explorer",
    "slider",
]
