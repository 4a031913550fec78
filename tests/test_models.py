import pytest
import torch
from torch import nn

import vgcourse as vg


def test_mlp_structure_and_hidden_layers():
    net = vg.mlp(2, 3, depth=4, width=7, activation="tanh")
    assert len(net.hidden_layers) == 4
    assert net.hidden_layers[0].in_features == 2 and net.hidden_layers[-1].out_features == 7
    assert all(isinstance(a, nn.Tanh) for a in net.activations)
    assert net(torch.randn(5, 2)).shape == (5, 3)
    assert net(torch.randn(5, 1, 1, 2)).shape == (5, 3)  # images are flattened


@pytest.mark.parametrize("norm, cls", [("batch", nn.BatchNorm1d), ("layer", nn.LayerNorm)])
def test_mlp_norms(norm, cls):
    net = vg.mlp(4, 2, depth=3, width=8, norm=norm)
    assert sum(isinstance(m, cls) for m in net.modules()) == 3


def test_residual_skip_is_identity_plus_branch():
    torch.manual_seed(0)
    net = vg.mlp(4, 2, depth=3, width=4, activation="relu", residual=True, residual_scale=0.5)
    h = torch.randn(6, 4)
    block = net.blocks[1]
    assert torch.allclose(block(h), h + 0.5 * torch.relu(block.linear(h)))
    assert not net.blocks[0].residual  # first layer changes the width
    hidden = net.forward_hidden(torch.randn(6, 4))
    assert len(hidden) == 3


def test_init_is_applied_and_default_kept():
    torch.manual_seed(0)
    net = vg.mlp(100, 2, depth=2, width=100, init="zeros")
    assert all(torch.count_nonzero(layer.weight) == 0 for layer in net.hidden_layers)
    net = vg.mlp(100, 2, depth=2, width=100, init=None)
    assert float(net.hidden_layers[1].weight.detach().abs().max()) <= 0.1
    net = vg.mlp(100, 2, depth=2, width=100, init="normal", std=0.5)
    assert float(net.hidden_layers[1].weight.detach().std()) == pytest.approx(0.5, rel=0.05)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(depth=0, width=3), ValueError, "depth"),
        (dict(depth=2.5, width=3), TypeError, "depth"),
        (dict(depth=2, width=0), ValueError, "width"),
        (dict(depth=2, width=3, activation="sigmoidal"), ValueError, "activation"),
        (dict(depth=2, width=3, init="he"), ValueError, "scheme"),
        (dict(depth=2, width=3, norm="group"), ValueError, "norm"),
        (dict(depth=2, width=3, residual="yes"), TypeError, "residual"),
        (dict(depth=2, width=3, residual_scale=0), ValueError, "residual_scale"),
    ],
)
def test_mlp_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        vg.mlp(2, 2, **kwargs)


def test_mlp_on_device(device):
    net = vg.mlp(2, 2, depth=2, width=4, device=device)
    assert next(net.parameters()).device.type == device.type


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_rnn_model_shapes(cell):
    net = vg.rnn_model(cell, 2, 8, 3, num_layers=2)
    assert net(torch.randn(4, 11, 2)).shape == (4, 3)
    reg = vg.rnn_model(cell, 2, 8, 1)
    assert reg(torch.randn(4, 11, 2)).shape == (
        4,
        1,
    )  # the contract: (batch, output_size), 1 included


def test_forget_bias():
    net = vg.rnn_model("lstm", 2, 5, 1, forget_bias=1.0)
    total = net.rnn.bias_ih_l0 + net.rnn.bias_hh_l0
    assert torch.allclose(total[5:10], torch.ones(5))
    with pytest.raises(ValueError, match="forget_bias"):
        vg.rnn_model("gru", 2, 5, 1, forget_bias=1.0)


def test_rnn_model_bad_input():
    with pytest.raises(ValueError, match="cell"):
        vg.rnn_model("transformer", 2, 4, 1)
    with pytest.raises(ValueError, match="hidden_size"):
        vg.rnn_model("rnn", 2, 0, 1)
    with pytest.raises(ValueError, match="nonlinearity"):
        vg.rnn_model("rnn", 2, 4, 1, nonlinearity="sigmoid")


def test_weight_layers_generic_model():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 2))
    names = [n for n, _ in vg.weight_layers(net)]
    assert names == ["0.weight", "3.weight"]
    rnn = vg.rnn_model("lstm", 2, 4, 1)
    assert [n for n, _ in vg.weight_layers(rnn)] == [
        "rnn.weight_ih_l0",
        "rnn.weight_hh_l0",
        "head.weight",
    ]
