import json

import pytest
import torch
from torch import nn

import vgcourse as vg
from vgcourse.diagnosis import DiagnosisReport, diagnose


@pytest.fixture(scope="module")
def digits():
    X, y = vg.data.digits()
    return X[:192], y[:192]


def build(seed=0, **kw):
    torch.manual_seed(seed)
    return vg.mlp(64, 10, **kw)


def test_healthy_models_get_no_false_alarm(digits):
    X, y = digits
    healthy = {
        "residual + BN + He": build(
            depth=12,
            width=64,
            activation="relu",
            init="kaiming_normal",
            norm="batch",
            residual=True,
        ),
        "plain ReLU + He": build(depth=6, width=64, activation="relu", init="kaiming_normal"),
        "tanh + Xavier": build(depth=4, width=64, activation="tanh", init="xavier_uniform"),
    }
    # the 12-block residual stream grows to std ~3.6 and He init scales the output layer by
    # sqrt(2): its initial loss is 17, 7.5x ln 10, a true finding; its output layer scaled by 0.1
    # (the fix the report names) starts near ln 10
    residual = healthy["residual + BN + He"]
    assert diagnose(residual, X, y).problems == ["initial_loss_high"]
    with torch.no_grad():
        residual.output_layer.weight.mul_(0.1)
    for name, net in healthy.items():
        report = diagnose(net, X, y, train_steps=2)
        assert report.healthy, f"{name}: false alarm {report.problems}"


def test_vanishing_in_deep_sigmoid(digits):
    report = diagnose(build(depth=12, width=64, activation="sigmoid", init="standard"), *digits)
    assert "vanishing_gradients" in report.problems
    finding = report.findings[report.problems.index("vanishing_gradients")]
    assert "blocks.0.linear" in finding.layers and "lesson" in finding.fix


def test_exploding_from_huge_init(digits):
    report = diagnose(build(depth=10, width=64, activation="relu", init="normal", std=1.0), *digits)
    assert "exploding_gradients" in report.problems and "bad_init_scale" in report.problems


def test_tiny_init_scale_and_everywhere_vanishing(digits):
    report = diagnose(
        build(depth=10, width=64, activation="relu", init="normal", std=0.01), *digits
    )
    assert {"bad_init_scale", "vanishing_gradients"} <= set(report.problems)


def test_saturation(digits):
    net = build(depth=3, width=64, activation="tanh", init="normal", std=2.0)
    assert "saturation" in diagnose(net, *digits).problems


def test_dead_units(digits):
    net = build(depth=3, width=64, activation="relu", init="kaiming_normal")
    with torch.no_grad():
        net.hidden_layers[1].bias[:48] = -100.0
    report = diagnose(net, *digits)
    assert "dead_units" in report.problems
    assert report.findings[report.problems.index("dead_units")].layers == ["blocks.1.act"]


def test_non_finite_loss_and_update_too_large(digits):
    X, y = digits
    net = build(depth=2, width=16)
    with torch.no_grad():
        net.output_layer.weight.fill_(float("nan"))
    assert diagnose(net, X, y).problems == ["non_finite_loss"]
    net = build(depth=3, width=64, activation="relu", init="kaiming_normal")
    report = diagnose(net, X, y, train_steps=2, lr=10.0, optimizer="sgd")
    assert "update_too_large" in report.problems
    clipped = diagnose(net, X, y, train_steps=2, lr=10.0, optimizer="sgd", clip_norm=1e-4)
    assert "update_too_large" not in clipped.problems


def test_rnn_vanishing_through_time_and_model_untouched():
    X, y = vg.data.adding_problem(64, 60, seed=0)
    torch.manual_seed(0)
    rnn = vg.rnn_model("rnn", 2, 16, 1)
    before = [p.detach().clone() for p in rnn.parameters()]
    report = diagnose(rnn, X, y, loss="mse", train_steps=3)
    assert "vanishing_through_time" in report.problems and report.time_grad_ratio < 1e-3
    assert all(torch.equal(a, b) for a, b in zip(before, rnn.parameters()))
    assert all(p.grad is None for p in rnn.parameters())
    lstm = vg.rnn_model("lstm", 2, 16, 1)
    report = diagnose(lstm, X[:, :8], y, loss="mse")
    assert report.time_grad_ratio is not None and report.time_grad_ratio > 1e-3


def test_any_model_cnn_with_skip_and_custom_loss(digits):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 8, 3, padding=1)
            self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
            self.head = nn.Linear(8 * 64, 10)

        def forward(self, x):
            h = torch.relu(self.conv(x))
            h = h + torch.relu(self.conv2(h))
            return self.head(h.flatten(1))

    X, y = vg.data.digits("images")
    report = diagnose(
        Net(), (X[:64], y[:64]), loss=lambda out, t: nn.functional.cross_entropy(out, t)
    )
    assert [r["name"] for r in report.layers] == ["conv", "conv2", "head"]
    assert all(r["grad_norm"] > 0 for r in report.layers)


def test_outputs_text_html_dict(digits):
    report = diagnose(build(depth=8, width=32, activation="sigmoid", init="standard"), *digits)
    text = str(report)
    assert "Verdict" in text and "blocks.0.linear" in text and "vanishing" in text
    page = report._repr_html_()
    assert "<table>" in page and "data:image/png;base64," in page
    data = report.to_dict()
    json.dumps(data)
    assert data["healthy"] is False and data["findings"][0]["problem"] == "vanishing_gradients"
    assert isinstance(report, DiagnosisReport) and "problems" in repr(report)


def test_bad_input(digits):
    X, y = digits
    net = build(depth=2, width=8)
    with pytest.raises(TypeError, match="nn.Module"):
        diagnose("model", X, y)
    with pytest.raises(ValueError, match="no parameters"):
        diagnose(nn.ReLU(), X, y)
    with pytest.raises(ValueError, match="does not fit the model"):
        diagnose(net, torch.randn(8, 5), y[:8])
    with pytest.raises(ValueError, match="same number of rows"):
        diagnose(net, X, y[:3])
    with pytest.raises(ValueError, match="scalar"):
        diagnose(
            net, X, y, loss=lambda out, t: nn.functional.cross_entropy(out, t, reduction="none")
        )
    with pytest.raises(TypeError, match="y is required"):
        diagnose(net, X)
    with pytest.raises(ValueError, match="non-finite"):
        diagnose(net, X * float("nan"), y)
    with pytest.raises(ValueError, match="cannot compare"):
        diagnose(net, X, torch.randn(len(X), 3), loss="mse")
