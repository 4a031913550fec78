r"""Measurements at initialization: per-layer second moments, broken symmetry, Jacobian spectra.

Lesson 04 reproduces the papers' checks on real networks, to compare with the mean-field
predictions of :mod:`.lesson04_initialization`:

* :func:`measure_propagation` records every hidden layer's :math:`\mathbb E[a_\ell^2]`,
  :math:`\mathbb E[h_\ell^2]`, :math:`\mathbb E[(\partial L/\partial a_\ell)^2]` and
  :math:`\mathbb E[(\partial L/\partial W_\ell)^2]` in one forward and backward pass (the
  measurements of Glorot & Bengio 2010, sec. 4.2, and He et al. 2015, sec. 2);
  :func:`rescale_weights_` puts an extra gain on any scheme.
* :func:`max_unit_difference` shows that zero or constant initialisation never breaks the symmetry
  between the units of a layer.
* :func:`mean_jacobian_singular_values` is the mean singular value of each layer Jacobian
  :math:`J_\ell = \mathrm{diag}(\phi'(a_\ell)) W_\ell` (Glorot & Bengio 2010, sec. 4.2.1), from the
  batched closed form of :func:`vgcourse.jacobians.layer_jacobians_batch`.

**Products of random matrices.** Back-propagation through :math:`L` linear layers multiplies by
:math:`W_1^\top\cdots W_L^\top`. For Gaussian :math:`W` scaled to keep the mean squared singular
value at 1 the singular values of the product spread over many decades as :math:`L` grows; for
orthogonal :math:`W` they are all exactly 1 ("dynamical isometry", Saxe, McClelland & Ganguli 2014;
:func:`product_singular_values`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .._validate import check_choice, check_int, check_positive, check_tensor, check_xy
from ..jacobians import layer_jacobians_batch, singular_values
from .lesson04_initialization import Propagation

__all__ = [
    "max_unit_difference",
    "mean_jacobian_singular_values",
    "measure_propagation",
    "product_singular_values",
    "rescale_weights_",
]


def rescale_weights_(net: nn.Module, factor: float) -> nn.Module:
    """Multiply every Linear weight of ``net`` by ``factor`` in place (an extra gain on any scheme)."""
    if not isinstance(net, nn.Module):
        raise TypeError(f"net must be a torch.nn.Module, got {type(net).__name__}")
    factor = check_positive("factor", factor, allow_zero=True)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.Linear):
                module.weight.mul_(factor)
    return net


def _blocks(net: nn.Module):
    blocks = getattr(net, "blocks", None)
    if blocks is None or not hasattr(net, "hidden_layers"):
        raise TypeError(
            f"net must be a vgcourse.mlp model (with .blocks and .hidden_layers), got {type(net).__name__}"
        )
    return list(blocks)


def measure_propagation(
    net: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    loss: str = "cross_entropy",
    seed: int = 0,
    keep_values: bool = False,
    max_values: int = 20000,
) -> Propagation:
    r"""Measure every hidden layer's forward and backward second moments with hooks (one pass).

    ``net`` is a :func:`vgcourse.mlp` model. With ``y`` the backward pass starts from ``loss``;
    without it, from random output gradients :math:`\partial L/\partial \hat y \sim \mathcal N(0, 1)`
    (``seed``), i.e. :math:`L = \sum \hat y \odot G`, the input the mean-field prediction
    :func:`predict_propagation` assumes. Gradients are cleared afterwards; no update is made.
    Fields are described in :class:`Propagation`; ``keep_values`` keeps up to ``max_values``
    sampled values per layer for histograms.
    """
    from ..losses import get_loss
    from ..models import model_device

    blocks = _blocks(net)
    X = check_tensor("X", X)
    if y is not None:
        X, y = check_xy(X, y)
    seed = check_int("seed", seed, minimum=0)
    max_values = check_int("max_values", max_values, minimum=1)
    device = model_device(net)
    X = X.to(device)
    depth = len(blocks)
    stats = {k: np.full(depth, np.nan) for k in ("preact", "act", "grad_preact", "grad_act")}
    samples: dict[str, list] = {"act": [None] * depth, "grad_preact": [None] * depth}
    handles = []

    def keep(name: str, i: int, t: torch.Tensor) -> None:
        if keep_values and name in samples:
            flat = t.detach().reshape(-1)
            step = max(1, -(-flat.numel() // max_values))
            samples[name][i] = flat[::step].float().cpu()

    def watch(i: int, name: str, grad_name: str):
        def hook(module, inputs, output):
            stats[name][i] = float(output.detach().double().pow(2).mean())
            keep(name, i, output)
            if output.requires_grad:

                def grad_hook(g):
                    stats[grad_name][i] = float(g.detach().double().pow(2).mean())
                    keep(grad_name, i, g)

                output.register_hook(grad_hook)

        return hook

    for i, block in enumerate(blocks):
        handles.append(block.linear.register_forward_hook(watch(i, "preact", "grad_preact")))
        handles.append(block.register_forward_hook(watch(i, "act", "grad_act")))
    net.zero_grad(set_to_none=True)
    try:
        out = net(X)
        if y is None:
            g = torch.Generator().manual_seed(seed)
            G = torch.randn(out.shape, generator=g, dtype=out.dtype).to(out.device)
            value = (out * G).sum()
        else:
            value = get_loss(loss)(out, y.to(device))
        value.backward()
    finally:
        for h in handles:
            h.remove()
    grad_weight = np.array(
        [
            float(layer.weight.grad.double().pow(2).mean())
            if layer.weight.grad is not None
            else np.nan
            for layer in net.hidden_layers
        ]
    )
    net.zero_grad(set_to_none=True)
    result = Propagation(grad_weight=grad_weight, **stats)
    if keep_values:
        result.act_values = samples["act"]
        result.grad_values = samples["grad_preact"]
    return result


def max_unit_difference(weight: torch.Tensor) -> float:
    r""":math:`\max_{i,j} |W_{ij} - W_{0j}|`: how far the units (rows) of a layer are from being copies.

    Zero means every unit of the layer has the same incoming weights, i.e. the layer behaves like a
    single unit: the symmetry that zero or constant initialisation never breaks.
    """
    weight = check_tensor("weight", weight, ndim=2)
    w = weight.detach().double()
    return float((w - w[:1]).abs().max())


def product_singular_values(
    depth: int, width: int, kind: str = "gaussian", *, gain: float = 1.0, seed: int = 0
) -> torch.Tensor:
    r"""Singular values (float64, largest first) of :math:`W_L \cdots W_1`, ``depth`` random ``width x width`` matrices.

    ``kind="gaussian"``: entries :math:`\mathcal N(0, g^2/n)` (mean squared singular value
    :math:`g^2`, the He/LeCun scaling of a linear net); ``kind="orthogonal"``: :math:`g\,Q` with
    :math:`Q` Haar-random orthogonal (``torch.nn.init.orthogonal_``), so with :math:`g=1` every
    singular value of the product is exactly 1 (Saxe et al. 2014, dynamical isometry).

    Computed in float64; values below about :math:`10^{-15}` times the largest are rounding noise.
    """
    depth = check_int("depth", depth, minimum=1)
    width = check_int("width", width, minimum=1)
    check_choice("kind", kind, ("gaussian", "orthogonal"))
    gain = check_positive("gain", gain)
    g = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    product = torch.eye(width, dtype=torch.float64)
    log_scale = 0.0
    for _ in range(depth):
        if kind == "gaussian":
            W = torch.randn(width, width, generator=g, dtype=torch.float64) * (
                gain / math.sqrt(width)
            )
        else:
            A = torch.randn(width, width, generator=g, dtype=torch.float64)
            Q, R = torch.linalg.qr(A)
            W = gain * Q * torch.sign(torch.diagonal(R))  # Haar measure (Mezzadri 2007)
        product = W @ product
        norm = float(product.norm())  # rescale to stay in range; multiplied back at the end
        product = product / norm
        log_scale += math.log(norm)
    return singular_values(product) * math.exp(log_scale)


def mean_jacobian_singular_values(net: nn.Module, X: torch.Tensor) -> np.ndarray:
    r"""Mean singular value of each hidden layer's Jacobian :math:`J_\ell = \partial h_\ell/\partial h_{\ell-1}`, averaged over the rows of ``X``.

    The quantity Glorot & Bengio 2010 (sec. 4.2.1) track: for a square tanh layer in its linear
    regime :math:`J_\ell \approx W_\ell`, whose singular values follow the quarter-circle law with
    mean :math:`\tfrac{8}{3\pi}\sqrt{n v} \approx 0.85\sqrt{n v}`. Uses the closed form of
    :func:`vgcourse.jacobians.layer_jacobians_batch` (float64 singular values).
    """
    X = check_tensor("X", X, ndim=2)
    if len(X) == 0:
        raise ValueError("X must hold at least one input row")
    jacobians = layer_jacobians_batch(net, X)
    return np.array([float(singular_values(J).mean()) for J in jacobians], dtype=float)
