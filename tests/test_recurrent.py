import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

import vgcourse as vg
from vgcourse.lessons import lesson07_adding, lesson07_explorer, lesson07_plots
from vgcourse.lessons import lesson07_lstm_gru as vgr


def _random_matrix(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, n, generator=g, dtype=torch.float64) / math.sqrt(n)


# -- matrices --------------------------------------------------------------------------------------
def test_spectral_radius_and_singular_value_of_known_matrices():
    D = torch.diag(torch.tensor([0.5, -2.0, 1.0]))
    assert vgr.spectral_radius(D) == pytest.approx(2.0)
    assert vgr.largest_singular_value(D) == pytest.approx(2.0)
    N = torch.tensor([[0.0, 3.0], [0.0, 0.0]])  # nilpotent: rho = 0 but sigma_max = 3
    assert vgr.spectral_radius(N) == pytest.approx(0.0, abs=1e-12)
    assert vgr.largest_singular_value(N) == pytest.approx(3.0)


@pytest.mark.parametrize("by", ["spectral_radius", "singular_value"])
def test_scale_matrix_hits_target(by):
    W = _random_matrix()
    out = vgr.scale_matrix_(W, 0.7, by=by)
    assert out is W
    measured = vgr.spectral_radius(W) if by == "spectral_radius" else vgr.largest_singular_value(W)
    assert measured == pytest.approx(0.7, rel=1e-9)
    assert vgr.largest_singular_value(W) >= vgr.spectral_radius(W) - 1e-12


@pytest.mark.parametrize(
    "args, kwargs, exc, match",
    [
        ((torch.ones(2, 3), 1.0), {}, ValueError, "square"),
        ((torch.ones(3), 1.0), {}, ValueError, "dimensions"),
        (([[1.0]], 1.0), {}, TypeError, "W must be"),
        ((torch.eye(2), 0.0), {}, ValueError, "value"),
        ((torch.eye(2), 1.0), {"by": "eigen"}, ValueError, "by"),
        ((torch.zeros(2, 2), 1.0), {}, ValueError, "nilpotent"),
        ((torch.tensor([[float("nan"), 0.0], [0.0, 1.0]]), 1.0), {}, ValueError, "non-finite"),
    ],
)
def test_scale_matrix_bad_input(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        vgr.scale_matrix_(*args, **kwargs)


def test_scale_recurrent_on_rnn_model_and_rejects_gated_cells():
    torch.manual_seed(0)
    net = vg.rnn_model("rnn", 2, 16, 1, num_layers=2)
    assert vgr.scale_recurrent_(net, 1.3) is net
    for name in ("weight_hh_l0", "weight_hh_l1"):
        assert vgr.spectral_radius(getattr(net.rnn, name)) == pytest.approx(1.3, rel=1e-5)
    vgr.scale_recurrent_(net, 0.5, by="singular_value")
    assert vgr.largest_singular_value(net.rnn.weight_hh_l0) == pytest.approx(0.5, rel=1e-5)
    with pytest.raises(ValueError, match="LSTM"):
        vgr.scale_recurrent_(vg.rnn_model("lstm", 2, 4, 1), 1.0)
    with pytest.raises(ValueError, match="no nn.RNN"):
        vgr.scale_recurrent_(nn.Linear(2, 2), 1.0)
    with pytest.raises(TypeError, match="model"):
        vgr.scale_recurrent_("rnn", 1.0)


# -- the vanilla recurrence ------------------------------------------------------------------------
def test_rnn_unroll_matches_nn_rnn():
    torch.manual_seed(0)
    rnn = nn.RNN(3, 5, batch_first=True).double()
    x = torch.randn(2, 7, 3, dtype=torch.float64)
    drive = x @ rnn.weight_ih_l0.T + rnn.bias_ih_l0 + rnn.bias_hh_l0
    h, d = vgr.rnn_unroll(rnn.weight_hh_l0, drive)
    expected, _ = rnn(x)
    assert torch.allclose(h, expected.detach(), atol=1e-12)
    assert torch.allclose(d, 1 - expected.detach() ** 2, atol=1e-12)
    h1, _ = vgr.rnn_unroll(rnn.weight_hh_l0, drive[0])  # unbatched
    assert torch.allclose(h1, h[0])


@pytest.mark.parametrize("nonlinearity", ["tanh", "sigmoid", "relu", "identity"])
def test_hidden_jacobian_norms_equal_autograd(nonlinearity):
    W = _random_matrix(6, seed=1) * 1.5
    drive = torch.randn(9, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    norms = vgr.hidden_jacobian_norms(W, drive, nonlinearity=nonlinearity)
    assert norms.shape == (10,) and norms[0] == pytest.approx(1.0)
    phi = {
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "relu": torch.relu,
        "identity": lambda a: a,
    }[nonlinearity]
    h, _ = vgr.rnn_unroll(W, drive, nonlinearity=nonlinearity)
    T = drive.shape[0]
    for lag in (1, 4, 9):
        k = T - lag  # start from h_k (h_0 = zeros when k = 0)
        hk = h[k - 1] if k > 0 else torch.zeros(6, dtype=torch.float64)

        def forward(state, k=k):
            for t in range(k, T):
                state = phi(W @ state + drive[t])
            return state

        J = torch.autograd.functional.jacobian(forward, hk)
        assert norms[lag] == pytest.approx(float(torch.linalg.matrix_norm(J, 2)), rel=1e-9)


def test_linear_rnn_norms_follow_matrix_powers_and_bound_holds():
    W = vgr.scale_matrix_(_random_matrix(10, seed=3), 0.9)
    drive = torch.randn(3, 30, 10, dtype=torch.float64)
    norms = vgr.hidden_jacobian_norms(W, drive, nonlinearity="identity")
    assert norms.shape == (3, 31)
    powers = [
        float(torch.linalg.matrix_norm(torch.linalg.matrix_power(W, k), 2)) for k in range(31)
    ]
    assert np.allclose(norms[0], powers, rtol=1e-9)
    W2 = vgr.scale_matrix_(_random_matrix(10, seed=4), 0.95, by="singular_value")
    tanh_norms = vgr.hidden_jacobian_norms(W2, drive, nonlinearity="tanh")
    bound = vgr.vanishing_bound(W2, np.arange(31), nonlinearity="tanh")
    assert (tanh_norms <= bound * (1 + 1e-9)).all()
    assert vgr.vanishing_bound(W2, [2], nonlinearity="sigmoid")[0] == pytest.approx((0.95 / 4) ** 2)


@pytest.mark.parametrize(
    "W, drive, kwargs, exc, match",
    [
        (torch.eye(3), torch.zeros(4, 3), {"nonlinearity": "softplus"}, ValueError, "nonlinearity"),
        (torch.eye(3), torch.zeros(4, 2), {}, ValueError, "hidden size"),
        (torch.eye(3), torch.zeros(3), {}, ValueError, "shape"),
        (torch.ones(3, 2), torch.zeros(4, 2), {}, ValueError, "square"),
        (torch.eye(3), torch.full((4, 3), float("inf")), {}, ValueError, "non-finite"),
        (torch.eye(3), torch.zeros(4, 3), {"h0": torch.zeros(2)}, ValueError, "h0"),
    ],
)
def test_hidden_jacobian_norms_bad_input(W, drive, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        vgr.hidden_jacobian_norms(W, drive, **kwargs)


def test_vanishing_bound_bad_lags():
    with pytest.raises(ValueError, match="lags"):
        vgr.vanishing_bound(torch.eye(2), [-1, 2])
    with pytest.raises(ValueError, match="nonlinearity"):
        vgr.vanishing_bound(torch.eye(2), [1], nonlinearity="gelu")


def test_log_slope_exact_for_geometric_sequences():
    lags = np.arange(20)
    assert vgr.log_slope(3.0 * 0.8**lags) == pytest.approx(math.log(0.8))
    assert vgr.log_slope(2.0 ** lags[5:], lags[5:]) == pytest.approx(math.log(2.0))
    with pytest.raises(ValueError, match="> 0"):
        vgr.log_slope([1.0, 0.0, 0.5])
    with pytest.raises(ValueError, match="at least 2"):
        vgr.log_slope([1.0])
    with pytest.raises(ValueError, match="shape"):
        vgr.log_slope([1.0, 2.0], [0, 1, 2])


# -- any recurrence, any model ---------------------------------------------------------------------
def test_state_jacobian_norms_of_rnn_cell_match_the_product_formula():
    torch.manual_seed(0)
    cell = nn.RNNCell(2, 6).double()
    x = torch.rand(12, 2, dtype=torch.float64)
    norms = vgr.state_jacobian_norms(cell, x, torch.zeros(6, dtype=torch.float64))
    drive = x @ cell.weight_ih.T + cell.bias_ih + cell.bias_hh
    expected = vgr.hidden_jacobian_norms(cell.weight_hh, drive)
    assert norms.shape == (12,)
    assert np.allclose(norms, expected[:12], rtol=1e-9)


def test_state_jacobian_norms_lstm_cell_state_is_identity_when_forget_gate_is_one():
    torch.manual_seed(0)
    n = 4
    cell = nn.LSTMCell(3, n).double()
    with torch.no_grad():
        cell.weight_hh.zero_()  # no path through h: dc_t/dc_{t-1} = diag(f_t)
        cell.bias_ih[n : 2 * n] = 40.0  # f = sigmoid(40 + ...) = 1 in float64 to 1e-17
    x = torch.rand(15, 3, dtype=torch.float64)
    state0 = (torch.zeros(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float64))
    norms = vgr.state_jacobian_norms(lambda xt, s: cell(xt, s), x, state0, which=1)
    assert np.allclose(norms, 1.0, atol=1e-12)
    with torch.no_grad():
        cell.bias_ih[n : 2 * n] = -40.0  # f = 0: the cell forgets at once
    norms = vgr.state_jacobian_norms(lambda xt, s: cell(xt, s), x, state0, which=1)
    assert norms[0] == pytest.approx(1.0) and norms[1:].max() < 1e-12


def test_state_jacobian_norms_bad_input():
    cell = nn.RNNCell(2, 3)
    with pytest.raises(TypeError, match="callable"):
        vgr.state_jacobian_norms(3, torch.zeros(4, 2), torch.zeros(3))
    with pytest.raises(TypeError, match="state0"):
        vgr.state_jacobian_norms(cell, torch.zeros(4, 2), [1.0, 2.0])
    with pytest.raises(ValueError, match="which"):
        vgr.state_jacobian_norms(cell, torch.zeros(4, 2), torch.zeros(3), which=1)
    with pytest.raises(ValueError, match="unbatched"):
        vgr.state_jacobian_norms(cell, torch.zeros(4, 2), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="expected"):
        vgr.state_jacobian_norms(lambda xt, h: h[:1], torch.zeros(4, 2), torch.zeros(3))
    with pytest.raises(ValueError, match="dimensions"):
        vgr.state_jacobian_norms(cell, torch.zeros(4, 2, 1), torch.zeros(3))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_grad_vs_lag_shapes_and_no_side_effects(cell):
    torch.manual_seed(0)
    net = vg.rnn_model(cell, 2, 8, 1)
    X = torch.rand(5, 11, 2)
    g = vgr.grad_vs_lag(net, X)
    assert g.shape == (11,) and (g > 0).all()
    assert all(p.grad is None for p in net.parameters())
    assert vgr.grad_vs_lag(net, X, reduce="none").shape == (5, 11)
    y = torch.rand(5)
    assert vgr.grad_vs_lag(net, X, y, loss="mse", reduce="mean").shape == (11,)
    assert X.grad is None and not X.requires_grad


def test_grad_vs_lag_is_per_sequence_and_matches_manual_gradient():
    torch.manual_seed(0)
    net = vg.rnn_model("rnn", 2, 6, 1)
    X = torch.rand(3, 9, 2)
    per_seq = vgr.grad_vs_lag(net, X, reduce="none")
    x0 = X[:1].clone().requires_grad_(True)
    net(x0).sum().backward()
    expected = x0.grad[0].norm(dim=1).flip(0)
    assert np.allclose(per_seq[0], expected.numpy(), rtol=1e-5)


def test_grad_vs_lag_without_recurrence_sees_only_the_last_step():
    net = vg.rnn_model("rnn", 2, 4, 1)
    with torch.no_grad():
        net.rnn.weight_hh_l0.zero_()
    g = vgr.grad_vs_lag(net, torch.rand(4, 6, 2))
    assert g[0] > 0 and np.all(g[1:] == 0)


def test_grad_vs_lag_accepts_bare_recurrent_layers():
    lstm = nn.LSTM(2, 5, batch_first=True)
    assert vgr.grad_vs_lag(lstm, torch.rand(3, 7, 2)).shape == (7,)


def test_grad_vs_lag_bad_input():
    net = vg.rnn_model("gru", 2, 4, 1)
    with pytest.raises(ValueError, match="dimensions"):
        vgr.grad_vs_lag(net, torch.rand(4, 2))
    with pytest.raises(ValueError, match="reduce"):
        vgr.grad_vs_lag(net, torch.rand(4, 5, 2), reduce="max")
    with pytest.raises(ValueError, match="rows"):
        vgr.grad_vs_lag(net, torch.rand(4, 5, 2), torch.rand(3))
    with pytest.raises(TypeError, match="model"):
        vgr.grad_vs_lag(lambda x: x, torch.rand(4, 5, 2))


# -- training ----------------------------------------------------------------------------------------
def test_train_cells_runs_each_cell_and_seed_repeatably():
    X, y = vg.data.adding_problem(64, 8, seed=0)
    kw = dict(cells=("rnn", "lstm"), seeds=(0, 1), hidden_size=4, steps=3, lr=1e-2, loss="mse")
    runs = lesson07_adding.train_cells((X, y), forget_bias=1.0, **kw)
    assert set(runs) == {("rnn", 0), ("rnn", 1), ("lstm", 0), ("lstm", 1)}
    model, history = runs[("lstm", 0)]
    assert history.steps == 3 and model.head.out_features == 1
    forget = model.rnn.bias_ih_l0[4:8] + model.rnn.bias_hh_l0[4:8]  # 1.0 at init, 3 Adam steps ago
    assert torch.allclose(forget, torch.ones(4), atol=0.1)
    again = lesson07_adding.train_cells((X, y), forget_bias=1.0, **kw)
    assert np.array_equal(history.loss, again[("lstm", 0)][1].loss)
    assert not np.array_equal(history.loss, runs[("lstm", 1)][1].loss)


def test_train_cells_recurrent_radius_applies_to_rnn_only():
    X, y = vg.data.adding_problem(32, 6, seed=0)
    runs = lesson07_adding.train_cells(
        (X, y),
        cells=("rnn", "gru"),
        hidden_size=5,
        steps=1,
        lr=1e-9,
        loss="mse",
        recurrent_radius=1.7,
    )
    assert vgr.spectral_radius(runs[("rnn", 0)][0].rnn.weight_hh_l0) == pytest.approx(1.7, rel=1e-4)


def test_train_cells_classification_output_size():
    X, y = vg.data.temporal_order(32, 20, seed=0)
    runs = lesson07_adding.train_cells((X, y), cells=("gru",), hidden_size=4, steps=2, lr=1e-2)
    model, _ = runs[("gru", 0)]
    assert model(X).shape == (32, 4)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(cells=("transformer",)), ValueError, "cell"),
        (dict(cells=()), ValueError, "cells"),
        (dict(seeds=()), ValueError, "seeds"),
        (dict(seeds=(-1,)), ValueError, "seed"),
        (dict(hidden_size=0), ValueError, "hidden_size"),
        (dict(recurrent_radius=-1.0), ValueError, "recurrent_radius"),
        (dict(lr=0.0), ValueError, "lr"),
    ],
)
def test_train_cells_bad_input(kwargs, exc, match):
    X, y = vg.data.adding_problem(16, 6, seed=0)
    args = dict(steps=1, lr=1e-2, loss="mse") | kwargs
    with pytest.raises(exc, match=match):
        lesson07_adding.train_cells((X, y), **args)
    with pytest.raises(TypeError, match="pair"):
        lesson07_adding.train_cells(X, steps=1, lr=1e-2)
    with pytest.raises(ValueError, match="dimensions"):
        lesson07_adding.train_cells((X[:, :, 0], y), steps=1, lr=1e-2)


# -- the adding problem, cached, and the lesson's explorer ------------------------------------------
TINY = dict(n=64, hidden_size=4, steps=4, lr=1e-2, batch_size=16)


def _train_directly(cell, T, *, seed=0, recurrent_radius=None, forget_bias=None, device=None):
    """What adding_run should compute, spelled out with train_cells."""
    data = vg.data.adding_problem(TINY["n"], T, seed=1)
    test = vg.data.adding_problem(500, T, seed=2)
    runs = lesson07_adding.train_cells(
        data,
        cells=(cell,),
        seeds=(seed,),
        hidden_size=TINY["hidden_size"],
        steps=TINY["steps"],
        lr=TINY["lr"],
        batch_size=TINY["batch_size"],
        loss="mse",
        forget_bias=forget_bias,
        recurrent_radius=recurrent_radius,
        clip_norm=1.0,
        eval_data=test,
        eval_every=1,
        device=device,
    )
    return runs[(cell, seed)][1]


def test_adding_run_matches_train_cells_and_is_cached():
    model, history = lesson07_adding.adding_run("lstm", 6, forget_bias=2.0, **TINY)
    expected = _train_directly("lstm", 6, forget_bias=2.0)
    assert history.eval_steps == expected.eval_steps == [1, 2, 3, 4]
    np.testing.assert_allclose(history.eval_loss, expected.eval_loss, rtol=1e-6)
    np.testing.assert_allclose(history.loss, expected.loss, rtol=1e-6)
    again = lesson07_adding.adding_run("lstm", 6, forget_bias=2.0, **TINY)
    assert again[0] is model and again[1] is history  # cached: no second training
    assert lesson07_adding.adding_run("lstm", 6, forget_bias=0.0, **TINY)[1] is not history


def test_adding_run_ignores_settings_a_cell_does_not_use():
    gru = lesson07_adding.adding_run("gru", 6, **TINY)
    assert (
        lesson07_adding.adding_run("gru", 6, forget_bias=3.0, recurrent_radius=0.5, **TINY) is gru
    )
    rnn = lesson07_adding.adding_run("rnn", 6, recurrent_radius=0.9, **TINY)
    assert (
        lesson07_adding.adding_run("rnn", 6, recurrent_radius=0.9, forget_bias=5.0, **TINY) is rnn
    )
    assert lesson07_adding.adding_run("rnn", 6, **TINY) is not rnn
    expected = _train_directly("rnn", 6, recurrent_radius=0.9)
    np.testing.assert_allclose(rnn[1].eval_loss, expected.eval_loss, rtol=1e-6)


def _curve_directly(cell, T, *, rho=None, forget_bias=None, batch=16, device=None):
    X, _ = vg.data.adding_problem(batch, T, seed=0)
    vg.seed_everything(0)
    net = vg.rnn_model(
        cell,
        2,
        TINY["hidden_size"],
        1,
        forget_bias=forget_bias if cell == "lstm" else None,
        device=device,
    )
    if cell == "rnn" and rho is not None:
        vgr.scale_recurrent_(net, rho)
    return vgr.grad_vs_lag(net, X)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_init_grad_vs_lag_matches_a_direct_measurement(cell):
    got = lesson07_adding.init_grad_vs_lag(
        cell, 9, recurrent_radius=1.2, forget_bias=3.0, hidden_size=4, batch=16
    )
    expected = _curve_directly(cell, 9, rho=1.2, forget_bias=3.0)
    assert got.shape == (9,)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    got[:] = 0  # a copy: the cache is not changed by the caller
    assert lesson07_adding.init_grad_vs_lag(
        cell, 9, recurrent_radius=1.2, forget_bias=3.0, hidden_size=4, batch=16
    ).all()


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(cell="transformer"), ValueError, "cell"),
        (dict(T=1), ValueError, "T"),
        (dict(recurrent_radius=-1.0), ValueError, "recurrent_radius"),
        (dict(forget_bias="open"), TypeError, "forget_bias"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(steps=0), ValueError, "steps"),
        (dict(lr=0.0), ValueError, "lr"),
        (dict(clip_norm=0.0), ValueError, "clip_norm"),
        (dict(device="tpu"), ValueError, "prefer"),
    ],
)
def test_adding_run_bad_arguments(kwargs, exc, match):
    args = dict(cell="lstm", T=6) | TINY | kwargs
    with pytest.raises(exc, match=match):
        lesson07_adding.adding_run(**args)


def test_init_grad_vs_lag_bad_arguments():
    with pytest.raises(ValueError, match="cell"):
        lesson07_adding.init_grad_vs_lag("lstm2", 6)
    with pytest.raises(ValueError, match="batch"):
        lesson07_adding.init_grad_vs_lag("rnn", 6, batch=0)
    with pytest.raises(ValueError, match="recurrent_radius"):
        lesson07_adding.init_grad_vs_lag("rnn", 6, recurrent_radius=0.0)


def _check_explorer_state(explorer, device):
    v = explorer.values()
    assert explorer.state["settings"] == v
    curves = explorer.state["curves"]
    for c in ("rnn", "lstm", "gru"):
        expected = _curve_directly(
            c, v["T"], rho=v["rho"], forget_bias=v["forget_bias"], device=device
        )
        np.testing.assert_allclose(curves[c], expected, rtol=1e-6 if device.type == "cpu" else 1e-4)
    history = explorer.state["history"]
    expected = _train_directly(
        v["cell"],
        v["T"],
        recurrent_radius=v["rho"] if v["cell"] == "rnn" else None,
        forget_bias=v["forget_bias"] if v["cell"] == "lstm" else None,
        device=device,
    )
    np.testing.assert_allclose(
        history.eval_loss, expected.eval_loss, rtol=1e-6 if device.type == "cpu" else 1e-3
    )
    reach = curves[v["cell"]][-1] / curves[v["cell"]][0]
    assert explorer.state["reach"] == pytest.approx(reach)
    assert explorer.state["final_mse"] == history.eval_loss[-1]
    assert explorer.readout.startswith(f"{v['cell'].upper()}, T={v['T']}:")
    assert f"{reach:.1e}" in explorer.readout and f"{history.eval_loss[-1]:.4f}" in explorer.readout
    # the plots show these numbers: the three init curves, the test MSE of the trained cell
    left, right = explorer.axes
    for line, c in zip(left.lines, ("rnn", "lstm", "gru")):
        np.testing.assert_allclose(line.get_ydata(), curves[c])
        assert line.get_linewidth() == (3 if c == v["cell"] else 1)
    np.testing.assert_allclose(right.lines[0].get_ydata(), history.eval_loss)
    assert left.get_yscale() == right.get_yscale() == "log"


def test_gradient_through_time_explorer_every_control(device):
    explorer = lesson07_explorer.gradient_through_time_explorer(
        T=8, lengths=(6, 8, 10), probe_size=16, device=device, **TINY
    )
    first_readout, first_png = explorer.readout, explorer.png
    assert explorer.error is None
    _check_explorer_state(explorer, device)
    for change in (
        dict(cell="rnn"),
        dict(T=10),
        dict(rho=0.9),
        dict(cell="lstm"),
        dict(forget_bias=3.0),
    ):
        readout, png = explorer.readout, explorer.png
        explorer.set(**change)
        assert explorer.error is None, explorer.error
        assert explorer.png != png and explorer.readout != readout, change
        _check_explorer_state(explorer, device)
    explorer.reset()
    assert explorer.values() == dict(cell="lstm", T=8, rho=None, forget_bias=1.0)
    assert explorer.readout == first_readout and explorer.png == first_png
    _check_explorer_state(explorer, device)


def test_gradient_through_time_explorer_never_retrains_for_unused_controls():
    explorer = lesson07_explorer.gradient_through_time_explorer(
        T=6, lengths=(6, 8), probe_size=16, **TINY
    )
    lstm_history, readout, png = explorer.state["history"], explorer.readout, explorer.png
    explorer.set(rho=1.5)  # the LSTM does not use the RNN's radius: only the RNN curve changes
    assert explorer.state["history"] is lstm_history and explorer.readout == readout
    assert explorer.png != png
    explorer.set(T=8)
    explorer.set(T=6)  # back to a visited length: the cached run, not a new one
    assert explorer.state["history"] is lstm_history
    explorer.set(cell="gru", forget_bias=5.0)
    gru_history = explorer.state["history"]
    explorer.set(forget_bias=-1.0)  # the GRU has no forget gate
    assert explorer.state["history"] is gru_history


def test_gradient_through_time_explorer_shows_the_lessons_adding_runs():
    # lesson 07 trains adding_run(cell, seed, forget_bias=1.0, **budget) in section 6 and opens the
    # explorer with the same budget: switching the cell shows those very runs, no retraining
    runs = {
        c: lesson07_adding.adding_run(c, 6, seed=0, forget_bias=1.0, **TINY)
        for c in vg.models.CELLS
    }
    explorer = lesson07_explorer.gradient_through_time_explorer(
        T=6, lengths=(6, 8), probe_size=16, **TINY
    )
    assert explorer.state["history"] is runs["lstm"][1]
    readout, png = explorer.readout, explorer.png
    explorer.set(cell="rnn")
    assert explorer.error is None and explorer.readout != readout and explorer.png != png
    assert explorer.readout.startswith("RNN, T=6")
    assert explorer.state["history"] is runs["rnn"][1]


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(cell="transformer"), ValueError, "cell"),
        (dict(rho=0.7), ValueError, "rho"),
        (dict(forget_bias=4.0), ValueError, "forget_bias"),
        (dict(T=35), ValueError, "T"),
        (dict(lengths=(10, 20, 40)), ValueError, "evenly"),
        (dict(lengths="10-100"), TypeError, "lengths"),
        (dict(lengths=(1, 2)), ValueError, "lengths"),
        (dict(lr=-1.0), ValueError, "lr"),
        (dict(probe_size=0), ValueError, "probe_size"),
        (dict(hidden_size=1.5), TypeError, "hidden_size"),
    ],
)
def test_gradient_through_time_explorer_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        lesson07_explorer.gradient_through_time_explorer(**kwargs)


# -- lesson 07's figures -------------------------------------------------------------------------------
def _drawn_axes():
    import matplotlib.pyplot as plt

    return plt.gcf().axes


def test_plot_bptt_check_draws_the_norms_and_the_autograd_cross():
    norms = np.geomspace(1.0, 1e-6, 26)
    lesson07_plots.plot_bptt_check(norms, 15, 3.8e-4)
    (ax,) = _drawn_axes()
    curve, cross = ax.lines
    np.testing.assert_allclose(curve.get_ydata(), norms)
    np.testing.assert_allclose(curve.get_xdata(), np.arange(26))
    assert list(cross.get_xdata()) == [15] and list(cross.get_ydata()) == [3.8e-4]
    assert ax.get_yscale() == "log" and ax.get_xlabel().startswith("lag")


def test_plot_lag_curves_draws_the_median_of_each_label_in_its_colour():
    curves = {
        "a": np.array([[1.0, 0.5, 0.25], [1.0, 0.1, 0.01], [1.0, 0.2, 0.04]]),
        "b": [[1, 1, 1]],
    }
    lesson07_plots.plot_lag_curves(curves, colors={"a": "red", "b": "blue"}, ylabel="g", title="t")
    (ax,) = _drawn_axes()
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [1.0, 0.2, 0.04])
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [1, 1, 1])
    assert [line.get_color() for line in ax.lines] == ["red", "blue"]
    assert len(ax.collections) == 2 and ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]


def test_plot_jacobian_settings_draws_rho_powers_and_the_bound():
    W = vgr.scale_matrix_(_random_matrix(8), 0.9, by="singular_value")
    drive = 0.5 * torch.randn(
        20, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    settings = {
        "linear": ("identity", "spectral_radius", 0.9),
        "tanh": ("tanh", "singular_value", 0.9),
        "tanh small": ("tanh", "spectral_radius", 0.5),
    }
    jac = {
        label: [(vgr.hidden_jacobian_norms(W, drive, nonlinearity=phi), W)]
        for label, (phi, _, _) in settings.items()
    }
    groups = [("left", ["linear"]), ("right", ["tanh", "tanh small"])]
    lesson07_plots.plot_jacobian_settings(jac, settings, groups)
    left, right = _drawn_axes()
    lags = np.arange(21)
    np.testing.assert_allclose(left.lines[1].get_ydata(), 0.9**lags)
    np.testing.assert_allclose(right.lines[1].get_ydata(), vgr.vanishing_bound(W, lags))
    assert len(right.lines) == 3  # no dashed companion for a radius below 1 under tanh
    assert right.lines[0].get_color() != right.lines[2].get_color()
    assert left.get_title() == "left" and left.get_yscale() == right.get_yscale() == "log"


def test_plot_learning_curves_one_colour_per_label_and_dashed_later_seeds():
    def history(values):
        return SimpleNamespace(eval_steps=[10, 20], eval_accuracy=list(values))

    runs = {("A", 0): (None, history([0.2, 0.4])), ("A", 1): (None, history([0.3, 0.5]))}
    runs[("B", 0)] = (None, history([0.1, 0.9]))
    lesson07_plots.plot_learning_curves(
        runs, metric="eval_accuracy", colors={"A": "red", "B": "blue"}, reference=(0.25, "chance")
    )
    (ax,) = _drawn_axes()
    a0, a1, b0, chance = ax.lines
    np.testing.assert_allclose(a1.get_ydata(), [0.3, 0.5])
    assert (a0.get_color(), a1.get_color(), b0.get_color()) == ("red", "red", "blue")
    assert (a0.get_linestyle(), a1.get_linestyle(), b0.get_linestyle()) == ("-", "--", "-")
    assert list(chance.get_ydata()) == [0.25, 0.25]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["A (seed 0)", "A (seed 1)", "B (seed 0)", "chance"]
