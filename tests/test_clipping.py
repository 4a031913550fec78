import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import vgcourse as vg
from vgcourse import clipping


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
    ax = clipping.plot_loss_surface(w, b, loss, vmin=1e-3)
    assert len(ax.images) == 1 and ax.get_xlabel().startswith("recurrent weight")
    assert any(line.get_linestyle() == "--" for line in ax.lines)  # the cliff line, for w > w_c
    ax2 = clipping.plot_loss_surface(w, b, loss, x0=None, title=None)
    assert not ax2.lines
    with pytest.raises(ValueError, match="shape"):
        clipping.plot_loss_surface(w, b, loss.T)
    with pytest.raises(ValueError, match="vmin must be below"):
        clipping.plot_loss_surface(w, b, loss, vmin=1e9)
    with pytest.raises(ValueError, match="increasing"):
        clipping.plot_loss_surface(w[::-1], b, loss)
    plt.close("all")


def test_plot_norm_trace_marks_clipped_steps_and_divergence():
    X, y = vg.data.spirals(90, 3, 0.2, seed=0)
    torch.manual_seed(0)
    net = vg.mlp(2, 3, depth=6, width=16, init="kaiming_normal", gain=3.0)
    h = vg.fit(net, (X, y), steps=30, lr=0.05, optimizer="sgd", clip_norm=1.0, record=False)
    assert h.diverged_at is None and h.clipped.any()
    ax = clipping.plot_norm_trace(h, clip_norm=1.0)
    assert ax.get_yscale() == "log" and len(ax.lines) == 3  # trace, clipped dots, threshold
    torch.manual_seed(0)
    wild = vg.mlp(2, 3, depth=10, width=32, init="kaiming_normal", gain=1.5 * math.sqrt(2))
    hd = vg.fit(wild, (X, y), steps=30, lr=0.1, optimizer="sgd", record=False)
    assert hd.diverged_at is not None
    ax = clipping.plot_norm_trace(hd)
    assert any("non-finite" in t.get_text() for t in ax.texts)
    ax = clipping.plot_norm_trace(hd, annotate=False)
    assert not ax.texts
    with pytest.raises(TypeError, match="History"):
        clipping.plot_norm_trace(np.ones(5))
    plt.close("all")
