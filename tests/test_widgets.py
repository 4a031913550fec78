"""The Explorer contract (vgcourse.widgets), its fallbacks, and lesson 05's gradient-flow explorer.

Runs on ipywidgets 8 and 7.7 (Colab): see the module docstring of vgcourse.widgets. Browser
messages are simulated with ``Widget._handle_msg``, the very handler ipywidgets runs for a comm
message from the frontend; one test drives a real kernel over its ZMQ channels.
"""

from __future__ import annotations

import base64
import io
import json
import threading

import numpy as np
import pytest
import torch
from PIL import Image

import vgcourse as vg
from vgcourse import widgets

ipywidgets = pytest.importorskip("ipywidgets")


def _png_image(png: bytes) -> Image.Image:
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def _browser_sets(control, **state) -> None:
    """What ipywidgets does with a comm message from the browser that changes ``state``."""
    control._handle_msg(
        {
            "content": {"data": {"method": "update", "state": state, "buffer_paths": []}},
            "buffers": [],
        }
    )


def _line_explorer(**kw):
    """Two controls and a plain value; update plots a line whose data the controls set."""
    calls = []

    def update(axes, scale, kind, offset):
        calls.append((scale, kind, offset))
        x = np.linspace(0, 1, 50)
        y = scale * (x**2 if kind == "square" else x) + offset
        axes[0].plot(x, y)
        axes[0].set(xlabel="x", ylabel="y")
        return f"scale={scale:g} kind={kind} max={y.max():.3g}"

    controls = {
        "scale": widgets.slider(1.0, 0.5, 100.0, 0.5, "scale"),
        "kind": widgets.dropdown(["linear", "square"], "linear", "kind"),
        "offset": 0.0,
    }
    return widgets.Explorer(update, controls, ncols=1, **kw), calls


# -- controls, values, counters --------------------------------------------------------------------
def test_controls_reach_update_as_keyword_arguments():
    ex, calls = _line_explorer()
    assert calls == [(1.0, "linear", 0.0)] and ex.redraws == 1
    assert ex.values() == {"scale": 1.0, "kind": "linear", "offset": 0.0}
    ex.controls["scale"].value = 3.0  # as code moving the slider: drawn before returning
    assert calls[-1] == (3.0, "linear", 0.0) and ex.redraws == 2
    assert ex.readout == "scale=3 kind=linear max=3"
    line = ex.axes[0].lines[0]
    assert np.allclose(line.get_ydata(), 3.0 * np.linspace(0, 1, 50))


def test_set_changes_several_controls_with_one_redraw_and_reset_restores():
    ex, calls = _line_explorer()
    ex.set(scale=2.0, kind="square", offset=1.0)
    assert ex.redraws == 2 and calls[-1] == (2.0, "square", 1.0)
    assert ex.readout == "scale=2 kind=square max=3"
    ex.reset()
    assert ex.redraws == 3 and ex.values() == ex.defaults == {
        "scale": 1.0,
        "kind": "linear",
        "offset": 0.0,
    }
    ex._reset_button.click()  # the reset button, as a learner clicks it
    assert ex.redraws == 4 and calls[-1] == (1.0, "linear", 0.0)


def test_set_rejects_unknown_controls_and_values_the_controls_cannot_take():
    ex, _ = _line_explorer()
    with pytest.raises(ValueError, match=r"unknown control.*'width'.*controls are"):
        ex.set(width=3)
    with pytest.raises(ValueError, match=r"scale must be between 0.5 and 100"):
        ex.set(scale=500.0)
    with pytest.raises(TypeError, match="scale must be a number"):
        ex.set(scale="big")
    with pytest.raises(ValueError, match=r"kind must be one of \['linear', 'square'\]"):
        ex.set(kind="cubic")
    assert ex.redraws == 1 and ex.values()["scale"] == 1.0  # nothing changed

    flags = widgets.Explorer(
        lambda axes, on, n: f"{on} {n}",
        {"on": widgets.checkbox(True, "on"), "n": widgets.slider(3, 1, 9, 1, "n", integer=True)},
    )
    with pytest.raises(TypeError, match="on takes a bool"):
        flags.set(on="yes")
    with pytest.raises(ValueError, match="n must be a whole number"):
        flags.set(n=2.5)
    flags.set(n=9.0)
    assert flags.readout == "True 9"


def test_log_slider_range_is_in_values_not_exponents():
    ex = widgets.Explorer(
        lambda axes, lr: f"lr={lr:.3g}", {"lr": widgets.slider(1e-2, -4, 0, 0.25, "lr", log=True)}
    )
    ex.set(lr=0.5)
    assert ex.readout == "lr=0.5"
    with pytest.raises(ValueError, match=r"lr must be between 0.0001 and 1"):
        ex.set(lr=3.0)


def test_dropdown_with_none_values_round_trips():
    seen = []
    ex = widgets.Explorer(
        lambda axes, norm: seen.append(norm) or f"norm={norm}",
        {
            "norm": widgets.dropdown(
                [("none", None), "batch", ("layer norm", "layer")], None, "norm"
            )
        },
    )
    control = ex.controls["norm"]
    assert control.label == "none"
    ex.set(norm="layer")
    assert control.label == "layer norm" and ex.readout == "norm=layer"
    ex.set(norm=None)
    assert control.label == "none" and seen == [None, "layer", None]
    _browser_sets(control, index=1)  # the browser sends the index of the chosen option
    assert ex.wait(10) and seen[-1] == "batch"


def test_bad_constructor_arguments():
    good = {"x": widgets.slider(1, 0, 2, 1, "x")}
    with pytest.raises(TypeError, match="update must be callable"):
        widgets.Explorer("draw", good)
    with pytest.raises(TypeError, match="controls must be a non-empty dict"):
        widgets.Explorer(lambda axes, x: "", {})
    with pytest.raises(TypeError, match="controls must be a non-empty dict"):
        widgets.Explorer(lambda axes, x: "", [("x", 1)])
    with pytest.raises(TypeError, match="controls keys must be argument names"):
        widgets.Explorer(lambda axes, **kw: "", {"learning rate": 1})
    with pytest.raises(TypeError, match="caption must be a string"):
        widgets.Explorer(lambda axes, x: "", good, caption=3)
    with pytest.raises(TypeError, match="title must be a string or None"):
        widgets.Explorer(lambda axes, x: "", good, title=["t"])
    with pytest.raises(TypeError, match="figsize must be a pair"):
        widgets.Explorer(lambda axes, x: "", good, figsize=9)
    with pytest.raises(ValueError, match="figsize must be two numbers between"):
        widgets.Explorer(lambda axes, x: "", good, figsize=(0, 3))
    with pytest.raises(TypeError, match="dpi must be an integer"):
        widgets.Explorer(lambda axes, x: "", good, dpi=72.5)
    with pytest.raises(ValueError, match="ncols must be an integer >= 1"):
        widgets.Explorer(lambda axes, x: "", good, ncols=0)
    with pytest.raises(TypeError, match="clear must be True or False"):
        widgets.Explorer(lambda axes, x: "", good, clear="no")
    with pytest.raises(TypeError, match="state must be a dict"):
        widgets.Explorer(lambda axes, x: "", good, state=[])


# -- the image -------------------------------------------------------------------------------------
def test_png_is_exactly_the_figure_at_its_size():
    ex, _ = _line_explorer(figsize=(5.0, 2.5), dpi=60)
    image = _png_image(ex.png)
    assert image.size == (300, 150) and image.mode == "RGB"
    # the same pixels matplotlib itself renders for this figure (lossless, nothing dropped)
    buf = io.BytesIO()
    ex.figure.savefig(buf, format="rgba", dpi=60)
    reference = np.frombuffer(buf.getvalue(), np.uint8).reshape(150, 300, 4)[..., :3]
    assert np.array_equal(np.asarray(image), reference)
    assert ex._image.value == ex.png and ex._image.format == "png"


def test_png_follows_the_plot():
    ex, _ = _line_explorer()
    first = ex.png
    ex.set(scale=50.0)
    assert ex.png != first
    ex.set(scale=1.0)
    assert ex.png == first  # same setting, same pixels


def test_transparent_figures_keep_their_alpha():
    def update(axes, x):
        axes[0].plot([0, x])

    ex = widgets.Explorer(update, {"x": 1.0}, ncols=1)
    ex.figure.set_facecolor((1, 1, 1, 0))
    ex.redraw()
    image = _png_image(ex.png)
    assert image.mode == "RGBA" and image.getpixel((0, 0))[3] == 0


def test_layout_is_frozen_after_the_first_draw():
    def update(axes, big):
        y = np.linspace(0, 1e6 if big else 1, 20)  # tick labels of very different widths
        axes[0].plot(y)
        axes[0].set(ylabel="a long y label", title="left")
        axes[1].plot(-y)
        axes[1].set(xlabel="x", title="right")
        return f"big={big}"

    ex = widgets.Explorer(update, {"big": widgets.checkbox(False, "big")})
    positions = [ax.get_position().bounds for ax in ex.axes]
    for big in (True, False, True):
        ex.set(big=big)
        assert [ax.get_position().bounds for ax in ex.axes] == positions


def test_colorbars_and_twin_axes_neither_pile_up_nor_move():
    def update(axes, gain):
        image = axes[0].imshow(gain * np.outer(np.arange(5), np.arange(6)), aspect="auto")
        axes[0].figure.colorbar(image, ax=axes[0], label="value")
        twin = axes[1].twinx()
        axes[1].plot([0, 1], [0, gain])
        twin.plot([0, 1], [gain, 0], color="C1")
        axes[1].figure.suptitle(f"gain {gain:g}")
        return f"gain={gain:g}"

    ex = widgets.Explorer(update, {"gain": widgets.slider(1.0, 0.5, 10.0, 0.5, "gain")})
    n_axes = len(ex.figure.axes)
    layout = [ax.get_position().bounds for ax in ex.figure.axes]
    first = ex.png
    for gain in (5.0, 2.0, 1.0):
        ex.set(gain=gain)
        assert len(ex.figure.axes) == n_axes == 4 and len(ex.figure.texts) == 1
        assert [ax.get_position().bounds for ax in ex.figure.axes] == layout
    assert ex.png == first  # back at the first setting: the very same picture


def test_clear_false_keeps_the_artists_and_updates_their_data():
    made = []

    def update(axes, k):
        if not axes[0].lines:
            made.append(axes[0].plot([0, 1], [0, k])[0])
        else:
            axes[0].lines[0].set_ydata([0, k])
            axes[0].relim()
            axes[0].autoscale_view()
        if k < 0:
            raise ValueError("k must be >= 0")
        return f"k={k}"

    ex = widgets.Explorer(
        update, {"k": widgets.slider(1, -1, 5, 1, "k", integer=True)}, clear=False
    )
    ex.set(k=4)
    assert len(made) == 1 and list(ex.axes[0].lines[0].get_ydata()) == [0, 4]
    assert ex.axes[0].get_ylim()[1] >= 4
    ex.set(k=-1)  # an error wipes the axes, so the next update starts afresh
    assert ex.error == "k must be >= 0" and not ex.axes[0].lines
    ex.set(k=2)
    assert len(made) == 2 and ex.error is None and ex.readout == "k=2"


# -- errors ----------------------------------------------------------------------------------------
def test_setting_errors_go_to_the_readout_and_the_plot_says_so():
    def update(axes, n):
        if n > 3:
            raise RuntimeError(f"n={n} diverges")
        axes[0].plot(range(n))
        return f"n={n}"

    ex = widgets.Explorer(update, {"n": widgets.slider(2, 1, 6, 1, "n", integer=True)})
    good = ex.png
    ex.set(n=5)  # no exception escapes
    assert ex.error == "n=5 diverges" and ex.readout == "cannot compute this setting: n=5 diverges"
    assert not ex.axes[0].lines and "n=5 diverges" in ex.axes[0].texts[0].get_text()
    assert ex.png != good and "cannot compute" in ex._readout.value
    ex.set(n=2)
    assert ex.error is None and ex.readout == "n=2" and not ex.axes[0].texts


def test_bugs_in_update_are_raised_not_hidden():
    def update(axes, n):
        if n == 2:
            raise TypeError("unsupported operand")
        return "ok"

    ex = widgets.Explorer(update, {"n": widgets.slider(1, 1, 3, 1, "n", integer=True)})
    with pytest.raises(TypeError, match="unsupported operand"):
        ex.set(n=2)
    assert ex.error == "TypeError: unsupported operand"
    ex.set(n=3)
    assert ex.error is None and ex.readout == "ok"


def test_readout_is_escaped_in_the_widget():
    ex = widgets.Explorer(lambda axes, x: "loss < 1e-3 & <b>", {"x": 1})
    assert ex.readout == "loss < 1e-3 & <b>"
    assert ex._readout.value == "<code>loss &lt; 1e-3 &amp; &lt;b&gt;</code>"


# -- the widget ------------------------------------------------------------------------------------
def _tree(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _tree(child)


def test_widget_tree_has_title_caption_controls_reset_readout_and_image():
    ex, _ = _line_explorer(title="Line explorer", caption="move the <i>scale</i>")
    nodes = list(_tree(ex.widget))
    html_text = [n.value for n in nodes if isinstance(n, ipywidgets.HTML)]
    assert "<b>Line explorer</b>" in html_text
    assert any("What to try:" in t and "move the <i>scale</i>" in t for t in html_text)
    assert ex.controls["scale"] in nodes and ex.controls["kind"] in nodes
    buttons = [n for n in nodes if isinstance(n, ipywidgets.Button)]
    assert [b.description for b in buttons] == ["reset"]
    images = [n for n in nodes if isinstance(n, ipywidgets.Image)]
    assert len(images) == 1 and images[0].value == ex.png
    assert ex.controls["scale"].continuous_update is False  # redraw on release


def test_browser_changes_are_coalesced_and_drawn_for_the_latest_value():
    started, release = threading.Event(), threading.Event()
    seen = []

    def update(axes, scale):
        seen.append(scale)
        if len(seen) == 2:  # the first browser change: hold it while more messages arrive
            started.set()
            release.wait(10)
        axes[0].plot([0, scale])
        return f"scale={scale:g}"

    ex = widgets.Explorer(update, {"scale": widgets.slider(1.0, 0.5, 100.0, 0.5, "scale")})
    control = ex.controls["scale"]
    _browser_sets(control, value=2.0)  # returns at once: drawn by the background thread
    assert started.wait(10)
    for v in (3.0, 4.0, 5.0, 6.0, 7.0):  # arrive while that redraw runs
        _browser_sets(control, value=v)
    assert control.value == 7.0 and seen == [1.0, 2.0]
    release.set()
    assert ex.wait(10)
    assert seen == [1.0, 2.0, 7.0] and ex.redraws == 3  # five changes, one redraw
    assert ex.readout == "scale=7" and ex._image.value == ex.png


def test_code_after_a_browser_change_sees_its_redraw():
    ex, calls = _line_explorer()
    _browser_sets(ex.controls["kind"], index=1)
    ex.set(scale=4.0)  # waits for the background redraw, then draws this one
    assert ex.wait(10)
    assert calls[-1] == (4.0, "square", 0.0) and ex.readout == "scale=4 kind=square max=4"


def test_a_bug_in_a_browser_redraw_is_shown_not_lost():
    def update(axes, n):
        if n == 3:
            raise KeyError("layer")
        return f"n={n}"

    ex = widgets.Explorer(update, {"n": widgets.slider(1, 1, 5, 1, "n", integer=True)})
    _browser_sets(ex.controls["n"], value=3)
    assert ex.wait(10)
    assert ex.error == "KeyError: 'layer'" and "KeyError" in ex.readout
    assert "KeyError" in ex._readout.value
    _browser_sets(ex.controls["n"], value=4)
    assert ex.wait(10) and ex.readout == "n=4" and ex.error is None


# -- where widgets cannot render -------------------------------------------------------------------
def test_without_ipywidgets_the_explorer_computes_and_shows_a_static_image(monkeypatch):
    from IPython.core.formatters import DisplayFormatter

    monkeypatch.setattr(widgets._env, "_widgets", lambda: None)
    controls = {
        "depth": widgets.slider(3, 1, 10, 1, "depth", integer=True),
        "act": widgets.dropdown(["relu", "tanh"], "tanh", "act"),
        "skip": widgets.checkbox(True, "skip"),
    }
    assert controls == {"depth": 3, "act": "tanh", "skip": True}  # plain values

    def update(axes, depth, act, skip):
        axes[0].plot(range(depth))
        return f"{act} depth {depth} skip {skip}"

    ex = widgets.Explorer(update, controls)
    assert ex.widget is None and ex.readout == "tanh depth 3 skip True"
    ex.set(depth=5)
    assert ex.readout == "tanh depth 5 skip True" and ex.redraws == 2
    data, _ = DisplayFormatter().format(ex)
    assert base64.b64decode(data["image/png"]) == ex.png
    assert "tanh depth 5" in data["text/plain"]
    assert widgets.WIDGET_VIEW_MIMETYPE not in data


def test_outside_a_kernel_the_output_is_the_image_and_the_readout():
    ex, _ = _line_explorer(title="Lines")
    bundle = ex._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "image/png"}  # pytest runs in no kernel
    assert _png_image(base64.b64decode(bundle["image/png"])).size == (760, 288)
    assert bundle["text/plain"] == f"Lines: {ex.readout}"


def test_in_a_kernel_the_widget_view_comes_with_the_image_fallback(monkeypatch):
    monkeypatch.setattr(widgets._env, "_in_kernel", lambda: True)
    ex, _ = _line_explorer()
    bundle = ex._repr_mimebundle_()
    view = bundle[widgets.WIDGET_VIEW_MIMETYPE]
    assert view["model_id"] == ex.widget.model_id and view["version_major"] == 2
    assert base64.b64decode(bundle["image/png"]) == ex.png


NOTEBOOK_CODE = """\
import vgcourse as vg

def update(axes, scale):
    axes[0].plot([0, 1], [0, scale])
    return f"scale={scale:g}"

explorer = vg.widgets.Explorer(update, {"scale": vg.widgets.slider(2.0, 0.5, 4.0, 0.5, "scale")})
explorer"""


def test_executed_notebook_keeps_the_plot_for_static_html(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nbconvert = pytest.importorskip("nbconvert")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(NOTEBOOK_CODE),
        nbformat.v4.new_code_cell("print(len(explorer.png))"),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbclient.NotebookClient(
        nb, timeout=120, resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    (result,) = nb.cells[0].outputs
    assert widgets.WIDGET_VIEW_MIMETYPE in result["data"]  # live frontends render the widget
    png = base64.b64decode(result["data"]["image/png"])
    assert _png_image(png).size == (760, 288)
    assert int(nb.cells[1].outputs[0]["text"]) == len(png)  # the explorer's own default plot
    # the widget state saved with the notebook holds the same plot (for the HTML widget manager)
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    images = [s for s in state.values() if s["model_name"] == "ImageModel"]
    assert len(images) == 1 and base64.b64decode(images[0]["buffers"][0]["data"]) == png

    # a static page without widget state (nbviewer, GitHub, HTML export of such a notebook)
    del nb.metadata["widgets"]
    body, _ = nbconvert.HTMLExporter().from_notebook_node(nb)
    assert f'src="data:image/png;base64,{result["data"]["image/png"]}' in body.replace("\n", "")


def test_a_real_kernel_draws_browser_changes_on_the_side_and_coalesces_them():
    """Comm messages sent to a live kernel as JupyterLab sends them; the image updates come back."""
    manager_mod = pytest.importorskip("jupyter_client.manager")
    km, kc = manager_mod.start_new_kernel(kernel_name="python3")
    try:
        setup = """
import json, time
import vgcourse as vg
calls = []
def update(axes, scale):
    calls.append(scale)
    time.sleep(0.3)  # a slow computation: messages queue up meanwhile
    axes[0].plot([0, 1], [0, scale])
    return f"scale={scale:g}"
explorer = vg.widgets.Explorer(update, {"scale": vg.widgets.slider(1.0, 0.5, 9.0, 0.5, "scale")})
print(json.dumps({"slider": explorer.controls["scale"].model_id, "image": explorer._image.model_id}))
"""
        ids = json.loads(_run(kc, setup))
        sent = set()
        for v in (2.0, 3.0, 4.0, 5.0, 6.0):
            msg = kc.session.msg(
                "comm_msg",
                {
                    "comm_id": ids["slider"],
                    "data": {"method": "update", "state": {"value": v}, "buffer_paths": []},
                },
            )
            kc.shell_channel.send(msg)
            sent.add(msg["header"]["msg_id"])
        # a cell run now waits for the redraw thread, so by its end every image update is in
        image_updates = []

        def count(m):
            if m["msg_type"] == "comm_msg" and m["content"].get("comm_id") == ids["image"]:
                image_updates.append(m)

        report = json.loads(
            _run(kc, 'print(json.dumps({"calls": calls, "readout": explorer.readout}))', count)
        )
        for m in image_updates:  # sent from the redraw thread: the new PNG, as a binary buffer
            assert m["buffers"] and bytes(m["buffers"][0])[:4] == b"\x89PNG"
            # with a parent, as a redraw in place has: the browser message (ipykernel 7), or
            # whatever the kernel handles now (ipykernel 6 keeps one parent per channel)
            parent = m["parent_header"]
            assert parent["msg_id"] in sent or parent["msg_type"] == "execute_request"
        # the first change is drawn, the four that came during it are drawn once, for 6.0
        assert report["calls"][0] == 1.0 and report["calls"][-1] == 6.0
        assert len(report["calls"]) <= 4, report["calls"]
        assert report["readout"] == "scale=6" and len(image_updates) == len(report["calls"]) - 1
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def _run(kc, code: str, other=None) -> str:
    """Execute ``code`` in the kernel and return what it printed; ``other`` sees every IOPub message."""
    msg_id = kc.execute(code)
    out = []
    while True:
        m = kc.get_iopub_msg(timeout=60)
        if other is not None:
            other(m)
        if m["parent_header"].get("msg_id") != msg_id:
            continue
        if m["msg_type"] == "stream":
            out.append(m["content"]["text"])
        elif m["msg_type"] == "error":
            raise AssertionError("\n".join(m["content"]["traceback"]))
        elif m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            return "".join(out)


# -- lesson 05's gradient-flow explorer ------------------------------------------------------------
def _independent_norms(depth, activation, init, norm, residual, width=32):
    X, y = vg.data.moons(256, 0.1, seed=0)
    torch.manual_seed(0)
    net = vg.mlp(
        2,
        2,
        depth=depth,
        width=width,
        activation=activation,
        init=init,
        norm=norm,
        residual=residual,
    )
    return np.asarray(vg.layer_grad_norms(net, X, y))


def test_gradient_flow_explorer_every_control_redraws_with_the_right_numbers():
    controls = ("depth", "activation", "init", "norm", "residual")
    ex = widgets.gradient_flow_explorer(
        depth=6, activation="sigmoid", controls=controls, device="cpu"
    )
    assert ex.error is None and ex.state["config"]["depth"] == 6
    for change in (
        {"depth": 12},
        {"activation": "tanh"},
        {"init": "xavier_normal"},
        {"norm": "batch"},
        {"residual": True},
        {"norm": None},
    ):
        png, readout = ex.png, ex.readout
        ex.set(**change)
        assert ex.error is None and ex.png != png and ex.readout != readout, change
        config = ex.state["config"]
        assert {k: config[k] for k in change} == change
        expected = _independent_norms(**config)
        assert np.allclose(ex.state["norms"], expected, rtol=1e-5), change
        ratio = float(ex.readout.split(":")[1].split("|")[0])
        assert ratio == pytest.approx(expected[0] / expected[-1], rel=2e-3)
        assert len(ex.state["norms"]) == config["depth"]
        assert len(ex.axes[1].lines[0].get_xdata()) == config["depth"]


def test_gradient_flow_explorer_deep_sigmoid_vanishes_and_checks_arguments():
    ex = widgets.gradient_flow_explorer(depth=4, activation="sigmoid", init="standard")
    shallow = ex.state["norms"][0] / ex.state["norms"][-1]
    ex.set(depth=12)
    deep = ex.state["norms"][0] / ex.state["norms"][-1]
    assert deep < shallow < 1
    with pytest.raises(ValueError, match="controls must be among"):
        widgets.gradient_flow_explorer(controls=("colour",))
    with pytest.raises(TypeError, match="controls must be a tuple"):
        widgets.gradient_flow_explorer(controls="depth")


def test_gradient_flow_explorer_runs_on_every_device(device):
    ex = widgets.gradient_flow_explorer(depth=8, activation="tanh", device=device)
    assert ex.error is None
    expected = _independent_norms(8, "tanh", "standard", None, False)
    assert np.allclose(ex.state["norms"], expected, rtol=1e-3)
