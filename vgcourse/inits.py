r"""Weight initialization schemes, applied in place to every Linear, Conv and RNN weight.

Notation: a weight matrix :math:`W` of shape ``(fan_out, fan_in)``; biases are set to zero.

==================  ======================================================  =========================================
scheme              distribution                                            source
==================  ======================================================  =========================================
zeros               :math:`W = 0`                                           (the symmetry problem, lesson 04)
normal              :math:`\mathcal N(0, \mathrm{std}^2)`, std=0.01         "small random numbers"
standard            :math:`U(-1/\sqrt{n_{in}}, 1/\sqrt{n_{in}})`            Glorot & Bengio 2010, eq. 1; = ``nn.Linear``'s default
xavier_uniform      :math:`U(\pm g\sqrt{6/(n_{in}+n_{out})})`               Glorot & Bengio 2010, eq. 16 ("normalized")
xavier_normal       :math:`\mathcal N(0, 2g^2/(n_{in}+n_{out}))`            Glorot & Bengio 2010
kaiming_uniform     :math:`U(\pm g\sqrt{3/n_{in}})`, :math:`g=\sqrt2`        He et al. 2015, sec. 2.2
kaiming_normal      :math:`\mathcal N(0, g^2/n_{in})`, :math:`g=\sqrt2`      He et al. 2015, eq. 10
lecun_normal        :math:`\mathcal N(0, 1/n_{in})`                          LeCun et al. 1998; Klambauer et al. 2017
orthogonal          :math:`g\,Q` with :math:`Q` a random orthogonal matrix   Saxe, McClelland & Ganguli 2014
==================  ======================================================  =========================================

``g`` is the ``gain`` keyword (see :func:`torch.nn.init.calculate_gain`). For the Kaiming schemes
``nonlinearity`` (default ``"relu"``) picks the gain unless ``gain`` is given.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._validate import check_choice, check_positive

#: Every initialization scheme :func:`init_` knows.
INITS: tuple[str, ...] = (
    "zeros",
    "normal",
    "standard",
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "lecun_normal",
    "orthogonal",
)

_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.RNNBase, nn.RNNCellBase)
_ALLOWED_KW = {
    "zeros": set(),
    "normal": {"std", "mean"},
    "standard": set(),
    "xavier_uniform": {"gain"},
    "xavier_normal": {"gain"},
    "kaiming_uniform": {"gain", "nonlinearity", "a"},
    "kaiming_normal": {"gain", "nonlinearity", "a"},
    "lecun_normal": {"gain"},
    "orthogonal": {"gain"},
}


def fans(weight: torch.Tensor) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight: for a conv kernel, channels times the receptive field."""
    if weight.ndim < 2:
        raise ValueError(
            f"weight must have at least 2 dimensions to have fans, got shape {tuple(weight.shape)}"
        )
    receptive = math.prod(weight.shape[2:]) if weight.ndim > 2 else 1
    return weight.shape[1] * receptive, weight.shape[0] * receptive


def init_weight_(weight: torch.Tensor, scheme: str, **kw) -> torch.Tensor:
    """Initialize one weight tensor in place with ``scheme`` (see the module table)."""
    check_choice("scheme", scheme, INITS)
    unknown = set(kw) - _ALLOWED_KW[scheme]
    if unknown:
        raise TypeError(
            f"init scheme {scheme!r} takes keyword(s) {sorted(_ALLOWED_KW[scheme]) or 'none'}; got {sorted(unknown)}"
        )
    fan_in, fan_out = fans(weight)
    gain = kw.get("gain")
    if gain is not None:
        gain = check_positive("gain", gain)
    with torch.no_grad():
        if scheme == "zeros":
            weight.zero_()
        elif scheme == "normal":
            std = check_positive("std", kw.get("std", 0.01))
            weight.normal_(float(kw.get("mean", 0.0)), std)
        elif scheme == "standard":
            bound = 1 / math.sqrt(fan_in)
            weight.uniform_(-bound, bound)
        elif scheme == "xavier_uniform":
            nn.init.xavier_uniform_(weight, gain=gain or 1.0)
        elif scheme == "xavier_normal":
            nn.init.xavier_normal_(weight, gain=gain or 1.0)
        elif scheme in ("kaiming_uniform", "kaiming_normal"):
            if gain is None:
                nonlinearity = kw.get("nonlinearity", "relu")
                gain = nn.init.calculate_gain(nonlinearity, kw.get("a"))
            std = gain / math.sqrt(fan_in)
            if scheme == "kaiming_normal":
                weight.normal_(0, std)
            else:
                bound = math.sqrt(3.0) * std
                weight.uniform_(-bound, bound)
        elif scheme == "lecun_normal":
            weight.normal_(0, (gain or 1.0) / math.sqrt(fan_in))
        else:  # orthogonal
            nn.init.orthogonal_(weight, gain=gain or 1.0)
    return weight


def init_(module: nn.Module, scheme: str, **kw) -> nn.Module:
    """Initialize, in place, every Linear / Conv / RNN weight inside ``module``; biases become zero.

    Normalization layers keep their scale 1 and shift 0. Returns ``module`` so calls chain:
    ``net = vg.init_(vg.mlp(...), "orthogonal")``. For RNN layers every ``weight_*`` matrix is
    initialised with the scheme (``weight_hh`` included: ``orthogonal`` is the usual choice there).
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    if not isinstance(scheme, str):
        raise TypeError(
            f"scheme must be a string naming an init scheme, got {type(scheme).__name__}"
        )
    check_choice("scheme", scheme, INITS)
    found = False
    for sub in module.modules():
        if not isinstance(sub, _WEIGHTED):
            continue
        for pname, param in sub.named_parameters(recurse=False):
            if pname.startswith("weight") and param.ndim >= 2:
                init_weight_(param, scheme, **kw)
                found = True
            elif pname.startswith("bias"):
                with torch.no_grad():
                    param.zero_()
    if not found:
        raise ValueError(
            f"module has no Linear, Conv or RNN weights to initialize ({type(module).__name__})"
        )
    return module
