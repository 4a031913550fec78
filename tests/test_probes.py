import math

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
    assert rec.grad_to_data == pytest.approx(float(W.grad.norm() / W.detach().norm()), rel=1e-5)
    assert rec.output_grad_norm > 0 and rec.grad_values is not None
    act = probe.activations["blocks.0.act"]
    h = torch.tanh(net.blocks[0].linear(X)).detach()
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
    probe = Probe(nn.Linear(2, 2))
    probe.snapshot_weights()
    probe.model.weight = nn.Parameter(torch.zeros(3, 2))
    with pytest.raises(RuntimeError, match="changed shape"):
        probe.update_ratios()
    with pytest.raises(ValueError, match="sigmoid"):
        vg.probes.derivative_from_output("gelu", torch.zeros(2))
    weightless = Probe(nn.Sigmoid())  # nothing to measure but the activation
    for _ in range(2):
        weightless.snapshot_weights()
        assert weightless.update_ratios() == {}
    with weightless:
        weightless.model(torch.zeros(3, 2))
    assert weightless.weights == {} and weightless.activations["model"].mean == 0.5


# -- the fast path against a straightforward computation --------------------------------------


def reference_step(net, X, y, lr=0.05):
    """One forward/backward/Adam step measured the plain way: per-module hooks, every statistic
    computed on the spot from its definition (input z, phi'(z), one norm per tensor)."""
    acts, outs, handles = {}, {}, []
    for name, m in net.named_modules():
        key = vg.activations.name_of(m)
        if key not in (None, "identity"):

            def act_hook(m, inputs, out, name=name, key=key):
                z, o = inputs[0].detach(), out.detach()
                info = vg.activations.info(key)
                d = vg.activations.module_derivative(m, z)
                saturated = dead = 0.0
                if info.family == "saturating":
                    saturated = float((d < 0.1 * info.max_derivative).float().mean())
                if info.family == "rectifier":
                    dead = float((z <= 0).all(dim=0).float().mean())
                acts[name] = (float(o.mean()), float(o.std()), saturated, dead)

            handles.append(m.register_forward_hook(act_hook))
        if isinstance(m, nn.Linear):

            def lin_hook(m, inputs, out, name=name):
                outs[name] = out
                out.retain_grad()

            handles.append(m.register_forward_hook(lin_hook))
    layers = {n: m for n, m in net.named_modules() if isinstance(m, nn.Linear)}
    before = {n: m.weight.detach().clone() for n, m in layers.items()}
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    opt.zero_grad()
    nn.functional.cross_entropy(net(X), y).backward()
    for h in handles:
        h.remove()
    weights = {}
    for n, m in layers.items():
        w0, g = before[n], m.weight.grad
        weights[n] = [float(w0.norm()), float(g.norm()), float(outs[n].grad.norm())]
        weights[n].append(weights[n][1] / weights[n][0])
    opt.step()
    for n, m in layers.items():
        w0 = before[n]
        weights[n].append(float((m.weight.detach() - w0).norm() / w0.norm()))
    return acts, weights


def probed_step(net, X, y, lr=0.05):
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    opt.zero_grad()
    with Probe(net) as probe:
        nn.functional.cross_entropy(net(X), y).backward()
    probe.snapshot_weights()
    opt.step()
    probe.update_ratios()
    return probe


def hard_net(activation, seed=0):
    """A net whose statistics are far from trivial: saturated units, dead units, big spread."""
    torch.manual_seed(seed)
    net = vg.mlp(3, 4, depth=4, width=16, activation=activation, init="normal", std=1.2)
    with torch.no_grad():
        net.hidden_layers[1].bias[:4] = -50.0  # four units of layer 2 never fire (ReLU: dead)
    return net


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "leaky_relu", "gelu"])
def test_probe_matches_reference_computation(activation):
    X, y = torch.randn(64, 3), torch.randint(0, 4, (64,))
    ref_acts, ref_weights = reference_step(hard_net(activation), X, y)
    probe = probed_step(hard_net(activation), X, y)
    assert list(probe.activations) == list(ref_acts)
    for name, (mean, std, saturated, dead) in ref_acts.items():
        r = probe.activations[name]
        assert (r.mean, r.std) == pytest.approx((mean, std), rel=1e-5, abs=1e-6)
        assert (r.saturated, r.dead) == pytest.approx((saturated, dead), abs=1e-6)
    assert list(probe.weights) == list(ref_weights)
    for name, expected in ref_weights.items():
        r = probe.weights[name]
        got = [r.weight_norm, r.grad_norm, r.output_grad_norm, r.grad_to_data, r.update_to_data]
        assert got == pytest.approx(expected, rel=1e-5)
    # the statistics the test is about are really exercised
    stats = probe.activation_table()
    if activation in ("sigmoid", "tanh"):
        assert max(s["saturated"] for s in stats) > 0.1
    if activation == "relu":
        assert stats[1]["dead"] >= 4 / 16
    # the tensors are the records, without the host transfer
    acts, weights = probe.stat_tensors()
    assert acts.shape == (4, 4) and weights.shape == (5, 5)
    assert acts[0].tolist() == pytest.approx([s["mean"] for s in stats])
    assert weights[4].tolist() == pytest.approx([w["update_to_data"] for w in probe.weight_table()])


def test_derivative_from_output_is_the_derivative():
    z = torch.linspace(-8, 8, 2001)
    for name, fn in (("sigmoid", torch.sigmoid), ("tanh", torch.tanh)):
        assert torch.equal(
            vg.probes.derivative_from_output(name, fn(z)), vg.activations.derivative(name, z)
        )
    soft = vg.probes.derivative_from_output("softsign", nn.functional.softsign(z))
    assert torch.allclose(soft, vg.activations.derivative("softsign", z), rtol=1e-5, atol=1e-7)
    # saturated = phi' below 10% of its maximum: a threshold on the output
    s = torch.sigmoid(z)
    saturated = vg.probes.derivative_from_output("sigmoid", s) < 0.1 * 0.25
    assert saturated[(s - 0.5).abs() > 0.4744].all()  # sqrt(0.225) = 0.47434
    assert not saturated[(s - 0.5).abs() < 0.4743].any()
    with pytest.raises(ValueError, match="relu"):
        vg.probes.derivative_from_output("relu", z)


def test_many_passes_match_one_pass_at_a_time(monkeypatch):
    """end_pass/finished_stats (what fit uses) gives what stat_tensors gives pass by pass."""
    monkeypatch.setattr("vgcourse.probe_stats.PENDING_PASSES", 3)  # several batches of passes
    batches = [torch.randn(n, 3) for n in (16, 16, 16, 16, 7, 16)]  # one smaller batch
    labels = [torch.randint(0, 4, (len(b),)) for b in batches]
    results = []
    for many in (False, True):
        net = hard_net("tanh", seed=1)
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        probe = Probe(net).attach()
        per_pass = []
        for xb, yb in zip(batches, labels):
            probe.reset() if not many else None
            opt.zero_grad()
            nn.functional.cross_entropy(net(xb), yb).backward()
            probe.collect_gradients()
            probe.snapshot_weights()
            opt.step()
            probe.update_ratio_tensor()
            if many:
                probe.end_pass()
            else:
                acts, weights = probe.stat_tensors()
                per_pass.append((acts.clone(), weights.clone()))
        probe.detach()
        if many:
            chunks = probe.finished_stats()
            assert sum(c[2].shape[0] for c in chunks) == len(batches)
            assert probe.finished_stats() == []
            per_pass = [(a, w) for c in chunks for a, w in zip(c[2], c[3])]
            assert all(c[0] == chunks[0][0] and c[1] == chunks[0][1] for c in chunks)
        results.append(per_pass)
    for (a1, w1), (a2, w2) in zip(*results):
        assert torch.allclose(a1, a2, rtol=1e-6, atol=1e-7)
        assert torch.allclose(w1, w2, rtol=1e-6, atol=1e-7)


def test_probe_outputs_changed_in_place():
    class Block(nn.Module):
        def __init__(self, act):
            super().__init__()
            self.lin, self.act = nn.Linear(4, 4), act

        def forward(self, x):
            h = self.act(self.lin(x))
            h.mul_(3.0)  # after the hook has seen h
            return h

    torch.manual_seed(0)
    X = torch.randn(8, 4)
    net = Block(nn.GELU())  # not kept by autograd: the probe copies the output
    with Probe(net) as probe:
        out = net(X)
    assert probe.activations["act"].mean == pytest.approx(float(out.detach().mean() / 3), rel=1e-5)
    net = Block(nn.Sigmoid())  # kept by reference; changed before it was read: NaN, with a warning
    with pytest.warns(RuntimeWarning, match="changed in place"):
        with Probe(net) as probe:
            net(X)
        assert math.isnan(probe.activations["act"].mean)


def test_probe_weight_norms_are_those_of_the_forward_pass():
    torch.manual_seed(0)
    net = vg.mlp(3, 2, depth=2, width=8, activation="tanh")
    X, y = torch.randn(16, 3), torch.randint(0, 2, (16,))
    norm0 = float(net.hidden_layers[0].weight.detach().norm())
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    with Probe(net) as probe:  # the right order: gradients read before the step
        nn.functional.cross_entropy(net(X), y).backward()
        probe.collect_gradients()
        opt.step()
    assert probe.weights["blocks.0.linear"].weight_norm == pytest.approx(norm0, rel=1e-6)
    with pytest.warns(RuntimeWarning, match="changed between the forward pass"):
        with Probe(net) as probe:  # a step before the statistics are read: no wrong number
            nn.functional.cross_entropy(net(X), y).backward()
            opt.step()
        record = probe.weights["blocks.0.linear"]
    assert math.isnan(record.weight_norm) and math.isnan(record.grad_to_data)
    assert record.grad_norm > 0


def test_probe_shared_frozen_and_multi_weight_layers():
    torch.manual_seed(0)
    shared = nn.Linear(4, 4)
    frozen = nn.Linear(4, 2)
    frozen.weight.requires_grad_(False)
    net = nn.Sequential(shared, nn.Tanh(), shared, nn.Tanh(), frozen)
    X = torch.randn(8, 4)
    with Probe(net) as probe:
        net(X).pow(2).mean().backward()
    w = probe.weights
    assert list(w) == ["0", "0#2", "4"]
    assert (
        w["0"].weight_norm
        == w["0#2"].weight_norm
        == pytest.approx(float(shared.weight.detach().norm()))
    )
    assert w["0"].grad_norm == pytest.approx(float(shared.weight.grad.norm()), rel=1e-6)
    assert math.isnan(w["0#2"].grad_norm)  # a layer's gradient belongs to its first record
    assert w["0#2"].output_grad_norm > 0
    assert math.isnan(w["4"].grad_norm) and math.isnan(w["4"].grad_to_data)  # frozen: no gradient
    lstm = nn.LSTM(2, 3, batch_first=True)
    with Probe(lstm) as probe:
        out, _ = lstm(torch.randn(4, 5, 2))
        out.sum().backward()
    record = probe.weights["model"]
    expected = torch.cat([lstm.weight_ih_l0.reshape(-1), lstm.weight_hh_l0.reshape(-1)])
    expected = expected.detach().norm()
    assert record.weight_norm == pytest.approx(float(expected), rel=1e-6)
    grads = torch.cat([lstm.weight_ih_l0.grad.reshape(-1), lstm.weight_hh_l0.grad.reshape(-1)])
    assert record.grad_norm == pytest.approx(float(grads.norm()), rel=1e-6)
    assert record.output_grad_norm == pytest.approx(float(torch.ones_like(out).norm()), rel=1e-6)


def test_probe_records_nothing_while_inactive():
    net = vg.mlp(2, 2, depth=2, width=4)
    probe = Probe(net).attach()
    probe.active = False
    net(torch.randn(3, 2))
    assert probe.activations == {} and probe.weights == {}
    probe.active = True
    net(torch.randn(3, 2))
    assert len(probe.activations) == 2
    probe.detach()
    assert all(not m._forward_hooks for m in net.modules())
