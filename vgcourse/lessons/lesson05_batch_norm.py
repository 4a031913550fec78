r"""Batch normalization and layer normalization: the formulas, and the measurements of lesson 05.

**Batch norm, training mode** (Ioffe & Szegedy 2015, Algorithm 1). For one feature over a
mini-batch :math:`\{x_1, \dots, x_m\}`:

.. math::
    \mu_B = \frac1m \sum_i x_i, \qquad \sigma_B^2 = \frac1m \sum_i (x_i - \mu_B)^2, \qquad
    \hat x_i = \frac{x_i - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}}, \qquad y_i = \gamma \hat x_i + \beta .

**Inference** (Algorithm 2) replaces the batch statistics by population ones, with the unbiased
variance :math:`\mathrm{Var}[x] = \frac{m}{m-1} E_B[\sigma_B^2]`. PyTorch's ``nn.BatchNorm1d``
keeps exponential running averages instead (``momentum`` :math:`=0.1` by default):
:math:`r_\mu \leftarrow (1-0.1)\,r_\mu + 0.1\,\mu_B` and
:math:`r_{\sigma^2} \leftarrow (1-0.1)\,r_{\sigma^2} + 0.1\,\frac{m}{m-1}\sigma_B^2`.

**Backward** (sec. 3 of the paper, rearranged). With :math:`g_i = \partial L/\partial y_i`,

.. math::
    \frac{\partial L}{\partial x_i} = \frac{\gamma}{\sqrt{\sigma_B^2+\epsilon}}
    \Big(g_i - \frac1m\sum_j g_j - \hat x_i\,\frac1m\sum_j g_j \hat x_j\Big),

so :math:`\sum_i \partial L/\partial x_i = 0` exactly and
:math:`\sum_i \hat x_i\,\partial L/\partial x_i = \frac{\gamma\,\epsilon}{(\sigma_B^2+\epsilon)^{3/2}}\sum_j g_j \hat x_j`
(zero when :math:`\epsilon = 0`). Scaling the weights before the norm, :math:`W \to aW` with
:math:`a > 0`, leaves :math:`y` and :math:`\partial L/\partial u` unchanged and divides
:math:`\partial L/\partial W` by :math:`a` (sec. 3.3; exact for :math:`\epsilon = 0`).

**Layer norm** (Ba, Kiros & Hinton 2016, sec. 3) normalises each sample over its own features,
so it needs no batch and behaves the same in training and evaluation.

This module holds the reusable measuring tools: :func:`preserve_buffers`,
:class:`PreactivationPercentiles` (Figure 1(b, c) of Ioffe & Szegedy), :func:`percentile_drift`,
:func:`batch_dependence` and :func:`batch_size_sweep`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Callable

import numpy as np
import torch
from torch import nn

from .._validate import (
    check_choice,
    check_int,
    check_module,
    check_positive,
    check_tensor,
    check_xy,
)

NORM_LAYERS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm)


@contextlib.contextmanager
def preserve_buffers(model: nn.Module) -> Iterator[nn.Module]:
    """Run a block, then put back every buffer (BN running mean/var, batch counter) and the mode.

    A forward pass in training mode updates batch norm's running averages; wrap a measurement in
    ``with preserve_buffers(net):`` so that looking at the model does not change it.
    """
    check_module("model", model)
    saved = {name: buf.detach().clone() for name, buf in model.named_buffers()}
    modes = {name: m.training for name, m in model.named_modules()}
    try:
        yield model
    finally:
        with torch.no_grad():
            for name, buf in model.named_buffers():
                if name in saved:
                    buf.copy_(saved[name])
        for name, m in model.named_modules():
            m.training = modes.get(name, m.training)


def _activation_of(model: nn.Module, layer: int) -> nn.Module:
    blocks = getattr(model, "blocks", None)
    if blocks is None:
        raise TypeError("model must be a vgcourse.mlp model (it needs .blocks)")
    layer = check_int("layer", layer)
    if not -len(blocks) <= layer < len(blocks):
        raise ValueError(
            f"layer must index one of the {len(blocks)} hidden layers "
            f"({-len(blocks)} .. {len(blocks) - 1}), got {layer}"
        )
    return blocks[layer].act


class PreactivationPercentiles:
    r"""A :func:`vgcourse.fit` callback: percentiles of the input to one layer's activation.

    Ioffe & Szegedy 2015, sec. 4.1, Figure 1(b, c) follow "the input to a typical sigmoid" over
    training as its {15, 50, 85}th percentiles. This records, before training and every ``every``
    steps, the percentiles ``q`` over the examples of ``X`` of the pre-activation
    :math:`z = N(W h + b)` (after the norm, if any) of hidden layer ``layer`` of a
    :func:`vgcourse.mlp` model, for every unit (or the ``units`` given).

    ``mode="train"`` computes :math:`z` with the batch statistics of ``X`` (what the layer computes
    during training); ``"eval"`` with the running averages. Either way the model's buffers and
    mode are restored, so the measurement does not change training.

    After training: ``steps`` (T,) and ``values`` (T, len(q), units) as NumPy arrays.
    """

    def __init__(
        self,
        model: nn.Module,
        X: torch.Tensor,
        *,
        layer: int = -1,
        units: Sequence[int] | None = None,
        q: Sequence[float] = (15, 50, 85),
        every: int = 10,
        mode: str = "train",
    ):
        check_module("model", model)
        self.model = model
        self.X = check_tensor("X", X)
        if self.X.ndim < 2:
            raise ValueError(f"X must have a batch dimension, got shape {tuple(self.X.shape)}")
        self.module = _activation_of(model, layer)
        self.every = check_int("every", every, minimum=1)
        self.mode = check_choice("mode", mode, ("train", "eval"))
        q = [float(v) for v in q]
        if not q or any(not 0 <= v <= 100 for v in q):
            raise ValueError(f"q must be percentiles between 0 and 100, got {q}")
        self.q = tuple(q)
        self.units = None if units is None else [check_int("units[i]", u, minimum=0) for u in units]
        self._steps: list[int] = []
        self._values: list[torch.Tensor] = []
        self.record(0)

    def preactivation(self) -> torch.Tensor:
        """The pre-activation ``z`` (examples x units) at the current weights."""
        captured: list[torch.Tensor] = []

        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            captured.append(inputs[0].detach())

        handle = self.module.register_forward_hook(hook)
        first = next(self.model.parameters())
        try:
            with preserve_buffers(self.model), torch.no_grad():
                self.model.train(self.mode == "train")
                self.model(self.X.to(first.device))
        finally:
            handle.remove()
        z = captured[0].flatten(1).float().cpu()
        if self.units is not None:
            if max(self.units) >= z.shape[1]:
                raise ValueError(
                    f"units must be below the layer width {z.shape[1]}, got {max(self.units)}"
                )
            z = z[:, self.units]
        return z

    def record(self, step: int) -> None:
        """Measure now and file it under ``step`` (number of updates made so far)."""
        z = self.preactivation()
        probs = torch.tensor(self.q, dtype=torch.float32) / 100
        self._values.append(torch.quantile(z, probs, dim=0))
        self._steps.append(int(step))

    def __call__(self, step: int, model: nn.Module, loss: float) -> None:
        # fit calls this after the update of step `step`, so step + 1 updates have been made
        if (step + 1) % self.every == 0:
            self.record(step + 1)

    @property
    def steps(self) -> np.ndarray:
        return np.asarray(self._steps)

    @property
    def values(self) -> np.ndarray:
        return torch.stack(self._values).numpy()


def percentile_drift(values: np.ndarray, *, start: int = 0) -> np.ndarray:
    r"""How far each recorded percentile wanders: :math:`\max_t |p(t) - p(t_{start})|`.

    ``values`` is ``PreactivationPercentiles.values`` (T, len(q), units); the result has shape
    (len(q), units), in the units of the pre-activation (the sigmoid's input ``z``).
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 3:
        raise ValueError(f"values must have shape (T, len(q), units), got {values.shape}")
    start = check_int("start", start, minimum=0)
    if start >= values.shape[0]:
        raise ValueError(
            f"start must be below the number of records {values.shape[0]}, got {start}"
        )
    return np.abs(values[start:] - values[start]).max(axis=0)


def batch_dependence(
    model: nn.Module, X: torch.Tensor, chunk_size: int, *, train_mode: bool
) -> float:
    r"""How much one sample's output depends on the other samples in its batch.

    Runs ``X`` through the model as one batch and again in batches of ``chunk_size``; returns
    :math:`\max |f_{\text{one batch}}(x) - f_{\text{chunks}}(x)|` over samples and outputs. Zero
    (to rounding) for eval-mode batch norm and for layer norm; not zero for training-mode batch
    norm. Buffers and mode are restored afterwards. ``nn.BatchNorm1d`` refuses a training-mode
    batch of one sample (``ValueError``): there is no variance to estimate.
    """
    check_module("model", model)
    X = check_tensor("X", X)
    chunk_size = check_int("chunk_size", chunk_size, minimum=1)
    if not isinstance(train_mode, bool):
        raise TypeError(f"train_mode must be True or False, got {train_mode!r}")
    first = next(model.parameters())
    X = X.to(first.device)
    with preserve_buffers(model), torch.no_grad():
        model.train(train_mode)
        whole = model(X)
        parts = torch.cat([model(chunk) for chunk in torch.split(X, chunk_size)])
    return float((whole - parts).abs().max())


def batch_size_sweep(
    make_net: Callable[[], nn.Module],
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    *,
    batch_sizes: Sequence[int],
    lr: float,
    steps: int | None = None,
    epochs: int | None = None,
    optimizer: str = "adam",
    seeds: Sequence[int] = (0,),
    loss: str = "cross_entropy",
) -> np.ndarray:
    """Test accuracy (eval mode) after training a fresh net at each batch size, for each seed.

    ``make_net()`` builds the model; it is called after ``torch.manual_seed(seed)``, so a seed
    gives the same initial weights at every batch size. Give ``steps`` (the same number of updates
    at every batch size) or ``epochs`` (the same number of examples seen). The training set is cut
    to a multiple of the batch size, so no batch holds a single sample (training-mode batch norm
    cannot normalise one). Returns an array of shape ``(len(batch_sizes), len(seeds))``.
    """
    from ..train import epochs_to_steps, evaluate, fit

    if isinstance(make_net, nn.Module) or not callable(make_net):
        raise TypeError(
            "make_net must be a function that builds a fresh model (e.g. lambda: vg.mlp(...)), "
            f"got {type(make_net).__name__}"
        )
    X, y = check_xy(*train)
    test = check_xy(*test)
    if (steps is None) == (epochs is None):
        raise ValueError("give exactly one of steps (same updates) or epochs (same examples seen)")
    batch_sizes = [check_int("batch_sizes[i]", b, minimum=2) for b in batch_sizes]
    if not batch_sizes:
        raise ValueError("batch_sizes must name at least one batch size")
    if max(batch_sizes) > len(X):
        raise ValueError(
            f"batch_sizes must not exceed the {len(X)} training samples, got {max(batch_sizes)}"
        )
    seeds = [check_int("seeds[i]", s, minimum=0) for s in seeds]
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    check_positive("lr", lr)
    out = np.zeros((len(batch_sizes), len(seeds)))
    for i, bs in enumerate(batch_sizes):
        n = len(X) - len(X) % bs
        n_steps = steps if steps is not None else epochs_to_steps(epochs, n, bs)
        for j, seed in enumerate(seeds):
            torch.manual_seed(seed)
            net = make_net()
            fit(
                net,
                (X[:n], y[:n]),
                steps=n_steps,
                lr=lr,
                optimizer=optimizer,
                batch_size=bs,
                loss=loss,
                record=False,
                progress=False,
                seed=seed,
            )
            out[i, j] = evaluate(net, test, loss)[1]
    return out
