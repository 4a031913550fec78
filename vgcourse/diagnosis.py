r"""A gradient-flow check-up for any PyTorch model: ``report = vg.diagnose(model, X, y)``.

The model runs one forward/backward pass on the whole batch (or ``passes`` passes on parts of it)
with hooks that record what :mod:`vgcourse.diagnosis_measure` describes: the gradient of every
parameter that gets one, grouped by layer in call order, the activations' statistics, and for
recurrent models the gradient per time step. Optionally the model is trained a few steps (on a
backup of its weights, restored afterwards) to measure how much each step changes the weights.
The report lists the measurements and names the problems found, each with the evidence and the
fix.

What it accepts (tensors, ``(X, y)`` batches, dicts of keyword arguments, tuple/dict/``ModelOutput``
outputs, a loss the model computes) is in :mod:`vgcourse.diagnosis_inputs`; the thresholds and
the rules that turn measurements into findings are in :mod:`vgcourse.diagnosis_rules`; the report
(text, HTML, ``to_dict()``) is in :mod:`vgcourse.diagnosis_report`.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ._validate import check_int, check_module, check_positive
from .diagnosis_inputs import Batch, make_batch, model_loss, output_tensor
from .diagnosis_measure import (
    NORMALIZATIONS,
    Hooks,
    activation_stats,
    gradient_stats,
    order_layers,
    parameter_owners,
    time_gradient,
)
from .diagnosis_report import DiagnosisReport
from .diagnosis_rules import _findings
from .losses import LossSpec, get_loss
from .model_state import preserved
from .models import model_device
from .probe_stats import _norms
from .train import make_optimizer

_CROSS_ENTROPY = get_loss("cross_entropy")

#: ``passes`` > 1 splits the batch; each part must keep at least this many samples, or batch
#: statistics (BatchNorm) and dead-unit counts (a unit is dead if it never fires on the batch)
#: would be measured on a handful of samples and give false alarms.
MIN_SAMPLES_PER_PASS = 16


def _forward(model: nn.Module, part: Batch, whole: Batch) -> Any:
    """The model's output on one part; a failure names the caller's shapes and chains the error."""
    try:
        return model(part.X, **part.kwargs) if part.X is not None else model(**part.kwargs)
    except Exception as err:  # noqa: BLE001 (any error of the user's model, chained)
        raise ValueError(
            f"your batch ({whole.shapes()}) does not fit the model: {type(err).__name__}: {err}"
        ) from err


def _loss_value(loss_fn, out: Any, part: Batch, whole: Batch, output_fn) -> torch.Tensor:
    """The loss of one pass: ``loss(output, y)``, or the model's own ``out.loss`` when no ``y``."""
    if part.y is None:
        own = model_loss(out)
        if own is None:
            raise TypeError(
                "y is required: the diagnosis needs a loss to back-propagate (or a model that returns "
                "its own loss, like a Hugging Face model given labels=)"
            )
        return own
    logits = output_tensor(out, output_fn)
    if loss_fn is _CROSS_ENTROPY and logits.ndim >= 2:
        whole.classes = int(logits.shape[-1])
    try:
        value = loss_fn(logits, part.y)
    except (RuntimeError, ValueError, IndexError) as err:
        raise ValueError(
            f"the loss cannot compare the model's output with y (your {whole.shapes()}; the "
            f"output has shape {tuple(logits.shape)}): {err}"
        ) from err
    if not isinstance(value, torch.Tensor) or value.ndim != 0:
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(f"loss must return a scalar tensor, got {shape}")
    return value


def _average(rows_per_pass: list[list[dict]]) -> list[dict]:
    """Rows of the same name averaged over passes (numbers only; the first pass's order)."""
    if len(rows_per_pass) == 1:
        return rows_per_pass[0]
    by_name: dict[str, list[dict]] = {}
    for rows in rows_per_pass:
        for row in rows:
            by_name.setdefault(row["name"], []).append(row)
    out = []
    for row in rows_per_pass[0]:
        group = by_name[row["name"]]
        merged = dict(row)
        for key, value in row.items():
            if isinstance(value, float):
                merged[key] = float(np.mean([r[key] for r in group]))
        out.append(merged)
    return out


def diagnose(
    model: nn.Module,
    X: torch.Tensor | tuple | list | Mapping,
    y: torch.Tensor | None = None,
    loss: LossSpec = "cross_entropy",
    *,
    passes: int = 1,
    train_steps: int = 0,
    lr: float = 1e-3,
    optimizer: str = "adam",
    clip_norm: float | None = None,
    forward_kwargs: Mapping[str, Any] | None = None,
    batch_dim: int = 0,
    output_fn: Callable[[Any], torch.Tensor] | None = None,
    trained: bool | None = None,
) -> DiagnosisReport:
    """Diagnose the gradient flow of ``model`` on a batch and return a :class:`DiagnosisReport`.

    ``X, y`` is a batch (or ``X=(X, y)``, a DataLoader batch; or ``X`` a dict of forward keyword
    arguments, ``model(**X)``); ``forward_kwargs`` are more keyword arguments (an attention mask),
    split with ``X`` when ``passes`` > 1; ``batch_dim`` is the dimension of ``X`` that holds the
    samples. ``loss`` is a name (``"cross_entropy"``, ``"bce"``, ``"mse"``) or any
    ``loss(output, y) -> scalar``; with ``y=None`` the loss the model returns (``out.loss``) is
    used. ``output_fn(out) -> tensor`` picks the logits from an output the defaults do not handle
    (tuples, dicts and ``ModelOutput`` s are handled: :mod:`vgcourse.diagnosis_inputs`).

    The whole batch is one pass (``passes=1``): splitting it would measure BatchNorm and dead units
    on a few samples; ``passes`` > 1 averages over parts of at least
    :data:`MIN_SAMPLES_PER_PASS` samples. With ``train_steps`` > 0 the model is trained that many
    steps (``optimizer``, ``lr``, gradient norm clipped to ``clip_norm``) to measure the update:data
    ratios, and its weights are put back. ``trained`` says whether the model is trained (the
    advice on its initialization differs); ``None`` means unknown.

    The model is left exactly as it was, after a success or an exception
    (:func:`vgcourse.model_state.preserved`): parameters, buffers (BatchNorm running statistics),
    every module's train/eval flag, ``requires_grad``, the ``.grad`` you hold, hooks, and the random
    state of torch, NumPy and Python. The passes run as a training step would: a model in training
    mode keeps the modes of its modules (a frozen backbone's eval-mode BatchNorm stays in eval mode);
    a model wholly in eval mode is switched to training mode for the passes (dropout on, BatchNorm
    on batch statistics). ``report.mode`` says which.
    """
    check_module("model", model)
    batch = make_batch(X, y, forward_kwargs, batch_dim)
    passes = check_int("passes", passes, minimum=1)
    if passes > 1 and batch.size // passes < MIN_SAMPLES_PER_PASS:
        raise ValueError(
            f"passes={passes} would split your batch of {batch.size} samples into parts of "
            f"{batch.size // passes}; each part needs at least {MIN_SAMPLES_PER_PASS} (batch "
            "statistics and dead units are measured per part): use passes=1 or a larger batch"
        )
    train_steps = check_int("train_steps", train_steps, minimum=0)
    lr = check_positive("lr", lr)
    if clip_norm is not None:
        clip_norm = check_positive("clip_norm", clip_norm)
    if trained is not None and not isinstance(trained, bool):
        raise TypeError(f"trained must be True, False or None, got {trained!r}")
    owners = parameter_owners(model)
    if not any(p.requires_grad for params in owners.values() for _, p in params):
        raise ValueError(
            "every parameter of the model is frozen (requires_grad=False): no gradient to diagnose; "
            "unfreeze the part you train (p.requires_grad_(True))"
        )
    loss_fn = get_loss(loss)
    device = model_device(model)
    batch = batch.to(device)

    grads, acts, losses, time_grads = [], [], [], []
    left_out: dict[str, list[str]] = {}
    mode = _measurement_mode(model)
    with preserved(model):
        if not model.training:
            model.train()
        hooks = Hooks(model, owners)
        try:
            for part in batch.split(passes):
                records = hooks.new_pass()
                value = _loss_value(loss_fn, _forward(model, part, batch), part, batch, output_fn)
                losses.append(float(value.detach()))
                if not math.isfinite(losses[-1]):
                    break
                acts.append(activation_stats(records))
                records.release_outputs()  # before backward(): autograd frees them as it goes
                value.backward()
                layers, left_out = gradient_stats(model, owners)
                grads.append(order_layers(layers, records))
                g = time_gradient(records)
                if g is not None:
                    time_grads.append(g)
                model.zero_grad(set_to_none=True)
        finally:
            hooks.remove()
    layers = _average(grads) if grads else []
    activations = _average(acts) if acts else []
    diverged_at = None
    if train_steps and layers and all(math.isfinite(v) for v in losses):
        diverged_at = _measure_updates(
            model, batch, loss_fn, output_fn, layers, owners, train_steps, lr, optimizer, clip_norm
        )
    curve = torch.stack(time_grads).mean(0) if time_grads else None
    ratio = None
    if curve is not None:
        ratio = float(curve[0] / curve[-1]) if float(curve[-1]) > 0 else float("nan")
    cells = {type(m) for m in model.modules() if isinstance(m, nn.RNNBase)}
    report = DiagnosisReport(
        loss=float(np.mean(losses)),
        layers=layers,
        activations=activations,
        time_grad_ratio=ratio,
        gated=bool(cells & {nn.LSTM, nn.GRU}),
        mode=mode,
        time_grads=[] if curve is None else curve.tolist(),
        frozen=left_out.get("frozen", []),
        unused=left_out.get("unused", []),
        non_finite=left_out.get("non_finite", []),
        unrecognised=_unrecognised(hooks),
        recurrent_cell=("lstm" if nn.LSTM in cells else "gru" if nn.GRU in cells else "rnn")
        if cells
        else "",
        batch_norm=any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()),
        normalized=any(isinstance(m, NORMALIZATIONS) for m in model.modules()),
        trained=trained,
        classes=batch.classes,
        trial_diverged_at=diverged_at,
        low_precision=any(p.dtype in (torch.float16, torch.bfloat16) for p in model.parameters()),
    )
    report.findings = _findings(report, train_steps > 0)
    return report


def _unrecognised(hooks: Hooks) -> list[dict]:
    return [
        {"name": name, "type": type_name, "behaves_like": hooks.behaviour.get(name)}
        for name, type_name in hooks.unrecognised.items()
        if name in hooks.behaviour  # called on a tensor of its input's shape: elementwise
    ]


def _measurement_mode(model: nn.Module) -> str:
    """The mode the passes run in, in words for the report (see :func:`diagnose`)."""
    if not model.training:
        return (
            "Measured in training mode, as a training step runs (the model was in eval mode; it is "
            "back in eval mode, BatchNorm statistics untouched)."
        )
    in_eval = [n for n, m in model.named_modules() if not m.training]
    if in_eval:
        shown = ", ".join(in_eval[:3]) + (", ..." if len(in_eval) > 3 else "")
        return (
            f"Measured in training mode; {len(in_eval)} module(s) you put in eval mode stayed in "
            f"eval mode ({shown})."
        )
    return "Measured in training mode (the model's own mode)."


@contextlib.contextmanager
def _weights_put_back(model: nn.Module) -> Iterator[None]:
    """Train ``model`` in the block; its parameters are restored from a backup on disk after.

    The backup is a temporary file (deleted after), as the learning-rate finders of fastai and
    Lightning keep theirs, so trial steps need no memory beyond a plain training step's: no deep
    copy of the model and no second copy of the weights in host or device memory. Each parameter
    is written as its raw bytes and read back one at a time (bit-exact, any dtype).
    """
    params = list(model.parameters())
    with tempfile.TemporaryFile() as backup:
        for p in params:
            p.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tofile(backup)
        try:
            yield
        finally:
            backup.seek(0)
            with torch.no_grad():
                for p in params:
                    raw = np.fromfile(backup, dtype=np.uint8, count=p.numel() * p.element_size())
                    p.copy_(torch.from_numpy(raw).view(p.dtype).view(p.shape))


def _measure_updates(
    model, batch, loss_fn, output_fn, layers, owners, steps, lr, optimizer, clip_norm
) -> int | None:
    r"""Train ``steps`` steps; each layer's median :math:`\|\Delta W\|/\|W\|` goes into its row.

    Returns the step (1-based) at which the loss or the weights became non-finite, else ``None``.
    """
    matrices = {
        owner: [p for _, p in params if p.ndim >= 2 and p.requires_grad]
        for owner, params in owners.items()
    }
    rows = [r for r in layers if matrices.get(r["name"])]
    with preserved(model), _weights_put_back(model):
        if not model.training:
            model.train()
        groups = [matrices[r["name"]] for r in rows]
        args = (model, batch, loss_fn, output_fn, groups, steps, lr, optimizer, clip_norm)
        diverged, per_group = _trial_steps(*args)
    for row, values in zip(rows, per_group):
        if values:
            row["update_to_data"] = float(np.median(values))
    return diverged


def _trial_steps(
    model, batch, loss_fn, output_fn, groups, steps, lr, optimizer, clip_norm
) -> tuple[int | None, list[list[float]]]:
    """The trial steps of :func:`_measure_updates`: ``(diverged step or None, the update:data
    ratios of each group of weight matrices per step)``.

    One optimizer per layer (and one for the other parameters): SGD, Adam, AdamW and RMSprop update
    each parameter on its own, so this is the same step as one optimizer over all of them, and
    only one layer's weights are copied at a time to measure its update. The optimizers and the
    gradients are gone when this returns, before the weights are read back.
    """
    trainable = [p for p in model.parameters() if p.requires_grad]
    in_groups = {id(p) for group in groups for p in group}
    rest = [p for p in trainable if id(p) not in in_groups]
    opts = [make_optimizer(optimizer, group, lr) for group in groups]
    rest_opt = make_optimizer(optimizer, rest, lr) if rest else None
    ratios: list[list[float]] = [[] for _ in groups]
    diverged = None
    for step in range(1, steps + 1):
        for p in trainable:
            p.grad = None
        value = _loss_value(loss_fn, _forward(model, batch, batch), batch, batch, output_fn)
        if not math.isfinite(float(value.detach())):
            diverged = step
            break
        value.backward()
        del value
        if clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(trainable, clip_norm)
        with torch.no_grad():
            for group, opt, values in zip(groups, opts, ratios):
                before = [p.detach().clone() for p in group]
                size = float(_norms(before).pow(2).sum().sqrt())
                opt.step()
                torch._foreach_sub_(before, [p.detach() for p in group])  # -(W_after - W_before)
                change = float(_norms(before).pow(2).sum().sqrt())
                values.append(change / size if size > 0 else math.inf)
        if rest_opt is not None:
            rest_opt.step()
        if not all(bool(torch.isfinite(p).all()) for p in trainable):
            diverged = step
            break
    for p in trainable:
        p.grad = None
    return diverged, ratios
