r"""The verdicts of :func:`vgcourse.diagnose`: thresholds, the fix each problem names, and the rules that
turn a report's measurements into findings.

Thresholds, and why
-------------------
Layer sizes differ, so gradient sizes are compared as the **RMS gradient per weight**,
:math:`\|\nabla W_\ell\| / \sqrt{|W_\ell|}`. Variance-preserving initializations keep it roughly
constant across layers (Glorot & Bengio 2010, sec. 4.2; He et al. 2015, sec. 2.2), and healthy
nets seen in the lessons stay within a factor of about 10 from layer to layer.

* **vanishing gradients**: the RMS gradient of a layer is below :data:`VANISHING_RATIO`
  (:math:`10^{-3}`) times the largest of the layers *of the same role* called after it (nearer the
  loss). Every layer is compared, not only the first: a middle layer at :math:`10^{-9}` is flagged.
  Three orders of magnitude means the layer learns a thousand times slower under SGD (lesson 02).
  Vanishing is a depth effect, so a layer is compared with its own kind further on: layers of the
  same module type whose names differ only in their indices (``blocks.0.attn.query`` and
  ``blocks.5.attn.query``; ``net.0`` and ``net.6``), see :func:`layer_role`. Layers of different
  roles differ in gradient size at any depth: at initialization every block of a transformer gives
  its query and key projections gradients about 100 times smaller than its value projection,
  because :math:`\partial L/\partial W_Q` passes through :math:`K = XW_K` and the keys are small
  when :math:`W_K` is (BERT's init, std 0.02), which is not vanishing. A layer with no
  other layer of its role is compared with every layer after it. Layers whose gradient is exactly
  zero (a zero-initialised residual branch) and frozen or unused parameters are left out of the
  comparison and listed in the report.
* **exploding gradients**: a non-finite gradient, or the first layer's RMS gradient above
  :data:`EXPLODING_RATIO` (:math:`10^{3}`) times the last layer's (lesson 08), or a median
  grad:data ratio above :data:`GRAD_TO_DATA_HUGE` (below). A plain deep network *with* BatchNorm
  is told to add skip connections: its gradients grow with depth at initialization whatever the
  learning rate (Yang et al. 2019, "A Mean Field Theory of Batch Normalization"; lesson 06).
* **gradients vanished everywhere / exploded everywhere**: the median grad:data ratio
  :math:`\|\nabla W\|/\|W\|` over the layers is below :data:`GRAD_TO_DATA_TINY` (:math:`10^{-7}`) or
  above :data:`GRAD_TO_DATA_HUGE` (10). Under SGD the update:data ratio is the learning rate times
  this ratio; with usual rates (:math:`10^{-2}`-:math:`10^{-1}`) the first means nothing moves and
  the second means one step rewrites the weights (healthy He-initialised nets in lesson 04 sit near
  :math:`10^{-2}`-:math:`10^{-1}`). Layers followed by a normalization layer are left out of the
  median: their output is rescaled, so their gradient scales as :math:`1/\|W\|` and a large
  grad:data ratio only shrinks their effective step (van Laarhoven 2017; Hoffer et al. 2018). When
  fewer than half the layers remain, the median check is skipped.
* **vanishing through time** (recurrent models): the gradient reaching the first recurrent
  layer's input at the first time step is below :math:`10^{-3}` of the last step's (lesson 07). The
  fix depends on the cell: an LSTM's forget-gate bias (Jozefowicz et al. 2015), a GRU's update
  gate (chrono initialization, Tallec & Ollivier 2018), a vanilla RNN's replacement by a gated one.
* **saturation**: more than :data:`SATURATED_FRACTION` (50%) of a sigmoid/tanh-like layer's units
  pass back less than 10% of their maximal derivative (Glorot & Bengio 2010, sec. 3; lesson 03).
* **dead units**: more than :data:`DEAD_FRACTION` (50%) of a ReLU layer's units are zero for the
  whole batch, so they get no gradient at all (lesson 03).
* **bad init scale**: the activation standard deviation changes by more than a factor of
  :data:`SCALE_DRIFT` (10) from the first to the last activation layer: the forward signal
  shrinks or grows layer by layer instead of keeping its variance (He et al. 2015; lesson 04).
* **bad init scale** advice depends on ``trained``: a trained model is not told to change its
  initialization (its scales were learned), but to normalize.
* **initial loss high** (cross-entropy over :math:`C` classes, model not marked ``trained``): the
  loss is above :data:`INITIAL_LOSS_FACTOR` (2) times :math:`\ln C`, the loss of a model that
  spreads its bets evenly. A fresh model should start near :math:`\ln C`; far above it, the
  output layer is confidently wrong and the first steps are spent undoing it (Karpathy,
  "Building makemore" part 3; lesson 04).
* **non-finite loss**: the loss itself is NaN or Inf at the current weights.
* **nothing measured** / **no gradient**: no weight matrix got a gradient, or every one is exactly
  zero. Never reported as healthy.
* **update too large / too small** (with ``train_steps``): the median update:data ratio
  :math:`\|\Delta W\|/\|W\|` per step is above :data:`UPDATE_TOO_LARGE` (:math:`10^{-1}`: each step
  rewrites a tenth of the weights, which diverges or thrashes) or below :data:`UPDATE_TOO_SMALL`
  (:math:`10^{-6}`: nothing moves). Karpathy's rule of thumb puts healthy values near :math:`10^{-3}`.
  A trial step whose loss or weights become non-finite is reported as **training diverged**, with
  the step.
"""

from __future__ import annotations

import math
import re

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


INITIAL_LOSS_FACTOR = 2.0


FIXES = {
    "vanishing_gradients": "use ReLU-family activations with He init (lessons 03-04), add batch norm (05) or "
    "skip connections (06), or make the network shallower",
    "exploding_gradients": "lower the learning rate, clip the gradient norm (lesson 08), and use a "
    "variance-preserving init (lesson 04)",
    "exploding_gradients_batch_norm": "if the network is plain (no skip connections), add them "
    "(residual blocks, lesson 06): a deep plain network with batch norm has gradients that grow "
    "with depth at initialization whatever the learning rate (Yang et al. 2019), and clipping "
    "(lesson 08) only hides it; otherwise lower the learning rate or clip the gradient norm",
    "exploding_gradients_low_precision": "in float16 the gradients overflowed: use "
    "torch.autocast with a GradScaler, or bfloat16 (lesson 08)",
    "vanishing_through_time": "use an LSTM or GRU instead of a vanilla RNN (lesson 07), or shorten the lag",
    "vanishing_through_time_lstm": "set the LSTM forget-gate bias to 1 or more (vg.models.set_forget_bias_; "
    "Jozefowicz et al. 2015) or use chrono initialization (Tallec & Ollivier 2018), and rerun the "
    "diagnosis after some training: gated cells learn to keep their gates open (lesson 07)",
    "vanishing_through_time_gru": "initialise the GRU's update-gate bias so the gate keeps the state "
    "(chrono initialization, Tallec & Ollivier 2018), and rerun the diagnosis after some training: "
    "gated cells learn to keep their gates open (lesson 07)",
    "saturation": "switch sigmoid/tanh hidden units to ReLU-family ones (lesson 03), use Xavier init for "
    "tanh (lesson 04) or batch norm before the activation (lesson 05)",
    "dead_units": "lower the learning rate, use Leaky ReLU / ELU (lesson 03), or He init with zero biases (lesson 04)",
    "bad_init_scale": "initialise with a variance-preserving scheme: vg.init_(model, 'kaiming_normal') for ReLU, "
    "'xavier_uniform' for tanh, 'lecun_normal' for SELU (lesson 04)",
    "bad_init_scale_trained": "the trained weights set this scale: add normalization layers "
    "(batch or layer norm, lesson 05) rather than changing the initialization",
    "bad_init_scale_unknown": "if the model is freshly initialised, use a variance-preserving scheme "
    "(vg.init_(model, 'kaiming_normal') for ReLU, 'xavier_uniform' for tanh; lesson 04); if it is "
    "trained, add normalization layers (lesson 05); pass trained=True/False for one answer",
    "initial_loss_high": "scale the output layer's weights down (e.g. by 0.1, or zero them) and zero its "
    "bias, so the first predictions are near uniform (lesson 04)",
    "non_finite_loss": "check the data for NaN/Inf, lower the learning rate, clip gradients (lesson 08)",
    "update_too_large": "lower the learning rate (or clip gradients, lesson 08)",
    "update_too_small": "raise the learning rate, or fix vanishing gradients first",
    "training_diverged": "lower the learning rate or clip the gradient norm (clip_norm=, lesson 08)",
    "nothing_measured": "check that the loss depends on the trainable weights (a detached output, "
    "torch.no_grad() in forward, or every weight matrix frozen gives no gradient)",
    "no_gradient": "look for what blocks the gradient: dead ReLU layers (lesson 03), a zero-initialised "
    "layer on the only path to the loss, or an integer/argmax step in forward",
}


def _finding(
    problem: str, severity: str, layers: list[str], evidence: str, fix: str = ""
) -> Finding:
    return Finding(problem, severity, layers, evidence, FIXES[fix or problem])


def layer_role(name: str, module_type: str) -> tuple[str, str]:
    """What a layer is, up to where it sits: its module type and its name with every index
    replaced by ``#`` (``encoder.layer.3.attention.self.query`` -> ``encoder.layer.#.attention
    .self.query``; ``net.6`` -> ``net.#``; ``fc2`` -> ``fc#``)."""
    return re.sub(r"\d+", "#", name), module_type


def _later_argmax(rms: np.ndarray) -> np.ndarray:
    """For each position, the index of the largest value after it (-1 after the last)."""
    best = np.full(len(rms), -1)
    for i in range(len(rms) - 2, -1, -1):
        j = best[i + 1]
        best[i] = i + 1 if j < 0 or rms[i + 1] >= rms[j] else j
    return best


def vanishing_layers(rms: np.ndarray, roles: list | None = None) -> list[tuple[int, float, int]]:
    """``(index, ratio, reference)`` of each layer whose RMS gradient is below
    :data:`VANISHING_RATIO` times that of ``reference``: the largest of the later layers of its
    role (``roles[i]``, e.g. :func:`layer_role`), or of all later layers when no other layer has
    its role or ``roles`` is None (``rms`` in call order, all positive)."""
    rms = np.asarray(rms, dtype=float)
    reference = _later_argmax(rms)
    if roles is not None:
        groups: dict = {}
        for i, role in enumerate(roles):
            groups.setdefault(role, []).append(i)
        for members in (np.array(m) for m in groups.values() if len(m) > 1):
            best = _later_argmax(rms[members])
            reference[members] = np.where(best >= 0, members[best], -1)
    return [
        (i, float(rms[i] / rms[j]), int(j))
        for i, j in enumerate(reference)
        if j >= 0 and rms[i] < VANISHING_RATIO * rms[j]
    ]


def _gradient_size(report: DiagnosisReport, found: list[Finding]) -> None:
    """Vanishing and exploding gradients from the per-layer RMS and grad:data ratios."""
    layers = report.layers
    live = [r for r in layers if math.isfinite(r["grad_rms"]) and r["grad_rms"] > 0]
    if not live:
        found.append(
            _finding(
                "no_gradient",
                "error",
                [r["name"] for r in layers],
                f"the gradient of every one of the {len(layers)} weight layers is exactly zero",
            )
        )
        return
    rms = np.array([r["grad_rms"] for r in live])
    roles = [layer_role(r["name"], r["module"]) for r in live]
    weak = vanishing_layers(rms, roles)
    if weak:
        worst, ratio, ref = min(weak, key=lambda item: item[1])
        found.append(
            _finding(
                "vanishing_gradients",
                "error",
                [live[i]["name"] for i, _, _ in weak],
                f"the RMS gradient of {live[worst]['name']} is {ratio:.1e} of "
                f"{live[ref]['name']}'s, called after it ({len(weak)} of {len(live)} layers below "
                f"{VANISHING_RATIO:g} of the largest later layer of their kind)",
            )
        )
    exploding_fix = "exploding_gradients_batch_norm" if report.batch_norm else ""
    if len(live) >= 2 and rms[0] > EXPLODING_RATIO * rms[-1]:
        found.append(
            _finding(
                "exploding_gradients",
                "error",
                [live[0]["name"]],
                f"the RMS gradient of the first layer is {rms[0] / rms[-1]:.1e} times the last "
                f"layer's (threshold {EXPLODING_RATIO:g})",
                exploding_fix,
            )
        )
    free = [r for r in live if not r.get("normalized")]  # scale-invariant layers left out
    g2d = np.array([r["grad_to_data"] for r in free], dtype=float)
    if 2 * len(free) < len(live) or not g2d.size or not np.all(np.isfinite(g2d)):
        return  # "everywhere" needs most layers: a normalized net's few others say little
    median = float(np.median(g2d))
    names = [f.problem for f in found]
    if median < GRAD_TO_DATA_TINY and "vanishing_gradients" not in names:
        found.append(
            _finding(
                "vanishing_gradients",
                "error",
                [r["name"] for r in free],
                f"the median grad:data ratio is {median:.1e} (threshold {GRAD_TO_DATA_TINY:g}): "
                "the gradient has vanished in every layer",
            )
        )
    if median > GRAD_TO_DATA_HUGE and "exploding_gradients" not in names:
        found.append(
            _finding(
                "exploding_gradients",
                "error",
                [r["name"] for r in free],
                f"the median grad:data ratio is {median:.1e} (threshold {GRAD_TO_DATA_HUGE:g}): "
                "one SGD step would rewrite the weights",
                exploding_fix,
            )
        )


def _activation_findings(report: DiagnosisReport, found: list[Finding]) -> None:
    sat = [a for a in report.activations if a["saturated"] > SATURATED_FRACTION]
    if sat:
        worst = max(a["saturated"] for a in sat)
        found.append(
            _finding(
                "saturation",
                "warning",
                [a["name"] for a in sat],
                f"up to {worst:.0%} of the units are saturated (threshold {SATURATED_FRACTION:.0%})",
            )
        )
    dead = [a for a in report.activations if a["dead"] > DEAD_FRACTION]
    if dead:
        worst = max(a["dead"] for a in dead)
        found.append(
            _finding(
                "dead_units",
                "error" if worst > 0.9 else "warning",
                [a["name"] for a in dead],
                f"up to {worst:.0%} of the units never fire on this batch (threshold {DEAD_FRACTION:.0%})",
            )
        )
    stds = [a["std"] for a in report.activations if "sigmoid" not in a["activation"]]
    if len(stds) >= 2 and stds[0] > 0 and all(math.isfinite(s) for s in stds):
        drift = stds[-1] / stds[0]
        if drift < 1 / SCALE_DRIFT or drift > SCALE_DRIFT:
            direction = "shrinks" if drift < 1 else "grows"
            fix = {True: "bad_init_scale_trained", False: "", None: "bad_init_scale_unknown"}
            found.append(
                _finding(
                    "bad_init_scale",
                    "warning",
                    [report.activations[-1]["name"]],
                    f"the activation std {direction} {drift:.2g}x from the first to the last "
                    f"activation layer (threshold {SCALE_DRIFT:g}x)",
                    fix[report.trained],
                )
            )


def _update_findings(report: DiagnosisReport, found: list[Finding]) -> None:
    if report.trial_diverged_at is not None:
        found.append(
            _finding(
                "training_diverged",
                "error",
                [],
                f"the trial training became non-finite at step {report.trial_diverged_at}",
            )
        )
    ups = np.array(
        [r["update_to_data"] for r in report.layers if math.isfinite(r["update_to_data"])]
    )
    if not ups.size:
        return
    med = float(np.median(ups))
    for problem, bad in (
        ("update_too_large", med > UPDATE_TOO_LARGE),
        ("update_too_small", med < UPDATE_TOO_SMALL),
    ):
        if bad:
            limit = UPDATE_TOO_LARGE if problem == "update_too_large" else UPDATE_TOO_SMALL
            found.append(
                _finding(
                    problem,
                    "warning",
                    [],
                    f"median update:data ratio {med:.2g} per step (threshold {limit:g}; healthy ~1e-3)",
                )
            )


def _findings(report: DiagnosisReport, trained: bool) -> list[Finding]:
    """The problems a report's measurements show (``trained``: a trial training ran)."""
    found: list[Finding] = []
    if not math.isfinite(report.loss):
        found.append(
            _finding(
                "non_finite_loss", "error", [], f"the loss is {report.loss} at the current weights"
            )
        )
        return found
    if not report.layers:
        found.append(
            _finding(
                "nothing_measured",
                "error",
                [],
                "no weight matrix received a gradient"
                + (f" ({len(report.unused)} parameter(s) got none)" if report.unused else ""),
            )
        )
    elif report.non_finite:
        fix = "exploding_gradients_low_precision" if report.low_precision else ""
        found.append(
            _finding("exploding_gradients", "error", report.non_finite, "non-finite gradients", fix)
        )
    else:
        _gradient_size(report, found)
    if report.time_grad_ratio is not None and report.time_grad_ratio < VANISHING_RATIO:
        found.append(
            _finding(
                "vanishing_through_time",
                "error",
                [],
                f"the gradient reaching the first time step is {report.time_grad_ratio:.1e} of the last "
                f"step's (threshold {VANISHING_RATIO:g})",
                {"lstm": "vanishing_through_time_lstm", "gru": "vanishing_through_time_gru"}.get(
                    report.recurrent_cell, ""
                ),
            )
        )
    _activation_findings(report, found)
    C = report.classes
    if (
        C
        and C > 1
        and report.trained is not True
        and report.loss > INITIAL_LOSS_FACTOR * math.log(C)
    ):
        found.append(
            _finding(
                "initial_loss_high",
                "warning",
                [],
                f"the loss is {report.loss:.3g}, {report.loss / math.log(C):.1f}x ln C = "
                f"{math.log(C):.3g} of a uniform guess over the {C} classes (threshold "
                f"{INITIAL_LOSS_FACTOR:g}x)",
            )
        )
    if trained:
        _update_findings(report, found)
    return found
