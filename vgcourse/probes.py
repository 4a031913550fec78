r"""Per-layer statistics of any ``nn.Module``, collected with forward and backward hooks.

A :class:`Probe` watches two kinds of module while you run forward and backward passes:

* **activation modules** (``nn.Sigmoid``, ``nn.Tanh``, ``nn.ReLU``, ... see
  :func:`vgcourse.activations.name_of`): mean and standard deviation of the output, a sample of
  the values for histograms, the **saturated fraction** and the **dead fraction**;
* **weight layers** (every module owning a weight of 2+ dimensions: Linear, Conv, RNN): the norm
  of the gradient reaching the layer's output :math:`\|\partial L/\partial a\|`, of its weight
  gradient :math:`\|\partial L/\partial W\|`, and the **grad:data ratio**
  :math:`\|\partial L/\partial W\| / \|W\|`; after an optimizer step (:meth:`Probe.update_ratios`)
  the **update:data ratio** :math:`\|\Delta W\| / \|W\|`.

Definitions, with their reasons:

* *saturated*: the local derivative :math:`\phi'(z)` is below 10% of its maximum, for activations
  that saturate on both sides (sigmoid, tanh, softsign). For the sigmoid this is an output below
  0.026 or above 0.974; for tanh :math:`|\tanh z| > 0.949`. A unit there passes back less than a
  tenth of the gradient it could (Glorot & Bengio 2010, sec. 3.1, study exactly these units).
* *dead*: a ReLU unit whose input is :math:`\le 0` for every sample of the batch, so its
  derivative, and every gradient through it, is exactly zero for the whole batch (Lu et al. 2019).
* *update:data*: Karpathy's rule of thumb (CS231n notes; "Building makemore" part 3) is that a
  healthy step changes each weight matrix by roughly :math:`10^{-3}` of its size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from . import activations as _act

SATURATION_THRESHOLD = 0.1


@dataclass
class ActivationRecord:
    """Statistics of one activation module's output during the last forward pass."""

    name: str
    activation: str
    mean: float
    std: float
    saturated: (
        float  #: fraction of entries with phi'(z) < 10% of its maximum (saturating families only)
    )
    dead: float  #: fraction of units with zero derivative on the whole batch (rectifiers only)
    values: torch.Tensor | None = None  #: a sample of the outputs, on the CPU, for histograms


@dataclass
class WeightRecord:
    """Gradient statistics of one weight layer during the last backward pass."""

    name: str
    module: str
    weight_norm: float
    grad_norm: float = float("nan")
    grad_to_data: float = float("nan")
    output_grad_norm: float = float("nan")
    update_to_data: float = float("nan")
    grad_values: torch.Tensor | None = None  #: a sample of the weight gradient, for histograms


def _weights_of(module: nn.Module) -> list[torch.Tensor]:
    return [
        p
        for n, p in module.named_parameters(recurse=False)
        if n.startswith("weight") and p.ndim >= 2
    ]


def _sample(t: torch.Tensor, max_values: int) -> torch.Tensor:
    flat = t.detach().reshape(-1)
    if flat.numel() > max_values:
        step = flat.numel() // max_values + 1
        flat = flat[::step]
    return flat.float().cpu()


@dataclass
class Probe:
    """Hooks that record per-layer statistics; use as a context manager around forward/backward.

    >>> with Probe(model) as probe:
    ...     loss_fn(model(X), y).backward()
    >>> probe.activation_table(), probe.weight_table()

    ``keep_values=True`` keeps up to ``max_values`` sampled outputs (and weight gradients) per
    layer for histograms. A module called several times in one forward pass (a shared ``nn.ReLU``)
    gets one record per call, named ``name#2``, ``name#3``...
    """

    model: nn.Module
    keep_values: bool = False
    max_values: int = 20000
    activations: dict[str, ActivationRecord] = field(default_factory=dict, init=False)
    weights: dict[str, WeightRecord] = field(default_factory=dict, init=False)
    _handles: list = field(default_factory=list, init=False, repr=False)
    _calls: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _before: dict[str, torch.Tensor] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(self.model).__name__}")
        self.activation_modules = [
            (n or "model", m)
            for n, m in self.model.named_modules()
            if _act.name_of(m) not in (None, "identity")
        ]
        self.weight_modules = [
            (n or "model", m) for n, m in self.model.named_modules() if _weights_of(m)
        ]

    # -- hooks -----------------------------------------------------------------------------
    def _record_name(self, name: str) -> str:
        count = self._calls.get(name, 0) + 1
        self._calls[name] = count
        return name if count == 1 else f"{name}#{count}"

    def _activation_hook(self, name: str):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            if not isinstance(output, torch.Tensor) or not inputs:
                return
            with torch.no_grad():
                z = inputs[0].detach()
                out = output.detach()
                key = _act.name_of(module) or "?"
                family = _act.info(key).family
                saturated = dead = 0.0
                if family == "saturating":
                    d = _act.module_derivative(module, z)
                    saturated = float(
                        (d < SATURATION_THRESHOLD * _act.info(key).max_derivative).float().mean()
                    )
                if family == "rectifier" and z.ndim >= 1 and z.shape[0] > 0:
                    alive = (z > 0).reshape(z.shape[0], -1).any(dim=0)
                    dead = float(1.0 - alive.float().mean())
                record_name = self._record_name(name)
                self.activations[record_name] = ActivationRecord(
                    name=record_name,
                    activation=key,
                    mean=float(out.float().mean()),
                    std=float(out.float().std()) if out.numel() > 1 else 0.0,
                    saturated=saturated,
                    dead=dead,
                    values=_sample(out, self.max_values) if self.keep_values else None,
                )

        return hook

    def _weight_forward_hook(self, name: str):
        def hook(module: nn.Module, inputs: tuple, output) -> None:
            out = output[0] if isinstance(output, tuple) else output
            record_name = self._record_name(name)
            weight = _weights_of(module)
            norm = float(torch.sqrt(sum((w.detach().float() ** 2).sum() for w in weight)))
            record = WeightRecord(name=record_name, module=type(module).__name__, weight_norm=norm)
            self.weights[record_name] = record
            if isinstance(out, torch.Tensor) and out.requires_grad:

                def grad_hook(g: torch.Tensor, record: WeightRecord = record) -> None:
                    record.output_grad_norm = float(g.detach().float().norm())

                out.register_hook(grad_hook)

        return hook

    def __enter__(self) -> Probe:
        self.attach()
        return self

    def __exit__(self, *exc) -> None:
        self.collect_gradients()
        self.detach()

    def attach(self) -> Probe:
        """Register the hooks (done by ``with``)."""
        self.detach()
        for name, module in self.activation_modules:
            self._handles.append(module.register_forward_hook(self._activation_hook(name)))
        for name, module in self.weight_modules:
            self._handles.append(module.register_forward_hook(self._weight_forward_hook(name)))
        return self

    def detach(self) -> None:
        """Remove every hook; the records stay."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def reset(self) -> None:
        """Forget the records (call before a new forward pass you want to record on its own)."""
        self.activations.clear()
        self.weights.clear()
        self._calls.clear()

    # -- after backward ---------------------------------------------------------------------
    def collect_gradients(self) -> None:
        """Read the weight gradients left by ``backward()`` into the weight records."""
        for name, module in self.weight_modules:
            record = self.weights.get(name)
            grads = [w.grad for w in _weights_of(module) if w.grad is not None]
            if record is None or not grads:
                continue
            with torch.no_grad():
                record.grad_norm = float(torch.sqrt(sum((g.float() ** 2).sum() for g in grads)))
                record.grad_to_data = (
                    record.grad_norm / record.weight_norm
                    if record.weight_norm > 0
                    else float("inf")
                )
                if self.keep_values:
                    record.grad_values = _sample(
                        torch.cat([g.reshape(-1) for g in grads]), self.max_values
                    )

    def snapshot_weights(self) -> None:
        """Remember the current weights, before an optimizer step (see :meth:`update_ratios`)."""
        self._before = {
            name: torch.cat([w.detach().reshape(-1).clone() for w in _weights_of(m)])
            for name, m in self.weight_modules
        }

    def update_ratios(self) -> dict[str, float]:
        r"""After the step: :math:`\|W_{new} - W_{old}\| / \|W_{old}\|` per weight layer."""
        if not self._before:
            raise RuntimeError(
                "call snapshot_weights() before the optimizer step, then update_ratios() after it"
            )
        ratios = {}
        for name, module in self.weight_modules:
            new = torch.cat([w.detach().reshape(-1) for w in _weights_of(module)])
            old = self._before[name]
            denom = float(old.norm())
            ratio = float((new - old).norm()) / denom if denom > 0 else float("inf")
            ratios[name] = ratio
            if name in self.weights:
                self.weights[name].update_to_data = ratio
        return ratios

    # -- tables -----------------------------------------------------------------------------
    def activation_table(self) -> list[dict]:
        """One dict per recorded activation (forward order): name, activation, mean, std, saturated, dead."""
        return [
            {k: v for k, v in vars(r).items() if k != "values"} for r in self.activations.values()
        ]

    def weight_table(self) -> list[dict]:
        """One dict per weight layer (forward order): norms and ratios."""
        return [
            {k: v for k, v in vars(r).items() if k != "grad_values"} for r in self.weights.values()
        ]


def probe_model(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor | None = None,
    loss="cross_entropy",
    *,
    keep_values: bool = True,
) -> Probe:
    """One forward (and, with ``y``, backward) pass under a :class:`Probe`; gradients are cleared after.

    A convenience for plots: ``probe_model(net, X, y).activations`` gives each layer's statistics.
    The model's training/eval mode is left as it is.
    """
    from .losses import get_loss
    from .models import model_device

    device = model_device(model)
    X = X.to(device)
    model.zero_grad(set_to_none=True)
    with Probe(model, keep_values=keep_values) as probe:
        if y is None:
            with torch.no_grad():
                model(X)
        else:
            get_loss(loss)(model(X), y.to(device)).backward()
    model.zero_grad(set_to_none=True)
    return probe
