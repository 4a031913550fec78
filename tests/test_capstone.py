import math

import numpy as np
import pytest
import torch

import vgcourse as vg
from vgcourse.lessons import lesson09_capstone as capstone
from vgcourse.lessons import lesson09_explorer
from vgcourse.lessons.lesson09_pretraining import grad_ratio

SIZES = dict(depth=3, width=8, rnn_hidden=4, steps=12, batch_size=32)


@pytest.fixture(scope="module")
def data():
    X, y = vg.data.digits()
    Xa, ya = vg.data.adding_problem(64, 6, seed=0)
    Xa_test, ya_test = vg.data.adding_problem(32, 6, seed=1)
    return (X[:300], y[:300]), (Xa, ya), (Xa_test, ya_test)


@pytest.fixture(scope="module")
def clinic(data):
    mlp_data, rnn_data, rnn_batch = data
    return capstone.Clinic(mlp_data, rnn_data, rnn_batch=rnn_batch, **SIZES, device="cpu")


def independent_run(case, fix, seed, data):
    """What Clinic.run should give, built from the recipe with vg.mlp / vg.rnn_model directly."""
    (X, y), (Xa, ya), (Xa_test, ya_test) = data
    kind, model, training = capstone.CASES[case]
    fix_model, fix_training, _, _ = capstone.FIXES[fix]
    model = {k: v for k, v in {**model, **fix_model}.items() if v is not None}
    training = {**training, **fix_training}
    training["lr"] *= training.pop("lr_factor", 1.0)
    steps = training.pop("steps", SIZES["steps"])
    torch.manual_seed(seed)
    if kind == "mlp":
        net = vg.mlp(64, 10, depth=SIZES["depth"], width=SIZES["width"], **model)
        train_data, batch, loss = (X, y), (X[:256], y[:256]), "cross_entropy"
    else:
        cell = model.pop("cell")
        net = vg.rnn_model(cell, 2, SIZES["rnn_hidden"], 1, **model)
        train_data, batch, loss = (Xa, ya), (Xa_test, ya_test), "mse"
    before = vg.diagnose(
        net,
        *batch,
        loss=loss,
        train_steps=2,
        lr=training["lr"],
        optimizer=training.get("optimizer", "adam"),
        clip_norm=training.get("clip_norm"),
    )
    history = vg.fit(
        net,
        train_data,
        steps=steps,
        batch_size=SIZES["batch_size"],
        loss=loss,
        seed=seed,
        record=False,
        **training,
    )
    after = vg.diagnose(net, *batch, loss=loss)
    if kind == "rnn":
        ratio = after.time_grad_ratio
    else:
        ratio = grad_ratio(vg.layer_grad_norms(net, *batch, loss=loss))
    return dict(history=history, before=before, after=after, ratio=ratio)


def assert_same_run(got, want):
    np.testing.assert_array_equal(got["history"].loss, want["history"].loss)
    assert got["history"].diverged_at == want["history"].diverged_at
    assert got["before"].problems == want["before"].problems
    assert got["after"].problems == want["after"].problems
    assert got["ratio"] == pytest.approx(want["ratio"], rel=1e-6, nan_ok=True)


# -- recipe -----------------------------------------------------------------------------------


def test_resolve_merges_the_fix_into_the_case():
    kind, model, training = capstone.resolve("tiny init", "He init")
    assert kind == "mlp" and dict(model) == {"activation": "relu", "init": "kaiming_normal"}
    assert capstone.resolve("tiny init", "He init") == capstone.resolve(
        "deep sigmoid", "ReLU + He init"
    )  # the same model and training: one run
    _, _, training = capstone.resolve("lr too high", "lower lr (/30)")
    assert dict(training) == {"lr": pytest.approx(0.1), "optimizer": "sgd"}
    _, model, training = capstone.resolve("vanilla RNN", "LSTM, forget bias 1")
    assert dict(model) == {"cell": "lstm", "forget_bias": 1.0} and dict(training)["steps"] == 200
    assert capstone.resolve("deep sigmoid") == capstone.resolve("deep sigmoid", "none")


def test_resolve_rejects_unknown_names_and_fixes_for_another_kind():
    with pytest.raises(ValueError, match="case must be one of"):
        capstone.resolve("shallow net")
    with pytest.raises(ValueError, match="fix must be one of"):
        capstone.resolve("deep sigmoid", "dropout")
    with pytest.raises(ValueError, match="'batch norm' repairs MLP models, not the 'vanilla RNN'"):
        capstone.resolve("vanilla RNN", "batch norm")
    with pytest.raises(ValueError, match="repairs RNN models"):
        capstone.resolve("deep sigmoid", "GRU")


def test_recipe_is_read_only_and_shown_in_full():
    with pytest.raises(TypeError):
        capstone.CASES["new"] = capstone.CASES["deep sigmoid"]
    with pytest.raises(TypeError):
        capstone.FIXES["none"].model["depth"] = 3
    text = capstone.recipe_markdown()
    for name in [*capstone.CASES, *capstone.FIXES]:
        assert f"| {name} |" in text
    assert "lr x 1/30" in text and "std removed" in text and "clip_norm=0.3" in text


# -- the clinic -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case, fix",
    [("deep sigmoid", "none"), ("lr too high", "clip norm 0.3"), ("vanilla RNN", "GRU")],
)
def test_clinic_run_is_the_recipe_built_directly(clinic, data, case, fix):
    assert_same_run(clinic.run(case, fix, seed=1), independent_run(case, fix, 1, data))


def test_clinic_runs_are_cached_per_setting(clinic):
    run = clinic.run("tiny init", "He init")
    assert clinic.run("tiny init", "He init", 0) is run
    assert clinic.run("deep sigmoid", "ReLU + He init") is run  # the same settings
    assert clinic.run("tiny init", "He init", 1) is not run
    assert "cached runs" in repr(clinic)
    assert clinic.level("deep sigmoid") == pytest.approx(math.log(10))
    assert clinic.level("vanilla RNN") == pytest.approx(1 / 6)


def test_clinic_on_the_chosen_device(data, device):
    mlp_data, rnn_data, _ = data
    clinic = capstone.Clinic(mlp_data, rnn_data, **SIZES, device=device)
    assert clinic.mlp_data[0].device.type == device.type
    run = clinic.run("deep sigmoid", "batch norm")
    assert next(run["net"].parameters()).device.type == device.type
    assert np.isfinite(run["history"].loss).all()


def test_clinic_bad_arguments(data):
    mlp_data, rnn_data, _ = data
    X, y = mlp_data
    with pytest.raises(TypeError, match="mlp_data must be a pair"):
        capstone.Clinic(X, rnn_data)
    with pytest.raises(ValueError, match="mlp_data must be"):
        capstone.Clinic((X.view(-1, 8, 8), y), rnn_data)
    with pytest.raises(ValueError, match="rnn_data must be"):
        capstone.Clinic(mlp_data, (rnn_data[0][:, :, 0], rnn_data[1]))
    with pytest.raises(ValueError, match="same number of rows"):
        capstone.Clinic((X, y[:10]), rnn_data)
    with pytest.raises(ValueError, match="mlp_batch"):
        capstone.Clinic(mlp_data, rnn_data, mlp_batch=(X[:, :10], y))
    for kw in (dict(depth=0), dict(width=0), dict(rnn_hidden=0), dict(steps=0), dict(batch_size=0)):
        with pytest.raises(ValueError, match=next(iter(kw))):
            capstone.Clinic(mlp_data, rnn_data, **kw)
    clinic = capstone.Clinic(mlp_data, rnn_data, **SIZES, device="cpu")
    with pytest.raises(ValueError, match="seed"):
        clinic.run("deep sigmoid", seed=-1)
    with pytest.raises(ValueError, match="case must be one of"):
        clinic.level("nope")


# -- the explorer -----------------------------------------------------------------------------


def _broken_curve(ax):
    return next(line for line in ax.lines if line.get_label() == "broken")


def test_clinic_explorer_every_control_redraws_with_the_right_run(clinic, data):
    explorer = lesson09_explorer.clinic_explorer(clinic)
    first_readout, first_png = explorer.readout, explorer.png
    assert explorer.error is None and "deep sigmoid + none" in first_readout
    assert explorer.state["run"] is clinic.run("deep sigmoid")
    assert explorer.state["report"] is explorer.state["run"]["before"]

    steps = [
        (dict(fix="batch norm"), ("deep sigmoid", "batch norm", "at initialization")),
        (dict(when="after training"), ("deep sigmoid", "batch norm", "after training")),
        (dict(case="tiny init"), ("tiny init", "batch norm", "after training")),
    ]
    for change, (case, fix, when) in steps:
        readout, png = explorer.readout, explorer.png
        explorer.set(**change)
        assert explorer.error is None
        assert explorer.readout != readout and explorer.png != png
        state = explorer.state
        run = state["run"]
        assert run is clinic.run(case, fix)
        assert_same_run(run, independent_run(case, fix, 0, data))
        report = run["before"] if when == "at initialization" else run["after"]
        assert state["report"] is report and state["problems"] == report.problems
        assert explorer.readout.startswith(f"{case} + {fix}: ")
        assert f"findings {when}: {report.problems or 'none'}" in explorer.readout
        # the left panel is this report's plot, the right one this run's and the broken run's loss
        grad_rms = [r["grad_rms"] for r in report.layers]
        np.testing.assert_allclose(explorer.axes[0].lines[0].get_ydata(), grad_rms)
        broken = clinic.run(case)["history"].loss
        np.testing.assert_allclose(
            _broken_curve(explorer.axes[1]).get_ydata(),
            np.convolve(broken, np.ones(10) / 10, mode="valid"),
        )
    assert explorer.redraws == 1 + len(steps)

    explorer.set(case="vanilla RNN")  # with batch norm: not a fix for an RNN
    assert explorer.error is not None and "cannot compute" in explorer.readout
    assert "run" not in explorer.state

    explorer.reset()
    assert explorer.values() == {
        "case": "deep sigmoid",
        "fix": "none",
        "when": "at initialization",
    }
    assert explorer.readout == first_readout and explorer.error is None
    assert explorer.state["run"] is clinic.run("deep sigmoid")
    assert first_png


def test_clinic_explorer_bad_arguments(clinic):
    with pytest.raises(TypeError, match="clinic must be a Clinic"):
        lesson09_explorer.clinic_explorer("clinic")
    with pytest.raises(ValueError, match="case must be one of"):
        lesson09_explorer.clinic_explorer(clinic, case="shallow")
    with pytest.raises(ValueError, match="repairs MLP models"):
        lesson09_explorer.clinic_explorer(clinic, case="vanilla RNN", fix="batch norm")
    with pytest.raises(ValueError, match="when must be one of"):
        lesson09_explorer.clinic_explorer(clinic, when="later")
    with pytest.raises(ValueError, match="seed"):
        lesson09_explorer.clinic_explorer(clinic, seed=-1)


# -- the lesson's figures and tables ------------------------------------------------------------


def _fake_run(final_loss, problems_before=(), problems_after=(), ratio=1.0, diverged_at=None):
    from types import SimpleNamespace

    history = SimpleNamespace(final_loss=final_loss, diverged_at=diverged_at, seconds=0.5)
    return dict(
        history=history,
        before=SimpleNamespace(problems=list(problems_before)),
        after=SimpleNamespace(problems=list(problems_after)),
        ratio=ratio,
    )


def test_repair_table_orders_rows_by_case_and_summarises_the_seeds():
    from vgcourse.lessons import lesson09_plots

    results = {
        ("lr too high", "none"): [
            _fake_run(math.nan, ratio=math.nan, diverged_at=d) for d in (3, 4)
        ],
        ("deep sigmoid", "none"): [
            _fake_run(2.3, ["vanishing_gradients"], ratio=r) for r in (1e-8, 3e-8)
        ],
        ("deep sigmoid", "batch norm"): [
            _fake_run(x, ratio=r) for x, r in ((0.5, 2.0), (0.3, math.nan))
        ],
    }
    lines = lesson09_plots.repair_table(results).splitlines()
    assert len(lines) == 2 + len(results) and lines[1].count("|") == 8
    assert (
        lines[2]
        == "| deep sigmoid | - | vanishing_gradients | none | 2.3 (2.3-2.3) | 2e-08 | 0.50 |"
    )
    assert lines[3].startswith(
        "| deep sigmoid | batch norm (05) | none | none | 0.4 (0.3-0.5) | 2 + nan |"
    )
    assert "diverged at steps [3, 4]" in lines[4] and "| nan |" in lines[4]


def test_plot_repairs_one_panel_per_case_one_colour_per_fix(clinic):
    import matplotlib.pyplot as plt

    from vgcourse.lessons import lesson09_plots

    pairs = [
        ("deep sigmoid", "batch norm"),
        ("tiny init", "He init"),
        ("lr too high", "batch norm"),
    ]
    lesson09_plots.plot_repairs(clinic, pairs)
    axes = plt.gcf().axes
    assert len(axes) == len(capstone.CASES) and all(ax.get_yscale() == "log" for ax in axes)
    labels = [[line.get_label() for line in ax.lines] for ax in axes]
    assert labels[0][:2] == ["broken", "batch norm"] and labels[1][:2] == ["broken", "He init"]
    color = {line.get_label(): line.get_color() for ax in axes for line in ax.lines}
    assert axes[0].lines[1].get_color() == next(
        line.get_color() for line in axes[3].lines if line.get_label().startswith("batch norm")
    )
    assert color["broken"] != color["batch norm"] != color["He init"]
    broken = clinic.run("deep sigmoid")["history"].loss
    np.testing.assert_allclose(
        axes[0].lines[0].get_ydata(), np.convolve(broken, np.ones(10) / 10, "valid")
    )
    assert [ax.get_ylabel() for ax in axes] == [
        "cross-entropy",
        "cross-entropy",
        "MSE",
        "cross-entropy",
    ]


def test_lesson_figures_draw_from_short_runs(data):
    import matplotlib.pyplot as plt

    from vgcourse.lessons import lesson09_plots

    (X, y), _, _ = data
    runs = {}
    for init, seed in (("random", 0), ("pretrained", 0), ("random", 1)):
        torch.manual_seed(seed)
        net = vg.mlp(64, 10, depth=2, width=8, activation="sigmoid")
        h = vg.fit(
            net,
            (X, y),
            steps=30,
            lr=0.1,
            batch_size=32,
            probe_every=10,
            record=False,
            progress=False,
        )
        runs[init, seed] = dict(history=h)
    lesson09_plots.plot_sgd_finetuning(runs, math.log(10))
    loss_ax, top_ax = plt.gcf().axes
    assert loss_ax.get_yscale() == "log" and top_ax.get_ylim() == (0, 1)
    # one colour per (init, seed) in both panels; the top layer's mean as measured
    assert (
        loss_ax.lines[0].get_color() == top_ax.lines[0].get_color() != top_ax.lines[1].get_color()
    )
    np.testing.assert_allclose(
        top_ax.lines[2].get_ydata(), runs["random", 1]["history"].stats["act_mean"][:, -1]
    )

    names = {"random": "sigmoid, random init", "pretrained": "sigmoid, pretrained"}
    lesson09_plots.plot_adam_finetuning(runs, names, math.log(10))
    (ax,) = plt.gcf().axes
    assert ax.lines[0].get_color() == ax.lines[2].get_color() != ax.lines[1].get_color()  # per init
    assert ax.lines[0].get_linestyle() != ax.lines[2].get_linestyle()  # per seed

    lesson09_plots.plot_pretraining(
        [np.linspace(0.6, 0.3, 20), np.linspace(0.7, 0.62, 20)], [0.2, 0.6]
    )
    (ax,) = plt.gcf().axes
    curves, floors = ax.lines[::2], ax.lines[1::2]
    assert [c.get_color() for c in curves] == [f.get_color() for f in floors]
    assert [f.get_ydata()[0] for f in floors] == [0.2, 0.6]

    depths = [1, 2, 4]
    acc = {1: [0.9, 0.8], 2: [1.0, 0.95], 4: [0.4, 0.5]}
    ratio = {1: [1.0, 1.0], 2: [0.1, 0.3], 4: [1e-4, 1e-3]}
    lesson09_plots.plot_depth_tradeoff(depths, acc, ratio, chance=1 / 3)
    acc_ax, ratio_ax = plt.gcf().axes
    np.testing.assert_allclose(acc_ax.lines[len(depths)].get_ydata(), [0.85, 0.975, 0.45])
    assert ratio_ax.get_yscale() == "log"
    np.testing.assert_allclose(ratio_ax.lines[0].get_ydata(), [1.0, 0.2, 5.5e-4])


def test_timing_table_and_plot():
    import matplotlib.pyplot as plt

    from vgcourse.lessons import lesson09_plots

    timings = [("CPU", "plain loop of vg.fit", 2.0), ("CPU", "batched sweep", 0.1)]
    lines = lesson09_plots.timing_table(timings, 24, 40).splitlines()
    assert "24 models x 40 steps" in lines[0]
    assert lines[2] == "| CPU | plain loop of vg.fit | 2.000 | 480 |"
    assert lines[3] == "| CPU | batched sweep | 0.100 | 9,600 |"
    lesson09_plots.plot_timings(timings, 24)
    (ax,) = plt.gcf().axes
    assert [p.get_width() for p in ax.patches] == [2.0, 0.1] and ax.get_xlabel() == "seconds"
