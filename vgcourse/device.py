"""Where experiments run and how big they are: device choice, seeding, and the quick/full scale.

Every lesson starts with :func:`setup`, which picks the device (CUDA > MPS > CPU, or the
``VGCOURSE_DEVICE`` environment variable), seeds every random number generator and reports the
experiment scale (``VGCOURSE_SCALE``: ``quick`` for a laptop CPU, ``full`` for the papers' sizes).
"""

from __future__ import annotations

import os
import random
import warnings
from typing import Literal, TypeVar

import numpy as np
import torch

from ._validate import check_choice, check_int

SCALES = ("quick", "full")
Scale = Literal["quick", "full"]
T = TypeVar("T")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def _available(device: torch.device) -> bool:
    if device.type == "cpu":
        return True
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return False
        return device.index is None or device.index < torch.cuda.device_count()
    if device.type == "mps":
        return _mps_available()
    return False


def get_device(prefer: str | torch.device | None = None) -> torch.device:
    """Return the device to run on.

    Order: ``prefer`` if given, else the ``VGCOURSE_DEVICE`` environment variable, else the best
    present device: CUDA, then Apple MPS, then CPU. A requested device that is not present gives a
    ``UserWarning`` and falls back to the CPU, so a notebook written on a GPU still runs on a laptop.
    """
    requested = prefer if prefer is not None else os.environ.get("VGCOURSE_DEVICE") or None
    if requested is not None:
        try:
            device = torch.device(requested)
        except (RuntimeError, TypeError) as err:
            raise ValueError(
                f"prefer must name a torch device such as 'cpu', 'cuda', 'cuda:0' or 'mps'; "
                f"got {requested!r} ({err})"
            ) from None
        if _available(device):
            return device
        warnings.warn(
            f"device {str(device)!r} is not available on this machine; falling back to 'cpu'",
            UserWarning,
            stacklevel=2,
        )
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy and PyTorch (CPU and every CUDA device).

    With the same seed, the same code gives bit-for-bit identical results on the CPU. GPU kernels
    may still differ in the last bits from run to run unless deterministic algorithms are enforced.
    """
    seed = check_int("seed", seed, minimum=0)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (seeding the legacy global generator is the point)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def scale() -> Scale:
    """Return the experiment scale: ``VGCOURSE_SCALE`` if set, else ``"full"`` on a GPU, ``"quick"`` on CPU."""
    value = os.environ.get("VGCOURSE_SCALE")
    if value:
        value = value.strip().lower()
        check_choice("VGCOURSE_SCALE", value, SCALES)
        return value  # type: ignore[return-value]
    return "full" if get_device().type in ("cuda", "mps") else "quick"


def by_scale(quick: T, full: T) -> T:
    """Pick a size for the current scale: ``by_scale(quick=200, full=5000)``."""
    return full if scale() == "full" else quick


def setup(
    seed: int = 0, *, threads: int | None = None, verbose: bool = True
) -> tuple[torch.device, Scale]:
    """Seed everything, pick the device and scale, and print them: the first call of every lesson.

    ``threads`` sets PyTorch's CPU threads. By default, on the CPU at quick scale, one thread: the
    lessons' small models are dominated by per-operation overhead, which extra threads only add to
    (and several notebooks run side by side under the test suite). Returns ``(device, scale)``.
    """
    seed_everything(seed)
    device = get_device()
    current = scale()
    if threads is None and device.type == "cpu" and current == "quick":
        threads = 1
    if threads is not None:
        torch.set_num_threads(check_int("threads", threads, minimum=1))
    if verbose:
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
        print(
            f"vgcourse | device: {name} | scale: {current} | seed: {seed} | threads: {torch.get_num_threads()} "
            f"| torch {torch.__version__}"
        )
    return device, current
