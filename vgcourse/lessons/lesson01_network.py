r"""Lesson 01's 2-2-1 sigmoid network as a computational graph: its chain-rule factors, a drawing of
the network and a text view of the graph autograd records.

:math:`\partial L/\partial w_{11}` of the network :math:`x \to h = \sigma(W_1 x + b_1) \to
\hat y = \sigma(w_2^\top h + b_2)` with squared error :math:`L = \tfrac12(\hat y - y)^2` is the
product of the factors on the path from :math:`L` back to :math:`w_{11}` (Rumelhart, Hinton &
Williams 1986); :func:`chain_rule_factors` returns them for an ``nn.Sequential`` of that shape.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .._validate import check_int, check_tensor
from .lesson01_backprop import TinyParams, chain_factors, params_of


def _check_tiny_net(net: Any) -> nn.Sequential:
    params_of(
        net
    )  # raises TypeError unless net is Sequential(Linear, Sigmoid, Linear(., 1), Sigmoid)
    return net


def chain_rule_factors(
    net: nn.Sequential, x: torch.Tensor, y: float, *, unit: int = 0, input: int = 0
) -> dict[str, float]:
    r"""The five chain-rule factors of :math:`\partial L/\partial w_{ij}` in a one-hidden-layer sigmoid net.

    For ``net = Sequential(Linear, Sigmoid, Linear(n_hidden, 1), Sigmoid)``, one input ``x`` and
    the loss :math:`L = \tfrac12(\hat y - y)^2`, with :math:`z_i = \sum_j w_{ij}x_j + b_i`,
    :math:`h_i = \sigma(z_i)`, :math:`z_{out} = \sum_i v_i h_i + c`, :math:`\hat y = \sigma(z_{out})`:

    .. math::
        \frac{\partial L}{\partial w_{ij}} =
        \underbrace{(\hat y - y)}_{\partial L/\partial \hat y}\,
        \underbrace{\hat y(1-\hat y)}_{\partial \hat y/\partial z_{out}}\,
        \underbrace{v_i}_{\partial z_{out}/\partial h_i}\,
        \underbrace{h_i(1-h_i)}_{\partial h_i/\partial z_i}\,
        \underbrace{x_j}_{\partial z_i/\partial w_{ij}}.

    ``unit`` is :math:`i` and ``input`` is :math:`j` (0-based; the names use 1-based indices, so the
    default is :math:`w_{11}`, PyTorch's ``net[0].weight[0, 0]``). Returns an ordered dict
    ``factor name -> value``; their product is the gradient.
    """
    net = _check_tiny_net(net)
    x = check_tensor("x", x, ndim=1)
    n_in = net[0].in_features
    if x.shape[0] != n_in:
        raise ValueError(f"x must have {n_in} entries (the net's inputs), got {x.shape[0]}")
    params = TinyParams(*(t.double() for t in params_of(net)))
    factors = chain_factors(params, x.detach().double(), float(y), unit=unit, input=input)
    return {name: float(value) for name, value in factors.items()}


def autograd_graph(tensor: torch.Tensor, *, max_nodes: int = 60) -> list[str]:
    """The backward graph autograd recorded for ``tensor``, as indented lines (output first).

    Each line names one backward node (``SigmoidBackward0``, ``AddmmBackward0``...) or, for a leaf,
    ``AccumulateGrad`` with the shape of the parameter whose ``.grad`` it fills. Shared nodes are
    shown once and then referred to as ``(seen)``.
    """
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"tensor must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.grad_fn is None:
        raise ValueError("tensor has no grad_fn: compute it from tensors with requires_grad=True")
    max_nodes = check_int("max_nodes", max_nodes, minimum=1)
    lines: list[str] = []
    seen: set[int] = set()

    def visit(node: Any, depth: int) -> None:
        if node is None or len(lines) >= max_nodes:
            return
        name = type(node).__name__
        if name == "AccumulateGrad":
            name += f" -> .grad of a parameter of shape {tuple(node.variable.shape)}"
        if id(node) in seen:
            lines.append("  " * depth + name + " (seen)")
            return
        seen.add(id(node))
        lines.append("  " * depth + name)
        for child, _ in node.next_functions:
            visit(child, depth + 1)

    visit(tensor.grad_fn, 0)
    return lines


def draw_network(ax: Any, net: nn.Sequential, x: torch.Tensor, y: float) -> Any:
    """Draw the 2-2-1 sigmoid net as a computational graph: forward values, then gradients in red.

    Each node shows its forward value and, in red, :math:`\\partial L/\\partial(\\text{node})`
    for :math:`L = \\frac12(\\hat y-y)^2`; each weight edge shows the weight and its gradient. The
    path of the chain rule for :math:`w_{11}` is drawn thick. ``ax`` is a matplotlib axes.
    """
    from matplotlib.patches import FancyBboxPatch

    net = _check_tiny_net(net)
    if net[0].in_features != 2 or net[0].out_features != 2:
        raise ValueError("draw_network draws a 2-2-1 network only")
    x = check_tensor("x", x, ndim=1)
    params = [p.detach().double().clone().requires_grad_(True) for p in net.parameters()]
    W1, b1, W2, b2 = params
    xd = x.detach().double()
    z = W1 @ xd + b1
    h = torch.sigmoid(z)
    z_out = W2[0] @ h + b2[0]
    y_hat = torch.sigmoid(z_out)
    L = 0.5 * (y_hat - float(y)) ** 2
    for t in (z, h, z_out, y_hat):
        t.retain_grad()
    L.backward()
    pos = {
        "x1": (0, 1.0),
        "x2": (0, -1.0),
        "z1": (1.6, 1.0),
        "z2": (1.6, -1.0),
        "h1": (2.9, 1.0),
        "h2": (2.9, -1.0),
        "z_out": (4.5, 0.0),
        "y_hat": (5.8, 0.0),
        "L": (7.1, 0.0),
    }
    val = {
        "x1": (xd[0], None),
        "x2": (xd[1], None),
        "z1": (z[0], z.grad[0]),
        "z2": (z[1], z.grad[1]),
        "h1": (h[0], h.grad[0]),
        "h2": (h[1], h.grad[1]),
        "z_out": (z_out, z_out.grad),
        "y_hat": (y_hat, y_hat.grad),
        "L": (L, torch.tensor(1.0)),
    }
    path = {("x1", "z1"), ("z1", "h1"), ("h1", "z_out"), ("z_out", "y_hat"), ("y_hat", "L")}
    grad_w11 = float(W1.grad[0, 0])
    W1, W2 = W1.detach(), W2.detach()
    edges = [
        ("x1", "z1", f"w11={float(W1[0, 0]):.2f}\ngrad {grad_w11:.2g}"),
        ("x2", "z1", f"w12={float(W1[0, 1]):.2f}"),
        ("x1", "z2", f"w21={float(W1[1, 0]):.2f}"),
        ("x2", "z2", f"w22={float(W1[1, 1]):.2f}"),
        ("z1", "h1", "σ"),
        ("z2", "h2", "σ"),
        ("h1", "z_out", f"v1={float(W2[0, 0]):.2f}"),
        ("h2", "z_out", f"v2={float(W2[0, 1]):.2f}"),
        ("z_out", "y_hat", "σ"),
        ("y_hat", "L", f"½(ŷ−y)²\ny={float(y):g}"),
    ]
    for a, b, label in edges:
        (xa, ya), (xb, yb) = pos[a], pos[b]
        thick = (a, b) in path
        ax.annotate(
            "",
            xy=(xb - 0.32, yb),
            xytext=(xa + 0.32, ya),
            arrowprops=dict(
                arrowstyle="-|>", lw=2.6 if thick else 0.8, color="C3" if thick else "0.5"
            ),
        )
        t = 0.5 if ya == yb else 0.3  # labels of slanted edges near their start, apart
        tx, ty = xa + 0.32 + t * (xb - xa - 0.64), ya + t * (yb - ya)
        ax.text(
            tx + (0 if ya == yb else 0.08),
            ty + 0.08,
            label,
            fontsize=7,
            ha="center" if ya == yb else "left",
            va="bottom",
            color="0.2",
        )
    for name, (xp, yp) in pos.items():
        value, grad = val[name]
        ax.add_patch(
            FancyBboxPatch(
                (xp - 0.3, yp - 0.28),
                0.6,
                0.56,
                boxstyle="round,pad=0.02",
                fc="white",
                ec="C3" if name in {n for e in path for n in e} else "0.4",
                lw=1.2,
            )
        )
        ax.text(
            xp,
            yp + 0.09,
            f"{name}\n{float(value.detach()):.3f}",
            ha="center",
            va="center",
            fontsize=7,
        )
        if grad is not None:
            ax.text(
                xp,
                yp - 0.42,
                f"∂L/∂{name} = {float(grad):.2g}",
                ha="center",
                fontsize=7,
                color="C3",
            )
    ax.set_xlim(-0.5, 7.6)
    ax.set_ylim(-1.7, 1.7)
    ax.set_axis_off()
    ax.set_title(
        "Computational graph: forward values (black), ∂L/∂node (red); chain for w11 in bold"
    )
    return ax
