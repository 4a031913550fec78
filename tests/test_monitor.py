"""vg.monitor over real training loops: it finds problems that appear during training and the
step they start, measures the real update, leaves training bit-for-bit unchanged, and works as a
PyTorch Lightning callback."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import vgcourse as vg


@pytest.fixture(scope="module")
def digits():
    X, y = vg.data.digits()
    return X[:512], y[:512]


def _net(seed=0, dropout=0.0):
    torch.manual_seed(seed)
    net = vg.mlp(64, 10, depth=6, width=64, activation="relu", init="kaiming_normal")
    if dropout:
        net = nn.Sequential(nn.Dropout(dropout), net)
    return net


def _train(net, data, steps, lr, opt="sgd", mon=None, loss_scale=1.0):
    X, y = data
    g = torch.Generator().manual_seed(1)
    optimizer = (
        torch.optim.SGD(net.parameters(), lr=lr)
        if opt == "sgd"
        else torch.optim.Adam(net.parameters(), lr=lr)
    )
    losses = []
    for _ in range(steps):
        i = torch.randint(0, len(X), (64,), generator=g)
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(net(X[i]), y[i])
        (loss * loss_scale).backward()
        if loss_scale != 1.0:
            for p in net.parameters():
                p.grad /= loss_scale
        optimizer.step()
        losses.append(loss.item())
        if mon is not None:
            mon.step(loss)
    return losses


def test_dead_units_that_appear_during_training_and_the_step_they_start(digits):
    net = _net()
    with vg.monitor(net, every=5) as mon:
        _train(net, digits, 60, lr=0.5, mon=mon)
    started = mon.problems_started()
    assert "dead_units" not in mon.records[0].problems  # healthy at the start...
    assert started["dead_units"] > 1  # ...dead units appear later
    assert "dead units: from step" in str(mon)
    assert [r.step for r in mon.records][:3] == [1, 5, 10]
    healthy = _net()
    with vg.monitor(healthy, every=5) as calm:
        _train(healthy, digits, 60, lr=0.02, mon=calm)
    assert calm.problems_started() == {}, calm.problems_started()


def test_training_is_bit_for_bit_unchanged(digits):
    plain = _train(_net(dropout=0.1), digits, 40, lr=1e-3, opt="adam")
    net = _net(dropout=0.1)
    with vg.monitor(net, every=3) as mon:
        watched = _train(net, digits, 40, lr=1e-3, opt="adam", mon=mon)
    assert watched == plain  # dropout draws the same masks: the monitor draws no random numbers
    assert len(mon.records) == 14 and not any(
        m._forward_hooks or m._forward_pre_hooks for m in net.modules()
    )


def test_update_to_data_is_the_real_update(digits):
    net = _net()
    X, y = digits
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with vg.monitor(net, every=1) as mon:
        first = net.hidden_layers[0].weight.detach().clone()
        opt.zero_grad()
        nn.functional.cross_entropy(net(X[:64]), y[:64]).backward()
        grad = net.hidden_layers[0].weight.grad.clone()
        opt.step()
        mon.step()
    expected = float((net.hidden_layers[0].weight.detach() - first).norm() / first.norm())
    assert mon.records[0].update_to_data[0] == pytest.approx(expected, rel=1e-5)
    assert mon.records[0].grad_rms[0] == pytest.approx(
        float(grad.norm()) / math.sqrt(grad.numel()), rel=1e-5
    )


def test_grad_scale_gives_the_true_gradient(digits):
    X, y = digits
    norms = []
    for scale in (1.0, 1024.0):
        net = _net()
        with vg.monitor(net, every=1) as mon:
            net.zero_grad()
            (scale * nn.functional.cross_entropy(net(X[:64]), y[:64])).backward()
            mon.step(grad_scale=scale)
        norms.append(mon.records[0].grad_rms)
    np.testing.assert_allclose(norms[0], norms[1], rtol=1e-5)


def test_non_finite_step_plot_and_bad_input(digits):
    net = _net()
    with vg.monitor(net, every=2) as mon:
        _train(net, digits, 30, lr=2.0, mon=mon)
    assert "non_finite" in mon.problems_started()
    h = mon.history()
    assert h["update_to_data"].shape == (len(mon.records), len(mon.layer_names))
    import matplotlib

    matplotlib.use("Agg")
    axes = mon.plot()
    assert axes[0].get_yscale() == "log"
    with pytest.raises(ValueError, match="every must be"):
        vg.monitor(net, every=0)
    with pytest.raises(ValueError, match="no parameters"):
        vg.monitor(nn.Sequential(nn.ReLU()))


def test_lightning_callback(digits):
    L = pytest.importorskip("lightning")
    from vgcourse.lightning_monitor import GradientMonitor

    X, y = digits

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = _net()
            self.losses = []

        def training_step(self, batch, batch_idx):
            loss = nn.functional.cross_entropy(self.net(batch[0]), batch[1])
            self.losses.append(loss.item())
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.5)

    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=64)

    def fit(callbacks):
        module = Module()
        trainer = L.Trainer(
            max_steps=40,
            callbacks=callbacks,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            accelerator="cpu",
        )
        trainer.fit(module, loader)
        return module.losses

    callback = GradientMonitor(every=5)
    watched = fit([callback])
    assert watched == fit([])  # the callback leaves training unchanged
    lit = callback.monitor
    assert lit.steps == 40 and [r.step for r in lit.records] == [1, *range(5, 41, 5)]
    # the callback records what a monitor in the same hand-written loop records
    net = _net()
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    with vg.monitor(net, every=5) as mon:
        for _epoch in range(5):
            for xb, yb in loader:
                opt.zero_grad()
                loss = nn.functional.cross_entropy(net(xb), yb)
                loss.backward()
                opt.step()
                mon.step(loss)
    assert lit.layer_names == ["net." + n for n in mon.layer_names]
    for a, b in zip(lit.records, mon.records):
        assert a.loss == pytest.approx(b.loss, rel=1e-5)
        np.testing.assert_allclose(a.grad_rms, b.grad_rms, rtol=1e-4)
        np.testing.assert_allclose(a.update_to_data, b.update_to_data, rtol=1e-4)
        np.testing.assert_allclose(a.dead, b.dead, atol=1e-6)


def test_layers_in_call_order():
    class Reversed(nn.Module):  # registered first, called last
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(8, 2)
            self.body = nn.Sequential(nn.Linear(4, 8), nn.Tanh())

        def forward(self, X):
            return self.head(self.body(X))

    net = Reversed()
    with vg.monitor(net, every=1) as mon:
        net(torch.randn(16, 4)).sum().backward()
        mon.step()
    assert mon.layer_names == ["body.0", "head"]
    assert mon.records[0].grad_rms[1] == pytest.approx(
        float(net.head.weight.grad.norm()) / math.sqrt(16), rel=1e-5
    )
