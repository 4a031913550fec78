r"""Which modules of a practitioner's model are activations, and which function each one computes.

:func:`vgcourse.activations.name_of` knows PyTorch's own activation modules. A model from a library
brings its own (``NewGELUActivation``, ``QuickGELU``, ``nn.Hardswish``...). :func:`known_kind`
also accepts subclasses of PyTorch's modules; for any other parameter-free module,
:func:`recognise` compares its output on the batch's own input with the functions in
:data:`BEHAVIOURS` (to :math:`10^{-3}` of the output's size) and names the one it computes, so the
diagnosis can count saturated units of a sigmoid-like module and dead units of a ReLU-like one
whatever its class. :data:`NOT_ACTIVATIONS` are the parameter-free modules never to test.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from . import activations as _act

#: Parameter-free modules that are not activations (nothing to recognise).
NOT_ACTIVATIONS: tuple[type, ...] = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.Identity,
    nn.Flatten,
    nn.Unflatten,
    nn.Softmax,
    nn.LogSoftmax,
    nn.Softmax2d,
    nn.modules.pooling._MaxPoolNd,
    nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd,
    nn.modules.batchnorm._NormBase,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.Upsample,
    nn.PixelShuffle,
    nn.ChannelShuffle,
)

#: Functions an unrecognised elementwise module is compared with, and the course's name for the
#: statistics of each ("relu" counts dead units, the saturating ones count saturated units).
BEHAVIOURS: dict[str, Any] = {
    "relu": F.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softsign": F.softsign,
    "gelu": F.gelu,
    "gelu (tanh approximation)": lambda z: F.gelu(z, approximate="tanh"),
    "silu": F.silu,
    "elu": F.elu,
    "selu": F.selu,
    "leaky_relu": F.leaky_relu,
    "hardswish": F.hardswish,
    "hardsigmoid": F.hardsigmoid,
    "hardtanh": F.hardtanh,
    "relu6": F.relu6,
    "mish": F.mish,
    "softplus": F.softplus,
    "quick gelu (x sigmoid(1.702 x))": lambda z: z * torch.sigmoid(1.702 * z),
}
STATS_OF = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh", "softsign": "softsign"}

_SUBCLASS_KINDS: tuple[tuple[type, str], ...] = (
    (nn.Sigmoid, "sigmoid"),
    (nn.Tanh, "tanh"),
    (nn.Softsign, "softsign"),
    (nn.ReLU, "relu"),
    (nn.ReLU6, "relu"),
    (nn.LeakyReLU, "leaky_relu"),
    (nn.PReLU, "prelu"),
    (nn.ELU, "elu"),
    (nn.SELU, "selu"),
    (nn.SiLU, "silu"),
    (nn.GELU, "gelu"),
)


def known_kind(module: nn.Module) -> str | None:
    """The course's name for an activation module, subclasses of PyTorch's included."""
    key = _act.name_of(module)
    if key is None:
        key = next((k for cls, k in _SUBCLASS_KINDS if isinstance(module, cls)), None)
    return key


def recognise(inputs: torch.Tensor, output: torch.Tensor) -> str | None:
    """The name of the known function that maps ``inputs`` to ``output`` (to 1e-3), if one does."""
    z = inputs.detach().float()
    o = output.detach().float()
    scale = float(o.abs().max()) + 1e-6
    for name, fn in BEHAVIOURS.items():
        if float((fn(z) - o).abs().max()) <= 1e-3 * scale:
            return name
    return None
