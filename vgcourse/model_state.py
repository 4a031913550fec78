"""Leave a model exactly as it was: what a tool that inspects a model saves and puts back.

A diagnosis runs forward and backward passes, in training mode, on a user's model. That touches
more than the obvious: BatchNorm's running statistics and ``num_batches_tracked`` move, every
module's train/eval flag is set, the ``.grad`` a user holds between ``backward()`` and ``step()``
is overwritten, dropout draws from the global random number generators. :func:`preserved` saves all
of it and restores it on exit, after a success and after an exception alike::

    with preserved(model):
        model.train()
        loss_fn(model(X), y).backward()
    # parameters, buffers, train/eval flags, requires_grad, .grad, hooks, RNG: as before

:func:`snapshot` and :func:`differences` state the same contract as data, for tests: a snapshot
holds copies of everything listed above, and ``differences(before, snapshot(model))`` names what
changed (an empty list when nothing did).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["differences", "preserved", "snapshot"]


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.random.get_rng_state(),
        "numpy": np.random.get_state(),  # noqa: NPY002 (the global state is what a user seeds)
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.random.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    random.setstate(state["python"])
    if "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


def _hooks(model: nn.Module) -> dict[str, tuple]:
    """The hook ids of every module (forward, forward-pre, backward, state-dict hooks)."""
    kinds = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    return {
        name: tuple(tuple(getattr(m, k, {}).keys()) for k in kinds)
        for name, m in model.named_modules()
    }


@contextlib.contextmanager
def preserved(model: nn.Module) -> Iterator[nn.Module]:
    """Run the block, then restore ``model`` and the global RNG state as they were on entry.

    Restored: every module's ``training`` flag (so a frozen backbone's eval-mode BatchNorm stays in
    eval mode), every buffer's values (BatchNorm running statistics, ``num_batches_tracked``,
    spectral-norm vectors), each parameter's ``requires_grad`` and ``.grad`` (the very tensor the
    user held, or ``None``), and the random number generators of torch (CPU and initialised CUDA
    devices), NumPy and Python. Parameters themselves are not copied: a forward/backward pass does
    not write them (the tests check that it leaves them bit-identical). Inside the block the
    parameters' ``.grad`` start at ``None``.
    """
    flags = [(m, m.training) for m in model.modules()]
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    params = list(model.parameters())
    grads = [p.grad for p in params]
    requires = [p.requires_grad for p in params]
    rng = _rng_state()
    try:
        for p in params:
            p.grad = None
        yield model
    finally:
        with torch.no_grad():
            for buffer, saved in buffers:
                buffer.copy_(saved)
        for p, grad, flag in zip(params, grads, requires):
            p.grad = grad
            p.requires_grad_(flag)
        for module, training in flags:
            module.training = training
        _set_rng_state(rng)


def snapshot(model: nn.Module) -> dict[str, Any]:
    """Copies of everything :func:`preserved` promises to keep (parameters included), for tests."""
    return {
        "parameters": {n: p.detach().clone() for n, p in model.named_parameters()},
        "dtypes": {n: p.dtype for n, p in model.named_parameters()},
        "buffers": {n: b.detach().clone() for n, b in model.named_buffers()},
        "training": {n: m.training for n, m in model.named_modules()},
        "requires_grad": {n: p.requires_grad for n, p in model.named_parameters()},
        "grads": {
            n: (None if p.grad is None else (id(p.grad), p.grad.detach().clone()))
            for n, p in model.named_parameters()
        },
        "hooks": _hooks(model),
        "rng": _rng_state(),
    }


def _same_tensor(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a, b))


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What changed between two :func:`snapshot` s, one line per item (empty when nothing did)."""
    found = []
    for kind in ("parameters", "buffers"):
        for name, value in before[kind].items():
            other = after[kind].get(name)
            if other is None or not _same_tensor(value, other):
                found.append(f"{kind[:-1]} {name} changed")
    for kind in ("dtypes", "training", "requires_grad", "hooks"):
        for name, value in before[kind].items():
            if after[kind].get(name) != value:
                found.append(f"{kind} of {name or 'the model'}: {value} -> {after[kind].get(name)}")
    for name, grad in before["grads"].items():
        other = after["grads"].get(name)
        if (grad is None) != (other is None) or (
            grad is not None and (grad[0] != other[0] or not _same_tensor(grad[1], other[1]))
        ):
            found.append(f".grad of {name} changed")
    rng_b, rng_a = before["rng"], after["rng"]
    if not torch.equal(rng_b["torch"], rng_a["torch"]):
        found.append("torch's random state changed")
    if any(
        not np.array_equal(x, y) if isinstance(x, np.ndarray) else x != y
        for x, y in zip(rng_b["numpy"], rng_a["numpy"])
    ):
        found.append("numpy's random state changed")
    if rng_b["python"] != rng_a["python"]:
        found.append("python's random state changed")
    return found
