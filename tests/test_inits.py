import math

import pytest
import torch
from torch import nn

import vgcourse as vg
from vgcourse.inits import fans, init_weight_


def big_linear(n_in=400, n_out=300):
    return nn.Linear(n_in, n_out)


@pytest.mark.parametrize(
    "scheme, expected_var",
    [
        ("standard", lambda i, o: 1 / (3 * i)),
        ("xavier_uniform", lambda i, o: 2 / (i + o)),
        ("xavier_normal", lambda i, o: 2 / (i + o)),
        ("kaiming_uniform", lambda i, o: 2 / i),
        ("kaiming_normal", lambda i, o: 2 / i),
        ("lecun_normal", lambda i, o: 1 / i),
        ("normal", lambda i, o: 1e-4),
    ],
)
def test_variances_match_formulas(scheme, expected_var):
    torch.manual_seed(0)
    layer = vg.init_(big_linear(), scheme)
    var = float(layer.weight.detach().var())
    assert var == pytest.approx(expected_var(400, 300), rel=0.05), scheme
    assert torch.count_nonzero(layer.bias) == 0


def test_standard_equals_pytorch_default_bounds():
    torch.manual_seed(0)
    default = nn.Linear(256, 128).weight
    torch.manual_seed(0)
    ours = vg.init_(nn.Linear(256, 128), "standard").weight
    bound = 1 / math.sqrt(256)
    assert float(default.abs().max()) <= bound and float(ours.abs().max()) <= bound
    assert float(default.var()) == pytest.approx(float(ours.var()), rel=0.05)


def test_orthogonal_gain_and_zeros():
    layer = vg.init_(nn.Linear(64, 64), "orthogonal", gain=2.0)
    W = layer.weight.detach()
    assert torch.allclose(W @ W.T, 4 * torch.eye(64), atol=1e-4)
    assert torch.count_nonzero(vg.init_(nn.Linear(3, 3), "zeros").weight) == 0


def test_kaiming_gain_from_nonlinearity_and_explicit_gain():
    torch.manual_seed(0)
    w = vg.init_(big_linear(), "kaiming_normal", nonlinearity="linear").weight
    assert float(w.var()) == pytest.approx(1 / 400, rel=0.05)
    w = vg.init_(big_linear(), "xavier_normal", gain=5 / 3).weight
    assert float(w.var()) == pytest.approx((5 / 3) ** 2 * 2 / 700, rel=0.05)


def test_applies_to_conv_and_rnn_and_skips_norm():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.LSTM(4, 8))
    vg.init_(net, "zeros")
    assert torch.count_nonzero(net[0].weight) == 0
    assert (
        torch.count_nonzero(net[2].weight_hh_l0) == 0
        and torch.count_nonzero(net[2].bias_ih_l0) == 0
    )
    assert torch.all(net[1].weight == 1)


def test_conv_fans():
    assert fans(torch.empty(16, 3, 5, 5)) == (75, 400)
    with pytest.raises(ValueError, match="2 dimensions"):
        fans(torch.empty(5))


def test_bad_scheme_and_kwargs():
    with pytest.raises(ValueError, match="scheme must be one of"):
        vg.init_(nn.Linear(2, 2), "he")
    with pytest.raises(TypeError, match="keyword"):
        vg.init_(nn.Linear(2, 2), "xavier_uniform", std=0.1)
    with pytest.raises(TypeError, match="module"):
        vg.init_("net", "standard")
    with pytest.raises(ValueError, match="no Linear"):
        vg.init_(nn.ReLU(), "standard")
    with pytest.raises(ValueError, match="std"):
        init_weight_(torch.empty(3, 3), "normal", std=-1.0)
    assert "kaiming_normal" in vg.INITS and "orthogonal" in vg.INITS
