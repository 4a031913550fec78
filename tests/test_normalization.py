import numpy as np
import pytest
import torch
from torch import nn

import vgcourse as vg
from vgcourse.lessons import lesson05_batch_norm as vn


def _net(norm="batch", seed=0):
    torch.manual_seed(seed)
    return vg.mlp(6, 3, depth=2, width=8, activation="sigmoid", norm=norm)


def test_preserve_buffers_restores_running_stats_and_mode():
    net = _net()
    net.eval()
    bn = net.blocks[0].norm
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with vn.preserve_buffers(net):
        net.train()
        net(torch.randn(16, 6) * 5 + 3)
        assert not torch.equal(bn.running_mean, before["blocks.0.norm.running_mean"])
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not net.training and not bn.training


def test_preserve_buffers_restores_after_an_exception():
    net = _net()
    before = net.blocks[0].norm.running_var.clone()
    with pytest.raises(RuntimeError), vn.preserve_buffers(net):
        net(torch.randn(8, 6) * 3)
        raise RuntimeError("boom")
    assert torch.equal(net.blocks[0].norm.running_var, before)


def test_percentiles_match_numpy_and_follow_training():
    net = _net()
    X = torch.randn(50, 6)
    rec = vn.PreactivationPercentiles(net, X, layer=-1, every=2)
    assert rec.steps.tolist() == [0] and rec.values.shape == (1, 3, 8)
    # by hand: the input of the last activation, with the batch statistics of X
    with vn.preserve_buffers(net), torch.no_grad():
        net.train()
        h = net.blocks[0](X)
        z = net.blocks[1].norm(net.blocks[1].linear(h))
    expected = np.percentile(z.numpy(), [15, 50, 85], axis=0)
    assert np.allclose(rec.values[0], expected, atol=1e-5)
    running = net.blocks[1].norm.running_mean.clone()
    X_train, y_train = torch.randn(40, 6), torch.randint(0, 3, (40,))
    vg.fit(net, (X_train, y_train), steps=6, lr=0.1, batch_size=20, callbacks=[rec], record=False)
    assert rec.steps.tolist() == [0, 2, 4, 6]
    assert rec.values.shape == (4, 3, 8)
    assert not np.allclose(rec.values[0], rec.values[-1])  # training moved the distribution
    # the recorder itself does not touch the running averages: only the 6 training steps do
    torch.manual_seed(0)
    twin = _net()
    vg.fit(twin, (X_train, y_train), steps=6, lr=0.1, batch_size=20, record=False)
    assert torch.allclose(twin.blocks[1].norm.running_mean, net.blocks[1].norm.running_mean)
    assert not torch.equal(running, net.blocks[1].norm.running_mean)


def test_percentiles_units_and_eval_mode():
    net = _net(norm=None)
    X = torch.randn(30, 6)
    rec = vn.PreactivationPercentiles(net, X, units=[1, 5], q=(50,), mode="eval")
    with torch.no_grad():
        z = net.blocks[-1].linear(net.blocks[0](X))[:, [1, 5]]
    assert rec.values.shape == (1, 1, 2)
    assert np.allclose(rec.values[0, 0], np.percentile(z.numpy(), 50, axis=0), atol=1e-6)


def test_percentiles_bad_inputs():
    net = _net()
    X = torch.randn(10, 6)
    with pytest.raises(TypeError, match="vgcourse.mlp"):
        vn.PreactivationPercentiles(nn.Sequential(nn.Linear(6, 3)), X)
    with pytest.raises(ValueError, match="layer"):
        vn.PreactivationPercentiles(net, X, layer=5)
    with pytest.raises(ValueError, match="every"):
        vn.PreactivationPercentiles(net, X, every=0)
    with pytest.raises(ValueError, match="mode"):
        vn.PreactivationPercentiles(net, X, mode="test")
    with pytest.raises(ValueError, match="q must"):
        vn.PreactivationPercentiles(net, X, q=(15, 150))
    with pytest.raises(ValueError, match="units"):
        vn.PreactivationPercentiles(net, X, units=[8])
    with pytest.raises(ValueError, match="non-finite"):
        vn.PreactivationPercentiles(net, torch.full((4, 6), float("nan")))
    with pytest.raises(TypeError, match="X must"):
        vn.PreactivationPercentiles(net, [[0.0] * 6])


def test_percentile_drift():
    values = np.zeros((4, 3, 2))
    values[:, 1, 0] = [0.0, 1.0, -2.0, 0.5]
    values[:, 0, 1] = [1.0, 1.0, 1.0, 4.0]
    drift = vn.percentile_drift(values)
    assert drift.shape == (3, 2)
    assert drift[1, 0] == 2.0 and drift[0, 1] == 3.0 and drift[2, 1] == 0.0
    assert vn.percentile_drift(values, start=2)[1, 0] == 2.5
    with pytest.raises(ValueError, match="shape"):
        vn.percentile_drift(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="start"):
        vn.percentile_drift(values, start=4)


def test_batch_dependence_train_eval_and_layer_norm():
    X = torch.randn(24, 6) * 2 + 1
    bn_net = _net("batch")
    assert vn.batch_dependence(bn_net, X, 4, train_mode=True) > 1e-3
    assert vn.batch_dependence(bn_net, X, 4, train_mode=False) < 1e-5
    assert vn.batch_dependence(_net("layer"), X, 1, train_mode=True) < 1e-5
    assert vn.batch_dependence(_net(None), X, 1, train_mode=True) < 1e-5
    before = bn_net.blocks[0].norm.running_mean.clone()
    vn.batch_dependence(bn_net, X, 3, train_mode=True)
    assert torch.equal(before, bn_net.blocks[0].norm.running_mean)  # buffers restored
    with pytest.raises(ValueError, match="more than 1 value"):
        vn.batch_dependence(bn_net, X, 1, train_mode=True)
    with pytest.raises(ValueError, match="chunk_size"):
        vn.batch_dependence(bn_net, X, 0, train_mode=True)
    with pytest.raises(TypeError, match="train_mode"):
        vn.batch_dependence(bn_net, X, 2, train_mode="yes")
    with pytest.raises(TypeError, match="nn.Module"):
        vn.batch_dependence("net", X, 2, train_mode=True)


def _blobs(n=120, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    X = torch.randn(n, 6, generator=g) * 0.5 + torch.eye(3, 6)[y] * 3
    return X, y


def test_batch_size_sweep_shapes_determinism_and_odd_sizes():
    # 121 = 60 * 2 + 1 samples: without the cut, batch size 2 would end an epoch on a batch of 1
    train, test = _blobs(121), _blobs(60, seed=1)

    def make():
        return vg.mlp(6, 3, depth=1, width=8, norm="batch")

    acc = vn.batch_size_sweep(
        make, train, test, batch_sizes=[2, 8], steps=20, lr=0.01, seeds=(0, 1)
    )
    assert acc.shape == (2, 2) and ((acc >= 0) & (acc <= 1)).all()
    again = vn.batch_size_sweep(
        make, train, test, batch_sizes=[2, 8], steps=20, lr=0.01, seeds=(0, 1)
    )
    assert np.array_equal(acc, again)
    by_epochs = vn.batch_size_sweep(make, train, test, batch_sizes=[8], epochs=2, lr=0.01)
    assert by_epochs.shape == (1, 1)
    # separable blobs: a few dozen steps at batch 16 learn them
    good = vn.batch_size_sweep(make, train, test, batch_sizes=[16], steps=60, lr=0.05)
    assert good[0, 0] > 0.9


def test_batch_size_sweep_bad_inputs():
    train, test = _blobs(), _blobs(30, seed=1)

    def make():
        return vg.mlp(6, 3, depth=1, width=4)

    with pytest.raises(ValueError, match="exactly one"):
        vn.batch_size_sweep(make, train, test, batch_sizes=[4], lr=0.01)
    with pytest.raises(ValueError, match="exactly one"):
        vn.batch_size_sweep(make, train, test, batch_sizes=[4], lr=0.01, steps=2, epochs=1)
    with pytest.raises(ValueError, match="batch_sizes"):
        vn.batch_size_sweep(make, train, test, batch_sizes=[1], lr=0.01, steps=2)
    with pytest.raises(ValueError, match="batch_sizes"):
        vn.batch_size_sweep(make, train, test, batch_sizes=[], lr=0.01, steps=2)
    with pytest.raises(ValueError, match="batch_sizes"):
        vn.batch_size_sweep(make, train, test, batch_sizes=[500], lr=0.01, steps=2)
    with pytest.raises(ValueError, match="seeds"):
        vn.batch_size_sweep(make, train, test, batch_sizes=[4], lr=0.01, steps=2, seeds=())
    with pytest.raises(ValueError, match="lr"):
        vn.batch_size_sweep(make, train, test, batch_sizes=[4], lr=-1.0, steps=2)
    with pytest.raises(TypeError, match="make_net"):
        vn.batch_size_sweep(make(), train, test, batch_sizes=[4], lr=0.01, steps=2)
    with pytest.raises(ValueError, match="same number of rows"):
        vn.batch_size_sweep(
            make, (train[0], train[1][:-1]), test, batch_sizes=[4], lr=0.01, steps=2
        )


# -- lesson 05's figures ---------------------------------------------------------------------


def _figure_axes():
    import matplotlib.pyplot as plt

    return plt.gcf().axes


def test_plot_gradient_parts_and_scale_invariance():
    from vgcourse.lessons import lesson05_plots as vp

    col, along = torch.full((4,), 3e-3), torch.full((4,), 1e-6)
    vp.plot_gradient_parts(col, along, torch.tensor([0.0, 1e-18, 2e-18, 0.0]), along)
    (ax,) = _figure_axes()
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "feature j"
    assert len(ax.patches) == 12  # three bars per feature
    assert min(p.get_height() for p in ax.patches) == pytest.approx(1e-20)  # exact 0 drawn at 1e-20
    scales = np.logspace(-2, 2, 5)
    rows = np.stack([np.full(5, 1e-4), np.full(5, 1e-5), 1 / scales], axis=1)
    vp.plot_scale_invariance(scales, {1e-5: rows, 1e-30: rows * 1e-9})
    left, right = _figure_axes()[-2:]
    assert left.get_xscale() == right.get_xscale() == "log"
    assert len(right.lines[0].get_xdata()) == 4  # a = 1, the reference, left out
    # one colour per epsilon in both panels
    assert left.lines[0].get_color() == right.lines[0].get_color() == right.lines[1].get_color()
    assert left.lines[1].get_color() != left.lines[0].get_color()


def test_plot_rescue_and_figure1_from_short_runs():
    from vgcourse.lessons import lesson05_plots as vp

    X, y = torch.randn(60, 6), torch.randint(0, 3, (60,))
    histories, recorders = {}, {}
    for name, norm in (("plain", None), ("BN", "batch")):
        net = _net(norm)
        rec = vn.PreactivationPercentiles(net, X[:30], every=5)
        histories[name] = vg.fit(
            net,
            (X, y),
            steps=20,
            lr=0.1,
            batch_size=20,
            eval_data=(X, y),
            eval_every=5,
            callbacks=[rec],
            progress=False,
        )
        recorders[name] = rec
    vp.plot_rescue(histories)
    left, right = _figure_axes()
    assert left.get_yscale() == "log" and left.get_xlabel().startswith("layer")
    assert "ln 2: guessing" in [t.get_text() for t in right.get_legend().get_texts()]
    vp.plot_figure1({k: [h, h] for k, h in histories.items()}, recorders, unit=1)
    acc, b, c = _figure_axes()[-3:]
    assert acc.get_ylim() == (0, 1) and len(acc.lines) == 4
    assert acc.lines[0].get_color() == acc.lines[1].get_color() != acc.lines[2].get_color()
    assert b.get_ylim() == c.get_ylim()  # (b) and (c) on one scale
    assert [line.get_linestyle() for line in b.lines] == ["--", "-", ":"]
    assert np.allclose(b.lines[1].get_ydata(), recorders["plain"].values[:, 1, 1])


def test_plot_batch_figures():
    from vgcourse.lessons import lesson05_plots as vp

    sizes = [2, 4, 8]
    vp.plot_batch_statistics(sizes, [0.7, 0.5, 0.35], [0.5, 0.75, 0.87])
    left, right = _figure_axes()
    assert left.get_xscale() == "log" and [t.get_text() for t in left.get_xticklabels()] == [
        "2",
        "4",
        "8",
    ]
    dependence = {
        ("batch norm", "train mode"): [10.0, 5.0],
        ("layer norm", "train mode"): [1e-7, 0.0],
    }
    vp.plot_batch_dependence(dependence, (2, 8))
    ax = _figure_axes()[-1]
    assert ax.get_yscale() == "log" and len(ax.patches) == 4
    assert min(p.get_height() for p in ax.patches) == pytest.approx(1e-9)
    sweep = {
        "batch": np.array([[0.2, 0.3], [0.9, 0.95]]),
        "layer": np.array([[0.8, 0.8], [0.9, 0.9]]),
    }
    vp.plot_batch_size_sweep(sweep, [2, 64], steps=10)
    ax = _figure_axes()[-1]
    assert ax.get_title() == "Same 10 steps at every batch size"
    assert ax.lines[0].get_color() == ax.lines[1].get_color() != ax.lines[2].get_color()
    vp.plot_mode_accuracy([2, 8], [0.6, 0.9], 0.97)
    ax = _figure_axes()[-1]
    assert len(ax.patches) == 2 and ax.get_ylim() == (0, 1)
