r"""The diagnosis over a real training run: ``with vg.monitor(model, every=10) as mon: ...``.

One check at one moment misses what appears later: dead units after 50 steps at a high learning
rate, an update:data ratio that drifts, a gradient that turns NaN at step 800. A :class:`Monitor`
rides along your own training loop, with your optimizer, schedule and mixed precision::

    with vg.monitor(model, every=10) as mon:
        for X, y in loader:
            opt.zero_grad()
            loss = loss_fn(model(X), y)
            loss.backward()
            opt.step()
            mon.step(loss)          # after optimizer.step()
    mon.problems_started()          # {"dead_units": 60, ...}: the step each problem first appeared
    mon.plot()                      # update:data per layer over the steps (Karpathy's plot), ...

Every ``every``-th step it records, per layer (the layers of :func:`vgcourse.diagnose`: every
parameter with a gradient, grouped by module) the gradient RMS, the grad:data ratio (at the
weights the gradient was computed at) and the
**update:data ratio of the real update** :math:`\|W_{t+1} - W_t\| / \|W_t\|` (the weights are
copied when the forward pass of a recorded step starts, and compared after ``optimizer.step()``);
per activation module the dead and saturated fractions; and whether any gradient or the loss is
non-finite. Between recorded steps the hooks return at once. The problems use the thresholds of
:mod:`vgcourse.diagnosis_rules` (Karpathy's healthy update:data is near :math:`10^{-3}`).

It never changes training: the hooks read detached tensors under ``torch.no_grad()`` and draw no
random numbers, so the losses are bit-for-bit those of the same run without it (tested). With
``torch.amp.GradScaler``, pass ``mon.step(loss, grad_scale=scaler.get_scale())`` unless you
unscaled the gradients yourself (``scaler.unscale_``), so the gradient norms are the true ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ._validate import check_int, check_module
from .diagnosis_activations import NOT_ACTIVATIONS, STATS_OF, known_kind
from .diagnosis_measure import _owner_modules, parameter_owners
from .diagnosis_rules import (
    DEAD_FRACTION,
    SATURATED_FRACTION,
    UPDATE_TOO_LARGE,
    UPDATE_TOO_SMALL,
    layer_role,
    vanishing_layers,
)
from .probe_stats import _OUTPUT_KEPT_BY_AUTOGRAD, _activation_rows, _norms


@dataclass
class MonitorRecord:
    """What one recorded step measured."""

    step: int
    loss: float
    grad_rms: list[float]
    grad_to_data: list[float]
    update_to_data: list[float]
    dead: list[float]
    saturated: list[float]
    non_finite: bool
    problems: list[str] = field(default_factory=list)


class Monitor:
    """Per-layer gradient statistics over a training run; see the module docstring."""

    def __init__(self, model: nn.Module, every: int = 10) -> None:
        self.model = check_module("model", model)
        self.every = check_int("every", every, minimum=1)
        owners = parameter_owners(model)
        layers = [
            (name, [p for _, p in params if p.ndim >= 2 and p.requires_grad])
            for name, params in owners.items()
        ]
        layers = [(n, ps) for n, ps in layers if ps]
        if not layers:
            raise ValueError("the model has no trainable weight matrix to monitor")
        self._holders = _owner_modules(model, {n: None for n, _ in layers})
        self._set_layers(layers)
        self._call_order: list[str] | None = []  # None once the layers are in call order
        self.activation_names = [
            n
            for n, m in model.named_modules()
            if known_kind(m) not in (None, "identity") and not isinstance(m, NOT_ACTIVATIONS)
        ]
        self.records: list[MonitorRecord] = []
        self.steps = 0  # optimizer steps seen
        self._handles: list = []
        self._before: list[torch.Tensor] | None = None
        self._acts: dict[str, tuple[str, torch.Tensor]] = {}  # name -> (kind, output)

    def _set_layers(self, layers: list[tuple[str, list[nn.Parameter]]]) -> None:
        self._layers = layers
        self.layer_names = [n for n, _ in layers]
        self._roles = [layer_role(n, type(self._holders[n]).__name__) for n in self.layer_names]
        self._weights = [p for _, ps in layers for p in ps]
        self._owner = torch.tensor([i for i, (_, ps) in enumerate(layers) for _ in ps])
        self._sizes = torch.tensor([sum(p.numel() for p in ps) for _, ps in layers]).float()

    def _put_in_call_order(self) -> None:
        """After the first forward pass: the layers sorted by their first call (the order the
        vanishing check compares them in), layers never called last."""
        rank = {n: i for i, n in enumerate(dict.fromkeys(self._call_order or []))}
        order = sorted(range(len(self._layers)), key=lambda j: rank.get(self.layer_names[j], 1e9))
        start = np.cumsum([0] + [len(ps) for _, ps in self._layers])
        weights = [k for j in order for k in range(start[j], start[j + 1])]
        self._set_layers([self._layers[j] for j in order])
        if self._before is not None:
            self._before = [self._before[k] for k in weights]
        self._call_order = None

    # -- hooks ------------------------------------------------------------------------------
    @property
    def _due(self) -> bool:
        return (self.steps + 1) % self.every == 0 or self.steps == 0

    def _layer_hook(self, name: str):
        """Before a layer runs: learn the call order (first pass), copy the weights (the first
        layer called in a recorded step; a LightningModule's own ``forward`` may never run)."""

        def hook(module: nn.Module, args: tuple) -> None:
            if self._call_order is not None:
                self._call_order.append(name)
            if self._due and self._before is None:
                with torch.no_grad():
                    self._before = [w.detach().clone() for w in self._weights]

        return hook

    def _activation_hook(self, name: str, kind: str):
        """Keep the output of a recorded step's first call (a reference where autograd keeps it
        anyway); its statistics are taken in :meth:`step`, together with the others."""

        def hook(module: nn.Module, args: tuple, output: Any) -> None:
            if not self._due or not isinstance(output, torch.Tensor) or name in self._acts:
                return
            kept = isinstance(module, _OUTPUT_KEPT_BY_AUTOGRAD) and output.requires_grad
            self._acts[name] = (kind, output.detach() if kept else output.detach().clone())

        return hook

    def _activation_fractions(self) -> list[tuple[float, float]]:
        """``(dead, saturated)`` of each activation module: outputs of one kind and shape are
        stacked, so a deep MLP's ten ReLU layers cost one pass of :func:`_activation_rows`."""
        groups: dict[tuple, list[str]] = {}
        for name, (kind, out) in self._acts.items():
            groups.setdefault((kind, out.shape, out.dtype, out.device), []).append(name)
        found: dict[str, tuple[float, float]] = {}
        with torch.no_grad():
            for (kind, *_), names in groups.items():
                stacked = torch.stack([self._acts[n][1] for n in names])
                rows = _activation_rows(kind, stacked, moments=False).tolist()
                found.update((n, (rows[3][j], rows[2][j])) for j, n in enumerate(names))
        self._acts = {}
        return [found.get(n, (math.nan, math.nan)) for n in self.activation_names]

    def attach(self) -> Monitor:
        """Register the hooks (done by ``with``)."""
        self.detach()
        self._handles += [
            self._holders[n].register_forward_pre_hook(self._layer_hook(n))
            for n in self.layer_names
        ]
        modules = dict(self.model.named_modules())
        for name in self.activation_names:
            kind = STATS_OF.get(known_kind(modules[name]) or "", "")
            self._handles.append(
                modules[name].register_forward_hook(self._activation_hook(name, kind))
            )
        return self

    def detach(self) -> None:
        """Remove every hook; the records stay."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._acts, self._before = {}, None  # no tensor of the model's kept past the run

    def __enter__(self) -> Monitor:
        return self.attach()

    def __exit__(self, *exc) -> None:
        self.detach()

    # -- after optimizer.step() -----------------------------------------------------------
    def _per_layer(self, norms: torch.Tensor) -> torch.Tensor:
        total = torch.zeros(len(self._layers), dtype=torch.float32)
        return total.index_add_(0, self._owner, norms.float().cpu() ** 2).sqrt_()

    def step(self, loss: torch.Tensor | float | None = None, *, grad_scale: float = 1.0) -> None:
        """Call once after each ``optimizer.step()``; records on every ``every``-th step."""
        if self._call_order:
            self._put_in_call_order()
        due = self._due
        self.steps += 1
        if not due:
            return
        with torch.no_grad():
            grads = [w.grad if w.grad is not None else torch.zeros_like(w) for w in self._weights]
            grad = self._per_layer(_norms(grads)) / float(grad_scale)
            if self._before is not None:  # the weights the gradient was computed at
                weight = self._per_layer(_norms(self._before))
                torch._foreach_sub_(self._before, [w.detach() for w in self._weights])
                change = self._per_layer(_norms(self._before))  # in place: -(W_after - W_before)
                update = torch.where(weight > 0, change / weight, torch.inf).tolist()
            else:
                weight = self._per_layer(_norms([w.detach() for w in self._weights]))
                update = [math.nan] * len(self._layers)
        self._before = None
        value = float(loss.detach()) if isinstance(loss, torch.Tensor) else loss
        acts = self._activation_fractions()
        rec = MonitorRecord(
            step=self.steps,
            loss=math.nan if value is None else float(value),
            grad_rms=(grad / self._sizes.sqrt()).tolist(),
            grad_to_data=torch.where(weight > 0, grad / weight, torch.inf).tolist(),
            update_to_data=update,
            dead=[a[0] for a in acts],
            saturated=[a[1] for a in acts],
            non_finite=not bool(torch.isfinite(grad).all())
            or (value is not None and not math.isfinite(value)),
        )
        rec.problems = _problems(rec, self._roles)
        self.records.append(rec)

    # -- reading ----------------------------------------------------------------------------
    def history(self) -> dict[str, np.ndarray]:
        """The records as arrays: ``step`` (n,), ``loss`` (n,), per-layer ``(n, layers)``, ...."""
        fields = ("grad_rms", "grad_to_data", "update_to_data", "dead", "saturated")
        out = {k: np.array([getattr(r, k) for r in self.records], dtype=float) for k in fields}
        out["step"] = np.array([r.step for r in self.records])
        out["loss"] = np.array([r.loss for r in self.records], dtype=float)
        return out

    def problems_started(self) -> dict[str, int]:
        """``{problem: the first recorded step that showed it}``."""
        first: dict[str, int] = {}
        for rec in self.records:
            for problem in rec.problems:
                first.setdefault(problem, rec.step)
        return first

    def __str__(self) -> str:
        if not self.records:
            return f"Monitor: no step recorded yet (every={self.every})"
        started = self.problems_started()
        lines = [
            f"Monitor: {len(self.records)} recorded steps of {self.steps} (every={self.every}), "
            f"{len(self.layer_names)} layers, {len(self.activation_names)} activation modules"
        ]
        last = self.records[-1]
        med = np.nanmedian(np.array(last.update_to_data, dtype=float))
        lines.append(
            f"last recorded step {last.step}: loss {last.loss:.4g}, median update:data {med:.2g}"
        )
        if not started:
            lines.append("No problem seen.")
        for problem, step in started.items():
            lines.append(f"  - {problem.replace('_', ' ')}: from step {step}")
        return "\n".join(lines)

    def plot(self, axes=None):
        """Update:data per layer over the steps (log scale, the healthy 1e-3 marked), and the dead
        fraction per activation layer, legends beside the data (:func:`vgcourse.plot_style.style`);
        returns the axes."""
        import matplotlib.pyplot as plt

        from .plot_style import style

        if axes is None:
            _, axes = plt.subplots(1, 2, figsize=(12, 3.6), layout="constrained")
        h = self.history()
        many = len(self.layer_names) > 12
        for j, name in enumerate(self.layer_names):
            axes[0].plot(h["step"], h["update_to_data"][:, j], lw=1, label=None if many else name)
        axes[0].axhline(1e-3, color="k", ls="--", lw=1, label="1e-3 (healthy, Karpathy)")
        style(
            axes[0],
            xlabel="training step",
            ylabel="update:data  |dW| / |W|",
            title="Size of each update",
            logy=True,
            legend="outside",
        )
        many = len(self.activation_names) > 12
        for j, name in enumerate(self.activation_names):
            axes[1].plot(h["step"], 100 * h["dead"][:, j], lw=1, label=None if many else name)
        axes[1].axhline(100 * DEAD_FRACTION, color="tab:red", ls=":", lw=1, label="threshold")
        style(
            axes[1],
            xlabel="training step",
            ylabel="dead units (%)",
            title="Dead units",
            legend="outside",
        )
        return axes


def _problems(rec: MonitorRecord, roles: list) -> list[str]:
    """The problems one record shows (the diagnosis's thresholds; ``roles``: each layer's
    :func:`~vgcourse.diagnosis_rules.layer_role`)."""
    found = []
    if rec.non_finite:
        found.append("non_finite")
    rms = np.array(rec.grad_rms, dtype=float)
    keep = np.isfinite(rms) & (rms > 0)
    if keep.any() and vanishing_layers(rms[keep], [r for r, k in zip(roles, keep) if k]):
        found.append("vanishing_gradients")
    if any(d > DEAD_FRACTION for d in rec.dead):
        found.append("dead_units")
    if any(s > SATURATED_FRACTION for s in rec.saturated):
        found.append("saturation")
    ups = np.array([u for u in rec.update_to_data if math.isfinite(u)])
    if ups.size:
        med = float(np.median(ups))
        if med > UPDATE_TOO_LARGE:
            found.append("update_too_large")
        elif med < UPDATE_TOO_SMALL:
            found.append("update_too_small")
    return found


def monitor(model: nn.Module, every: int = 10) -> Monitor:
    """A :class:`Monitor` for ``model``: use as ``with vg.monitor(model, every=10) as mon:``."""
    return Monitor(model, every)
