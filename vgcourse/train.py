r"""Training with the measurements the course needs: per-step loss, per-layer gradient norms, divergence.

:func:`fit` is an ordinary mini-batch training loop (forward, loss, backward, optional clipping,
optimizer step) that also records, at every step, the L2 norm of each tracked weight gradient
(:func:`vgcourse.models.weight_layers`), and stops at the first step whose loss or gradient is not
finite, reporting it in :attr:`History.diverged_at` instead of raising, so a notebook carries on.

Clipping follows Pascanu, Mikolov & Bengio 2013, Algorithm 1: if :math:`\|g\| > c`, then
:math:`g \leftarrow c\,g/\|g\|` (``clip_norm``, norm over all parameters, via
``torch.nn.utils.clip_grad_norm_``), or elementwise :math:`g_i \leftarrow \max(-c, \min(c, g_i))`
(``clip_value``).
"""

from __future__ import annotations

import math
import time
from typing import Callable, Union

import numpy as np
import torch
from torch import nn

from ._validate import check_choice, check_int, check_module, check_positive, check_xy
from .history import History
from .losses import LossSpec, get_loss, predictions
from .models import model_device, weight_layers

OPTIMIZERS: tuple[str, ...] = ("sgd", "momentum", "adam", "adamw", "rmsprop")
OptimizerSpec = Union[str, Callable[..., torch.optim.Optimizer]]
Callback = Callable[[int, nn.Module, float], None]


def make_optimizer(optimizer: OptimizerSpec, params, lr: float) -> torch.optim.Optimizer:
    """An optimizer by name (:data:`OPTIMIZERS`; ``"momentum"`` is SGD with momentum 0.9) or factory."""
    if callable(optimizer):
        return optimizer(params, lr=lr)
    if not isinstance(optimizer, str):
        raise TypeError(
            f"optimizer must be a name in {OPTIMIZERS} or a callable, got {type(optimizer).__name__}"
        )
    check_choice("optimizer", optimizer, OPTIMIZERS)
    if optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if optimizer == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    if optimizer == "adam":
        return torch.optim.Adam(params, lr=lr)
    if optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr)
    return torch.optim.RMSprop(params, lr=lr)


def epochs_to_steps(epochs: int, n: int, batch_size: int | None) -> int:
    """Optimizer steps in ``epochs`` passes over ``n`` samples (last partial batch kept, as Keras does)."""
    epochs = check_int("epochs", epochs, minimum=1)
    n = check_int("n", n, minimum=1)
    if batch_size is None:
        return epochs
    return epochs * math.ceil(n / check_int("batch_size", batch_size, minimum=1))


class BatchSampler:
    """Yields index batches: a fresh permutation each epoch (seeded), chunks of ``batch_size``.

    With ``batch_size=None`` every batch is the whole data set (full-batch gradient descent).
    """

    def __init__(self, n: int, batch_size: int | None, seed: int = 0, drop_last: bool = False):
        self.n = n
        self.batch_size = batch_size
        self.drop_last = drop_last and batch_size is not None and n >= batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self._queue: list[torch.Tensor] = []

    def next(self) -> torch.Tensor | None:
        if self.batch_size is None or self.batch_size >= self.n:
            return None
        if not self._queue:
            perm = torch.randperm(self.n, generator=self.generator)
            chunks = list(torch.split(perm, self.batch_size))
            if self.drop_last and len(chunks[-1]) < self.batch_size:
                chunks.pop()
            self._queue = chunks[::-1]
        return self._queue.pop()


def _check_data(data) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"data must be a pair (X, y) of tensors, got {type(data).__name__}")
    return check_xy(*data)


def evaluate(model: nn.Module, data, loss: LossSpec = "cross_entropy") -> tuple[float, float]:
    """``(loss, accuracy)`` of ``model`` on ``data`` in eval mode, without gradients.

    Accuracy is ``nan`` for regression losses and custom loss callables.
    """
    X, y = _check_data(data)
    device = model_device(model)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(X.to(device))
        value = float(get_loss(loss)(out, y.to(device)))
        pred = predictions(out, loss)
        acc = (
            float((pred.cpu() == y.reshape(-1).cpu()).float().mean())
            if pred is not None
            else float("nan")
        )
    model.train(was_training)
    return value, acc


def layer_grad_norms(
    model: nn.Module, X: torch.Tensor, y: torch.Tensor, loss: LossSpec = "cross_entropy"
) -> np.ndarray:
    """L2 norm of each tracked weight gradient after one forward/backward pass at the current weights.

    Layers are those of :func:`vgcourse.models.weight_layers` (an MLP's hidden layers), input ->
    output. No update is made: the model's ``.grad`` fields are cleared afterwards and its buffers
    (batch norm's running statistics, which a training-mode forward pass moves) are put back, so
    measuring a model does not change what it later computes in eval mode.
    """
    check_module("model", model)
    X, y = check_xy(X, y)
    device = model_device(model)
    loss_fn = get_loss(loss)
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    model.zero_grad(set_to_none=True)
    try:
        value = loss_fn(model(X.to(device)), y.to(device))
        if value.ndim != 0:
            raise ValueError(
                f"loss must return a scalar, got a tensor of shape {tuple(value.shape)}"
            )
        value.backward()
        tracked = weight_layers(model)
        norms = [float(p.grad.norm()) if p.grad is not None else 0.0 for _, p in tracked]
    finally:
        model.zero_grad(set_to_none=True)
        with torch.no_grad():
            for buffer, saved in buffers:
                buffer.copy_(saved)
    return np.asarray(norms)


def fit(
    model: nn.Module,
    data,
    *,
    steps: int,
    lr: float,
    optimizer: OptimizerSpec = "adam",
    batch_size: int | None = None,
    loss: LossSpec = "cross_entropy",
    clip_norm: float | None = None,
    clip_value: float | None = None,
    record: bool = True,
    progress: bool | None = None,
    seed: int = 0,
    eval_data=None,
    eval_every: int | None = None,
    callbacks: list[Callback] | None = None,
    probe_every: int | None = None,
    drop_last: bool = False,
) -> History:
    """Train ``model`` on ``data = (X, y)`` for ``steps`` optimizer steps and return a :class:`History`.

    Mini-batches of ``batch_size`` come from a fresh seeded permutation each epoch (``None``: full
    batch); the last, smaller batch of an epoch is kept unless ``drop_last`` (batch norm needs
    more than one sample per batch). ``clip_norm``/``clip_value`` clip the gradient before the step (module docstring).
    ``record`` keeps per-layer gradient norms (set ``False`` for the fastest loop). ``progress``
    shows a tqdm bar (``None``: only for runs of 2000 steps or more). With ``eval_data``, the loss
    and accuracy on it are measured every ``eval_every`` steps (default ``steps // 20``) and at the
    end. Each callback is called as ``callback(step, model, loss)`` after every step.

    With ``probe_every=k``, every k-th step runs under a :class:`vgcourse.probes.Probe` and
    ``History.stats`` gets (snapshots x layers) arrays ``act_mean``, ``act_std``, ``saturated``,
    ``dead`` (per activation layer) and ``grad_to_data``, ``update_to_data`` (per weight layer),
    taken at the steps in ``History.stats_steps``, for heatmaps of layer statistics over training.
    The probe's hooks stay attached for the whole run (and are removed even if training fails);
    the statistics of the probed steps are computed together, in batches, and copied to the CPU
    once at the end (:meth:`vgcourse.probes.Probe.end_pass`), so ``probe_every=1`` costs about
    1.4x a plain step of the course's small nets on a CPU (benchmarks/probe_overhead.py).

    A step whose loss or gradient is NaN or Inf stops training; ``History.diverged_at`` says which.
    """
    check_module("model", model)
    X, y = _check_data(data)
    steps = check_int("steps", steps, minimum=1)
    lr = check_positive("lr", lr)
    loss_fn = get_loss(loss)
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size, minimum=1)
    if clip_norm is not None:
        clip_norm = check_positive("clip_norm", clip_norm)
    if clip_value is not None:
        clip_value = check_positive("clip_value", clip_value)
    if eval_data is not None:
        eval_data = _check_data(eval_data)
        eval_every = check_int("eval_every", eval_every or max(1, steps // 20), minimum=1)
    probe = None
    if probe_every is not None:
        probe_every = check_int("probe_every", probe_every, minimum=1)
        from .probes import Probe

        probe = Probe(model)
    device = model_device(model)
    X, y = X.to(device), y.to(device)
    opt = make_optimizer(optimizer, model.parameters(), lr)
    tracked = weight_layers(model)
    params = [p for p in model.parameters() if p.requires_grad]
    sampler = BatchSampler(len(X), batch_size, seed, drop_last=drop_last)

    losses = torch.empty(steps, dtype=torch.float64)
    norms = (
        torch.zeros(steps, len(tracked), dtype=torch.float64) if record else torch.zeros(steps, 0)
    )
    totals = torch.empty(steps, dtype=torch.float64)
    clipped = torch.zeros(steps, dtype=torch.bool)
    history = History(
        np.zeros(0), np.zeros((0, len(tracked))), np.zeros(0), [n for n, _ in tracked]
    )

    show = progress if progress is not None else steps >= 2000
    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc="fit", leave=False)
    model.train()
    start = time.perf_counter()
    done = 0
    if probe is not None:  # attached once; recording only on the probed steps
        probe.active = False
        probe.attach()
    try:
        for step in range(steps):
            idx = sampler.next()
            xb, yb = (X, y) if idx is None else (X[idx.to(device)], y[idx.to(device)])
            opt.zero_grad(set_to_none=True)
            probing = probe_every is not None and step % probe_every == 0
            if probing:
                probe.active = True
            value = loss_fn(model(xb), yb)
            if value.ndim != 0:
                raise ValueError(
                    f"loss must return a scalar, got a tensor of shape {tuple(value.shape)}"
                )
            value.backward()
            if probing:
                probe.active = False
                probe.collect_gradients()
                probe.snapshot_weights()
            grads = [p.grad for p in params if p.grad is not None]
            total = (
                torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
                if grads
                else torch.zeros(())
            )
            losses[step] = value.detach().double().cpu()
            totals[step] = total.double().cpu()
            if record and tracked:
                layer_grads = [
                    p.grad if p.grad is not None else torch.zeros_like(p) for _, p in tracked
                ]
                norms[step] = torch.stack(torch._foreach_norm(layer_grads)).double().cpu()
            done = step + 1
            if not (math.isfinite(losses[step].item()) and math.isfinite(totals[step].item())):
                history.diverged_at = step
                break
            if clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, clip_norm)
                clipped[step] = bool(totals[step] > clip_norm)
            if clip_value is not None:
                largest = (
                    torch.stack([g.abs().max() for g in grads]).max() if grads else torch.zeros(())
                )
                clipped[step] = clipped[step] or bool(largest > clip_value)
                torch.nn.utils.clip_grad_value_(params, clip_value)
            opt.step()
            if probing:
                probe.update_ratio_tensor()
                probe.end_pass()  # statistics computed for many steps at once, at the end
                history.stats_steps.append(step)
            for cb in callbacks or ():
                cb(step, model, float(losses[step]))
            if eval_data is not None and (step + 1) % eval_every == 0:
                _record_eval(history, model, eval_data, loss, step + 1)
            if bar is not None:
                bar.update(1)
    finally:
        if probe is not None:
            probe.detach()
    if (
        eval_data is not None
        and history.diverged_at is None
        and (not history.eval_steps or history.eval_steps[-1] != done)
    ):
        _record_eval(history, model, eval_data, loss, done)
    if bar is not None:
        bar.close()
    history.seconds = time.perf_counter() - start
    history.loss = losses[:done].numpy()
    history.grad_norms = norms[:done].numpy()
    history.total_grad_norm = totals[:done].numpy()
    history.clipped = clipped[:done].numpy()
    if probe is not None and history.stats_steps:
        _stack_stats(history, probe.finished_stats())
    return history


def _record_eval(history: History, model: nn.Module, data, loss: LossSpec, step: int) -> None:
    value, acc = evaluate(model, data, loss)
    history.eval_steps.append(step)
    history.eval_loss.append(value)
    history.eval_accuracy.append(acc)
    model.train()


def _stack_stats(
    history: History, chunks: list[tuple[list[str], list[str], torch.Tensor, torch.Tensor]]
) -> None:
    """Turn the probe's statistics into (snapshots x layers) arrays in ``history.stats``.

    ``chunks`` is :meth:`vgcourse.probes.Probe.finished_stats`: runs of probed steps with the
    same layers, each ``(activation names, weight names, (steps, 4, activations), (steps, 5,
    weights))``; they are joined and copied to the CPU once. Layers are those of the first step;
    a later step that recorded other layers (a model whose forward pass changes) is matched by
    name, NaN where a layer is missing.
    """
    from .probes import ACTIVATION_STATS, WEIGHT_STATS

    act_names, weight_names = chunks[0][0], chunks[0][1]
    history.stats_layers = {"activations": act_names, "weights": weight_names}
    acts = _join_by_name([(c[0], c[2]) for c in chunks], act_names)
    weights = _join_by_name([(c[1], c[3]) for c in chunks], weight_names)
    for key in ("mean", "std", "saturated", "dead"):
        name = f"act_{key}" if key in ("mean", "std") else key
        history.stats[name] = np.ascontiguousarray(acts[:, ACTIVATION_STATS.index(key)])
    for key in ("grad_to_data", "update_to_data"):
        history.stats[key] = np.ascontiguousarray(weights[:, WEIGHT_STATS.index(key)])


def _join_by_name(chunks: list[tuple[list[str], torch.Tensor]], names: list[str]) -> np.ndarray:
    """(steps, statistics, layers) float64 array from (steps, statistics, layers) chunks."""
    if all(n == names for n, _ in chunks):
        return torch.cat([t for _, t in chunks]).cpu().double().numpy()
    parts = []
    for chunk_names, t in chunks:
        position = {n: j for j, n in enumerate(chunk_names)}
        values = t.cpu().double().numpy()
        part = np.full((values.shape[0], values.shape[1], len(names)), np.nan)
        for j, n in enumerate(names):
            if n in position:
                part[:, :, j] = values[:, :, position[n]]
        parts.append(part)
    return np.concatenate(parts)
