r"""The configurations of a sweep: :func:`grid` (every combination of some settings), the defaults, each
configuration checked and completed, and :func:`build_model` (the seeded ``vg.mlp`` a configuration
describes, the starting point of its batched training)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ._validate import check_choice, check_int, check_positive
from .activations import canonical_name
from .batched import build_module
from .inits import INITS
from .models import NORMS

#: Keys a configuration may set, with their defaults.
CONFIG_DEFAULTS: dict[str, Any] = {
    "depth": 3,
    "width": 32,
    "activation": "relu",
    "init": "kaiming_normal",
    "init_kw": None,
    "norm": None,  # None, "batch" or "layer", as in vgcourse.mlp
    "residual": False,
    "residual_scale": 1.0,
    "lr": 1e-3,
    "seed": 0,
    "data_seed": None,  # None: same as seed
    "label": None,
}


def grid(**axes: Sequence[Any]) -> list[dict]:
    """Every combination of the given values: ``grid(activation=["relu", "tanh"], seed=[0, 1])``."""
    configs: list[dict] = [{}]
    for key, values in axes.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise TypeError(f"grid axis {key!r} must be a list of values, got {values!r}")
        configs = [{**c, key: v} for c in configs for v in values]
    return configs


def _normalise(config: Mapping[str, Any], index: int, *, batched: bool = True) -> dict:
    if not isinstance(config, Mapping):
        raise TypeError(f"configs[{index}] must be a dict, got {type(config).__name__}")
    unknown = set(config) - set(CONFIG_DEFAULTS)
    if unknown:
        raise ValueError(
            f"configs[{index}] has unknown key(s) {sorted(unknown)}; allowed: {sorted(CONFIG_DEFAULTS)}"
        )
    cfg = {**CONFIG_DEFAULTS, **config}
    cfg["depth"] = check_int(f"configs[{index}]['depth']", cfg["depth"], minimum=1)
    cfg["width"] = check_int(f"configs[{index}]['width']", cfg["width"], minimum=1)
    if canonical_name(cfg["activation"]) == "prelu" and batched:
        raise ValueError(
            f"configs[{index}]['activation']: prelu has a learnable slope that the batched engine does not "
            "train; use vgcourse.fit for PReLU models"
        )
    check_choice(f"configs[{index}]['init']", cfg["init"], (None, *INITS))
    check_choice(f"configs[{index}]['norm']", cfg["norm"], NORMS)
    if not isinstance(cfg["residual"], bool):
        raise TypeError(
            f"configs[{index}]['residual'] must be True or False, got {cfg['residual']!r}"
        )
    cfg["residual_scale"] = check_positive(
        f"configs[{index}]['residual_scale']", cfg["residual_scale"]
    )
    cfg["lr"] = check_positive(f"configs[{index}]['lr']", cfg["lr"])
    cfg["seed"] = check_int(f"configs[{index}]['seed']", cfg["seed"], minimum=0)
    if cfg["data_seed"] is None:
        cfg["data_seed"] = cfg["seed"]
    if cfg["label"] is None:
        cfg["label"] = (
            " ".join(f"{k}={config[k]}" for k in config if k not in ("label", "init_kw"))
            or f"config {index}"
        )
    return cfg


def build_model(config: Mapping[str, Any], in_features: int, out_features: int) -> torch.nn.Module:
    """The :func:`vgcourse.mlp` a sweep configuration describes, with the initial weights its seed gives.

    This is the model a sweep starts from (and :meth:`SweepResult.model` returns trained): use it to
    measure a configuration at initialization, or to train it alone with :func:`vgcourse.fit`.
    """
    in_features = check_int("in_features", in_features, minimum=1)
    out_features = check_int("out_features", out_features, minimum=1)
    return build_module(_normalise(config, 0, batched=False), in_features, out_features)
