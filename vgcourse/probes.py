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
import warnings
from dataclasses import dataclass, field

import torch
from torch import nn

from . import activations as _act

SATURATION_THRESHOLD = 0.1

#: Rows of the activation tensor of :meth:`Probe.stat_tensors` (fields of :class:`ActivationRecord`).
ACTIVATION_STATS: tuple[str, ...] = ("mean", "std", "saturated", "dead")
#: Rows of the weight tensor of :meth:`Probe.stat_tensors` (fields of :class:`WeightRecord`).
WEIGHT_STATS: tuple[str, ...] = (
    "weight_norm",
    "grad_norm",
    "output_grad_norm",
    "grad_to_data",
    "update_to_data",
)


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


_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _norms(tensors: list[torch.Tensor]) -> torch.Tensor:
    """L2 norm of each tensor, as one float32 vector, from a single ``torch._foreach_norm`` call.

    Half-precision tensors are summed in float32 (their norm can overflow float16).
    """
    if not tensors:
        return torch.zeros(0)
    with torch.no_grad():
        try:  # float16/bfloat16 summed in float32; float32 as it is
            norms = torch._foreach_norm(tensors, 2, dtype=torch.float32)
        except RuntimeError:  # float64 cannot be narrowed: its own precision
            norms = torch._foreach_norm(tensors)
        return torch.stack(norms).float()


def _grouped(per_pass: list[list[torch.Tensor]], kinds: list[list[str]], reduce) -> torch.Tensor:
    """``reduce(kind, stacked)`` over tensors grouped by (kind, shape, dtype, device).

    ``per_pass[k][j]`` is tensor ``j`` of pass ``k`` and ``kinds[k][j]`` its kind. ``reduce`` gets
    the tensors of one group stacked along a new first dimension and returns ``(rows, group
    size)``; the result is ``(rows, all tensors)``, pass after pass. Stacking makes the cost a
    handful of operations per group, however many tensors and passes there are. When the passes
    are alike (same kinds and shapes, as the steps of a training run), the groups are found in
    the first pass only.
    """
    first, first_kinds = per_pass[0], kinds[0]
    shapes = [t.shape for t in first]
    alike = all(
        k == first_kinds and [t.shape for t in ts] == shapes
        for ts, k in zip(per_pass[1:], kinds[1:])
    )
    if not alike:  # one pass of many tensors: group them one by one
        flat = [t for ts in per_pass for t in ts]
        return _grouped([flat], [[k for ks in kinds for k in ks]], reduce)
    groups: dict[tuple, list[int]] = {}
    for j, (t, kind) in enumerate(zip(first, first_kinds)):
        groups.setdefault((kind, t.shape, t.dtype, t.device), []).append(j)
    passes, parts, order = len(per_pass), [], []
    for (kind, *_), members in groups.items():
        stacked = torch.stack([ts[j] for ts in per_pass for j in members])
        part = reduce(kind, stacked)
        parts.append(part.reshape(part.shape[0], passes, len(members)))
        order.extend(members)
    out = parts[0] if len(parts) == 1 else torch.cat([p.to(parts[0].device) for p in parts], 2)
    if order != sorted(order):
        out = out[:, :, torch.tensor(order).argsort().to(out.device)]
    return out.reshape(out.shape[0], -1)


def _norm_rows(kind: str, stacked: torch.Tensor) -> torch.Tensor:
    """(1, L) float32 L2 norms of L stacked tensors (a :func:`_grouped` reduction)."""
    rows = stacked.reshape(stacked.shape[0], -1)
    dtype = torch.float32 if rows.dtype in _LOW_PRECISION else None
    return torch.linalg.vector_norm(rows, dim=1, dtype=dtype).float().unsqueeze(0)


def derivative_from_output(name: str, out: torch.Tensor) -> torch.Tensor:
    r""":math:`\phi'(z)` of a saturating activation written with its output :math:`o = \phi(z)`.

    sigmoid: :math:`\sigma'(z) = o(1-o)`; tanh: :math:`1 - o^2`; softsign:
    :math:`1/(1+|z|)^2 = (1-|o|)^2` (as :math:`1-|o| = 1/(1+|z|)`). So "saturated",
    :math:`\phi'(z) < 10\%` of its maximum, is a threshold on the output: sigmoid
    :math:`|o - \tfrac12| > \sqrt{0.225} \approx 0.474`, tanh :math:`|o| > \sqrt{0.9} \approx 0.949`,
    softsign :math:`|o| > 1 - \sqrt{0.1} \approx 0.684`. For sigmoid and tanh these are the very
    expressions :func:`vgcourse.activations.derivative` evaluates on :math:`\sigma(z)` and
    :math:`\tanh z`, so the result is the same to the bit; for softsign it agrees to rounding.
    """
    if name == "sigmoid":
        return out * (1 - out)
    if name == "tanh":
        return 1 - out**2
    if name == "softsign":
        return (1 - out.abs()) ** 2
    raise ValueError(f"name must be one of 'sigmoid', 'tanh', 'softsign'; got {name!r}")


def _activation_rows(kind: str, stacked: torch.Tensor) -> torch.Tensor:
    """(4, L) statistics (rows :data:`ACTIVATION_STATS`) of L stacked outputs of one function.

    ``kind`` is the activation's name for the saturating and rectifier families, else ``""``.
    About a dozen tensor operations for all L outputs together, whatever L is.
    """
    L = stacked.shape[0]
    rows = stacked.reshape(L, -1)
    values = rows.float()
    n = values.shape[1]
    mean = values.mean(dim=1, keepdim=True)
    if n > 1:  # two passes (the mean, then the spread about it): exact when the mean dwarfs it
        std = torch.linalg.vector_norm(values - mean, dim=1).div_(math.sqrt(n - 1))
    else:  # one value has no spread
        std = torch.zeros(L, device=values.device)
    mean = mean.squeeze(1)
    saturated = dead = torch.zeros_like(mean)
    if kind in ("sigmoid", "tanh", "softsign"):
        limit = SATURATION_THRESHOLD * _act.info(kind).max_derivative
        saturated = (derivative_from_output(kind, rows) < limit).float().mean(dim=1)
    elif kind == "relu" and stacked.ndim >= 2 and stacked.shape[1] > 0:
        alive = (stacked > 0).reshape(L, stacked.shape[1], -1).any(dim=1)  # relu(z) > 0 iff z > 0
        dead = 1.0 - alive.float().mean(dim=1)
    return torch.stack([mean, std, saturated, dead])


#: Activation modules whose output autograd itself keeps for the backward pass (their derivative
#: is computed from it): changing it in place would make ``backward()`` fail, so a reference will do.
_OUTPUT_KEPT_BY_AUTOGRAD = (nn.Sigmoid, nn.Tanh, nn.ReLU)

#: Finished passes wait for their statistics (computed together) up to this many ...
PENDING_PASSES = 128
#: ... or while the tensors they refer to stay under this size.
PENDING_BYTES = 64 * 2**20


class _Pass:
    """What the hooks saw in one pass (since the last reset or :meth:`Probe.end_pass`)."""

    __slots__ = (
        "calls",
        "act_names",
        "act_keys",
        "act_kinds",
        "act_outputs",
        "act_versions",
        "w_names",
        "w_layers",
        "w_first",
        "forward_versions",
        "layer_norms",
        "norm_versions",
        "stale_norms",
        "w_outputs",
        "w_grads",
        "grad_norms",
        "grads_complete",
        "grad_samples",
        "updates",
    )

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.act_names: list[str] = []
        self.act_keys: list[str] = []  # the activation's name
        self.act_kinds: list[str] = []  # which statistics it has (see _activation_rows)
        self.act_outputs: list[torch.Tensor] = []
        self.act_versions: list[int | None] = []  # version of a referenced (not copied) output
        self.w_names: list[str] = []
        self.w_layers: list[int] = []  # index into Probe.weight_modules
        self.w_first: list[bool] = []  # the layer's first call (the record named like the layer)
        self.forward_versions: list[int] | None = None  # every weight's version at the forward
        self.layer_norms: torch.Tensor | None = None  # weight norm per layer ...
        self.norm_versions: list[int] = []  # ... taken at these versions
        self.stale_norms: list[int] = []  # records whose weights changed before norms were taken
        self.w_outputs: list[torch.Tensor | None] = []  # outputs retaining their gradient
        self.w_grads: list[torch.Tensor | None] = []
        self.grad_norms: torch.Tensor | None = None  # per layer, from collect_gradients()
        self.grads_complete = False  # every layer had a gradient
        self.grad_samples: dict[int, torch.Tensor] = {}
        self.updates: torch.Tensor | None = None  # per layer, from update_ratio_tensor()

    def harvest(self, final: bool) -> None:
        """Move the retained output gradients in and let go of the outputs (all, if ``final``)."""
        for k, out in enumerate(self.w_outputs):
            if out is not None and (final or out.grad is not None):
                self.w_grads[k] = out.grad
                self.w_outputs[k] = None

    def nbytes(self) -> int:
        tensors = [*self.act_outputs, *(g for g in self.w_grads if g is not None)]
        return sum(t.numel() * t.element_size() for t in tensors)


@dataclass
class Probe:
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

    # -- many passes ------------------------------------------------------------------------
    def end_pass(self) -> None:
        """Close the current pass and start a new one; its statistics wait for :meth:`finished_stats`.

        Nothing is computed here: the pass keeps references to what it saw until its statistics
        are computed together with the other finished passes' (at the latest once they refer to
        :data:`PENDING_BYTES` of tensors). The records (``activations``, ``weights``) start afresh.
        """
        rec = self._pass
        rec.harvest(final=True)
        if not self._finished:  # passes of a run are alike: measure the first one
            self._pass_bytes = rec.nbytes()
        self._finished.append(rec)
        self.reset()
        count = len(self._finished)
        if count >= PENDING_PASSES or count * self._pass_bytes > PENDING_BYTES:
            self._compute_finished()

    def _compute_finished(self) -> None:
        passes, self._finished = self._finished, []
        start = 0
        for k in range(1, len(passes) + 1):  # runs of passes with the same records
            first = passes[start]
            if (
                k == len(passes)
                or passes[k].act_names != first.act_names
                or passes[k].w_names != first.w_names
            ):
                run = passes[start:k]
                self._results.append((first.act_names, first.w_names, *self._compute(run)))
                start = k

    def finished_stats(self) -> list[tuple[list[str], list[str], torch.Tensor, torch.Tensor]]:
        """The statistics of the passes closed by :meth:`end_pass`, in order; the list is emptied.

        One entry per run of consecutive passes with the same records: ``(activation names,
        weight names, activation stats, weight stats)`` with tensors of shape ``(passes, 4,
        activations)`` and ``(passes, 5, weights)``, each pass as :meth:`stat_tensors` gives it.
        """
        self._compute_finished()
        results, self._results = self._results, []
        return results

    # -- statistics as tensors ----------------------------------------------------------------
    @property
    def activation_names(self) -> list[str]:
        """Names of the activation records so far, in forward order (columns of :meth:`stat_tensors`)."""
        return list(self._pass.act_names)

    @property
    def weight_names(self) -> list[str]:
        """Names of the weight records so far, in forward order (columns of :meth:`stat_tensors`)."""
        return list(self._pass.w_names)

    def stat_tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All statistics since the last :meth:`reset`, as two float32 tensors on the model's device.

        ``(activations, weights)``: ``activations[i, j]`` is statistic ``ACTIVATION_STATS[i]`` of
        the record ``activation_names[j]``; ``weights[i, j]`` is ``WEIGHT_STATS[i]`` of the record
        ``weight_names[j]``. The same numbers as the records, without a host sync.
        """
        if self._stats is None or self._dirty:
            self._pass.harvest(final=False)
            acts, weights = self._compute([self._pass])
            self._stats = (acts[0], weights[0])
            self._dirty = False
            self._records_stale = True
        return self._stats

    def _compute(self, passes: list[_Pass]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(passes, 4, activations)`` and ``(passes, 5, weights)`` statistics of passes with the
        same records, each kind computed for all of them at once."""
        with torch.no_grad():
            return self._activation_stats(passes), self._weight_stats(passes)

    def _activation_stats(self, passes: list[_Pass]) -> torch.Tensor:
        count, size = len(passes), len(passes[0].act_names)
        if not size:
            return torch.zeros(count, len(ACTIVATION_STATS), 0)
        stats = _grouped(
            [rec.act_outputs for rec in passes], [rec.act_kinds for rec in passes], _activation_rows
        )
        outputs = [t for rec in passes for t in rec.act_outputs]
        versions = [v for rec in passes for v in rec.act_versions]
        changed = [i for i, v in enumerate(versions) if v is not None and outputs[i]._version != v]
        if changed:  # a referenced output was changed in place before we read it
            stats[:, changed] = math.nan
            names = [n for rec in passes for n in rec.act_names]
            self._warn(
                f"the output of {', '.join(sorted({names[i] for i in changed}))} was changed in "
                "place after the forward pass, before its statistics were read; they are NaN"
            )
        return stats.reshape(len(ACTIVATION_STATS), count, size).transpose(0, 1)

    def _warn(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            warnings.warn(f"Probe: {message}", RuntimeWarning, stacklevel=4)

    def _output_grad_norms(self, passes: list[_Pass]) -> torch.Tensor:
        """``(passes, weight records)`` norms of the output gradients; NaN where there is none."""
        count, size = len(passes), len(passes[0].w_grads)
        grads = [g for rec in passes for g in rec.w_grads]
        present = [i for i, g in enumerate(grads) if g is not None]
        if len(present) == len(grads):
            kinds = [[""] * size] * count
            norms = _grouped([rec.w_grads for rec in passes], kinds, _norm_rows)[0]
        else:
            norms = torch.full((len(grads),), math.nan)
            if present:
                found = [grads[i] for i in present]
                found = _grouped([found], [[""] * len(found)], _norm_rows)[0]
                norms = norms.to(found.device)
                norms[present] = found
        return norms.reshape(count, size)

    def _weight_stats(self, passes: list[_Pass]) -> torch.Tensor:
        count, size = len(passes), len(passes[0].w_names)
        if not size:
            return torch.zeros(count, len(WEIGHT_STATS), 0)
        output_grad = self._output_grad_norms(passes)
        simple = all(
            rec.w_layers == self._layer_range
            and not rec.stale_norms
            and rec.grads_complete
            and rec.updates is not None
            for rec in passes
        )
        if not simple:
            return torch.stack(
                [self._one_pass_weight_stats(rec, output_grad[k]) for k, rec in enumerate(passes)]
            )
        # the common case, for all passes at once: each layer called once, in order, with a
        # gradient for every layer and an update ratio (the training step of an MLP or a CNN)
        weight_norm = torch.stack([rec.layer_norms for rec in passes])
        grad_norm = torch.stack([rec.grad_norms for rec in passes])
        ratio = torch.where(weight_norm > 0, grad_norm / weight_norm, math.inf)
        update = torch.stack([rec.updates for rec in passes])
        return torch.stack([weight_norm, grad_norm, output_grad.to(ratio.device), ratio, update], 1)

    def _one_pass_weight_stats(self, rec: _Pass, output_grad: torch.Tensor) -> torch.Tensor:
        """(5, records) weight statistics of one pass, any calling pattern."""
        if rec.layer_norms is None:
            self._take_weight_norms(rec, [])
        index = torch.tensor(rec.w_layers, device=rec.layer_norms.device)
        weight_norm = rec.layer_norms[index]
        if rec.stale_norms:
            weight_norm[rec.stale_norms] = math.nan
        nan = torch.full_like(weight_norm, math.nan)
        first = torch.tensor(rec.w_first, device=weight_norm.device)

        def per_record(per_layer: torch.Tensor | None) -> torch.Tensor:
            # a layer's statistic goes to its first call of the pass (the record `name`)
            if per_layer is None:
                return nan
            return torch.where(first, per_layer.to(nan.device)[index], math.nan)

        grad_norm = per_record(rec.grad_norms)
        ratio = torch.where(weight_norm > 0, grad_norm / weight_norm, math.inf)
        ratio = torch.where(grad_norm.isnan() | weight_norm.isnan(), math.nan, ratio)
        output_grad = output_grad.to(nan.device)
        return torch.stack([weight_norm, grad_norm, output_grad, ratio, per_record(rec.updates)])

    # -- records ----------------------------------------------------------------------------
    def _refresh(self) -> None:
        """Bring the records up to date with the tensors (one host transfer)."""
        stats = self.stat_tensors()
        if not self._records_stale:
            return
        self._records_stale = False
        rec = self._pass
        acts, weights = (t.tolist() for t in stats)
        for j, name in enumerate(rec.act_names):
            if name not in self._act_records:
                mean, std, saturated, dead = (row[j] for row in acts)
                values = _sample(rec.act_outputs[j], self.max_values) if self.keep_values else None
                self._act_records[name] = ActivationRecord(
                    name, rec.act_keys[j], mean, std, saturated, dead, values
                )
        for j, name in enumerate(rec.w_names):
            index = rec.w_layers[j]
            record = self._w_records.get(name)
            if record is None:
                module = type(self.weight_modules[index][1]).__name__
                record = self._w_records[name] = WeightRecord(name, module, math.nan)
            (
                record.weight_norm,
                record.grad_norm,
                record.output_grad_norm,
                record.grad_to_data,
                record.update_to_data,
            ) = (row[j] for row in weights)
            if self.keep_values and rec.w_first[j] and index in rec.grad_samples:
                record.grad_values = rec.grad_samples[index]

    @property
    def activations(self) -> dict[str, ActivationRecord]:
        """One :class:`ActivationRecord` per recorded activation call, in forward order."""
        self._refresh()
        return self._act_records

    @property
    def weights(self) -> dict[str, WeightRecord]:
        """One :class:`WeightRecord` per recorded weight-layer call, in forward order."""
        self._refresh()
        return self._w_records

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
