"""The figure side of an explorer: its frozen layout (axes positions and super-titles kept from the
first draw, so colorbars and twins do not pile up) and :func:`clear_data` (remove the plotted data,
keep the axes, for artist reuse with ``Explorer(clear=False)``)."""

from __future__ import annotations

from dataclasses import dataclass

from matplotlib.transforms import Bbox

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
