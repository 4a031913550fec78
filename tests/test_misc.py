"""Losses, jacobians, plots, widgets and notebook housekeeping."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import vgcourse as vg
from vgcourse import jacobians, losses, plots, widgets
from vgcourse.course import notebooks

ROOT = Path(__file__).resolve().parents[1]


def test_losses():
    out = torch.tensor([[2.0], [-1.0]])
    y = torch.tensor([1, 0])
    expected = torch.nn.functional.binary_cross_entropy(torch.sigmoid(out.squeeze()), y.float())
    assert float(losses.get_loss("bce")(out, y)) == pytest.approx(float(expected), rel=1e-6)
    assert losses.predictions(out, "bce").tolist() == [1, 0]
    assert (
        float(losses.get_loss("mse")(torch.tensor([[1.0], [3.0]]), torch.tensor([1.0, 1.0]))) == 2.0
    )
    with pytest.raises(ValueError, match="loss must be one of"):
        losses.get_loss("l1")
    with pytest.raises(TypeError, match="loss"):
        losses.get_loss(3)


def test_jacobians_match_chain_rule():
    torch.manual_seed(0)
    net = vg.mlp(3, 2, depth=3, width=5, activation="tanh", init="xavier_normal")
    x = torch.randn(3)
    Js = jacobians.layer_jacobians(net, x)
    a = net.blocks[0].linear(x)
    assert torch.allclose(
        Js[0], torch.diag(1 - torch.tanh(a) ** 2) @ net.blocks[0].linear.weight, atol=1e-6
    )
    full = torch.func.jacrev(lambda v: net.forward_hidden(v.unsqueeze(0))[-1].squeeze(0))(x)
    assert torch.allclose(jacobians.product(Js), full, atol=1e-5)
    res = vg.mlp(3, 2, depth=3, width=3, activation="relu", residual=True)
    J = jacobians.layer_jacobians(res, x)[1]
    h = res.blocks[0](x.unsqueeze(0)).squeeze(0)
    D = torch.diag((res.blocks[1].linear(h) > 0).float())
    assert torch.allclose(J, torch.eye(3) + D @ res.blocks[1].linear.weight, atol=1e-6)
    assert jacobians.singular_values(torch.eye(4) * 2).tolist() == [2.0] * 4
    with pytest.raises(ValueError, match="single input"):
        jacobians.layer_jacobians(net, torch.randn(2, 3))


@pytest.mark.parametrize(
    "kw",
    [
        dict(activation="tanh"),
        dict(activation="relu"),
        dict(activation="identity"),
        dict(activation="selu"),
        dict(activation="leaky_relu"),
        dict(activation="relu", residual=True, residual_scale=0.5),
    ],
)
def test_batched_jacobians_equal_autograd(kw):
    torch.manual_seed(0)
    net = vg.mlp(5, 10, depth=3, width=12, init="xavier_normal", **kw)
    X = torch.randn(4, 5)
    assert jacobians.closed_form_applies(net)
    batch = jacobians.layer_jacobians_batch(net, X)
    for i in range(len(X)):
        autograd = jacobians.layer_jacobians(net, X[i])
        for Jb, Ja in zip(batch, autograd):
            assert torch.allclose(Jb[i], Ja, atol=1e-6)
        for Pb, Pa in zip(jacobians.prefix_products(batch), jacobians.prefix_products(autograd)):
            assert torch.allclose(Pb[i], Pa, atol=1e-5)
    assert jacobians.singular_values(batch[0]).shape == (4, 5)


def test_batched_jacobians_refuse_norm_layers():
    net = vg.mlp(32, 10, depth=2, width=8, norm="batch")
    assert not jacobians.closed_form_applies(net)
    with pytest.raises(ValueError, match="norm"):
        jacobians.layer_jacobians_batch(net, torch.randn(4, 32))
    with pytest.raises(TypeError, match="vgcourse.mlp"):
        jacobians.layer_jacobians_batch(torch.nn.Linear(2, 2), torch.randn(4, 2))


def test_plots_draw_what_they_are_given():
    h = vg.fit(vg.mlp(2, 2, depth=3, width=4), vg.data.moons(32, 0.1), steps=5, lr=0.01)
    ax = plots.plot_grad_norms({"a": [1e-3, 1e-2, 1e-1], "b": [1, 1, 1]})
    assert ax.get_yscale() == "log" and len(ax.lines) == 2
    assert np.allclose(ax.lines[0].get_ydata(), [1e-3, 1e-2, 1e-1])
    ax = plots.plot_loss({"run": h})
    assert len(ax.lines[0].get_ydata()) == 5
    ax = plots.plot_layer_heatmap(h)
    assert ax.images[0].get_array().shape == (3, 5)
    ax = plots.plot_histograms([torch.randn(100), torch.randn(100) * 2])
    assert len(ax.lines) == 2
    ax = plots.plot_weight_trajectories(np.zeros((10, 3)))
    assert len(ax.lines) == 3
    ax = plots.plot_activation("sigmoid")
    assert len(ax.collections) == 1  # the shaded saturated region
    diverged = vg.History(
        np.array([1.0, np.nan]), np.zeros((2, 1)), np.zeros(2), ["l"], diverged_at=1
    )
    ax = plots.plot_loss(diverged)
    assert any("diverged" in t.get_text() for t in ax.texts)
    with pytest.raises(ValueError, match="2-D"):
        plots.plot_layer_heatmap(np.zeros(3))


def test_explorer_redraws_on_control_change():
    calls = []

    def update(axes, depth, act):
        calls.append((depth, act))
        axes[0].plot(range(depth))
        return f"depth={depth} act={act}"

    ex = widgets.Explorer(
        update,
        {
            "depth": widgets.slider(3, 1, 10, 1, "depth", integer=True),
            "act": widgets.dropdown(["relu", "tanh"], "relu", "act"),
        },
        ncols=1,
    )
    first = ex.png
    ex.controls["depth"].value = 7  # as a learner moving the slider
    assert ex.readout == "depth=7 act=relu" and ex.png != first and len(ex.axes[0].lines) == 1
    ex.set(act="tanh")
    assert calls[-1] == (7, "tanh")
    ex.reset()
    assert ex.readout == "depth=3 act=relu"
    with pytest.raises(ValueError, match="unknown control"):
        ex.set(width=3)


def test_explorer_reports_errors_without_raising():
    def update(axes, x):
        raise ValueError("bad setting")

    ex = widgets.Explorer(update, {"x": 1})
    assert "cannot compute" in ex.readout and ex.error == "bad setting"


def test_gradient_flow_explorer_drives_real_models():
    ex = widgets.gradient_flow_explorer(depth=4, activation="sigmoid", init="standard")
    ratio_shallow = float(ex.readout.split(":")[1].split("|")[0])
    ex.set(depth=12)
    ratio_deep = float(ex.readout.split(":")[1].split("|")[0])
    assert ratio_deep < ratio_shallow < 1
    with pytest.raises(ValueError, match="controls"):
        widgets.gradient_flow_explorer(controls=("colour",))


def test_notebook_clean_and_check(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("1 + 1")
    cell.outputs = [
        nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=1)
    ]
    cell.execution_count = 1
    nb.cells.append(cell)
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, str(path))
    assert notebooks.has_outputs(path)
    assert notebooks.main(["check", str(path)]) == 1
    assert notebooks.clean(path) and not notebooks.has_outputs(path)
    assert json.loads(path.read_text())["metadata"]["kernelspec"]["name"] == "python3"
    assert notebooks.clean(path) is False


LESSONS = sorted((ROOT / "lessons").glob("*.ipynb"))


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_committed_lessons_are_clean_python3_notebooks(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    dirty = [
        i
        for i, c in enumerate(nb["cells"])
        if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))
    ]
    assert not dirty, (
        f"{path.name} carries outputs in cells {dirty}; run python -m vgcourse.course.notebooks clean"
    )


def test_lessons_exist_in_order():
    names = [p.name for p in LESSONS]
    assert names == sorted(names) and len(names) >= 1


def test_dropdown_with_a_none_option_shows_it_and_round_trips():
    calls = []
    ex = widgets.Explorer(
        lambda axes, norm: calls.append(norm) or f"norm={norm}",
        {"norm": widgets.dropdown([("none", None), ("batch", "batch")], None, "norm")},
    )
    control = ex.controls["norm"]
    assert control.label == "none" and control.index == 0  # not an empty dropdown
    ex.set(norm="batch")
    ex.reset()
    assert calls == [None, "batch", None] and control.label == "none"


def test_dropdown_mixes_pairs_and_plain_values():
    control = widgets.dropdown([("PyTorch default", None), 0.5, 0.9], None, "rho")
    assert control.label == "PyTorch default"
    ex = widgets.Explorer(lambda axes, rho: f"rho={rho}", {"rho": control})
    ex.set(rho=0.9)
    assert ex.readout == "rho=0.9" and control.label == "0.9"
    ex.reset()
    assert ex.readout == "rho=None"
