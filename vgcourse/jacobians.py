r"""Layer Jacobians of an MLP, their products, and the singular values of those products.

For a hidden layer :math:`h_\ell = \phi(W_\ell h_{\ell-1} + b_\ell)` (plain MLP) the Jacobian is

.. math:: J_\ell = \frac{\partial h_\ell}{\partial h_{\ell-1}} = \mathrm{diag}(\phi'(a_\ell))\, W_\ell,

and with a skip connection of scale :math:`s` it is :math:`J_\ell = I + s\,\mathrm{diag}(\phi'(a_\ell)) W_\ell`
(He et al. 2016, eq. 1). Back-propagation multiplies the output gradient by
:math:`J_L^\top \cdots J_{\ell+1}^\top`, so the singular values of the products
:math:`J_\ell \cdots J_1` decide whether gradients vanish or explode (Saxe et al. 2014;
Pennington et al. 2017); since :math:`\sigma_{\max}(AB) \le \sigma_{\max}(A)\,\sigma_{\max}(B)`,
:math:`\sigma_{\max}(J_\ell \cdots J_1) \le \prod_k \max|\phi'|\,\|W_k\|_2`. Glorot & Bengio 2010
(sec. 4.2.1) track the mean singular value of each :math:`J_\ell`.

Two ways to get the :math:`J_\ell`: :func:`layer_jacobians` uses autograd at one input (any block,
norm layers and skips included); :func:`layer_jacobians_batch` uses the closed form above for a
whole batch at once, for blocks without normalization (:func:`closed_form_applies`).
:func:`prefix_products` and :func:`product` multiply them (batched or not), and
:func:`singular_values` gives their spectra.
"""

from __future__ import annotations

import torch
from torch import nn

from . import activations as _act
from ._validate import check_tensor


def _blocks(net: nn.Module) -> nn.ModuleList:
    blocks = getattr(net, "blocks", None)
    if blocks is None:
        raise TypeError(
            f"net must be a vgcourse.mlp model (it needs .blocks), got {type(net).__name__}"
        )
    return blocks


def layer_jacobians(net: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Exact Jacobians :math:`\\partial h_\\ell / \\partial h_{\\ell-1}` of each hidden block at one input.

    ``net`` is a :func:`vgcourse.mlp` model (anything with ``blocks``); ``x`` is one input of shape
    ``(in_features,)``. Computed by autograd (``torch.func.jacrev``), so norm layers and skips are
    included exactly. Batch norm is evaluated in eval mode (running statistics) to be per-sample.
    """
    blocks = _blocks(net)
    if x.ndim != 1:
        raise ValueError(
            f"x must be a single input of shape (in_features,), got shape {tuple(x.shape)}"
        )
    was_training = net.training
    net.eval()
    jacobians = []
    h = x.to(next(net.parameters()).device)
    try:
        for block in blocks:

            def f(v: torch.Tensor, block: nn.Module = block) -> torch.Tensor:
                return block(v.unsqueeze(0)).squeeze(0)

            jacobians.append(torch.func.jacrev(f)(h).detach())
            with torch.no_grad():
                h = f(h)
    finally:
        net.train(was_training)
    return jacobians


def closed_form_applies(net: nn.Module) -> bool:
    """Whether :func:`layer_jacobians_batch` can handle ``net``: no block has a norm layer, and every
    activation is one :mod:`vgcourse.activations` knows the derivative of."""
    return all(
        isinstance(b.norm, nn.Identity) and _act.name_of(b.act) is not None for b in _blocks(net)
    )


def layer_jacobians_batch(net: nn.Module, X: torch.Tensor) -> list[torch.Tensor]:
    r"""Every hidden layer's Jacobian at every row of ``X``: a list of ``(batch, n_out, n_in)`` tensors.

    For a :func:`vgcourse.mlp` without norm layers the Jacobian has the closed form
    :math:`J_\ell = \mathrm{diag}(\phi'(a_\ell))\, W_\ell`, or
    :math:`I + s\,\mathrm{diag}(\phi'(a_\ell)) W_\ell` with a skip connection of scale :math:`s`,
    computed here for the whole batch at once, without autograd, in the net's dtype and on its
    device. It equals :func:`layer_jacobians` (autograd, one input at a time, which also handles
    norm layers) row by row.
    """
    blocks = _blocks(net)
    X = check_tensor("X", X, ndim=2)
    if not closed_form_applies(net):
        raise ValueError(
            "layer_jacobians_batch needs blocks without norm layers (norm=None) and with a known "
            "activation; use vgcourse.jacobians.layer_jacobians for the others"
        )
    first = next(net.parameters())
    out = []
    with torch.no_grad():
        h = X.to(device=first.device, dtype=first.dtype)
        for block in blocks:
            a = block.linear(h)
            d = _act.module_derivative(block.act, a)
            d = torch.ones_like(a) if d is None else d  # identity
            J = d[:, :, None] * block.linear.weight[None]
            if block.residual:
                J = torch.eye(J.shape[1], dtype=J.dtype, device=J.device) + block.residual_scale * J
            out.append(J)
            h = block(h)
    return out


def prefix_products(jacobians: list[torch.Tensor]) -> list[torch.Tensor]:
    """:math:`J_1, J_2 J_1, \\dots, J_L \\cdots J_1`: the Jacobian of every hidden layer with respect to
    the input. Works on single matrices and on batches (``(batch, n_out, n_in)``) alike."""
    out = [jacobians[0]]
    for J in jacobians[1:]:
        out.append(J @ out[-1])
    return out


def product(jacobians: list[torch.Tensor]) -> torch.Tensor:
    """:math:`J_L \\cdots J_1`, the Jacobian of the last hidden layer with respect to the input."""
    return prefix_products(jacobians)[-1]


def singular_values(matrix: torch.Tensor) -> torch.Tensor:
    """Singular values of a matrix (or of each matrix of a batch), largest first (float64 for accuracy)."""
    return torch.linalg.svdvals(matrix.double())
