"""Tests of vgcourse.lessons.lesson06_resnets: the plain/residual CNN, residual-stream measurements, depth sweeps."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import vgcourse as vg
from vgcourse.lessons import lesson06_convnets, lesson06_explorer
from vgcourse.lessons import lesson06_resnets as resnets


@pytest.fixture
def images():
    torch.manual_seed(0)
    return torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))


@pytest.fixture
def flat():
    torch.manual_seed(0)
    return torch.randn(64, 6), torch.randint(0, 3, (64,))


# -- conv_net -----------------------------------------------------------------------------------


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("norm", [None, "batch"])
def test_conv_net_shapes_and_layers(images, residual, norm):
    X, _ = images
    net = lesson06_convnets.conv_net(3, channels=8, residual=residual, norm=norm)
    assert net(X).shape == (16, 10)
    assert net.num_conv_layers == 7
    assert len(net.hidden_layers) == 7
    assert all(isinstance(c, nn.Conv2d) for c in net.hidden_layers)
    assert net.hidden_layers[0] is net.stem
    assert net.hidden_layers[-1] is net.blocks[-1].conv2
    # convs before batch norm carry no bias; without BN they do
    assert (net.blocks[0].conv1.bias is None) == (norm == "batch")


def test_conv_net_layer_grad_norms_tracks_every_conv(images):
    X, y = images
    net = lesson06_convnets.conv_net(2, channels=4)
    norms = vg.layer_grad_norms(net, X, y)
    assert norms.shape == (5,)
    assert np.all(norms > 0)
    assert all(p.grad is None for p in net.parameters())


def test_conv_net_residual_is_identity_plus_branch(images):
    X, _ = images
    torch.manual_seed(1)
    net = lesson06_convnets.conv_net(1, channels=4, residual=True, residual_scale=0.3)
    net.eval()
    block = net.blocks[0]
    h = torch.relu(torch.randn(2, 4, 8, 8))
    with torch.no_grad():
        expected = torch.relu(h + 0.3 * block.branch(h))
        assert torch.allclose(block(h), expected)
        plain = lesson06_convnets.conv_net(1, channels=4, residual=False)
        plain.load_state_dict(net.state_dict())
        plain.eval()
        assert torch.allclose(plain.blocks[0](h), torch.relu(block.branch(h)))
        assert not torch.allclose(plain.blocks[0](h), block(h))


def test_conv_net_zero_blocks_and_default_init(images):
    X, _ = images
    net = lesson06_convnets.conv_net(0, channels=4, init=None)
    assert net.num_conv_layers == 1
    assert net(X).shape == (16, 10)


def test_conv_net_kaiming_init_and_zero_bias():
    torch.manual_seed(0)
    net = lesson06_convnets.conv_net(2, channels=32, norm=None)
    w = net.blocks[0].conv1.weight.detach()
    fan_in = 32 * 9
    assert abs(float(w.std()) - math.sqrt(2 / fan_in)) < 0.1 * math.sqrt(2 / fan_in)
    assert float(net.blocks[0].conv1.bias.detach().abs().max()) == 0.0


def test_conv_net_seeded_is_repeatable(images):
    X, _ = images
    torch.manual_seed(3)
    a = lesson06_convnets.conv_net(2, channels=4)(X)
    torch.manual_seed(3)
    b = lesson06_convnets.conv_net(2, channels=4)(X)
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(num_blocks=-1), ValueError),
        (dict(num_blocks=2.5), TypeError),
        (dict(num_blocks=True), TypeError),
        (dict(num_blocks=2, channels=0), ValueError),
        (dict(num_blocks=2, norm="layer"), ValueError),
        (dict(num_blocks=2, residual="yes"), TypeError),
        (dict(num_blocks=2, residual_scale=0.0), ValueError),
        (dict(num_blocks=2, residual_scale=float("nan")), ValueError),
        (dict(num_blocks=2, init="bogus"), ValueError),
        (dict(num_blocks=2, init=3), TypeError),
        (dict(num_blocks=2, num_classes=0), ValueError),
    ],
)
def test_conv_net_bad_arguments(kwargs, error):
    with pytest.raises(error):
        lesson06_convnets.conv_net(**kwargs)


def test_conv_net_error_names_the_argument():
    with pytest.raises(ValueError, match="norm"):
        lesson06_convnets.conv_net(2, norm="group")


# -- residual stream ----------------------------------------------------------------------------


def test_stream_second_moments_matches_forward_hidden(flat):
    X, _ = flat
    torch.manual_seed(0)
    net = vg.mlp(6, 3, depth=5, width=16, residual=True)
    q = resnets.stream_second_moments(net, X)
    with torch.no_grad():
        expected = [float(h.double().pow(2).mean()) for h in net.forward_hidden(X)]
    np.testing.assert_allclose(q, expected, rtol=1e-6)
    assert len(q) == 5


def test_stream_second_moments_residual_s1_explodes_and_s_over_L_does_not(flat):
    X, _ = flat
    torch.manual_seed(0)
    q1 = resnets.stream_second_moments(vg.mlp(6, 3, depth=20, width=64, residual=True), X)
    torch.manual_seed(0)
    small = vg.mlp(6, 3, depth=20, width=64, residual=True, residual_scale=1 / 20)
    q2 = resnets.stream_second_moments(small, X)
    assert q1[-1] / q1[0] > 1e6
    assert q2[-1] / q2[0] < resnets.stream_growth_bound(1 / 20, 20) * 1.5


def test_stream_grad_norms_against_autograd(flat):
    X, y = flat
    torch.manual_seed(0)
    net = vg.mlp(6, 3, depth=4, width=8, residual=True, residual_scale=0.5)
    norms = resnets.stream_grad_norms(net, X, y)
    # recompute by hand: run the blocks, keep every output, differentiate the loss by them
    h = X
    outs = []
    for block in net.blocks:
        h = block(h)
        outs.append(h)
    loss = torch.nn.functional.cross_entropy(net.output_layer(h), y)
    grads = torch.autograd.grad(loss, outs)
    np.testing.assert_allclose(norms, [float(g.norm()) for g in grads], rtol=1e-5)
    assert all(p.grad is None for p in net.parameters())


def test_stream_grad_norms_on_conv_net(images):
    X, y = images
    net = lesson06_convnets.conv_net(3, channels=4, residual=True)
    norms = resnets.stream_grad_norms(net, X, y)
    assert norms.shape == (3,) and np.all(norms > 0)


def test_stream_functions_reject_models_without_blocks(flat):
    X, y = flat
    with pytest.raises(TypeError, match="blocks"):
        resnets.stream_second_moments(nn.Linear(6, 3), X)
    with pytest.raises(TypeError, match="blocks"):
        resnets.stream_grad_norms(nn.Sequential(nn.Linear(6, 3)), X, y)
    with pytest.raises(TypeError, match="nn.Module"):
        resnets.stream_second_moments("net", X)


def test_stream_functions_reject_bad_data(flat):
    X, y = flat
    net = vg.mlp(6, 3, depth=2, width=4)
    bad = X.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        resnets.stream_second_moments(net, bad)
    with pytest.raises(ValueError, match="same number of rows"):
        resnets.stream_grad_norms(net, X, y[:10])
    with pytest.raises(TypeError):
        resnets.stream_second_moments(net, [[1.0] * 6])


def test_expected_next_moment_monte_carlo():
    """The formula is the expectation over W ~ N(0, 2/n): check it against many draws."""
    torch.manual_seed(0)
    n, s = 64, 0.7
    h = torch.relu(torch.randn(n)) + 0.1
    draws = []
    for _ in range(2000):
        W = torch.randn(n, n) * math.sqrt(2 / n)
        draws.append(float((h + s * torch.relu(W @ h)).pow(2).mean()))
    predicted = resnets.expected_next_moment(h, s)
    stderr = np.std(draws) / math.sqrt(len(draws))
    assert abs(np.mean(draws) - predicted) < 4 * stderr + 1e-3 * predicted


def test_expected_next_moment_special_cases():
    h = torch.tensor([1.0, 1.0, 1.0, 1.0])  # q = 1, m = 1
    assert resnets.expected_next_moment(h, 0.0) == pytest.approx(1.0)
    assert resnets.expected_next_moment(h, 1.0) == pytest.approx(2 + 2 / math.sqrt(math.pi))
    centred = torch.tensor([1.0, -1.0, 1.0, -1.0])  # m = 0: no cross term
    assert resnets.expected_next_moment(centred, 1.0) == pytest.approx(2.0)
    batch = torch.stack([h, 2 * h])  # per-sample values averaged
    expected = (resnets.expected_next_moment(h, 0.5) + resnets.expected_next_moment(2 * h, 0.5)) / 2
    assert resnets.expected_next_moment(batch, 0.5) == pytest.approx(expected)


def test_expected_next_moment_bad_inputs():
    with pytest.raises(ValueError, match="shape"):
        resnets.expected_next_moment(torch.ones(2, 3, 4))
    with pytest.raises(ValueError, match="residual_scale"):
        resnets.expected_next_moment(torch.ones(3), -1.0)
    with pytest.raises(TypeError):
        resnets.expected_next_moment([1.0, 2.0])
    with pytest.raises(ValueError, match="non-finite"):
        resnets.expected_next_moment(torch.tensor([1.0, float("inf")]))


def test_stream_growth_bound_values():
    g = 1 + 1 + 2 / math.sqrt(math.pi)
    assert resnets.stream_growth_bound(1.0, 3) == pytest.approx(g**2)
    assert resnets.stream_growth_bound(0.5, 1) == 1.0
    for L in (8, 64, 1024):
        assert resnets.stream_growth_bound(1 / L, L) < math.exp(1 / L + 2 / math.sqrt(math.pi))
    assert resnets.stream_growth_bound(64**-0.5, 64) > 10 * resnets.stream_growth_bound(8**-0.5, 8)
    with pytest.raises(ValueError, match="depth"):
        resnets.stream_growth_bound(0.1, 0)
    with pytest.raises(TypeError, match="residual_scale"):
        resnets.stream_growth_bound("0.1", 4)


# -- sweeps -------------------------------------------------------------------------------------


def test_first_layer_grads_matches_layer_grad_norms(flat):
    X, y = flat

    def build(d):
        return vg.mlp(6, 3, depth=d, width=8)

    out = resnets.first_layer_grads(build, [2, 5], (X, y), seeds=[0, 3])
    assert out.shape == (2, 2)
    torch.manual_seed(3)
    assert out[1, 1] == pytest.approx(vg.layer_grad_norms(build(5), X, y)[0])


def test_depth_sweep_shapes_and_repeatable(flat):
    X, y = flat

    def build(d):
        return vg.mlp(6, 3, depth=d, width=8, residual=True, residual_scale=1 / d)

    a = resnets.depth_sweep(build, [1, 3], (X, y), steps=5, lr=1e-2, seeds=[0, 1], eval_data=(X, y))
    b = resnets.depth_sweep(build, [1, 3], (X, y), steps=5, lr=1e-2, seeds=[0, 1], eval_data=(X, y))
    for name in ("first_grad", "train_loss", "accuracy", "test_accuracy"):
        assert getattr(a, name).shape == (2, 2)
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert a.median(name).shape == (2,)
    assert set(a.histories) == {(1, 0), (1, 1), (3, 0), (3, 1)}
    assert a.histories[(3, 1)].steps == 5
    assert np.all(np.isfinite(a.train_loss))
    np.testing.assert_allclose(a.accuracy, a.test_accuracy)  # same data for both


def test_depth_sweep_training_lowers_the_loss(flat):
    X, y = flat
    sweep = resnets.depth_sweep(
        lambda d: vg.mlp(6, 3, depth=d, width=16), [2], (X, y), steps=60, lr=1e-2, seeds=[0]
    )
    first = sweep.histories[(2, 0)].loss[0]
    assert sweep.train_loss[0, 0] < 0.8 * first
    assert np.isnan(sweep.test_accuracy).all()  # no eval_data


def test_batched_depth_sweeps_equal_depth_sweep_one_model_at_a_time(flat):
    X, y = flat
    archs = {
        "plain": lambda d: dict(),
        "residual 1/L": lambda d: dict(residual=True, residual_scale=1 / d),
        "plain + BN": lambda d: dict(norm="batch"),
        "residual + BN, tanh": lambda d: dict(residual=True, norm="batch", activation="tanh"),
    }
    # SGD with momentum: under Adam, the bias in front of a batch norm (whose true gradient is 0)
    # takes lr-sized steps driven by rounding noise of order 1e-9, so eval-mode outputs of two
    # runs that differ only in summation order drift apart (training-mode losses still agree)
    kw = dict(
        steps=25, lr=1e-2, seeds=[0, 1], batch_size=16, eval_data=(X, y), optimizer="momentum"
    )
    batched = resnets.mlp_depth_sweeps(archs, [2, 4], (X, y), width=8, **kw)
    assert list(batched) == list(archs)
    for name, arch in archs.items():
        alone = resnets.depth_sweep(
            lambda d, arch=arch: vg.mlp(6, 3, depth=d, width=8, **arch(d)), [2, 4], (X, y), **kw
        )
        got = batched[name]
        for field_name in ("first_grad", "train_loss", "accuracy", "test_accuracy"):
            np.testing.assert_allclose(
                getattr(got, field_name), getattr(alone, field_name), rtol=1e-4, err_msg=name
            )
        for key, h in alone.histories.items():
            np.testing.assert_allclose(got.histories[key].loss, h.loss, rtol=1e-4, atol=1e-6)


def test_batched_depth_sweeps_check_arguments(flat):
    with pytest.raises(TypeError, match="archs"):
        resnets.mlp_depth_sweeps({}, [2], flat, width=4, steps=1, lr=1e-2)
    with pytest.raises(TypeError, match="function"):
        resnets.mlp_depth_sweeps({"a": dict()}, [2], flat, width=4, steps=1, lr=1e-2)
    with pytest.raises(TypeError, match="must return a dict"):
        resnets.mlp_depth_sweeps({"a": lambda d: 3}, [2], flat, width=4, steps=1, lr=1e-2)
    with pytest.raises(ValueError, match="unknown key"):
        resnets.mlp_depth_sweeps(
            {"a": lambda d: dict(skip=1)}, [2], flat, width=4, steps=1, lr=1e-2
        )


def test_depth_sweep_marks_divergence_as_nan(flat):
    X, y = flat
    big = X * 1e30
    sweep = resnets.depth_sweep(
        lambda d: vg.mlp(6, 3, depth=d, width=8, init="normal", std=1e6),
        [3],
        (big, y),
        steps=3,
        lr=1.0,
        optimizer="sgd",
    )
    assert np.isnan(sweep.train_loss[0, 0])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(build="mlp"), TypeError, "build"),
        (dict(depths=[]), TypeError, "depths"),
        (dict(depths=3), TypeError, "depths"),
        (dict(depths=[0]), ValueError, "depths"),
        (dict(seeds=[]), TypeError, "seeds"),
        (dict(seeds=[-1]), ValueError, "seeds"),
        (dict(data=torch.zeros(3)), TypeError, "data"),
        (dict(steps=0), ValueError, "steps"),
        (dict(lr=-1.0), ValueError, "lr"),
        (dict(build=lambda d: "not a module"), TypeError, "nn.Module"),
    ],
)
def test_depth_sweep_bad_arguments(flat, kwargs, error, match):
    X, y = flat
    args = dict(
        build=lambda d: vg.mlp(6, 3, depth=d, width=4),
        depths=[1],
        data=(X, y),
        steps=2,
        lr=1e-3,
        seeds=[0],
    )
    args.update(kwargs)
    build, depths, data = args.pop("build"), args.pop("depths"), args.pop("data")
    with pytest.raises(error, match=match):
        resnets.depth_sweep(build, depths, data, **args)


def test_median_rejects_unknown_name(flat):
    X, y = flat
    sweep = resnets.depth_sweep(
        lambda d: vg.mlp(6, 3, depth=d, width=4), [1], (X, y), steps=1, lr=1e-3
    )
    with pytest.raises(ValueError, match="name"):
        sweep.median("loss")


def test_first_layer_grads_bad_arguments(flat):
    X, y = flat
    with pytest.raises(TypeError, match="data"):
        resnets.first_layer_grads(lambda d: vg.mlp(6, 3, depth=d, width=4), [1], X)
    with pytest.raises(TypeError, match="seeds"):
        resnets.first_layer_grads(lambda d: vg.mlp(6, 3, depth=d, width=4), [1], (X, y), seeds=0)


# -- one-pass profile and the lesson's explorer ------------------------------------------------


@pytest.mark.parametrize(
    "kw",
    [dict(), dict(residual=True, residual_scale=0.25), dict(residual=True, norm="batch")],
    ids=["plain", "residual", "residual+bn"],
)
def test_stream_profile_equals_the_three_separate_passes(flat, kw):
    X, y = flat
    torch.manual_seed(3)
    net = vg.mlp(6, 3, depth=5, width=8, **kw)
    profile = lesson06_explorer.stream_profile(net, X, y)
    np.testing.assert_allclose(
        profile.second_moments, resnets.stream_second_moments(net, X), rtol=1e-6
    )
    np.testing.assert_allclose(profile.grad_norms, resnets.stream_grad_norms(net, X, y), rtol=1e-6)
    assert profile.first_layer_grad == pytest.approx(vg.layer_grad_norms(net, X, y)[0], rel=1e-6)
    q, g = profile.second_moments, profile.grad_norms
    assert profile.forward_growth == pytest.approx(q[-1] / q[0])
    assert profile.backward_growth == pytest.approx(g[0] / g[-1])
    assert all(p.grad is None for p in net.parameters())


def test_branch_scale_values_and_bad_names():
    assert lesson06_explorer.branch_scale("1", 16) == 1.0
    assert lesson06_explorer.branch_scale("1/sqrt(depth)", 16) == pytest.approx(0.25)
    assert lesson06_explorer.branch_scale("1/depth", 16) == pytest.approx(1 / 16)
    with pytest.raises(ValueError, match="scale"):
        lesson06_explorer.branch_scale("2", 16)
    with pytest.raises(ValueError, match="depth"):
        lesson06_explorer.branch_scale("1/depth", 0)


def _expected_profile(X, y, depth, residual, norm, scale, device, width=8, seed=0):
    """The explorer's numbers, recomputed with the three separate measurement functions."""
    s = {"1": 1.0, "1/sqrt(depth)": depth**-0.5, "1/depth": 1 / depth}[scale]
    torch.manual_seed(seed)
    net = vg.mlp(
        X.shape[1],
        int(y.max()) + 1,
        depth=depth,
        width=width,
        norm=norm,
        residual=residual,
        residual_scale=s if residual else 1.0,
        device=device,
    )
    return (
        resnets.stream_second_moments(net, X),
        resnets.stream_grad_norms(net, X, y),
        vg.layer_grad_norms(net, X, y)[0],
    )


def _check_explorer_state(explorer, X, y, device):
    settings = explorer.values()
    assert explorer.state["settings"] == settings
    rtol = 1e-6 if device.type == "cpu" else 1e-4
    for key, config in (
        ("profile", settings),
        ("reference", dict(depth=settings["depth"], residual=False, norm=None, scale="1")),
    ):
        q, g, g1 = _expected_profile(X, y, device=device, **config)
        got = explorer.state[key]
        np.testing.assert_allclose(got.second_moments, q, rtol=rtol)
        np.testing.assert_allclose(got.grad_norms, g, rtol=rtol)
        assert got.first_layer_grad == pytest.approx(g1, rel=rtol)
    # the plot shows these numbers: grey reference first, then this network
    profile = explorer.state["profile"]
    for ax, values in zip(explorer.axes, (profile.second_moments, profile.grad_norms)):
        np.testing.assert_allclose(ax.lines[1].get_ydata(), np.where(values > 0, values, np.nan))
        assert ax.get_yscale() == "log"
    assert f"{profile.forward_growth:.3g}" in explorer.readout
    assert f"{profile.first_layer_grad:.3g}" in explorer.readout


def test_residual_stream_explorer_every_control(flat, device):
    X, y = flat
    explorer = lesson06_explorer.residual_stream_explorer(
        X, y, depth=6, max_depth=10, width=8, device=device
    )
    first_readout, first_png = explorer.readout, explorer.png
    assert explorer.error is None and explorer.redraws == 1
    _check_explorer_state(explorer, X, y, device)
    for change in (dict(depth=8), dict(scale="1"), dict(norm="batch"), dict(residual=False)):
        readout, png = explorer.readout, explorer.png
        explorer.set(**change)
        assert explorer.error is None, explorer.error
        assert explorer.png != png and explorer.readout != readout, change
        _check_explorer_state(explorer, X, y, device)
    assert "block 8" in explorer.readout
    explorer.reset()
    assert explorer.values() == dict(depth=6, residual=True, norm=None, scale="1/depth")
    assert explorer.readout == first_readout and explorer.png == first_png
    _check_explorer_state(explorer, X, y, device)


def test_residual_stream_explorer_caches_each_setting(flat):
    X, y = flat
    explorer = lesson06_explorer.residual_stream_explorer(X, y, depth=4, max_depth=8, width=8)
    first = explorer.state["profile"]
    explorer.set(depth=5)
    assert explorer.state["profile"] is not first
    explorer.set(depth=4)
    assert explorer.state["profile"] is first  # revisiting a setting does not recompute
    explorer.set(residual=False, scale="1")
    plain = explorer.state["profile"]
    explorer.set(scale="1/sqrt(depth)")  # no skips: the scale is unused, nothing to recompute
    assert explorer.state["profile"] is plain is explorer.state["reference"]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(depth=12, max_depth=10), ValueError, "depth"),
        (dict(depth=1), ValueError, "depth"),
        (dict(width=0), ValueError, "width"),
        (dict(norm="layer"), ValueError, "norm"),
        (dict(scale="1/2"), ValueError, "scale"),
        (dict(residual="yes"), TypeError, "residual"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(device="tpu"), ValueError, "prefer"),
    ],
)
def test_residual_stream_explorer_bad_arguments(flat, kwargs, error, match):
    X, y = flat
    with pytest.raises(error, match=match):
        lesson06_explorer.residual_stream_explorer(X, y, **kwargs)


def test_residual_stream_explorer_bad_data(flat):
    X, y = flat
    with pytest.raises(ValueError, match="same number of rows"):
        lesson06_explorer.residual_stream_explorer(X, y[:10])
    with pytest.raises(ValueError, match="shape"):
        lesson06_explorer.residual_stream_explorer(X.reshape(64, 2, 3), y)
    with pytest.raises(TypeError, match="X"):
        lesson06_explorer.residual_stream_explorer([[0.0] * 6] * 64, y)


def test_residual_stream_explorer_naive_skip_explodes_and_plain_is_the_reference():
    """What the lesson's explorer shows at depth 30: s = 1 explodes, no skips is the grey curve."""
    torch.manual_seed(0)
    X, y = torch.rand(128, 64), torch.randint(0, 10, (128,))
    explorer = lesson06_explorer.residual_stream_explorer(X, y, depth=30)
    explorer.set(scale="1")
    assert explorer.state["profile"].forward_growth > 1e10
    explorer.set(residual=False, scale="1/depth")
    np.testing.assert_array_equal(
        explorer.state["profile"].grad_norms, explorer.state["reference"].grad_norms
    )


def test_lesson06_plots_draw_every_figure(flat):
    """Each figure function of the lesson draws from numbers of the notebook's shapes."""
    import matplotlib.pyplot as plt

    from vgcourse.lessons import lesson06_plots as plots

    X, y = flat
    rng = np.random.default_rng(0)
    spectra = {"plain": [np.r_[1.0, 0.1, 0.0]], "residual, s=1/L": [np.ones(3)]}
    backward = {"plain": [rng.random(4) + 0.1], "residual, s=1/L": [np.ones(4)]}
    plots.plot_spectra_and_backward(spectra, backward, depth=4)
    left = plt.gcf().axes[0]
    assert left.get_yscale() == "log" and min(left.lines[0].get_ydata()) == plots.FLOOR
    growth = {"s = 1": rng.random((2, 3)) + 1, "s = 1/L": np.ones((2, 3))}
    plots.plot_stream_growth((4, 8), growth, {"s = 1/L": [2.0, 3.0]})
    assert len(plt.gcf().axes[0].lines) == 3
    sweep = resnets.depth_sweep(
        lambda d: vg.mlp(6, 3, depth=d, width=4), (1, 2), (X, y), steps=3, lr=1e-2, seeds=(0, 1)
    )
    plots.plot_depth_sweep((1, 2), {"net": rng.random((2, 2))}, (1, 2), {"net": sweep}, 3)
    assert [ax.get_yscale() for ax in plt.gcf().axes] == ["log", "log"]
    plots.plot_shallow_vs_deep({"net": sweep}, ("net",), 1, 2)
    plots.plot_cnn_training({"plain": sweep, "residual": sweep}, (1,))
    assert len(plt.gcf().axes[0].lines) == 4
    plt.close("all")
