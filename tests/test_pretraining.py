import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import vgcourse as vg
from vgcourse.lessons import lesson09_pretraining as pretraining
from vgcourse.lessons.lesson09_pretraining import (
    PretrainResult,
    grad_ratio,
    greedy_pretrain,
    hidden_representation,
    masking_noise,
    pretrain_layer,
)


@pytest.fixture(scope="module")
def digits():
    X, _ = vg.data.digits()
    return X[:200]


def sigmoid_mlp(depth=3, width=16, seed=0, **kw):
    torch.manual_seed(seed)
    return vg.mlp(64, 10, depth=depth, width=width, activation="sigmoid", init="standard", **kw)


# -- masking noise --------------------------------------------------------------------------------
def test_masking_noise_zeroes_about_the_requested_fraction():
    X = torch.ones(200, 50)
    out = masking_noise(X, 0.3, generator=torch.Generator().manual_seed(0))
    zero_fraction = float((out == 0).float().mean())
    assert abs(zero_fraction - 0.3) < 0.03
    assert torch.all((out == 0) | (out == 1)), "kept entries must be unchanged"
    assert torch.all(X == 1), "the input must not be modified"


def test_masking_noise_zero_fraction_is_identity_and_seeded_is_repeatable():
    X = torch.rand(10, 5)
    assert masking_noise(X, 0.0) is X
    a = masking_noise(X, 0.5, generator=torch.Generator().manual_seed(3))
    b = masking_noise(X, 0.5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


@pytest.mark.parametrize("fraction", [1.0, 1.5, -0.1, float("nan")])
def test_masking_noise_rejects_bad_fractions(fraction):
    with pytest.raises(ValueError, match="fraction"):
        masking_noise(torch.ones(3, 3), fraction)


def test_masking_noise_rejects_non_tensors():
    with pytest.raises(TypeError, match="X"):
        masking_noise([[1.0, 2.0]], 0.1)


# -- hidden representation ------------------------------------------------------------------------
def test_hidden_representation_matches_forward_hidden(digits):
    net = sigmoid_mlp(depth=3)
    assert torch.equal(hidden_representation(net, digits, 0), digits)
    with torch.no_grad():
        expected = net.forward_hidden(digits)
    for layer in (1, 2, 3):
        assert torch.allclose(hidden_representation(net, digits, layer), expected[layer - 1])
    assert net.training, "the model's mode must be restored"


def test_hidden_representation_rejects_bad_layers_and_models(digits):
    net = sigmoid_mlp(depth=2)
    with pytest.raises(ValueError, match="between 0 and 2"):
        hidden_representation(net, digits, 3)
    with pytest.raises(ValueError, match="layers must be an integer >= 0"):
        hidden_representation(net, digits, -1)
    with pytest.raises(TypeError, match="vgcourse.mlp"):
        hidden_representation(nn.Sequential(nn.Linear(64, 8)), digits, 1)
    with pytest.raises(ValueError, match="skip connection"):
        hidden_representation(sigmoid_mlp(depth=3, residual=True), digits, 1)
    with pytest.raises(ValueError, match="normalization"):
        hidden_representation(sigmoid_mlp(depth=3, norm="batch"), digits, 1)


# -- one layer ------------------------------------------------------------------------------------
def reference_tied_sgd(W, b, H, steps, lr):
    """An independent tied-weight sigmoid autoencoder trained by full-batch gradient descent."""
    W = W.clone().requires_grad_(True)
    b = b.clone().requires_grad_(True)
    c = torch.zeros(H.shape[1], requires_grad=True)
    losses = []
    for _ in range(steps):
        code = torch.sigmoid(H @ W.T + b)
        loss = F.binary_cross_entropy(torch.sigmoid(code @ W + c), H)
        gW, gb, gc = torch.autograd.grad(loss, [W, b, c])
        with torch.no_grad():
            W -= lr * gW
            b -= lr * gb
            c -= lr * gc
        losses.append(float(loss.detach()))
    return W.detach(), b.detach(), losses


def test_pretrain_layer_equals_an_independent_implementation(digits):
    torch.manual_seed(1)
    encoder = nn.Linear(64, 12)
    W0, b0 = encoder.weight.detach().clone(), encoder.bias.detach().clone()
    losses = pretrain_layer(
        encoder, nn.Sigmoid(), digits, steps=15, lr=0.5, optimizer="sgd", batch_size=None
    )
    W_ref, b_ref, losses_ref = reference_tied_sgd(W0, b0, digits, 15, 0.5)
    np.testing.assert_allclose(losses, losses_ref, rtol=1e-5)
    assert torch.allclose(encoder.weight, W_ref, atol=1e-6)
    assert torch.allclose(encoder.bias, b_ref, atol=1e-6)
    assert encoder.weight.grad is None, "gradients must be cleared afterwards"


def test_pretrain_layer_learns_and_is_repeatable(digits):
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        encoder = nn.Linear(64, 16)
        losses = pretrain_layer(
            encoder, nn.Sigmoid(), digits, steps=80, lr=1e-2, batch_size=32, noise=0.2, seed=4
        )
        runs.append((losses, encoder.weight.detach().clone()))
    losses = runs[0][0]
    assert losses.shape == (80,)
    assert losses[-10:].mean() < 0.8 * losses[:5].mean()
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert torch.equal(runs[0][1], runs[1][1])


def test_pretrain_layer_untied_and_mse(digits):
    torch.manual_seed(0)
    encoder = nn.Linear(64, 8)
    before = encoder.weight.detach().clone()
    untied = pretrain_layer(encoder, nn.Sigmoid(), digits, steps=30, lr=1e-2, tied=False)
    assert untied[-1] < untied[0] and not torch.equal(before, encoder.weight)
    centred = digits - 0.5  # outside [0, 1]: only the squared error applies
    encoder = nn.Linear(64, 8)
    mse = pretrain_layer(encoder, nn.Tanh(), centred, steps=30, lr=1e-2, reconstruction="mse")
    assert mse[-1] < mse[0]


def test_pretrain_layer_on_every_device(device, digits):
    torch.manual_seed(0)
    encoder = nn.Linear(64, 8).to(device)
    losses = pretrain_layer(encoder, nn.Sigmoid(), digits, steps=5, lr=1e-2, noise=0.1)
    assert np.all(np.isfinite(losses)) and encoder.weight.device.type == device.type


def test_pretrain_layer_rejects_bad_arguments(digits):
    enc, act = nn.Linear(64, 8), nn.Sigmoid()
    with pytest.raises(TypeError, match="encoder"):
        pretrain_layer(nn.Conv1d(1, 1, 3), act, digits, steps=1, lr=0.1)
    with pytest.raises(TypeError, match="act"):
        pretrain_layer(enc, torch.sigmoid, digits, steps=1, lr=0.1)
    with pytest.raises(ValueError, match="64 columns"):
        pretrain_layer(enc, act, digits[:, :10], steps=1, lr=0.1)
    with pytest.raises(ValueError, match="2 dimensions"):
        pretrain_layer(enc, act, digits[0], steps=1, lr=0.1)
    with pytest.raises(ValueError, match="steps"):
        pretrain_layer(enc, act, digits, steps=0, lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        pretrain_layer(enc, act, digits, steps=1, lr=-1.0)
    with pytest.raises(ValueError, match="optimizer"):
        pretrain_layer(enc, act, digits, steps=1, lr=0.1, optimizer="lbfgs")
    with pytest.raises(ValueError, match="noise"):
        pretrain_layer(enc, act, digits, steps=1, lr=0.1, noise=1.0)
    with pytest.raises(ValueError, match="reconstruction"):
        pretrain_layer(enc, act, digits, steps=1, lr=0.1, reconstruction="l1")
    with pytest.raises(ValueError, match=r"needs H in \[0, 1\]"):
        pretrain_layer(enc, act, digits - 0.5, steps=1, lr=0.1)
    with pytest.raises(TypeError, match="tied"):
        pretrain_layer(enc, act, digits, steps=1, lr=0.1, tied="yes")
    with pytest.raises(ValueError, match="non-finite"):
        pretrain_layer(enc, act, torch.full((4, 64), float("nan")), steps=1, lr=0.1)


# -- the whole stack --------------------------------------------------------------------------------
def test_greedy_pretrain_trains_every_hidden_layer_and_not_the_output(digits):
    net = sigmoid_mlp(depth=3)
    hidden_before = [layer.weight.detach().clone() for layer in net.hidden_layers]
    output_before = net.output_layer.weight.detach().clone()
    result = greedy_pretrain(net, digits, steps_per_layer=40, lr=1e-2, batch_size=50)
    assert isinstance(result, PretrainResult) and len(result.losses) == 3
    assert all(v.shape == (40,) for v in result.losses)
    for before, layer in zip(hidden_before, net.hidden_layers):
        assert not torch.equal(before, layer.weight)
    assert torch.equal(output_before, net.output_layer.weight)
    assert all(v[-5:].mean() < v[:5].mean() for v in result.losses)
    assert len(result.final_losses) == 3 and "layers=3" in repr(result)


def test_greedy_pretrain_layers_argument_and_determinism(digits):
    a, b = sigmoid_mlp(depth=3), sigmoid_mlp(depth=3)
    third = b.hidden_layers[2].weight.detach().clone()
    greedy_pretrain(a, digits, steps_per_layer=10, lr=1e-2, layers=2, seed=5)
    greedy_pretrain(b, digits, steps_per_layer=10, lr=1e-2, layers=2, seed=5)
    assert torch.equal(b.hidden_layers[2].weight, third), "layer 3 must stay untouched"
    for la, lb in zip(a.hidden_layers, b.hidden_layers):
        assert torch.equal(la.weight, lb.weight)


def test_greedy_pretrain_raises_the_first_to_last_gradient_ratio():
    X, y = vg.data.digits()
    X, y = X[:300], y[:300]
    random_net = sigmoid_mlp(depth=5, width=32)
    pretrained = sigmoid_mlp(depth=5, width=32)  # the same initial weights
    greedy_pretrain(pretrained, X, steps_per_layer=60, lr=1e-2, batch_size=64)
    before = grad_ratio(vg.layer_grad_norms(random_net, X, y))
    after = grad_ratio(vg.layer_grad_norms(pretrained, X, y))
    assert before < 1e-3 and after > 100 * before


def test_greedy_pretrain_rejects_bad_arguments(digits):
    net = sigmoid_mlp(depth=2)
    with pytest.raises(ValueError, match="between 1 and 2"):
        greedy_pretrain(net, digits, steps_per_layer=1, lr=0.1, layers=3)
    with pytest.raises(ValueError, match="layers must be an integer >= 1"):
        greedy_pretrain(net, digits, steps_per_layer=1, lr=0.1, layers=0)
    with pytest.raises(ValueError, match="steps_per_layer"):
        greedy_pretrain(net, digits, steps_per_layer=0, lr=0.1)
    with pytest.raises(ValueError, match="batch dimension"):
        greedy_pretrain(net, digits[0], steps_per_layer=1, lr=0.1)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        greedy_pretrain("net", digits, steps_per_layer=1, lr=0.1)
    relu = vg.mlp(64, 10, depth=2, width=8, activation="relu")
    with pytest.raises(ValueError, match="reconstruction='mse'"):
        greedy_pretrain(relu, digits - 0.5, steps_per_layer=1, lr=0.1)
    greedy_pretrain(relu, digits, steps_per_layer=2, lr=0.1, reconstruction="mse")


# -- gradient ratio ---------------------------------------------------------------------------------
def test_grad_ratio():
    assert grad_ratio([1.0, 0.5, 0.25]) == 4.0
    assert grad_ratio(np.array([1e-8, 1.0])) == pytest.approx(1e-8)
    assert math.isnan(grad_ratio([1.0, 0.0]))
    assert math.isnan(grad_ratio([float("nan"), 1.0]))
    assert math.isnan(grad_ratio([1.0, float("inf")]))
    with pytest.raises(ValueError, match="at least 2"):
        grad_ratio([1.0])


def test_module_exports():
    assert pretraining.RECONSTRUCTIONS == ("bce", "mse")
    assert "sgd" in pretraining.PRETRAIN_OPTIMIZERS
