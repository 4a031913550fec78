"""vg.plots' shared conventions: log axes with a grid, layer axes, fixed colours, shared scales."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import LogNorm, Normalize  # noqa: E402

import vgcourse as vg  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_panels_shapes():
    fig, ax = vg.plots.panels()
    assert isinstance(ax, plt.Axes) and tuple(fig.get_size_inches()) == (5.0, 3.6)
    fig, axes = vg.plots.panels(3, 2, width=4, height=3)
    assert axes.shape == (6,) and tuple(fig.get_size_inches()) == (12, 6)
    with pytest.raises(ValueError, match="ncols"):
        vg.plots.panels(0)


def test_plot_lines_on_layer_and_log_axes():
    grad = {"sigmoid": np.logspace(-6, 0, 10), "relu": np.ones(10)}
    predicted = {"sigmoid": np.logspace(-5, 0, 10)}
    colors = vg.plots.line_colors(["relu", "sigmoid"])
    ax = vg.plots.plot_lines(
        grad, dotted=predicted, colors=colors, layers=True, logy=True, ylabel="g"
    )
    assert ax.get_yscale() == "log" and ax.get_xlabel() == vg.plots.LAYER_LABEL
    lines = ax.get_lines()
    assert len(lines) == 3
    assert lines[0].get_color() == lines[1].get_color() == colors["sigmoid"]  # dotted twin
    assert lines[1].get_linestyle() == ":"
    assert lines[2].get_color() == colors["relu"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["sigmoid", "relu"]
    assert all(float(t).is_integer() for t in ax.get_xticks())


def test_log_values_not_positive_are_left_out():
    ax = vg.plots.plot_lines({"a": [1.0, 0.0, -1.0, 1e-3]}, logy=True)
    y = ax.get_lines()[0].get_ydata()
    assert np.isnan(y[1]) and np.isnan(y[2]) and y[3] == 1e-3


def test_style_legend_places_and_curves_with_x():
    _, ax = vg.plots.panels()
    vg.plots.plot_lines({"run": ([10, 100, 1000], [1, 2, 3])}, ax=ax, logx=True, legend="outside")
    assert ax.get_xscale() == "log" and ax.get_legend() is not None
    _, ax = vg.plots.panels()
    vg.plots.plot_lines([1, 2, 3], ax=ax, legend="none")
    assert ax.get_legend() is None
    with pytest.raises(ValueError, match="legend"):
        vg.plots.style(ax, legend="top")
    with pytest.raises(ValueError, match="one equal length"):
        vg.plots.plot_lines({"bad": ([1, 2], [1, 2, 3])})


def test_shared_norm_covers_every_heatmap():
    a, b = np.array([[1e-4, 1.0]]), np.array([[0.0, 50.0], [np.nan, 2.0]])
    norm = vg.plots.shared_norm([a, b])
    assert isinstance(norm, LogNorm) and (norm.vmin, norm.vmax) == (1e-4, 50.0)
    norm = vg.plots.shared_norm([a, b], log=False)
    assert type(norm) is Normalize and (norm.vmin, norm.vmax) == (0.0, 50.0)
    with pytest.raises(ValueError, match="positive"):
        vg.plots.shared_norm([np.zeros(3)])
