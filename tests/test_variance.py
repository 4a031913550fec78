"""Unit tests of vgcourse.lessons.lesson04_initialization: predictions, measurements, spectra, the batched trainer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import vgcourse as vg
from vgcourse.activations import SELU_ALPHA, SELU_LAMBDA
from vgcourse.lessons import lesson04_explorer as init_explorer
from vgcourse.lessons import lesson04_initialization as vp
from vgcourse.lessons import lesson04_measurements as measurements


# -- weight_variance -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "scheme",
    [s for s in vg.INITS if s != "zeros"],
)
def test_weight_variance_matches_the_initialized_weights(scheme):
    fan_in, fan_out = 200, 500
    torch.manual_seed(0)
    w = vg.inits.init_weight_(torch.empty(fan_out, fan_in), scheme)
    measured = float(w.double().pow(2).mean())
    assert measured == pytest.approx(vp.weight_variance(scheme, fan_in, fan_out), rel=0.03)


def test_weight_variance_formulas_and_keywords():
    assert vp.weight_variance("zeros", 10, 20) == 0.0
    assert vp.weight_variance("normal", 10, 20, std=0.5) == pytest.approx(0.25)
    assert vp.weight_variance("standard", 12, 99) == pytest.approx(1 / 36)
    assert vp.weight_variance("xavier_normal", 10, 30, gain=2.0) == pytest.approx(4 * 2 / 40)
    assert vp.weight_variance("kaiming_normal", 50, 1) == pytest.approx(2 / 50)
    tanh_gain = nn.init.calculate_gain("tanh")
    assert vp.weight_variance("kaiming_uniform", 50, 1, nonlinearity="tanh") == pytest.approx(
        tanh_gain**2 / 50
    )
    assert vp.weight_variance("lecun_normal", 64, 8) == pytest.approx(1 / 64)
    assert vp.weight_variance("orthogonal", 64, 256, gain=3.0) == pytest.approx(9 / 256)
    assert vp.weight_variance("orthogonal", 256, 64) == pytest.approx(1 / 256)


@pytest.mark.parametrize(
    ("args", "kw", "error"),
    [
        (("he", 10, 10), {}, ValueError),
        (("normal", 0, 10), {}, ValueError),
        (("normal", 10, 2.5), {}, TypeError),
        (("xavier_uniform", 10, 10), {"gain": -1.0}, ValueError),
        (("normal", 10, 10), {"std": 0.0}, ValueError),
    ],
)
def test_weight_variance_rejects_bad_input(args, kw, error):
    with pytest.raises(error):
        vp.weight_variance(*args, **kw)


# -- activation moments ---------------------------------------------------------------------------
@pytest.mark.parametrize("q", [1e-3, 0.3, 1.0, 7.0])
def test_relu_keeps_exactly_half_and_identity_all(q):
    assert vp.second_moment("relu", q) == pytest.approx(q / 2, rel=1e-6)
    assert vp.second_moment("identity", q) == pytest.approx(q, rel=1e-6)
    assert vp.derivative_second_moment("relu", q) == pytest.approx(0.5, rel=1e-6)
    assert vp.forward_factor("relu", q) == pytest.approx(0.5, rel=1e-6)


def test_tanh_is_linear_for_small_q_and_bounded():
    assert vp.second_moment("tanh", 1e-4) == pytest.approx(1e-4, rel=1e-3)
    assert vp.second_moment("tanh", 100.0) < 1.0
    assert vp.derivative_second_moment("tanh", 0.0) == pytest.approx(1.0)
    assert vp.derivative_second_moment("tanh", 4.0) < 0.5


def test_second_moment_matches_monte_carlo():
    z = torch.randn(400_000, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for act in ("tanh", "sigmoid", "selu", "gelu", "elu"):
        for q in (0.2, 2.0):
            mc = float(vg.activations.function(act, math.sqrt(q) * z).pow(2).mean())
            assert vp.second_moment(act, q) == pytest.approx(mc, rel=0.01), (act, q)


def test_selu_moments_at_its_fixed_point_and_near_zero():
    assert vp.second_moment("selu", 1.0) == pytest.approx(1.0, abs=1e-6)
    small = SELU_LAMBDA**2 * (1 + SELU_ALPHA**2) / 2
    assert vp.derivative_second_moment("selu", 1e-8) == pytest.approx(small, rel=1e-3)


def test_q_zero_uses_the_value_at_zero():
    assert vp.second_moment("sigmoid", 0.0) == pytest.approx(0.25)
    assert vp.second_moment("tanh", 0.0) == 0.0


@pytest.mark.parametrize(
    ("fn", "args", "error"),
    [
        (vp.second_moment, ("tanh", -1.0), ValueError),
        (vp.second_moment, ("nope", 1.0), ValueError),
        (vp.derivative_second_moment, ("relu", float("nan")), ValueError),
        (vp.forward_factor, ("relu", 0.0), ValueError),
        (vp.second_moment, (3, 1.0), TypeError),
    ],
)
def test_moments_reject_bad_input(fn, args, error):
    with pytest.raises(error):
        fn(*args)


# -- fixed points --------------------------------------------------------------------------------
def test_fixed_points():
    q, chi = vp.fixed_point("relu", 2.0, q0=3.0)
    assert q == pytest.approx(3.0) and chi == pytest.approx(1.0, rel=1e-6)
    q, chi = vp.fixed_point("selu", 1.0)
    assert q == pytest.approx(1.0, abs=1e-6)
    q, chi = vp.fixed_point("tanh", 25 / 9)  # PyTorch's gain 5/3
    assert q == pytest.approx(1.178, abs=2e-3) and chi == pytest.approx(1.21, abs=5e-3)
    q, chi = vp.fixed_point("tanh", 0.5)  # ordered phase: q* = 0, chi = sigma_w^2
    assert q < 1e-6 and chi == pytest.approx(0.5, rel=1e-3)


def test_fixed_point_rejects_bad_input_and_divergence():
    with pytest.raises(ValueError):
        vp.fixed_point("tanh", 0.0)
    with pytest.raises(ValueError):
        vp.fixed_point("tanh", 1.0, iterations=0)
    with pytest.raises(ValueError, match="diverges"):
        vp.fixed_point("identity", 4.0)


# -- predictions -----------------------------------------------------------------------------------
def test_predict_relu_he_is_flat_and_lecun_halves():
    he = vp.predict_propagation(12, "kaiming_normal", "relu", width=64, in_features=64)
    assert np.allclose(he.act, he.act[0]) and np.allclose(he.grad_preact, he.grad_preact[0])
    half = vp.predict_propagation(12, "lecun_normal", "relu", width=64, in_features=64)
    assert np.allclose(half.act[1:] / half.act[:-1], 0.5)
    assert np.allclose(half.grad_preact[1:] / half.grad_preact[:-1], 2.0)
    assert np.allclose(half.preact, 2 * half.act)
    assert np.isnan(half.grad_weight).all() and half.depth == 12


def test_predict_first_layer_uses_the_input_second_moment_and_multiplier():
    p = vp.predict_propagation(
        3, "lecun_normal", "identity", width=32, in_features=8, input_second_moment=0.25
    )
    assert p.preact[0] == pytest.approx(0.25)
    scaled = vp.predict_propagation(
        3,
        "lecun_normal",
        "identity",
        width=32,
        in_features=8,
        input_second_moment=0.25,
        multiplier=2.0,
    )
    assert np.allclose(scaled.act / p.act, 4.0 ** np.arange(1, 4))
    # backward: output layer 32 -> 10 with Var 1/32 and unit output gradients
    assert p.grad_act[-1] == pytest.approx(10 / 32)


def test_predicted_second_moments_shortcut():
    values = vp.predicted_second_moments(5, "lecun_normal", "relu", width=100)
    assert np.allclose(values, 0.5 ** np.arange(1, 6))


@pytest.mark.parametrize(
    ("kw", "error"),
    [
        ({"depth": 0}, ValueError),
        ({"scheme": "bogus"}, ValueError),
        ({"width": 0}, ValueError),
        ({"activation": "swishy"}, ValueError),
        ({"multiplier": -1.0}, ValueError),
    ],
)
def test_predict_rejects_bad_input(kw, error):
    args = {"depth": 3, "scheme": "kaiming_normal", "activation": "relu", "width": 8, **kw}
    with pytest.raises(error):
        vp.predict_propagation(
            args.pop("depth"), args.pop("scheme"), args.pop("activation"), **args
        )


# -- measurement -------------------------------------------------------------------------------
def _net(depth=6, width=256, activation="relu", init="kaiming_normal", in_features=32, **kw):
    torch.manual_seed(0)
    return vg.mlp(in_features, 10, depth=depth, width=width, activation=activation, init=init, **kw)


def test_measure_matches_prediction_for_wide_nets():
    X = torch.randn(1024, 32, generator=torch.Generator().manual_seed(1))
    for activation, init in (("relu", "kaiming_normal"), ("tanh", "xavier_normal")):
        net = _net(activation=activation, init=init)
        m = measurements.measure_propagation(net, X)
        p = vp.predict_propagation(
            6, init, activation, width=256, in_features=32, input_second_moment=1.0
        )
        for field in ("preact", "act", "grad_preact", "grad_act"):
            ratio = getattr(m, field) / getattr(p, field)
            assert np.all((ratio > 0.67) & (ratio < 1.5)), (activation, field, ratio)
        assert all(param.grad is None for param in net.parameters())


def test_measure_with_a_loss_and_kept_values():
    X, y = vg.data.moons(128, 0.1, seed=0)
    net = _net(depth=3, width=16, in_features=2)
    m = measurements.measure_propagation(net, X, y, keep_values=True, max_values=100)
    assert len(m.act_values) == 3 and len(m.grad_values) == 3
    assert all(0 < len(v) <= 100 for v in m.act_values + m.grad_values)
    assert np.all(np.isfinite(m.grad_weight)) and np.all(m.grad_weight > 0)
    assert (m.act_values[0] >= 0).all()  # ReLU outputs
    # the backward statistics do depend on the loss: a random output gradient differs
    assert not np.allclose(m.grad_preact, measurements.measure_propagation(net, X).grad_preact)


def test_measure_is_repeatable_with_a_seed():
    X = torch.randn(64, 32)
    net = _net(depth=2, width=16)
    a, b = (
        measurements.measure_propagation(net, X, seed=3),
        measurements.measure_propagation(net, X, seed=3),
    )
    assert np.array_equal(a.grad_preact, b.grad_preact)


def test_measure_rejects_bad_input():
    net = _net(depth=2, width=8)
    with pytest.raises(TypeError):
        measurements.measure_propagation(nn.Sequential(nn.Linear(32, 2)), torch.randn(4, 32))
    with pytest.raises(ValueError):
        measurements.measure_propagation(net, torch.full((4, 32), float("nan")))
    with pytest.raises(ValueError):
        measurements.measure_propagation(net, torch.randn(4, 32), torch.zeros(5, dtype=torch.long))
    with pytest.raises(TypeError):
        measurements.measure_propagation(net, [[1.0] * 32])


# -- symmetry, rescaling ------------------------------------------------------------------------
def test_max_unit_difference():
    assert measurements.max_unit_difference(torch.ones(5, 3) * 0.7) == 0.0
    w = torch.zeros(4, 3)
    w[2, 1] = -0.5
    assert measurements.max_unit_difference(w) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        measurements.max_unit_difference(torch.zeros(3))
    with pytest.raises(TypeError):
        measurements.max_unit_difference([[0.0]])


def test_rescale_weights():
    net = _net(depth=2, width=8)
    before = net.hidden_layers[1].weight.detach().clone()
    assert measurements.rescale_weights_(net, 3.0) is net
    assert torch.allclose(net.hidden_layers[1].weight, 3 * before)
    with pytest.raises(ValueError):
        measurements.rescale_weights_(net, -1.0)
    with pytest.raises(TypeError):
        measurements.rescale_weights_("net", 1.0)


# -- spectra and Jacobians -------------------------------------------------------------------------
def test_product_singular_values():
    orth = measurements.product_singular_values(20, 32, "orthogonal", seed=1)
    assert torch.allclose(orth, torch.ones(32, dtype=torch.float64), atol=1e-10)
    assert torch.allclose(
        measurements.product_singular_values(3, 16, "orthogonal", gain=2.0),
        torch.full((16,), 8.0, dtype=torch.float64),
    )
    one = measurements.product_singular_values(1, 400, "gaussian", seed=0)
    assert float(one.max()) == pytest.approx(2.0, rel=0.1)  # quarter-circle edge
    assert float(one.pow(2).mean()) == pytest.approx(1.0, rel=0.05)
    deep = measurements.product_singular_values(16, 64, "gaussian", seed=0)
    assert float(deep.median()) < 0.1 < float(deep.max())
    assert torch.equal(deep, measurements.product_singular_values(16, 64, "gaussian", seed=0))
    assert (deep[:-1] >= deep[1:]).all()


@pytest.mark.parametrize(
    ("args", "kw", "error"),
    [
        ((0, 8), {}, ValueError),
        ((2, 8, "uniform"), {}, ValueError),
        ((2, 8), {"gain": 0.0}, ValueError),
        ((2, 8), {"seed": -1}, ValueError),
    ],
)
def test_product_singular_values_rejects_bad_input(args, kw, error):
    with pytest.raises(error):
        measurements.product_singular_values(*args, **kw)


def test_mean_jacobian_singular_values():
    net = _net(depth=3, width=16, activation="identity", init="orthogonal", in_features=16)
    assert np.allclose(measurements.mean_jacobian_singular_values(net, torch.randn(3, 16)), 1.0)
    with pytest.raises(ValueError):
        measurements.mean_jacobian_singular_values(net, torch.randn(0, 16))


def test_propagation_explorer_redraws_and_reports():
    X = torch.rand(64, 10, generator=torch.Generator().manual_seed(0))
    explorer = init_explorer.propagation_explorer(
        X, depth=6, width=16, activation="relu", scheme="lecun_normal"
    )
    first = explorer.readout
    assert "layer 1" in first and explorer.error is None
    m = explorer.state["measured"]
    assert m.depth == 6 and m.act[-1] < m.act[0]
    explorer.set(scheme="kaiming_normal", gain=1.0)
    assert explorer.readout != first and explorer.redraws == 2
    with pytest.raises(ValueError):
        init_explorer.propagation_explorer(X, scheme="zeros")
    with pytest.raises(ValueError):
        init_explorer.propagation_explorer(X, activation="gelu")


def test_propagation_explorer_every_control_redraws_with_the_right_numbers():
    X = torch.rand(64, 10, generator=torch.Generator().manual_seed(0))
    m0 = float(X.double().pow(2).mean())
    explorer = init_explorer.propagation_explorer(
        X, depth=6, width=16, activation="tanh", scheme="xavier_normal", device="cpu"
    )
    for change in (
        {"scheme": "orthogonal"},
        {"activation": "relu"},
        {"depth": 9},
        {"gain": 1.5},
        {"scheme": "kaiming_normal"},
    ):
        png, readout = explorer.png, explorer.readout
        explorer.set(**change)
        assert explorer.error is None and explorer.png != png and explorer.readout != readout
        s = explorer.state
        assert {k: s[k] for k in change} == change
        scheme, activation, depth, gain = s["scheme"], s["activation"], s["depth"], s["gain"]
        # the forward pass of the same network, measured here without the explorer's hooks
        torch.manual_seed(0)
        net = vg.mlp(10, 10, depth=depth, width=16, activation=activation, init=scheme)
        measurements.rescale_weights_(net, gain)
        with torch.no_grad():
            second = np.array([float(h.pow(2).mean()) for h in net.forward_hidden(X)])
        assert np.allclose(s["measured"].act, second, rtol=1e-5), change
        predicted = vp.predict_propagation(
            depth,
            scheme,
            activation,
            width=16,
            in_features=10,
            out_features=10,
            input_second_moment=m0,
            multiplier=gain,
        )
        for field in ("preact", "act", "grad_preact", "grad_act"):
            assert np.allclose(getattr(s["predicted"], field), getattr(predicted, field)), field
        assert f"layer {depth} {second[-1]:.3g}" in explorer.readout
        measured_curve = explorer.axes[2].lines[0]
        assert np.allclose(measured_curve.get_ydata(), s["measured"].act)


def test_propagation_explorer_redraws_the_same_picture_for_the_same_setting():
    X = torch.rand(64, 10, generator=torch.Generator().manual_seed(0))
    explorer = init_explorer.propagation_explorer(X, depth=6, width=16, activation="tanh")
    first = explorer.png
    explorer.set(activation="relu", gain=3.0, depth=12)  # magnitudes span decades: log panels
    assert "log_{10}" in explorer.axes[0].get_xlabel()
    explorer.set(activation="tanh", gain=1.0, depth=6)
    assert explorer.png == first and len(explorer.axes[2].lines) == 4


def test_propagation_explorer_runs_on_every_device(device):
    X = torch.rand(64, 10, generator=torch.Generator().manual_seed(0))
    explorer = init_explorer.propagation_explorer(
        X, depth=5, width=16, activation="relu", device=device
    )
    torch.manual_seed(0)
    net = vg.mlp(10, 10, depth=5, width=16, activation="relu", init="xavier_normal")
    with torch.no_grad():
        second = np.array([float(h.pow(2).mean()) for h in net.forward_hidden(X)])
    assert explorer.error is None
    assert np.allclose(explorer.state["measured"].act, second, rtol=1e-3)


# -- lesson04_plots: every figure draws from small inputs, with the course's conventions ----------
def _axes():
    import matplotlib.pyplot as plt

    return plt.gcf().axes


def _propagation(depth=4, seed=0, activation="relu", init="kaiming_normal"):
    net = _net(depth=depth, width=16, activation=activation, init=init, in_features=8)
    X = torch.randn(32, 8, generator=torch.Generator().manual_seed(seed))
    return measurements.measure_propagation(net, X, seed=seed, keep_values=True)


def test_plot_propagation_one_colour_per_net_and_predictions_dashed():
    from vgcourse.lessons import lesson04_plots as figures

    measured = {"a": _propagation(), "b": [_propagation(seed=1), _propagation(seed=2)]}
    predicted = {"a": vp.predict_propagation(4, "kaiming_normal", "relu", width=16, in_features=8)}
    figures.plot_propagation(measured, predicted, dots=True)
    forward, backward = _axes()
    for ax in (forward, backward):
        assert ax.get_yscale() == "log" and ax.get_xlabel().startswith("layer")
        assert "dashed: derived" in ax.get_title()
        colors = [line.get_color() for line in ax.lines]
        assert (
            colors[0] == colors[1] and colors[2] == colors[3] != colors[0]
        )  # a, its prediction; b x2
        assert ax.lines[1].get_linestyle() == "--"
    assert np.allclose(forward.lines[0].get_ydata(), measured["a"].act)
    assert np.allclose(backward.lines[1].get_ydata(), predicted["a"].grad_preact)
    assert [t.get_text() for t in forward.get_legend().get_texts()] == ["a", "b"]


def test_lesson04_figures_draw_from_small_inputs():
    import matplotlib.pyplot as plt

    from vgcourse.lessons import lesson04_plots as figures

    history = vg.fit(
        _net(depth=1, width=4, in_features=8),
        (torch.randn(40, 8), torch.randint(0, 10, (40,))),
        steps=12,
        lr=0.01,
        record=False,
    )
    nets = {k: _net(depth=1, width=4, in_features=8) for k in ("zeros", "constant", "random")}
    figures.plot_symmetry({k: (history, 0.1) for k in nets}, nets)
    loss, const, rand = _axes()[:3]
    assert math.log(10) in [line.get_ydata()[0] for line in loss.lines]
    assert const.images[0].norm.vmin == rand.images[0].norm.vmin == -rand.images[0].norm.vmax
    figures.plot_linear_check({"x": (1.0, 1.0, 0.5), "y": (2.0, 2.1, 0.5)})
    assert len(plt.gca().patches) == 6
    qs = np.logspace(-2, 1, 4)
    figures.plot_kept_moment(qs, {"relu": np.full(4, 0.5)}, {"relu": np.full(4, 0.49)})
    assert plt.gca().get_xscale() == "log"
    figures.plot_backward_check(torch.randn(100), torch.randn(100), 1.0)
    figures.plot_default_linear(torch.rand(1000) * 0.1 - 0.05, 0.05)
    figures.plot_scheme_scales(
        {"he": (2 / 128, 2 / 128, 0.0), "lecun": (1 / 128, 1 / 128, 0.0)}, 128, 64
    )
    assert plt.gca().get_yscale() == "log"
    pred = vp.predict_propagation(4, "kaiming_normal", "relu", width=16, in_features=8)
    s2 = np.array([0.5, 1.0, 2.0])
    figures.plot_gain_study({"g": (_propagation(), pred)}, s2, [1e-3, 0.5, 10.0], [1e-3, 0.4, 9.0])
    sweep = _axes()[-1]
    assert sweep.get_xscale() == sweep.get_yscale() == "log" and "4 layers" in sweep.get_title()
    assert [t.get_text() for t in sweep.get_xticklabels()] == ["0.5", "1", "2"]
    m = _propagation(activation="tanh", init="standard")
    figures.plot_glorot({"standard": (m, np.full(4, 0.5)), "normalized": (m, np.full(4, 0.8))})
    assert len(_axes()) == 4 and _axes()[3].get_ylim() == (0, 1.1)
    runs = {
        (o, k, s): (np.full(30, 2.3), 2.3, 0.1)
        for o in ("momentum", "adam")
        for k in "ab"
        for s in (0, 1)
    }
    figures.plot_he_training(runs)
    left, right = _axes()[-2:]
    assert left.get_title().endswith("SGD + momentum") and right.get_title().endswith("Adam")
    assert left.lines[0].get_color() == right.lines[0].get_color() and len(left.lines) == 5
    spectra = {
        (kind, d): np.logspace(0, -d, 8) for kind in ("gaussian", "orthogonal") for d in (1, 4)
    }
    figures.plot_saxe_spectra(spectra, (1, 4), 8)
    assert plt.gca().get_yscale() == "log" and plt.gca().get_ylim() == (1e-20, 1e2)
