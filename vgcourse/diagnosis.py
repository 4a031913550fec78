r"""A gradient-flow check-up for any PyTorch model: ``report = vg.diagnose(model, X, y)``.

The model is run for a few forward/backward passes under a :class:`vgcourse.probes.Probe`, which
hooks every parameterised layer (Linear, Conv, RNN/LSTM/GRU, any module owning a weight matrix) and
every activation module. Optionally a copy of the model is trained for a few steps to measure how
much each step changes the weights. The report lists per-layer statistics and names the problems it
finds, each with the evidence and the fix.

The thresholds and the rules that turn measurements into findings are in
:mod:`vgcourse.diagnosis_rules`; the report (text, HTML, ``to_dict()``) is in
:mod:`vgcourse.diagnosis_report`.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

from ._validate import check_int, check_module, check_positive, check_tensor
from .diagnosis_report import DiagnosisReport
from .diagnosis_rules import _findings
from .losses import LossSpec, get_loss
from .model_state import preserved
from .models import model_device
from .probes import Probe
from .train import make_optimizer


def _forward(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    try:
        return model(X)
    except (RuntimeError, ValueError, IndexError) as err:
        raise ValueError(f"X of shape {tuple(X.shape)} does not fit the model: {err}") from None


def _loss_value(loss_fn, out, y, X_shape: tuple, y_shape: tuple) -> torch.Tensor:
    """The loss of one pass; a failure names the caller's X and y shapes and chains the loss's error."""
    try:
        value = loss_fn(out, y)
    except (RuntimeError, ValueError, IndexError) as err:
        raise ValueError(
            f"the loss cannot compare the model's output with y (your X has shape {X_shape} and y "
            f"shape {y_shape}; on this pass the output has shape {tuple(out.shape)} and y "
            f"{tuple(y.shape)}): {err}"
        ) from err
    if not isinstance(value, torch.Tensor) or value.ndim != 0:
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(f"loss must return a scalar tensor, got {shape}")
    return value


def diagnose(
    model: nn.Module,
    X: torch.Tensor | tuple | list,
    y: torch.Tensor | None = None,
    loss: LossSpec = "cross_entropy",
    *,
    passes: int = 3,
    train_steps: int = 0,
    lr: float = 1e-3,
    optimizer: str = "adam",
    clip_norm: float | None = None,
) -> DiagnosisReport:
    """Diagnose the gradient flow of ``model`` on a batch and return a :class:`DiagnosisReport`.

    ``X, y`` is a batch (or pass ``X=(X, y)``, e.g. a batch from a DataLoader); ``loss`` is a
    name (``"cross_entropy"``, ``"bce"``, ``"mse"``) or any ``loss(output, y) -> scalar``. The
    batch is split into ``passes`` parts and the statistics are averaged. With ``train_steps`` > 0,
    a *copy* of the model is trained that many steps (``optimizer``, ``lr``) to measure the
    update:data ratios (clipping the gradient norm to ``clip_norm`` first, as
    :func:`vgcourse.fit` would).

    The model is left exactly as it was, after a success or an exception
    (:func:`vgcourse.model_state.preserved`): parameters, buffers (BatchNorm running statistics),
    every module's train/eval flag, ``requires_grad``, the ``.grad`` you hold, hooks, and the random
    state of torch, NumPy and Python. The passes run as a training step would: a model in training
    mode keeps the modes of its modules (a frozen backbone's eval-mode BatchNorm stays in eval mode);
    a model wholly in eval mode is switched to training mode for the passes (dropout on, BatchNorm
    on batch statistics). ``report.mode`` says which. The thresholds are in
    :mod:`vgcourse.diagnosis_rules`.
    """
    check_module("model", model)
    if isinstance(X, (tuple, list)):
        if y is not None or len(X) != 2:
            raise TypeError("pass either X and y, or one (X, y) batch as X")
        X, y = X
    X = check_tensor("X", X)
    if y is None:
        raise TypeError("y is required: the diagnosis needs a loss to back-propagate")
    y = check_tensor("y", y)
    if X.ndim == 0 or y.ndim == 0 or X.shape[0] != y.shape[0]:
        raise ValueError(
            f"X and y must have the same number of rows; got shapes {tuple(X.shape)} and {tuple(y.shape)}"
        )
    passes = check_int("passes", passes, minimum=1)
    train_steps = check_int("train_steps", train_steps, minimum=0)
    lr = check_positive("lr", lr)
    if clip_norm is not None:
        clip_norm = check_positive("clip_norm", clip_norm)
    loss_fn = get_loss(loss)
    device = model_device(model)
    X, y = X.to(device), y.to(device)
    passes = min(passes, X.shape[0])

    weight_acc: dict[str, list] = {}
    act_acc: dict[str, list] = {}
    losses = []
    time_grads = []
    recurrent = X.ndim == 3 and any(isinstance(m, nn.RNNBase) for m in model.modules())
    mode = _measurement_mode(model)
    with preserved(model):
        if not model.training:
            model.train()
        for chunk_X, chunk_y in zip(torch.tensor_split(X, passes), torch.tensor_split(y, passes)):
            model.zero_grad(set_to_none=True)
            inp = chunk_X.clone().requires_grad_(recurrent and chunk_X.is_floating_point())
            with Probe(model) as probe:
                value = _loss_value(
                    loss_fn, _forward(model, inp), chunk_y, tuple(X.shape), tuple(y.shape)
                )
                losses.append(float(value.detach()))
                if math.isfinite(losses[-1]):
                    value.backward()
            if recurrent and inp.grad is not None:
                time_grads.append(inp.grad.detach().norm(dim=(0, 2)).cpu())
            for name, r in probe.weights.items():
                weight_acc.setdefault(name, []).append(r)
            for name, r in probe.activations.items():
                act_acc.setdefault(name, []).append(r)

    modules = dict(model.named_modules())
    layers = []
    for name, recs in weight_acc.items():
        module = modules.get(name.split("#")[0]) if name != "model" else model
        n_params = (
            sum(
                p.numel()
                for n, p in module.named_parameters(recurse=False)
                if n.startswith("weight") and p.ndim >= 2
            )
            if module is not None
            else 0
        )
        grad = float(np.mean([r.grad_norm for r in recs]))
        layers.append(
            {
                "name": name,
                "module": recs[0].module,
                "params": n_params,
                "grad_norm": grad,
                "grad_rms": grad / math.sqrt(n_params) if n_params else float("nan"),
                "grad_to_data": float(np.mean([r.grad_to_data for r in recs])),
                "weight_norm": recs[0].weight_norm,
                "update_to_data": float("nan"),
            }
        )
    activations = [
        {
            "name": name,
            "activation": recs[0].activation,
            "mean": float(np.mean([r.mean for r in recs])),
            "std": float(np.mean([r.std for r in recs])),
            "saturated": float(np.mean([r.saturated for r in recs])),
            "dead": float(np.mean([r.dead for r in recs])),
        }
        for name, recs in act_acc.items()
    ]
    if train_steps and all(math.isfinite(v) for v in losses):
        with preserved(model):  # the copy's training draws dropout masks from the global RNG
            _measure_updates(model, X, y, loss_fn, layers, train_steps, lr, optimizer, clip_norm)
    ratio = None
    if time_grads:
        g = torch.stack(time_grads).mean(0)
        ratio = float(g[0] / g[-1]) if float(g[-1]) > 0 else float("nan")
    gated = any(isinstance(m, (nn.LSTM, nn.GRU)) for m in model.modules())
    report = DiagnosisReport(
        loss=float(np.mean(losses)),
        layers=layers,
        activations=activations,
        time_grad_ratio=ratio,
        gated=gated,
        mode=mode,
    )
    report.findings = _findings(report, train_steps > 0)
    return report


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


def _measure_updates(model, X, y, loss_fn, layers, steps, lr, optimizer, clip_norm=None) -> None:
    clone = copy.deepcopy(model)
    clone.train()
    opt = make_optimizer(optimizer, clone.parameters(), lr)
    probe = Probe(clone)
    ratios: dict[str, list[float]] = {}
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss_fn(clone(X), y).backward()
        if clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(clone.parameters(), clip_norm)
        probe.snapshot_weights()
        opt.step()
        for name, r in probe.update_ratios().items():
            ratios.setdefault(name, []).append(r)
    for row in layers:
        if row["name"] in ratios:
            row["update_to_data"] = float(np.median(ratios[row["name"]]))
