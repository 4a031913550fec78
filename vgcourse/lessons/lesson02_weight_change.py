r"""What training did to each layer: weight changes, update ratios, representation spread.

Lesson 02 ("chain-rule shrinkage") compares the layers of a deep sigmoid net after training. The
relative weight change

.. math:: \frac{\|W_\ell^{after} - W_\ell^{before}\|_F}{\|W_\ell^{before}\|_F}

(:func:`relative_change`) and the per-step update:data ratio
:math:`\|W_\ell^{(t)} - W_\ell^{(t-1)}\|_F / \|W_\ell^{(t-1)}\|_F` (Karpathy's diagnostic; healthy
steps are about :math:`10^{-3}`) are both recorded during :func:`vgcourse.fit` by a
:class:`WeightRecorder` callback, which also keeps weight trajectories. The forward face of the
same Jacobian product: :func:`representation_spread` (recorded by :class:`SpreadRecorder`)
measures how different the hidden representations of different inputs are; a tiny product
:math:`J_L \cdots J_1` maps every input to nearly the same top-layer vector.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .._validate import check_int, check_tensor

__all__ = [
    "SpreadRecorder",
    "WeightRecorder",
    "relative_change",
    "representation_spread",
    "snapshot",
    "tracked_weights",
]


def tracked_weights(
    model: nn.Module, include_output: bool = True
) -> list[tuple[str, nn.Parameter]]:
    """The weight matrices whose change lessons track, input -> output, as ``(name, parameter)``.

    The hidden layers of :func:`vgcourse.models.weight_layers`, plus, for a :func:`vgcourse.mlp`
    model with ``include_output``, the output layer (named ``"output"``).
    """
    from ..models import weight_layers

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(include_output, bool):
        raise TypeError(f"include_output must be True or False, got {include_output!r}")
    layers = list(weight_layers(model))
    out = getattr(model, "output_layer", None)
    if include_output and isinstance(out, nn.Linear):
        layers.append(("output", out.weight))
    if not layers:
        raise ValueError(f"model has no weight matrices to track ({type(model).__name__})")
    return layers


def snapshot(model: nn.Module, include_output: bool = True) -> list[torch.Tensor]:
    """Detached CPU copies of the tracked weights (:func:`tracked_weights`), input -> output."""
    return [p.detach().to("cpu", copy=True) for _, p in tracked_weights(model, include_output)]


def _as_list(name: str, value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise TypeError(f"{name} must be a tensor or a list of tensors, got {type(value).__name__}")
    return [check_tensor(f"{name}[{i}]", v) for i, v in enumerate(value)]


def relative_change(before, after) -> np.ndarray:
    r"""Per-layer relative change :math:`\|A_\ell - B_\ell\|_F / \|B_\ell\|_F` of two weight lists.

    ``before`` and ``after`` are tensors or equal-length lists of same-shape tensors (for
    example two :func:`snapshot` calls around training). A layer whose ``before`` is all zeros gets
    ``inf`` (or 0 if it did not change).
    """
    b_list, a_list = _as_list("before", before), _as_list("after", after)
    if len(b_list) != len(a_list):
        raise ValueError(
            f"before and after must hold the same number of layers, got {len(b_list)} and {len(a_list)}"
        )
    out = []
    for i, (b, a) in enumerate(zip(b_list, a_list)):
        if b.shape != a.shape:
            raise ValueError(
                f"layer {i}: before has shape {tuple(b.shape)} but after has shape {tuple(a.shape)}"
            )
        diff = float((a.detach().double().cpu() - b.detach().double().cpu()).norm())
        denom = float(b.detach().double().norm())
        out.append(diff / denom if denom > 0 else (0.0 if diff == 0 else math.inf))
    return np.asarray(out)


class WeightRecorder:
    r"""A :func:`vgcourse.fit` callback that keeps every tracked weight matrix after every step.

    >>> rec = WeightRecorder(net)             # records the weights before training
    >>> history = vg.fit(net, data, steps=700, lr=1e-3, callbacks=[rec])
    >>> rec.relative_change()                 # per layer, start -> end
    >>> rec.update_ratios()                   # (steps, layers): ||W_t - W_{t-1}|| / ||W_{t-1}||
    >>> rec.trajectories(0, k=5)              # (steps + 1, 5): five weights of layer 1 over time

    Memory: one float32 copy of the tracked weights per recorded step (a 9x10 MLP for 700 steps
    is about 0.3 MB). ``every`` records every ``every``-th step only (the last step always).
    """

    def __init__(self, model: nn.Module, *, include_output: bool = True, every: int = 1):
        self.names = [n for n, _ in tracked_weights(model, include_output)]
        self.include_output = include_output
        self.every = check_int("every", every, minimum=1)
        self.shapes = [tuple(p.shape) for _, p in tracked_weights(model, include_output)]
        self._sizes = [math.prod(s) for s in self.shapes]
        self.steps: list[int] = [0]
        self.losses: list[float] = []
        self._rows: list[torch.Tensor] = [self._flat(model)]
        self._stacked: torch.Tensor | None = None

    def _flat(self, model: nn.Module) -> torch.Tensor:
        params = [p for _, p in tracked_weights(model, self.include_output)]
        if [math.prod(p.shape) for p in params] != self._sizes:
            raise ValueError(
                "the model's tracked weights changed shape since the recorder was made"
            )
        return torch.cat([p.detach().reshape(-1).float().cpu() for p in params])

    def __call__(self, step: int, model: nn.Module, loss: float) -> None:
        self.losses.append(float(loss))
        if (step + 1) % self.every == 0 or step == 0:
            self.steps.append(step + 1)
            self._rows.append(self._flat(model))
            self._stacked = None

    def finish(self, model: nn.Module) -> None:
        """Record the final weights if the last step was skipped by ``every``."""
        last = len(self.losses)
        if self.steps[-1] != last:
            self.steps.append(last)
            self._rows.append(self._flat(model))
            self._stacked = None

    # -- views -------------------------------------------------------------------------------
    @property
    def weights(self) -> torch.Tensor:
        """(recorded steps + 1, total weights) float32: every tracked weight, flattened, over time.

        Cached between recordings: treat it (and the views :meth:`layer` returns) as read-only.
        """
        if self._stacked is None or len(self._stacked) != len(self._rows):
            self._stacked = torch.stack(self._rows)
        return self._stacked

    def layer(self, index: int) -> torch.Tensor:
        """(recorded steps + 1, fan_out * fan_in): the weights of one tracked layer over time."""
        index = check_int("index", index, minimum=-len(self.names))
        if index >= len(self.names):
            raise ValueError(
                f"index must be < {len(self.names)} (layers: {self.names}), got {index}"
            )
        index %= len(self.names)
        start = sum(self._sizes[:index])
        return self.weights[:, start : start + self._sizes[index]]

    def _per_layer(self) -> list[torch.Tensor]:
        W = self.weights.double()
        return list(torch.split(W, self._sizes, dim=1))

    def weight_norms(self) -> np.ndarray:
        r"""(recorded steps + 1, layers): :math:`\|W_\ell^{(t)}\|_F`."""
        return torch.stack([w.norm(dim=1) for w in self._per_layer()], dim=1).numpy()

    def mean_abs(self) -> np.ndarray:
        """(recorded steps + 1, layers): the mean absolute weight of each layer."""
        return torch.stack([w.abs().mean(dim=1) for w in self._per_layer()], dim=1).numpy()

    def relative_change(self, step: int | None = None) -> np.ndarray:
        r"""Per layer, :math:`\|W^{(t)} - W^{(0)}\|_F / \|W^{(0)}\|_F` at recorded ``step`` (default: last)."""
        i = len(self.steps) - 1 if step is None else self._index(step)
        layers = self._per_layer()
        return np.asarray(
            [
                float((w[i] - w[0]).norm() / w[0].norm()) if float(w[0].norm()) > 0 else math.inf
                for w in layers
            ]
        )

    def relative_changes(self) -> np.ndarray:
        r"""(recorded steps + 1, layers): :meth:`relative_change` at every recorded step, in one pass.

        Row :math:`k` is :math:`\|W^{(t_k)} - W^{(0)}\|_F / \|W^{(0)}\|_F` for the recorded step
        :math:`t_k` = ``steps[k]`` (``inf`` for a layer that starts at zero).
        """
        cols = []
        for w in self._per_layer():
            start = w[0].norm()
            change = (w - w[0]).norm(dim=1)
            cols.append(change / start if float(start) > 0 else torch.full_like(change, math.inf))
        return torch.stack(cols, dim=1).numpy()

    def update_ratios(self) -> np.ndarray:
        r"""(recorded steps, layers): update:data ratio :math:`\|W^{(t)} - W^{(t-1)}\|_F / \|W^{(t-1)}\|_F`.

        With ``every > 1`` a row spans ``every`` optimizer steps.
        """
        cols = []
        for w in self._per_layer():
            diff = (w[1:] - w[:-1]).norm(dim=1)
            cols.append(diff / w[:-1].norm(dim=1).clamp_min(1e-30))
        return torch.stack(cols, dim=1).numpy()

    def trajectories(self, index: int, k: int = 5, seed: int = 0) -> np.ndarray:
        """(recorded steps + 1, k): ``k`` weights of tracked layer ``index``, picked at random (seeded)."""
        k = check_int("k", k, minimum=1)
        w = self.layer(index)
        k = min(k, w.shape[1])
        pick = torch.randperm(w.shape[1], generator=torch.Generator().manual_seed(seed))[:k]
        return w[:, pick].numpy()

    def _index(self, step: int) -> int:
        step = check_int("step", step, minimum=0)
        if step not in self.steps:
            raise ValueError(
                f"step {step} was not recorded; recorded steps run from 0 to {self.steps[-1]} "
                f"every {self.every}"
            )
        return self.steps.index(step)

    def __repr__(self) -> str:
        return f"WeightRecorder(layers={self.names}, recorded={len(self.steps)} snapshots)"


def representation_spread(model: nn.Module, X: torch.Tensor) -> np.ndarray:
    r"""Per hidden layer, how different the representations of different inputs are.

    For hidden layer :math:`\ell` with outputs :math:`h_\ell(x_1), \dots, h_\ell(x_N)`, the mean
    over units of the standard deviation over the samples. When the product of layer Jacobians is
    tiny, every input is mapped to almost the same top-layer vector (spread near 0) and the output
    cannot depend on the input: the forward face of vanishing gradients. ``model`` must have
    ``forward_hidden`` (a :func:`vgcourse.mlp` model). Runs without gradients, in eval mode.
    """
    if not hasattr(model, "forward_hidden"):
        raise TypeError(
            f"model must be a vgcourse.mlp model (it needs forward_hidden), got {type(model).__name__}"
        )
    X = check_tensor("X", X)
    if X.ndim < 2 or X.shape[0] < 2:
        raise ValueError(f"X must hold at least 2 samples (rows), got shape {tuple(X.shape)}")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            device = next(model.parameters()).device
            hidden = model.forward_hidden(X.to(device))
    finally:
        model.train(was_training)
    return np.asarray([float(h.double().std(dim=0).mean()) for h in hidden])


class SpreadRecorder:
    """A :func:`vgcourse.fit` callback: :func:`representation_spread` on ``X`` every ``every`` steps.

    ``steps`` holds the step counts (0 = before training) and ``spread`` a (records, layers) array.
    """

    def __init__(self, model: nn.Module, X: torch.Tensor, *, every: int = 10):
        self.X = check_tensor("X", X)
        self.every = check_int("every", every, minimum=1)
        self.steps: list[int] = [0]
        self._rows: list[np.ndarray] = [representation_spread(model, self.X)]

    def __call__(self, step: int, model: nn.Module, loss: float) -> None:
        if (step + 1) % self.every == 0:
            self.steps.append(step + 1)
            self._rows.append(representation_spread(model, self.X))

    @property
    def spread(self) -> np.ndarray:
        """(records, hidden layers): the spread of each hidden layer at each recorded step."""
        return np.stack(self._rows)
