"""The record of a training run: :class:`History`, what :func:`vgcourse.fit` measured at every step
(loss, per-layer and total gradient norms before clipping, the divergence step, evaluations)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np


@dataclass
class History:
    """What :func:`fit` measured.

    ``loss[t]`` is the mini-batch loss at step ``t`` (before that step's update);
    ``grad_norms[t, l]`` the gradient norm of tracked layer ``l`` (``layer_names[l]``, input -> output),
    before clipping; ``total_grad_norm[t]`` the norm over all parameters, before clipping;
    ``diverged_at`` the first step with a non-finite loss or gradient (training stopped there), else
    ``None``. With ``eval_data``, ``eval_steps``/``eval_loss``/``eval_accuracy`` hold evaluations.
    """

    loss: np.ndarray
    grad_norms: np.ndarray
    total_grad_norm: np.ndarray
    layer_names: list[str]
    diverged_at: Optional[int] = None
    seconds: float = 0.0
    clipped: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    eval_steps: list[int] = field(default_factory=list)
    eval_loss: list[float] = field(default_factory=list)
    eval_accuracy: list[float] = field(default_factory=list)
    stats_steps: list[int] = field(default_factory=list)
    stats: dict[str, np.ndarray] = field(default_factory=dict)
    stats_layers: dict[str, list[str]] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        """Number of steps recorded (the step that diverged included)."""
        return len(self.loss)

    @property
    def final_loss(self) -> float:
        """Mean loss over the last 10% of the recorded steps (at least one step)."""
        if len(self.loss) == 0:
            return float("nan")
        k = max(1, len(self.loss) // 10)
        return float(np.mean(self.loss[-k:]))

    def __repr__(self) -> str:
        status = (
            f"diverged at step {self.diverged_at}" if self.diverged_at is not None else "finite"
        )
        return (
            f"History(steps={self.steps}, final_loss={self.final_loss:.4g}, layers={len(self.layer_names)}, "
            f"{status}, {self.seconds:.2f}s)"
        )
