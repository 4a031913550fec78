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

How recording stays cheap (``vg.fit(..., probe_every=1)``, benchmarks/probe_overhead.py): for the
small layers of the course's models a tensor operation costs mostly its fixed overhead (a few
microseconds on a CPU), so what counts is how many operations run, not how big they are. The hooks
only keep references; the statistics are computed afterwards in batches and stay tensors on the
model's device until a record is read, when they cross to Python in one transfer.

* Every statistic of an activation follows from its **output** :math:`o = \phi(z)`: for the
  saturating functions :math:`\phi'` is a function of :math:`o` (:func:`derivative_from_output`),
  and for ReLU :math:`o > 0 \iff z > 0`. The outputs of ``nn.Sigmoid``, ``nn.Tanh`` and
  ``nn.ReLU`` are kept by reference (autograd keeps them anyway, and checks that nobody changes
  them in place); other outputs are copied, as a model may change them in place (dropout,
  ``x += skip``). Outputs of one function and shape are stacked and reduced together: a dozen
  operations for all layers, and, when passes are closed with :meth:`Probe.end_pass` and collected
  with :meth:`Probe.finished_stats` (what ``fit`` does), for many training steps at once.
* The gradient reaching a weight layer's output is kept with ``Tensor.retain_grad()`` (no Python
  call in the backward pass); their norms are batched like the activations'.
* The norms of all weights and all weight gradients are one ``torch._foreach_norm`` call after the
  backward pass (the weights' version counters show they are still those the forward pass used);
  the update:data ratio is one ``torch._foreach_copy_`` before the step, one ``_foreach_sub`` and
  one ``_foreach_norm`` after it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from . import activations as _act
from .probe_readout import ProbeReadout
from .probe_stats import (  # the records and statistics are public here too: vg.probes.X
    _OUTPUT_KEPT_BY_AUTOGRAD,
    ACTIVATION_STATS,  # noqa: F401
    SATURATION_THRESHOLD,  # noqa: F401
    WEIGHT_STATS,  # noqa: F401
    ActivationRecord,
    WeightRecord,
    _norms,
    _Pass,
    _sample,
    _weights_of,
    derivative_from_output,  # noqa: F401
)


@dataclass
class Probe(ProbeReadout):
    """Hooks that record per-layer statistics; use as a context manager around forward/backward.

    >>> with Probe(model) as probe:
    ...     loss_fn(model(X), y).backward()
    >>> probe.activation_table(), probe.weight_table()

    ``keep_values=True`` keeps up to ``max_values`` sampled outputs (and weight gradients) per
    layer for histograms. A module called several times in one forward pass (a shared ``nn.ReLU``)
    gets one record per call, named ``name#2``, ``name#3``...

    ``probe.activations`` / ``probe.weights`` (dicts of records) and the tables convert the
    statistics to Python numbers when read; :meth:`stat_tensors` gives them as tensors without
    leaving the device. To record many passes (a training run), close each with :meth:`end_pass`
    and collect them all with :meth:`finished_stats`: their statistics are computed together, a
    few operations for any number of passes. While ``probe.active`` is ``False`` the attached
    hooks record nothing (cheaper than detaching). The output gradient of a weight layer is read
    with ``Tensor.retain_grad()``, so those intermediate outputs keep a ``.grad`` after
    ``backward()``.
    """

    model: nn.Module
    keep_values: bool = False
    max_values: int = 20000
    active: bool = field(default=True, init=False)

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
        self._weight_names = [
            [
                n
                for n, p in m.named_parameters(recurse=False)
                if n.startswith("weight") and p.ndim >= 2
            ]
            for _, m in self.weight_modules
        ]
        self._layer_range = list(range(len(self.weight_modules)))
        self._handles: list = []
        self._before: list[torch.Tensor] | None = None  # the weights before a step
        self._before_owner: list[int] = []
        self._before_shapes: list[torch.Size] = []
        self._before_norms: torch.Tensor | None = None
        self._act_records: dict[str, ActivationRecord] = {}
        self._w_records: dict[str, WeightRecord] = {}
        self._finished: list[_Pass] = []
        self._pass_bytes = 0
        self._results: list[tuple[list[str], list[str], torch.Tensor, torch.Tensor]] = []
        self._warned: set[str] = set()
        self.reset()

    # -- hooks -----------------------------------------------------------------------------
    def _record_name(self, name: str) -> str:
        calls = self._pass.calls
        count = calls.get(name, 0) + 1
        calls[name] = count
        return name if count == 1 else f"{name}#{count}"

    def _activation_hook(self, name: str, module: nn.Module):
        key = _act.name_of(module) or "?"
        kind = key if _act.info(key).family in ("saturating", "rectifier") else ""
        kept = isinstance(module, _OUTPUT_KEPT_BY_AUTOGRAD)

        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            if not self.active or not isinstance(output, torch.Tensor) or not inputs:
                return
            rec = self._pass
            rec.act_names.append(self._record_name(name))
            rec.act_keys.append(key)
            rec.act_kinds.append(kind)
            if kept and output.requires_grad:  # autograd holds it too: a reference will do
                rec.act_outputs.append(output)
                rec.act_versions.append(output._version)
            else:  # a copy: the model may change it in place (dropout, x += skip) later
                rec.act_outputs.append(output.detach().clone())
                rec.act_versions.append(None)
            self._dirty = True

        return hook

    def _weight_forward_hook(self, name: str, index: int):
        def hook(module: nn.Module, inputs: tuple, output) -> None:
            if not self.active:
                return
            rec = self._pass
            record_name = self._record_name(name)
            rec.w_names.append(record_name)
            rec.w_layers.append(index)
            rec.w_first.append(record_name == name)
            if rec.forward_versions is None:  # norms are taken later, in one call, if unchanged
                rec.forward_versions = [w._version for w in self._current_weights()[0]]
            out = output[0] if isinstance(output, tuple) else output
            if isinstance(out, torch.Tensor) and out.requires_grad:
                out.retain_grad()  # autograd keeps d loss / d out in out.grad
                rec.w_outputs.append(out)
            else:
                rec.w_outputs.append(None)
            rec.w_grads.append(None)
            self._dirty = True

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
            self._handles.append(module.register_forward_hook(self._activation_hook(name, module)))
        for index, (name, module) in enumerate(self.weight_modules):
            hook = self._weight_forward_hook(name, index)
            self._handles.append(module.register_forward_hook(hook))
        return self

    def detach(self) -> None:
        """Remove every hook; the records stay."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def reset(self) -> None:
        """Forget the records (call before a new forward pass you want to record on its own)."""
        self._pass = _Pass()
        self._act_records.clear()
        self._w_records.clear()
        self._stats: tuple[torch.Tensor, torch.Tensor] | None = None
        self._dirty = False  # the statistics are out of date
        self._records_stale = False  # the records are

    # -- after backward ---------------------------------------------------------------------
    def _current_weights(self) -> tuple[list[torch.Tensor], list[int]]:
        """Every tracked weight now, and the index of the weight layer owning each."""
        weights, owner = [], []
        for index, (_, module) in enumerate(self.weight_modules):
            for n in self._weight_names[index]:
                p = module._parameters.get(n)
                if p is not None:
                    weights.append(p)
                    owner.append(index)
        return weights, owner

    def _per_layer(self, norms: torch.Tensor, owner: list[int]) -> torch.Tensor:
        """Per-layer norms from per-weight norms (``owner[i]``: the layer of weight ``i``); NaN if none.

        ``norms`` may have leading dimensions: ``(..., len(owner))`` -> ``(..., layers)``.
        """
        if owner == self._layer_range:  # one weight per layer, all present (Linear, Conv)
            return norms
        shape = (*norms.shape[:-1], len(self.weight_modules))
        index = torch.tensor(owner, dtype=torch.long, device=norms.device)
        total = torch.zeros(shape, dtype=norms.dtype, device=norms.device)
        total = total.index_add_(norms.ndim - 1, index, norms * norms).sqrt_()
        missing = sorted(set(self._layer_range) - set(owner))
        if missing:
            total[..., missing] = math.nan
        return total

    def _take_weight_norms(
        self, rec: _Pass, extra: list[torch.Tensor], current: tuple | None = None
    ) -> torch.Tensor:
        """Norms of every layer's weights now (for the pass's records) and of ``extra``, one call.

        A record's weight norm must be that of the weights its forward call used: a record whose
        weights changed in place since (an optimizer step before the statistics were read) gets
        NaN, with a warning. ``current`` is :meth:`_current_weights` if already at hand.
        """
        weights, owner = current or self._current_weights()
        norms = _norms([*weights, *extra])
        if rec.layer_norms is None and weights:
            rec.layer_norms = self._per_layer(norms[: len(weights)], owner)
            rec.norm_versions = [w._version for w in weights]
            then = rec.forward_versions
            if then is not None and then != rec.norm_versions:
                changed = (
                    {owner[i] for i, (a, b) in enumerate(zip(then, rec.norm_versions)) if a != b}
                    if len(then) == len(owner)
                    else set(owner)
                )
                rec.stale_norms = [j for j, i in enumerate(rec.w_layers) if i in changed]
            if rec.stale_norms:
                self._warn(
                    "the weights of "
                    + ", ".join(sorted({rec.w_names[j] for j in rec.stale_norms}))
                    + " changed between the forward pass and the reading of the statistics; "
                    "their weight norms and grad:data ratios are NaN (call collect_gradients() "
                    "before the optimizer step)"
                )
        return norms[len(weights) :]

    def collect_gradients(self) -> None:
        """Read the weight gradients left by ``backward()`` into the weight records."""
        rec = self._pass
        rec.harvest(final=False)
        weights, owner = self._current_weights()
        pairs = [(w.grad, i) for w, i in zip(weights, owner) if w.grad is not None]
        if not pairs:
            if rec.w_names and rec.layer_norms is None:
                self._take_weight_norms(rec, [], (weights, owner))
            return
        grads, layers = [g for g, _ in pairs], [i for _, i in pairs]
        norms = self._take_weight_norms(rec, grads, (weights, owner))
        rec.grad_norms = self._per_layer(norms, layers)
        rec.grads_complete = len(set(layers)) == len(self.weight_modules)
        if self.keep_values:
            for index in dict.fromkeys(layers):
                mine = [g.reshape(-1) for g, i in pairs if i == index]
                rec.grad_samples[index] = _sample(torch.cat(mine), self.max_values)
        self._dirty = True

    def snapshot_weights(self) -> None:
        """Remember the current weights, before an optimizer step (see :meth:`update_ratios`)."""
        weights, owner = self._current_weights()
        before = self._before
        shapes = [w.shape for w in weights]
        if (
            before is None
            or shapes != self._before_shapes
            or owner != self._before_owner
            or (weights and before[0].dtype != weights[0].dtype)  # the model was converted
            or (weights and before[0].device != weights[0].device)
        ):  # buffers kept from step to step, made anew when the weights change
            before = self._before = [torch.empty_like(w) for w in weights]
            self._before_shapes, self._before_owner = shapes, owner
        if weights:
            with torch.no_grad():
                torch._foreach_copy_(before, weights)
        # the norms taken for this pass are those of the snapshot if no weight changed since
        rec = self._pass
        same = rec.layer_norms is not None and rec.norm_versions == [w._version for w in weights]
        self._before_norms = rec.layer_norms if same else None

    def update_ratio_tensor(self) -> torch.Tensor:
        r"""After the step: :math:`\|W_{new} - W_{old}\| / \|W_{old}\|` per weight layer, as a tensor.

        One entry per ``weight_modules`` layer, on the model's device (no host sync); infinite
        where :math:`W_{old} = 0`. :meth:`update_ratios` is the same as a dict of floats.
        """
        if self._before is None:
            raise RuntimeError(
                "call snapshot_weights() before the optimizer step, then update_ratios() after it"
            )
        weights, owner = self._current_weights()
        if owner != self._before_owner or [w.shape for w in weights] != self._before_shapes:
            raise RuntimeError(
                "the model's weights changed shape since snapshot_weights(); take a new snapshot"
            )
        if not weights:
            return torch.zeros(len(self.weight_modules))
        with torch.no_grad():
            change = torch._foreach_sub(weights, self._before)
            size = self._before_norms
            if size is None:
                norms = _norms([*change, *self._before]).reshape(2, len(weights))  # one call
                change, size = self._per_layer(norms, owner)
            else:
                change = self._per_layer(_norms(change), owner)
            ratios = torch.where(size > 0, change / size, math.inf)
        self._pass.updates = ratios
        self._dirty = True
        return ratios

    def update_ratios(self) -> dict[str, float]:
        r"""After the step: :math:`\|W_{new} - W_{old}\| / \|W_{old}\|` per weight layer."""
        ratios = self.update_ratio_tensor().tolist()
        return {name: r for (name, _), r in zip(self.weight_modules, ratios)}


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
    from ._validate import check_module, check_tensor
    from .losses import get_loss
    from .models import model_device

    model = check_module("model", model)
    X = check_tensor("X", X)
    if y is not None:
        y = check_tensor("y", y)
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
