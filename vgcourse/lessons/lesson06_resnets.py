r"""Residual networks: a small plain/residual CNN, residual-stream measurements and a depth sweep.

He, Zhang, Ren & Sun 2016 ("Deep residual learning for image recognition", CVPR) replace a stack
of layers :math:`h_\ell = F_\ell(h_{\ell-1})` by a block that adds its input back (their eq. 1):

.. math::
    h_\ell = h_{\ell-1} + F_\ell(h_{\ell-1}), \qquad
    \frac{\partial h_\ell}{\partial h_{\ell-1}} = I + \frac{\partial F_\ell}{\partial h_{\ell-1}},

so back-propagation through :math:`L` blocks multiplies by :math:`\prod_\ell (I + J_\ell)`, a
product that always contains the identity path instead of only products of small factors.

This module holds what lesson 06 uses more than once:

* :func:`conv_net`: the CIFAR-style network of He et al. 2016 (sec. 4.2) shrunk to one stage: a
  3x3 stem convolution, ``num_blocks`` basic blocks of two 3x3 convolutions (each followed by batch
  norm), global average pooling and a linear classifier. ``residual=True`` adds the identity
  shortcut around each block (their Fig. 2); ``residual=False`` is the matching *plain* network.
* :func:`stream_second_moments` and :func:`stream_grad_norms`: the forward signal
  :math:`\mathbb E[h_\ell^2]` and the backward signal :math:`\|\partial L/\partial h_\ell\|` at
  every block output, for any model with a ``blocks`` list (this CNN and :func:`vgcourse.mlp`).
* :func:`expected_next_moment` and :func:`stream_growth_bound`: the variance recursion of a ReLU
  residual block at He initialisation (why a scaled branch is needed without normalisation).
* :func:`depth_sweep`: train one architecture at several depths and seeds and collect the
  first-layer gradient norm at initialisation and the training loss after a fixed budget;
  :func:`mlp_depth_sweeps` does the same for several MLP architectures in one batched run.
* :func:`stream_profile` and :func:`residual_stream_explorer`: the forward and backward signal of
  one MLP in a single pass, and the lesson's interactive explorer built on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from .._validate import (
    check_choice,
    check_int,
    check_module,
    check_positive,
    check_tensor,
    check_xy,
)
from ..inits import INITS, init_
from ..losses import LossSpec, get_loss
from ..models import model_device, weight_layers
from ..train import History, OptimizerSpec, evaluate, fit, layer_grad_norms

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


# --------------------------------------------------------------------------------------------
# The residual stream, forward and backward
# --------------------------------------------------------------------------------------------


def _blocks_of(net: nn.Module) -> Sequence[nn.Module]:
    check_module("net", net)
    blocks = getattr(net, "blocks", None)
    if blocks is None or len(blocks) == 0:
        raise TypeError(
            "net must have a non-empty `blocks` list (a vgcourse.mlp or vgcourse.resnets.conv_net "
            f"model); got {type(net).__name__}"
        )
    return blocks


def stream_second_moments(net: nn.Module, X: torch.Tensor) -> np.ndarray:
    r"""Second moment :math:`q_\ell = \mathbb E[h_\ell^2]` of every block output, input -> output.

    The mean is over samples and units (and positions for a CNN) of one forward pass without
    gradients, in the model's current train/eval mode. The ratio :math:`q_\ell / q_{\ell-1}` is the
    per-block growth of the forward signal (of the *residual stream* in a residual net).
    """
    blocks = _blocks_of(net)
    X = check_tensor("X", X)
    moments: list[float] = []

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        moments.append(float(output.detach().double().pow(2).mean()))

    handles = [b.register_forward_hook(hook) for b in blocks]
    try:
        with torch.no_grad():
            net(X.to(model_device(net)))
    finally:
        for h in handles:
            h.remove()
    return np.asarray(moments)


def _block_outputs_after_backward(
    net: nn.Module, X: torch.Tensor, y: torch.Tensor, loss: LossSpec
) -> list[torch.Tensor]:
    r"""Every block output :math:`h_\ell` of one forward pass, with ``.grad`` filled by one backward pass."""
    blocks = _blocks_of(net)
    X, y = check_xy(X, y)
    outputs: list[torch.Tensor] = []

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if output.requires_grad:
            output.retain_grad()
        outputs.append(output)

    handles = [b.register_forward_hook(hook) for b in blocks]
    device = model_device(net)
    try:
        net.zero_grad(set_to_none=True)
        get_loss(loss)(net(X.to(device)), y.to(device)).backward()
    finally:
        for h in handles:
            h.remove()
    return outputs


def stream_grad_norms(
    net: nn.Module, X: torch.Tensor, y: torch.Tensor, loss: LossSpec = "cross_entropy"
) -> np.ndarray:
    r"""Norm of the backward signal :math:`\|\partial L/\partial h_\ell\|` at every block output.

    One forward/backward pass at the current weights (no update; ``.grad`` fields cleared after).
    Unlike weight-gradient norms, these are not multiplied by a block's own weights or residual
    scale, so they show the gradient that travels along the network, input -> output. In a residual
    net :math:`\partial L/\partial h_{\ell-1} = (I + J_\ell)^\top \partial L/\partial h_\ell`.
    """
    outputs = _block_outputs_after_backward(net, X, y, loss)
    norms = [float(o.grad.norm()) if o.grad is not None else 0.0 for o in outputs]
    net.zero_grad(set_to_none=True)
    return np.asarray(norms)


def expected_next_moment(h: torch.Tensor, residual_scale: float = 1.0) -> float:
    r"""Expected :math:`\mathbb E[h'^2]` after one ReLU residual block at He initialisation.

    For the block :math:`h' = h + s\,\mathrm{ReLU}(W h)` of :func:`vgcourse.mlp` (``residual=True``,
    zero bias) with :math:`W_{ij} \sim \mathcal N(0, 2/n)` (He et al. 2015), given one input
    :math:`h \in \mathbb R^n` with :math:`q = \|h\|^2/n` and :math:`m = \frac1n\sum_i h_i`, each
    :math:`z_i = (Wh)_i \sim \mathcal N(0, 2q)`, so :math:`\mathbb E[\mathrm{ReLU}(z_i)^2] = q` and
    :math:`\mathbb E[\mathrm{ReLU}(z_i)] = \sqrt{q/\pi}`, hence, exactly in expectation over :math:`W`,

    .. math:: \mathbb E\,\tfrac1n\|h'\|^2 = (1 + s^2)\,q + 2 s\, m \sqrt{q/\pi}.

    The last (cross) term exists because a ReLU branch has a positive mean. ``h`` is ``(n,)`` or a
    batch ``(N, n)``; for a batch, the per-sample values are averaged.
    """
    h = check_tensor("h", h)
    if h.ndim not in (1, 2) or h.shape[-1] < 1:
        raise ValueError(f"h must have shape (n,) or (N, n), got shape {tuple(h.shape)}")
    s = check_positive("residual_scale", residual_scale, allow_zero=True)
    h = h.double().reshape(-1, h.shape[-1])
    q = h.pow(2).mean(dim=1)
    m = h.mean(dim=1)
    return float(((1 + s * s) * q + 2 * s * m * torch.sqrt(q / math.pi)).mean())


def stream_growth_bound(residual_scale: float, depth: int) -> float:
    r"""Upper bound on :math:`q_L / q_1` for ``depth`` ReLU residual blocks with a non-negative stream.

    When :math:`h \ge 0` (true after a ReLU layer and ReLU branches), :math:`m \le \sqrt q`
    (Cauchy-Schwarz), so each block multiplies the expected second moment by at most
    :math:`g(s) = 1 + s^2 + 2s/\sqrt\pi` (:func:`expected_next_moment`); over ``depth - 1``
    residual blocks the bound is :math:`g(s)^{L-1}`. With :math:`s = 1/L` it stays below
    :math:`e^{1/L + 2/\sqrt\pi} \approx 3.1` at every depth; with :math:`s = 1/\sqrt L` it grows
    like :math:`e^{1 + 2\sqrt{L/\pi}}`.
    """
    s = check_positive("residual_scale", residual_scale, allow_zero=True)
    depth = check_int("depth", depth, minimum=1)
    return float((1 + s * s + 2 * s / math.sqrt(math.pi)) ** (depth - 1))


# --------------------------------------------------------------------------------------------
# Depth sweeps
# --------------------------------------------------------------------------------------------


def _check_depths_seeds(depths, seeds) -> tuple[list[int], list[int]]:
    if isinstance(depths, (str, bytes)) or not isinstance(depths, Sequence) or not depths:
        raise TypeError(f"depths must be a non-empty sequence of integers, got {depths!r}")
    depths = [check_int("depths[i]", d, minimum=1) for d in depths]
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence) or not seeds:
        raise TypeError(f"seeds must be a non-empty sequence of integers, got {seeds!r}")
    seeds = [check_int("seeds[i]", s, minimum=0) for s in seeds]
    return depths, seeds


def _build(build: Callable[[int], nn.Module], depth: int, seed: int, device) -> nn.Module:
    if not callable(build):
        raise TypeError(f"build must be a callable depth -> nn.Module, got {type(build).__name__}")
    torch.manual_seed(seed)
    net = build(depth)
    if not isinstance(net, nn.Module):
        raise TypeError(f"build({depth}) must return an nn.Module, got {type(net).__name__}")
    return net.to(device) if device is not None else net


def first_layer_grads(
    build: Callable[[int], nn.Module],
    depths: Sequence[int],
    data,
    *,
    seeds: Sequence[int] = (0,),
    loss: LossSpec = "cross_entropy",
    device: torch.device | str | None = None,
) -> np.ndarray:
    """First tracked layer's weight-gradient norm at initialisation, ``(len(depths), len(seeds))``.

    For each depth and seed: seed PyTorch, ``build(depth)``, one forward/backward pass on the whole
    of ``data = (X, y)`` (:func:`vgcourse.layer_grad_norms`), no training. Cheap enough to sweep
    depths that would be too slow to train.
    """
    depths, seeds = _check_depths_seeds(depths, seeds)
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"data must be a pair (X, y) of tensors, got {type(data).__name__}")
    X, y = check_xy(*data)
    out = np.zeros((len(depths), len(seeds)))
    for i, depth in enumerate(depths):
        for j, seed in enumerate(seeds):
            out[i, j] = layer_grad_norms(_build(build, depth, seed, device), X, y, loss)[0]
    return out


@dataclass
class SweepResult:
    """What :func:`depth_sweep` measured, one row per depth and one column per seed.

    ``first_grad[d, s]``: first tracked layer's weight-gradient norm at initialisation;
    ``train_loss[d, s]``: the training loss at the end of training, as He et al. 2016 plot it
    (:attr:`vgcourse.History.final_loss`: mean mini-batch loss over the last 10% of the steps, in
    training mode); ``accuracy[d, s]``: accuracy on the training data after training (eval mode);
    ``test_accuracy`` likewise on ``eval_data`` (NaN without it); ``histories[(depth, seed)]``:
    the :class:`vgcourse.History` of each run. A run that diverged has a NaN ``train_loss``.
    """

    depths: list[int]
    seeds: list[int]
    first_grad: np.ndarray
    train_loss: np.ndarray
    accuracy: np.ndarray
    test_accuracy: np.ndarray
    histories: dict[tuple[int, int], History] = field(default_factory=dict)

    def median(self, name: str) -> np.ndarray:
        """Median over seeds of ``first_grad``, ``train_loss``, ``accuracy`` or ``test_accuracy``."""
        check_choice("name", name, ("first_grad", "train_loss", "accuracy", "test_accuracy"))
        return np.median(getattr(self, name), axis=1)


def depth_sweep(
    build: Callable[[int], nn.Module],
    depths: Sequence[int],
    data,
    *,
    steps: int,
    lr: float,
    seeds: Sequence[int] = (0,),
    batch_size: Optional[int] = None,
    optimizer: OptimizerSpec = "adam",
    loss: LossSpec = "cross_entropy",
    eval_data=None,
    device: torch.device | str | None = None,
    record: bool = False,
) -> SweepResult:
    """Build, probe and train ``build(depth)`` for every depth and seed; return a :class:`SweepResult`.

    For each ``(depth, seed)``: seed PyTorch with ``seed``, build the model (moved to ``device`` if
    given), measure :func:`vgcourse.layer_grad_norms` on the whole of ``data`` (its first entry is
    the first layer's gradient norm at initialisation), train with :func:`vgcourse.fit` for
    ``steps`` steps (mini-batches drawn with ``seed``), record the final training loss and evaluate
    the accuracy on ``data`` and ``eval_data``. ``record`` keeps per-layer gradient norms in the
    histories (slower). All runs share one ``lr`` and ``optimizer``: a fixed budget, as in the
    comparisons of He et al. 2016 (sec. 4.1), where plain and residual nets use the same settings.
    """
    if not callable(build):
        raise TypeError(f"build must be a callable depth -> nn.Module, got {type(build).__name__}")
    depths, seeds = _check_depths_seeds(depths, seeds)
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"data must be a pair (X, y) of tensors, got {type(data).__name__}")
    X, y = check_xy(*data)

    def run(depth: int, seed: int) -> tuple[float, History, nn.Module]:
        net = _build(build, depth, seed, device)
        first = layer_grad_norms(net, X, y, loss)[0]
        history = fit(
            net,
            (X, y),
            steps=steps,
            lr=lr,
            optimizer=optimizer,
            batch_size=batch_size,
            loss=loss,
            seed=seed,
            record=record,
        )
        return first, history, net

    return _collect(depths, seeds, run, (X, y), eval_data, loss)


def _collect(depths, seeds, run, data, eval_data, loss) -> SweepResult:
    """A :class:`SweepResult` from ``run(depth, seed) -> (first-layer gradient, History, trained net)``."""
    shape = (len(depths), len(seeds))
    first_grad, train_loss = np.zeros(shape), np.zeros(shape)
    accuracy, test_accuracy = np.zeros(shape), np.full(shape, np.nan)
    histories: dict[tuple[int, int], History] = {}
    for i, depth in enumerate(depths):
        for j, seed in enumerate(seeds):
            first_grad[i, j], history, net = run(depth, seed)
            histories[(depth, seed)] = history
            train_loss[i, j] = history.final_loss if history.diverged_at is None else np.nan
            accuracy[i, j] = evaluate(net, data, loss)[1]
            if eval_data is not None:
                test_accuracy[i, j] = evaluate(net, eval_data, loss)[1]
    return SweepResult(depths, seeds, first_grad, train_loss, accuracy, test_accuracy, histories)


MLPArch = Callable[[int], Mapping]


def mlp_depth_sweeps(
    archs: Mapping[str, MLPArch],
    depths: Sequence[int],
    data,
    *,
    width: int,
    steps: int,
    lr: float,
    seeds: Sequence[int] = (0,),
    batch_size: Optional[int] = None,
    optimizer: str = "adam",
    loss: str = "cross_entropy",
    eval_data=None,
    device: torch.device | str | None = None,
    record: bool = False,
) -> dict[str, SweepResult]:
    r""":func:`depth_sweep` for several MLP architectures at once, trained as one batched program.

    ``archs`` maps a name to a function ``depth -> dict`` of :func:`vgcourse.mlp` keyword arguments
    (``activation``, ``init``, ``norm``, ``residual``, ``residual_scale``, e.g.
    ``lambda d: dict(residual=True, residual_scale=1 / d)``). Every (architecture, depth, seed)
    becomes one configuration of :func:`vgcourse.sweeps.sweep`, so all of them train together,
    grouped by depth and normalization (plain and residual nets of one depth share a group). The
    results are those of :func:`depth_sweep` with ``build = lambda d: vg.mlp(..., **arch(d))``: the
    same seeded initial weights, mini-batches and optimizer steps, to float32 rounding. Returns one
    :class:`SweepResult` per architecture name.
    """
    from ..sweeps import build_model
    from ..sweeps import sweep as batched_sweep

    if not isinstance(archs, Mapping) or not archs:
        raise TypeError("archs must be a non-empty dict: name -> (depth -> dict of mlp arguments)")
    depths, seeds = _check_depths_seeds(depths, seeds)
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"data must be a pair (X, y) of tensors, got {type(data).__name__}")
    X, y = check_xy(*data)
    X = X.flatten(1)
    configs = []
    for name, arch in archs.items():
        if not callable(arch):
            raise TypeError(f"archs[{name!r}] must be a function depth -> dict of mlp arguments")
        for depth in depths:
            kw = arch(depth)
            if not isinstance(kw, Mapping):
                raise TypeError(f"archs[{name!r}]({depth}) must return a dict, got {kw!r}")
            for seed in seeds:
                configs.append(
                    dict(kw, depth=depth, width=width, lr=lr, seed=seed, label=(name, depth, seed))
                )
    result = batched_sweep(
        [dict(c, label=repr(c["label"])) for c in configs],
        (X, y),
        steps=steps,
        batch_size=batch_size,
        loss=loss,
        optimizer=optimizer,
        device=device,
        record=record,
    )
    n_out = result.shapes[1]
    out: dict[str, SweepResult] = {}
    for name in archs:

        def run(depth: int, seed: int, name: str = name) -> tuple[float, History, nn.Module]:
            label = repr((name, depth, seed))
            cfg = next(c for c in configs if c["label"] == (name, depth, seed))
            start = build_model(dict(cfg, label=label), X.shape[1], n_out).to(result.device)
            first = layer_grad_norms(start, X, y, loss)[0]
            return first, result.histories[label], result.model(label)

        out[name] = _collect(depths, seeds, run, (X, y), eval_data, loss)
    return out


# --------------------------------------------------------------------------------------------
# One pass, both signals; the lesson's explorer
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamProfile:
    r"""Forward and backward signal of one network at its current weights (:func:`stream_profile`).

    ``second_moments[l]``: :math:`q_\ell = \mathbb E[h_\ell^2]` at block :math:`\ell` (input -> output);
    ``grad_norms[l]``: :math:`\|\partial L/\partial h_\ell\|`; ``first_layer_grad``: the norm of the
    first tracked layer's weight gradient :math:`\|\partial L/\partial W_1\|`.
    """

    second_moments: np.ndarray
    grad_norms: np.ndarray
    first_layer_grad: float

    @property
    def forward_growth(self) -> float:
        r""":math:`q_L / q_1`: how much the forward signal grows from the first block to the last."""
        return float(self.second_moments[-1] / self.second_moments[0])

    @property
    def backward_growth(self) -> float:
        r""":math:`\|\partial L/\partial h_1\| / \|\partial L/\partial h_L\|`: growth of the backward signal
        from the last block to the first (< 1: it vanishes on its way down)."""
        return float(self.grad_norms[0] / self.grad_norms[-1])


def stream_profile(
    net: nn.Module, X: torch.Tensor, y: torch.Tensor, loss: LossSpec = "cross_entropy"
) -> StreamProfile:
    r""":func:`stream_second_moments`, :func:`stream_grad_norms` and the first entry of
    :func:`vgcourse.layer_grad_norms`, from **one** forward/backward pass instead of three.

    Forward hooks keep every block output :math:`h_\ell` (and retain its gradient); after one
    backward pass of ``loss(net(X), y)`` they give :math:`q_\ell = \mathbb E[h_\ell^2]` (mean over
    samples and units, float64), :math:`\|\partial L/\partial h_\ell\|` and
    :math:`\|\partial L/\partial W_1\|`. The values equal the three separate calls (in train mode a
    batch-norm layer uses the batch statistics, so extra forward passes change nothing but its
    running averages). No update is made; ``.grad`` fields are cleared afterwards.
    """
    outputs = _block_outputs_after_backward(net, X, y, loss)
    device = model_device(net)
    zero = torch.zeros((), device=device)
    with torch.no_grad():
        q = torch.stack([o.detach().double().pow(2).mean() for o in outputs])
        g = torch.stack([o.grad.norm() if o.grad is not None else zero for o in outputs])
        first = weight_layers(net)[0][1].grad
        first = first.norm() if first is not None else zero
        numbers = torch.cat([q, g.double(), first.double().reshape(1)]).cpu().numpy()
    net.zero_grad(set_to_none=True)
    n = len(outputs)
    return StreamProfile(numbers[:n], numbers[n : 2 * n], float(numbers[-1]))


#: The branch scales :math:`s` the explorer offers, by name, as functions of the depth :math:`L`.
BRANCH_SCALES: tuple[str, ...] = ("1", "1/sqrt(depth)", "1/depth")


def branch_scale(name: str, depth: int) -> float:
    r"""The branch scale :math:`s` called ``name`` (one of :data:`BRANCH_SCALES`) at depth :math:`L`:
    ``"1"`` (the naive residual net), ``"1/sqrt(depth)"`` (bounded only for zero-mean branches) or
    ``"1/depth"`` (bounds the stream of ReLU-ended branches at every depth, :func:`stream_growth_bound`)."""
    check_choice("scale", name, BRANCH_SCALES)
    depth = check_int("depth", depth, minimum=1)
    return {"1": 1.0, "1/sqrt(depth)": depth**-0.5, "1/depth": 1.0 / depth}[name]


EXPLORER_NORMS: tuple[Optional[str], ...] = (None, "batch")


def residual_stream_explorer(
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    depth: int = 30,
    residual: bool = True,
    norm: Optional[str] = None,
    scale: str = "1/depth",
    width: int = 32,
    max_depth: int = 64,
    seed: int = 0,
    device: torch.device | str | None = None,
):
    r"""Explorer: depth, skip connections, batch norm and branch scale -> the residual stream.

    For the chosen settings a seeded :func:`vgcourse.mlp` of width ``width`` with He initialisation
    (``residual=True``: :math:`h_\ell = h_{\ell-1} + s\,\mathrm{ReLU}(W_\ell h_{\ell-1})`, see
    :func:`branch_scale`; ``norm="batch"``: batch norm in the branch) is probed on ``(X, y)`` with
    one forward/backward pass (:func:`stream_profile`). Left: the forward signal
    :math:`q_\ell = \mathbb E[h_\ell^2]` at every block; right: the backward signal
    :math:`\|\partial L/\partial h_\ell\|`; both on log axes, with the plain He-initialised net of
    the same depth in grey for reference. With :math:`s = 1` the stream grows about 2.8 times per
    block, :math:`\mathbb E q' = (1+s^2)q + 2sm\sqrt{q/\pi}` (:func:`expected_next_moment`); with
    :math:`s = 1/L` it stays bounded (:func:`stream_growth_bound`). He et al. 2016 (eq. 1, Fig. 2).

    Every setting is computed once on ``device`` (default :func:`vgcourse.get_device`) and cached,
    so moving a slider back and forth redraws without recomputing. ``explorer.state`` holds the
    last ``settings``, the network's :class:`StreamProfile` (``profile``) and the reference's
    (``reference``).
    """
    from ..device import get_device
    from ..models import mlp
    from ..widgets import Explorer, checkbox, dropdown, slider

    X, y = check_xy(X, y)
    if X.ndim != 2:
        raise ValueError(f"X must have shape (samples, features), got shape {tuple(X.shape)}")
    width = check_int("width", width, minimum=1)
    max_depth = check_int("max_depth", max_depth, minimum=2)
    depth = check_int("depth", depth, minimum=2)
    if depth > max_depth:
        raise ValueError(f"depth must be between 2 and max_depth={max_depth}, got {depth}")
    if not isinstance(residual, bool):
        raise TypeError(f"residual must be True or False, got {residual!r}")
    check_choice("norm", norm, EXPLORER_NORMS)
    check_choice("scale", scale, BRANCH_SCALES)
    seed = check_int("seed", seed, minimum=0)
    device = get_device(device)
    X, y = X.to(device), y.to(device)
    n_classes = int(y.max()) + 1
    state: dict = {}

    @lru_cache(maxsize=256)
    def profile(depth: int, residual: bool, norm: Optional[str], scale: str) -> StreamProfile:
        torch.manual_seed(seed)
        net = mlp(
            X.shape[1],
            n_classes,
            depth=depth,
            width=width,
            norm=norm,
            residual=residual,
            residual_scale=branch_scale(scale, depth) if residual else 1.0,
            device=device,
        )
        return stream_profile(net, X, y)

    def update(axes, depth, residual, norm, scale):
        depth, residual = int(depth), bool(residual)
        this = profile(depth, residual, norm, scale if residual else "1")  # s unused without skips
        ref = profile(depth, False, None, "1")
        state.update(
            settings=dict(depth=depth, residual=residual, norm=norm, scale=scale),
            profile=this,
            reference=ref,
        )
        blocks = np.arange(1, depth + 1)
        for ax, values, reference, label in (
            (axes[0], this.second_moments, ref.second_moments, r"$q_\ell = E[h_\ell^2]$"),
            (axes[1], this.grad_norms, ref.grad_norms, r"$\|\partial L/\partial h_\ell\|$"),
        ):  # zeros (underflow) cannot be drawn on a log axis: leave them out
            ax.plot(
                blocks,
                np.where(reference > 0, reference, np.nan),
                color="grey",
                lw=1,
                label="plain, He init",
            )
            ax.plot(
                blocks,
                np.where(values > 0, values, np.nan),
                "o-",
                ms=3,
                color="C0",
                label="this network",
            )
            ax.set(yscale="log", xlabel="block (1 = input side)", ylabel=label)
            ax.legend(fontsize=7)
            ax.grid(True, which="major", alpha=0.3)
        axes[0].set_title("forward signal")
        axes[1].set_title("backward signal")
        return (
            f"q_L/q_1 = {this.forward_growth:.3g} | backward block 1 / block {depth} = "
            f"{this.backward_growth:.3g} | first-layer weight gradient = {this.first_layer_grad:.3g}"
        )

    controls = {
        "depth": slider(depth, 2, max_depth, 1, "depth", integer=True),
        "residual": checkbox(residual, "skip connections"),
        "norm": dropdown([("none", None), ("batch", "batch")], norm, "norm"),
        "scale": dropdown(list(BRANCH_SCALES), scale, "branch scale s"),
    }
    explorer = Explorer(
        update,
        controls,
        caption="start at depth 30 with s = 1/depth, then set s = 1 (explosion), untick the skip "
        "(plain), turn BN on and off, and slide the depth to 64.",
        title="Residual stream: forward and backward signal per block",
    )
    explorer.state = state
    return explorer
