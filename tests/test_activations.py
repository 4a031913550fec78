import math

import pytest
import torch

import vgcourse as vg
from vgcourse import activations as A

NAMES = [n for n in vg.ACTIVATIONS]


def test_registry_has_the_design_list():
    for name in [
        "identity",
        "sigmoid",
        "tanh",
        "softsign",
        "relu",
        "leaky_relu",
        "prelu",
        "elu",
        "selu",
        "silu",
        "swish",
        "gelu",
    ]:
        assert name in vg.ACTIVATIONS


@pytest.mark.parametrize("name", NAMES)
def test_module_and_closed_form_derivative_match_autograd(name):
    z = torch.linspace(-6, 6, 1001, dtype=torch.float64).requires_grad_()
    z = z[z.abs() > 1e-6].detach().requires_grad_()  # avoid the kink of rectifiers
    module = vg.activation(name).double()
    module(z).sum().backward()
    assert torch.allclose(A.derivative(name, z.detach()), z.grad, atol=1e-10), name


def test_swish_is_silu():
    z = torch.randn(100)
    assert torch.equal(vg.activation("swish")(z), torch.nn.functional.silu(z))


def test_unknown_activation_lists_valid_names():
    with pytest.raises(ValueError, match="activation must be one of") as err:
        vg.activation("sigmoidd")
    assert "'relu'" in str(err.value)
    with pytest.raises(TypeError):
        vg.activation(3)


def test_activation_kwargs_and_bad_kwargs():
    assert vg.activation("leaky_relu", negative_slope=0.2).negative_slope == 0.2
    with pytest.raises(TypeError, match="leaky_relu"):
        vg.activation("leaky_relu", alpha=1.0)


def test_max_derivative_is_the_supremum():
    z = torch.linspace(-10, 10, 200001, dtype=torch.float64)
    for name in NAMES:
        sup = float(A.derivative(name, z).abs().max())
        assert sup == pytest.approx(A.info(name).max_derivative, rel=2e-3), name


def test_expected_derivative_known_values():
    assert A.expected_derivative("relu") == pytest.approx(0.5, abs=1e-9)
    assert A.expected_derivative("identity") == pytest.approx(1.0, abs=1e-9)
    # E[phi'(z)] for leaky relu: (1 + a) / 2
    assert A.expected_derivative("leaky_relu", negative_slope=0.1) == pytest.approx(0.55, abs=1e-9)
    # sigmoid: below its maximum 1/4; Monte Carlo agrees
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2_000_000, generator=g, dtype=torch.float64)
    assert A.expected_derivative("sigmoid") == pytest.approx(
        float(A.derivative("sigmoid", z).mean()), abs=1e-3
    )
    assert A.expected_derivative("sigmoid") < 0.25


def test_selu_constants():
    assert math.isclose(A.SELU_ALPHA, 1.6732632423543772, rel_tol=1e-12)
    z = torch.tensor([-1.0, 1.0])
    assert torch.allclose(vg.activation("selu")(z), torch.nn.functional.selu(z))


def test_module_derivative_uses_module_parameters():
    z = torch.tensor([-2.0, 3.0])
    d = A.module_derivative(torch.nn.LeakyReLU(0.3), z)
    assert torch.allclose(d, torch.tensor([0.3, 1.0]))
    d = A.module_derivative(torch.nn.ELU(alpha=2.0), z)
    assert torch.allclose(d, torch.tensor([2.0 * math.exp(-2.0), 1.0]))
    assert A.module_derivative(torch.nn.Linear(1, 1), z) is None
    assert A.name_of(torch.nn.Tanh()) == "tanh"
