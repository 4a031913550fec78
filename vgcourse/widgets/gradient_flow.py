"""The gradient-flow explorer (lessons 05 and 09): per-layer gradient norms of an MLP as depth,
activation, initialization and normalization change."""

from __future__ import annotations

from typing import Any

from .canvas import clear_data
from .controls import checkbox, dropdown, slider
from .explorer import Explorer


# -- the gradient-flow explorer (lessons 05 and 09) -------------------------------------------------
def gradient_flow(
    *,
    depth: int,
    width: int,
    activation: str,
    init: str,
    norm: str | None = None,
    residual: bool = False,
    data=None,
    loss: str = "cross_entropy",
    seed: int = 0,
    device=None,
    **init_kw,
):
    """Build one MLP and probe it on ``data``: ``(grad_norms, activation_samples, probe)``.

    The computation behind the gradient-flow explorers: a fresh seeded :func:`vgcourse.mlp`, one
    forward/backward pass under a :class:`vgcourse.probes.Probe`.
    """
    import torch

    from ..data import moons
    from ..device import get_device
    from ..models import mlp
    from ..probes import probe_model
    from ..train import layer_grad_norms

    X, y = data if data is not None else moons(256, 0.1, seed=0)
    n_classes = int(y.max()) + 1 if loss == "cross_entropy" else 1
    torch.manual_seed(seed)
    net = mlp(
        X.shape[1],
        n_classes,
        depth=depth,
        width=width,
        activation=activation,
        init=init,
        norm=norm,
        residual=residual,
        device=device or get_device(),
        **init_kw,
    )
    probe = probe_model(net, X, y, loss)
    norms = layer_grad_norms(net, X, y, loss)
    samples = {f"layer {i + 1}": r.values for i, r in enumerate(probe.activations.values())}
    return norms, samples, probe


def gradient_flow_explorer(
    *,
    depth: int = 10,
    width: int = 32,
    activation: str = "sigmoid",
    init: str = "standard",
    norm: str | None = None,
    residual: bool = False,
    controls: tuple[str, ...] = ("depth", "activation", "init"),
    max_depth: int = 50,
    data=None,
    caption: str = "",
    title: str | None = None,
    device=None,
) -> Explorer:
    """Explorer: MLP settings -> per-layer activation histograms (left) and gradient norms (right).

    ``controls`` picks which settings get a widget, among ``depth``, ``activation``, ``init``,
    ``norm`` and ``residual``; the others stay fixed at the given values. Each setting is computed
    once (cached), so going back to a setting only redraws. ``explorer.state`` holds the last
    setting (``config``), its per-layer gradient norms (``norms``), the activation samples shown
    (``samples``) and the largest saturated and dead fractions over the layers. The networks run
    on ``device`` (default: :func:`vgcourse.get_device`).
    """
    from functools import lru_cache

    from ..activations import ACTIVATIONS
    from ..inits import INITS
    from ..plots import plot_grad_norms, plot_histograms

    fixed = dict(depth=depth, activation=activation, init=init, norm=norm, residual=residual)
    makers = {
        "depth": lambda: slider(depth, 1, max_depth, 1, "depth", integer=True),
        "activation": lambda: dropdown(
            [a for a in ACTIVATIONS if a != "swish"], activation, "activation"
        ),
        "init": lambda: dropdown([i for i in INITS if i != "zeros"], init, "init"),
        "norm": lambda: dropdown(
            [("none", None), ("batch", "batch"), ("layer", "layer")], norm, "norm"
        ),
        "residual": lambda: checkbox(residual, "skip connections"),
    }
    if isinstance(controls, str) or not all(isinstance(c, str) for c in controls):
        raise TypeError(
            f"controls must be a tuple of names among {sorted(makers)}; got {controls!r}"
        )
    unknown = set(controls) - set(makers)
    if unknown:
        raise ValueError(f"controls must be among {sorted(makers)}; got {sorted(unknown)}")
    widgets_ = {name: makers[name]() for name in controls}
    state: dict[str, Any] = {}

    @lru_cache(maxsize=128)
    def compute(depth: int, activation: str, init: str, norm: str | None, residual: bool):
        norms, samples, probe = gradient_flow(
            width=width,
            data=data,
            depth=depth,
            activation=activation,
            init=init,
            norm=norm,
            residual=residual,
            device=device,
        )
        shown = dict(list(samples.items())[:: max(1, len(samples) // 8)])
        sat = max((r.saturated for r in probe.activations.values()), default=0.0)
        dead = max((r.dead for r in probe.activations.values()), default=0.0)
        return norms, shown, sat, dead

    def update(axes, **values):
        config = {**fixed, **values}
        config["depth"] = int(config["depth"])
        norms, shown, sat, dead = compute(**config)
        state.update(config=config, norms=norms, samples=shown, saturated=sat, dead=dead)
        for ax in axes:
            clear_data(ax)
        plot_histograms(shown, ax=axes[0], title="activations per layer", xlabel="activation value")
        plot_grad_norms(norms, ax=axes[1])
        ratio = norms[0] / norms[-1] if norms[-1] > 0 else float("nan")
        return (
            f"layer 1 / layer {len(norms)} gradient norm: {ratio:.3g} | "
            f"max saturated: {sat:.0%} | max dead: {dead:.0%}"
        )

    return Explorer(
        update,
        widgets_,
        caption=caption
        or "raise the depth, then switch the activation "
        "or init and watch the gradient norm of layer 1 against the last layer.",
        title=title,
        clear=False,  # update re-plots on the kept axes (see clear_data)
        state=state,
    )
