r"""Activation functions, their derivatives, and how each one saturates or dies.

The derivative :math:`\phi'(z)` is the factor each layer contributes to the chain rule, so it
decides whether gradients shrink (vanish) as they flow back through many layers.

==============  =========================================  ==================================  =============
name            :math:`\phi(z)`                            :math:`\phi'(z)`                    source
==============  =========================================  ==================================  =============
identity        :math:`z`                                  :math:`1`
sigmoid         :math:`\sigma(z) = 1/(1+e^{-z})`           :math:`\sigma(z)(1-\sigma(z)) \le 1/4`
tanh            :math:`\tanh z`                            :math:`1-\tanh^2 z \le 1`
softsign        :math:`z/(1+|z|)`                          :math:`1/(1+|z|)^2`                 Bergstra et al. 2009; Glorot & Bengio 2010
relu            :math:`\max(0,z)`                          :math:`\mathbb 1[z>0]`              Nair & Hinton 2010
leaky_relu      :math:`\max(az, z)`, :math:`a=0.01`        :math:`1` or :math:`a`              Maas et al. 2013
prelu           leaky ReLU with learnable :math:`a=0.25`   :math:`1` or :math:`a`              He et al. 2015
elu             :math:`z` or :math:`\alpha(e^z-1)`         :math:`1` or :math:`\alpha e^z`     Clevert et al. 2016
selu            :math:`\lambda\,\mathrm{elu}_\alpha(z)`    :math:`\lambda` or :math:`\lambda\alpha e^z`  Klambauer et al. 2017
silu (swish)    :math:`z\,\sigma(z)`                       :math:`\sigma(z)(1+z(1-\sigma(z)))` Elfwing et al. 2018; Ramachandran et al. 2017
gelu            :math:`z\,\Phi(z)`                         :math:`\Phi(z)+z\varphi(z)`         Hendrycks & Gimpel 2016
==============  =========================================  ==================================  =============

SELU's constants (Klambauer et al. 2017, eq. 14) are
:math:`\alpha_{01} \approx 1.6733` and :math:`\lambda_{01} \approx 1.0507`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ._validate import check_choice

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_LAMBDA = 1.0507009873554804934193349852946

#: Every activation the course knows, in the order lessons plot them.
ACTIVATIONS: tuple[str, ...] = (
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
)
_ALIASES = {"swish": "silu"}


@dataclass(frozen=True)
class ActivationInfo:
    """What the course needs to know about one activation.

    ``family`` is ``"saturating"`` (sigmoid-like: derivative tends to 0 on both sides),
    ``"rectifier"`` (ReLU-like: derivative exactly 0 for negative inputs, so units can die),
    ``"smooth_rectifier"`` (ELU, SELU, SiLU, GELU: small but nonzero derivative on the left) or
    ``"linear"``. ``max_derivative`` is :math:`\\sup_z |\\phi'(z)|` for the default parameters.
    """

    name: str
    family: str
    max_derivative: float
    defaults: dict


_INFO: dict[str, ActivationInfo] = {
    "identity": ActivationInfo("identity", "linear", 1.0, {}),
    "sigmoid": ActivationInfo("sigmoid", "saturating", 0.25, {}),
    "tanh": ActivationInfo("tanh", "saturating", 1.0, {}),
    "softsign": ActivationInfo("softsign", "saturating", 1.0, {}),
    "relu": ActivationInfo("relu", "rectifier", 1.0, {}),
    "leaky_relu": ActivationInfo("leaky_relu", "leaky_rectifier", 1.0, {"negative_slope": 0.01}),
    "prelu": ActivationInfo("prelu", "leaky_rectifier", 1.0, {"init": 0.25}),
    "elu": ActivationInfo("elu", "smooth_rectifier", 1.0, {"alpha": 1.0}),
    "selu": ActivationInfo("selu", "smooth_rectifier", SELU_LAMBDA * SELU_ALPHA, {}),
    "silu": ActivationInfo("silu", "smooth_rectifier", 1.0998, {}),
    "gelu": ActivationInfo("gelu", "smooth_rectifier", 1.1290, {}),
}


def canonical_name(name: str) -> str:
    """Resolve aliases (``swish`` -> ``silu``) and reject unknown names with the list of valid ones."""
    if not isinstance(name, str):
        raise TypeError(
            f"activation must be a name (a string) in {ACTIVATIONS}, got {name!r} ({type(name).__name__})"
        )
    check_choice("activation", name, ACTIVATIONS)
    return _ALIASES.get(name, name)


def info(name: str) -> ActivationInfo:
    """Family, maximal derivative and default parameters of an activation."""
    return _INFO[canonical_name(name)]


def activation(name: str, **kw) -> nn.Module:
    """Return a fresh ``nn.Module`` for the named activation.

    Keyword arguments go to the PyTorch module: ``negative_slope`` for ``leaky_relu``, ``init``
    (and ``num_parameters``) for ``prelu``, ``alpha`` for ``elu``, ``approximate`` for ``gelu``.
    Unknown names raise ``ValueError`` listing :data:`ACTIVATIONS`.
    """
    key = canonical_name(name)
    factories: dict[str, Callable[..., nn.Module]] = {
        "identity": nn.Identity,
        "sigmoid": nn.Sigmoid,
        "tanh": nn.Tanh,
        "softsign": nn.Softsign,
        "relu": nn.ReLU,
        "leaky_relu": nn.LeakyReLU,
        "prelu": nn.PReLU,
        "elu": nn.ELU,
        "selu": nn.SELU,
        "silu": nn.SiLU,
        "gelu": nn.GELU,
    }
    params = {**_INFO[key].defaults, **kw}
    try:
        return factories[key](**params)
    except TypeError as err:
        raise TypeError(f"bad keyword argument for activation {name!r}: {err}") from None


def function(name: str, z: torch.Tensor, **kw) -> torch.Tensor:
    """Evaluate :math:`\\phi(z)` (no gradient tracking needed)."""
    with torch.no_grad():
        return activation(name, **kw).to(device=z.device, dtype=z.dtype)(z)


def derivative(name: str, z: torch.Tensor, **kw) -> torch.Tensor:
    """Closed-form :math:`\\phi'(z)`, elementwise (the table in this module's docstring).

    At the kink of ReLU-like functions (:math:`z=0`) the value PyTorch's autograd uses is returned
    (0 for ReLU, the slope for Leaky ReLU / PReLU).
    """
    key = canonical_name(name)
    p = {**_INFO[key].defaults, **kw}
    if key == "identity":
        return torch.ones_like(z)
    if key == "sigmoid":
        s = torch.sigmoid(z)
        return s * (1 - s)
    if key == "tanh":
        return 1 - torch.tanh(z) ** 2
    if key == "softsign":
        return 1 / (1 + z.abs()) ** 2
    if key == "relu":
        return (z > 0).to(z.dtype)
    if key in ("leaky_relu", "prelu"):
        slope = p.get("negative_slope", p.get("init"))
        return torch.where(z > 0, torch.ones_like(z), torch.full_like(z, float(slope)))
    if key == "elu":
        return torch.where(z > 0, torch.ones_like(z), p["alpha"] * torch.exp(z))
    if key == "selu":
        return SELU_LAMBDA * torch.where(z > 0, torch.ones_like(z), SELU_ALPHA * torch.exp(z))
    if key == "silu":
        s = torch.sigmoid(z)
        return s * (1 + z * (1 - s))
    # gelu (exact, erf form)
    cdf = 0.5 * (1 + torch.erf(z / math.sqrt(2)))
    pdf = torch.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    return cdf + z * pdf


def name_of(module: nn.Module) -> str | None:
    """The course's name for an activation module (``nn.ReLU()`` -> ``"relu"``), or ``None``."""
    table = {
        nn.Identity: "identity",
        nn.Sigmoid: "sigmoid",
        nn.Tanh: "tanh",
        nn.Softsign: "softsign",
        nn.ReLU: "relu",
        nn.ReLU6: "relu",
        nn.LeakyReLU: "leaky_relu",
        nn.PReLU: "prelu",
        nn.ELU: "elu",
        nn.SELU: "selu",
        nn.SiLU: "silu",
        nn.GELU: "gelu",
    }
    return table.get(type(module))


def module_derivative(module: nn.Module, z: torch.Tensor) -> torch.Tensor | None:
    """:math:`\\phi'(z)` for an activation *module*, using its own parameters (slope, alpha)."""
    key = name_of(module)
    if key is None or key == "identity":
        return None
    kw: dict = {}
    if isinstance(module, nn.LeakyReLU):
        kw = {"negative_slope": module.negative_slope}
    elif isinstance(module, nn.PReLU):
        a = module.weight.detach()
        if a.numel() == 1:
            kw = {"init": float(a)}
        else:  # one slope per channel, channel dimension 1
            shape = [1] * z.ndim
            shape[1] = -1
            return torch.where(z > 0, torch.ones_like(z), a.view(shape).to(z.dtype).expand_as(z))
    elif isinstance(module, nn.ELU):
        kw = {"alpha": module.alpha}
    return derivative(key, z, **kw)


def expected_derivative(
    name: str, *, mean: float = 0.0, std: float = 1.0, num_points: int = 20000, **kw
) -> float:
    r""":math:`\mathbb E_{z\sim\mathcal N(\mu,\sigma^2)}[\phi'(z)]` by numerical quadrature (float64).

    The midpoint rule over :math:`\mu \pm 12\sigma` with ``num_points`` cells, split at
    :math:`z = 0` so the jump of a rectifier's derivative falls on a cell boundary; accurate to
    ~1e-8 for every activation here. Lesson 03 compares it with a Monte-Carlo estimate.
    """
    lo, hi = mean - 12 * std, mean + 12 * std
    pieces = [(lo, 0.0), (0.0, hi)] if lo < 0.0 < hi else [(lo, hi)]
    total = 0.0
    for a, b in pieces:
        cells = max(2, int(num_points * (b - a) / (hi - lo)))
        h = (b - a) / cells
        z = a + h * (torch.arange(cells, dtype=torch.float64) + 0.5)
        density = torch.exp(-0.5 * ((z - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))
        total += float((derivative(name, z, **kw) * density).sum() * h)
    return total
