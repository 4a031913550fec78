r"""What :func:`vgcourse.diagnose` returns: a :class:`Finding` per problem (name, evidence, fix) and the
:class:`DiagnosisReport`, with the same content as text (``print(report)``), as HTML with the
evidence (the tables, the flagged layers, the gradient-flow plots against the healthy band, the
gradient per time step of a recurrent model; in a notebook) and as plain data (``to_dict()``)."""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


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

    ``layers``: one dict per layer with a weight matrix, in call order (name, module, params,
    grad_norm, grad_rms, grad_to_data, weight_norm, update_to_data, ``normalized``: followed by a
    normalization layer, ``zero_grad``: exactly zero gradient); ``activations``: one dict per
    activation layer (name, activation, mean, std, saturated, dead); ``findings``: the problems
    found; ``loss``: the mean loss over the passes; ``time_grads``/``time_grad_ratio``: for
    recurrent models, the gradient norm per time step and first/last; ``mode``: the train/eval mode
    the passes ran in. Left out of the checks and listed: ``frozen`` and ``unused`` parameters,
    ``non_finite`` layers, ``unrecognised`` activation modules (with what each behaves like).
    """

    loss: float
    layers: list[dict]
    activations: list[dict]
    findings: list[Finding] = field(default_factory=list)
    time_grad_ratio: float | None = None
    gated: bool = False
    mode: str = ""
    time_grads: list[float] = field(default_factory=list)
    frozen: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    non_finite: list[str] = field(default_factory=list)
    unrecognised: list[dict] = field(default_factory=list)
    recurrent_cell: str = ""  # "rnn", "lstm", "gru" or ""
    batch_norm: bool = False
    normalized: bool = False
    trained: bool | None = None
    classes: int | None = None  # the number of classes of a cross-entropy loss
    trial_diverged_at: int | None = None
    low_precision: bool = False

    @property
    def healthy(self) -> bool:
        """True when no problem was found (never when nothing could be measured)."""
        return not self.findings

    @property
    def problems(self) -> list[str]:
        """The names of the problems found (e.g. ``["vanishing_gradients", "saturation"]``)."""
        return [f.problem for f in self.findings]

    @property
    def flagged(self) -> set[str]:
        """The layers named by a finding."""
        return {name for f in self.findings for name in f.layers}

    def to_dict(self) -> dict[str, Any]:
        """Plain Python structure (lists, dicts, floats, strings) for programs and JSON."""
        return {
            "loss": self.loss,
            "healthy": self.healthy,
            "mode": self.mode,
            "layers": [dict(r) for r in self.layers],
            "activations": [dict(r) for r in self.activations],
            "findings": [vars(f).copy() for f in self.findings],
            "time_grad_ratio": self.time_grad_ratio,
            "time_grads": list(self.time_grads),
            "frozen": list(self.frozen),
            "unused": list(self.unused),
            "non_finite": list(self.non_finite),
            "zero_grad": [r["name"] for r in self.layers if r.get("zero_grad")],
            "unrecognised": [dict(u) for u in self.unrecognised],
            "trial_diverged_at": self.trial_diverged_at,
        }

    # -- the pieces every view shows ------------------------------------------------------
    def _table_rows(self) -> tuple[list[str], list[list[str]]]:
        head = [
            "layer",
            "module",
            "params",
            "grad norm",
            "grad rms",
            "grad:data",
            "update:data",
            "note",
        ]
        flagged = self.flagged
        rows = []
        for r in self.layers:
            notes = [
                text
                for text, on in (
                    ("FLAGGED", r["name"] in flagged),
                    ("zero gradient", r.get("zero_grad")),
                    ("normalized next", r.get("normalized")),
                )
                if on
            ]
            rows.append(
                [
                    r["name"],
                    r["module"],
                    str(r["params"]),
                    _fmt(r["grad_norm"]),
                    _fmt(r["grad_rms"]),
                    _fmt(r["grad_to_data"]),
                    _fmt(r["update_to_data"]),
                    ", ".join(notes),
                ]
            )
        return head, rows

    def _activation_rows(self) -> tuple[list[str], list[list[str]]]:
        head = ["activation layer", "type", "mean", "std", "saturated", "dead"]
        rows = [
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
        return head, rows

    def _notes(self) -> list[str]:
        """Coverage: what was left out of the checks, and why."""
        notes = []
        if self.frozen:
            notes.append(f"{len(self.frozen)} frozen parameter(s) left out: {_names(self.frozen)}")
        if self.unused:
            notes.append(
                f"{len(self.unused)} parameter(s) got no gradient (unused in this forward pass), left "
                f"out: {_names(self.unused)}"
            )
        zero = [r["name"] for r in self.layers if r.get("zero_grad")]
        if zero:
            notes.append(
                f"{len(zero)} layer(s) with an exactly zero gradient (e.g. a zero-initialised "
                f"residual branch), left out of the comparison: {_names(zero)}"
            )
        for u in self.unrecognised:
            like = (
                f"behaves like {u['behaves_like']}"
                if u["behaves_like"]
                else "not recognised: no saturation/dead-unit statistics"
            )
            notes.append(f"activation module {u['name']} ({u['type']}): {like}")
        if self.time_grads:
            notes.append(
                f"gradient at the first time step / last time step: {self.time_grad_ratio:.3g} "
                f"(over {len(self.time_grads)} steps)"
            )
        if self.trial_diverged_at is not None:
            notes.append(f"the trial training diverged at step {self.trial_diverged_at}")
        return notes

    def __str__(self) -> str:
        lines = [f"Gradient-flow diagnosis (loss {self.loss:.4g})"]
        if self.mode:
            lines.append(self.mode)
        lines.append(_text_table(*self._table_rows()))
        if self.activations:
            lines.append(_text_table(*self._activation_rows()))
        lines.extend(self._notes())
        lines.append("Verdict: healthy, no problem found." if self.healthy else "Verdict:")
        lines.extend(f"  - {f}" for f in self.findings)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"DiagnosisReport(loss={self.loss:.4g}, problems={self.problems})"

    # -- plots -----------------------------------------------------------------------------
    def plot(self, ax=None):
        """RMS gradient per layer (log scale), flagged layers in red, with the band the checks accept.

        The band reaches from the largest layer down to :data:`~vgcourse.diagnosis_rules.VANISHING_RATIO`
        times it; a layer far below it is vanishing. Zero gradients are drawn at the bottom as x.
        """
        import matplotlib.pyplot as plt

        from .diagnosis_rules import VANISHING_RATIO

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.2))
        values = np.array([r["grad_rms"] for r in self.layers], dtype=float)
        x = np.arange(1, len(values) + 1)
        positive = values[np.isfinite(values) & (values > 0)]
        if positive.size:
            top = positive.max()
            ax.axhspan(
                VANISHING_RATIO * top,
                top,
                color="tab:green",
                alpha=0.12,
                label=f"within {1 / VANISHING_RATIO:.0e}x of the largest",
            )
            zero = values == 0
            if zero.any():
                ax.plot(
                    x[zero],
                    np.full(zero.sum(), positive.min() / 10),
                    "x",
                    color="gray",
                    label="exactly zero",
                )
        ax.plot(x, np.where(values > 0, values, np.nan), "o-", ms=4)
        flagged = self.flagged
        red = [i for i, r in enumerate(self.layers) if r["name"] in flagged]
        if red:
            ax.plot(x[red], values[red], "o", color="tab:red", ms=7, label="flagged")
        _layer_axis(ax, x, [r["name"] for r in self.layers])
        ax.set_ylabel("RMS gradient per weight")
        ax.set_title("Gradient flow" + ("" if self.healthy else ": " + ", ".join(self.problems)))
        if positive.size:
            ax.legend(fontsize=7, loc="best")
        return ax

    def plot_grad_to_data(self, ax) -> None:
        """grad:data ratio per layer against the absolute band the checks accept."""
        from .diagnosis_rules import GRAD_TO_DATA_HUGE, GRAD_TO_DATA_TINY

        values = np.array([r["grad_to_data"] for r in self.layers], dtype=float)
        x = np.arange(1, len(values) + 1)
        ax.axhspan(
            GRAD_TO_DATA_TINY, GRAD_TO_DATA_HUGE, color="tab:green", alpha=0.12, label="no alarm"
        )
        ax.plot(x, np.where(values > 0, values, np.nan), "o-", ms=4, color="tab:purple")
        _layer_axis(ax, x, [r["name"] for r in self.layers])
        ax.set_ylabel("grad:data  |dW| / |W|")
        ax.set_title("Gradient relative to the weights")
        ax.legend(fontsize=7, loc="best")

    def plot_time(self, ax) -> None:
        """Gradient norm per time step at the recurrent layer's input (log scale)."""
        g = np.array(self.time_grads, dtype=float)
        ax.plot(np.arange(1, len(g) + 1), np.where(g > 0, g, np.nan))
        ax.set_yscale("log")
        ax.set_xlabel("time step t")
        ax.set_ylabel("|dL/dx_t|")
        ax.set_title("Gradient through time")
        ax.grid(True, which="both", alpha=0.3)

    def figure(self):
        """A matplotlib ``Figure`` with every plot of the report (not attached to pyplot)."""
        from matplotlib.figure import Figure

        panels = 2 + bool(self.time_grads)
        fig = Figure(figsize=(4.2 * panels, 3.4), dpi=80, layout="constrained")
        axes = fig.subplots(1, panels)
        self.plot(axes[0])
        self.plot_grad_to_data(axes[1])
        if self.time_grads:
            self.plot_time(axes[2])
        return fig

    def _repr_html_(self) -> str:
        buf = io.BytesIO()
        self.figure().savefig(buf, format="png")
        img = base64.b64encode(buf.getvalue()).decode()
        if self.healthy:
            verdict = "<p><b>Verdict:</b> healthy, no problem found.</p>"
        else:
            items = "".join(
                f"<li><b style='color:{'#b00' if f.severity == 'error' else '#a60'}'>"
                f"{html.escape(f.problem.replace('_', ' '))}</b>"
                f"{' [' + html.escape(', '.join(f.layers[:6])) + (', ...' if len(f.layers) > 6 else '') + ']' if f.layers else ''}"
                f": {html.escape(f.evidence)}. <i>Fix:</i> {html.escape(f.fix)}.</li>"
                for f in self.findings
            )
            verdict = f"<p><b>Verdict:</b></p><ul>{items}</ul>"
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self._notes())
        flagged = self.flagged
        layer_table = _html_table(*self._table_rows(), [r["name"] in flagged for r in self.layers])
        act_flag = [a["name"] in flagged for a in self.activations]
        act_table = _html_table(*self._activation_rows(), act_flag) if self.activations else ""
        return (
            f"<div><p><b>Gradient-flow diagnosis</b> (loss {self.loss:.4g})</p>"
            f"{f'<p><i>{html.escape(self.mode)}</i></p>' if self.mode else ''}{verdict}"
            f"{f'<ul>{notes}</ul>' if notes else ''}"
            f"<img src='data:image/png;base64,{img}'/>"
            f"<div style='display:flex;gap:1em;align-items:flex-start;flex-wrap:wrap'>"
            f"{layer_table}{act_table}</div></div>"
        )


def _layer_axis(ax, x, names: list[str]) -> None:
    if any(v > 0 for line in ax.get_lines() for v in line.get_ydata() if math.isfinite(v)):
        ax.set_yscale("log")
    step = max(1, len(names) // 24)  # at most ~24 labels
    ax.set_xticks(x[::step])
    ax.set_xticklabels(names[::step], rotation=60, ha="right", fontsize=7)
    ax.set_xlabel("layer (in the order the forward pass calls them)")
    ax.grid(True, which="both", alpha=0.3)


def _names(names: list[str], shown: int = 4) -> str:
    return ", ".join(names[:shown]) + (", ..." if len(names) > shown else "")


def _fmt(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.3g}"


def _html_table(head: list[str], rows: list[list[str]], flagged: list[bool]) -> str:
    out = "<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"
    for row, red in zip(rows, flagged):
        style = " style='background:#fdd'" if red else ""
        out += f"<tr{style}>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
    return out + "</table>"


def _text_table(head: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)
    ]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(
        [fmt.format(*head), fmt.format(*("-" * w for w in widths)), *(fmt.format(*r) for r in rows)]
    ).rstrip()
