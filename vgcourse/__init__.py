"""vgcourse: the helper package of a hands-on course on vanishing and exploding gradients.

The public API (a stable contract; see the course design):

>>> import vgcourse as vg
>>> device, scale = vg.setup(seed=0)
>>> net = vg.mlp(2, 2, depth=9, width=10, activation="sigmoid", init="standard")
>>> X, y = vg.data.moons(250, 0.05, seed=42)
>>> vg.layer_grad_norms(net, X, y)          # one gradient norm per hidden layer, input -> output
>>> history = vg.fit(net, (X, y), steps=700, lr=1e-3, batch_size=32)
"""

from . import (
    activations,
    backprop,
    batched,
    checks,
    data,
    diagnosis,
    gradcheck,
    inits,
    jacobians,
    losses,
    models,
    plots,
    probes,
    sweeps,
    train,
    widgets,
)
from .activations import ACTIVATIONS, activation
from .device import by_scale, get_device, scale, seed_everything, setup
from .diagnosis import DiagnosisReport, diagnose
from .inits import INITS, init_
from .losses import LOSSES
from .models import mlp, rnn_model, weight_layers
from .probes import Probe, probe_model
from .train import OPTIMIZERS, History, epochs_to_steps, evaluate, fit, layer_grad_norms

__version__ = "0.1.0"

__all__ = [
    "activation",
    "ACTIVATIONS",
    "activations",
    "backprop",
    "batched",
    "by_scale",
    "checks",
    "data",
    "diagnose",
    "diagnosis",
    "DiagnosisReport",
    "epochs_to_steps",
    "evaluate",
    "fit",
    "get_device",
    "History",
    "gradcheck",
    "init_",
    "inits",
    "INITS",
    "jacobians",
    "layer_grad_norms",
    "LOSSES",
    "losses",
    "mlp",
    "models",
    "OPTIMIZERS",
    "plots",
    "Probe",
    "probe_model",
    "probes",
    "rnn_model",
    "scale",
    "seed_everything",
    "setup",
    "sweeps",
    "train",
    "weight_layers",
    "widgets",
]
