r"""Lesson 03's explorer: one activation at a time (slope and alpha where it has them), its function and
derivative, the derivative's expectation under :math:`N(0, \sigma^2)` inputs and where it saturates."""

from __future__ import annotations

import numpy as np
import torch

from .. import activations as _act
from .._validate import (
    check_choice,
    check_int,
    check_xy,
)
from .lesson03_activations import suggested_init

# -- the lesson's explorer ------------------------------------------------------------------------
EXPLORER_ACTIVATIONS = tuple(a for a in _act.ACTIVATIONS if a not in ("swish", "identity"))


def _explorer_kw(activation: str, slope: float, alpha: float) -> dict:
    key = _act.canonical_name(activation)
    if key == "leaky_relu":
        return {"negative_slope": float(slope)}
    if key == "prelu":
        return {"init": float(slope)}
    if key == "elu":
        return {"alpha": float(alpha)}
    return {}


def activation_explorer(
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    activation: str = "sigmoid",
    depth: int = 10,
    width: int = 32,
    max_depth: int = 40,
    slope: float = 0.01,
    alpha: float = 1.0,
    seed: int = 0,
    layers_shown: int = 6,
    device: torch.device | str | None = None,
):
    r"""Explorer: pick an activation (and its slope or alpha) and a depth; see :math:`\phi, \phi'`,
    the activation histograms per layer and the gradient norm per layer of a fresh MLP on ``(X, y)``.

    The MLP uses :func:`suggested_init`; results are cached per setting (the slope counts only for
    Leaky ReLU / PReLU, alpha only for ELU), so returning to a setting is instant, and the function
    panel is redrawn only when the activation or its parameter changes. ``explorer.state`` holds
    the last setting (``activation``, ``depth``, ``kw``: the activation's parameters), the
    per-layer gradient norms (``norms``), the largest dead and saturated fractions over the layers
    (``dead``, ``saturated``) and :math:`\mathbb E[\phi'(z)]` for :math:`z\sim\mathcal N(0,1)`
    (``expected_derivative``). The networks run on ``device`` (default:
    :func:`vgcourse.get_device`). Returns a :class:`vgcourse.widgets.Explorer` (display it as a
    cell's last expression).
    """
    from functools import lru_cache

    from ..device import get_device
    from ..models import mlp
    from ..plots import plot_activation, plot_grad_norms, plot_histograms
    from ..probes import probe_model
    from ..train import layer_grad_norms
    from ..widgets import Explorer, clear_data, dropdown, slider

    X, y = check_xy(X, y)
    check_choice("activation", activation, EXPLORER_ACTIVATIONS)
    depth = check_int("depth", depth, minimum=1)
    width = check_int("width", width, minimum=1)
    max_depth = check_int("max_depth", max_depth, minimum=depth)
    layers_shown = check_int("layers_shown", layers_shown, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    n_classes = int(y.max()) + 1
    device = get_device(device)
    X, y = X.to(device), y.to(device)
    state: dict = {}
    drawn: dict = {}  # what the function panel shows now

    @lru_cache(maxsize=256)
    def compute(name: str, depth: int, kw_items: tuple):
        kw = dict(kw_items)
        scheme, init_kw = suggested_init(name, **kw)
        torch.manual_seed(seed)
        net = mlp(
            X.shape[1],
            n_classes,
            depth=depth,
            width=width,
            activation=name,
            init=scheme,
            activation_kw=kw,
            device=device,
            **init_kw,
        )
        probe = probe_model(net, X, y)
        records = list(probe.activations.values())
        step = max(1, -(-len(records) // layers_shown))
        samples = {f"layer {i + 1}": records[i].values for i in range(0, len(records), step)}
        if f"layer {len(records)}" not in samples:
            samples[f"layer {len(records)}"] = records[-1].values
        norms = np.asarray(layer_grad_norms(net, X, y))
        dead = max(r.dead for r in records)
        saturated = max(r.saturated for r in records)
        return norms, samples, dead, saturated

    def update(axes, activation: str, depth: int, slope: float, alpha: float) -> str:
        depth = int(depth)
        kw = _explorer_kw(activation, slope, alpha)
        key = (activation, tuple(sorted(kw.items())))
        norms, samples, dead, saturated = compute(activation, depth, key[1])
        expected = _act.expected_derivative(activation, **kw)
        state.update(
            activation=activation,
            depth=depth,
            kw=kw,
            norms=norms,
            dead=dead,
            saturated=saturated,
            expected_derivative=expected,
        )
        if drawn.get("function") != key or not axes[0].lines:  # the function panel changed
            clear_data(axes[0])
            plot_activation(activation, ax=axes[0], **kw)
            drawn["function"] = key
        for ax in axes[1:]:
            clear_data(ax)
        plot_histograms(samples, ax=axes[1], title="activations per layer", xlabel=r"$\phi(z)$")
        plot_grad_norms(norms, ax=axes[2])
        ratio = norms[0] / norms[-1] if norms[-1] > 0 else float("nan")
        used = ", ".join(f"{k}={v:g}" for k, v in kw.items()) or "no parameter"
        return (
            f"{activation} ({used}), depth {depth}: layer 1 / layer {len(norms)} gradient norm "
            f"{ratio:.3g} | E[phi'(z)], z~N(0,1): {expected:.3f} "
            f"| max saturated {saturated:.0%} | max dead {dead:.0%}"
        )

    controls = {
        "activation": dropdown(EXPLORER_ACTIVATIONS, activation, "activation"),
        "depth": slider(depth, 1, max_depth, 1, "depth", integer=True),
        "slope": slider(slope, 0.0, 1.0, 0.01, "leaky/PReLU slope"),
        "alpha": slider(alpha, 0.1, 3.0, 0.1, "ELU alpha"),
    }
    return Explorer(
        update,
        controls,
        caption="switch sigmoid -> tanh -> relu at depth 10, then raise the depth; for leaky_relu "
        "move the slope, for elu move alpha, and watch the gradient norm of layer 1.",
        title="Activation explorer: function, activations per layer, gradient per layer",
        ncols=3,
        figsize=(12.5, 3.6),
        clear=False,  # update keeps the axes and re-plots only what changed
        state=state,
    )
