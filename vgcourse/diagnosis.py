r"""A gradient-flow check-up for any PyTorch model: ``report = vg.diagnose(model, X, y)``.

The model is run for a few forward/backward passes under a :class:`vgcourse.probes.Probe`, which
hooks every parameterised layer (Linear, Conv, RNN/LSTM/GRU, any module owning a weight matrix) and
every activation module. Optionally a copy of the model is trained for a few steps to measure how
much each step changes the weights. The report lists per-layer statistics and names the problems it
finds, each with the evidence and the fix.

Thresholds, and why
-------------------
Layer sizes differ, so gradient sizes are compared as the **RMS gradient per weight**,
:math:`\|\nabla W_\ell\| / \sqrt{|W_\ell|}`. Variance-preserving initializations keep it roughly
constant across layers (Glorot & Bengio 2010, sec. 4.2; He et al. 2015, sec. 2.2), and healthy
nets seen in the lessons stay within a factor of about 10 from layer to layer.

* **vanishing gradients**: the RMS gradient of the first weight layer is below
  :data:`VANISHING_RATIO` (:math:`10^{-3}`) times the largest of the later layers. Three orders of
  magnitude means the first layers learn a thousand times slower under SGD (lesson 02).
* **exploding gradients**: a non-finite gradient, or the first layer's RMS gradient above
  :data:`EXPLODING_RATIO` (:math:`10^{3}`) times the last layer's (lesson 08).
* **gradients vanished everywhere / exploded everywhere**: the median grad:data ratio
  :math:`\|\nabla W\|/\|W\|` over the layers is below :data:`GRAD_TO_DATA_TINY` (:math:`10^{-7}`) or
  above :data:`GRAD_TO_DATA_HUGE` (10). Under SGD the update:data ratio is the learning rate times
  this ratio; with usual rates (:math:`10^{-2}`-:math:`10^{-1}`) the first means nothing moves and
  the second means one step rewrites the weights (healthy He-initialised nets in lesson 04 sit near
  :math:`10^{-2}`-:math:`10^{-1}`).
* **vanishing through time** (recurrent models, input of shape (batch, T, features)): the gradient
  reaching the first time step's input is below :math:`10^{-3}` of the last step's (lesson 07).
* **saturation**: more than :data:`SATURATED_FRACTION` (50%) of a sigmoid/tanh-like layer's units
  pass back less than 10% of their maximal derivative (Glorot & Bengio 2010, sec. 3; lesson 03).
* **dead units**: more than :data:`DEAD_FRACTION` (50%) of a ReLU layer's units are zero for the
  whole batch, so they get no gradient at all (lesson 03).
* **bad init scale**: the activation standard deviation changes by more than a factor of
  :data:`SCALE_DRIFT` (10) from the first to the last activation layer: the forward signal
  shrinks or grows layer by layer instead of keeping its variance (He et al. 2015; lesson 04).
* **non-finite loss**: the loss itself is NaN or Inf at the current weights.
* **update too large / too small** (with ``train_steps``): the median update:data ratio
  :math:`\|\Delta W\|/\|W\|` per step is above :data:`UPDATE_TOO_LARGE` (:math:`10^{-1}`: each step
  rewrites a tenth of the weights, which diverges or thrashes) or below :data:`UPDATE_TOO_SMALL`
  (:math:`10^{-6}`: nothing moves). Karpathy's rule of thumb puts healthy values near :math:`10^{-3}`.
"""

from __future__ import annotations

import base64
import copy
import html
import io
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ._validate import check_int, check_module, check_positive, check_tensor
from .losses import LossSpec, get_loss
from .models import model_device
from .probes import Probe
from .train import make_optimizer

VANISHING_RATIO = 1e-3
EXPLODING_RATIO = 1e3
GRAD_TO_DATA_TINY = 1e-7
GRAD_TO_DATA_HUGE = 10.0
SATURATED_FRACTION = 0.5
DEAD_FRACTION = 0.5
SCALE_DRIFT = 10.0
UPDATE_TOO_LARGE = 1e-1
UPDATE_TOO_SMALL = 1e-6

FIXES = {
    "vanishing_gradients": "use ReLU-family activations with He init (lessons 03-04), add batch norm (05) or "
    "skip connections (06), or make the network shallower",
    "exploding_gradients": "lower the learning rate, clip the gradient norm (lesson 08), and use a "
    "variance-preserving init (lesson 04)",
    "vanishing_through_time": "use an LSTM or GRU instead of a vanilla RNN (lesson 07), or shorten the lag",
    "vanishing_through_time_gated": "set the LSTM forget-gate bias to 1 or more (vg.models.set_forget_bias_; "
    "Jozefowicz et al. 2015), and rerun the diagnosis after some training: gated cells learn to keep "
    "their gates open (lesson 07)",
    "saturation": "switch sigmoid/tanh hidden units to ReLU-family ones (lesson 03), use Xavier init for "
    "tanh (lesson 04) or batch norm before the activation (lesson 05)",
    "dead_units": "lower the learning rate, use Leaky ReLU / ELU (lesson 03), or He init with zero biases (lesson 04)",
    "bad_init_scale": "initialise with a variance-preserving scheme: vg.init_(model, 'kaiming_normal') for ReLU, "
    "'xavier_uniform' for tanh, 'lecun_normal' for SELU (lesson 04)",
    "non_finite_loss": "check the data for NaN/Inf, lower the learning rate, clip gradients (lesson 08)",
    "update_too_large": "lower the learning rate (or clip gradients, lesson 08)",
    "update_too_small": "raise the learning rate, or fix vanishing gradients first",
}


@dataclass
class Finding:
    """One problem the diagnosis found: what, how sure, where, the evidence and the fix."""

    problem: str
    severity: str  # "error" or "warning"
    layers: list[str]
    evidence: str
    fix: str

    def __str__(self) -> str:
        where = (
            f" [{', '.join(self.layers[:4])}{', ...' if len(self.layers) > 4 else ''}]"
            if self.layers
            else ""
        )
        return f"{self.severity.upper()}: {self.problem.replace('_', ' ')}{where}: {self.evidence}. Fix: {self.fix}."


@dataclass
class DiagnosisReport:
    """What :func:`diagnose` measured and concluded.

    ``layers``: one dict per weight layer, input -> output (name, module, params, grad_norm,
    grad_rms, grad_to_data, update_to_data); ``activations``: one dict per activation layer (name,
    activation, mean, std, saturated, dead); ``findings``: the problems found; ``loss``: the mean
    loss over the passes; ``time_grad_ratio``: for recurrent inputs, first/last time step gradient.
    """

    loss: float
    layers: list[dict]
    activations: list[dict]
    findings: list[Finding] = field(default_factory=list)
    time_grad_ratio: float | None = None
    gated: bool = False

    @property
    def healthy(self) -> bool:
        """True when no problem was found."""
        return not self.findings

    @property
    def problems(self) -> list[str]:
        """The names of the problems found (e.g. ``["vanishing_gradients", "saturation"]``)."""
        return [f.problem for f in self.findings]

    def to_dict(self) -> dict[str, Any]:
        """Plain Python structure (lists, dicts, floats, strings) for programs and JSON."""
        return {
            "loss": self.loss,
            "healthy": self.healthy,
            "layers": [dict(r) for r in self.layers],
            "activations": [dict(r) for r in self.activations],
            "findings": [vars(f).copy() for f in self.findings],
            "time_grad_ratio": self.time_grad_ratio,
        }

    def _table_rows(self) -> tuple[list[str], list[list[str]]]:
        head = ["layer", "module", "params", "grad norm", "grad rms", "grad:data", "update:data"]
        rows = [
            [
                r["name"],
                r["module"],
                str(r["params"]),
                _fmt(r["grad_norm"]),
                _fmt(r["grad_rms"]),
                _fmt(r["grad_to_data"]),
                _fmt(r["update_to_data"]),
            ]
            for r in self.layers
        ]
        return head, rows

    def __str__(self) -> str:
        head, rows = self._table_rows()
        lines = [f"Gradient-flow diagnosis (loss {self.loss:.4g})", _text_table(head, rows)]
        if self.activations:
            ahead = ["activation layer", "type", "mean", "std", "saturated", "dead"]
            arows = [
                [
                    a["name"],
                    a["activation"],
                    _fmt(a["mean"]),
                    _fmt(a["std"]),
                    f"{a['saturated']:.0%}",
                    f"{a['dead']:.0%}",
                ]
                for a in self.activations
            ]
            lines.append(_text_table(ahead, arows))
        if self.time_grad_ratio is not None:
            lines.append(
                f"gradient at the first time step / last time step: {self.time_grad_ratio:.3g}"
            )
        lines.append("Verdict: healthy, no problem found." if self.healthy else "Verdict:")
        lines.extend(f"  - {f}" for f in self.findings)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"DiagnosisReport(loss={self.loss:.4g}, problems={self.problems})"

    def plot(self, ax=None):
        """Gradient RMS per weight layer on a log scale, flagged layers in red."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.2))
        values = np.array([r["grad_rms"] for r in self.layers], dtype=float)
        x = np.arange(1, len(values) + 1)
        ax.plot(x, np.where(values > 0, values, np.nan), "o-", ms=4)
        flagged = {name for f in self.findings for name in f.layers}
        for i, r in enumerate(self.layers):
            if r["name"] in flagged:
                ax.plot([x[i]], [values[i]], "o", color="tab:red", ms=7)
        ax.set_yscale("log")
        ax.set_xticks(x)
        ax.set_xticklabels([r["name"] for r in self.layers], rotation=60, ha="right", fontsize=7)
        ax.set_xlabel("weight layer (input -> output)")
        ax.set_ylabel("RMS gradient per weight")
        ax.set_title("Gradient flow" + ("" if self.healthy else ": " + ", ".join(self.problems)))
        ax.grid(True, which="both", alpha=0.3)
        return ax

    def _repr_html_(self) -> str:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6, 3.2), dpi=80, layout="constrained")
        self.plot(fig.subplots())
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        img = base64.b64encode(buf.getvalue()).decode()
        head, rows = self._table_rows()
        table = "<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"
        table += "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
        )
        table += "</table>"
        if self.healthy:
            verdict = "<p><b>Verdict:</b> healthy, no problem found.</p>"
        else:
            items = "".join(
                f"<li><b style='color:{'#b00' if f.severity == 'error' else '#a60'}'>{html.escape(f.problem.replace('_', ' '))}</b>"
                f": {html.escape(f.evidence)}. <i>Fix:</i> {html.escape(f.fix)}.</li>"
                for f in self.findings
            )
            verdict = f"<p><b>Verdict:</b></p><ul>{items}</ul>"
        return (
            f"<div><p><b>Gradient-flow diagnosis</b> (loss {self.loss:.4g})</p>{verdict}"
            f"<div style='display:flex;gap:1em;align-items:flex-start'>{table}"
            f"<img src='data:image/png;base64,{img}'/></div></div>"
        )


def _fmt(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.3g}"


def _text_table(head: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)
    ]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(
        [fmt.format(*head), fmt.format(*("-" * w for w in widths)), *(fmt.format(*r) for r in rows)]
    )


def _forward(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    try:
        return model(X)
    except (RuntimeError, ValueError, IndexError) as err:
        raise ValueError(f"X of shape {tuple(X.shape)} does not fit the model: {err}") from None


def _loss_value(loss_fn, out, y, X_shape: tuple, y_shape: tuple) -> torch.Tensor:
    """The loss of one pass; a failure names the caller's X and y shapes and chains the loss's error."""
    try:
        value = loss_fn(out, y)
    except (RuntimeError, ValueError, IndexError) as err:
        raise ValueError(
            f"the loss cannot compare the model's output with y (your X has shape {X_shape} and y "
            f"shape {y_shape}; on this pass the output has shape {tuple(out.shape)} and y "
            f"{tuple(y.shape)}): {err}"
        ) from err
    if not isinstance(value, torch.Tensor) or value.ndim != 0:
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(f"loss must return a scalar tensor, got {shape}")
    return value


def diagnose(
    model: nn.Module,
    X: torch.Tensor | tuple | list,
    y: torch.Tensor | None = None,
    loss: LossSpec = "cross_entropy",
    *,
    passes: int = 3,
    train_steps: int = 0,
    lr: float = 1e-3,
    optimizer: str = "adam",
    clip_norm: float | None = None,
) -> DiagnosisReport:
    """Diagnose the gradient flow of ``model`` on a batch and return a :class:`DiagnosisReport`.

    ``X, y`` is a batch (or pass ``X=(X, y)``, e.g. a batch from a DataLoader); ``loss`` is a
    name (``"cross_entropy"``, ``"bce"``, ``"mse"``) or any ``loss(output, y) -> scalar``. The
    batch is split into ``passes`` parts and the statistics are averaged. With ``train_steps`` > 0,
    a *copy* of the model is trained that many steps (``optimizer``, ``lr``) to measure the
    update:data ratios (clipping the gradient norm to ``clip_norm`` first, as
    :func:`vgcourse.fit` would); the model itself is never changed (its gradients are cleared).
    Thresholds are documented in this module's docstring.
    """
    check_module("model", model)
    if isinstance(X, (tuple, list)):
        if y is not None or len(X) != 2:
            raise TypeError("pass either X and y, or one (X, y) batch as X")
        X, y = X
    X = check_tensor("X", X)
    if y is None:
        raise TypeError("y is required: the diagnosis needs a loss to back-propagate")
    y = check_tensor("y", y)
    if X.ndim == 0 or y.ndim == 0 or X.shape[0] != y.shape[0]:
        raise ValueError(
            f"X and y must have the same number of rows; got shapes {tuple(X.shape)} and {tuple(y.shape)}"
        )
    passes = check_int("passes", passes, minimum=1)
    train_steps = check_int("train_steps", train_steps, minimum=0)
    lr = check_positive("lr", lr)
    if clip_norm is not None:
        clip_norm = check_positive("clip_norm", clip_norm)
    loss_fn = get_loss(loss)
    device = model_device(model)
    X, y = X.to(device), y.to(device)
    passes = min(passes, X.shape[0])

    was_training = model.training
    model.train()
    weight_acc: dict[str, list] = {}
    act_acc: dict[str, list] = {}
    losses = []
    time_grads = []
    recurrent = X.ndim == 3 and any(isinstance(m, nn.RNNBase) for m in model.modules())
    try:
        for chunk_X, chunk_y in zip(torch.tensor_split(X, passes), torch.tensor_split(y, passes)):
            model.zero_grad(set_to_none=True)
            inp = chunk_X.clone().requires_grad_(recurrent and chunk_X.is_floating_point())
            with Probe(model) as probe:
                value = _loss_value(
                    loss_fn, _forward(model, inp), chunk_y, tuple(X.shape), tuple(y.shape)
                )
                losses.append(float(value.detach()))
                if math.isfinite(losses[-1]):
                    value.backward()
            if recurrent and inp.grad is not None:
                time_grads.append(inp.grad.detach().norm(dim=(0, 2)).cpu())
            for name, r in probe.weights.items():
                weight_acc.setdefault(name, []).append(r)
            for name, r in probe.activations.items():
                act_acc.setdefault(name, []).append(r)
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)

    modules = dict(model.named_modules())
    layers = []
    for name, recs in weight_acc.items():
        module = modules.get(name.split("#")[0]) if name != "model" else model
        n_params = (
            sum(
                p.numel()
                for n, p in module.named_parameters(recurse=False)
                if n.startswith("weight") and p.ndim >= 2
            )
            if module is not None
            else 0
        )
        grad = float(np.mean([r.grad_norm for r in recs]))
        layers.append(
            {
                "name": name,
                "module": recs[0].module,
                "params": n_params,
                "grad_norm": grad,
                "grad_rms": grad / math.sqrt(n_params) if n_params else float("nan"),
                "grad_to_data": float(np.mean([r.grad_to_data for r in recs])),
                "weight_norm": recs[0].weight_norm,
                "update_to_data": float("nan"),
            }
        )
    activations = [
        {
            "name": name,
            "activation": recs[0].activation,
            "mean": float(np.mean([r.mean for r in recs])),
            "std": float(np.mean([r.std for r in recs])),
            "saturated": float(np.mean([r.saturated for r in recs])),
            "dead": float(np.mean([r.dead for r in recs])),
        }
        for name, recs in act_acc.items()
    ]
    if train_steps and all(math.isfinite(v) for v in losses):
        _measure_updates(model, X, y, loss_fn, layers, train_steps, lr, optimizer, clip_norm)
    ratio = None
    if time_grads:
        g = torch.stack(time_grads).mean(0)
        ratio = float(g[0] / g[-1]) if float(g[-1]) > 0 else float("nan")
    gated = any(isinstance(m, (nn.LSTM, nn.GRU)) for m in model.modules())
    report = DiagnosisReport(
        loss=float(np.mean(losses)),
        layers=layers,
        activations=activations,
        time_grad_ratio=ratio,
        gated=gated,
    )
    report.findings = _findings(report, train_steps > 0)
    return report


def _measure_updates(model, X, y, loss_fn, layers, steps, lr, optimizer, clip_norm=None) -> None:
    clone = copy.deepcopy(model)
    clone.train()
    opt = make_optimizer(optimizer, clone.parameters(), lr)
    probe = Probe(clone)
    ratios: dict[str, list[float]] = {}
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss_fn(clone(X), y).backward()
        if clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(clone.parameters(), clip_norm)
        probe.snapshot_weights()
        opt.step()
        for name, r in probe.update_ratios().items():
            ratios.setdefault(name, []).append(r)
    for row in layers:
        if row["name"] in ratios:
            row["update_to_data"] = float(np.median(ratios[row["name"]]))


def _findings(report: DiagnosisReport, trained: bool) -> list[Finding]:
    found: list[Finding] = []
    layers = report.layers
    if not math.isfinite(report.loss):
        found.append(
            Finding(
                "non_finite_loss",
                "error",
                [],
                f"the loss is {report.loss} at the current weights",
                FIXES["non_finite_loss"],
            )
        )
        return found
    rms = np.array([r["grad_rms"] for r in layers], dtype=float)
    bad = [r["name"] for r in layers if not math.isfinite(r["grad_norm"])]
    if bad:
        found.append(
            Finding(
                "exploding_gradients",
                "error",
                bad,
                "non-finite gradients",
                FIXES["exploding_gradients"],
            )
        )
    elif len(rms) >= 2 and np.all(np.isfinite(rms)):
        later = rms[1:].max()
        if later > 0 and rms[0] < VANISHING_RATIO * later:
            weak = [r["name"] for r, v in zip(layers, rms) if v < VANISHING_RATIO * later]
            found.append(
                Finding(
                    "vanishing_gradients",
                    "error",
                    weak,
                    f"RMS gradient of the first layer is {rms[0] / later:.1e} of the largest later layer's "
                    f"(threshold {VANISHING_RATIO:g})",
                    FIXES["vanishing_gradients"],
                )
            )
        if rms[-1] > 0 and rms[0] > EXPLODING_RATIO * rms[-1]:
            found.append(
                Finding(
                    "exploding_gradients",
                    "error",
                    [layers[0]["name"]],
                    f"RMS gradient of the first layer is {rms[0] / rms[-1]:.1e} times the last layer's "
                    f"(threshold {EXPLODING_RATIO:g})",
                    FIXES["exploding_gradients"],
                )
            )
    g2d = np.array([r["grad_to_data"] for r in layers], dtype=float)
    if not bad and g2d.size and np.all(np.isfinite(g2d)):
        median = float(np.median(g2d))
        if median < GRAD_TO_DATA_TINY and "vanishing_gradients" not in [f.problem for f in found]:
            found.append(
                Finding(
                    "vanishing_gradients",
                    "error",
                    [r["name"] for r in layers],
                    f"the median grad:data ratio is {median:.1e} (threshold {GRAD_TO_DATA_TINY:g}): "
                    "the gradient has vanished in every layer",
                    FIXES["vanishing_gradients"],
                )
            )
        if median > GRAD_TO_DATA_HUGE and "exploding_gradients" not in [f.problem for f in found]:
            found.append(
                Finding(
                    "exploding_gradients",
                    "error",
                    [r["name"] for r in layers],
                    f"the median grad:data ratio is {median:.1e} (threshold {GRAD_TO_DATA_HUGE:g}): "
                    "one SGD step would rewrite the weights",
                    FIXES["exploding_gradients"],
                )
            )
    if report.time_grad_ratio is not None and report.time_grad_ratio < VANISHING_RATIO:
        found.append(
            Finding(
                "vanishing_through_time",
                "error",
                [],
                f"the gradient reaching the first time step is {report.time_grad_ratio:.1e} of the last "
                f"step's (threshold {VANISHING_RATIO:g})",
                FIXES["vanishing_through_time_gated" if report.gated else "vanishing_through_time"],
            )
        )
    sat = [a for a in report.activations if a["saturated"] > SATURATED_FRACTION]
    if sat:
        worst = max(a["saturated"] for a in sat)
        found.append(
            Finding(
                "saturation",
                "warning",
                [a["name"] for a in sat],
                f"up to {worst:.0%} of the units are saturated (threshold {SATURATED_FRACTION:.0%})",
                FIXES["saturation"],
            )
        )
    dead = [a for a in report.activations if a["dead"] > DEAD_FRACTION]
    if dead:
        worst = max(a["dead"] for a in dead)
        found.append(
            Finding(
                "dead_units",
                "error" if worst > 0.9 else "warning",
                [a["name"] for a in dead],
                f"up to {worst:.0%} of the units never fire on this batch (threshold {DEAD_FRACTION:.0%})",
                FIXES["dead_units"],
            )
        )
    stds = [a["std"] for a in report.activations if a["activation"] not in ("sigmoid",)]
    if len(stds) >= 2 and stds[0] > 0 and all(math.isfinite(s) for s in stds):
        drift = stds[-1] / stds[0]
        if drift < 1 / SCALE_DRIFT or drift > SCALE_DRIFT:
            direction = "shrinks" if drift < 1 else "grows"
            found.append(
                Finding(
                    "bad_init_scale",
                    "warning",
                    [report.activations[-1]["name"]],
                    f"the activation std {direction} {drift:.2g}x from the first to the last activation layer "
                    f"(threshold {SCALE_DRIFT:g}x)",
                    FIXES["bad_init_scale"],
                )
            )
    if trained:
        ups = np.array([r["update_to_data"] for r in layers if math.isfinite(r["update_to_data"])])
        if ups.size:
            med = float(np.median(ups))
            if med > UPDATE_TOO_LARGE:
                found.append(
                    Finding(
                        "update_too_large",
                        "warning",
                        [],
                        f"median update:data ratio {med:.2g} per step "
                        f"(threshold {UPDATE_TOO_LARGE:g}; healthy ~1e-3)",
                        FIXES["update_too_large"],
                    )
                )
            elif med < UPDATE_TOO_SMALL:
                found.append(
                    Finding(
                        "update_too_small",
                        "warning",
                        [],
                        f"median update:data ratio {med:.2g} per step "
                        f"(threshold {UPDATE_TOO_SMALL:g}; healthy ~1e-3)",
                        FIXES["update_too_small"],
                    )
                )
    return found
