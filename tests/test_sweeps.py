import numpy as np
import pytest
import torch

import vgcourse as vg
from vgcourse import sweeps


@pytest.fixture(scope="module")
def moons():
    return vg.data.moons(120, 0.1, seed=0)


def alone(cfg, data, steps, optimizer, batch_size, loss="cross_entropy"):
    torch.manual_seed(cfg["seed"])
    n_out = 2 if loss == "cross_entropy" else 1
    net = vg.mlp(
        2,
        n_out,
        depth=cfg["depth"],
        width=cfg["width"],
        activation=cfg["activation"],
        init=cfg["init"],
        **(cfg["init_kw"] or {}),
    )
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


def test_groups_by_shape_and_chunks_by_memory(moons):
    configs = [dict(depth=d, width=w, seed=s) for d, w in [(2, 8), (3, 4)] for s in range(3)]
    result = sweeps.sweep(configs, moons, steps=5, batch_size=32, memory_budget=1, device="cpu")
    assert result.groups == 2 and result.chunks == 6
    assert [len(h.layer_names) for h in result.histories.values()] == [2, 2, 2, 3, 3, 3]
    big = sweeps.sweep(configs, moons, steps=5, batch_size=32, device="cpu")
    assert big.chunks == 2
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
