r"""Lesson 08's training experiment: an MLP trained at several learning rates with and without clipping
by norm (Pascanu et al. 2013, Algorithm 1, via ``torch.nn.utils.clip_grad_norm_``), every run cached,
divergence caught at its step."""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import torch
from torch import nn

from .._validate import check_int, check_positive, check_xy
from ..device import get_device
from ..models import mlp
from ..train import History, evaluate, fit


class ClipRun(NamedTuple):
    """One run of :meth:`ClippingExperiment.run`: what :func:`vgcourse.fit` recorded, and the loss
    and accuracy on all of the experiment's data after the last step (NaN when the run diverged)."""

    history: History
    loss: float
    accuracy: float


class ClippingExperiment:
    r"""Lesson 08's exploding network, trained with plain SGD with or without clipping; runs cached.

    The network (:meth:`net`) is a ReLU MLP of ``depth`` hidden layers of ``width`` units whose
    weights are He initialization times a gain :math:`g`,
    :math:`W_\ell \sim \mathcal N(0,\, 2g^2/\text{fan\_in})`, biases zero. By the variance argument
    (He et al. 2015, sec. 2.2) each layer then multiplies the size of the back-propagated error
    signal by about :math:`g`, and every weight gradient starts about :math:`g^{L-1}` times larger
    than with :math:`g = 1`: at a large learning rate plain SGD diverges to NaN within a few steps.

    :meth:`run` trains a fresh seeded network with :func:`vgcourse.fit`: plain SGD at ``lr``,
    ``steps`` mini-batches of ``batch_size`` (the data order fixed by the seed), and, when
    ``clip_norm`` :math:`= c` is given, the gradient clipped by norm before every step (Pascanu,
    Mikolov & Bengio 2013, sec. 3.2, Algorithm 1: if :math:`\|g\| \ge c` then
    :math:`g \leftarrow c\,g/\|g\|`, over all parameters at once, so no step is longer than
    :math:`\eta c`). It then measures the loss and accuracy on all of ``(X, y)``. Each result is
    cached per ``(lr, clip_norm, seed)``: a cached run is exactly what training with those settings
    gives (seeded runs on the CPU are bit-for-bit repeatable), so lessons, tables and
    :func:`clipping_explorer` can share one experiment without training anything twice.
    """

    def __init__(
        self,
        X: torch.Tensor,
        y: torch.Tensor,
        *,
        depth: int = 10,
        width: int = 32,
        gain: float = 1.5,
        steps: int = 100,
        batch_size: int | None = 64,
        device: torch.device | str | None = None,
        cache_size: int = 1024,
    ):
        X, y = check_xy(X, y)
        if X.ndim != 2 or not X.is_floating_point():
            raise ValueError(
                f"X must be a 2-D float tensor (samples, features), got shape {tuple(X.shape)} "
                f"and dtype {X.dtype}"
            )
        if y.ndim != 1 or y.is_floating_point() or int(y.min()) < 0:
            raise ValueError(
                "y must be a 1-D tensor of class indices 0, 1, ... (cross-entropy targets), "
                f"got shape {tuple(y.shape)} and dtype {y.dtype}"
            )
        self.depth = check_int("depth", depth, minimum=1)
        self.width = check_int("width", width, minimum=1)
        self.gain = check_positive("gain", gain)
        self.steps = check_int("steps", steps, minimum=1)
        self.batch_size = (
            None if batch_size is None else check_int("batch_size", batch_size, minimum=1)
        )
        cache_size = check_int("cache_size", cache_size, minimum=1)
        self.device = get_device(device)
        self.X, self.y = X.to(self.device), y.to(self.device)
        self.n_classes = int(y.max()) + 1
        self._run = functools.lru_cache(maxsize=cache_size)(self._train)

    def __repr__(self) -> str:
        return (
            f"ClippingExperiment({len(self.X)} samples, depth={self.depth}, width={self.width}, "
            f"gain={self.gain:g}, steps={self.steps}, batch_size={self.batch_size}, "
            f"device={str(self.device)!r}, cached runs={self._run.cache_info().currsize})"
        )

    def net(self, seed: int = 0) -> nn.Module:
        """A fresh network for ``seed`` (seeded with ``torch.manual_seed``), on the experiment's device."""
        seed = check_int("seed", seed, minimum=0)
        torch.manual_seed(seed)
        return mlp(
            self.X.shape[1],
            self.n_classes,
            depth=self.depth,
            width=self.width,
            activation="relu",
            init="kaiming_normal",
            gain=self.gain * math.sqrt(2),  # He's gain sqrt(2), times g
            device=self.device,
        )

    def run(self, lr: float, clip_norm: float | None = None, seed: int = 0) -> ClipRun:
        """Train :meth:`net` ``(seed)`` at learning rate ``lr`` (clipping at ``clip_norm``, or not); cached."""
        lr = check_positive("lr", lr)
        if clip_norm is not None:
            clip_norm = check_positive("clip_norm", clip_norm)
        seed = check_int("seed", seed, minimum=0)
        return self._run(lr, clip_norm, seed)

    def _train(self, lr: float, clip_norm: float | None, seed: int) -> ClipRun:
        net = self.net(seed)
        history = fit(
            net,
            (self.X, self.y),
            steps=self.steps,
            lr=lr,
            optimizer="sgd",
            batch_size=self.batch_size,
            clip_norm=clip_norm,
            seed=seed,
            record=False,
            progress=False,
        )
        if history.diverged_at is not None:
            return ClipRun(history, float("nan"), float("nan"))
        loss, accuracy = evaluate(net, (self.X, self.y))
        return ClipRun(history, loss, accuracy)
