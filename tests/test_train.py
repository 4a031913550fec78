import math

import numpy as np
import pytest
import torch

import vgcourse as vg


@pytest.fixture
def moons():
    return vg.data.moons(200, 0.1, seed=0)


def small_net(seed=0, **kw):
    torch.manual_seed(seed)
    cfg = dict(depth=3, width=16, activation="tanh", init="xavier_uniform")
    cfg.update(kw)
    return vg.mlp(2, 2, **cfg)


def test_layer_grad_norms_shape_order_and_no_side_effects(moons):
    X, y = moons
    net = small_net(activation="sigmoid", depth=6, init="standard")
    before = [p.detach().clone() for p in net.parameters()]
    norms = vg.layer_grad_norms(net, X, y)
    assert norms.shape == (6,)
    assert norms[0] < norms[-1]  # vanishing toward the input for a deep sigmoid net
    assert all(p.grad is None for p in net.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    manual = net.hidden_layers[2]
    torch.nn.functional.cross_entropy(net(X), y).backward()
    assert norms[2] == pytest.approx(float(manual.weight.grad.norm()), rel=1e-6)


def test_fit_learns_and_records(moons):
    X, y = moons
    net = small_net()
    h = vg.fit(net, (X, y), steps=300, lr=0.01, batch_size=32)
    assert h.steps == 300 and h.grad_norms.shape == (300, 3) and h.diverged_at is None
    assert h.loss[-20:].mean() < 0.5 * h.loss[:5].mean()
    assert np.all(h.total_grad_norm > 0)
    loss, acc = vg.evaluate(net, (X, y))
    assert acc > 0.85 and loss < 0.4
    assert "steps=300" in repr(h)


def test_fit_is_bit_for_bit_repeatable_on_cpu(moons):
    X, y = moons
    runs = []
    for _ in range(2):
        net = small_net(seed=5)
        h = vg.fit(net, (X, y), steps=50, lr=0.01, batch_size=16, seed=3)
        runs.append((h.loss, h.grad_norms, [p.detach().clone() for p in net.parameters()]))
    assert np.array_equal(runs[0][0], runs[1][0]) and np.array_equal(runs[0][1], runs[1][1])
    assert all(torch.equal(a, b) for a, b in zip(runs[0][2], runs[1][2]))


def test_fit_divergence_stops_and_reports(moons):
    X, y = moons
    net = small_net(activation="relu", init="normal", std=3.0, depth=6, width=32)
    h = vg.fit(net, (X, y), steps=200, lr=50.0, optimizer="sgd")
    assert h.diverged_at is not None and h.steps == h.diverged_at + 1
    assert not math.isfinite(h.loss[-1]) or not math.isfinite(h.total_grad_norm[-1])
    assert np.all(np.isfinite(h.loss[:-1]))


def test_fit_clip_norm_bounds_the_update(moons):
    X, y = moons
    net = small_net()
    seen = []

    def after(step, model, loss):
        seen.append(step)

    h = vg.fit(net, (X, y), steps=20, lr=0.01, optimizer="sgd", clip_norm=1e-3, callbacks=[after])
    assert h.clipped.all() and seen == list(range(20))
    h2 = vg.fit(small_net(), (X, y), steps=5, lr=0.01, clip_value=1e-6)
    assert h2.clipped.all()
    h3 = vg.fit(small_net(), (X, y), steps=5, lr=0.01, clip_norm=1e9)
    assert not h3.clipped.any()


def test_fit_eval_and_bce_and_mse():
    X, y = vg.data.moons(100, 0.1, seed=1)
    torch.manual_seed(0)
    net = vg.mlp(2, 1, depth=2, width=16, activation="tanh", init="xavier_uniform")
    h = vg.fit(net, (X, y), steps=100, lr=0.02, loss="bce", eval_data=(X, y), eval_every=25)
    assert h.eval_steps == [25, 50, 75, 100] and h.eval_accuracy[-1] > 0.8
    Xa, ya = vg.data.adding_problem(64, 10)
    rnn = vg.rnn_model("gru", 2, 8, 1)
    h = vg.fit(rnn, (Xa, ya), steps=5, lr=1e-3, loss="mse")
    assert h.steps == 5 and h.grad_norms.shape == (5, 3)


def test_fit_custom_optimizer_and_loss(moons):
    X, y = moons
    h = vg.fit(
        small_net(),
        (X, y),
        steps=3,
        lr=0.1,
        optimizer=torch.optim.Adagrad,
        loss=lambda out, t: torch.nn.functional.cross_entropy(out, t),
    )
    assert h.steps == 3
    h = vg.fit(small_net(), (X, y), steps=3, lr=0.1, record=False)
    assert h.grad_norms.shape == (3, 0)


def test_epochs_to_steps():
    assert vg.epochs_to_steps(100, 200, 32) == 700
    assert vg.epochs_to_steps(3, 200, None) == 3


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(steps=0, lr=0.1), ValueError, "steps"),
        (dict(steps=1.5, lr=0.1), TypeError, "steps"),
        (dict(steps=1, lr=0), ValueError, "lr"),
        (dict(steps=1, lr=-1.0), ValueError, "lr"),
        (dict(steps=1, lr=0.1, optimizer="adamax"), ValueError, "optimizer"),
        (dict(steps=1, lr=0.1, loss="hinge"), ValueError, "loss"),
        (dict(steps=1, lr=0.1, batch_size=0), ValueError, "batch_size"),
        (dict(steps=1, lr=0.1, clip_norm=-1.0), ValueError, "clip_norm"),
    ],
)
def test_fit_bad_arguments(moons, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        vg.fit(small_net(), moons, **kwargs)


def test_fit_bad_data():
    X, y = vg.data.moons(20, 0.1)
    with pytest.raises(ValueError, match="same number of rows"):
        vg.fit(small_net(), (X, y[:-1]), steps=1, lr=0.1)
    Xn = X.clone()
    Xn[3, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        vg.fit(small_net(), (Xn, y), steps=1, lr=0.1)
    with pytest.raises(TypeError, match="pair"):
        vg.fit(small_net(), X, steps=1, lr=0.1)
    with pytest.raises(TypeError, match="nn.Module"):
        vg.fit("net", (X, y), steps=1, lr=0.1)
    with pytest.raises(ValueError, match="same number of rows"):
        vg.layer_grad_norms(small_net(), X, y[:3])


def test_fit_on_every_device(device):
    X, y = vg.data.moons(64, 0.1)
    torch.manual_seed(0)
    net = vg.mlp(2, 2, depth=2, width=8, device=device)
    h = vg.fit(net, (X, y), steps=10, lr=0.01)
    assert h.steps == 10 and np.isfinite(h.loss).all()
    assert vg.layer_grad_norms(net, X, y).shape == (2,)


@pytest.mark.cuda
def test_fit_cuda_matches_cpu_closely():
    X, y = vg.data.moons(64, 0.1)
    losses = []
    for dev in ("cpu", "cuda"):
        torch.manual_seed(0)
        net = vg.mlp(2, 2, depth=3, width=8, device=dev)
        losses.append(vg.fit(net, (X, y), steps=20, lr=0.01).loss)
    assert np.allclose(losses[0], losses[1], rtol=1e-3)


def test_fit_probe_every_records_layer_statistics(moons):
    X, y = moons
    net = small_net(activation="sigmoid", depth=4)
    h = vg.fit(net, (X, y), steps=30, lr=1e-2, probe_every=10)
    assert h.stats_steps == [0, 10, 20]
    assert h.stats["act_mean"].shape == (3, 4) and h.stats["grad_to_data"].shape == (3, 5)
    assert np.all((h.stats["act_mean"] > 0) & (h.stats["act_mean"] < 1))  # sigmoid outputs
    assert np.all(h.stats["update_to_data"] > 0)
    assert h.stats_layers["activations"][0] == "blocks.0.act"
    ax = vg.plots.plot_layer_heatmap(
        h.stats["act_mean"], steps=h.stats_steps, log=False, label="mean"
    )
    assert ax.images[0].get_array().shape == (4, 3)
    with pytest.raises(ValueError, match="probe_every"):
        vg.fit(net, (X, y), steps=3, lr=1e-2, probe_every=0)


def test_fit_drop_last_keeps_batches_full():
    X, y = vg.data.moons(33, 0.1)
    torch.manual_seed(0)
    net = vg.mlp(2, 2, depth=2, width=8, norm="batch")
    sizes = []
    net.register_forward_hook(lambda m, i, o: sizes.append(i[0].shape[0]) if m.training else None)
    vg.fit(net, (X, y), steps=6, lr=1e-2, batch_size=16, drop_last=True)
    assert sizes == [16] * 6
    from vgcourse.train import BatchSampler

    kept = BatchSampler(33, 16, seed=0)
    assert [len(kept.next()) for _ in range(3)] == [16, 16, 1]
    with pytest.raises(ValueError, match="more than 1 value"):  # why drop_last exists
        vg.fit(net, (X, y), steps=3, lr=1e-2, batch_size=16)


def test_layer_grad_norms_leaves_batch_norm_statistics_alone():
    torch.manual_seed(0)
    net = vg.mlp(4, 2, depth=3, width=8, norm="batch")
    X, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    norms = vg.layer_grad_norms(net, X, y)
    assert norms.shape == (3,) and (norms > 0).all()
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} changed"
    assert all(p.grad is None for p in net.parameters())
