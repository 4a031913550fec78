r"""Train many small MLPs as one batched tensor program: the sweep engine.

Lessons compare many configurations (activation x init x depth x learning rate x seed). Trained one
after another, each tiny model spends most of its time in Python and kernel-launch overhead. Here
the ``K`` models of a group (same depth and width) are stacked: layer :math:`\ell` of all models is
one tensor :math:`W_\ell \in \mathbb R^{K \times n_{out} \times n_{in}}` and the forward pass is a
batched matrix multiply,

.. math:: H_\ell = \phi_k\big(H_{\ell-1} W_\ell^\top + b_\ell\big), \qquad H_\ell \in \mathbb R^{K \times B \times n},

the loss is the sum of the K per-model mean losses (so each model's gradient is exactly its own), and
SGD / Adam updates are applied with a per-model learning rate. Every model starts from the weights
:func:`vgcourse.mlp` gives it with its seed and sees the mini-batches :func:`vgcourse.fit` would
give it, so a batched run reproduces the models trained alone (tested to a tight tolerance).

Configurations of different shapes are grouped automatically, each group is split into chunks that
fit a memory budget, and the results come back as one :class:`SweepResult` whose ``histories`` are
ordinary :class:`vgcourse.History` objects that the plotting helpers take directly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ._validate import check_choice, check_int, check_positive, check_xy
from .activations import activation as make_activation
from .activations import canonical_name
from .device import get_device
from .inits import INITS
from .losses import predictions
from .models import mlp
from .train import BatchSampler, History

SWEEP_OPTIMIZERS = ("sgd", "momentum", "adam")
SWEEP_LOSSES = ("cross_entropy", "bce", "mse")
#: Keys a configuration may set, with their defaults.
CONFIG_DEFAULTS: dict[str, Any] = {
    "depth": 3,
    "width": 32,
    "activation": "relu",
    "init": "kaiming_normal",
    "init_kw": None,
    "lr": 1e-3,
    "seed": 0,
    "data_seed": None,  # None: same as seed
    "label": None,
}
DEFAULT_MEMORY_BUDGET = 2 * 1024**3


@dataclass
class SweepResult:
    """The outcome of :func:`sweep`: one entry per configuration, in the order given.

    ``histories`` maps each configuration's label to a :class:`vgcourse.History` (loss per step,
    per-layer gradient norms, ``diverged_at``, evaluations); ``configs`` holds the full
    configurations; ``groups`` and ``chunks`` say how the run was batched.
    """

    configs: list[dict]
    histories: dict[str, History]
    seconds: float
    groups: int
    chunks: int
    memory_budget: int
    device: str
    final_eval: dict[str, tuple[float, float]] = field(default_factory=dict)

    def table(self) -> list[dict]:
        """One row per configuration: its settings, final loss, divergence step and evaluation."""
        rows = []
        for cfg in self.configs:
            h = self.histories[cfg["label"]]
            row = {k: v for k, v in cfg.items() if k not in ("init_kw",)}
            row.update(final_loss=h.final_loss, diverged_at=h.diverged_at)
            if cfg["label"] in self.final_eval:
                row["eval_loss"], row["eval_accuracy"] = self.final_eval[cfg["label"]]
            rows.append(row)
        return rows

    def where(self, **conditions: Any) -> dict[str, History]:
        """The histories whose configuration matches every ``key=value`` given."""
        return {
            c["label"]: self.histories[c["label"]]
            for c in self.configs
            if all(c.get(k) == v for k, v in conditions.items())
        }


def grid(**axes: Sequence[Any]) -> list[dict]:
    """Every combination of the given values: ``grid(activation=["relu", "tanh"], seed=[0, 1])``."""
    configs: list[dict] = [{}]
    for key, values in axes.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise TypeError(f"grid axis {key!r} must be a list of values, got {values!r}")
        configs = [{**c, key: v} for c in configs for v in values]
    return configs


def _normalise(config: Mapping[str, Any], index: int) -> dict:
    if not isinstance(config, Mapping):
        raise TypeError(f"configs[{index}] must be a dict, got {type(config).__name__}")
    unknown = set(config) - set(CONFIG_DEFAULTS)
    if unknown:
        raise ValueError(
            f"configs[{index}] has unknown key(s) {sorted(unknown)}; allowed: {sorted(CONFIG_DEFAULTS)}"
        )
    cfg = {**CONFIG_DEFAULTS, **config}
    cfg["depth"] = check_int(f"configs[{index}]['depth']", cfg["depth"], minimum=1)
    cfg["width"] = check_int(f"configs[{index}]['width']", cfg["width"], minimum=1)
    canonical_name(cfg["activation"])
    check_choice(f"configs[{index}]['init']", cfg["init"], INITS)
    cfg["lr"] = check_positive(f"configs[{index}]['lr']", cfg["lr"])
    cfg["seed"] = check_int(f"configs[{index}]['seed']", cfg["seed"], minimum=0)
    if cfg["data_seed"] is None:
        cfg["data_seed"] = cfg["seed"]
    if cfg["label"] is None:
        cfg["label"] = (
            " ".join(f"{k}={config[k]}" for k in config if k not in ("label", "init_kw"))
            or f"config {index}"
        )
    return cfg


def _bytes_per_model(cfg: dict, n_in: int, n_out: int, batch: int, optimizer: str) -> int:
    """Rough memory of one model in a batched run: parameters x (weights, grads, optimizer state) + activations."""
    width, depth = cfg["width"], cfg["depth"]
    params = n_in * width + (depth - 1) * width * width + width * n_out + depth * width + n_out
    states = 4 if optimizer == "adam" else 2
    activations = 3 * batch * width * depth + batch * (n_in + n_out)
    return 4 * (states * params + activations)


class _BatchedMLP:
    """K MLPs of one shape as stacked tensors (weights (K, out, in), biases (K, 1, out))."""

    def __init__(self, cfgs: list[dict], n_in: int, n_out: int, device: torch.device):
        weights: list[list[torch.Tensor]] = []
        biases: list[list[torch.Tensor]] = []
        for cfg in cfgs:
            torch.manual_seed(cfg["seed"])
            net = mlp(
                n_in,
                n_out,
                depth=cfg["depth"],
                width=cfg["width"],
                activation=cfg["activation"],
                init=cfg["init"],
                **(cfg["init_kw"] or {}),
            )
            layers = [*net.hidden_layers, net.output_layer]
            weights.append([layer.weight.detach() for layer in layers])
            biases.append([layer.bias.detach() for layer in layers])
        L = len(weights[0])
        self.weights = [
            torch.stack([w[i] for w in weights]).to(device).requires_grad_() for i in range(L)
        ]
        self.biases = [
            torch.stack([b[i] for b in biases]).unsqueeze(1).to(device).requires_grad_()
            for i in range(L)
        ]
        acts = [canonical_name(c["activation"]) for c in cfgs]
        self.activation_groups = []  # (slice or index tensor, module)
        for name in dict.fromkeys(acts):
            idx = [k for k, a in enumerate(acts) if a == name]
            where = (
                slice(idx[0], idx[-1] + 1)
                if idx == list(range(idx[0], idx[-1] + 1))
                else torch.tensor(idx, device=device)
            )
            self.activation_groups.append((where, make_activation(name)))
        self.K = len(cfgs)

    def params(self) -> list[torch.Tensor]:
        return [*self.weights, *self.biases]

    def _activate(self, a: torch.Tensor) -> torch.Tensor:
        if len(self.activation_groups) == 1:
            return self.activation_groups[0][1](a)
        if all(isinstance(where, slice) for where, _ in self.activation_groups):
            return torch.cat([module(a[where]) for where, module in self.activation_groups])
        out = torch.empty_like(a)
        for where, module in self.activation_groups:
            out[where] = module(a[where])
        return out

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        h = X
        last = len(self.weights) - 1
        for i, (W, b) in enumerate(zip(self.weights, self.biases)):
            a = (
                torch.baddbmm(b, h, W.transpose(1, 2))
                if h.shape[0] == self.K
                else torch.matmul(h, W.transpose(1, 2)) + b
            )
            h = a if i == last else self._activate(a)
        return h


def _per_model_loss(out: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    """Mean loss of each model over its batch: out (K, B, C), y (K, B) or (B,) -> (K,)."""
    K, B = out.shape[0], out.shape[1]
    y = y.expand(K, B) if y.ndim == 1 else y
    if loss == "cross_entropy":
        return (
            F.cross_entropy(out.reshape(K * B, -1), y.reshape(-1), reduction="none")
            .view(K, B)
            .mean(1)
        )
    if loss == "bce":
        return F.binary_cross_entropy_with_logits(
            out[..., 0], y.to(out.dtype), reduction="none"
        ).mean(1)
    return ((out[..., 0] - y.to(out.dtype)) ** 2).mean(1)


class _BatchedOptimizer:
    r"""SGD, SGD with momentum 0.9, or Adam, one learning rate per model, matching ``torch.optim`` step for step.

    Momentum follows PyTorch: :math:`b \leftarrow \mu b + g` (:math:`b = g` at the first step),
    :math:`p \leftarrow p - \eta b`.
    """

    def __init__(
        self,
        params: list[torch.Tensor],
        lrs: torch.Tensor,
        kind: str,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        self.params = params
        self.kind = kind
        self.lrs = [lrs.view(-1, *([1] * (p.ndim - 1))).to(p.dtype) for p in params]
        self.betas, self.eps, self.t = betas, eps, 0
        self.momentum = 0.9
        self.buffers: list[torch.Tensor] | None = None
        if kind == "adam":
            self.m = [torch.zeros_like(p) for p in params]
            self.v = [torch.zeros_like(p) for p in params]

    @torch.no_grad()
    def step(self, grads: list[torch.Tensor]) -> None:
        if self.kind == "sgd":
            for p, g, lr in zip(self.params, grads, self.lrs):
                p.sub_(lr * g)
            return
        if self.kind == "momentum":
            if self.buffers is None:
                self.buffers = [g.clone() for g in grads]
            else:
                torch._foreach_mul_(self.buffers, self.momentum)
                torch._foreach_add_(self.buffers, grads)
            for p, b, lr in zip(self.params, self.buffers, self.lrs):
                p.sub_(lr * b)
            return
        b1, b2 = self.betas
        self.t += 1
        torch._foreach_lerp_(self.m, grads, 1 - b1)
        torch._foreach_mul_(self.v, b2)
        torch._foreach_addcmul_(self.v, grads, grads, value=1 - b2)
        bias1 = 1 - b1**self.t
        bias2_sqrt = math.sqrt(1 - b2**self.t)
        denom = torch._foreach_sqrt(self.v)
        torch._foreach_div_(denom, bias2_sqrt)
        torch._foreach_add_(denom, self.eps)
        step = torch._foreach_div(self.m, denom)
        torch._foreach_mul_(step, [lr / bias1 for lr in self.lrs])
        torch._foreach_sub_(self.params, step)


def _train_chunk(
    cfgs: list[dict],
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int,
    batch_size: int | None,
    loss: str,
    optimizer: str,
    eval_data,
    eval_every: int | None,
    device: torch.device,
    record: bool,
) -> tuple[list[History], list[tuple[float, float]]]:
    K = len(cfgs)
    n_out = int(y.max()) + 1 if loss == "cross_entropy" else 1
    net = _BatchedMLP(cfgs, X.shape[1], n_out, device)
    lrs = torch.tensor([c["lr"] for c in cfgs], device=device)
    opt = _BatchedOptimizer(net.params(), lrs, optimizer)
    data_seeds = list(dict.fromkeys(c["data_seed"] for c in cfgs))
    samplers = [BatchSampler(len(X), batch_size, seed) for seed in data_seeds]
    order_of = torch.tensor([data_seeds.index(c["data_seed"]) for c in cfgs])
    shared_order = len(data_seeds) == 1
    check_alive_on_host = device.type == "cpu"
    n_hidden = len(net.weights) - 1
    losses = torch.empty(steps, K, device=device)
    norms = torch.empty(steps, K, n_hidden, device=device) if record else None
    totals = torch.empty(steps, K, device=device)
    alive = torch.ones(K, 1, 1, dtype=torch.bool, device=device)
    diverged = torch.full((K,), steps, dtype=torch.long, device=device)
    evals: list[list[tuple[int, float, float]]] = [[] for _ in cfgs]
    params = net.params()
    for step in range(steps):
        if batch_size is None or batch_size >= len(X):
            xb, yb = X, y
        elif shared_order:
            idx = samplers[0].next().to(device)
            xb, yb = X[idx], y[idx]
        else:
            idx = torch.stack([s.next() for s in samplers])[order_of].to(device)
            xb, yb = X[idx], y[idx]
        per_model = _per_model_loss(net.forward(xb), yb, loss)
        grads = torch.autograd.grad(per_model.sum(), params)
        with torch.no_grad():
            # per-model norms: weights (K, out, in) over dims (1, 2), biases (K, 1, out) likewise
            layer = torch.stack(
                [torch.linalg.vector_norm(g, dim=(1, 2)) for g in grads]
            )  # (params, K)
            total = torch.linalg.vector_norm(layer, dim=0)
            losses[step] = per_model.detach()
            totals[step] = total
            if record:
                norms[step] = layer[:n_hidden].T
            finite = torch.isfinite(per_model) & torch.isfinite(total)
            newly = alive.view(-1) & ~finite
            diverged = torch.where(newly, torch.full_like(diverged, step), diverged)
            alive = alive & finite.view(K, 1, 1)
            # a diverged model stops: its updates are masked (on the CPU only when one has diverged)
            if not check_alive_on_host or not bool(alive.all()):
                grads = [
                    torch.where(alive.view(K, *([1] * (g.ndim - 1))), g, torch.zeros_like(g))
                    for g in grads
                ]
        opt.step(grads)
        if eval_data is not None and eval_every and (step + 1) % eval_every == 0:
            _evaluate_into(evals, net, eval_data, loss, step + 1)
    if eval_data is not None and (not evals[0] or evals[0][-1][0] != steps):
        _evaluate_into(evals, net, eval_data, loss, steps)
    losses_np, totals_np = losses.cpu().double().numpy(), totals.cpu().double().numpy()
    norms_np = norms.cpu().double().numpy() if record else np.zeros((steps, K, 0))
    diverged_np = diverged.cpu().numpy()
    histories, finals = [], []
    for k in range(K):
        d = int(diverged_np[k])
        end = steps if d == steps else d + 1
        h = History(
            loss=losses_np[:end, k],
            grad_norms=norms_np[:end, k],
            total_grad_norm=totals_np[:end, k],
            layer_names=[f"hidden[{i}]" for i in range(n_hidden)],
            diverged_at=None if d == steps else d,
            clipped=np.zeros(end, dtype=bool),
        )
        kept = [e for e in evals[k] if e[0] <= end]
        h.eval_steps = [e[0] for e in kept]
        h.eval_loss = [e[1] for e in kept]
        h.eval_accuracy = [e[2] for e in kept]
        histories.append(h)
        finals.append(
            (evals[k][-1][1], evals[k][-1][2]) if evals[k] else (float("nan"), float("nan"))
        )
    return histories, finals


@torch.no_grad()
def _evaluate_into(evals, net: _BatchedMLP, data, loss: str, step: int) -> None:
    X, y = data
    out = net.forward(X)
    per_model = _per_model_loss(out, y, loss)
    for k in range(net.K):
        pred = predictions(out[k], loss)
        acc = float((pred == y).float().mean()) if pred is not None else float("nan")
        evals[k].append((step, float(per_model[k]), acc))


def sweep(
    configs: Sequence[Mapping[str, Any]],
    data,
    *,
    steps: int,
    batch_size: int | None = None,
    loss: str = "cross_entropy",
    optimizer: str = "adam",
    eval_data=None,
    eval_every: int | None = None,
    memory_budget: int | None = None,
    device: torch.device | str | None = None,
    record: bool = True,
) -> SweepResult:
    """Train every configuration on ``data = (X, y)`` for ``steps`` steps, batched, and return a :class:`SweepResult`.

    Each configuration is a dict with keys from :data:`CONFIG_DEFAULTS`: ``depth``, ``width``,
    ``activation``, ``init`` (+ ``init_kw``), ``lr``, ``seed`` (weights; also the data order
    unless ``data_seed`` is given) and ``label``. Models are plain :func:`vgcourse.mlp` MLPs (no
    norm, no skip) on flat inputs. ``optimizer`` is ``"sgd"``, ``"momentum"`` (SGD with momentum
    0.9) or ``"adam"`` (PyTorch's defaults), as in :func:`vgcourse.fit`.
    ``memory_budget`` (bytes; default 2 GiB, or a quarter of the free GPU memory) bounds how many
    models train at once: larger groups are split into chunks.
    """
    if isinstance(configs, Mapping) or not isinstance(configs, Sequence) or not configs:
        raise TypeError("configs must be a non-empty list of dicts (see vgcourse.sweeps.grid)")
    cfgs = [_normalise(c, i) for i, c in enumerate(configs)]
    labels = [c["label"] for c in cfgs]
    if len(set(labels)) != len(labels):
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        raise ValueError(f"configuration labels must be unique; repeated: {dupes}")
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"data must be a pair (X, y) of tensors, got {type(data).__name__}")
    X, y = check_xy(*data)
    if X.ndim != 2:
        raise ValueError(
            f"X must be 2-D (samples, features) for a sweep of MLPs, got shape {tuple(X.shape)}"
        )
    steps = check_int("steps", steps, minimum=1)
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size, minimum=1)
    check_choice("loss", loss, SWEEP_LOSSES)
    check_choice("optimizer", optimizer, SWEEP_OPTIMIZERS)
    if eval_every is not None:
        eval_every = check_int("eval_every", eval_every, minimum=1)
    device = torch.device(device) if device is not None else get_device()
    if memory_budget is None:
        memory_budget = DEFAULT_MEMORY_BUDGET
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            memory_budget = free // 4
    memory_budget = check_int("memory_budget", memory_budget, minimum=1)
    X, y = X.to(device), y.to(device)
    if eval_data is not None:
        ex, ey = check_xy(*eval_data)
        eval_data = (ex.to(device), ey.to(device))
    n_out = int(y.max()) + 1 if loss == "cross_entropy" else 1
    batch = batch_size or len(X)

    groups: dict[tuple[int, int], list[int]] = {}
    for i, c in enumerate(cfgs):
        groups.setdefault((c["depth"], c["width"]), []).append(i)
    for members in groups.values():  # same activation next to each other: one slice per activation
        members.sort(key=lambda i: canonical_name(cfgs[i]["activation"]))
    start = time.perf_counter()
    histories: dict[str, History] = {}
    finals: dict[str, tuple[float, float]] = {}
    n_chunks = 0
    for members in groups.values():
        per_model = _bytes_per_model(cfgs[members[0]], X.shape[1], n_out, batch, optimizer)
        size = max(1, memory_budget // per_model)
        for lo in range(0, len(members), size):
            chunk = [cfgs[i] for i in members[lo : lo + size]]
            hs, fs = _train_chunk(
                chunk,
                X,
                y,
                steps=steps,
                batch_size=batch_size,
                loss=loss,
                optimizer=optimizer,
                eval_data=eval_data,
                eval_every=eval_every,
                device=device,
                record=record,
            )
            n_chunks += 1
            for cfg, h, f in zip(chunk, hs, fs):
                histories[cfg["label"]] = h
                if eval_data is not None:
                    finals[cfg["label"]] = f
    seconds = time.perf_counter() - start
    ordered = {c["label"]: histories[c["label"]] for c in cfgs}
    for h in ordered.values():
        h.seconds = seconds / len(cfgs)
    return SweepResult(
        configs=cfgs,
        histories=ordered,
        seconds=seconds,
        groups=len(groups),
        chunks=n_chunks,
        memory_budget=memory_budget,
        device=str(device),
        final_eval=finals,
    )
