"""vg.diagnose never changes the model it inspects, nor the global random state (issue: no side effects).

Each model below is diagnosed in the state a practitioner would hand it over in (eval mode, a frozen
backbone with eval-mode BatchNorm, gradients held between backward() and step(), dropout, hooks of
their own), and must come back bit-for-bit: parameters, buffers, every module's train/eval flag,
requires_grad, the .grad tensors (the same objects), hooks, dtypes, and the torch/NumPy/Python RNG.
The same holds when diagnose raises.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

import vgcourse as vg
from vgcourse.model_state import differences, preserved, snapshot


class Block(nn.Module):
    """A ResNet basic block (He et al. 2016): conv-BN-ReLU-conv-BN plus the identity."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        return torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


def small_resnet() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), Block(8), Block(8),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10),
    )  # fmt: skip


def trained_stats(net: nn.Module, X: torch.Tensor) -> nn.Module:
    """Give BatchNorm non-trivial running statistics, as a trained model has."""
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(X)
    return net


def images():
    g = torch.Generator().manual_seed(0)
    return torch.randn(16, 3, 8, 8, generator=g), torch.randint(0, 10, (16,), generator=g)


def eval_resnet():
    X, y = images()
    return trained_stats(small_resnet(), X).eval(), X, y


def frozen_backbone():
    """A backbone frozen in eval mode (requires_grad False, BN in eval) under a trainable head."""
    X, y = images()
    net = trained_stats(small_resnet(), X)
    net.train()
    for module in list(net)[:-1]:
        module.eval()
        for p in module.parameters():
            p.requires_grad_(False)
    return net, X, y


def held_gradients():
    """A user calls diagnose between loss.backward() and optimizer.step()."""
    X, y = vg.data.moons(64, 0.1, seed=0)
    net = vg.mlp(2, 2, depth=3, width=16, activation="tanh")
    nn.functional.cross_entropy(net(X), y).backward()
    return net, X, y


def dropout_mlp():
    X, y = vg.data.moons(64, 0.1, seed=0)
    net = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 2))
    return net, X, y


def hooked_mlp():
    X, y = vg.data.moons(64, 0.1, seed=0)
    net = vg.mlp(2, 2, depth=2, width=8, activation="relu")
    net.hidden_layers[0].register_forward_hook(lambda m, i, o: None)
    return net, X, y


def lstm_tokens():
    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(20, 8)
            self.rnn = nn.LSTM(8, 16, batch_first=True, dropout=0.2, num_layers=2)
            self.head = nn.Linear(16, 3)

        def forward(self, tokens):
            return self.head(self.rnn(self.embed(tokens))[0][:, -1])

    g = torch.Generator().manual_seed(1)
    return Tagger().eval(), torch.randint(0, 20, (12, 30), generator=g), torch.randint(0, 3, (12,))


def half_precision_mlp():
    X, y = vg.data.moons(64, 0.1, seed=0)
    net = vg.mlp(2, 2, depth=2, width=8, activation="relu").to(torch.bfloat16)
    return net, X.to(torch.bfloat16), y


MODELS = {
    "eval-mode ResNet with BN": eval_resnet,
    "frozen eval-mode backbone": frozen_backbone,
    "gradients held before step()": held_gradients,
    "dropout MLP": dropout_mlp,
    "MLP with a user hook": hooked_mlp,
    "LSTM on tokens, eval mode": lstm_tokens,
    "bfloat16 MLP": half_precision_mlp,
}


def seed_globals():
    torch.manual_seed(123)
    np.random.seed(123)  # noqa: NPY002 (the global state a user seeds)
    random.seed(123)


@pytest.mark.parametrize("train_steps", [0, 2])
@pytest.mark.parametrize("make", MODELS.values(), ids=list(MODELS))
def test_diagnose_leaves_the_model_and_the_rng_as_they_were(make, train_steps):
    net, X, y = make()
    seed_globals()
    before = snapshot(net)
    with torch.no_grad():
        net_eval_out = net(X) if not net.training else None
    if net_eval_out is not None:
        before = snapshot(net)  # (an eval forward changes nothing; snapshot again to be exact)
    report = vg.diagnose(net, X, y, train_steps=train_steps)
    assert differences(before, snapshot(net)) == []
    assert "Measured in training mode" in report.mode and report.to_dict()["mode"] == report.mode
    if net_eval_out is not None:  # eval predictions identical after the diagnosis
        with torch.no_grad():
            assert torch.equal(net(X), net_eval_out)


@pytest.mark.parametrize("make", [eval_resnet, held_gradients, frozen_backbone])
def test_nothing_changes_when_diagnose_raises(make):
    net, X, y = make()
    before = snapshot(net)
    with pytest.raises(ValueError):
        vg.diagnose(net, X, torch.zeros(len(X), 7, 3), loss="cross_entropy")  # a y that cannot fit
    assert differences(before, snapshot(net)) == []
    with pytest.raises(ValueError, match="does not fit the model"):
        vg.diagnose(net, X[:, :1], y)  # one input channel / feature too few
    assert differences(before, snapshot(net)) == []


def test_the_report_says_which_mode_it_measured_in():
    net, X, y = frozen_backbone()
    report = vg.diagnose(net, X, y)
    assert "you put in eval mode stayed in eval mode" in report.mode
    assert report.mode in str(report) and report.mode in report._repr_html_()
    net, X, y = eval_resnet()
    assert "the model was in eval mode" in vg.diagnose(net, X, y).mode
    net, X, y = dropout_mlp()
    assert vg.diagnose(net, X, y).mode == "Measured in training mode (the model's own mode)."


def test_preserved_restores_everything_a_training_pass_touches():
    net, X, y = eval_resnet()
    held = [p.grad for p in net.parameters()]
    seed_globals()
    before = snapshot(net)
    with pytest.raises(RuntimeError, match="boom"), preserved(net):
        net.train()
        nn.functional.cross_entropy(net(X), y).backward()
        torch.rand(3), np.random.rand(), random.random()  # noqa: NPY002
        next(net.parameters()).requires_grad_(False)
        raise RuntimeError("boom")
    assert differences(before, snapshot(net)) == []
    assert all(a is b for a, b in zip(held, (p.grad for p in net.parameters())))


def test_differences_names_what_changed():
    net, X, y = eval_resnet()
    before = snapshot(net)
    net.train()
    with torch.no_grad():
        net(X)
    found = differences(before, snapshot(net))
    assert any("running_mean changed" in f for f in found)
    assert any("training of" in f for f in found)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_trial_steps_put_every_dtype_back_bit_for_bit(dtype):
    torch.manual_seed(0)
    net = vg.mlp(8, 3, depth=3, width=16, activation="tanh").to(dtype)
    X, y = torch.randn(32, 8, dtype=dtype), torch.randint(0, 3, (32,))
    before = snapshot(net)
    vg.diagnose(net, X, y, train_steps=3, lr=0.1, optimizer="adam")  # the backup is a file
    assert differences(before, snapshot(net)) == []


def test_one_sgd_trial_step_moves_each_layer_by_lr_times_its_gradient():
    # one optimizer per layer is the same step as one over all: under SGD the update:data ratio
    # of the first step is lr * |grad W| / |W| exactly, with the gradient of the measuring pass
    torch.manual_seed(0)
    net = vg.mlp(8, 3, depth=4, width=16, activation="relu", init="kaiming_normal")
    X, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
    report = vg.diagnose(net, X, y, train_steps=1, lr=0.01, optimizer="sgd")
    for row in report.layers:
        expected = 0.01 * row["grad_norm"] / row["weight_norm"]
        assert row["update_to_data"] == pytest.approx(expected, rel=1e-4), row["name"]
