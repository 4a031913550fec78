r"""The seed experiment: 9 sigmoid layers on ``make_moons``, trained with Adam or SGD.

Lesson 02 ("chain-rule shrinkage") reproduces the seed articles (Keras walk-throughs of the
vanishing gradient problem). :class:`SeedExperiment` trains their network (9 sigmoid layers of 10
units on ``make_moons``, Glorot-uniform weights, batch size 32, binary cross-entropy) with any
activation, optimizer (:data:`SEED_OPTIMIZERS`), learning rate and seed, recording weights and
representations at every step (:mod:`.lesson02_weight_change`), and caches the runs.

Under SGD the first layer's gradient is the product of nine small Jacobians
(:math:`\sigma' \le 1/4` per layer), so its weights hardly move. Adam's step is about
:math:`\eta\,\mathrm{sign}(g)` (Kingma & Ba 2015, Sec. 2.1), whatever the size of :math:`g`,
so under Adam the first layer moves the most while the loss still sits at :math:`\ln 2`.
:func:`.lesson02_seed_explorer.seed_experiment_explorer` replays the runs interactively.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from .. import activations as _act
from .._validate import check_int, check_positive
from .lesson02_weight_change import SpreadRecorder, WeightRecorder

__all__ = [
    "SEED_OPTIMIZERS",
    "SeedCurves",
    "SeedExperiment",
    "SeedRun",
]


def _adam(params, lr: float) -> torch.optim.Optimizer:
    """PyTorch's Adam (epsilon 1e-8), multi-tensor: the same numbers, bit for bit, as the default
    per-tensor loop, and about a third faster on the 20 small tensors of the seed network."""
    return torch.optim.Adam(params, lr=lr, foreach=True)


def _keras_adam(params, lr: float) -> torch.optim.Optimizer:
    """Adam with Keras' epsilon, 1e-7 (PyTorch's default is 1e-8), multi-tensor as :func:`_adam`."""
    return torch.optim.Adam(params, lr=lr, eps=1e-7, foreach=True)


#: The optimizers of the seed experiment, name -> what :func:`vgcourse.fit` accepts: PyTorch's Adam
#: (:math:`\varepsilon = 10^{-8}`), Adam with Keras' :math:`\varepsilon = 10^{-7}`, and plain SGD.
SEED_OPTIMIZERS: dict[str, Any] = {"adam": _adam, "adam-keras": _keras_adam, "sgd": "sgd"}


class SeedRun(NamedTuple):
    """One trained configuration of :class:`SeedExperiment` (unpacks as ``net, history, weights, spread``).

    ``history`` is :func:`vgcourse.fit`'s :class:`vgcourse.History`, ``weights`` a
    :class:`WeightRecorder` (every tracked weight matrix after every step) and ``spread`` a
    :class:`SpreadRecorder` (representation spread of the training inputs every ``spread_every``
    steps).
    """

    net: nn.Module
    history: Any
    weights: WeightRecorder
    spread: SpreadRecorder


class SeedCurves(NamedTuple):
    """What a run of ``steps`` steps recorded, as plain arrays (see :meth:`SeedExperiment.curves`).

    ``change`` is (steps + 1, layers): the relative weight change of each tracked layer at each
    step; ``loss`` (steps,) the mini-batch training loss; ``final_loss`` the mean loss over the
    last 10% of the steps (as :attr:`vgcourse.History.final_loss`); ``test_accuracy`` the accuracy
    on the test data after ``steps`` steps (nan without test data, or when training diverged).
    """

    steps: int
    change: np.ndarray
    loss: np.ndarray
    final_loss: float
    test_accuracy: float


class SeedExperiment:
    r"""The seed articles' experiment, trainable with any activation, optimizer, learning rate and seed.

    The seed articles (Keras walk-throughs of the vanishing gradient problem) train 9 sigmoid
    hidden layers of 10 units on ``make_moons`` with Adam (:math:`\eta = 10^{-3}`), binary
    cross-entropy, batch size 32 and Keras' default Glorot-uniform weights with zero biases, and
    compare the first layer's weights before and after 100 epochs. :meth:`run` trains
    ``vgcourse.mlp(in, 1, depth, width, activation, init="xavier_uniform")`` with
    ``vgcourse.fit(loss="bce")`` on ``train`` (on ``device``, default :func:`vgcourse.get_device`),
    recording every tracked weight matrix after every step (:class:`WeightRecorder`) and the
    representation spread of the training inputs (:class:`SpreadRecorder`); ``test`` is evaluated
    every ``eval_every`` steps (default: 100 epochs) and at the end.

    Runs are cached per setting (the ``cache_size`` most recently used are kept; a run keeps one
    float32 copy of the tracked weights per step, 3.3 kB for the 9x10 net, 4 MB for 1200 steps). Since
    :func:`vgcourse.fit` draws its mini-batches from its own seeded generator, the first :math:`t`
    steps of a run do not depend on how many steps it has in total: :meth:`curves` therefore reads a
    short run off a longer cached run with the same settings (the same numbers, bit for bit).
    """

    def __init__(
        self,
        train,
        test=None,
        *,
        depth: int = 9,
        width: int = 10,
        batch_size: int = 32,
        eval_every: int | None = None,
        spread_every: int = 10,
        device: torch.device | str | None = None,
        cache_size: int = 64,
    ):
        from .._validate import check_xy
        from ..device import get_device
        from ..train import epochs_to_steps

        if not isinstance(train, (tuple, list)) or len(train) != 2:
            raise TypeError(f"train must be a pair (X, y) of tensors, got {type(train).__name__}")
        self.X_train, self.y_train = check_xy(*train)
        if test is not None:
            if not isinstance(test, (tuple, list)) or len(test) != 2:
                raise TypeError(
                    f"test must be a pair (X, y) of tensors or None, got {type(test).__name__}"
                )
            test = check_xy(*test)
        self.test = test
        self.depth = check_int("depth", depth, minimum=1)
        self.width = check_int("width", width, minimum=1)
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.eval_every = check_int(
            "eval_every",
            epochs_to_steps(100, len(self.X_train), self.batch_size)
            if eval_every is None
            else eval_every,
            minimum=1,
        )
        self.spread_every = check_int("spread_every", spread_every, minimum=1)
        self.device = get_device(device)
        self.cache_size = check_int("cache_size", cache_size, minimum=1)
        self._runs: OrderedDict[tuple, SeedRun] = OrderedDict()
        self._curves = lru_cache(maxsize=4 * self.cache_size)(self._compute_curves)

    def _key(self, activation, optimizer, lr, seed, steps) -> tuple:
        _act.canonical_name(activation)
        if optimizer not in SEED_OPTIMIZERS:
            raise ValueError(
                f"optimizer must be one of {', '.join(map(repr, SEED_OPTIMIZERS))}; got {optimizer!r}"
            )
        return (
            activation,
            optimizer,
            check_positive("lr", lr),
            check_int("seed", seed, minimum=0),
            check_int("steps", steps, minimum=1),
        )

    def run(
        self,
        activation: str = "sigmoid",
        optimizer: str = "adam",
        lr: float = 1e-3,
        seed: int = 0,
        steps: int = 700,
    ) -> SeedRun:
        """Train one configuration (or return it from the cache): ``(net, history, weights, spread)``."""
        key = self._key(activation, optimizer, lr, seed, steps)
        if key in self._runs:
            self._runs.move_to_end(key)
            return self._runs[key]
        result = self._train(*key)
        self._runs[key] = result
        while len(self._runs) > self.cache_size:
            self._runs.popitem(last=False)
        return result

    def _train(self, activation: str, optimizer: str, lr: float, seed: int, steps: int) -> SeedRun:
        from ..models import mlp
        from ..train import fit

        torch.manual_seed(seed)
        net = mlp(
            self.X_train.shape[1],
            1,
            depth=self.depth,
            width=self.width,
            activation=activation,
            init="xavier_uniform",
            device=self.device,
        )
        weights = WeightRecorder(net)
        spread = SpreadRecorder(net, self.X_train, every=self.spread_every)
        history = fit(
            net,
            (self.X_train, self.y_train),
            steps=steps,
            lr=lr,
            optimizer=SEED_OPTIMIZERS[optimizer],
            batch_size=self.batch_size,
            loss="bce",
            seed=seed,
            eval_data=self.test,
            eval_every=self.eval_every if self.test is not None else None,
            callbacks=[weights, spread],
            progress=False,
        )
        return SeedRun(net, history, weights, spread)

    def _source(self, key: tuple) -> tuple:
        """The shortest cached run that covers the run ``key`` asks for (``key`` itself if none)."""
        *settings, steps = key
        covering = []
        for other, run in self._runs.items():
            if list(other[:-1]) != settings or other[-1] < steps:
                continue
            if run.history.diverged_at is not None and other != key:
                continue  # a run that diverged is only used for exactly its own setting
            if self.test is not None and other != key and steps not in run.history.eval_steps:
                continue  # no test accuracy recorded at that step: train the run itself
            covering.append(other)
        return min(covering, key=lambda k: k[-1], default=key)

    def curves(
        self,
        activation: str = "sigmoid",
        optimizer: str = "adam",
        lr: float = 1e-3,
        seed: int = 0,
        steps: int = 700,
    ) -> SeedCurves:
        """Relative weight change per step and layer, losses and test accuracy of one run (cached).

        Read off the shortest cached run with the same settings that covers ``steps`` steps (and
        has the test accuracy at step ``steps``), else off :meth:`run`.
        """
        key = self._key(activation, optimizer, lr, seed, steps)
        source = self._source(key)
        return self._curves(source, steps)

    def _compute_curves(self, source: tuple, steps: int) -> SeedCurves:
        _, history, weights, _ = self.run(*source)
        steps = min(steps, history.steps)  # a run that diverged stops early
        loss = np.asarray(history.loss[:steps], dtype=float)
        k = max(1, steps // 10)
        accuracy = float("nan")
        if self.test is not None and steps in history.eval_steps:  # not when training diverged
            accuracy = history.eval_accuracy[history.eval_steps.index(steps)]
        return SeedCurves(
            steps=steps,
            change=weights.relative_changes()[: steps + 1],
            loss=loss,
            final_loss=float(np.mean(loss[-k:])),
            test_accuracy=float(accuracy),
        )

    def __repr__(self) -> str:
        return (
            f"SeedExperiment(depth={self.depth}, width={self.width}, batch_size={self.batch_size}, "
            f"train={len(self.X_train)}, cached runs={len(self._runs)}, device={self.device})"
        )
