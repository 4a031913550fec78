import pytest
import torch
from torch import nn

import vgcourse as vg
from vgcourse.probes import Probe, probe_model


def test_probe_saturation_and_dead_units():
    torch.manual_seed(0)
    net = vg.mlp(10, 2, depth=3, width=50, activation="sigmoid", init="normal", std=5.0)
    X = torch.randn(256, 10)
    probe = probe_model(net, X)
    sat = [r.saturated for r in probe.activations.values()]
    assert len(sat) == 3 and all(s > 0.5 for s in sat)
    relu = vg.mlp(10, 2, depth=2, width=20, activation="relu")
    with torch.no_grad():
        relu.hidden_layers[0].bias[:5] = -1e3  # five units can never fire
    probe = probe_model(relu, X)
    first = list(probe.activations.values())[0]
    assert first.dead == pytest.approx(5 / 20)
    assert first.saturated == 0.0


def test_probe_gradients_and_ratios_match_manual():
    torch.manual_seed(0)
    net = vg.mlp(4, 3, depth=2, width=8, activation="tanh")
    X, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    with Probe(net, keep_values=True) as probe:
        nn.functional.cross_entropy(net(X), y).backward()
    rec = probe.weights["blocks.1.linear"]
    W = net.blocks[1].linear.weight
    assert rec.grad_norm == pytest.approx(float(W.grad.norm()), rel=1e-5)
    assert rec.grad_to_data == pytest.approx(float(W.grad.norm() / W.norm()), rel=1e-5)
    assert rec.output_grad_norm > 0 and rec.grad_values is not None
    act = probe.activations["blocks.0.act"]
    h = torch.tanh(net.blocks[0].linear(X))
    assert act.mean == pytest.approx(float(h.mean()), abs=1e-6) and act.values.numel() == h.numel()
    probe.snapshot_weights()
    with torch.no_grad():
        W.mul_(1.01)
    ratios = probe.update_ratios()
    assert ratios["blocks.1.linear"] == pytest.approx(0.01, rel=1e-3)
    assert len(probe.activation_table()) == 2 and "values" not in probe.activation_table()[0]
    assert probe._handles == []  # hooks removed on exit


def test_probe_reused_module_and_generic_models():
    shared = nn.ReLU()
    net = nn.Sequential(nn.Linear(3, 4), shared, nn.Linear(4, 4), shared, nn.Linear(4, 1))
    probe = probe_model(net, torch.randn(8, 3))
    assert list(probe.activations) == ["1", "1#2"]
    cnn = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(72, 2))
    probe = probe_model(cnn, torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 0, 1]))
    assert set(probe.weights) == {"0", "3"} and probe.weights["0"].grad_norm > 0
    rnn = vg.rnn_model("lstm", 2, 4, 1)
    probe = probe_model(rnn, torch.randn(3, 5, 2), torch.randn(3), loss="mse")
    assert probe.weights["rnn"].grad_norm > 0 and probe.weights["rnn"].output_grad_norm > 0


def test_probe_errors():
    with pytest.raises(TypeError, match="nn.Module"):
        Probe("model")
    with pytest.raises(RuntimeError, match="snapshot_weights"):
        Probe(nn.Linear(2, 2)).update_ratios()
