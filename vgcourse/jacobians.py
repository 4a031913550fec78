r"""Layer Jacobians of an MLP and the singular values of their products.

For a hidden layer :math:`h_\ell = \phi(W_\ell h_{\ell-1} + b_\ell)` (plain MLP) the Jacobian is

.. math:: J_\ell = \frac{\partial h_\ell}{\partial h_{\ell-1}} = \mathrm{diag}(\phi'(a_\ell))\, W_\ell,

and with a skip connection :math:`J_\ell = I + \mathrm{diag}(\phi'(a_\ell)) W_\ell` (He et al. 2016).
Back-propagation multiplies the output gradient by :math:`J_L^\top \cdots J_{\ell+1}^\top`, so the
singular values of that product decide whether gradients vanish or explode (Saxe et al. 2014;
Pennington et al. 2017). Glorot & Bengio 2010 (sec. 4.2.1) track the mean singular value of each
:math:`J_\ell`.
"""

from __future__ import annotations

import torch
from torch import nn


def layer_jacobians(net: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Exact Jacobians :math:`\\partial h_\\ell / \\partial h_{\\ell-1}` of each hidden block at one input.

    ``net`` is a :func:`vgcourse.mlp` model (anything with ``blocks``); ``x`` is one input of shape
    ``(in_features,)``. Computed by autograd (``torch.func.jacrev``), so norm layers and skips are
    included exactly. Batch norm is evaluated in eval mode (running statistics) to be per-sample.
    """
    blocks = getattr(net, "blocks", None)
    if blocks is None:
        raise TypeError("net must be a vgcourse.mlp model (it needs .blocks)")
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


def product(jacobians: list[torch.Tensor]) -> torch.Tensor:
    """:math:`J_L \\cdots J_1`, the Jacobian of the last hidden layer with respect to the input."""
    out = jacobians[0]
    for J in jacobians[1:]:
        out = J @ out
    return out


def singular_values(matrix: torch.Tensor) -> torch.Tensor:
    """Singular values of a matrix, largest first (float64 for accuracy)."""
    return torch.linalg.svdvals(matrix.double())
