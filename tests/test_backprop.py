"""Tests of vgcourse.lessons.lesson01_backprop: the 2-2-1 sigmoid network by hand, and lesson 01's explorer."""

import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

from vgcourse.lessons import lesson01_backprop as backprop
from vgcourse.lessons import lesson01_explorer
from vgcourse.lessons import lesson01_network as network

F64 = dict(dtype=torch.float64)


def _sequential(params: backprop.TinyParams) -> nn.Sequential:
    """An nn.Sequential 2-2-1 sigmoid net with the given (unbatched) parameters."""
    hidden, n_in = params.W1.shape
    net = nn.Sequential(nn.Linear(n_in, hidden), nn.Sigmoid(), nn.Linear(hidden, 1), nn.Sigmoid())
    net = net.double()
    with torch.no_grad():
        net[0].weight.copy_(params.W1)
        net[0].bias.copy_(params.b1)
        net[2].weight.copy_(params.v[None])
        net[2].bias.copy_(params.c.reshape(1))
    return net


def _autograd_descent(w11, x, y, lr, num_updates):
    """Plain PyTorch: autograd + manual gradient descent on the lesson's net; loss after each update."""
    net = _sequential(backprop.tiny_params(w11))
    x = torch.tensor(x, **F64)
    losses = []
    for _ in range(num_updates):
        loss = 0.5 * (net(x).squeeze() - y) ** 2
        net.zero_grad()
        loss.backward()
        losses.append(loss.item())
        with torch.no_grad():
            for p in net.parameters():
                p -= lr * p.grad
    losses.append((0.5 * (net(x).squeeze() - y) ** 2).item())
    return np.array(losses)


def _random_params(gen, batch=()):
    return backprop.TinyParams(
        torch.randn(*batch, 2, 2, generator=gen, **F64),
        torch.randn(*batch, 2, generator=gen, **F64),
        torch.randn(*batch, 2, generator=gen, **F64),
        torch.randn(batch, generator=gen, **F64),
    )


# -- the network by hand ---------------------------------------------------------------------------
def test_tiny_params_are_the_lessons_network():
    p = backprop.tiny_params()
    assert p.W1.dtype == torch.float64
    assert p.W1.tolist() == [[0.4, -0.6], [0.3, 0.9]]
    assert p.b1.tolist() == [0.1, -0.2] and p.v.tolist() == [0.7, -1.1] and float(p.c) == 0.2
    assert float(backprop.tiny_params(2.5).W1[0, 0]) == 2.5
    round_trip = backprop.params_of(_sequential(p))
    assert all(torch.equal(a, b) for a, b in zip(round_trip, p))
    # the lesson's numbers: loss 0.0995 at x = (1.5, -0.5), y = 1
    loss = backprop.forward_backward(p, [1.5, -0.5], 1.0).loss
    assert float(loss) == pytest.approx(0.09949, abs=1e-5)


def test_forward_backward_matches_autograd():
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        params = _random_params(gen)
        x = torch.randn(2, generator=gen, **F64)
        y = float(torch.rand((), generator=gen))
        net = _sequential(params)
        loss = 0.5 * (net(x).squeeze() - y) ** 2
        loss.backward()
        got = backprop.forward_backward(params, x, y)
        assert float(got.loss) == pytest.approx(loss.item(), rel=1e-14)
        expected = [
            net[0].weight.grad,
            net[0].bias.grad,
            net[2].weight.grad[0],
            net[2].bias.grad[0],
        ]
        for g, e in zip(got.grads, expected):
            torch.testing.assert_close(g, e, rtol=1e-12, atol=1e-15)


def test_batched_pass_equals_one_at_a_time():
    gen = torch.Generator().manual_seed(1)
    params = _random_params(gen, batch=(3,))
    xs = torch.randn(3, 2, generator=gen, **F64)
    batched = backprop.forward_backward(params, xs, 0.3)
    for b in range(3):
        one = backprop.forward_backward(backprop.TinyParams(*(t[b] for t in params)), xs[b], 0.3)
        assert float(one.loss) == pytest.approx(float(batched.loss[b]), rel=1e-14)
        for g1, gb in zip(one.grads, batched.grads):
            torch.testing.assert_close(g1, gb[b], rtol=1e-14, atol=0)


@pytest.mark.parametrize("unit,inp", [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_chain_factors_multiply_to_the_gradient(unit, inp):
    gen = torch.Generator().manual_seed(2)
    params = _random_params(gen)
    x = torch.randn(2, generator=gen, **F64)
    factors = backprop.chain_factors(params, x, 0.8, unit=unit, input=inp)
    assert list(factors)[2:] == [
        f"dz_out/dh{unit + 1}",
        f"dh{unit + 1}/dz{unit + 1}",
        f"dz{unit + 1}/dw{unit + 1}{inp + 1}",
    ]
    product = math.prod(float(v) for v in factors.values())
    grad = backprop.forward_backward(params, x, 0.8).grads.W1[unit, inp]
    assert product == pytest.approx(float(grad), rel=1e-12)
    # the same factors as the gradcheck module's version for an nn.Sequential
    other = network.chain_rule_factors(_sequential(params), x, 0.8, unit=unit, input=inp)
    assert other == pytest.approx({k: float(v) for k, v in factors.items()}, rel=1e-14)
    assert abs(float(factors[f"dh{unit + 1}/dz{unit + 1}"])) <= 0.25


def test_gradient_descent_matches_autograd_training():
    _, losses = backprop.gradient_descent(
        backprop.tiny_params(), [1.5, -0.5], 1.0, lr=0.5, num_updates=30
    )
    expected = _autograd_descent(0.4, [1.5, -0.5], 1.0, 0.5, 30)
    np.testing.assert_allclose(losses.numpy(), expected, rtol=1e-12)
    assert losses.shape == (31,) and (np.diff(losses.numpy()) < 0).all()
    final, zero = backprop.gradient_descent(
        backprop.tiny_params(), [1.5, -0.5], 1.0, lr=0.5, num_updates=0
    )
    assert zero.shape == (1,) and torch.equal(final.W1, backprop.tiny_params().W1)


def test_backprop_rejects_bad_arguments():
    p = backprop.tiny_params()
    with pytest.raises(TypeError, match="TinyParams"):
        backprop.forward_backward((p.W1, p.b1, p.v, p.c), [1.0, 2.0], 1.0)
    with pytest.raises(ValueError, match="x must end in the network's 2 inputs"):
        backprop.forward_backward(p, [1.0, 2.0, 3.0], 1.0)
    with pytest.raises(ValueError, match="y must be finite"):
        backprop.forward_backward(p, [1.0, 2.0], float("nan"))
    with pytest.raises(ValueError, match="non-finite"):
        backprop.forward_backward(p, torch.tensor([1.0, float("inf")], **F64), 1.0)
    with pytest.raises(ValueError, match="params.b1"):
        backprop.forward_backward(p._replace(b1=torch.zeros(3, **F64)), [1.0, 2.0], 1.0)
    with pytest.raises(ValueError, match="unit must be < 2"):
        backprop.chain_factors(p, [1.0, 2.0], 1.0, unit=2)
    with pytest.raises(ValueError, match="input must be < 2"):
        backprop.chain_factors(p, [1.0, 2.0], 1.0, input=5)
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        backprop.gradient_descent(p, [1.0, 2.0], 1.0, lr=0.0, num_updates=3)
    with pytest.raises(TypeError, match="num_updates must be an integer"):
        backprop.gradient_descent(p, [1.0, 2.0], 1.0, lr=0.1, num_updates=2.5)
    with pytest.raises(TypeError, match="w11 must be a real number"):
        backprop.tiny_params("0.4")
    with pytest.raises(TypeError, match="dtype"):
        backprop.tiny_params(dtype=torch.int64)
    with pytest.raises(TypeError, match="nn.Sequential"):
        backprop.params_of(nn.Linear(2, 1))


def test_plot_factors_draws_one_bar_per_factor():
    ax = Figure().subplots()
    factors = backprop.chain_factors(backprop.tiny_params(), [1.5, -0.5], 1.0)
    lesson01_explorer.plot_factors(ax, {k: float(v) for k, v in factors.items()}, title="t")
    assert len(ax.patches) == 5 and ax.get_title() == "t"
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == list(factors)[::-1]  # first factor on top
    red = [p.get_facecolor() for p in ax.patches]
    assert red[1] == red[3] != red[0]  # the two sigmoid derivatives share the red colour
    values = [float(v) for v in factors.values()]
    ends = [bar.get_x() + bar.get_width() for bar in ax.patches][::-1]
    np.testing.assert_allclose(ends, np.abs(values), rtol=1e-12)  # bars end at |factor|
    assert ax.get_xscale() == "log"
    (product,) = [line for line in ax.lines if line.get_label() == "running product"]
    np.testing.assert_allclose(product.get_xdata(), np.abs(np.cumprod(values)), rtol=1e-12)
    np.testing.assert_allclose(product.get_xdata()[-1], abs(math.prod(values)), rtol=1e-12)
    with pytest.raises(TypeError, match="non-empty dict"):
        lesson01_explorer.plot_factors(ax, {})
    with pytest.raises(ValueError, match="finite"):
        lesson01_explorer.plot_factors(ax, {"a": float("nan")})


# -- the explorer ----------------------------------------------------------------------------------
def _expected_state(x1, x2, w11, lr, num_updates):
    net = _sequential(backprop.tiny_params(w11))
    factors = network.chain_rule_factors(net, torch.tensor([x1, x2], **F64), 1.0)
    return factors, _autograd_descent(w11, [x1, x2], 1.0, lr, num_updates)


@pytest.fixture(scope="module")
def explorer():
    return lesson01_explorer.chain_rule_explorer(device="cpu")


def test_chain_rule_explorer_every_control(explorer):
    explorer.reset()
    first_readout, defaults = explorer.readout, explorer.values()
    assert defaults == dict(x1=1.5, x2=-0.5, w11=0.4, lr=pytest.approx(0.5), num_updates=20)
    changes = [
        dict(x1=3.0),
        dict(x2=1.2),
        dict(w11=6.0),
        dict(lr=10**0.5),
        dict(num_updates=57),
    ]
    for change in changes:
        readout, png = explorer.readout, explorer.png
        explorer.set(**change)
        assert explorer.error is None, (change, explorer.error)
        assert explorer.png != png, f"{change}: the plot did not change"
        assert explorer.readout != readout, f"{change}: the readout did not change"
        v = explorer.values()
        factors, losses = _expected_state(v["x1"], v["x2"], v["w11"], v["lr"], v["num_updates"])
        state = explorer.state
        assert state["x"] == (v["x1"], v["x2"]) and state["num_updates"] == v["num_updates"]
        assert state["factors"] == pytest.approx(factors, rel=1e-12, abs=1e-300)
        assert state["grad"] == pytest.approx(math.prod(factors.values()), rel=1e-12, abs=1e-300)
        np.testing.assert_allclose(state["losses"], losses, rtol=1e-10)
        assert f"dL/dw11 = {state['grad']:+.3g}" in explorer.readout
    # saturation: w11 = 6 and x1 = 3 put z1 near 18, so dh1/dz1 is nearly 0
    assert explorer.state["factors"]["dh1/dz1"] < 1e-6
    explorer.reset()
    assert explorer.values() == defaults and explorer.readout == first_readout


def test_chain_rule_explorer_off_grid_value_is_computed_exactly(explorer):
    explorer.set(x1=0.123)  # not a value of the slider's grid (steps of 0.1)
    assert explorer.error is None and explorer.state["x"][0] == 0.123
    factors, losses = _expected_state(0.123, -0.5, 0.4, 0.5, 20)
    assert explorer.state["factors"] == pytest.approx(factors, rel=1e-12)
    np.testing.assert_allclose(explorer.state["losses"], losses, rtol=1e-10)
    explorer.reset()


def test_chain_rule_explorer_redraws_after_a_failed_setting(monkeypatch):
    explorer = lesson01_explorer.chain_rule_explorer(device="cpu")

    def fail(*args, **kw):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(lesson01_explorer, "gradient_descent", fail)
    explorer.set(x2=2.0)  # a new setting: computed (and failing), not cached
    assert explorer.error == "out of memory" and "cannot compute" in explorer.readout
    monkeypatch.undo()
    explorer.set(x2=2.1)
    assert explorer.error is None and explorer.state["x"] == (1.5, 2.1)
    assert len(explorer.axes[0].patches) == 5 and len(explorer.axes[1].lines) == 1  # rebuilt
    factors, losses = _expected_state(1.5, 2.1, 0.4, 0.5, 20)
    np.testing.assert_allclose(explorer.axes[1].lines[0].get_ydata(), losses, rtol=1e-10)
    ends = [bar.get_x() + bar.get_width() for bar in explorer.axes[0].patches][::-1]
    np.testing.assert_allclose(ends, np.abs(list(factors.values())), rtol=1e-12)


def test_chain_rule_explorer_on_every_device(device):
    explorer = lesson01_explorer.chain_rule_explorer(device=device)
    explorer.set(x1=-2.0, num_updates=30)
    assert explorer.error is None
    factors, losses = _expected_state(-2.0, -0.5, 0.4, 0.5, 30)
    assert explorer.state["factors"] == pytest.approx(factors, rel=1e-9)
    np.testing.assert_allclose(explorer.state["losses"], losses, rtol=1e-9)


def test_chain_rule_explorer_rejects_bad_arguments():
    with pytest.raises(TypeError, match="x must be a pair"):
        lesson01_explorer.chain_rule_explorer(x=(1.0, 2.0, 3.0))
    with pytest.raises(TypeError, match="x must be a pair"):
        lesson01_explorer.chain_rule_explorer(x="12")
    with pytest.raises(ValueError, match="y must be finite"):
        lesson01_explorer.chain_rule_explorer(y=float("inf"))
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        lesson01_explorer.chain_rule_explorer(lr=-1.0)
    with pytest.raises(ValueError, match="num_updates must be <= max_updates=10"):
        lesson01_explorer.chain_rule_explorer(num_updates=20, max_updates=10)
    with pytest.raises(ValueError, match="max_updates must be an integer >= 1"):
        lesson01_explorer.chain_rule_explorer(max_updates=0)
    with pytest.raises(ValueError, match="prefer must name a torch device"):
        lesson01_explorer.chain_rule_explorer(device="tpu:banana")
