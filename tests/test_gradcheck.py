"""Gradient checking: central differences, relative error, per-parameter checks, lesson 01 helpers."""

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

import vgcourse as vg
from vgcourse import gradcheck as gc
from vgcourse.lessons import lesson01_network as network


def known(W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """f(W, b) = sum_ij sin(W_ij) b_i + sum_i b_i^3, with gradients cos(W_ij) b_i and sum_j sin(W_ij) + 3 b_i^2."""
    return (torch.sin(W) * b[:, None]).sum() + (b**3).sum()


def known_grads(W: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cos(W) * b[:, None], torch.sin(W).sum(1) + 3 * b**2


def point(dtype=torch.float64):
    g = torch.Generator().manual_seed(0)
    return torch.randn(3, 4, generator=g, dtype=dtype), torch.randn(3, generator=g, dtype=dtype)


def tiny_net(w11: float = 0.4) -> nn.Sequential:
    net = nn.Sequential(nn.Linear(2, 2), nn.Sigmoid(), nn.Linear(2, 1), nn.Sigmoid()).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[w11, -0.6], [0.3, 0.9]], dtype=torch.float64))
        net[0].bias.copy_(torch.tensor([0.1, -0.2], dtype=torch.float64))
        net[2].weight.copy_(torch.tensor([[0.7, -1.1]], dtype=torch.float64))
        net[2].bias.copy_(torch.tensor([0.2], dtype=torch.float64))
    return net


class BuggySigmoid(torch.autograd.Function):
    """Sigmoid whose backward forgets the (1 - s) factor."""

    generate_vmap_rule = True

    @staticmethod
    def forward(z):
        return torch.sigmoid(z)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx, grad_out):
        (s,) = ctx.saved_tensors
        return grad_out * s


class Buggy(nn.Module):
    def forward(self, z):
        return BuggySigmoid.apply(z)


# -- numerical_gradient -----------------------------------------------------------------------
@pytest.mark.parametrize("vectorize", [False, True, "auto"])
def test_numerical_gradient_matches_closed_form(vectorize):
    W, b = point()
    gW, gb = gc.numerical_gradient(known, [W, b], vectorize=vectorize)
    eW, eb = known_grads(W, b)
    assert gW.shape == W.shape and gb.shape == b.shape
    assert gW.dtype == torch.float64
    assert float(gc.relative_error(gW, eW).max()) < 1e-8
    assert float(gc.relative_error(gb, eb).max()) < 1e-8


def test_numerical_gradient_single_tensor_and_originals_untouched():
    W, b = point(torch.float32)
    W0 = W.clone()
    g = gc.numerical_gradient(lambda w: (w**2).sum(), W)
    assert isinstance(g, torch.Tensor) and g.dtype == torch.float64
    assert torch.equal(W, W0)
    torch.testing.assert_close(g, 2 * W.double(), rtol=1e-8, atol=1e-10)


def test_loop_and_vmap_agree_and_float32_is_noisier():
    W, b = point()
    loop = gc.numerical_gradient(known, [W, b], 1e-5, vectorize=False)
    vec = gc.numerical_gradient(known, [W, b], 1e-5, vectorize=True)
    for a, c in zip(loop, vec):
        torch.testing.assert_close(a, c, rtol=1e-8, atol=1e-10)
    g32 = gc.numerical_gradient(known, [W.float(), b.float()], 1e-6, dtype=None)
    assert g32[0].dtype == torch.float32
    exact = known_grads(W, b)
    err32 = max(float(gc.relative_error(g, e).max()) for g, e in zip(g32, exact))
    err64 = max(
        float(gc.relative_error(g, e).max())
        for g, e in zip(gc.numerical_gradient(known, [W, b], 1e-6), exact)
    )
    assert err32 > 1e-4 > 1e-8 > err64


def test_auto_falls_back_to_the_loop_when_vmap_refuses():
    def uses_item(w):
        return w.sum() * float(w.sum().item() > -1e9)

    x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    g = gc.numerical_gradient(uses_item, x, vectorize="auto")
    torch.testing.assert_close(g, torch.ones(2, dtype=torch.float64))
    with pytest.raises(RuntimeError):
        gc.numerical_gradient(uses_item, x, vectorize=True)


def test_numerical_gradient_bad_input():
    x = torch.ones(3, dtype=torch.float64)
    with pytest.raises(TypeError, match="f must be callable"):
        gc.numerical_gradient(3, x)
    with pytest.raises(TypeError, match="params must be a tensor"):
        gc.numerical_gradient(torch.sum, 3.0)
    with pytest.raises(ValueError, match="params is empty"):
        gc.numerical_gradient(torch.sum, [])
    with pytest.raises(TypeError, match=r"params\[0\] must be a floating-point"):
        gc.numerical_gradient(torch.sum, torch.ones(3, dtype=torch.int64))
    with pytest.raises(ValueError, match="non-finite"):
        gc.numerical_gradient(torch.sum, torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match="eps must be a finite number > 0"):
        gc.numerical_gradient(torch.sum, x, 0.0)
    with pytest.raises(TypeError, match="eps must be a real number"):
        gc.numerical_gradient(torch.sum, x, True)
    with pytest.raises(TypeError, match="dtype must be a floating-point torch.dtype"):
        gc.numerical_gradient(torch.sum, x, dtype=torch.int32)
    with pytest.raises(ValueError, match="vectorize must be one of"):
        gc.numerical_gradient(torch.sum, x, vectorize="yes")
    with pytest.raises(ValueError, match="f must return a scalar"):
        gc.numerical_gradient(lambda t: t * 2, x)
    with pytest.raises(ValueError, match="non-finite value"):
        gc.numerical_gradient(lambda t: t.sum() / 0.0, x)
    with pytest.raises(TypeError, match="scalar tensor or a number"):
        gc.numerical_gradient(lambda t: "one", x)


# -- relative_error and verdict ----------------------------------------------------------------
def test_relative_error_values():
    r = gc.relative_error(torch.tensor([1.0, 0.0, -2.0, 1e-3]), torch.tensor([1.1, 0.0, 2.0, 0.0]))
    assert r.dtype == torch.float64
    assert r[0].item() == pytest.approx(0.1 / 1.1)
    assert r[1].item() == 0.0  # both exactly zero: a pass, not NaN
    assert r[2].item() == pytest.approx(2.0)
    assert r[3].item() == pytest.approx(1.0)
    sym = gc.relative_error(
        torch.tensor([1.1, 0.0, 2.0, 0.0]), torch.tensor([1.0, 0.0, -2.0, 1e-3])
    )
    torch.testing.assert_close(r, sym)
    assert gc.relative_error(1e-20, 0.0, tiny=1e-12).item() == pytest.approx(1e-8)
    with pytest.raises(ValueError, match="same shape"):
        gc.relative_error(torch.zeros(2), torch.zeros(3))
    with pytest.raises(ValueError, match="tiny"):
        gc.relative_error(1.0, 1.0, tiny=0.0)


def test_verdict():
    assert gc.verdict(0.0) == "good"
    assert gc.verdict(5e-8) == "good"
    assert gc.verdict(1e-5).startswith("ok only")
    assert gc.verdict(1e-3) == "uncomfortable"
    assert gc.verdict(0.5) == "probably wrong"
    with pytest.raises(ValueError, match="error"):
        gc.verdict(-1.0)


# -- gradient_check ----------------------------------------------------------------------------
def test_gradient_check_module_passes_and_leaves_model_alone():
    torch.manual_seed(0)
    net = vg.mlp(2, 1, depth=2, width=6, activation="sigmoid", init="standard")
    before = [p.detach().clone() for p in net.parameters()]
    X, y = vg.data.moons(8, 0.1, seed=0)
    errors = gc.gradient_check(net, (X, y.float()), loss="bce", eps=1e-4)
    assert list(errors) == [n for n, _ in net.named_parameters()]
    assert max(errors.values()) < 1e-5  # far below the 1e-2 of a wrong gradient
    assert errors["output_layer.weight"] < 1e-7
    assert all(p.dtype == torch.float32 for p in net.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assert all(p.grad is None for p in net.parameters())


def test_gradient_check_finds_a_wrong_backward():
    torch.manual_seed(0)
    net = vg.mlp(2, 1, depth=2, width=6, activation="sigmoid", init="standard")
    for block in net.blocks:
        block.act = Buggy()
    X, y = vg.data.moons(8, 0.1, seed=0)
    errors = gc.gradient_check(net, (X, y.float()), loss="bce", eps=1e-4)
    assert errors["output_layer.weight"] < 1e-7  # downstream of every buggy backward
    assert errors["blocks.0.linear.weight"] > 1e-2
    assert errors["blocks.1.linear.weight"] > 1e-2


def test_gradient_check_callable_forms():
    W, b = point()
    by_name = gc.gradient_check(known, {"W": W, "b": b})
    assert set(by_name) == {"W", "b"} and max(by_name.values()) < 1e-7
    by_position = gc.gradient_check(known, [W, b])
    assert set(by_position) == {"arg0", "arg1"}
    bad = gc.gradient_check(lambda z: (BuggySigmoid.apply(z) * b[0]).sum(), W)
    assert bad["arg0"] > 1e-2
    noisy = gc.gradient_check(known, [W, b], dtype=torch.float32)
    assert max(noisy.values()) > 1e-4


def test_gradient_check_bad_input():
    X, y = vg.data.moons(8, 0.1, seed=0)
    net = vg.mlp(2, 1, depth=1, width=4, activation="sigmoid")
    with pytest.raises(TypeError, match="the data must be the pair"):
        gc.gradient_check(net, X)
    with pytest.raises(ValueError, match="same number of rows"):
        gc.gradient_check(net, (X, y[:3].float()), loss="bce")
    with pytest.raises(TypeError, match="nn.Module or a callable"):
        gc.gradient_check(42, (X, y))
    with pytest.raises(ValueError, match="no parameters"):
        gc.gradient_check(nn.ReLU(), (X, y))
    with pytest.raises(ValueError, match="eps"):
        gc.gradient_check(net, (X, y.float()), loss="bce", eps=-1.0)
    with pytest.raises(TypeError, match="dtype"):
        gc.gradient_check(net, (X, y.float()), loss="bce", dtype="float64")
    with pytest.raises(ValueError, match="loss must be one of"):
        gc.gradient_check(net, (X, y.float()), loss="hinge")
    dropout = nn.Sequential(nn.Linear(2, 8), nn.Dropout(0.5), nn.Linear(8, 1))
    with pytest.raises(ValueError, match="model.eval"):
        gc.gradient_check(dropout, (X, y.float()), loss="bce")
    assert max(gc.gradient_check(dropout.eval(), (X, y.float()), loss="bce").values()) < 1e-6


def test_analytic_gradient_zero_for_unused_tensor():
    x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    gx, gu = gc.analytic_gradient(lambda a, unused: (a**2).sum(), [x, torch.ones(3)])
    torch.testing.assert_close(gx, 2 * x)
    assert torch.equal(gu, torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="scalar"):
        gc.analytic_gradient(lambda a: a * 2, x)


# -- step_size_sweep ---------------------------------------------------------------------------
def test_step_size_sweep_is_v_shaped():
    W, b = point()
    hs = np.logspace(-12, -1, 23)
    err64 = gc.step_size_sweep(known, [W, b], hs)
    err32 = gc.step_size_sweep(known, [W.float(), b.float()], hs, dtype=None)
    best = int(np.argmin(err64))
    assert 0 < best < len(hs) - 1  # a minimum inside the range: the V
    assert err64[best] < 1e-8
    assert err64[0] > 100 * err64[best] and err64[-1] > 100 * err64[best]
    assert err32.min() > 1e-6  # float32 never reaches the 1e-7 "good" threshold
    assert hs[int(np.argmin(err32))] > 100 * hs[best]  # and needs a much larger h
    med = gc.step_size_sweep(known, [W, b], hs, reduce="median")
    assert np.all(med <= err64 + 1e-300)
    slope = np.polyfit(np.log10(hs[-5:]), np.log10(err64[-5:]), 1)[0]
    assert 1.7 < slope < 2.3  # truncation error O(h^2)


def test_step_size_sweep_bad_input():
    W, b = point()
    with pytest.raises(ValueError, match="reduce"):
        gc.step_size_sweep(known, [W, b], [1e-6], reduce="mean")
    with pytest.raises(ValueError, match="steps is empty"):
        gc.step_size_sweep(known, [W, b], [])
    with pytest.raises(TypeError, match="steps must be a sequence"):
        gc.step_size_sweep(known, [W, b], 1e-6)
    with pytest.raises(ValueError, match="steps"):
        gc.step_size_sweep(known, [W, b], [1e-6, -1.0])
    with pytest.raises(ValueError, match="reference"):
        gc.step_size_sweep(known, [W, b], [1e-6], reference=[W])


# -- the 2-2-1 network helpers -----------------------------------------------------------------
@pytest.mark.parametrize("unit,inp", [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_chain_rule_factors_product_equals_autograd(unit, inp):
    net = tiny_net()
    x = torch.tensor([1.5, -0.5], dtype=torch.float64)
    factors = network.chain_rule_factors(net, x, 1.0, unit=unit, input=inp)
    assert (
        list(factors)[0] == "dL/dy_hat"
        and list(factors)[-1] == f"dz{unit + 1}/dw{unit + 1}{inp + 1}"
    )
    loss = 0.5 * (net(x).squeeze() - 1.0) ** 2
    loss.backward()
    assert math.prod(factors.values()) == pytest.approx(
        float(net[0].weight.grad[unit, inp]), rel=1e-12
    )


def test_chain_rule_factors_sigmoid_bound_and_saturation():
    x = torch.tensor([1.5, -0.5], dtype=torch.float64)
    for w11 in (-6.0, 0.0, 0.4, 6.0):
        f = network.chain_rule_factors(tiny_net(w11), x, 1.0)
        assert 0 < f["dh1/dz1"] <= 0.25 and 0 < f["dy_hat/dz_out"] <= 0.25
    assert network.chain_rule_factors(tiny_net(6.0), x, 1.0)["dh1/dz1"] < 1e-3


def test_chain_rule_factors_bad_input():
    x = torch.tensor([1.5, -0.5], dtype=torch.float64)
    with pytest.raises(TypeError, match="nn.Sequential"):
        network.chain_rule_factors(nn.Linear(2, 1), x, 1.0)
    with pytest.raises(TypeError, match="nn.Sequential"):
        network.chain_rule_factors(
            nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1), nn.Sigmoid()), x, 1.0
        )
    with pytest.raises(ValueError, match="x must have 2 entries"):
        network.chain_rule_factors(tiny_net(), torch.ones(3), 1.0)
    with pytest.raises(ValueError, match="1 dimensions"):
        network.chain_rule_factors(tiny_net(), torch.ones(1, 2), 1.0)
    with pytest.raises(ValueError, match="unit must be < 2"):
        network.chain_rule_factors(tiny_net(), x, 1.0, unit=2)
    with pytest.raises(ValueError, match="input must be < 2"):
        network.chain_rule_factors(tiny_net(), x, 1.0, input=5)


def test_autograd_graph_lists_every_parameter_leaf():
    net = tiny_net()
    loss = 0.5 * (net(torch.tensor([1.5, -0.5], dtype=torch.float64)).squeeze() - 1.0) ** 2
    lines = network.autograd_graph(loss)
    assert lines[0].startswith("MulBackward0")
    assert sum("SigmoidBackward0" in line for line in lines) == 2
    assert sum("AccumulateGrad" in line for line in lines) == 4
    assert len(network.autograd_graph(loss, max_nodes=3)) == 3
    with pytest.raises(ValueError, match="grad_fn"):
        network.autograd_graph(torch.ones(2))
    with pytest.raises(TypeError, match="tensor"):
        network.autograd_graph([1.0])


def test_draw_network():
    fig, ax = plt.subplots()
    out = network.draw_network(ax, tiny_net(), torch.tensor([1.5, -0.5], dtype=torch.float64), 1.0)
    assert out is ax
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "w11=0.40" in texts and "y_hat" in texts
    wide = nn.Sequential(nn.Linear(3, 2), nn.Sigmoid(), nn.Linear(2, 1), nn.Sigmoid())
    with pytest.raises(ValueError, match="2-2-1"):
        network.draw_network(ax, wide, torch.ones(3), 1.0)


def test_as_function():
    torch.manual_seed(0)
    net = vg.mlp(2, 1, depth=1, width=4, activation="tanh")
    X, y = vg.data.moons(8, 0.1, seed=0)
    f, names, params = gc.as_function(net, (X, y.float()), loss="bce")
    assert names == [n for n, _ in net.named_parameters()]
    assert all(p.dtype == torch.float64 and not p.requires_grad for p in params)
    expected = vg.losses.get_loss("bce")(net(X), y.float()).detach()
    assert float(f(*params)) == pytest.approx(float(expected), rel=1e-6)
    shifted = [p + 0.1 for p in params]
    assert float(f(*shifted)) != pytest.approx(float(f(*params)))
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        gc.as_function(lambda t: t, (X, y))
    with pytest.raises(TypeError, match="dtype"):
        gc.as_function(net, (X, y), dtype=torch.int64)
