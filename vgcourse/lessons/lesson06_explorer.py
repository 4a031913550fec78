r"""Lesson 06's explorer: the residual stream of an MLP (second moment and gradient norm per block) as
depth, branch scale and normalization change, with :class:`StreamProfile` from one forward and
backward pass."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import numpy as np
import torch
from torch import nn

from .._validate import (
    check_choice,
    check_int,
    check_xy,
)
from ..losses import LossSpec
from ..models import model_device, weight_layers
from .lesson06_resnets import (
    _block_outputs_after_backward,
)


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
