r"""The models the lessons study: a configurable MLP (plain or residual) and a recurrent classifier.

The MLP with ``depth`` hidden layers computes

.. math::
    h_1 = \phi(N_1(W_1 x + b_1)), \qquad
    h_\ell = \underbrace{h_{\ell-1}}_{\text{skip, if residual}} + s\,\phi(N_\ell(W_\ell h_{\ell-1} + b_\ell)),
    \qquad \hat y = W_{out} h_L + b_{out}

where :math:`N_\ell` is batch norm, layer norm or nothing, and the skip (``residual=True``, from the
second hidden layer on, where shapes match) gives the Jacobian
:math:`\partial h_\ell/\partial h_{\ell-1} = I + D_\ell W_\ell` of He et al. 2016, eq. 1.
``residual_scale`` is :math:`s` (1 by default); a plain MLP has neither the skip nor :math:`s`.
"""

from __future__ import annotations

import torch
from torch import nn

from . import activations as _act
from ._validate import check_choice, check_int, check_positive
from .inits import init_

NORMS = (None, "batch", "layer")
CELLS = ("rnn", "lstm", "gru")


class HiddenBlock(nn.Module):
    """One hidden layer: Linear -> optional norm -> activation, with an optional scaled skip."""

    def __init__(
        self,
        linear: nn.Linear,
        norm: nn.Module | None,
        act: nn.Module,
        *,
        residual: bool,
        residual_scale: float,
    ):
        super().__init__()
        self.linear = linear
        self.norm = norm if norm is not None else nn.Identity()
        self.act = act
        self.residual = residual
        self.residual_scale = residual_scale

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        branch = self.act(self.norm(self.linear(h)))
        if self.residual:
            return h + self.residual_scale * branch
        return branch


class MLP(nn.Module):
    """Multilayer perceptron built by :func:`mlp`.

    Attributes: ``hidden_layers`` (the hidden ``nn.Linear`` layers, input -> output),
    ``activations`` (their activation modules), ``blocks`` and ``output_layer``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        depth: int,
        width: int,
        activation: str,
        norm: str | None,
        residual: bool,
        residual_scale: float,
        act_kw: dict,
    ):
        super().__init__()
        blocks = []
        for i in range(depth):
            fan_in = in_features if i == 0 else width
            linear = nn.Linear(fan_in, width)
            if norm == "batch":
                normalizer: nn.Module | None = nn.BatchNorm1d(width)
            elif norm == "layer":
                normalizer = nn.LayerNorm(width)
            else:
                normalizer = None
            blocks.append(
                HiddenBlock(
                    linear,
                    normalizer,
                    _act.activation(activation, **act_kw),
                    residual=residual and i > 0,
                    residual_scale=residual_scale,
                )
            )
        self.blocks = nn.ModuleList(blocks)
        self.output_layer = nn.Linear(width, out_features)
        self.config = dict(
            in_features=in_features,
            out_features=out_features,
            depth=depth,
            width=width,
            activation=activation,
            norm=norm,
            residual=residual,
            residual_scale=residual_scale,
        )

    @property
    def hidden_layers(self) -> list[nn.Linear]:
        return [b.linear for b in self.blocks]

    @property
    def activations(self) -> list[nn.Module]:
        return [b.act for b in self.blocks]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim > 2:
            x = x.flatten(1)
        for block in self.blocks:
            x = block(x)
        return self.output_layer(x)

    def forward_hidden(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every hidden layer's output :math:`h_1, \\dots, h_L` (for plots of activations per layer)."""
        if x.ndim > 2:
            x = x.flatten(1)
        outs = []
        for block in self.blocks:
            x = block(x)
            outs.append(x)
        return outs


def mlp(
    in_features: int,
    out_features: int,
    *,
    depth: int,
    width: int,
    activation: str = "relu",
    init: str | None = "kaiming_normal",
    norm: str | None = None,
    residual: bool = False,
    residual_scale: float = 1.0,
    device: torch.device | str | None = None,
    activation_kw: dict | None = None,
    **init_kw,
) -> MLP:
    """Build an MLP with ``depth`` hidden layers of ``width`` units (see the module docstring).

    ``init`` is a scheme from :data:`vgcourse.INITS` applied to every Linear weight (``None`` keeps
    PyTorch's default, which equals the ``"standard"`` scheme); extra keywords (``gain``, ``std``,
    ``nonlinearity``) go to it. ``norm`` is ``None``, ``"batch"`` or ``"layer"``.
    """
    in_features = check_int("in_features", in_features, minimum=1)
    out_features = check_int("out_features", out_features, minimum=1)
    depth = check_int("depth", depth, minimum=1)
    width = check_int("width", width, minimum=1)
    _act.canonical_name(activation)
    check_choice("norm", norm, NORMS)
    if not isinstance(residual, bool):
        raise TypeError(f"residual must be True or False, got {residual!r}")
    residual_scale = check_positive("residual_scale", residual_scale)
    model = MLP(
        in_features,
        out_features,
        depth,
        width,
        activation,
        norm,
        residual,
        residual_scale,
        activation_kw or {},
    )
    if init is not None:
        init_(model, init, **init_kw)
    elif init_kw:
        raise TypeError(f"init keywords {sorted(init_kw)} given but init is None")
    if device is not None:
        model = model.to(device)
    return model


class RNNClassifier(nn.Module):
    """A recurrent layer (``nn.RNN``/``nn.LSTM``/``nn.GRU``, batch first) and a linear head on the last step."""

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        output_size: int,
        num_layers: int,
        nonlinearity: str,
    ):
        super().__init__()
        self.cell = cell
        if cell == "rnn":
            self.rnn: nn.RNNBase = nn.RNN(
                input_size, hidden_size, num_layers, nonlinearity=nonlinearity, batch_first=True
            )
        elif cell == "lstm":
            self.rnn = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True)
        else:
            self.rnn = nn.GRU(input_size, hidden_size, num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def rnn_model(
    cell: str,
    input_size: int,
    hidden_size: int,
    output_size: int,
    *,
    num_layers: int = 1,
    nonlinearity: str = "tanh",
    forget_bias: float | None = None,
    device: torch.device | str | None = None,
) -> RNNClassifier:
    """Build a recurrent model mapping ``(batch, T, input_size)`` to ``(batch, output_size)``.

        ``cell`` is ``"rnn"`` (Elman, ``nonlinearity`` tanh or relu), ``"lstm"`` (Hochreiter &
        Schmidhuber 1997, with the forget gate of Gers et al. 2000) or ``"gru"`` (Cho et al. 2014). With
        ``output_size == 1`` the output is ``(batch, 1)``, which the named losses compare element for element
    with a target of shape ``(batch,)`` (see :mod:`vgcourse.losses`). ``forget_bias``
        (LSTM only) sets the forget-gate bias, e.g. 1.0 as Jozefowicz et al. 2015 recommend.
    """
    if not isinstance(cell, str):
        raise TypeError(f"cell must be a string, got {type(cell).__name__}")
    check_choice("cell", cell, CELLS)
    input_size = check_int("input_size", input_size, minimum=1)
    hidden_size = check_int("hidden_size", hidden_size, minimum=1)
    output_size = check_int("output_size", output_size, minimum=1)
    num_layers = check_int("num_layers", num_layers, minimum=1)
    check_choice("nonlinearity", nonlinearity, ("tanh", "relu"))
    model = RNNClassifier(cell, input_size, hidden_size, output_size, num_layers, nonlinearity)
    if forget_bias is not None:
        if cell != "lstm":
            raise ValueError(f"forget_bias applies to cell='lstm' only, got cell={cell!r}")
        set_forget_bias_(model.rnn, float(forget_bias))
    if device is not None:
        model = model.to(device)
    return model


def set_forget_bias_(lstm: nn.LSTM, value: float) -> nn.LSTM:
    """Set the forget-gate bias of every layer of an ``nn.LSTM`` (gate order i, f, g, o).

    PyTorch has two biases per layer (``bias_ih`` and ``bias_hh``) that add up; the forget slice of
    ``bias_ih`` is set to ``value`` and that of ``bias_hh`` to 0, so the total is ``value``.
    """
    hidden = lstm.hidden_size
    with torch.no_grad():
        for name, param in lstm.named_parameters():
            if name.startswith("bias_ih"):
                param[hidden : 2 * hidden].fill_(value)
            elif name.startswith("bias_hh"):
                param[hidden : 2 * hidden].zero_()
    return lstm


def weight_layers(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """The weight matrices whose gradients the course tracks, input -> output, as ``(name, param)``.

    For models built by :func:`mlp` (anything with ``hidden_layers``) these are the hidden layers'
    weights. For any other model: every parameter named ``*weight*`` with at least 2 dimensions
    (Linear, Conv, RNN matrices; not the 1-D scales of normalization layers), in registration order.
    """
    hidden = getattr(model, "hidden_layers", None)
    if hidden is not None:
        return [(f"hidden[{i}]", layer.weight) for i, layer in enumerate(hidden)]
    return [
        (n, p)
        for n, p in model.named_parameters()
        if "weight" in n.rsplit(".", 1)[-1] and p.ndim >= 2
    ]


def model_device(model: nn.Module) -> torch.device:
    """The device of a model's first parameter (CPU for a model without parameters)."""
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")
