""":class:`vgcourse.Monitor` as a PyTorch Lightning callback (``pip install "vgcourse[lightning]"``).

>>> gradients = GradientMonitor(every=10)
>>> trainer = lightning.Trainer(callbacks=[gradients])
>>> trainer.fit(model, loader)
>>> print(gradients.monitor)      # the problems, and the step each one started

The callback attaches a monitor to the ``LightningModule`` when fitting starts and records after
each optimizer step (``on_train_batch_end``: Lightning has stepped the optimizer and not yet
cleared the gradients). With ``precision="16-mixed"`` Lightning's ``GradScaler`` scale is taken
into account. Each recorded loss is the ``loss`` the ``training_step`` returned.
"""

from __future__ import annotations

from typing import Any

try:
    from lightning.pytorch.callbacks import Callback
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        "vgcourse.lightning_monitor needs PyTorch Lightning: pip install lightning"
    ) from err

from ._validate import check_int
from .monitoring import Monitor


class GradientMonitor(Callback):
    """Record per-layer gradient, update:data and dead-unit statistics every ``every`` steps."""

    def __init__(self, every: int = 10) -> None:
        super().__init__()
        self.every = check_int("every", every, minimum=1)
        self.monitor: Monitor | None = None

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self.monitor = Monitor(pl_module, self.every).attach()

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        accumulate = int(getattr(trainer, "accumulate_grad_batches", 1) or 1)
        if self.monitor is None or (batch_idx + 1) % accumulate:
            return  # no optimizer step on this batch (gradient accumulation)
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        scaler = getattr(getattr(trainer, "precision_plugin", None), "scaler", None)
        scale = float(scaler.get_scale()) if scaler is not None and scaler.is_enabled() else 1.0
        self.monitor.step(loss, grad_scale=scale)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        if self.monitor is not None:
            self.monitor.detach()
