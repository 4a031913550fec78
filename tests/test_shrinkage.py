"""Tests of vgcourse.lessons.lesson02_shrinkage: chain-rule products, weight-change records, contracting maps."""

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import vgcourse as vg
from vgcourse.jacobians import layer_jacobians, singular_values
from vgcourse.lessons import lesson02_latch as contracting
from vgcourse.lessons import lesson02_plots as plots
from vgcourse.lessons import lesson02_seed_experiment as seed_experiment
from vgcourse.lessons import lesson02_seed_explorer as seed_explorer
from vgcourse.lessons import lesson02_shrinkage as shrinkage
from vgcourse.lessons import lesson02_weight_change as weight_change


# -- products of chain-rule factors ---------------------------------------------------------------
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "silu"])
def test_chain_factors_match_autograd(activation):
    weights, biases = [1.5, -0.7, 2.0, 0.3], [0.1, -0.2, 0.0, 0.5]
    factors, product = shrinkage.chain_factors(0.4, weights, biases, activation)
    x = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
    h = x
    for w, b in zip(weights, biases):
        h = vg.activations.activation(activation)(w * h + b)
    (expected,) = torch.autograd.grad(h, x)
    assert factors.shape == (4,) and factors.dtype == torch.float64
    assert float(product) == pytest.approx(float(expected), rel=1e-12, abs=1e-300)
    assert float(product) == pytest.approx(float(torch.prod(factors)), rel=1e-14)


def test_chain_factors_sigmoid_bound_and_default_biases():
    factors, product = shrinkage.chain_factors(0.0, [1.0] * 5)
    # zero biases and x = 0: a_1 = 0 gives exactly 1/4, later a_i = sigma(.) > 0 give less
    assert float(factors[0]) == pytest.approx(0.25)
    assert (factors.abs() <= 0.25).all() and abs(float(product)) <= 0.25**5
    assert shrinkage.derivative_bound("sigmoid", 5) == pytest.approx(0.25**5)


def test_chain_factors_rejects_bad_input():
    with pytest.raises(ValueError, match="biases"):
        shrinkage.chain_factors(0.0, [1.0, 2.0], [0.0])
    with pytest.raises(ValueError, match="weights"):
        shrinkage.chain_factors(0.0, [])
    with pytest.raises(TypeError, match="x must be a real number"):
        shrinkage.chain_factors("0", [1.0])
    with pytest.raises(ValueError, match="x must be finite"):
        shrinkage.chain_factors(float("nan"), [1.0])
    with pytest.raises(ValueError, match="activation"):
        shrinkage.chain_factors(0.0, [1.0], activation="sigmoidd")
    with pytest.raises(ValueError, match="non-finite"):
        shrinkage.chain_factors(0.0, [1.0, float("inf")])


def test_derivative_bound_values_and_errors():
    assert shrinkage.derivative_bound("sigmoid", 0) == 1.0
    assert shrinkage.derivative_bound("sigmoid", 3, weight_bound=2.0) == pytest.approx(0.125)
    assert shrinkage.derivative_bound("tanh", 10) == 1.0
    with pytest.raises(ValueError, match="n must be an integer >= 0"):
        shrinkage.derivative_bound("sigmoid", -1)
    with pytest.raises(TypeError, match="n must be an integer"):
        shrinkage.derivative_bound("sigmoid", 2.5)
    with pytest.raises(ValueError, match="weight_bound"):
        shrinkage.derivative_bound("sigmoid", 2, weight_bound=0.0)


@pytest.mark.parametrize(
    "kw",
    [
        dict(activation="sigmoid", init="xavier_uniform"),
        dict(activation="relu", init="kaiming_normal", residual=True),
        dict(activation="leaky_relu", init="orthogonal"),
        dict(activation="tanh", init="xavier_normal", norm="layer"),
    ],
)
def test_prefix_singular_values_match_autograd_jacobians(kw):
    torch.manual_seed(0)
    net = vg.mlp(3, 2, depth=5, width=6, **kw).double()
    inputs = torch.randn(4, 3, dtype=torch.float64)
    got = shrinkage.prefix_singular_values(net, inputs)
    assert got.shape == (4, 5, 3)
    for n, x in enumerate(inputs):
        product = None
        for layer, J in enumerate(layer_jacobians(net, x)):
            product = J if product is None else J @ product
            np.testing.assert_allclose(got[n, layer], singular_values(product).numpy(), rtol=1e-9)


def test_prefix_singular_values_errors():
    net = vg.mlp(2, 1, depth=2, width=4)
    with pytest.raises(ValueError, match="2 dimensions"):
        shrinkage.prefix_singular_values(net, torch.zeros(2))
    with pytest.raises(TypeError, match="vgcourse.mlp"):
        shrinkage.prefix_singular_values(torch.nn.Linear(2, 2), torch.zeros(1, 2))


# -- what training did to each layer -------------------------------------------------------------
def test_relative_change_values_and_errors():
    b = [torch.ones(2, 3), torch.full((4, 1), 2.0), torch.zeros(2, 2)]
    a = [torch.ones(2, 3) * 1.5, torch.full((4, 1), 2.0), torch.zeros(2, 2)]
    np.testing.assert_allclose(weight_change.relative_change(b, a), [0.5, 0.0, 0.0])
    assert weight_change.relative_change(torch.zeros(2), torch.ones(2))[0] == math.inf
    assert weight_change.relative_change(torch.ones(2), torch.zeros(2))[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="same number of layers"):
        weight_change.relative_change(b, a[:2])
    with pytest.raises(ValueError, match="shape"):
        weight_change.relative_change([torch.ones(2, 3)], [torch.ones(3, 2)])
    with pytest.raises(TypeError, match="list of tensors"):
        weight_change.relative_change("weights", a)
    with pytest.raises(ValueError, match="non-finite"):
        weight_change.relative_change([torch.tensor([float("nan")])], [torch.ones(1)])


def test_tracked_weights_and_snapshot():
    net = vg.mlp(2, 3, depth=3, width=5)
    names = [n for n, _ in weight_change.tracked_weights(net)]
    assert names == ["hidden[0]", "hidden[1]", "hidden[2]", "output"]
    assert len(weight_change.tracked_weights(net, include_output=False)) == 3
    snap = weight_change.snapshot(net)
    assert [tuple(s.shape) for s in snap] == [(5, 2), (5, 5), (5, 5), (3, 5)]
    with torch.no_grad():
        net.hidden_layers[0].weight.add_(1.0)
    assert not torch.equal(snap[0], net.hidden_layers[0].weight)  # a copy, not a view
    with pytest.raises(TypeError, match="nn.Module"):
        weight_change.tracked_weights("net")
    with pytest.raises(TypeError, match="include_output"):
        weight_change.tracked_weights(net, include_output=1)


def _train(net, steps, callbacks, lr=1e-2, optimizer="sgd"):
    X, y = vg.data.moons(64, 0.1, seed=0)
    return vg.fit(
        net,
        (X, y),
        steps=steps,
        lr=lr,
        optimizer=optimizer,
        batch_size=16,
        callbacks=callbacks,
        progress=False,
    )


def test_weight_recorder_matches_snapshots():
    torch.manual_seed(0)
    net = vg.mlp(2, 2, depth=3, width=4, activation="tanh")
    before = weight_change.snapshot(net)
    rec = weight_change.WeightRecorder(net)
    history = _train(net, 12, [rec], optimizer="adam")
    after = weight_change.snapshot(net)
    assert rec.steps == list(range(13)) and len(rec.losses) == 12
    np.testing.assert_allclose(rec.losses, history.loss, rtol=1e-6)
    np.testing.assert_allclose(
        rec.relative_change(), weight_change.relative_change(before, after), rtol=1e-5
    )
    assert torch.equal(rec.layer(0)[0].reshape(4, 2), before[0])
    assert torch.equal(rec.layer(-1)[-1].reshape(2, 4), after[-1])
    ratios = rec.update_ratios()
    assert ratios.shape == (12, 4) and (ratios > 0).all()
    # one step's update ratio, computed by hand from two consecutive snapshots
    w = rec.layer(1)
    expected = float((w[5] - w[4]).norm() / w[4].norm())
    assert ratios[4, 1] == pytest.approx(expected, rel=1e-6)
    assert rec.weight_norms().shape == (13, 4) and rec.mean_abs().shape == (13, 4)
    assert rec.weight_norms()[0, 0] == pytest.approx(float(before[0].norm()), rel=1e-6)
    traj = rec.trajectories(0, k=3)
    assert traj.shape == (13, 3)
    assert rec.trajectories(0, k=100).shape == (13, 8)  # at most the layer's 8 weights
    assert rec.relative_change(step=0) == pytest.approx(np.zeros(4))


def test_weight_recorder_every_and_errors():
    torch.manual_seed(0)
    net = vg.mlp(2, 2, depth=2, width=3)
    rec = weight_change.WeightRecorder(net, every=4)
    _train(net, 10, [rec])
    assert rec.steps == [0, 1, 4, 8]
    rec.finish(net)
    assert rec.steps == [0, 1, 4, 8, 10]
    rec.finish(net)  # idempotent
    assert rec.steps[-1] == 10 and len(rec.steps) == 5
    with pytest.raises(ValueError, match="was not recorded"):
        rec.relative_change(step=3)
    with pytest.raises(ValueError, match="index must be <"):
        rec.layer(3)
    with pytest.raises(ValueError, match="every must be an integer >= 1"):
        weight_change.WeightRecorder(net, every=0)
    other = vg.mlp(2, 2, depth=2, width=5)
    with pytest.raises(ValueError, match="changed shape"):
        rec(11, other, 0.0)  # step 12 is recorded
    assert "WeightRecorder" in repr(rec)


def test_sgd_freezes_first_layer_of_deep_sigmoid_net():
    """The lesson's central measurement: under SGD the first layer of a deep sigmoid net barely moves."""
    torch.manual_seed(0)
    net = vg.mlp(2, 2, depth=9, width=10, activation="sigmoid", init="xavier_uniform")
    rec = weight_change.WeightRecorder(net)
    _train(net, 50, [rec], lr=1e-1)
    change = rec.relative_change()
    assert change[0] < 1e-4 * change[-1]


def test_representation_spread_and_recorder():
    torch.manual_seed(0)
    X = torch.randn(50, 2)
    deep = vg.mlp(2, 2, depth=9, width=10, activation="sigmoid", init="xavier_uniform")
    spread = weight_change.representation_spread(deep, X)
    assert spread.shape == (9,) and spread[-1] < 1e-3 * spread[0]
    # by hand for the first layer
    with torch.no_grad():
        h1 = torch.sigmoid(deep.hidden_layers[0](X))
    assert spread[0] == pytest.approx(float(h1.double().std(0).mean()), rel=1e-5)
    rec = weight_change.SpreadRecorder(deep, X, every=5)
    _train(deep, 10, [rec])
    assert rec.steps == [0, 5, 10] and rec.spread.shape == (3, 9)
    with pytest.raises(TypeError, match="forward_hidden"):
        weight_change.representation_spread(torch.nn.Linear(2, 2), X)
    with pytest.raises(ValueError, match="at least 2 samples"):
        weight_change.representation_spread(deep, X[:1])


# -- contracting maps ------------------------------------------------------------------------------
@pytest.mark.parametrize("w", [0.5, 1.0, 1.5, 2.0, 3.0])
def test_latch_fixed_point_and_rate(w):
    a = contracting.latch_fixed_point(w)
    assert a == pytest.approx(w * math.tanh(a), abs=1e-12)
    if w <= 1:
        assert a == 0.0 and contracting.latch_rate(w) == pytest.approx(w)
    else:
        assert a > 0 and 0 < contracting.latch_rate(w) < 1


def test_latch_derivatives_match_autograd_and_decay_rate():
    a0 = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    inputs = torch.tensor([0.1, -0.2, 0.0, 0.3, 0.0], dtype=torch.float64)
    a = a0
    for h in inputs:
        a = 2.0 * torch.tanh(a) + h
    (expected,) = torch.autograd.grad(a, a0)
    states, derivs = contracting.latch_derivatives(2.0, 0.3, 5, inputs)
    assert states.shape == (6,) and derivs[0] == 1.0
    assert float(states[-1]) == pytest.approx(float(a.detach()))
    assert float(derivs[-1]) == pytest.approx(float(expected), rel=1e-12)
    _, d = contracting.latch_derivatives(2.0, 1.0, 60)
    assert shrinkage.decay_rate(d.abs(), start=20) == pytest.approx(
        contracting.latch_rate(2.0), rel=1e-6
    )


def test_latch_survival_trade_off():
    weak = contracting.latch_survival(1.05, 0.3, 50, n_trials=400)
    strong = contracting.latch_survival(3.0, 0.3, 50, n_trials=400)
    assert strong == 1.0 and weak < 0.8
    assert contracting.latch_survival(2.0, 0.0, 10, n_trials=5) == 1.0
    assert contracting.latch_survival(1.5, 0.3, 20, seed=3) == contracting.latch_survival(
        1.5, 0.3, 20, seed=3
    )


def test_latch_errors():
    with pytest.raises(ValueError, match="w must be a finite number > 0"):
        contracting.latch_fixed_point(-1.0)
    with pytest.raises(TypeError, match="w must be a real number"):
        contracting.latch_rate("2")
    with pytest.raises(ValueError, match="T must be an integer >= 1"):
        contracting.latch_derivatives(2.0, 1.0, 0)
    with pytest.raises(ValueError, match="T=3 entries"):
        contracting.latch_derivatives(2.0, 1.0, 3, torch.zeros(2))
    with pytest.raises(ValueError, match="noise_std"):
        contracting.latch_survival(2.0, -0.1, 5)
    with pytest.raises(ValueError, match="n_trials"):
        contracting.latch_survival(2.0, 0.1, 5, n_trials=0)


def test_rnn_jacobian_norms_and_fixed_point_rate():
    g = torch.Generator().manual_seed(0)
    n = 12
    W = 0.9 * torch.nn.init.orthogonal_(torch.empty(n, n, dtype=torch.float64), generator=g)
    b = 0.5 * torch.randn(n, generator=g, dtype=torch.float64)
    h0 = torch.randn(n, generator=g, dtype=torch.float64)
    norms, hT = contracting.rnn_jacobian_norms(W, h0, 80, b=b)
    assert norms.shape == (81,) and norms[0] == 1.0
    assert (norms <= 0.9 ** np.arange(81) * (1 + 1e-9)).all()

    def step(v):
        return torch.tanh(W @ v + b)

    J3 = torch.autograd.functional.jacobian(lambda v: step(step(step(v))), h0)
    assert norms[3] == pytest.approx(float(torch.linalg.matrix_norm(J3, 2)), rel=1e-10)
    rho, h_star = contracting.rnn_fixed_point_rate(W, h0, b)
    assert torch.allclose(h_star, step(h_star), atol=1e-12)
    assert shrinkage.decay_rate(norms, start=40) == pytest.approx(rho, rel=1e-2)
    assert torch.allclose(hT, h_star, atol=1e-6)


def test_rnn_errors():
    W = torch.eye(3, dtype=torch.float64)
    with pytest.raises(ValueError, match="square"):
        contracting.rnn_jacobian_norms(torch.zeros(3, 2), torch.zeros(3), 5)
    with pytest.raises(ValueError, match="h0 must have 3 entries"):
        contracting.rnn_jacobian_norms(W, torch.zeros(2), 5)
    with pytest.raises(ValueError, match="b must have 3 entries"):
        contracting.rnn_fixed_point_rate(W, torch.zeros(3), b=torch.zeros(4))
    with pytest.raises(ValueError, match="2 dimensions"):
        contracting.rnn_fixed_point_rate(torch.zeros(3), torch.zeros(3))


def test_decay_rate():
    assert shrinkage.decay_rate(0.5 ** np.arange(10)) == pytest.approx(0.5)
    assert shrinkage.decay_rate(3.0 * 2.0 ** np.arange(10), start=4) == pytest.approx(2.0)
    # zeros and non-finite values are skipped
    assert shrinkage.decay_rate([1.0, 0.0, 0.25, np.nan, 0.0625]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="at least 2 positive"):
        shrinkage.decay_rate([1.0, 0.0])
    with pytest.raises(ValueError, match="start"):
        shrinkage.decay_rate([1.0, 0.5], start=-1)


# -- the seed experiment and its explorer ---------------------------------------------------------
def test_relative_changes_equal_relative_change_at_every_step():
    torch.manual_seed(0)
    net = vg.mlp(2, 2, depth=3, width=4, activation="tanh")
    rec = weight_change.WeightRecorder(net)
    _train(net, 9, [rec], optimizer="adam")
    table = rec.relative_changes()
    assert table.shape == (10, 4) and (table[0] == 0).all()
    for step in rec.steps:
        np.testing.assert_allclose(table[step], rec.relative_change(step=step), rtol=1e-12)


def _seed_data():
    X, y = vg.data.moons(80, 0.1, seed=0)
    return vg.data.train_test_split(X, y, 0.25, seed=0)


def _seed_experiment(**kw):
    train, test = _seed_data()
    kw = dict(depth=3, width=4, batch_size=16, eval_every=10, device="cpu", **kw)
    return seed_experiment.SeedExperiment(train, test, **kw)


def _plain_seed_run(activation, optimizer, lr, seed, steps):
    """The seed network trained with vgcourse.fit directly: the weights before and after."""
    (X, y), test = _seed_data()
    torch.manual_seed(seed)
    net = vg.mlp(2, 1, depth=3, width=4, activation=activation, init="xavier_uniform")
    before = weight_change.snapshot(net)
    history = vg.fit(
        net,
        (X, y),
        steps=steps,
        lr=lr,
        optimizer=seed_experiment.SEED_OPTIMIZERS[optimizer],
        batch_size=16,
        loss="bce",
        seed=seed,
        eval_data=test,
        eval_every=10,
        progress=False,
    )
    return weight_change.relative_change(before, weight_change.snapshot(net)), history


def test_seed_experiment_runs_are_cached_and_prefixes_are_exact():
    experiment = _seed_experiment()
    run = experiment.run("sigmoid", "adam", 1e-2, 0, 20)
    net, history, weights, spread = run
    assert experiment.run("sigmoid", "adam", 0.01, 0, 20) is run  # cached
    assert history.steps == 20 and weights.steps == list(range(21)) and spread.steps == [0, 10, 20]
    assert net.hidden_layers[0].weight.device.type == "cpu"
    change, plain = _plain_seed_run("sigmoid", "adam", 1e-2, 0, 20)
    np.testing.assert_allclose(weights.relative_change(), change, rtol=1e-6)
    np.testing.assert_array_equal(history.loss, plain.loss)
    # a 10-step view read off the cached 20-step run equals a real 10-step run, bit for bit
    view = experiment.curves("sigmoid", "adam", 1e-2, 0, 10)
    assert len(experiment._runs) == 1, "the 10-step view should not train a new run"
    short_change, short = _plain_seed_run("sigmoid", "adam", 1e-2, 0, 10)
    assert view.steps == 10 and view.change.shape == (11, 4)
    np.testing.assert_allclose(view.change[10], short_change, rtol=1e-6)
    np.testing.assert_array_equal(view.loss, short.loss)
    assert view.final_loss == short.final_loss
    assert view.test_accuracy == short.eval_accuracy[-1]
    # a step with no recorded test accuracy is trained on its own
    odd = experiment.curves("sigmoid", "adam", 1e-2, 0, 15)
    assert len(experiment._runs) == 2 and odd.steps == 15
    assert "cached runs=2" in repr(experiment)


def test_seed_experiment_optimizers_and_cache_limit():
    experiment = _seed_experiment(cache_size=2)
    sgd = experiment.run("sigmoid", "sgd", 1e-3, 0, 5)
    keras = experiment.run("sigmoid", "adam-keras", 1e-3, 0, 5)
    torch_adam = experiment.run("sigmoid", "adam", 1e-3, 0, 5)
    assert len(experiment._runs) == 2 and experiment.run("sigmoid", "sgd", 1e-3, 0, 5) is not sgd
    opt = seed_experiment.SEED_OPTIMIZERS["adam-keras"](
        [torch.zeros(1, requires_grad=True)], lr=0.1
    )
    assert isinstance(opt, torch.optim.Adam) and opt.defaults["eps"] == 1e-7  # Keras' epsilon
    # Keras' larger epsilon damps the tiny first-layer gradients: a smaller first-layer change
    assert keras.weights.relative_change()[0] < torch_adam.weights.relative_change()[0]
    # SGD scales the step with the (small) gradient, Adam does not
    assert sgd.weights.relative_change()[0] < 1e-2 * keras.weights.relative_change()[0]


def test_seed_experiment_on_every_device(device):
    train, test = _seed_data()
    experiment = seed_experiment.SeedExperiment(
        train, test, depth=3, width=4, batch_size=16, eval_every=10, device=device
    )
    net, history, weights, _ = experiment.run("sigmoid", "adam", 1e-2, 0, 10)
    assert next(net.parameters()).device.type == device.type
    change, plain = _plain_seed_run("sigmoid", "adam", 1e-2, 0, 10)  # on the CPU
    np.testing.assert_allclose(weights.relative_change(), change, rtol=1e-4)
    np.testing.assert_allclose(history.loss, plain.loss, rtol=1e-4)


def test_seed_experiment_rejects_bad_arguments():
    train, test = _seed_data()
    with pytest.raises(TypeError, match="train must be a pair"):
        seed_experiment.SeedExperiment(train[0])
    with pytest.raises(TypeError, match="test must be a pair"):
        seed_experiment.SeedExperiment(train, test[0])
    with pytest.raises(ValueError, match="same number of rows"):
        seed_experiment.SeedExperiment((train[0], train[1][:5]))
    with pytest.raises(ValueError, match="depth must be an integer >= 1"):
        seed_experiment.SeedExperiment(train, depth=0)
    experiment = seed_experiment.SeedExperiment(train, device="cpu")
    assert experiment.eval_every == vg.epochs_to_steps(100, len(train[0]), 32)
    with pytest.raises(ValueError, match="optimizer must be one of 'adam', 'adam-keras', 'sgd'"):
        experiment.run(optimizer="rmsprop")
    with pytest.raises(ValueError, match="activation"):
        experiment.run(activation="sigmoidd")
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        experiment.curves(lr=0.0)
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        experiment.run(steps=0)


@pytest.fixture(scope="module")
def seed_explorer_setup():
    experiment = _seed_experiment()
    explorer = seed_explorer.seed_experiment_explorer(
        experiment,
        steps=(10, 20),
        article_steps=10,
        seeds=(0, 1),
        lrs=(1e-3, 1e-2, 1e-1),
        step_increment=2,
        smooth=3,
    )
    return experiment, explorer


def test_seed_experiment_explorer_every_control(seed_explorer_setup):
    experiment, explorer = seed_explorer_setup
    explorer.reset()
    first_readout, defaults = explorer.readout, explorer.values()
    assert defaults == dict(
        at_step=10, activation="sigmoid", optimizer="adam", lr=1e-3, seed=0, steps=20
    )
    changes = [
        dict(at_step=4),
        dict(activation="relu"),
        dict(optimizer="sgd"),
        dict(lr=1e-1),
        dict(seed=1),
        dict(steps=10, at_step=18),  # t is capped at the run's length
    ]
    for change in changes:
        readout, png = explorer.readout, explorer.png
        explorer.set(**change)
        assert explorer.error is None, (change, explorer.error)
        assert explorer.png != png, f"{change}: the plot did not change"
        assert explorer.readout != readout, f"{change}: the readout did not change"
        v = explorer.values()
        t = min(v["at_step"], v["steps"])
        expected_change, history = _plain_seed_run(
            v["activation"], v["optimizer"], v["lr"], v["seed"], t
        )
        state = explorer.state
        assert state["t"] == t and f"at step {t}:" in explorer.readout
        np.testing.assert_allclose(state["change"], expected_change, rtol=1e-5, atol=1e-12)
        full_change, full = _plain_seed_run(
            v["activation"], v["optimizer"], v["lr"], v["seed"], v["steps"]
        )
        np.testing.assert_array_equal(state["curves"].loss, full.loss)
        np.testing.assert_allclose(state["loss"], np.convolve(full.loss, np.ones(3) / 3, "valid"))
        assert f"loss {full.final_loss:.3f}" in explorer.readout
        assert f"test acc {full.eval_accuracy[-1]:.0%}" in explorer.readout
    explorer.reset()
    assert explorer.values() == defaults and explorer.readout == first_readout


def test_seed_experiment_explorer_step_slider_does_not_train(seed_explorer_setup):
    experiment, explorer = seed_explorer_setup
    explorer.reset()
    runs = dict(experiment._runs)
    for t in (0, 6, 12, 20):
        explorer.set(at_step=t)
        assert explorer.state["t"] == t and explorer.error is None
    assert dict(experiment._runs) == runs, "moving the step slider should reuse the cached run"
    np.testing.assert_allclose(
        explorer.state["change"],
        experiment.run("sigmoid", "adam", 1e-3, 0, 20).weights.relative_change(step=20),
        rtol=1e-12,
    )


def test_seed_experiment_explorer_redraws_after_a_failed_setting(seed_explorer_setup, monkeypatch):
    experiment, explorer = seed_explorer_setup
    explorer.reset()

    def fail(*args, **kw):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(experiment, "curves", fail)
    explorer.set(at_step=8)
    assert explorer.error == "out of memory" and "cannot compute" in explorer.readout
    monkeypatch.undo()
    explorer.set(at_step=6)
    assert explorer.error is None and explorer.state["t"] == 6
    bars = explorer.axes[0].patches
    assert len(bars) == 4  # rebuilt: 3 hidden layers and the output layer
    expected = np.maximum(
        experiment.run("sigmoid", "adam", 1e-3, 0, 20).weights.relative_change(step=6), 1e-12
    )
    np.testing.assert_allclose([b.get_height() for b in bars], expected, rtol=1e-12)
    explorer.reset()


def test_seed_experiment_explorer_rejects_bad_arguments():
    experiment = _seed_experiment()
    with pytest.raises(TypeError, match="SeedExperiment"):
        seed_explorer.seed_experiment_explorer("experiment")
    with pytest.raises(TypeError, match="steps must be a non-empty sequence"):
        seed_explorer.seed_experiment_explorer(experiment, steps=())
    with pytest.raises(ValueError, match="lr must be one of"):
        seed_explorer.seed_experiment_explorer(experiment, lr=0.5)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        seed_explorer.seed_experiment_explorer(experiment, optimizer="adagrad")
    with pytest.raises(ValueError, match="activation"):
        seed_explorer.seed_experiment_explorer(experiment, activations=("sigmoid", "sigmoidd"))
    with pytest.raises(ValueError, match="at_step must be <= the longest run"):
        seed_explorer.seed_experiment_explorer(experiment, steps=(5, 10), at_step=11)


def test_seed_experiment_explorer_readout_names_the_layer_1_change(seed_explorer_setup):
    """What the lesson's explorer cell used to re-check: each setting redraws once, the readout
    quotes the first layer's change at the chosen step, and SGD at lr 1e-3 freezes layer 1."""
    experiment, explorer = seed_explorer_setup
    explorer.reset()
    redraws = explorer.redraws
    explorer.set(optimizer="sgd", steps=10, at_step=6)
    assert explorer.redraws > redraws and explorer.error is None
    change = experiment.run("sigmoid", "sgd", 1e-3, 0, 10).weights.relative_change(step=6)
    np.testing.assert_allclose(explorer.state["change"], change, rtol=1e-12, atol=0)
    assert "sigmoid + sgd (lr 0.001, seed 0) at step 6:" in explorer.readout
    assert f"layer-1 change {change[0]:.2g}" in explorer.readout
    assert change[0] < change[-1], "under SGD the first layer changes less than the output layer"
    explorer.reset()


def test_seed_optimizers_adam_is_torch_adam_bit_for_bit():
    """The multi-tensor Adam of the seed experiment gives exactly PyTorch's default Adam."""
    for name, eps in (("adam", 1e-8), ("adam-keras", 1e-7)):
        results = []
        for make in (
            seed_experiment.SEED_OPTIMIZERS[name],
            lambda params, lr, eps=eps: torch.optim.Adam(params, lr=lr, eps=eps, foreach=False),
        ):
            (X, y), _ = _seed_data()
            torch.manual_seed(0)
            net = vg.mlp(2, 1, depth=3, width=4, activation="sigmoid", init="xavier_uniform")
            vg.fit(
                net, (X, y), steps=30, lr=1e-2, optimizer=make, batch_size=16, loss="bce", seed=0
            )
            results.append([p.detach().clone() for p in net.parameters()])
        assert all(torch.equal(a, b) for a, b in zip(*results)), name


# -- the lesson's figures -------------------------------------------------------------------------
def _seed_runs():
    experiment = _seed_experiment()
    return experiment, {s: experiment.run("sigmoid", "adam", 1e-2, s, 20) for s in (0, 1)}


def test_layer_names():
    _, runs = _seed_runs()
    assert plots.layer_names(runs[0].weights) == ["1", "2", "3", "out"]
    net = vg.mlp(2, 1, depth=2, width=3)
    recorder = weight_change.WeightRecorder(net, include_output=False)
    assert plots.layer_names(recorder) == ["1", "2"]


def test_plot_plateau_and_trajectories_draw_every_run():
    _, runs = _seed_runs()
    plt.close("all")
    plots.plot_plateau(runs, article_steps=10, layers=(0, 3), smooth=5)
    fig = plt.gcf()
    loss_ax, spread_ax, norm_ax = fig.axes
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == ["seed 0", "seed 1"]
    assert spread_ax.get_yscale() == "log" and spread_ax.get_legend() is None
    assert [t.get_text() for t in norm_ax.get_legend().get_texts()] == ["layer 1", "output layer"]
    # one colour per seed in both panels
    assert [ln.get_color() for ln in loss_ax.lines[:2]] == [
        ln.get_color() for ln in spread_ax.lines[:2]
    ]
    x, y = loss_ax.lines[0].get_data()
    np.testing.assert_allclose(y[0], np.mean(runs[0].history.loss[:5]))
    assert x[0] == 5 and len(x) == 16
    plt.close("all")
    plots.plot_trajectories({"Adam": runs[0].weights, "again": runs[1].weights}, steps=12, k=3)
    axes = plt.gcf().axes
    assert len(axes) == 4 and axes[0].get_title() == "Adam: layer 1, 3 weights"
    assert axes[2].get_title() == "Adam: output layer, 3 weights"
    assert len(axes[0].lines) == 3 and len(axes[0].lines[0].get_xdata()) == 13
    plt.close("all")


def test_plot_symptoms_and_heatmaps():
    _, runs = _seed_runs()
    rec = runs[0].weights
    plt.close("all")
    changes = {"Adam": rec.relative_change(10), "SGD": np.zeros(4)}
    mean_abs = {"init": rec.mean_abs()[0], "Adam": rec.mean_abs()[10], "SGD": rec.mean_abs()[0]}
    histories = {"Adam": runs[0].history, "SGD": runs[1].history}
    plots.plot_symptoms(
        histories, changes, mean_abs, steps=10, names=plots.layer_names(rec), smooth=3
    )
    _, change_ax, size_ax = plt.gcf().axes
    heights = [p.get_height() for p in change_ax.patches]
    np.testing.assert_allclose(heights[:4], changes["Adam"])
    assert heights[4:] == [1e-12] * 4  # a zero change is drawn at 1e-12 on the log axis
    assert len(size_ax.patches) == 12 and change_ax.get_legend() is None
    # the same run keeps its colour in every panel
    adam_color = change_ax.patches[0].get_facecolor()
    assert size_ax.patches[4].get_facecolor() == adam_color  # "init" first, then "Adam"
    plt.close("all")
    plots.plot_grad_heatmaps({"a": runs[0].history, "b": runs[1].history})
    fig = plt.gcf()
    images = [im for ax in fig.axes for im in ax.images]
    assert len(images) == 2 and images[0].norm.vmin == images[1].norm.vmin  # one colour scale
    assert images[0].norm.vmax == images[1].norm.vmax
    plt.close("all")


def test_plot_depth_tradeoff_and_latch_tradeoff():
    plt.close("all")
    results = np.array([[[0.2, 0.9], [0.3, 0.8]], [[1.0, 0.5], [1.1, 0.4]]])
    plots.plot_depth_tradeoff([1, 9], results, settings="Adam 0.05")
    fig = plt.gcf()
    loss_ax, acc_ax = fig.axes
    np.testing.assert_allclose(loss_ax.lines[0].get_ydata(), [0.25, 1.05])
    assert loss_ax.get_yscale() == "log" and acc_ax.get_yscale() == "linear"
    assert "Adam 0.05" in fig._suptitle.get_text()
    plt.close("all")
    w = np.array([1.1, 2.0])
    rho = np.array([contracting.latch_rate(float(v)) for v in w])
    plots.plot_latch_tradeoff(w, [0.5, 1.0], rho, T=50, noise_std=0.3)
    left, right = plt.gcf().axes
    np.testing.assert_allclose(right.lines[0].get_ydata(), rho**50)
    assert right.get_yscale() == "log" and len(left.get_legend().get_texts()) == 2
    plt.close("all")
