import numpy as np
import pytest
import torch

import vgcourse as vg
from vgcourse import sweeps


@pytest.fixture(scope="module")
def moons():
    return vg.data.moons(120, 0.1, seed=0)


def alone(cfg, data, steps, optimizer, batch_size, loss="cross_entropy", net_out=None):
    torch.manual_seed(cfg["seed"])
    n_out = 2 if loss == "cross_entropy" else 1
    net = vg.mlp(
        2,
        n_out,
        depth=cfg["depth"],
        width=cfg["width"],
        activation=cfg["activation"],
        init=cfg["init"],
        norm=cfg["norm"],
        residual=cfg["residual"],
        residual_scale=cfg["residual_scale"],
        **(cfg["init_kw"] or {}),
    )
    if net_out is not None:
        net_out.append(net)
    return vg.fit(
        net,
        data,
        steps=steps,
        lr=cfg["lr"],
        optimizer=optimizer,
        batch_size=batch_size,
        seed=cfg["data_seed"],
        loss=loss,
    )


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_batched_models_match_models_trained_alone(moons, optimizer):
    configs = sweeps.grid(activation=["sigmoid", "relu", "tanh"], seed=[0, 1], lr=[1e-2, 3e-2])
    for c in configs:
        c.update(depth=4, width=8, init="xavier_uniform")
    result = sweeps.sweep(
        configs, moons, steps=60, batch_size=16, optimizer=optimizer, device="cpu"
    )
    assert result.groups == 1 and len(result.histories) == 12
    for cfg in result.configs:
        h = alone(cfg, moons, 60, optimizer, 16)
        hb = result.histories[cfg["label"]]
        np.testing.assert_allclose(hb.loss, h.loss, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(hb.grad_norms, h.grad_norms, rtol=1e-3, atol=1e-9)


def test_every_activation_in_one_mixed_group_matches_training_alone(moons):
    names = [a for a in vg.ACTIVATIONS if a not in ("prelu", "swish")]
    configs = [
        dict(activation=a, depth=3, width=8, init="xavier_uniform", lr=1e-2, seed=i)
        for i, a in enumerate(names)
    ]
    result = sweeps.sweep(configs, moons, steps=40, batch_size=16, device="cpu")
    assert result.groups == 1 and result.chunks == 1
    for cfg in result.configs:
        h = alone(cfg, moons, 40, "adam", 16)
        hb = result.histories[cfg["label"]]
        np.testing.assert_allclose(hb.loss, h.loss, rtol=1e-4, atol=1e-6, err_msg=cfg["label"])
        np.testing.assert_allclose(hb.grad_norms, h.grad_norms, rtol=1e-3, atol=1e-9)


@pytest.mark.parametrize(
    "arch",
    [
        dict(residual=True, residual_scale=0.5),
        dict(norm="batch"),
        dict(norm="layer"),
        dict(norm="batch", residual=True),
    ],
    ids=["residual", "batch-norm", "layer-norm", "residual+batch-norm"],
)
def test_residual_and_normalized_models_match_training_alone(moons, arch):
    configs = [
        dict(activation=a, depth=4, width=8, lr=1e-2, seed=s, **arch)
        for a in ("relu", "tanh")
        for s in (0, 1)
    ]
    # a plain twin of every configuration, trained in the same group (skip mask 0)
    configs += [
        dict(c, residual=False, seed=c["seed"] + 10) for c in configs if arch.get("residual")
    ]
    result = sweeps.sweep(
        configs, moons, steps=30, batch_size=16, optimizer="momentum", device="cpu"
    )
    assert result.groups == 1
    for cfg in result.configs:
        nets = []
        h = alone(cfg, moons, 30, "momentum", 16, net_out=nets)
        hb = result.histories[cfg["label"]]
        np.testing.assert_allclose(hb.loss, h.loss, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(hb.grad_norms, h.grad_norms, rtol=1e-3, atol=1e-9)
        # the trained model comes back as an ordinary module with the same weights and statistics
        trained = result.model(cfg["label"])
        for p_batched, p_alone in zip(trained.state_dict().values(), nets[0].state_dict().values()):
            np.testing.assert_allclose(p_batched.numpy(), p_alone.numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(
            vg.evaluate(trained, moons)[0], vg.evaluate(nets[0], moons)[0], rtol=1e-4
        )


def test_eval_uses_running_statistics_like_model_eval(moons):
    configs = [dict(depth=3, width=8, norm="batch", seed=s, lr=1e-2) for s in (0, 1)]
    result = sweeps.sweep(configs, moons, steps=20, batch_size=16, eval_data=moons, device="cpu")
    for cfg in result.configs:
        loss, acc = vg.evaluate(result.model(cfg["label"]), moons)
        assert result.final_eval[cfg["label"]] == pytest.approx((loss, acc), rel=1e-4)


def test_models_are_kept_only_when_asked(moons):
    result = sweeps.sweep([dict(depth=2, width=4)], moons, steps=2, keep_models=False)
    with pytest.raises(ValueError, match="keep_models"):
        result.model("depth=2 width=4")
    result = sweeps.sweep([dict(depth=2, width=4)], moons, steps=2)
    with pytest.raises(ValueError, match="unknown configuration label"):
        result.model("nope")


def test_groups_by_shape_and_chunks_by_memory(moons):
    configs = [dict(depth=d, width=w, seed=s) for d, w in [(2, 8), (3, 4)] for s in range(3)]
    result = sweeps.sweep(configs, moons, steps=5, batch_size=32, memory_budget=1, device="cpu")
    assert result.groups == 2 and result.chunks == 6
    assert (
        "6 chunk(s)" in result.summary() and result.peak_bytes > result.memory_budget
    )  # 1 model > 1 byte
    assert [len(h.layer_names) for h in result.histories.values()] == [2, 2, 2, 3, 3, 3]
    big = sweeps.sweep(configs, moons, steps=5, batch_size=32, device="cpu")
    assert big.chunks == 2 and 0 < big.peak_bytes <= big.memory_budget
    # a budget of two models' worth splits a group of three into two chunks
    one = sweeps.sweep(configs[:3], moons, steps=1, batch_size=32, memory_budget=1)
    per_model = one.peak_bytes  # chunks of one model: the estimate for one model of this group
    halves = sweeps.sweep(configs[:3], moons, steps=5, batch_size=32, memory_budget=2 * per_model)
    assert halves.chunks == 2 and halves.peak_bytes <= halves.memory_budget
    for label, h in result.histories.items():
        np.testing.assert_allclose(h.loss, big.histories[label].loss, rtol=1e-5)


def test_divergence_is_per_model(moons):
    configs = [
        dict(
            depth=3,
            width=16,
            activation="relu",
            init="normal",
            init_kw={"std": 3.0},
            lr=lr,
            label=f"lr={lr}",
        )
        for lr in (1e-3, 50.0)
    ]
    result = sweeps.sweep(configs, moons, steps=100, optimizer="sgd", device="cpu")
    assert result.histories["lr=0.001"].diverged_at is None
    bad = result.histories["lr=50.0"]
    assert bad.diverged_at is not None and len(bad.loss) == bad.diverged_at + 1
    h = alone(result.configs[1], moons, 100, "sgd", None)
    assert h.diverged_at == bad.diverged_at


def test_eval_table_where_and_plots(moons):
    configs = sweeps.grid(activation=["relu", "tanh"], lr=[1e-2])
    result = sweeps.sweep(configs, moons, steps=40, eval_data=moons, eval_every=20, device="cpu")
    rows = result.table()
    assert len(rows) == 2 and all(0 <= r["eval_accuracy"] <= 1 for r in rows)
    assert list(result.where(activation="relu")) == ["activation=relu lr=0.01"]
    assert result.histories["activation=tanh lr=0.01"].eval_steps == [20, 40]
    ax = vg.plots.plot_loss(result.histories)
    assert len(ax.lines) == 2


def test_bce_and_mse_losses(moons):
    X, y = moons
    r = sweeps.sweep([dict(depth=2, width=8)], (X, y), steps=20, loss="bce", device="cpu")
    h = alone(r.configs[0], (X, y), 20, "adam", None, loss="bce")
    np.testing.assert_allclose(r.histories[r.configs[0]["label"]].loss, h.loss, rtol=1e-4)
    r = sweeps.sweep([dict(depth=2, width=8)], (X, y.float()), steps=5, loss="mse", device="cpu")
    assert np.isfinite(next(iter(r.histories.values())).loss).all()


@pytest.mark.parametrize(
    "configs, kwargs, exc, match",
    [
        ([], {}, TypeError, "non-empty"),
        ([dict(colour="red")], {}, ValueError, "unknown key"),
        ([dict(depth=0)], {}, ValueError, "depth"),
        ([dict(activation="relux")], {}, ValueError, "activation"),
        ([dict(init="he")], {}, ValueError, "init"),
        ([dict(lr=0)], {}, ValueError, "lr"),
        ([dict(label="a"), dict(label="a")], {}, ValueError, "unique"),
        ([dict()], {"optimizer": "rmsprop"}, ValueError, "optimizer"),
        ([dict()], {"steps": 0}, ValueError, "steps"),
        ([dict(activation="prelu")], {}, ValueError, "prelu"),
        ([dict(norm="group")], {}, ValueError, "norm"),
        ([dict(residual="yes")], {}, TypeError, "residual"),
        ([dict(residual_scale=0)], {}, ValueError, "residual_scale"),
        ([dict(norm="batch")], {"batch_size": 119}, ValueError, "at least 2 samples"),
        ([dict()], {"record": 1}, TypeError, "record"),
    ],
)
def test_bad_input(moons, configs, kwargs, exc, match):
    kw = {"steps": 2, **kwargs}
    with pytest.raises(exc, match=match):
        sweeps.sweep(configs, moons, **kw)


def test_grid_rejects_scalars():
    with pytest.raises(TypeError, match="list"):
        sweeps.grid(activation="relu")


def test_sweep_on_every_device(moons, device):
    r = sweeps.sweep([dict(depth=2, width=8)], moons, steps=3, device=device)
    assert r.device.startswith(device.type)


def test_build_model_is_the_seeded_starting_point():
    cfg = dict(depth=2, width=5, activation="prelu", init="xavier_normal", seed=3)
    net = sweeps.build_model(cfg, 4, 3)
    torch.manual_seed(3)
    ref = vg.mlp(4, 3, depth=2, width=5, activation="prelu", init="xavier_normal")
    for a, b in zip(net.state_dict().values(), ref.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="in_features"):
        sweeps.build_model(cfg, 0, 3)


def test_residual_batch_norm_losses_match_under_adam(moons):
    # Adam amplifies the rounding noise in the (zero) gradient of a bias before batch norm, which
    # moves eval-mode outputs; the training losses, which batch statistics make immune to it, agree
    configs = [
        dict(depth=4, width=8, lr=3e-3, seed=s, norm="batch", residual=r)
        for s in (0, 1)
        for r in (False, True)
    ]
    result = sweeps.sweep(configs, moons, steps=30, batch_size=16, device="cpu")
    for cfg in result.configs:
        h = alone(cfg, moons, 30, "adam", 16)
        np.testing.assert_allclose(
            result.histories[cfg["label"]].loss, h.loss, rtol=1e-4, atol=1e-6
        )
