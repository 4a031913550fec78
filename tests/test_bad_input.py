"""Bad input to the public API (the names in the course design): each call raises a ``ValueError`` or
``TypeError`` whose message names the argument, shows the bad value and says what is allowed.

One row per case: the call, the exception type, and the fragments the message must contain. Shape
mismatches between a model's output and the target are checked for every named loss, in every
function that computes one (fit, layer_grad_norms, evaluate, diagnose): PyTorch itself would broadcast
an ``(N,)`` output against an ``(N, 1)`` target to ``(N, N)`` and only warn.
"""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

import vgcourse as vg

X = torch.randn(6, 2)
y = torch.randint(0, 2, (6,))


def net() -> nn.Module:
    return vg.mlp(2, 2, depth=2, width=4)


# (id, call, exception, fragments the message must contain: argument, bad value, what is allowed)
CASES = [
    ("device", lambda: vg.get_device(prefer="tpu"), ValueError, ["prefer", "'tpu'", "'cuda'"]),
    ("seed type", lambda: vg.seed_everything("zero"), TypeError, ["seed", "'zero'", "integer"]),
    ("seed value", lambda: vg.seed_everything(-1), ValueError, ["seed", "-1", ">= 0"]),
    (
        "activation name",
        lambda: vg.activation("swishy"),
        ValueError,
        ["activation", "'swishy'", "'gelu'"],
    ),
    ("activation type", lambda: vg.activation(3), TypeError, ["activation", "3", "'relu'"]),
    (
        "init scheme",
        lambda: vg.init_(net(), "glorot"),
        ValueError,
        ["scheme", "'glorot'", "'xavier_uniform'"],
    ),
    (
        "init module",
        lambda: vg.init_("net", "xavier_uniform"),
        TypeError,
        ["module", "str", "nn.Module"],
    ),
    ("mlp depth", lambda: vg.mlp(2, 2, depth=0, width=4), ValueError, ["depth", "0", ">= 1"]),
    ("mlp width", lambda: vg.mlp(2, 2, depth=2, width=0), ValueError, ["width", "0", ">= 1"]),
    (
        "mlp width type",
        lambda: vg.mlp(2, 2, depth=2, width=4.5),
        TypeError,
        ["width", "4.5", "integer"],
    ),
    (
        "mlp in_features",
        lambda: vg.mlp(0, 2, depth=2, width=4),
        ValueError,
        ["in_features", "0", ">= 1"],
    ),
    (
        "mlp activation",
        lambda: vg.mlp(2, 2, depth=2, width=4, activation="tanhh"),
        ValueError,
        ["activation", "'tanhh'", "'tanh'"],
    ),
    (
        "mlp init",
        lambda: vg.mlp(2, 2, depth=2, width=4, init="he"),
        ValueError,
        ["scheme", "'he'", "'kaiming_normal'"],
    ),
    (
        "mlp norm",
        lambda: vg.mlp(2, 2, depth=2, width=4, norm="group"),
        ValueError,
        ["norm", "'group'", "'batch'", "'layer'"],
    ),
    (
        "rnn cell",
        lambda: vg.rnn_model("transformer", 2, 4, 1),
        ValueError,
        ["cell", "'transformer'", "'lstm'"],
    ),
    (
        "rnn hidden_size",
        lambda: vg.rnn_model("lstm", 2, 0, 1),
        ValueError,
        ["hidden_size", "0", ">= 1"],
    ),
    (
        "rnn output_size",
        lambda: vg.rnn_model("lstm", 2, 4, 0),
        ValueError,
        ["output_size", "0", ">= 1"],
    ),
    (
        "rnn num_layers",
        lambda: vg.rnn_model("lstm", 2, 4, 1, num_layers=0),
        ValueError,
        ["num_layers", "0", ">= 1"],
    ),
    (
        "rnn nonlinearity",
        lambda: vg.rnn_model("rnn", 2, 4, 1, nonlinearity="sigmoid"),
        ValueError,
        ["nonlinearity", "'sigmoid'", "'tanh'"],
    ),
    (
        "rnn forget_bias",
        lambda: vg.rnn_model("gru", 2, 4, 1, forget_bias=1.0),
        ValueError,
        ["forget_bias", "'gru'", "'lstm'"],
    ),
    (
        "grad norms loss",
        lambda: vg.layer_grad_norms(net(), X, y, loss="hinge"),
        ValueError,
        ["loss", "'hinge'", "'cross_entropy'"],
    ),
    (
        "grad norms rows",
        lambda: vg.layer_grad_norms(net(), X, y[:5]),
        ValueError,
        ["X and y", "6", "5"],
    ),
    (
        "fit steps",
        lambda: vg.fit(net(), (X, y), steps=0, lr=1e-3),
        ValueError,
        ["steps", "0", ">= 1"],
    ),
    ("fit lr", lambda: vg.fit(net(), (X, y), steps=1, lr=-1.0), ValueError, ["lr", "-1.0", "> 0"]),
    (
        "fit lr nan",
        lambda: vg.fit(net(), (X, y), steps=1, lr=float("nan")),
        ValueError,
        ["lr", "nan", "finite"],
    ),
    (
        "fit optimizer",
        lambda: vg.fit(net(), (X, y), steps=1, lr=1e-3, optimizer="lbfgs"),
        ValueError,
        ["optimizer", "'lbfgs'", "'adam'"],
    ),
    (
        "fit batch_size",
        lambda: vg.fit(net(), (X, y), steps=1, lr=1e-3, batch_size=0),
        ValueError,
        ["batch_size", "0", ">= 1"],
    ),
    (
        "fit clip_norm",
        lambda: vg.fit(net(), (X, y), steps=1, lr=1e-3, clip_norm=-1.0),
        ValueError,
        ["clip_norm", "-1.0", "> 0"],
    ),
    (
        "fit clip_value",
        lambda: vg.fit(net(), (X, y), steps=1, lr=1e-3, clip_value=0.0),
        ValueError,
        ["clip_value", "0.0", "> 0"],
    ),
    (
        "fit non-finite X",
        lambda: vg.fit(net(), (torch.full((6, 2), float("nan")), y), steps=1, lr=1e-3),
        ValueError,
        ["X", "non-finite", "NaN"],
    ),
    (
        "evaluate loss",
        lambda: vg.evaluate(net(), (X, y), loss="nll"),
        ValueError,
        ["loss", "'nll'", "'mse'"],
    ),
    ("moons n", lambda: vg.data.moons(0, 0.1, seed=0), ValueError, ["n", "0", ">= 2"]),
    ("moons noise", lambda: vg.data.moons(10, -0.1, seed=0), ValueError, ["noise", "-0.1", ">= 0"]),
    ("adding T", lambda: vg.data.adding_problem(10, 1, seed=0), ValueError, ["T", "1", ">= 2"]),
    ("adding n", lambda: vg.data.adding_problem(0, 10, seed=0), ValueError, ["n", "0", ">= 1"]),
    (
        "diagnose model",
        lambda: vg.diagnose("model", X, y),
        TypeError,
        ["model", "str", "nn.Module"],
    ),
    (
        "diagnose loss",
        lambda: vg.diagnose(net(), X, y, loss="hinge"),
        ValueError,
        ["loss", "'hinge'", "'bce'"],
    ),
    (
        "diagnose rows",
        lambda: vg.diagnose(net(), X, y[:4]),
        ValueError,
        ["X and y", "(6, 2)", "(4,)"],
    ),
    (
        "probe_model model",
        lambda: vg.probe_model(42, X, y),
        TypeError,
        ["model", "int", "nn.Module"],
    ),
    (
        "probe_model X",
        lambda: vg.probe_model(net(), [[1.0, 2.0]]),
        TypeError,
        ["X", "list", "torch.Tensor"],
    ),
    (
        "epochs_to_steps",
        lambda: vg.epochs_to_steps(0, 100, 10),
        ValueError,
        ["epochs", "0", ">= 1"],
    ),
]


@pytest.mark.parametrize(
    "call, error, fragments", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_argument_is_named_with_its_value_and_what_is_allowed(call, error, fragments):
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    missing = [f for f in fragments if f not in message]
    assert not missing, f"message {message!r} lacks {missing}"


def test_there_are_at_least_30_bad_input_cases():
    assert len(CASES) >= 30


# -- the model's output and the target must fit the loss: an error naming both shapes ------------------


class Flat(nn.Module):
    """A regression model whose output is (N,), as many hand-written models have."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, x):
        return self.linear(x).squeeze(-1)


# (loss, model, target, the two shapes the message must name)
MISMATCHES = [
    ("mse", Flat, torch.randn(6, 1), "(6,)", "(6, 1)"),  # would broadcast to (6, 6)
    ("mse", lambda: vg.mlp(2, 1, depth=1, width=3), torch.randn(6, 2), "(6, 1)", "(6, 2)"),
    ("bce", Flat, torch.randint(0, 2, (6, 1)).float(), "(6,)", "(6, 1)"),
    (
        "bce",
        lambda: vg.mlp(2, 2, depth=1, width=3),
        torch.randint(0, 2, (6,)).float(),
        "(6, 2)",
        "(6,)",
    ),
    (
        "cross_entropy",
        lambda: vg.mlp(2, 3, depth=1, width=3),
        torch.randint(0, 3, (6, 1)),
        "(6, 3)",
        "(6, 1)",
    ),
    ("cross_entropy", Flat, torch.randint(0, 2, (6,)), "(6,)", "(6,)"),
]


def _call(kind, model, target, loss):
    if kind == "fit":
        return vg.fit(model, (X, target), steps=1, lr=1e-3, loss=loss)
    if kind == "layer_grad_norms":
        return vg.layer_grad_norms(model, X, target, loss=loss)
    if kind == "evaluate":
        return vg.evaluate(model, (X, target), loss=loss)
    return vg.diagnose(model, X, target, loss=loss)


@pytest.mark.parametrize("kind", ["fit", "layer_grad_norms", "evaluate", "diagnose"])
@pytest.mark.parametrize(
    "loss, make_model, target, out_shape, y_shape",
    MISMATCHES,
    ids=[f"{m[0]}-{m[3]}-vs-{m[4]}" for m in MISMATCHES],
)
def test_output_and_target_that_do_not_fit_the_loss_are_an_error(
    kind, loss, make_model, target, out_shape, y_shape
):
    torch.manual_seed(0)
    model = make_model()
    with pytest.raises(ValueError) as info:
        _call(kind, model, target, loss)
    text = str(info.value) + "".join(f" {c}" for c in _causes(info.value))
    assert f"loss={loss!r}" in text and y_shape in text, text
    if kind == "diagnose":  # it names the caller's X and y shapes
        assert "(6, 2)" in text and f"y shape {y_shape}" in text, text
    else:
        assert out_shape in text, text


def _causes(err):
    while err.__cause__ is not None or err.__context__ is not None:
        err = err.__cause__ or err.__context__
        yield err


@pytest.mark.parametrize(
    "loss, make_model, target",
    [
        ("mse", lambda: vg.mlp(2, 1, depth=1, width=3), torch.randn(6)),  # (N, 1) head, (N,) target
        ("mse", Flat, torch.randn(6)),
        ("bce", lambda: vg.mlp(2, 1, depth=1, width=3), torch.randint(0, 2, (6,)).float()),
        ("cross_entropy", lambda: vg.mlp(2, 3, depth=1, width=3), torch.randint(0, 3, (6,))),
    ],
)
def test_shapes_that_fit_train(loss, make_model, target):
    history = vg.fit(make_model(), (X, target), steps=2, lr=1e-3, loss=loss)
    assert len(history.loss) == 2 and history.diverged_at is None


def test_mse_of_a_single_output_head_is_elementwise_not_broadcast():
    out = torch.tensor([[1.0], [2.0], [3.0]])
    target = torch.tensor([1.0, 2.0, 5.0])
    assert float(vg.losses.get_loss("mse")(out, target)) == pytest.approx(4.0 / 3)


def test_language_model_logits_take_token_labels():
    logits = torch.randn(2, 5, 7)
    tokens = torch.randint(0, 7, (2, 5))
    expected = nn.functional.cross_entropy(logits.reshape(10, 7), tokens.reshape(10))
    assert torch.equal(vg.losses.get_loss("cross_entropy")(logits, tokens), expected)
    with pytest.raises(ValueError, match=re.escape("(2, 5, 7)")):
        vg.losses.get_loss("cross_entropy")(logits, tokens[:, :4])
