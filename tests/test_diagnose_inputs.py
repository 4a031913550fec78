"""vg.diagnose on what practitioners pass and what their models return: dict batches and forward
keyword arguments, a loss the model computes, tuple/dict/ModelOutput outputs, sequence-first
batches; no silent splitting of small batches; errors that chain the model's own; frozen and
gradient-less models; numbers equal to hand-written hooks; the report's views agree."""

from __future__ import annotations

import json
import math

import pytest
import test_diagnose_zoo as zoo
import torch
from torch import nn

from vgcourse.diagnosis import MIN_SAMPLES_PER_PASS, diagnose
from vgcourse.model_state import differences, snapshot


def _lm():
    torch.manual_seed(0)
    model = zoo.HFStyleLM()
    ids, labels = zoo.tokens()
    mask = torch.ones_like(ids)
    mask[:, -3:] = 0
    return model, ids, labels, mask


def test_hugging_face_style_dict_batch_uses_the_models_own_loss():
    model, ids, labels, mask = _lm()
    before = snapshot(model)
    report = diagnose(model, {"input_ids": ids, "attention_mask": mask, "labels": labels})
    assert differences(before, snapshot(model)) == []
    with torch.no_grad():
        own = float(model(ids, mask, labels).loss)
    assert report.loss == pytest.approx(own, rel=1e-6)
    assert report.healthy, report.problems
    assert "lm.embed" in [r["name"] for r in report.layers]


def test_forward_kwargs_and_language_model_logits():
    model, ids, labels, mask = _lm()
    report = diagnose(model, ids, labels, forward_kwargs={"attention_mask": mask})
    with torch.no_grad():  # (B, T, V) logits against (B, T) tokens: the LM's cross-entropy
        own = float(model(ids, mask, labels).loss)
    assert report.loss == pytest.approx(own, rel=1e-6) and report.classes == 50
    split = diagnose(
        model,
        torch.cat([ids] * 4),
        torch.cat([labels] * 4),
        forward_kwargs={"attention_mask": torch.cat([mask] * 4)},
        passes=2,
    )  # the mask is split with X: a wrong split would fail in attention
    assert split.loss == pytest.approx(own, rel=1e-5)


def test_output_fn_picks_what_the_defaults_cannot():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(64, 10)

        def forward(self, x):
            return {"scores": [self.lin(x)]}

    X, y = zoo.vectors()
    with pytest.raises(TypeError, match="output_fn"):
        diagnose(Odd(), X, y)
    report = diagnose(Odd(), X, y, output_fn=lambda out: out["scores"][0])
    assert [r["name"] for r in report.layers] == ["lin"]


def test_no_silent_splitting_of_small_batches():
    torch.manual_seed(0)
    net = zoo.plain_mlp(depth=3, bn=True)
    X, y = zoo.vectors(6)
    report = diagnose(net, X, y)  # one pass over the 6 samples
    assert report.healthy, report.problems
    with pytest.raises(
        ValueError,
        match=f"passes=3 would split your batch of 6 samples.*at least {MIN_SAMPLES_PER_PASS}",
    ):
        diagnose(net, X, y, passes=3)


def test_errors_name_the_callers_shapes_and_chain_the_models_error():
    class Picky(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(64, 10)

        def forward(self, x):
            raise KeyError("the model's own complaint")

    X, y = zoo.vectors(6)
    with pytest.raises(ValueError, match=r"X has shape \(6, 64\)") as info:
        diagnose(Picky(), X, y)
    assert isinstance(info.value.__cause__, KeyError)
    assert "the model's own complaint" in str(info.value)


def test_frozen_and_gradientless_models():
    torch.manual_seed(0)
    net = zoo.plain_mlp(depth=2)
    X, y = zoo.vectors()
    for p in net.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="every parameter of the model is frozen"):
        diagnose(net, X, y)
    norm_only = nn.Sequential(nn.LayerNorm(64))  # parameters, but no weight matrix
    report = diagnose(norm_only, X, torch.randn(len(X), 64), loss="mse")
    assert report.problems == ["nothing_measured"] and not report.healthy
    frozen = zoo.frozen_backbone()
    report = diagnose(frozen, *zoo.images())
    assert [r["name"] for r in report.layers] == ["fc"]
    assert "stem.weight" in report.frozen and "frozen parameter" in str(report)


def test_numbers_equal_hand_written_hooks():
    torch.manual_seed(0)
    net = zoo.RawMLP(depth=3, act=torch.tanh)
    X, y = zoo.vectors()
    report = diagnose(net, X, y)
    torch.manual_seed(0)
    twin = zoo.RawMLP(depth=3, act=torch.tanh)
    nn.functional.cross_entropy(twin(X), y).backward()
    for row, W in zip(report.layers, twin.W):
        assert row["grad_norm"] == pytest.approx(float(W.grad.norm()), rel=1e-6)
        assert row["grad_rms"] == pytest.approx(
            float(W.grad.norm()) / math.sqrt(W.numel()), rel=1e-6
        )
        assert row["grad_to_data"] == pytest.approx(
            float(W.grad.norm() / W.detach().norm()), rel=1e-6
        )


def test_recurrent_report_and_cell_specific_fix():
    torch.manual_seed(0)
    gru = zoo.SeqClassifier("gru", tokens=True)
    X, y = zoo.sequences(tokens=True)
    report = diagnose(gru, X, y, loss="mse")
    assert len(report.time_grads) == 200 and report.recurrent_cell == "gru"
    fix = next(f.fix for f in report.findings if f.problem == "vanishing_through_time")
    assert "GRU" in fix and "forget" not in fix
    page = report._repr_html_()
    assert "first time step / last time step" in page


def test_activations_recognised_by_behaviour_and_unknown_ones_listed():
    torch.manual_seed(0)
    report = diagnose(zoo.TinyLM(act=zoo.NewGELUActivation), *zoo.tokens())
    assert {u["behaves_like"] for u in report.unrecognised} == {"gelu"}
    report = diagnose(zoo.mobilenetish(), *zoo.images())
    assert any("behaves like hardswish" in a["activation"] for a in report.activations)
    report = diagnose(zoo.TinyLM(act=zoo.Wiggle), *zoo.tokens())
    assert [u["behaves_like"] for u in report.unrecognised] == [None, None]
    assert "Wiggle" in str(report) and "Wiggle" in report._repr_html_()


def test_diverging_trial_step_is_reported():
    torch.manual_seed(0)
    net = zoo.plain_mlp(depth=4, gain=math.sqrt(2))
    X, y = zoo.vectors()
    before = snapshot(net)
    report = diagnose(net, X, y, train_steps=3, lr=1e4, optimizer="sgd")
    assert differences(before, snapshot(net)) == []
    assert "training_diverged" in report.problems and report.trial_diverged_at is not None
    assert f"step {report.trial_diverged_at}" in str(report)


def test_zero_gradient_layers_are_listed_and_html_shows_the_evidence():
    _, report, _ = zoo._run("resnet-zero-init-residual")
    data = report.to_dict()
    json.dumps(data)
    assert len(data["zero_grad"]) == 6 and report.healthy
    page = report._repr_html_()
    for piece in ("exactly zero gradient", "data:image/png;base64,"):
        assert piece in page, piece
    assert "activation layer" in zoo._run("vgg-bn")[1]._repr_html_()
    _, sick, _ = zoo._run("middle-branch-at-1e-9")
    flagged = sick.findings[0].layers
    assert flagged == ["branches.3"], flagged  # the middle branch, not the first layer
    assert "background:#fdd" in sick._repr_html_() and "FLAGGED" in str(sick)
    assert sick.to_dict()["findings"][0]["layers"] == flagged
