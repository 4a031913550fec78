"""Shared test setup: a non-interactive matplotlib backend and device markers.

Tests marked ``cuda`` run on a visible CUDA GPU and are skipped otherwise; ``devices`` parametrises
a test over every device present (CPU always, CUDA and MPS when there).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

DEVICES = ["cpu"]
if torch.cuda.is_available():
    DEVICES.append("cuda")
if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
    DEVICES.append("mps")


def pytest_collection_modifyitems(config, items):
    skip_cuda = pytest.mark.skip(reason="no CUDA GPU visible")
    skip_mps = pytest.mark.skip(reason="no Apple MPS device")
    for item in items:
        if "cuda" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_cuda)
        if "mps" in item.keywords and "mps" not in DEVICES:
            item.add_marker(skip_mps)


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    """Every device present on this machine (CPU always)."""
    return torch.device(request.param)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
