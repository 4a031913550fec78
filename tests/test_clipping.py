import math
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import vgcourse as vg
from vgcourse.history import History
from vgcourse.lessons import lesson08_clipping as clipping
from vgcourse.lessons import (
    lesson08_experiment,
    lesson08_explorer,
    lesson08_figures,
    lesson08_plots,
)


def autograd_one_unit(w, b, x0=0.5, target=0.7, T=50):
    w = torch.tensor(float(w), dtype=torch.float64, requires_grad=True)
    b = torch.tensor(float(b), dtype=torch.float64, requires_grad=True)
    x = torch.tensor(float(x0), dtype=torch.float64)
    for _ in range(T):
        x = w * torch.sigmoid(x) + b
    loss = (x - target) ** 2
    loss.backward()
    return loss.item(), w.grad.item(), b.grad.item()


# -- the one-unit RNN -------------------------------------------------------------------------


def test_one_unit_rnn_matches_a_plain_loop():
    w, b, x0, T = 2.5, -0.3, 0.1, 7
    x = x0
    for _ in range(T):
        x = w / (1 + math.exp(-x)) + b
    assert clipping.one_unit_rnn(w, b, x0=x0, T=T) == pytest.approx(x, rel=1e-12)
    assert clipping.one_unit_loss(w, b, x0=x0, T=T, target=0.2) == pytest.approx((x - 0.2) ** 2)


@pytest.mark.parametrize(
    "w, b", [(1.0, 0.0), (-3.0, 2.0), (6.0, -2.5), (6.0, -3.2347559872111273 + 1e-6), (9.0, -4.0)]
)
def test_one_unit_grad_equals_autograd(w, b):
    ours = np.array(clipping.one_unit_grad(w, b))
    assert np.allclose(ours, autograd_one_unit(w, b), rtol=1e-7, atol=1e-12)


def test_one_unit_grad_equals_central_differences():
    w, b, h = 3.0, -1.0, 1e-6
    _, gw, gb = clipping.one_unit_grad(w, b, x0=0.3, target=1.1, T=20)
    kw = dict(x0=0.3, target=1.1, T=20)
    fd_w = (clipping.one_unit_loss(w + h, b, **kw) - clipping.one_unit_loss(w - h, b, **kw)) / (
        2 * h
    )
    fd_b = (clipping.one_unit_loss(w, b + h, **kw) - clipping.one_unit_loss(w, b - h, **kw)) / (
        2 * h
    )
    assert gw == pytest.approx(fd_w, rel=1e-6) and gb == pytest.approx(fd_b, rel=1e-6)


def test_one_unit_functions_are_vectorised_and_broadcast():
    w = np.linspace(-2, 10, 7)
    b = np.linspace(-6, 2, 5)[:, None]
    loss, gw, gb = clipping.one_unit_grad(w, b)
    assert loss.shape == gw.shape == gb.shape == (5, 7)
    assert np.allclose(loss, clipping.one_unit_loss(w, b))
    assert np.isclose(gb[3, 4], clipping.one_unit_grad(w[4], b[3, 0])[2])
    as_tensor = clipping.one_unit_rnn(torch.tensor([1.0, 6.0]), torch.tensor([0.0, -3.0]))
    assert as_tensor.shape == (2,)


def test_no_explosion_for_small_weights():
    # |w| < 4: every chain-rule factor w sigma' is below |w|/4, so |dx_T/db| <= 1 / (1 - |w|/4)
    w, b = np.meshgrid(np.linspace(-3.5, 3.5, 41), np.linspace(-5, 5, 41))
    err = clipping.one_unit_rnn(w, b) - 0.7
    _, gw, gb = clipping.one_unit_grad(w, b)
    bound = 2 * np.abs(err) / (1 - np.abs(w) / 4)
    assert np.all(np.abs(gb) <= bound * (1 + 1e-9)) and np.all(np.abs(gw) <= bound * (1 + 1e-9))


def test_cliff_bias_makes_x0_a_fixed_point_and_the_gradient_explode():
    w, x0, target, T = 6.0, 0.5, 0.7, 50
    b_star = float(clipping.cliff_bias(w, x0=x0))
    assert clipping.one_unit_rnn(w, b_star, x0=x0, T=1) == pytest.approx(x0, abs=1e-12)
    s = 1 / (1 + math.exp(-x0))
    lam = w * s * (1 - s)
    closed_form = 2 * (x0 - target) * (lam**T - 1) / (lam - 1)
    assert clipping.one_unit_grad(w, b_star)[2] == pytest.approx(closed_form, rel=1e-5)
    assert abs(closed_form) > 1e7
    # far from the wall the gradient is ordinary
    assert abs(clipping.one_unit_grad(w, b_star + 0.5)[2]) < 100
    assert clipping.critical_weight(0.5) == pytest.approx(1 / (s * (1 - s)))
    assert clipping.critical_weight(0.0) == pytest.approx(4.0)


def test_one_unit_bad_inputs():
    with pytest.raises(ValueError, match="T must be an integer >= 1"):
        clipping.one_unit_rnn(1.0, 0.0, T=0)
    with pytest.raises(TypeError, match="T must be an integer"):
        clipping.one_unit_grad(1.0, 0.0, T=2.5)
    with pytest.raises(ValueError, match="w contains non-finite"):
        clipping.one_unit_grad(np.array([1.0, np.nan]), 0.0)
    with pytest.raises(ValueError, match="broadcastable"):
        clipping.one_unit_grad(np.ones(3), np.ones(4))
    with pytest.raises(TypeError, match="b must be a number"):
        clipping.one_unit_loss(1.0, "zero")
    with pytest.raises(ValueError, match="target must be finite"):
        clipping.one_unit_loss(1.0, 0.0, target=float("inf"))
    with pytest.raises(TypeError, match="x0 must be a real number"):
        clipping.cliff_bias(5.0, x0=None)


# -- gradient-descent trajectories ------------------------------------------------------------


def test_plain_gradient_descent_follows_the_update_rule():
    tr = clipping.gd_trajectories([1.0, 2.0], [0.0, -1.0], lr=0.1, steps=3)
    assert tr.w.shape == tr.b.shape == tr.loss.shape == (4, 2)
    assert tr.grad_norm.shape == tr.clipped.shape == (3, 2)
    for k in range(3):
        loss, gw, gb = clipping.one_unit_grad(tr.w[k], tr.b[k])
        assert np.allclose(tr.loss[k], loss)
        assert np.allclose(tr.w[k + 1], tr.w[k] - 0.1 * gw)
        assert np.allclose(tr.b[k + 1], tr.b[k] - 0.1 * gb)
        assert np.allclose(tr.grad_norm[k], np.hypot(gw, gb))
    assert not tr.clipped.any() and np.all(tr.stopped == -1)


def test_clipped_steps_are_bounded_and_keep_direction():
    rng = np.random.default_rng(1)
    w0 = rng.uniform(4.5, 8.0, 50)
    b0 = clipping.cliff_bias(w0) + rng.uniform(0.2, 1.5, 50)
    lr, c = 0.03, 5.0
    clipped = clipping.gd_trajectories(w0, b0, lr=lr, steps=100, clip_norm=c)
    plain = clipping.gd_trajectories(w0, b0, lr=lr, steps=100)
    assert clipped.step_lengths.max() <= lr * c * (1 + 1e-12)
    assert plain.step_lengths.max() > 20 * lr * c  # somewhere the plain run hits the wall
    assert clipped.clipped.any() and np.all(clipped.clipped == (clipped.grad_norm > c))
    # the first step: clipped = c/|g| times the plain step, same direction
    d_plain = np.stack([plain.w[1] - plain.w[0], plain.b[1] - plain.b[0]])
    d_clip = np.stack([clipped.w[1] - clipped.w[0], clipped.b[1] - clipped.b[0]])
    cos = (d_plain * d_clip).sum(0) / (
        np.linalg.norm(d_plain, axis=0) * np.linalg.norm(d_clip, axis=0)
    )
    assert np.allclose(cos, 1.0)


def test_trajectory_stops_at_a_non_finite_gradient():
    # w = 1e308: x_T is about 1e308 and 2 (x_T - target) overflows to inf at the first step
    tr = clipping.gd_trajectories([1e308, 1.0], [0.0, 0.0], lr=1.0, steps=3)
    assert tr.stopped[0] == 0 and tr.stopped[1] == -1
    assert np.all(tr.w[:, 0] == 1e308) and np.all(np.isfinite(tr.w[:, 1]))


def test_trajectories_bad_inputs():
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        clipping.gd_trajectories(1.0, 0.0, lr=0.0, steps=3)
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        clipping.gd_trajectories(1.0, 0.0, lr=0.1, steps=0)
    with pytest.raises(ValueError, match="clip_norm must be a finite number > 0"):
        clipping.gd_trajectories(1.0, 0.0, lr=0.1, steps=3, clip_norm=-1.0)
    with pytest.raises(ValueError, match="1-D"):
        clipping.gd_trajectories(np.ones((2, 2)), 0.0, lr=0.1, steps=3)


# -- gradient vectors, cosines, growth rates ---------------------------------------------------


def _net_with_grads(seed=0):
    torch.manual_seed(seed)
    net = vg.mlp(2, 3, depth=3, width=8, activation="tanh", init="xavier_normal")
    X, y = vg.data.spirals(60, 3, 0.2, seed=0)
    torch.nn.functional.cross_entropy(net(X), y).backward()
    return net


def test_flat_grad_and_cosine_tell_norm_from_value_clipping():
    net = _net_with_grads()
    g = clipping.flat_grad(net)
    assert g.shape == (sum(p.numel() for p in net.parameters()),)
    assert clipping.cosine(g, 3 * g) == pytest.approx(1.0)
    assert clipping.cosine(g, -g) == pytest.approx(-1.0)
    total = float(torch.nn.utils.clip_grad_norm_(net.parameters(), 1e-3))
    assert total == pytest.approx(float(g.norm()), rel=1e-5)
    assert clipping.cosine(g, clipping.flat_grad(net)) == pytest.approx(1.0, abs=1e-9)
    net2 = _net_with_grads()
    torch.nn.utils.clip_grad_value_(net2.parameters(), float(g.abs().median()))
    assert clipping.cosine(g, clipping.flat_grad(net2)) < 0.99


def test_flat_grad_fills_missing_gradients_with_zeros_and_checks_input():
    a = torch.zeros(2, requires_grad=True)
    b = torch.zeros(3, requires_grad=True)
    b.grad = torch.ones(3)
    assert torch.equal(clipping.flat_grad([a, b]), torch.tensor([0.0, 0, 1, 1, 1]))
    with pytest.raises(TypeError, match="params must be"):
        clipping.flat_grad("weights")
    with pytest.raises(TypeError, match="non-empty list of tensors"):
        clipping.flat_grad([])
    with pytest.raises(ValueError, match="no parameters"):
        clipping.flat_grad(torch.nn.ReLU())


def test_cosine_bad_inputs():
    with pytest.raises(ValueError, match="same number of entries"):
        clipping.cosine(torch.ones(3), torch.ones(4))
    with pytest.raises(ValueError, match="zero vector"):
        clipping.cosine(torch.zeros(3), torch.ones(3))
    with pytest.raises(TypeError, match="torch.Tensor or numpy array"):
        clipping.cosine([1.0, 2.0], torch.ones(2))


def test_growth_rate_of_geometric_sequences():
    assert clipping.growth_rate(3.0 * 1.2 ** np.arange(30)) == pytest.approx(1.2)
    assert clipping.growth_rate(0.5 ** np.arange(10)) == pytest.approx(0.5)
    assert clipping.growth_rate([2.0, 2.0]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 2"):
        clipping.growth_rate([1.0])
    with pytest.raises(ValueError, match="> 0"):
        clipping.growth_rate([1.0, 0.0, 2.0])
    with pytest.raises(ValueError, match="non-finite"):
        clipping.growth_rate([1.0, np.inf])


def test_rnn_lag_gradients_grow_like_rho_with_small_inputs():
    for rho in (0.8, 1.25):
        rates = [
            clipping.growth_rate(clipping.rnn_lag_gradients(rho, T=30, input_scale=1e-6, seed=s))
            for s in range(3)
        ]
        assert np.median(rates) == pytest.approx(rho, rel=0.04)
    saturated = clipping.rnn_lag_gradients(1.25, T=30, input_scale=1.0, seed=0)
    assert clipping.growth_rate(saturated) < 1.0
    g = clipping.rnn_lag_gradients(1.1, T=12, seed=3)
    assert g.shape == (12,) and np.all(g > 0)
    assert np.array_equal(g, clipping.rnn_lag_gradients(1.1, T=12, seed=3))  # seeded


def test_rnn_lag_gradients_bad_inputs():
    with pytest.raises(ValueError, match="rho must be a finite number > 0"):
        clipping.rnn_lag_gradients(0.0)
    with pytest.raises(ValueError, match="T must be an integer >= 2"):
        clipping.rnn_lag_gradients(1.0, T=1)
    with pytest.raises(ValueError, match="nonlinearity"):
        clipping.rnn_lag_gradients(1.0, nonlinearity="sigmoid")


# -- plots -------------------------------------------------------------------------------------


def test_plot_loss_surface_draws_map_and_cliff():
    w, b = np.linspace(0, 8, 30), np.linspace(-5, 1, 20)
    loss = clipping.one_unit_loss(*np.meshgrid(w, b))
    ax = lesson08_plots.plot_loss_surface(w, b, loss, vmin=1e-3)
    assert len(ax.images) == 1 and ax.get_xlabel().startswith("recurrent weight")
    assert any(line.get_linestyle() == "--" for line in ax.lines)  # the cliff line, for w > w_c
    ax2 = lesson08_plots.plot_loss_surface(w, b, loss, x0=None, title=None)
    assert not ax2.lines
    with pytest.raises(ValueError, match="shape"):
        lesson08_plots.plot_loss_surface(w, b, loss.T)
    with pytest.raises(ValueError, match="vmin must be below"):
        lesson08_plots.plot_loss_surface(w, b, loss, vmin=1e9)
    with pytest.raises(ValueError, match="increasing"):
        lesson08_plots.plot_loss_surface(w[::-1], b, loss)
    plt.close("all")


def test_plot_norm_trace_marks_clipped_steps_and_divergence():
    X, y = vg.data.spirals(90, 3, 0.2, seed=0)
    torch.manual_seed(0)
    net = vg.mlp(2, 3, depth=6, width=16, init="kaiming_normal", gain=3.0)
    h = vg.fit(net, (X, y), steps=30, lr=0.05, optimizer="sgd", clip_norm=1.0, record=False)
    assert h.diverged_at is None and h.clipped.any()
    ax = lesson08_plots.plot_norm_trace(h, clip_norm=1.0)
    assert ax.get_yscale() == "log" and len(ax.lines) == 3  # trace, clipped dots, threshold
    torch.manual_seed(0)
    wild = vg.mlp(2, 3, depth=10, width=32, init="kaiming_normal", gain=1.5 * math.sqrt(2))
    hd = vg.fit(wild, (X, y), steps=30, lr=0.1, optimizer="sgd", record=False)
    assert hd.diverged_at is not None
    ax = lesson08_plots.plot_norm_trace(hd)
    assert any("non-finite" in t.get_text() for t in ax.texts)
    ax = lesson08_plots.plot_norm_trace(hd, annotate=False)
    assert not ax.texts
    with pytest.raises(TypeError, match="History"):
        lesson08_plots.plot_norm_trace(np.ones(5))
    plt.close("all")


# -- the training experiment and the explorer ---------------------------------------------------

SMALL = dict(depth=4, width=8, gain=1.5, steps=15, batch_size=32)


@pytest.fixture(scope="module")
def spirals():
    return vg.data.spirals(90, 3, 0.2, seed=0)


def _fit_directly(X, y, *, lr, clip_norm, seed, depth, width, gain, steps, batch_size):
    """The same run, built and trained without ClippingExperiment."""
    torch.manual_seed(seed)
    net = vg.mlp(
        2,
        3,
        depth=depth,
        width=width,
        activation="relu",
        init="kaiming_normal",
        gain=gain * math.sqrt(2),
        device="cpu",
    )
    h = vg.fit(
        net,
        (X, y),
        steps=steps,
        lr=lr,
        optimizer="sgd",
        batch_size=batch_size,
        clip_norm=clip_norm,
        seed=seed,
        record=False,
    )
    return h, net


def test_experiment_net_is_he_init_times_gain(spirals):
    X, y = spirals
    exp = lesson08_experiment.ClippingExperiment(X, y, depth=2, width=400, gain=2.0, device="cpu")
    net = exp.net(seed=3)
    w = net.hidden_layers[1].weight.detach()  # fan_in 400
    assert float(w.std()) == pytest.approx(2.0 * math.sqrt(2 / 400), rel=0.02)
    assert all(float(lin.bias.detach().abs().max()) == 0 for lin in net.hidden_layers)
    assert torch.equal(exp.net(seed=3).hidden_layers[0].weight, net.hidden_layers[0].weight)
    assert not torch.equal(exp.net(seed=4).hidden_layers[0].weight, net.hidden_layers[0].weight)


def test_experiment_run_is_the_fit_those_settings_give_and_is_cached(spirals):
    X, y = spirals
    exp = lesson08_experiment.ClippingExperiment(X, y, **SMALL, device="cpu")
    run = exp.run(0.05, 0.5, seed=1)
    h, net = _fit_directly(X, y, lr=0.05, clip_norm=0.5, seed=1, **SMALL)
    np.testing.assert_array_equal(run.history.loss, h.loss)
    np.testing.assert_array_equal(run.history.clipped, h.clipped)
    assert run.history.clipped.any()  # the threshold is low enough to act
    assert (run.loss, run.accuracy) == vg.evaluate(net, (X, y))
    assert exp.run(0.05, 0.5, 1) is run  # cached: not trained again
    assert exp.run(0.05, None, 1) is not run and not exp.run(0.05, None, 1).history.clipped.any()
    assert "cached runs=2" in repr(exp)


def test_experiment_trains_on_the_chosen_device(spirals, device):
    X, y = spirals
    exp = lesson08_experiment.ClippingExperiment(X, y, **SMALL, device=device)
    assert exp.X.device.type == device.type
    assert next(exp.net(0).parameters()).device.type == device.type
    run = exp.run(0.05, 0.5, 0)
    assert run.history.diverged_at is None and np.isfinite(run.history.loss).all()
    assert 0 <= run.accuracy <= 1


def test_experiment_run_that_diverges_has_nan_loss(spirals):
    X, y = spirals
    exp = lesson08_experiment.ClippingExperiment(
        X, y, depth=10, width=32, gain=1.5, steps=30, device="cpu"
    )
    run = exp.run(0.5, None, 0)
    assert run.history.diverged_at is not None
    assert math.isnan(run.loss) and math.isnan(run.accuracy)
    assert exp.run(0.5, 1.0, 0).history.diverged_at is None  # clipping stops the NaN


def test_experiment_bad_arguments(spirals):
    X, y = spirals
    with pytest.raises(TypeError, match="X must be"):
        lesson08_experiment.ClippingExperiment([[0.0, 1.0]], y)
    with pytest.raises(ValueError, match="same number of rows"):
        lesson08_experiment.ClippingExperiment(X[:10], y)
    with pytest.raises(ValueError, match="2-D float"):
        lesson08_experiment.ClippingExperiment(X[:, 0], y)
    with pytest.raises(ValueError, match="class indices"):
        lesson08_experiment.ClippingExperiment(X, y.float())
    for kw, exc in [
        (dict(depth=0), ValueError),
        (dict(width=2.5), TypeError),
        (dict(gain=-1.0), ValueError),
        (dict(steps=0), ValueError),
        (dict(batch_size=0), ValueError),
        (dict(cache_size=0), ValueError),
    ]:
        with pytest.raises(exc, match=next(iter(kw))):
            lesson08_experiment.ClippingExperiment(X, y, **kw)
    exp = lesson08_experiment.ClippingExperiment(X, y, **SMALL, device="cpu")
    with pytest.raises(ValueError, match="lr"):
        exp.run(0.0)
    with pytest.raises(ValueError, match="clip_norm"):
        exp.run(0.1, -1.0)
    with pytest.raises(ValueError, match="seed"):
        exp.run(0.1, None, -1)
    with pytest.raises(ValueError, match="seed"):
        exp.net(-1)


def _threshold_line(ax):
    return [
        line
        for line in ax.lines
        if line.get_visible() and str(line.get_label()).startswith("threshold")
    ]


def test_clipping_explorer_every_control_redraws_with_the_right_run(spirals):
    X, y = spirals
    exp = lesson08_experiment.ClippingExperiment(X, y, **SMALL, device="cpu")
    ref = float(np.mean(exp.run(0.01, None, 0).history.total_grad_norm))
    explorer = lesson08_explorer.clipping_explorer(exp, reference_norm=ref, lr=0.1, multiplier=1.0)
    first_readout, first_png = explorer.readout, explorer.png
    assert explorer.error is None and "threshold" in first_readout and first_png
    assert explorer.state["clip_norm"] == ref and explorer.state["lr"] == 0.1
    assert explorer.state["history"] is exp.run(0.1, ref, 0).history  # shared with the experiment

    def check(readout_before, png_before, lr, clip_norm):
        assert explorer.error is None
        assert explorer.readout != readout_before and explorer.png != png_before
        state = explorer.state
        assert state["lr"] == lr and state["clip_norm"] == clip_norm
        h, net = _fit_directly(X, y, lr=lr, clip_norm=clip_norm, seed=0, **SMALL)
        np.testing.assert_array_equal(state["history"].loss, h.loss)
        np.testing.assert_array_equal(state["history"].total_grad_norm, h.total_grad_norm)
        if h.diverged_at is None:
            assert (state["loss"], state["accuracy"]) == vg.evaluate(net, (X, y))
        norms = h.total_grad_norm
        expected_clipped = 0.0 if clip_norm is None else float(np.mean(norms > clip_norm))
        assert state["clipped_fraction"] == pytest.approx(expected_clipped)
        lines = _threshold_line(explorer.axes[1])
        if clip_norm is None:
            assert not lines and "threshold off" in explorer.readout
        else:
            assert len(lines) == 1 and lines[0].get_ydata()[0] == pytest.approx(clip_norm)
        trace = explorer.axes[1].lines[0]  # the plotted norms are this run's
        np.testing.assert_array_equal(
            trace.get_ydata()[np.isfinite(norms)], norms[np.isfinite(norms)]
        )
        assert f"lr {lr:.3g}" in explorer.readout
        assert explorer.axes[0].get_title() == f"Mini-batch loss (lr = {lr:.3g})"

    steps = [
        (dict(lr=0.3), 0.3, ref),
        (dict(multiplier=10.0), 0.3, 10.0 * ref),
        (dict(clip=False), 0.3, None),
    ]
    for change, lr, clip_norm in steps:
        readout, png = explorer.readout, explorer.png
        explorer.set(**change)
        check(readout, png, lr, clip_norm)
    assert explorer.redraws == 1 + len(steps)

    explorer.reset()
    assert explorer.values() == {"lr": 0.1, "multiplier": 1.0, "clip": True}
    assert explorer.readout == first_readout and explorer.state["clip_norm"] == ref
    assert explorer.error is None


def test_clipping_explorer_bad_arguments(spirals):
    X, y = spirals
    exp = lesson08_experiment.ClippingExperiment(X, y, **SMALL, device="cpu")
    with pytest.raises(TypeError, match="ClippingExperiment"):
        lesson08_explorer.clipping_explorer((X, y), reference_norm=1.0)
    with pytest.raises(ValueError, match="reference_norm"):
        lesson08_explorer.clipping_explorer(exp, reference_norm=0.0)
    with pytest.raises(ValueError, match="lr must be between"):
        lesson08_explorer.clipping_explorer(exp, reference_norm=1.0, lr=3.0)
    with pytest.raises(ValueError, match="multiplier must be between"):
        lesson08_explorer.clipping_explorer(exp, reference_norm=1.0, multiplier=1e-3)
    with pytest.raises(TypeError, match="clip must be True or False"):
        lesson08_explorer.clipping_explorer(exp, reference_norm=1.0, clip="yes")
    with pytest.raises(ValueError, match="seed"):
        lesson08_explorer.clipping_explorer(exp, reference_norm=1.0, seed=-2)


def test_clipping_explorer_marks_a_divergence_and_clears_the_mark(spirals):
    X, y = spirals
    exp = lesson08_experiment.ClippingExperiment(
        X, y, depth=10, width=32, gain=1.5, steps=30, device="cpu"
    )
    explorer = lesson08_explorer.clipping_explorer(exp, reference_norm=1.0, lr=0.5, clip=False)
    d = exp.run(0.5, None, 0).history.diverged_at
    assert d is not None and f"diverged at step {d}" in explorer.readout
    ax_loss, ax_norm = explorer.axes
    assert ax_loss.texts[0].get_text() == f"diverged at step {d}"
    assert list(ax_loss.lines[1].get_xdata()) == [d]  # the cross
    assert any(t.get_text() == f"non-finite at step {d}" for t in ax_norm.texts)
    explorer.set(clip=True)
    assert explorer.state["history"].diverged_at is None and "loss on all data" in explorer.readout
    assert ax_loss.texts[0].get_text() == "" and len(ax_loss.lines[1].get_xdata()) == 0
    assert ax_norm.get_legend() is not None and explorer.error is None


def test_explorer_lrs_are_the_slider_positions_and_reuse_runs_made_with_them(spirals):
    lrs = lesson08_explorer.explorer_lrs()
    assert len(lrs) == 21 and lrs[0] == 0.01 and lrs[10] == 0.1 and lrs[-1] == 1.0
    np.testing.assert_allclose(np.diff(np.log10(lrs)), 0.1, rtol=1e-9)
    X, y = spirals
    exp = lesson08_experiment.ClippingExperiment(X, y, **SMALL, device="cpu")
    made = exp.run(lrs[11], 2.0, 0)  # e.g. by a sweep in the lesson
    explorer = lesson08_explorer.clipping_explorer(exp, reference_norm=2.0)
    explorer.set(lr=10**-0.9000000000000001)  # the same slider position, one bit off (a browser)
    assert explorer.state["lr"] == lrs[11] and explorer.state["history"] is made.history
    explorer.set(lr=0.3)  # between positions (set from code): trained as given
    assert explorer.state["lr"] == 0.3


# -- lesson 08's figures ----------------------------------------------------------------------------


def _history(loss, norms, clipped=None, diverged_at=None):
    n = len(loss)
    return History(
        loss=np.asarray(loss, dtype=float),
        grad_norms=np.zeros((n, 0)),
        total_grad_norm=np.asarray(norms, dtype=float),
        layer_names=[],
        diverged_at=diverged_at,
        clipped=np.zeros(n, dtype=bool) if clipped is None else np.asarray(clipped),
    )


def test_plot_backward_profiles_draws_medians_and_the_prediction():
    depth, rng = 6, np.random.default_rng(0)
    profiles = {g: rng.uniform(0.5, 2.0, size=(3, 2, depth)) for g in (1.0, 2.0)}
    lesson08_figures.plot_backward_profiles(profiles, depth)
    left, right = plt.gcf().axes
    layers = np.arange(1, depth + 1)
    curve, dotted = left.lines[1], left.lines[2]  # after the legend's proxy line: g = 1.0
    np.testing.assert_allclose(curve.get_ydata(), np.median(profiles[1.0][:, 0], 0))
    g2_dotted = left.lines[4].get_ydata()
    np.testing.assert_allclose(
        g2_dotted, np.median(profiles[2.0][:, 0, -1]) * 2.0 ** (depth - layers)
    )
    assert dotted.get_color() == curve.get_color() and dotted.get_linestyle() == ":"
    np.testing.assert_allclose(right.lines[1].get_ydata(), np.median(profiles[2.0][:, 1], 0))
    assert left.get_yscale() == right.get_yscale() == "log"
    assert right.lines[0].get_color() == curve.get_color()  # one colour per gain in both panels


def test_plot_lag_gradients_one_colour_per_radius_and_rho_powers_for_tiny_inputs():
    lags = np.arange(10)
    lag_norms = {
        (rho, s): (rho if s < 1 else 0.5) ** lags for rho in (0.9, 1.1) for s in (1e-6, 1.0)
    }
    lesson08_figures.plot_lag_gradients(lag_norms, (0.9, 1.1), (1e-6, 1.0))
    tiny, saturated = plt.gcf().axes
    assert len(tiny.lines) == 4 and len(saturated.lines) == 2  # dotted rho^k on the left only
    np.testing.assert_allclose(tiny.lines[3].get_ydata(), 1.1**lags)
    assert tiny.lines[0].get_color() == saturated.lines[0].get_color()
    assert tiny.get_legend() is not None and saturated.get_legend() is None


def test_plot_cliff_surfaces_and_slice_draw_the_given_numbers():
    w, b = np.linspace(-1, 10, 23), np.linspace(-6, 2, 17)
    loss, gw, gb = clipping.one_unit_grad(*np.meshgrid(w, b))
    lesson08_figures.plot_cliff_surfaces(w, b, loss, np.hypot(gw, gb))
    axes = plt.gcf().axes
    assert axes[0].name == "3d" and len(axes) == 5  # 3-D, two maps, their colour bars
    assert [line.get_xdata()[0] for line in axes[1].lines if line.get_linestyle() == ":"] == [4]
    plt.close("all")
    b_line, dist = np.linspace(-4, -2, 11), np.logspace(-9, 0, 10)
    lesson08_figures.plot_cliff_slice(b_line, b_line**2, -3.0, dist, dist, 2 * dist, -3e7)
    left, right = plt.gcf().axes
    np.testing.assert_allclose(left.lines[0].get_ydata(), b_line**2)
    np.testing.assert_allclose(right.lines[1].get_ydata(), 2 * dist)
    assert right.lines[2].get_ydata()[0] == 3e7 and right.get_xscale() == "log"


def test_plot_cliff_paths_draws_plain_and_clipped_paths_and_the_cap():
    examples = [(5.5, -2.3), (7.5, -3.6)]
    lesson08_figures.plot_cliff_paths(examples, lr=0.03, clip_norm=10.0, steps=20)
    surface, steps = plt.gcf().axes[:2]  # then the colour bar
    plain = clipping.gd_trajectories(5.5, -2.3, lr=0.03, steps=20)
    drawn = [
        line for line in surface.lines if line.get_linestyle() == "-" and len(line.get_xdata()) > 1
    ]
    np.testing.assert_allclose(drawn[0].get_xdata(), plain.w[:, 0])
    assert "thrown to" in surface.texts[0].get_text()
    assert [line.get_label() for line in steps.lines] == ["plain", "clipped", r"$\eta c$"]
    assert steps.lines[2].get_ydata()[0] == pytest.approx(0.3)


def test_plot_divergence_marks_each_run():
    runs = {"a": _history([1.0, 10.0, np.nan], [1.0, 100.0, np.nan], diverged_at=2)}
    runs["b"] = _history([1.0, 0.5, 0.4], [1.0, 0.9, 0.8])
    lesson08_figures.plot_divergence(runs, 0.1)
    loss_ax, norm_ax = plt.gcf().axes
    assert loss_ax.get_title().startswith("Training loss, no clipping (lr = 0.1)")
    crosses = [line for line in loss_ax.lines if line.get_marker() == "x"]
    assert len(crosses) == 1 and list(crosses[0].get_xdata()) == [2]
    assert norm_ax.get_yscale() == "log"


def test_plot_clip_directions_draws_the_arrows_and_the_cosines():
    g2 = torch.tensor([3.0, 0.5])
    lesson08_figures.plot_clip_directions(
        g2, g2 / g2.norm(), g2.clamp(-1, 1), [0.1, 0.2], [0.5, 0.9], 1.0
    )
    arrows, cosines = plt.gcf().axes
    labels = [t.get_text() for t in arrows.get_legend().get_texts()]
    assert labels[0] == "gradient $g$: angle 9.5 deg" and labels[2].endswith("angle 26.6 deg")
    np.testing.assert_allclose(cosines.lines[0].get_ydata(), [0.5, 0.9])
    assert cosines.get_xscale() == "log"


def test_plot_threshold_sweep_and_lr_axis_draw_the_runs():
    h = _history([1.0, 0.5, 0.2], [5.0, 2.0, 1.0], clipped=[True, False, False])
    sweep = {m: [(h, 0.1 * m, 0.9), (h, 0.2 * m, 0.8)] for m in (0.5, 1, 2)}
    lesson08_figures.plot_threshold_sweep(sweep, math.log(3), {"run": h}, h, 3.0)
    ax1, ax2, ax3 = plt.gcf().axes
    median = [line for line in ax1.lines if line.get_label() == "clipped: median of seeds"]
    np.testing.assert_allclose(median[0].get_ydata(), [0.075, 0.15, 0.3])
    assert ax1.get_title() == "All 2 unclipped runs diverged (NaN)"
    assert any(str(line.get_label()).startswith("threshold 3") for line in ax3.lines)
    plt.close("all")

    def run(loss, diverged_at=None):
        return SimpleNamespace(loss=loss, history=SimpleNamespace(diverged_at=diverged_at))

    axis = {"clipped": [run(0.5), run(0.2)], "plain": [run(0.4), run(float("nan"), 3)]}
    lesson08_figures.plot_lr_axis([0.01, 0.1], axis, math.log(3))
    (ax,) = plt.gcf().axes
    crosses = [line for line in ax.lines if line.get_marker() == "x" and len(line.get_xdata())]
    assert len(crosses) == 1 and list(crosses[0].get_xdata()) == [0.1]
    assert crosses[0].get_ydata()[0] == pytest.approx(3 * math.log(3))
    assert ax.get_xscale() == ax.get_yscale() == "log"
