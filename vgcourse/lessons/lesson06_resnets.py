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
from ..losses import LossSpec, get_loss
from ..models import model_device
from ..train import History, OptimizerSpec, evaluate, fit, layer_grad_norms

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
