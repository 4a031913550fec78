"""vgcourse: the helper package of a hands-on course on vanishing and exploding gradients.

The public API (a stable contract; see the course design):

>>> import vgcourse as vg
>>> device, scale = vg.setup(seed=0)
>>> net = vg.mlp(2, 2, depth=9, width=10, activation="sigmoid", init="standard")
>>> X, y = vg.data.moons(250, 0.05, seed=42)
>>> vg.layer_grad_norms(net, X, y)          # one gradient norm per hidden layer, input -> output
>>> history = vg.fit(net, (X, y), steps=700, lr=1e-3, batch_size=32)

The package has three layers, one folder each:

* ``vgcourse/`` (this folder): the toolkit a practitioner imports: device, activations, inits,
  models, data, losses, train, probes, diagnosis, sweeps, plots, widgets, ...
* ``vgcourse/lessons/``: the code of one lesson each, ``lessonNN_<topic>.py`` for notebook
  ``NN_<topic>.ipynb``; they import the toolkit, never the other way round.
* ``vgcourse/course/``: the course tooling: the ``vgcourse`` command, the nbgrader workflow,
  notebook tools and exercise checks.

Submodules and the names below load on first use (PEP 562 ``__getattr__``), so ``import vgcourse``
costs little beyond ``import torch`` and matplotlib, scikit-learn and ipywidgets are imported only by
what needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the submodule (relative to this package) that defines it
_NAMES: dict[str, str] = {
    "ACTIVATIONS": "activations",
    "activation": "activations",
    "ClaimError": "claims",
    "claim": "claims",
    "by_scale": "device",
    "get_device": "device",
    "scale": "device",
    "seed_everything": "device",
    "setup": "device",
    "DiagnosisReport": "diagnosis",
    "diagnose": "diagnosis",
    "Monitor": "monitoring",
    "monitor": "monitoring",
    "INITS": "inits",
    "init_": "inits",
    "LOSSES": "losses",
    "mlp": "models",
    "rnn_model": "models",
    "weight_layers": "models",
    "Probe": "probes",
    "probe_model": "probes",
    "OPTIMIZERS": "train",
    "History": "history",
    "epochs_to_steps": "train",
    "evaluate": "train",
    "fit": "train",
    "layer_grad_norms": "train",
}

#: submodules reachable as attributes (``vg.data``, ``vg.plots``, ...), relative to this package
_SUBMODULES: dict[str, str] = {
    name: name
    for name in (
        "activations",
        "batched",
        "claims",
        "data",
        "device",
        "diagnosis",
        "gradcheck",
        "history",
        "inits",
        "jacobians",
        "losses",
        "models",
        "monitoring",
        "plots",
        "probes",
        "sweeps",
        "train",
        "widgets",
        "lessons",
        "course",
    )
}
_SUBMODULES["checks"] = "course.checks"

__all__ = sorted([*_NAMES, *_SUBMODULES])


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        value = getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{_SUBMODULES[name]}", __name__)
    else:
        raise AttributeError(f"module 'vgcourse' has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from . import (  # noqa: F401
        activations,
        batched,
        claims,
        data,
        device,
        diagnosis,
        gradcheck,
        inits,
        jacobians,
        losses,
        models,
        monitoring,
        plots,
        probes,
        sweeps,
        train,
        widgets,
    )
    from .activations import ACTIVATIONS, activation  # noqa: F401
    from .claims import ClaimError, claim  # noqa: F401
    from .course import checks  # noqa: F401
    from .device import by_scale, get_device, scale, seed_everything, setup  # noqa: F401
    from .diagnosis import DiagnosisReport, diagnose  # noqa: F401
    from .inits import INITS, init_  # noqa: F401
    from .losses import LOSSES  # noqa: F401
    from .models import mlp, rnn_model, weight_layers  # noqa: F401
    from .monitoring import Monitor, monitor  # noqa: F401
    from .probes import Probe, probe_model  # noqa: F401
    from .train import (  # noqa: F401
        OPTIMIZERS,
        History,
        epochs_to_steps,
        evaluate,
        fit,
        layer_grad_norms,
    )
