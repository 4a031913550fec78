r"""Train many small MLPs as one batched tensor program: the sweep engine.

Lessons compare many configurations (activation x init x depth x learning rate x seed). Trained one
after another, each tiny model spends most of its time in Python and kernel-launch overhead. Here
the ``K`` models of a group (same depth, width and normalization) are stacked and
trained together by :class:`vgcourse.batched.BatchedMLP`: one batched matrix multiply per layer for
all models, one autograd pass, and the per-layer gradient norms, divergence check and SGD / momentum
/ Adam update done once on a flat ``(K, P)`` buffer, with a learning rate per model. Every model
starts from the weights :func:`vgcourse.mlp` gives it with its seed and sees the mini-batches
:func:`vgcourse.fit` would give it, so a batched run reproduces the models trained alone (tested to
a tight tolerance).

Configurations of different shapes are grouped automatically, each group is split into chunks that
fit a memory budget, and the results come back as one :class:`SweepResult` whose ``histories`` are
ordinary :class:`vgcourse.History` objects that the plotting helpers take directly, and whose
:meth:`SweepResult.model` gives any trained model back as an ordinary ``nn.Module``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ._validate import check_choice, check_int, check_xy
from .activations import canonical_name
from .batched import BatchedMLP, FlatOptimizer, module_from_snapshot
from .device import get_device
from .losses import predictions
from .sweep_configs import (  # noqa: F401 (grid and build_model are public as sweeps.grid, sweeps.build_model)
    CONFIG_DEFAULTS,
    _normalise,
    build_model,
    grid,
)
from .train import BatchSampler, History

SWEEP_OPTIMIZERS = ("sgd", "momentum", "adam")
SWEEP_LOSSES = ("cross_entropy", "bce", "mse")
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
    shapes: tuple[int, int] = (0, 0)
    snapshots: dict[str, dict] = field(default_factory=dict, repr=False)
    peak_bytes: int = 0  #: estimated memory of the largest chunk that trained at once

    def summary(self) -> str:
        """One line: how many models, how they were batched, and the memory estimate vs the budget."""
        return (
            f"{len(self.configs)} models in {self.groups} group(s), {self.chunks} chunk(s) on {self.device}, "
            f"{self.seconds:.2f} s; largest chunk ~{self.peak_bytes / 2**20:.1f} MiB "
            f"(budget {self.memory_budget / 2**20:.0f} MiB)"
        )

    def model(self, label: str) -> torch.nn.Module:
        """The trained model of configuration ``label`` as an ordinary :func:`vgcourse.mlp` (CPU, eval mode).

        Only available when :func:`sweep` ran with ``keep_models=True`` (the default).
        """
        if label not in self.histories:
            raise ValueError(
                f"unknown configuration label {label!r}; labels: {list(self.histories)}"
            )
        if label not in self.snapshots:
            raise ValueError("the sweep ran with keep_models=False: no trained weights were kept")
        cfg = next(c for c in self.configs if c["label"] == label)
        return module_from_snapshot(cfg, *self.shapes, self.snapshots[label])

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


def _bytes_per_model(cfg: dict, n_in: int, n_out: int, batch: int, optimizer: str) -> int:
    """Rough memory of one model in a batched run: parameters x (weights, grads, optimizer state) + activations."""
    width, depth = cfg["width"], cfg["depth"]
    params = n_in * width + (depth - 1) * width * width + width * n_out + depth * width + n_out
    if cfg["norm"] is not None:
        params += 2 * depth * width
    states = 5 if optimizer == "adam" else 3  # weights, gradients, their flat copy, optimizer state
    saved = 4 if cfg["norm"] is not None else 3  # tensors autograd keeps per hidden layer
    activations = (saved + int(cfg["residual"])) * batch * width * depth + batch * (n_in + n_out)
    return 4 * (states * params + activations)


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
    drop_last: bool,
    keep_models: bool,
) -> tuple[list[History], list[tuple[float, float]], list[dict]]:
    K = len(cfgs)
    n_out = int(y.max()) + 1 if loss == "cross_entropy" else 1
    net = BatchedMLP(cfgs, X.shape[1], n_out, device)
    lrs = torch.tensor([c["lr"] for c in cfgs], device=device)
    opt = FlatOptimizer(net.flat, lrs, optimizer)
    data_seeds = list(dict.fromkeys(c["data_seed"] for c in cfgs))
    samplers = [BatchSampler(len(X), batch_size, seed, drop_last=drop_last) for seed in data_seeds]
    order_of = torch.tensor([data_seeds.index(c["data_seed"]) for c in cfgs])
    shared_order = len(data_seeds) == 1
    check_alive_on_host = device.type == "cpu"
    losses, totals, norms = [], [], []
    alive = torch.ones(K, 1, dtype=torch.bool, device=device)
    diverged = torch.full((K,), steps, dtype=torch.long, device=device)
    evals: list[list[tuple[int, float, float]]] = [[] for _ in cfgs]
    for step in range(steps):
        idx = samplers[0].next() if shared_order else None
        if idx is not None:
            idx = idx.to(device)
        elif not shared_order and samplers[0].batch_size is not None:
            idx = torch.stack([s.next() for s in samplers])[order_of].to(device)
        xb, yb = (X, y) if idx is None else (X[idx], y[idx])
        per_model = _per_model_loss(net.forward(xb), yb, loss)
        g = net.gradients(per_model.sum())
        with torch.no_grad():
            sq = g * g
            total_sq = sq.sum(1)
            losses.append(per_model.detach())
            totals.append(total_sq)
            if record:
                norms.append(net.layer_sq_norms(sq))
            finite = torch.isfinite(per_model + total_sq).view(K, 1)
            newly = alive & ~finite
            diverged = torch.where(newly.view(-1), step, diverged)
            alive &= finite
            # a diverged model stops: its updates are masked (on the CPU only when one has diverged)
            if not check_alive_on_host or not bool(alive.all()):
                g = torch.where(alive, g, torch.zeros((), device=device))
        opt.step(g)
        if eval_data is not None and eval_every and (step + 1) % eval_every == 0:
            _evaluate_into(evals, net, eval_data, loss, step + 1)
    if eval_data is not None and (not evals[0] or evals[0][-1][0] != steps):
        _evaluate_into(evals, net, eval_data, loss, steps)
    losses_np = torch.stack(losses).cpu().double().numpy()
    totals_np = torch.stack(totals).cpu().double().sqrt().numpy()
    if record:
        norms_np = torch.stack(norms).cpu().double().sqrt().numpy()
    else:
        norms_np = np.zeros((steps, K, 0))
    diverged_np = diverged.cpu().numpy()
    histories, finals = [], []
    for k in range(K):
        d = int(diverged_np[k])
        end = steps if d == steps else d + 1
        h = History(
            loss=losses_np[:end, k],
            grad_norms=norms_np[:end, k],
            total_grad_norm=totals_np[:end, k],
            layer_names=[f"hidden[{i}]" for i in range(net.depth)],
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
    snapshots = [net.snapshot(k) for k in range(K)] if keep_models else [{} for _ in range(K)]
    return histories, finals, snapshots


@torch.no_grad()
def _evaluate_into(evals, net: BatchedMLP, data, loss: str, step: int) -> None:
    X, y = data
    out = net.forward(X, train=False)
    per_model = _per_model_loss(out, y, loss).cpu()
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
    drop_last: bool = False,
    keep_models: bool = True,
) -> SweepResult:
    """Train every configuration on ``data = (X, y)`` for ``steps`` steps, batched, and return a :class:`SweepResult`.

    Each configuration is a dict with keys from :data:`CONFIG_DEFAULTS`: ``depth``, ``width``,
    ``activation`` (any of :data:`vgcourse.ACTIVATIONS` but ``prelu``), ``init`` (+ ``init_kw``;
    ``None`` = PyTorch's default), ``norm`` (``None``, ``"batch"``, ``"layer"``), ``residual`` and
    ``residual_scale``, ``lr``, ``seed`` (weights; also the data order unless ``data_seed`` is
    given) and ``label``: the :func:`vgcourse.mlp` those arguments build, on flat inputs.
    ``optimizer`` is ``"sgd"``, ``"momentum"`` (SGD with momentum 0.9) or ``"adam"`` (PyTorch's
    defaults); ``batch_size``, ``drop_last`` and the data order are those of :func:`vgcourse.fit`,
    and so are the histories (``record=False`` skips the per-layer norms; evaluations use batch-norm
    running statistics, as ``model.eval()`` does).
    ``memory_budget`` (bytes; default 2 GiB, or a quarter of the free GPU memory) bounds how many
    models train at once: larger groups are split into chunks. ``keep_models`` keeps every trained
    model's weights (on the CPU) for :meth:`SweepResult.model`.
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
    for name, flag in (("record", record), ("drop_last", drop_last), ("keep_models", keep_models)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be True or False, got {flag!r}")
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
    batch = min(batch_size or len(X), len(X))
    smallest = batch if drop_last or len(X) % batch == 0 else len(X) % batch
    if smallest < 2 and any(c["norm"] == "batch" for c in cfgs):
        raise ValueError(
            "batch norm needs at least 2 samples per batch, but some batches would hold 1 "
            f"({len(X)} samples, batch_size {batch_size}); change batch_size or pass drop_last=True"
        )

    groups: dict[tuple, list[int]] = {}
    for i, c in enumerate(cfgs):
        groups.setdefault((c["depth"], c["width"], c["norm"]), []).append(i)
    for members in groups.values():  # same activation next to each other: one slice per activation
        members.sort(key=lambda i: canonical_name(cfgs[i]["activation"]))
    start = time.perf_counter()
    histories: dict[str, History] = {}
    finals: dict[str, tuple[float, float]] = {}
    snapshots: dict[str, dict] = {}
    n_chunks, peak = 0, 0
    for members in groups.values():
        per_model = max(
            _bytes_per_model(cfgs[i], X.shape[1], n_out, batch, optimizer) for i in members
        )
        size = max(1, memory_budget // per_model)
        for lo in range(0, len(members), size):
            chunk = [cfgs[i] for i in members[lo : lo + size]]
            peak = max(peak, per_model * len(chunk))
            hs, fs, ss = _train_chunk(
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
                drop_last=drop_last,
                keep_models=keep_models,
            )
            n_chunks += 1
            for cfg, h, f, snap in zip(chunk, hs, fs, ss):
                histories[cfg["label"]] = h
                if keep_models:
                    snapshots[cfg["label"]] = snap
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
        peak_bytes=peak,
        final_eval=finals,
        shapes=(X.shape[1], n_out),
        snapshots=snapshots,
    )
