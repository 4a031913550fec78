"""Unit tests of vgcourse.lessons.lesson03_activations (lesson 03's tools)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import vgcourse as vg
from vgcourse import activations as act
from vgcourse.lessons import lesson03_activations as st
from vgcourse.lessons import lesson03_deep_nets, lesson03_explorer, lesson03_selu

NAMES = [n for n in vg.ACTIVATIONS if n not in ("identity", "swish")]  # swish is an alias of silu


# -- Gaussian expectations -------------------------------------------------------------------------
@pytest.mark.parametrize("mean,std", [(0.0, 1.0), (0.7, 0.3), (-2.0, 3.0)])
def test_gaussian_expectation_moments(mean, std):
    assert st.gaussian_expectation(torch.ones_like, mean=mean, std=std) == pytest.approx(
        1, abs=1e-12
    )
    assert st.gaussian_expectation(lambda z: z, mean=mean, std=std) == pytest.approx(
        mean, abs=1e-10
    )
    second = st.gaussian_expectation(lambda z: z**2, mean=mean, std=std)
    assert second == pytest.approx(mean**2 + std**2, rel=1e-10)


def test_gaussian_expectation_kinks_are_exact():
    assert st.gaussian_expectation(torch.abs) == pytest.approx(math.sqrt(2 / math.pi), abs=1e-12)
    step = st.gaussian_expectation(lambda z: (z > 0).double())
    assert step == pytest.approx(0.5, abs=1e-12)  # the step at the breakpoint is not sampled


def test_gaussian_expectation_bad_inputs():
    with pytest.raises(TypeError, match="fn must be callable"):
        st.gaussian_expectation(3.0)
    with pytest.raises(ValueError, match="std"):
        st.gaussian_expectation(torch.ones_like, std=0.0)
    with pytest.raises(ValueError, match="num_points"):
        st.gaussian_expectation(torch.ones_like, num_points=10)
    with pytest.raises(ValueError, match="mean"):
        st.gaussian_expectation(torch.ones_like, mean=float("nan"))
    with pytest.raises(TypeError, match="mean"):
        st.gaussian_expectation(torch.ones_like, mean="0")
    with pytest.raises(ValueError, match="same shape"):
        st.gaussian_expectation(lambda z: z.sum())


# -- expected derivative ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_monte_carlo_agrees_with_quadrature(name):
    mc, se = st.mc_expected_derivative(name, n=50_000, seed=1)
    assert 0 < se < 0.01
    assert abs(mc - act.expected_derivative(name)) < 4 * se


def test_monte_carlo_is_seeded_and_uses_parameters():
    assert st.mc_expected_derivative("tanh", n=1000, seed=3) == st.mc_expected_derivative(
        "tanh", n=1000, seed=3
    )
    mc, se = st.mc_expected_derivative("leaky_relu", n=40_000, negative_slope=0.5)
    assert abs(mc - 0.75) < 4 * se
    mc, se = st.mc_expected_derivative("relu", n=40_000, mean=1.0, std=2.0)
    assert abs(mc - 0.5 * math.erfc(-0.5 / math.sqrt(2))) < 4 * se  # P(z > 0) = Phi(1/2)


def test_monte_carlo_bad_inputs():
    with pytest.raises(ValueError, match="n must be"):
        st.mc_expected_derivative("relu", n=1)
    with pytest.raises(ValueError, match="activation"):
        st.mc_expected_derivative("softmax")
    with pytest.raises(ValueError, match="std"):
        st.mc_expected_derivative("relu", std=-1.0)
    with pytest.raises(TypeError, match="n must be an integer"):
        st.mc_expected_derivative("relu", n=10.5)


@pytest.mark.parametrize(
    "name,kw,std",
    [
        ("identity", {}, 1.0),
        ("relu", {}, 2.0),
        ("leaky_relu", {}, 1.0),
        ("leaky_relu", {"negative_slope": 0.3}, 1.0),
        ("prelu", {}, 1.0),
        ("prelu", {"init": 0.1}, 0.5),
        ("elu", {}, 1.0),
        ("elu", {"alpha": 2.0}, 2.0),
        ("selu", {}, 1.0),
        ("silu", {}, 1.0),
        ("silu", {}, 3.0),
        ("gelu", {}, 0.5),
    ],
)
def test_closed_forms_match_quadrature(name, kw, std):
    closed = st.closed_form_expected_derivative(name, std=std, **kw)
    quad = st.gaussian_expectation(lambda z: act.derivative(name, z, **kw), std=std)
    assert closed == pytest.approx(quad, abs=1e-10)


def test_closed_form_values_and_none():
    assert st.closed_form_expected_derivative("relu") == 0.5
    assert st.closed_form_expected_derivative("swish") == 0.5
    assert st.closed_form_expected_derivative("elu") == pytest.approx(
        0.5 + math.exp(0.5) * 0.5 * math.erfc(1 / math.sqrt(2))
    )
    for name in ("sigmoid", "tanh", "softsign"):
        assert st.closed_form_expected_derivative(name) is None
    assert st.closed_form_expected_derivative("gelu", approximate="tanh") is None
    with pytest.raises(ValueError, match="activation"):
        st.closed_form_expected_derivative("sine")
    with pytest.raises(ValueError, match="std"):
        st.closed_form_expected_derivative("relu", std=0)


def test_saturation_threshold():
    for name, expected in [("sigmoid", 3.6369), ("tanh", 1.8184), ("softsign", 2.1623)]:
        t = st.saturation_threshold(name)
        assert t == pytest.approx(expected, abs=1e-3)
        d = act.derivative(name, torch.tensor([t], dtype=torch.float64))
        assert float(d) == pytest.approx(0.1 * act.info(name).max_derivative, rel=1e-9)
    assert st.saturation_threshold("tanh", fraction=0.5) < st.saturation_threshold("tanh")
    assert st.saturation_threshold("relu") is None
    assert st.saturation_threshold("gelu") is None
    with pytest.raises(ValueError, match="fraction"):
        st.saturation_threshold("tanh", fraction=1.5)
    with pytest.raises(ValueError, match="fraction"):
        st.saturation_threshold("tanh", fraction=0)


def test_activation_table_and_format():
    rows = st.activation_table(("sigmoid", "relu", "prelu"), n=20_000)
    assert [r["name"] for r in rows] == ["sigmoid", "relu", "prelu"]
    sig, relu, prelu = rows
    assert sig["mean_output"] == pytest.approx(0.5, abs=1e-12)
    assert relu["mean_output"] == pytest.approx(1 / math.sqrt(2 * math.pi), abs=1e-12)
    assert sig["closed_form"] is None and relu["closed_form"] == 0.5
    assert prelu["quadrature"] == pytest.approx(0.625, abs=1e-9)
    assert sig["saturates_beyond"] == pytest.approx(3.637, abs=1e-3)
    assert relu["second_moment"] == pytest.approx(0.5, abs=1e-9)
    text = st.format_table(rows, ("name", "closed_form", "quadrature"))
    lines = text.splitlines()
    assert lines[0] == "| name | closed_form | quadrature |"
    assert len(lines) == 5 and "| sigmoid | - |" in lines[2]
    with pytest.raises(TypeError, match="rows"):
        st.format_table([])
    with pytest.raises(ValueError, match="columns"):
        st.format_table(rows, ("name", "nope"))


# -- non-zero mean ---------------------------------------------------------------------------------
def test_centered_sigmoid_is_half_tanh():
    z = torch.linspace(-6, 6, 101)
    assert torch.allclose(st.CenteredSigmoid()(z), 0.5 * torch.tanh(z / 2), atol=1e-6)


def test_center_sigmoids_keeps_the_function():
    torch.manual_seed(0)
    net = vg.mlp(5, 3, depth=3, width=7, activation="sigmoid", init="xavier_normal")
    with torch.no_grad():
        for b in net.blocks:
            b.linear.bias.normal_()
    X = torch.randn(20, 5)
    centred = st.center_sigmoids(net)
    assert torch.allclose(net(X), centred(X), atol=1e-5)
    assert all(isinstance(b.act, st.CenteredSigmoid) for b in centred.blocks)
    assert all(isinstance(b.act, nn.Sigmoid) for b in net.blocks)  # original untouched
    assert not torch.equal(net.output_layer.bias, centred.output_layer.bias)


def test_center_sigmoids_bad_inputs():
    with pytest.raises(ValueError, match="nn.Sigmoid"):
        st.center_sigmoids(vg.mlp(3, 2, depth=2, width=4, activation="relu"))
    with pytest.raises(TypeError, match="vgcourse.mlp"):
        st.center_sigmoids(nn.Linear(3, 2))
    with pytest.raises(TypeError, match="nn.Module"):
        st.center_sigmoids("net")
    residual = vg.mlp(3, 2, depth=2, width=4, activation="sigmoid", residual=True)
    with pytest.raises(ValueError, match="plain MLP"):
        st.center_sigmoids(residual)


def test_same_sign_fraction():
    delta = torch.tensor([[1.0], [-2.0], [0.5]])
    h = torch.rand(1, 6) + 0.1
    assert st.same_sign_fraction(delta @ h) == 1.0
    mixed = torch.tensor([[1.0, -1.0], [2.0, 3.0], [0.0, -1.0], [0.0, 0.0]])
    assert st.same_sign_fraction(mixed) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="all zeros"):
        st.same_sign_fraction(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="2 dimensions"):
        st.same_sign_fraction(torch.ones(3))
    with pytest.raises(TypeError):
        st.same_sign_fraction([[1.0]])


# -- dead units ------------------------------------------------------------------------------------
def _tiny_relu(activation="relu"):
    net = vg.mlp(1, 2, depth=1, width=3, activation=activation, init="kaiming_normal")
    with torch.no_grad():
        net.blocks[0].linear.weight[:] = torch.tensor([[1.0], [-1.0], [1.0]])
        net.blocks[0].linear.bias[:] = torch.tensor([1.0, -1.0, 0.0])
    return net


def test_dead_units_hand_made():
    X = torch.linspace(-0.5, 0.5, 11).unsqueeze(1)
    result = lesson03_deep_nets.dead_units(_tiny_relu(), X)
    assert result.dead.tolist() == [1] and result.off.tolist() == [1]
    assert result.units.tolist() == [3]
    assert result.fraction.tolist() == pytest.approx([1 / 3])
    assert result.total_fraction == pytest.approx(1 / 3)
    for name in ("leaky_relu", "prelu", "elu"):
        other = lesson03_deep_nets.dead_units(_tiny_relu(name), X)
        assert other.dead.tolist() == [0] and other.off.tolist() == [1]


def test_dead_units_matches_probe_and_batches():
    torch.manual_seed(1)
    net = vg.mlp(64, 10, depth=3, width=32, activation="relu")
    with torch.no_grad():
        net.blocks[1].linear.bias[:4] = -1e3
    X, _ = vg.data.digits()
    X = X[:300]
    result = lesson03_deep_nets.dead_units(net, X)
    probe = vg.probe_model(net, X)
    assert result.dead.tolist() == [round(r.dead * 32) for r in probe.activations.values()]
    assert result.dead[1] >= 4
    assert lesson03_deep_nets.dead_units(net, X, batch_size=7).dead.tolist() == result.dead.tolist()
    net.train()
    lesson03_deep_nets.dead_units(net, X)
    assert net.training  # mode restored


def test_dead_units_bad_inputs():
    net = _tiny_relu()
    with pytest.raises(ValueError, match="batch of samples"):
        lesson03_deep_nets.dead_units(net, torch.ones(3))
    with pytest.raises(ValueError, match="non-finite"):
        lesson03_deep_nets.dead_units(net, torch.tensor([[float("nan")]]))
    with pytest.raises(ValueError, match="no activation modules"):
        lesson03_deep_nets.dead_units(nn.Linear(2, 2), torch.ones(4, 2))
    with pytest.raises(ValueError, match="batch_size"):
        lesson03_deep_nets.dead_units(net, torch.ones(4, 1), batch_size=0)


# -- recorder --------------------------------------------------------------------------------------
def test_activation_recorder_with_fit():
    X, y = vg.data.digits()
    torch.manual_seed(0)
    net = vg.mlp(64, 10, depth=3, width=16, activation="sigmoid", init="standard")
    rec = lesson03_deep_nets.ActivationRecorder(X[:50], every=5)
    rec.record(net)
    vg.fit(
        net,
        (X, y),
        steps=20,
        lr=0.1,
        optimizer="sgd",
        batch_size=10,
        callbacks=[rec],
        progress=False,
    )
    assert rec.steps.tolist() == [0, 5, 10, 15, 20]
    assert rec.mean.shape == rec.std.shape == rec.saturated.shape == (5, 3)
    assert len(rec.names) == 3
    with torch.no_grad():
        h = net.forward_hidden(X[:50])
    assert rec.mean[-1] == pytest.approx([float(t.mean()) for t in h], abs=1e-6)
    assert rec.std[-1] == pytest.approx([float(t.std()) for t in h], abs=1e-6)
    assert ((rec.mean > 0) & (rec.mean < 1)).all()


def test_activation_recorder_bad_inputs():
    with pytest.raises(ValueError, match="every"):
        lesson03_deep_nets.ActivationRecorder(torch.ones(4, 2), every=0)
    with pytest.raises(ValueError, match="at least 2 samples"):
        lesson03_deep_nets.ActivationRecorder(torch.ones(1, 2))
    with pytest.raises(TypeError):
        lesson03_deep_nets.ActivationRecorder([[1.0, 2.0]])
    rec = lesson03_deep_nets.ActivationRecorder(torch.ones(4, 2))
    with pytest.raises(ValueError, match="no activation modules"):
        rec.record(nn.Linear(2, 2))


# -- gradient flow and moments ---------------------------------------------------------------------
def test_suggested_init():
    assert st.suggested_init("sigmoid") == ("xavier_normal", {})
    assert st.suggested_init("selu") == ("lecun_normal", {})
    assert st.suggested_init("leaky_relu", negative_slope=0.2) == (
        "kaiming_normal",
        {"nonlinearity": "leaky_relu", "a": 0.2},
    )
    assert st.suggested_init("prelu")[1]["a"] == 0.25
    assert st.suggested_init("swish") == st.suggested_init("silu")
    with pytest.raises(ValueError, match="activation"):
        st.suggested_init("maxout")


def test_gradient_flow_sigmoid_vanishes_relu_does_not():
    X, y = vg.data.digits()
    X, y = X[:128], y[:128]
    sig = lesson03_deep_nets.gradient_flow("sigmoid", X, y, depth=12, width=32, seeds=(0, 1))
    relu = lesson03_deep_nets.gradient_flow("relu", X, y, depth=12, width=32, seeds=(0, 1))
    assert sig.shape == relu.shape == (2, 12)
    assert (sig[:, 0] / sig[:, -1] < 1e-4).all()
    assert (relu[:, 0] / relu[:, -1] > 0.05).all()
    same = lesson03_deep_nets.gradient_flow("sigmoid", X, y, depth=12, width=32, seeds=(0,))
    assert np.allclose(same[0], sig[0])
    custom = lesson03_deep_nets.gradient_flow("tanh", X, y, depth=4, width=8, init="normal")
    assert custom.shape == (1, 4)
    with pytest.raises(ValueError, match="seeds"):
        lesson03_deep_nets.gradient_flow("relu", X, y, depth=2, width=4, seeds=())
    with pytest.raises(ValueError, match="same number of rows"):
        lesson03_deep_nets.gradient_flow("relu", X, y[:10], depth=2, width=4)


def test_layer_moments():
    torch.manual_seed(0)
    net = vg.mlp(128, 1, depth=20, width=128, activation="selu", init="lecun_normal")
    means, variances = lesson03_deep_nets.layer_moments(net, torch.randn(256, 128))
    assert means.shape == variances.shape == (20,)
    assert abs(means[-1]) < 0.15 and 0.7 < variances[-1] < 1.3
    with pytest.raises(TypeError, match="vgcourse.mlp"):
        lesson03_deep_nets.layer_moments(nn.Linear(2, 2), torch.ones(2, 2))


# -- SELU ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("m,s,alpha", [(0.0, 1.0, 1.0), (0.4, 0.7, 1.6733), (-1.0, 2.0, 0.5)])
def test_elu_gaussian_moments_match_quadrature(m, s, alpha):
    first, second = lesson03_selu.elu_gaussian_moments(m, s, alpha)
    elu = torch.nn.functional.elu
    assert first == pytest.approx(
        st.gaussian_expectation(lambda z: elu(z, alpha=alpha), mean=m, std=s), abs=1e-10
    )
    assert second == pytest.approx(
        st.gaussian_expectation(lambda z: elu(z, alpha=alpha) ** 2, mean=m, std=s), abs=1e-10
    )
    with pytest.raises(ValueError, match="std"):
        lesson03_selu.elu_gaussian_moments(m, 0.0, alpha)


def test_selu_moment_map_fixed_point_and_general_case():
    m, v = lesson03_selu.selu_moment_map(0.0, 1.0)
    assert abs(m) < 1e-12 and v == pytest.approx(1.0, abs=1e-12)
    mu, nu, omega, tau = 0.3, 1.4, 0.5, 0.9
    m, v = lesson03_selu.selu_moment_map(mu, nu, omega=omega, tau=tau)
    selu = torch.nn.functional.selu
    sd = math.sqrt(nu * tau)
    e1 = st.gaussian_expectation(selu, mean=mu * omega, std=sd)
    e2 = st.gaussian_expectation(lambda z: selu(z) ** 2, mean=mu * omega, std=sd)
    assert m == pytest.approx(e1, abs=1e-10) and v == pytest.approx(e2 - e1**2, abs=1e-10)
    with pytest.raises(ValueError, match="nu"):
        lesson03_selu.selu_moment_map(0.0, -1.0)
    with pytest.raises(ValueError, match="tau"):
        lesson03_selu.selu_moment_map(0.0, 1.0, tau=0.0)
    with pytest.raises(TypeError, match="mu"):
        lesson03_selu.selu_moment_map(None, 1.0)


def test_iterate_and_jacobian():
    path = lesson03_selu.iterate_moment_map(0.5, 2.0, 60)
    assert path.shape == (61, 2)
    assert path[0].tolist() == [0.5, 2.0]
    assert np.allclose(path[-1], [0.0, 1.0], atol=1e-4)
    J = lesson03_selu.moment_map_jacobian()
    assert np.allclose(J, [[0.0, 0.088835], [0.0, 0.782648]], atol=1e-5)
    assert np.linalg.norm(J, 2) == pytest.approx(0.7877, abs=1e-4)
    with pytest.raises(ValueError, match="steps"):
        lesson03_selu.iterate_moment_map(0.0, 1.0, -1)
    with pytest.raises(ValueError, match="h must be"):
        lesson03_selu.moment_map_jacobian(h=0.0)


def test_selu_constants():
    for alpha, lam in (
        lesson03_selu.selu_constants_closed_form(),
        lesson03_selu.solve_selu_constants(),
    ):
        assert alpha == pytest.approx(act.SELU_ALPHA, abs=1e-10)
        assert lam == pytest.approx(act.SELU_LAMBDA, abs=1e-10)
    with pytest.raises(ValueError, match="target_mean"):
        lesson03_selu.solve_selu_constants(target_mean=0.1)
    with pytest.raises(ValueError, match="target_var"):
        lesson03_selu.solve_selu_constants(target_var=0.0)
    alpha, lam = lesson03_selu.solve_selu_constants(target_var=2.0)
    assert alpha == pytest.approx(act.SELU_ALPHA, abs=1e-10)
    assert lam == pytest.approx(act.SELU_LAMBDA * math.sqrt(2), abs=1e-10)


# -- explorer --------------------------------------------------------------------------------------
def test_activation_explorer_redraws_and_checks_arguments():
    X, y = vg.data.digits()
    explorer = lesson03_explorer.activation_explorer(
        X[:64], y[:64], activation="sigmoid", depth=6, width=8
    )
    first = explorer.readout
    assert "sigmoid" in first and "gradient norm" in first and explorer.error is None
    explorer.set(activation="leaky_relu", slope=0.3)
    assert "negative_slope=0.3" in explorer.readout and explorer.readout != first
    explorer.set(activation="elu", alpha=2.0, depth=3)
    assert "alpha=2" in explorer.readout and "depth 3" in explorer.readout
    assert explorer.redraws == 3
    with pytest.raises(ValueError, match="activation"):
        lesson03_explorer.activation_explorer(X[:64], y[:64], activation="swish")
    with pytest.raises(ValueError, match="max_depth"):
        lesson03_explorer.activation_explorer(X[:64], y[:64], depth=10, max_depth=5)


def _explorer_net(X, y, activation, depth, width, kw, seed=0):
    """The network the explorer describes, built here from the public API."""
    scheme, init_kw = st.suggested_init(activation, **kw)
    torch.manual_seed(seed)
    return vg.mlp(
        X.shape[1],
        int(y.max()) + 1,
        depth=depth,
        width=width,
        activation=activation,
        init=scheme,
        activation_kw=kw,
        **init_kw,
    )


def test_activation_explorer_every_control_redraws_with_the_right_numbers():
    X, y = vg.data.digits()
    X, y = X[:96], y[:96]
    explorer = lesson03_explorer.activation_explorer(
        X, y, activation="sigmoid", depth=5, width=12, device="cpu"
    )
    # each change is one control; slope and alpha are moved where they count
    for change in (
        {"depth": 9},
        {"activation": "leaky_relu"},
        {"slope": 0.4},
        {"activation": "elu"},
        {"alpha": 2.5},
        {"activation": "relu"},
        {"activation": "tanh"},
    ):
        png, readout = explorer.png, explorer.readout
        explorer.set(**change)
        assert explorer.error is None and explorer.png != png and explorer.readout != readout
        s = explorer.state
        name, depth, kw = s["activation"], s["depth"], s["kw"]
        assert (name, depth) == (explorer.values()["activation"], explorer.values()["depth"])
        expected_kw = {"leaky_relu": {"negative_slope": explorer.values()["slope"]}}.get(name, {})
        if name == "elu":
            expected_kw = {"alpha": explorer.values()["alpha"]}
        assert kw == pytest.approx(expected_kw)
        # gradient norms: the lesson's own gradient_flow on the same seed and init
        norms = lesson03_deep_nets.gradient_flow(
            name, X, y, depth=depth, width=12, seeds=(0,), activation_kw=kw
        )
        assert np.allclose(s["norms"], norms[0], rtol=1e-5), change
        net = _explorer_net(X, y, name, depth, 12, kw)
        assert s["dead"] == pytest.approx(lesson03_deep_nets.dead_units(net, X).fraction.max())
        assert s["expected_derivative"] == pytest.approx(act.expected_derivative(name, **kw))
        assert f"depth {depth}" in explorer.readout and f"{s['expected_derivative']:.3f}" in (
            explorer.readout
        )
        assert len(explorer.axes[2].lines[0].get_xdata()) == depth
    # the slope does nothing for tanh: same numbers, same picture
    png = explorer.png
    explorer.set(slope=0.9)
    assert explorer.png == png and explorer.state["kw"] == {}


def test_activation_explorer_redraws_the_same_picture_for_the_same_setting():
    X, y = vg.data.digits()
    explorer = lesson03_explorer.activation_explorer(
        X[:64], y[:64], activation="sigmoid", depth=4, width=8
    )
    first = explorer.png
    explorer.set(activation="relu", depth=7)
    explorer.set(activation="sigmoid", depth=4)  # axes kept, artists replaced: no leftovers
    assert explorer.png == first
    assert len(explorer.axes[2].lines) == 1 and len(explorer.axes[0].get_legend().texts) == 3


def test_activation_explorer_runs_on_every_device(device):
    X, y = vg.data.digits()
    X, y = X[:96], y[:96]
    explorer = lesson03_explorer.activation_explorer(
        X, y, activation="relu", depth=6, width=12, device=device
    )
    norms = lesson03_deep_nets.gradient_flow("relu", X, y, depth=6, width=12, seeds=(0,))
    assert explorer.error is None and np.allclose(explorer.state["norms"], norms[0], rtol=1e-3)
