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


def reference_fit_stats(net, X, y, *, steps, lr, batch_size):
    """fit's training loop written out (same sampler, Adam, loss), with the statistics of
    History.stats computed the plain way at every step: per-module hooks and one norm per tensor."""
    from vgcourse.train import BatchSampler

    acts_of_step, hooks = [], []
    for m in net.modules():
        key = vg.activations.name_of(m)
        if key not in (None, "identity"):

            def hook(m, inputs, out, key=key):
                z, o = inputs[0].detach(), out.detach()
                info = vg.activations.info(key)
                d = vg.activations.module_derivative(m, z)
                saturated = float((d < 0.1 * info.max_derivative).float().mean())
                dead = float((z <= 0).all(dim=0).float().mean())
                acts_of_step.append(
                    [
                        float(o.mean()),
                        float(o.std()),
                        saturated if info.family == "saturating" else 0.0,
                        dead if info.family == "rectifier" else 0.0,
                    ]
                )

            hooks.append(m.register_forward_hook(hook))
    layers = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sampler = BatchSampler(len(X), batch_size, 0)
    acts, grad_to_data, update_to_data = [], [], []
    for _ in range(steps):
        idx = sampler.next()
        opt.zero_grad(set_to_none=True)
        acts_of_step.clear()
        torch.nn.functional.cross_entropy(net(X[idx]), y[idx]).backward()
        acts.append(list(acts_of_step))
        before = [m.weight.detach().clone() for m in layers]
        grad_to_data.append(
            [float(m.weight.grad.norm() / w.norm()) for m, w in zip(layers, before)]
        )
        opt.step()
        update_to_data.append(
            [float((m.weight.detach() - w).norm() / w.norm()) for m, w in zip(layers, before)]
        )
    for h in hooks:
        h.remove()
    acts = np.array(acts)  # (steps, layers, 4)
    return {
        "act_mean": acts[:, :, 0],
        "act_std": acts[:, :, 1],
        "saturated": acts[:, :, 2],
        "dead": acts[:, :, 3],
        "grad_to_data": np.array(grad_to_data),
        "update_to_data": np.array(update_to_data),
    }


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_fit_probe_stats_match_a_plain_computation(activation, monkeypatch):
    monkeypatch.setattr(
        "vgcourse.probe_stats.PENDING_PASSES", 4
    )  # statistics computed in several batches
    X, y = vg.data.moons(40, 0.1, seed=1)  # batches of 16, 16 and 8
    kw = dict(depth=4, width=8, activation=activation, init="normal", std=1.5)
    net = small_net(**kw)
    h = vg.fit(net, (X, y), steps=9, lr=0.05, batch_size=16, probe_every=1, record=False)
    expected = reference_fit_stats(small_net(**kw), X, y, steps=9, lr=0.05, batch_size=16)
    assert h.stats_steps == list(range(9))
    assert list(h.stats) == list(expected)
    for key, value in expected.items():
        assert h.stats[key].dtype == np.float64
        np.testing.assert_allclose(h.stats[key], value, rtol=2e-5, atol=1e-6, err_msg=key)
    interesting = "saturated" if activation == "sigmoid" else "dead"
    assert h.stats[interesting].max() > 0.05  # the comparison covers a statistic that is not 0


def test_fit_probe_every_1_and_3_agree_at_the_shared_steps(moons):
    X, y = moons
    h1 = vg.fit(small_net(depth=5), (X, y), steps=12, lr=1e-2, batch_size=64, probe_every=1)
    h3 = vg.fit(small_net(depth=5), (X, y), steps=12, lr=1e-2, batch_size=64, probe_every=3)
    assert h3.stats_steps == [0, 3, 6, 9] and h1.stats_steps == list(range(12))
    assert h1.stats_layers == h3.stats_layers
    np.testing.assert_array_equal(h1.loss, h3.loss)  # probing does not change the training
    for key, value in h3.stats.items():
        np.testing.assert_allclose(h1.stats[key][::3], value, rtol=1e-6, atol=1e-9, err_msg=key)


def test_fit_removes_its_hooks_even_when_training_fails(moons):
    X, y = moons
    net = small_net()
    with pytest.raises(ValueError, match="scalar"):
        vg.fit(net, (X, y), steps=3, lr=1e-2, probe_every=1, loss=lambda out, t: out.sum(1))
    assert all(not m._forward_hooks for m in net.modules())
    h = vg.fit(net, (X, y), steps=3, lr=1e-2, probe_every=1)
    assert all(not m._forward_hooks for m in net.modules()) and len(h.stats_steps) == 3


def test_fit_probe_stats_when_the_layers_change_between_steps(moons):
    """A model whose forward pass calls a module a varying number of times: matched by name."""

    class Alternating(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin, self.out, self.act = (
                torch.nn.Linear(2, 6),
                torch.nn.Linear(6, 2),
                torch.nn.Tanh(),
            )
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            h = self.act(self.lin(x))
            if self.calls % 2 == 0:
                h = self.act(h)  # a second call, recorded as "act#2"
            return self.out(h)

    X, y = moons
    torch.manual_seed(0)
    h = vg.fit(Alternating(), (X, y), steps=4, lr=1e-2, probe_every=1)
    assert h.stats_layers["activations"] == ["act"]
    assert h.stats["act_mean"].shape == (4, 1) and np.isfinite(h.stats["act_mean"]).all()
    torch.manual_seed(0)
    model = Alternating()
    model.calls = 1  # the first step now calls the activation twice
    h = vg.fit(model, (X, y), steps=4, lr=1e-2, probe_every=1)
    assert h.stats_layers["activations"] == ["act", "act#2"]
    assert (
        np.isnan(h.stats["act_mean"][1::2, 1]).all() and np.isfinite(h.stats["act_mean"][::2]).all()
    )
