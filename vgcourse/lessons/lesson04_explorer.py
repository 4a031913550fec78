r"""Explorer of variance propagation at initialization: measured vs mean-field, layer by layer.

Lesson 04. :func:`propagation_explorer` builds a :func:`vgcourse.mlp` with a chosen init scheme,
activation, depth and extra gain :math:`g` (every weight variance times :math:`g^2`), measures
:math:`\mathbb E[h_\ell^2]` and :math:`\mathbb E[(\partial L/\partial a_\ell)^2]` per layer
(:func:`.lesson04_measurements.measure_propagation`) and draws them against the mean-field
recursion :math:`q_{\ell+1} = n_\ell v_{\ell+1}\,\mathbb E_{z\sim\mathcal N(0,q_\ell)}[\phi(z)^2]`
of :func:`.lesson04_initialization.predict_propagation` (Poole et al. 2016; Schoenholz et al.
2017; He et al. 2015, sec. 2.2): per-layer factors slightly off 1 compound with depth.
"""

from __future__ import annotations

import numpy as np
import torch

from .._validate import check_choice, check_int, check_tensor
from .lesson04_initialization import predict_propagation
from .lesson04_measurements import measure_propagation, rescale_weights_

__all__ = ["EXPLORER_ACTIVATIONS", "EXPLORER_SCHEMES", "propagation_explorer"]


def _log_magnitude(values: torch.Tensor) -> torch.Tensor:
    """:math:`\\log_{10}|v|` of the nonzero entries (an all-zero sample stays as it is)."""
    magnitude = values.abs()
    nonzero = magnitude[magnitude > 0]
    return torch.log10(nonzero) if nonzero.numel() else magnitude


#: Schemes and activations offered by :func:`propagation_explorer`.
EXPLORER_SCHEMES = ("standard", "xavier_normal", "kaiming_normal", "lecun_normal", "orthogonal")
EXPLORER_ACTIVATIONS = ("tanh", "relu", "selu", "sigmoid", "identity")


def propagation_explorer(
    X: torch.Tensor,
    *,
    scheme: str = "xavier_normal",
    activation: str = "tanh",
    depth: int = 20,
    gain: float = 1.0,
    width: int = 64,
    out_features: int = 10,
    max_depth: int = 50,
    seed: int = 0,
    device: torch.device | str | None = None,
):
    r"""Explorer: init scheme, activation, depth and an extra gain -> per-layer statistics.

    Left: histograms of the activations :math:`h_\ell` of a few layers (of
    :math:`\log_{10}|h_\ell|` when their scales span more than two decades); middle: histograms of
    :math:`\log_{10}|\partial L/\partial a_\ell|` (the back-propagated gradients); right: the
    measured second moments :math:`\mathbb E[h_\ell^2]` and :math:`\mathbb E[(\partial L/\partial a_\ell)^2]`
    per layer (solid) against the mean-field prediction of :func:`predict_propagation` (dashed).
    The weights are the scheme's times ``gain`` (so ``gain=1`` is the scheme as published). Each
    setting is computed once (cached). ``explorer.state`` holds the last setting (``scheme``,
    ``activation``, ``depth``, ``gain``), its measurement (``measured``, a :class:`Propagation` of
    :func:`measure_propagation`) and the mean-field prediction (``predicted``). The networks run
    on ``device`` (default: :func:`vgcourse.get_device`).
    """
    from functools import lru_cache

    from ..device import get_device
    from ..models import mlp
    from ..plots import plot_histograms
    from ..widgets import Explorer, clear_data, dropdown, slider

    X = check_tensor("X", X, ndim=2)
    width = check_int("width", width, minimum=1)
    max_depth = check_int("max_depth", max_depth, minimum=2)
    check_choice("scheme", scheme, EXPLORER_SCHEMES)
    check_choice("activation", activation, EXPLORER_ACTIVATIONS)
    m0 = float(X.double().pow(2).mean())
    device = get_device(device)
    X = X.to(device)
    state: dict = {}

    @lru_cache(maxsize=64)
    def compute(scheme: str, activation: str, depth: int, gain: float):
        torch.manual_seed(seed)
        net = mlp(
            X.shape[1],
            out_features,
            depth=depth,
            width=width,
            activation=activation,
            init=scheme,
            device=device,
        )
        rescale_weights_(net, gain)
        measured = measure_propagation(net, X, seed=seed, keep_values=True, max_values=4000)
        predicted = predict_propagation(
            depth,
            scheme,
            activation,
            width=width,
            in_features=X.shape[1],
            out_features=out_features,
            input_second_moment=m0,
            multiplier=gain,
        )
        return measured, predicted

    def update(axes, scheme, activation, depth, gain):
        depth = int(depth)
        measured, predicted = compute(scheme, activation, depth, float(gain))
        state.update(
            scheme=scheme,
            activation=activation,
            depth=depth,
            gain=float(gain),
            measured=measured,
            predicted=predicted,
        )
        for ax in axes:
            clear_data(ax)  # keeps the axes' ticks: cheaper than clearing them
        shown = sorted({0, *range(0, depth, max(1, depth // 5)), depth - 1})
        moments = [measured.act[i] for i in shown]
        if max(moments) > 100 * max(min(moments), 1e-300):  # spans decades: show magnitudes
            plot_histograms(
                {f"layer {i + 1}": _log_magnitude(measured.act_values[i]) for i in shown},
                ax=axes[0],
                title=r"activations $h_\ell$ (magnitude)",
                xlabel=r"$\log_{10}|h_\ell|$ (zeros left out)",
            )
        else:
            plot_histograms(
                {f"layer {i + 1}": measured.act_values[i] for i in shown},
                ax=axes[0],
                title=r"activations $h_\ell$",
                xlabel="activation value",
            )
        plot_histograms(
            {f"layer {i + 1}": _log_magnitude(measured.grad_values[i]) for i in shown},
            ax=axes[1],
            title="back-propagated gradients",
            xlabel=r"$\log_{10}|\partial L/\partial a_\ell|$",
        )
        layers = np.arange(1, depth + 1)
        ax = axes[2]
        for values, pred, label in (
            (measured.act, predicted.act, r"$E[h_\ell^2]$"),
            (measured.grad_preact, predicted.grad_preact, r"$E[(\partial L/\partial a_\ell)^2]$"),
        ):
            (line,) = ax.plot(layers, values, "o-", ms=3, label=label + " measured")
            ax.plot(layers, pred, "--", color=line.get_color(), label="mean-field")
        ax.set_yscale("log")
        ax.set_xlabel("layer (1 = input side)")
        ax.set_ylabel("second moment")
        ax.set_title("per layer: measured vs predicted")
        ax.legend(fontsize=7)
        ax.grid(True, which="both", alpha=0.3)
        ratio = measured.grad_preact[0] / measured.grad_preact[-1]
        predicted_ratio = predicted.grad_preact[0] / predicted.grad_preact[-1]
        return (
            f"E[h^2]: layer 1 {measured.act[0]:.3g}, layer {depth} {measured.act[-1]:.3g} | "
            f"gradient E[g^2] layer 1 / layer {depth}: {ratio:.3g} (mean-field {predicted_ratio:.3g})"
        )

    controls = {
        "scheme": dropdown(EXPLORER_SCHEMES, scheme, "init"),
        "activation": dropdown(EXPLORER_ACTIVATIONS, activation, "activation"),
        "depth": slider(depth, 2, max_depth, 1, "depth", integer=True),
        "gain": slider(gain, 0.25, 4.0, 0.05, "extra gain"),
    }
    return Explorer(
        update,
        controls,
        caption="pick an activation, then find the init and gain that keep both curves flat; "
        "raise the depth and watch small per-layer factors compound.",
        title="Variance propagation at initialization",
        ncols=3,
        figsize=(12.5, 3.8),
        clear=False,  # update re-plots on the kept axes (see clear_data)
        state=state,
    )
