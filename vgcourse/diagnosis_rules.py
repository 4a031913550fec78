r"""The verdicts of :func:`vgcourse.diagnose`: thresholds, the fix each problem names, and the rules that
turn a report's measurements into findings.

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

import math

import numpy as np

from .diagnosis_report import DiagnosisReport, Finding

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
