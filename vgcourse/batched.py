r"""K MLPs of one shape as one tensor program: stacked parameters, batched forward, flat optimizer.

This is the engine under :func:`vgcourse.sweeps.sweep`. Layer :math:`\ell` of all :math:`K` models
is one tensor :math:`W_\ell \in \mathbb R^{K\times n_{out}\times n_{in}}`, so one batched matrix
multiply computes it for every model,

.. math:: A_\ell = H_{\ell-1} W_\ell^\top + b_\ell, \qquad
          H_\ell = [H_{\ell-1}] + s_k\,\phi_k\big(N_\ell(A_\ell)\big), \qquad H_\ell\in\mathbb R^{K\times B\times n},

with the optional skip :math:`[H_{\ell-1}]` and branch scale :math:`s_k` of a residual MLP and the
optional batch or layer norm :math:`N_\ell` of :func:`vgcourse.mlp`. Each model's loss is its own
mean over its batch, and the scalar that is differentiated is their sum, so model :math:`k`
receives exactly its own gradient.

Speed comes from doing per-step work once for all parameters: every parameter of every model is a
view into one ``(K, P)`` buffer, the gradients are gathered into one ``(K, P)`` tensor, and the
per-layer gradient norms, the divergence check and the SGD / momentum / Adam update are a handful of
operations on that tensor, whatever the depth. Models with different activations share a layer
through :class:`MixedActivation`, one autograd node that applies each model's own
:math:`\phi_k` and its closed-form derivative (:func:`vgcourse.activations.derivative`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import activations as _act
from .models import mlp

BN_EPS, BN_MOMENTUM, LN_EPS = 1e-5, 0.1, 1e-5  # PyTorch's BatchNorm1d / LayerNorm defaults


_aten, _nn = torch.ops.aten, torch._C._nn
SELU_ALPHA, SELU_SCALE = _act.SELU_ALPHA, _act.SELU_LAMBDA


def _kernels(name: str, module: nn.Module):
    """``(forward(a, out), backward(grad, a, out, grad_in))`` writing into slices, with PyTorch's own kernels.

    The backward kernels are the ones autograd calls for these activations, so a model trained in a
    mixed sweep gets bit-for-bit the gradient it would get alone.
    """
    if name == "sigmoid":
        return (
            lambda a, o: torch.sigmoid(a, out=o),
            lambda g, a, o, gi: _aten.sigmoid_backward.grad_input(g, o, grad_input=gi),
        )
    if name == "tanh":
        return (
            lambda a, o: torch.tanh(a, out=o),
            lambda g, a, o, gi: _aten.tanh_backward.grad_input(g, o, grad_input=gi),
        )
    if name == "relu":
        return (
            lambda a, o: torch.clamp_min(a, 0, out=o),
            lambda g, a, o, gi: _aten.threshold_backward.grad_input(g, o, 0, grad_input=gi),
        )
    if name == "leaky_relu":
        slope = module.negative_slope
        return (
            lambda a, o: _nn.leaky_relu(a, slope, out=o),
            lambda g, a, o, gi: _aten.leaky_relu_backward.grad_input(
                g, a, slope, False, grad_input=gi
            ),
        )
    if name in ("elu", "selu"):
        alpha, scale = (module.alpha, 1.0) if name == "elu" else (SELU_ALPHA, SELU_SCALE)
        return (
            lambda a, o: _nn.elu(a, alpha, scale, 1.0, out=o),
            lambda g, a, o, gi: _aten.elu_backward.grad_input(
                g, alpha, scale, 1.0, False, a, grad_input=gi
            ),
        )
    if name == "silu":
        return (
            lambda a, o: _nn.silu(a, out=o),
            lambda g, a, o, gi: _aten.silu_backward.grad_input(g, a, grad_input=gi),
        )
    if name == "gelu":
        approximate = module.approximate
        return (
            lambda a, o: _nn.gelu(a, approximate=approximate, out=o),
            lambda g, a, o, gi: _aten.gelu_backward.grad_input(
                g, a, approximate=approximate, grad_input=gi
            ),
        )
    if name == "identity":
        return (lambda a, o: o.copy_(a), lambda g, a, o, gi: gi.copy_(g))
    # any other activation: its closed-form derivative (vgcourse.activations.derivative)
    return (
        lambda a, o: o.copy_(module(a)),
        lambda g, a, o, gi: torch.mul(g, _act.derivative(name, a), out=gi),
    )


class MixedActivation(torch.autograd.Function):
    r"""Apply :math:`\phi_k` to model :math:`k`'s slice of a ``(K, B, n)`` tensor, as one autograd node.

    ``groups`` is ``(sizes, kernels)``: how many consecutive models share each activation, and its
    ``(forward, backward)`` pair from :func:`_kernels`. Each slice is computed in place in one output tensor, forward and backward,
    with PyTorch's own kernels. One node instead of one per activation (plus the slicing,
    concatenation and gradient accumulation around them) keeps a sweep over many activations nearly
    as cheap per step as a sweep over one.
    """

    @staticmethod
    def forward(ctx, a: torch.Tensor, groups: list) -> torch.Tensor:
        sizes, kernels = groups
        out = torch.empty_like(a)
        for x, o, (fwd, _) in zip(a.split(sizes), out.split(sizes), kernels):
            fwd(x, o)
        ctx.save_for_backward(a, out)
        ctx.groups = groups
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        a, out = ctx.saved_tensors
        grad = grad.contiguous()
        grad_in = torch.empty_like(a)
        sizes, kernels = ctx.groups
        pieces = (grad.split(sizes), a.split(sizes), out.split(sizes), grad_in.split(sizes))
        for (_, bwd), g, x, o, gi in zip(kernels, *pieces):
            bwd(g, x, o, gi)
        return grad_in, None


def _layout(depth: int, width: int, n_in: int, n_out: int, norm: str | None):
    """Names and shapes (without K) of every parameter, in buffer order.

    Hidden weights come first and back to back, so the squared gradient of layers 2..L can be
    summed per layer with one reshape.
    """
    shapes: list[tuple[str, tuple[int, ...]]] = [("W0", (width, n_in))]
    shapes += [(f"W{i}", (width, width)) for i in range(1, depth)]
    shapes += [("Wout", (n_out, width))]
    shapes += [(f"b{i}", (1, width)) for i in range(depth)] + [("bout", (1, n_out))]
    if norm is not None:
        shapes += [(f"gamma{i}", (1, width)) for i in range(depth)]
        shapes += [(f"beta{i}", (1, width)) for i in range(depth)]
    return shapes


def build_module(cfg: dict, n_in: int, n_out: int) -> nn.Module:
    """The :func:`vgcourse.mlp` a sweep configuration describes, with its seeded initial weights."""
    torch.manual_seed(cfg["seed"])
    return mlp(
        n_in,
        n_out,
        depth=cfg["depth"],
        width=cfg["width"],
        activation=cfg["activation"],
        init=cfg["init"],
        norm=cfg["norm"],
        residual=cfg["residual"],
        residual_scale=cfg["residual_scale"],
        **(cfg["init_kw"] or {}),
    )


def module_from_snapshot(cfg: dict, n_in: int, n_out: int, state: dict) -> nn.Module:
    """An ordinary :func:`vgcourse.mlp` (CPU, eval mode) holding the weights of :meth:`BatchedMLP.snapshot`."""
    net = build_module(cfg, n_in, n_out)
    current = _module_tensors(net, cfg["depth"], cfg["norm"])
    with torch.no_grad():
        for name, tensor in current.items():
            tensor.copy_(state[name].reshape(tensor.shape))
        if cfg["norm"] == "batch":
            for i, block in enumerate(net.blocks):
                block.norm.running_mean.copy_(state["running_mean"][i])
                block.norm.running_var.copy_(state["running_var"][i])
                block.norm.num_batches_tracked.fill_(state["num_batches_tracked"])
    return net.eval()


def _module_tensors(net: nn.Module, depth: int, norm: str | None) -> dict[str, torch.Tensor]:
    """The parameters of one :func:`vgcourse.mlp` under the names of :func:`_layout`."""
    out: dict[str, torch.Tensor] = {"Wout": net.output_layer.weight, "bout": net.output_layer.bias}
    for i, block in enumerate(net.blocks):
        out[f"W{i}"], out[f"b{i}"] = block.linear.weight, block.linear.bias
        if norm is not None:
            out[f"gamma{i}"], out[f"beta{i}"] = block.norm.weight, block.norm.bias
    return {k: v.detach().reshape(1, -1) if v.ndim == 1 else v.detach() for k, v in out.items()}


class BatchedMLP:
    """``K`` MLPs of one depth, width and normalization, with their own weights, activations and skips.

    ``cfgs`` are normalised sweep configurations (keys of :data:`vgcourse.sweeps.CONFIG_DEFAULTS`);
    model ``k`` starts from exactly the weights ``vgcourse.mlp(...)`` gives with
    ``torch.manual_seed(cfgs[k]["seed"])``. Models with the same activation must be next to each
    other (:func:`vgcourse.sweeps.sweep` sorts them).
    """

    def __init__(self, cfgs: Sequence[dict], n_in: int, n_out: int, device: torch.device):
        first = cfgs[0]
        self.K, self.depth, self.width = len(cfgs), first["depth"], first["width"]
        self.norm = first["norm"]
        residual = [bool(c["residual"]) for c in cfgs]
        # plain and residual models share a group: h <- skip_k h + s_k phi(.), skip_k in {0, 1}
        self.residual = "all" if all(residual) else "some" if any(residual) else "none"
        self.n_in, self.n_out, self.cfgs = n_in, n_out, list(cfgs)
        self.train_steps = 0  # training-mode forward passes (batch norm's num_batches_tracked)
        layout = _layout(self.depth, self.width, n_in, n_out, self.norm)
        sizes = [math.prod(shape) for _, shape in layout]
        self.flat = torch.empty(self.K, sum(sizes))
        for k in range(self.K):
            tensors = _module_tensors(self.build_module(k), self.depth, self.norm)
            self.flat[k] = torch.cat([tensors[name].reshape(-1) for name, _ in layout])
        self.flat = self.flat.to(device)
        self.views: dict[str, torch.Tensor] = {}
        offset = 0
        for (name, shape), size in zip(layout, sizes):
            view = self.flat[:, offset : offset + size].view(self.K, *shape)
            self.views[name] = view.requires_grad_()  # a leaf that shares the buffer's storage
            offset += size
        self.leaves = list(self.views.values())
        # squared gradient -> per hidden layer: first layer alone, layers 2..L as one reshape
        self._first = sizes[0]
        self._rest = (sizes[0], sizes[0] + (self.depth - 1) * self.width**2)
        scales = [float(c["residual_scale"]) if r else 1.0 for c, r in zip(cfgs, residual)]
        self.scale = torch.tensor(scales, device=device).view(-1, 1, 1)
        self.skip = torch.tensor([float(r) for r in residual], device=device).view(-1, 1, 1)
        if self.norm == "batch":
            self.running_mean = torch.zeros(self.depth, self.K * self.width, device=device)
            self.running_var = torch.ones(self.depth, self.K * self.width, device=device)
        names = [_act.canonical_name(c["activation"]) for c in cfgs]
        sizes, kernels = [], []
        for name in dict.fromkeys(names):
            idx = [k for k, n in enumerate(names) if n == name]
            if idx != list(range(idx[0], idx[-1] + 1)):
                raise ValueError("models with the same activation must be next to each other")
            sizes.append(len(idx))
            kernels.append(_kernels(name, _act.activation(name).to(device)))
        self.groups = (sizes, kernels)
        self._single = _act.activation(names[0]).to(device) if len(sizes) == 1 else None

    def build_module(self, k: int) -> nn.Module:
        """Model ``k`` as an ordinary :func:`vgcourse.mlp`, with its initial weights (seeded)."""
        return build_module(self.cfgs[k], self.n_in, self.n_out)

    def snapshot(self, k: int) -> dict[str, torch.Tensor]:
        """Model ``k``'s current parameters (and batch-norm running statistics), copied to the CPU."""
        state = {name: view[k].detach().cpu().clone() for name, view in self.views.items()}
        if self.norm == "batch":
            cols = slice(k * self.width, (k + 1) * self.width)
            state["running_mean"] = self.running_mean[:, cols].cpu().clone()
            state["running_var"] = self.running_var[:, cols].cpu().clone()
            state["num_batches_tracked"] = self.train_steps
        return state

    # -- forward ----------------------------------------------------------------------------
    def _activate(self, a: torch.Tensor) -> torch.Tensor:
        if self._single is not None:
            return self._single(a)
        return MixedActivation.apply(a, self.groups)

    def _normalize(self, i: int, a: torch.Tensor, train: bool) -> torch.Tensor:
        gamma, beta = self.views[f"gamma{i}"], self.views[f"beta{i}"]
        if self.norm == "layer":
            return F.layer_norm(a, (self.width,), eps=LN_EPS) * gamma + beta
        # batch norm of model k's unit j = channel k * width + j of a (B, K * width) batch
        K, B, w = a.shape
        x = a.transpose(0, 1).reshape(B, K * w)
        y = F.batch_norm(
            x,
            self.running_mean[i],
            self.running_var[i],
            gamma.reshape(K * w),
            beta.reshape(K * w),
            training=train,
            momentum=BN_MOMENTUM,
            eps=BN_EPS,
        )
        return y.view(B, K, w).transpose(0, 1)

    def forward(self, X: torch.Tensor, train: bool = True) -> torch.Tensor:
        """Outputs ``(K, B, n_out)`` for inputs ``X`` of shape ``(B, n_in)`` (shared) or ``(K, B, n_in)``."""
        h = X
        self.train_steps += int(train)
        for i in range(self.depth):
            W, b = self.views[f"W{i}"], self.views[f"b{i}"]
            a = torch.baddbmm(b, h, W.mT) if h.ndim == 3 else torch.matmul(h, W.mT) + b
            if self.norm is not None:
                a = self._normalize(i, a, train)
            z = self._activate(a)
            if i == 0 or self.residual == "none":
                h = z
            elif self.residual == "all":
                h = h + self.scale * z
            else:  # 0 * h + 1 * z is exactly z for a plain model (finite h)
                h = self.skip * h + self.scale * z
        return torch.baddbmm(self.views["bout"], h, self.views["Wout"].mT)

    # -- gradients ----------------------------------------------------------------------------
    def gradients(self, loss: torch.Tensor) -> torch.Tensor:
        """The ``(K, P)`` gradient of a scalar ``loss`` (the sum of the per-model losses)."""
        grads = torch.autograd.grad(loss, self.leaves)
        return torch.cat([g.reshape(self.K, -1) for g in grads], dim=1)

    def layer_sq_norms(self, sq: torch.Tensor) -> torch.Tensor:
        """Per hidden layer squared weight-gradient norms ``(K, depth)`` from the squared gradient ``(K, P)``."""
        first = sq[:, : self._first].sum(1, keepdim=True)
        if self.depth == 1:
            return first
        lo, hi = self._rest
        rest = sq[:, lo:hi].view(self.K, self.depth - 1, -1).sum(-1)
        return torch.cat([first, rest], dim=1)


class FlatOptimizer:
    r"""SGD, SGD with momentum 0.9, or Adam on a ``(K, P)`` buffer, one learning rate per model.

    Step for step the same as ``torch.optim`` with its defaults: momentum :math:`b \leftarrow \mu b + g`
    (:math:`b = g` at the first step), :math:`p \leftarrow p - \eta b`; Adam (Kingma & Ba 2015,
    Algorithm 1) :math:`m \leftarrow \beta_1 m + (1-\beta_1) g`, :math:`v \leftarrow \beta_2 v + (1-\beta_2) g^2`,
    :math:`p \leftarrow p - \eta\,\hat m / (\sqrt{\hat v} + \epsilon)` with bias-corrected
    :math:`\hat m, \hat v` and :math:`\epsilon` added after the square root, as PyTorch does.
    """

    def __init__(
        self,
        flat: torch.Tensor,
        lrs: torch.Tensor,
        kind: str,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        momentum: float = 0.9,
    ):
        self.flat, self.kind = flat, kind
        self.lrs = lrs.to(flat.dtype).view(-1, 1)
        self.betas, self.eps, self.momentum, self.t = betas, eps, momentum, 0
        self.buffer: torch.Tensor | None = None
        if kind == "adam":
            self.m, self.v = torch.zeros_like(flat), torch.zeros_like(flat)

    @torch.no_grad()
    def step(self, g: torch.Tensor) -> None:
        if self.kind == "sgd":
            self.flat.sub_(g * self.lrs)
            return
        if self.kind == "momentum":
            if self.buffer is None:
                self.buffer = g.clone()
            else:
                self.buffer.mul_(self.momentum).add_(g)
            self.flat.sub_(self.buffer * self.lrs)
            return
        b1, b2 = self.betas
        self.t += 1
        self.m.lerp_(g, 1 - b1)
        self.v.mul_(b2).addcmul_(g, g, value=1 - b2)
        denom = self.v.sqrt().div_(math.sqrt(1 - b2**self.t)).add_(self.eps)
        self.flat.sub_(self.m.div(denom).mul_(self.lrs / (1 - b1**self.t)))
