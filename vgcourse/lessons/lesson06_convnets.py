r"""The small convolutional networks of lesson 06: the basic residual block of He et al. 2016a (sec. 3.3,
Fig. 2: conv-BN-ReLU-conv-BN, add the identity, ReLU) and a plain or residual CNN for 8x8 digits built
from it, with or without batch norm."""

from __future__ import annotations

import torch
from torch import nn

from .._validate import (
    check_choice,
    check_int,
    check_positive,
)
from ..inits import INITS, init_

CONV_NORMS = (None, "batch")


class BasicBlock(nn.Module):
    r"""Two 3x3 convolutions of ``channels`` channels (padding 1), each followed by a norm.

    Plain: :math:`h' = \mathrm{ReLU}(N_2(W_2 * \mathrm{ReLU}(N_1(W_1 * h))))`.
    Residual (He et al. 2016, Fig. 2, identity shortcut, ReLU after the addition):
    :math:`h' = \mathrm{ReLU}(h + s\,N_2(W_2 * \mathrm{ReLU}(N_1(W_1 * h))))`.
    """

    def __init__(
        self, channels: int, *, residual: bool, norm: str | None, residual_scale: float = 1.0
    ):
        super().__init__()
        bias = norm is None  # a bias before batch norm is cancelled by its mean subtraction
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=bias)
        self.norm1 = nn.BatchNorm2d(channels) if norm == "batch" else nn.Identity()
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=bias)
        self.norm2 = nn.BatchNorm2d(channels) if norm == "batch" else nn.Identity()
        self.act2 = nn.ReLU()
        self.residual = residual
        self.residual_scale = residual_scale

    def branch(self, h: torch.Tensor) -> torch.Tensor:
        """The residual function :math:`F(h)` (both convolutions, before the shortcut and last ReLU)."""
        return self.norm2(self.conv2(self.act1(self.norm1(self.conv1(h)))))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        out = self.branch(h)
        if self.residual:
            out = h + self.residual_scale * out
        return self.act2(out)


class ConvNet(nn.Module):
    """Plain or residual CNN built by :func:`conv_net`.

    Attributes: ``stem`` (the first convolution), ``blocks`` (the :class:`BasicBlock` list),
    ``head`` (the linear classifier) and ``hidden_layers`` (every convolution, input -> output, so
    :func:`vgcourse.layer_grad_norms` and :func:`vgcourse.fit` track one gradient norm per conv layer).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        num_blocks: int,
        channels: int,
        residual: bool,
        norm: str | None,
        residual_scale: float,
    ):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, channels, 3, padding=1, bias=norm is None)
        self.stem_norm = nn.BatchNorm2d(channels) if norm == "batch" else nn.Identity()
        self.stem_act = nn.ReLU()
        self.blocks = nn.ModuleList(
            BasicBlock(channels, residual=residual, norm=norm, residual_scale=residual_scale)
            for _ in range(num_blocks)
        )
        self.head = nn.Linear(channels, num_classes)
        self.config = dict(
            in_channels=in_channels,
            num_classes=num_classes,
            num_blocks=num_blocks,
            channels=channels,
            residual=residual,
            norm=norm,
            residual_scale=residual_scale,
        )

    @property
    def hidden_layers(self) -> list[nn.Conv2d]:
        return [self.stem] + [c for b in self.blocks for c in (b.conv1, b.conv2)]

    @property
    def num_conv_layers(self) -> int:
        """Number of convolutions, :math:`1 + 2 \\times` ``num_blocks`` (the head is one more layer)."""
        return 1 + 2 * len(self.blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem_act(self.stem_norm(self.stem(x)))
        for block in self.blocks:
            h = block(h)
        return self.head(h.mean(dim=(2, 3)))


def conv_net(
    num_blocks: int,
    *,
    channels: int = 16,
    residual: bool = False,
    norm: str | None = "batch",
    in_channels: int = 1,
    num_classes: int = 10,
    init: str | None = "kaiming_normal",
    residual_scale: float = 1.0,
    device: torch.device | str | None = None,
) -> ConvNet:
    r"""A CNN with ``1 + 2 * num_blocks`` 3x3 convolutions of ``channels`` channels, plain or residual.

    The one-stage version of the CIFAR-10 networks of He et al. 2016, sec. 4.2 (no downsampling,
    which 8x8 digit images do not need): stem conv -> ``num_blocks`` :class:`BasicBlock` ->
    global average pooling -> linear. ``norm`` is ``"batch"`` (as in the paper) or ``None``.
    ``init`` is a scheme of :data:`vgcourse.INITS` for every conv and linear weight (He et al.
    2015's ``"kaiming_normal"`` by default, as the paper uses; ``None`` keeps PyTorch's default).
    ``residual_scale`` :math:`s` multiplies the residual branch: :math:`h + s F(h)`.
    """
    num_blocks = check_int("num_blocks", num_blocks, minimum=0)
    channels = check_int("channels", channels, minimum=1)
    in_channels = check_int("in_channels", in_channels, minimum=1)
    num_classes = check_int("num_classes", num_classes, minimum=1)
    if not isinstance(residual, bool):
        raise TypeError(f"residual must be True or False, got {residual!r}")
    check_choice("norm", norm, CONV_NORMS)
    residual_scale = check_positive("residual_scale", residual_scale)
    if init is not None:
        if not isinstance(init, str):
            raise TypeError(f"init must be a scheme name or None, got {type(init).__name__}")
        check_choice("init", init, INITS)
    net = ConvNet(in_channels, num_classes, num_blocks, channels, residual, norm, residual_scale)
    if init is not None:
        init_(net, init)
    if device is not None:
        net = net.to(device)
    return net
