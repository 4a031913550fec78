r"""The passes behind :func:`vgcourse.diagnose`: what is measured on a practitioner's model, and how.

Every **parameter that receives a gradient** is measured, whatever module holds it: ``nn.Linear``
and ``nn.Conv*``, a raw ``nn.Parameter`` used in a custom ``forward``, a weight under
``torch.nn.utils.parametrizations`` (its ``original``), an ``nn.MultiheadAttention``'s
``in_proj_weight``. Parameters are grouped by the module that owns them (a *layer*); a layer's
gradient size is taken over its **weight matrices** (parameters of 2+ dimensions: the ones whose
size the initialization sets, Glorot & Bengio 2010), as the RMS gradient per weight
:math:`\|\nabla W\| / \sqrt{|W|}` and the grad:data ratio :math:`\|\nabla W\| / \|W\|`. For an
``nn.Embedding`` only the rows the batch used count (the others get no gradient by design).

Left out of the checks, and listed in the report: **frozen** parameters (``requires_grad=False``),
**unused** ones (they require a gradient but got none: a branch the forward pass did not take),
and layers whose gradient is **exactly zero** (a zero-initialised residual branch, Goyal et al.
2017 / Fixup, ReZero: not vanishing, but nothing flows until the gate opens).

The layers are ordered as the forward pass **calls** them (forward pre-hooks), not as they were
registered; a layer whose output tensor goes straight (or through dropout) into a normalization
layer is marked *normalized*: its output is rescaled, so its gradient scales as :math:`1/\|W\|` and a large grad:data ratio is
harmless (weight-scale invariance, Ioffe & Szegedy 2015 sec. 3.3; van Laarhoven 2017).

**Activations**: the modules :func:`vgcourse.activations.name_of` knows, plus any parameter-free
elementwise module it does not (a library's ``NewGELUActivation``, ``nn.Hardswish``...), which is
*recognised by behaviour*: its output on the batch's own input is compared with the known
functions (:mod:`vgcourse.diagnosis_activations`). The statistics (mean, std, saturated and dead fractions) are those of
:mod:`vgcourse.probe_stats`.

**Through time**: for a recurrent model (an ``nn.RNN``/``nn.LSTM``/``nn.GRU`` inside), the gradient
reaching the first recurrent layer's *input*, per time step (the embedding's output for token
models), with the time dimension taken from the layer's ``batch_first``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .diagnosis_activations import NOT_ACTIVATIONS, STATS_OF, known_kind, recognise
from .probe_stats import _OUTPUT_KEPT_BY_AUTOGRAD, _activation_rows, _norms

NORMALIZATIONS: tuple[type, ...] = (
    nn.modules.batchnorm._NormBase,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
)


@dataclass
class PassRecords:
    """What the hooks of one pass saw."""

    order: dict[str, None] = field(default_factory=dict)  # layers, first call first
    outputs: dict[int, tuple[str, torch.Tensor]] = field(default_factory=dict)  # id -> layer
    normalized: set[str] = field(default_factory=set)  # layers whose output is normalized
    act_names: list[str] = field(default_factory=list)
    act_types: list[str] = field(default_factory=list)
    act_kinds: list[str] = field(default_factory=list)
    act_outputs: list[torch.Tensor] = field(default_factory=list)
    rnn_input: torch.Tensor | None = None
    rnn_time_dim: int = 1

    def release_outputs(self) -> None:
        """Drop the references to the pass's outputs (once their statistics are taken): held
        through ``backward()`` they would keep every activation alive to its end, where autograd
        frees each as soon as it is used (about 25% slower backward on a CPU CNN)."""
        self.outputs.clear()
        self.act_outputs.clear()


def _standard(module: nn.Module) -> bool:
    """A PyTorch layer (``nn.Linear``, ``nn.LSTM``...): its weights are one layer together."""
    return type(module).__module__.startswith("torch.nn.") and not isinstance(
        module, (nn.ParameterList, nn.ParameterDict)
    )


def parameter_owners(model: nn.Module) -> dict[str, list[tuple[str, nn.Parameter]]]:
    """``{layer name: [(parameter label, parameter)]}``: the parameters, grouped into layers.

    The parameters of a PyTorch layer (``nn.Linear``, ``nn.LSTM``, ``nn.MultiheadAttention``...)
    form one layer named after the module (``"model"`` for the root). A parametrized weight
    (``lin.parametrizations.weight.original``) belongs to ``lin`` as ``weight``. A parameter of any
    other module (a raw ``nn.Parameter`` of a custom module, an entry of an ``nn.ParameterList``)
    is a layer of its own, named after the parameter. Tied parameters appear once
    (``named_parameters`` removes duplicates).
    """
    owners: dict[str, list[tuple[str, nn.Parameter]]] = {}
    modules = dict(model.named_modules())
    for name, p in model.named_parameters():
        if ".parametrizations." in f".{name}":
            owner, _, rest = f".{name}".partition(".parametrizations.")
            owner, label = owner[1:], rest.split(".")[0]
        else:
            owner, _, label = name.rpartition(".")
        if not _standard(modules[owner]):
            owner, label = name, "weight"
        owners.setdefault(owner or "model", []).append((label, p))
    return owners


def _owner_modules(model: nn.Module, owners: dict) -> dict[str, nn.Module]:
    """The module holding each layer's parameters (the one whose ``forward`` uses them)."""
    modules = dict(model.named_modules())
    found = {}
    for name in owners:
        holder = name if name in modules else name.rpartition(".")[0]  # a raw parameter's module
        found[name] = model if name == "model" else modules[holder]
    return found


def _is_leaf(module: nn.Module) -> bool:
    return next(module.children(), None) is None


class Hooks:
    """The hooks of one diagnosis: call order, activation outputs, the recurrent input."""

    def __init__(self, model: nn.Module, owners: dict[str, list]) -> None:
        self.model = model
        self.records = PassRecords()
        self.behaviour: dict[str, str | None] = {}  # unrecognised module -> what it behaves like
        self.unrecognised: dict[str, str] = {}  # module name -> type name
        self._handles: list = []
        self._rnn_done = False
        module_names = {name for name, _ in model.named_modules()}
        for name, module in _owner_modules(model, owners).items():
            self._handles.append(module.register_forward_pre_hook(self._order_hook(name)))
            if name == "model" or name in module_names:
                self._handles.append(module.register_forward_hook(self._output_hook(name)))
        for module in model.modules():
            if isinstance(module, NORMALIZATIONS):
                self._handles.append(module.register_forward_pre_hook(self._norm_hook))
            elif isinstance(module, (nn.Dropout, nn.Identity)):
                self._handles.append(module.register_forward_hook(self._pass_through_hook))
        for name, module in model.named_modules():
            if not _is_leaf(module):
                continue
            kind = known_kind(module)
            if kind not in (None, "identity"):
                hook = self._activation_hook(name or "model", kind)
                self._handles.append(module.register_forward_hook(hook))
            elif (
                kind is None
                and not isinstance(module, NOT_ACTIVATIONS)
                and not any(True for _ in module.parameters(recurse=False))
            ):
                self.unrecognised[name or "model"] = type(module).__name__
                hook = self._candidate_hook(name or "model")
                self._handles.append(module.register_forward_hook(hook))
        rnn = next((m for m in model.modules() if isinstance(m, nn.RNNBase)), None)
        if rnn is not None:
            self._handles.append(rnn.register_forward_pre_hook(self._rnn_hook(rnn)))

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def new_pass(self) -> PassRecords:
        self.records, self._rnn_done = PassRecords(), False
        return self.records

    def _order_hook(self, name: str):
        def hook(module: nn.Module, args: tuple) -> None:
            self.records.order.setdefault(name)

        return hook

    def _output_hook(self, name: str):
        def hook(module: nn.Module, args: tuple, output: Any) -> None:
            if isinstance(output, torch.Tensor):  # kept alive, so its id stays its own
                self.records.outputs[id(output)] = (name, output)

        return hook

    def _pass_through_hook(self, module: nn.Module, args: tuple, output: Any) -> None:
        source = self.records.outputs.get(id(args[0])) if args else None
        if source is not None and isinstance(output, torch.Tensor):
            self.records.outputs[id(output)] = (source[0], output)

    def _norm_hook(self, module: nn.Module, args: tuple) -> None:
        source = self.records.outputs.get(id(args[0])) if args else None
        if source is not None:  # the layer's very output tensor is normalized
            self.records.normalized.add(source[0])

    def _keep(self, name: str, kind: str, type_name: str, module: nn.Module, output: Any) -> None:
        if not isinstance(output, torch.Tensor) or not output.is_floating_point():
            return
        rec = self.records
        rec.act_names.append(
            name if name not in rec.act_names else f"{name}#{rec.act_names.count(name) + 1}"
        )
        rec.act_types.append(type_name)
        rec.act_kinds.append(STATS_OF.get(kind, ""))
        kept = isinstance(module, _OUTPUT_KEPT_BY_AUTOGRAD) and output.requires_grad
        rec.act_outputs.append(output.detach() if kept else output.detach().clone())

    def _activation_hook(self, name: str, kind: str):
        def hook(module: nn.Module, args: tuple, output: Any) -> None:
            self._keep(name, kind, kind, module, output)

        return hook

    def _candidate_hook(self, name: str):
        def hook(module: nn.Module, args: tuple, output: Any) -> None:
            if (
                not args
                or not isinstance(args[0], torch.Tensor)
                or not isinstance(output, torch.Tensor)
            ):
                return
            if args[0].shape != output.shape or not output.is_floating_point():
                return
            if name not in self.behaviour:
                self.behaviour[name] = recognise(args[0], output)
            like = self.behaviour[name]
            if like is not None:
                self._keep(
                    name, like, f"{type(module).__name__} (behaves like {like})", module, output
                )

        return hook

    def _rnn_hook(self, rnn: nn.RNNBase):
        def hook(module: nn.Module, args: tuple):
            if self._rnn_done or not args or not isinstance(args[0], torch.Tensor):
                return None
            self._rnn_done = True
            inp = args[0]
            if not inp.is_floating_point():
                return None
            self.records.rnn_time_dim = 1 if rnn.batch_first else 0
            if not inp.requires_grad:  # the data itself: a leaf of its own that keeps its gradient
                inp = inp.detach().clone().requires_grad_(True)
                self.records.rnn_input = inp
                return (inp, *args[1:])
            inp.retain_grad()
            self.records.rnn_input = inp
            return None

        return hook


def time_gradient(records: PassRecords) -> torch.Tensor | None:
    """``||dL/dx_t||`` per time step of the first recurrent layer's input, after ``backward()``."""
    inp = records.rnn_input
    if inp is None or inp.grad is None or inp.ndim < 2:
        return None
    t = records.rnn_time_dim if inp.ndim == 3 else 0
    dims = [d for d in range(inp.ndim) if d != t]
    return inp.grad.detach().float().norm(dim=dims).cpu()


def activation_stats(records: PassRecords) -> list[dict]:
    """Mean, std, saturated and dead fraction of each recorded activation output."""
    rows = []
    for name, type_name, kind, out in zip(
        records.act_names, records.act_types, records.act_kinds, records.act_outputs
    ):
        mean, std, saturated, dead = _activation_rows(kind, out.unsqueeze(0))[:, 0].tolist()
        rows.append(
            {
                "name": name,
                "activation": type_name,
                "mean": mean,
                "std": std,
                "saturated": saturated,
                "dead": dead,
            }
        )
    return rows


def _matrix_size(module: nn.Module, label: str, p: torch.Tensor, grad: torch.Tensor) -> int:
    """How many weights the gradient is spread over: an embedding's used rows only."""
    if isinstance(module, nn.Embedding) and label == "weight" and grad.ndim == 2:
        return int((grad != 0).any(dim=1).sum()) * grad.shape[1]
    return p.numel()


def gradient_stats(
    model: nn.Module, owners: dict[str, list]
) -> tuple[list[dict], dict[str, list[str]]]:
    """Per-layer gradient statistics after ``backward()``, and the parameters left out, by reason.

    Returns ``(layers, left_out)``: ``layers`` in the owners' order, for owners with a weight
    matrix that got a gradient; ``left_out`` = ``{"frozen": [...], "unused": [...],
    "non_finite": [...]}`` (parameter names; ``non_finite`` are layers).
    """
    modules = _owner_modules(model, owners)
    frozen, unused, bad = [], [], []
    layers = []
    for owner, params in owners.items():
        module = modules[owner]
        matrices, vectors = [], []
        for label, p in params:
            full = label if owner == "model" else f"{owner}.{label}"
            if not p.requires_grad:
                frozen.append(full)
            elif p.grad is None:
                unused.append(full)
            else:
                grad = p.grad.to_dense() if p.grad.is_sparse else p.grad
                (matrices if p.ndim >= 2 else vectors).append((label, p, grad))
        if not matrices and not vectors:
            continue
        everything = [g for _, _, g in matrices + vectors]
        norms = _norms([*everything, *(p.detach() for _, p, _ in matrices)])
        if not bool(torch.isfinite(norms[: len(everything)]).all()):
            bad.append(owner)
        if not matrices:
            continue
        k = len(everything)
        g_m = norms[: len(matrices)]
        w_m = norms[k:]
        grad_norm = float(g_m.pow(2).sum().sqrt())
        weight_norm = float(w_m.pow(2).sum().sqrt())
        size = sum(_matrix_size(module, label, p, g) for label, p, g in matrices)
        layers.append(
            {
                "name": owner,
                "module": type(module).__name__,
                "params": size,
                "grad_norm": grad_norm,
                "grad_rms": grad_norm / math.sqrt(size) if size else 0.0,
                "grad_to_data": grad_norm / weight_norm if weight_norm > 0 else math.inf,
                "weight_norm": weight_norm,
                "update_to_data": math.nan,
            }
        )
    return layers, {"frozen": frozen, "unused": unused, "non_finite": bad}


def order_layers(layers: list[dict], records: PassRecords) -> list[dict]:
    """Layers in call order; each marked ``normalized`` when a normalization layer takes its output."""
    rank = {name: float(i) for i, name in enumerate(records.order)}

    def called(name: str) -> float:  # a module never called (MultiheadAttention's out_proj,
        parts = name.split(".")  # used through its weight) sits just after its caller
        for k in range(len(parts), 0, -1):
            prefix = ".".join(parts[:k])
            if prefix in rank:
                return rank[prefix] + (0.5 if k < len(parts) else 0.0)
        return float(len(rank))

    layers = sorted(layers, key=lambda r: called(r["name"]))
    for row in layers:
        row["normalized"] = row["name"] in records.normalized
        row["zero_grad"] = row["grad_norm"] == 0.0
    return layers
