r"""Per-layer statistics of a :class:`vgcourse.probes.Probe`: the records (:class:`ActivationRecord`,
:class:`WeightRecord`), what each row of the statistic tensors means, and the batched reductions
that turn the outputs and gradients of many layers and passes into them: mean, standard deviation,
saturated fraction (activation derivative below :data:`SATURATION_THRESHOLD` of its maximum), dead
fraction (units with zero derivative on every sample), weight and gradient norms, grad:data ratio.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def _activation_rows(kind: str, stacked: torch.Tensor, moments: bool = True) -> torch.Tensor:
    """(4, L) statistics (rows :data:`ACTIVATION_STATS`) of L stacked outputs of one function.

    ``kind`` is the activation's name for the saturating and rectifier families, else ``""``.
    About a dozen tensor operations for all L outputs together, whatever L is. With
    ``moments=False`` the mean and std rows are left at zero (a training monitor's cheaper pass).
    """
    L = stacked.shape[0]
    rows = stacked.reshape(L, -1)
    values = rows.float() if moments else rows
    n = values.shape[1]
    if not moments:
        mean = std = torch.zeros(L, device=values.device)
    elif n > 1:  # torch.std_mean: one call, accurate also when the mean dwarfs the spread
        std, mean = torch.std_mean(values, dim=1)
    else:  # one value has no spread
        mean, std = values.mean(dim=1), torch.zeros(L, device=values.device)
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
