r"""What :func:`vgcourse.diagnose` returns: a :class:`Finding` per problem (name, evidence, fix) and the
:class:`DiagnosisReport`, with the same content as text (``print(report)``), as HTML with the
gradient-flow plot (in a notebook) and as plain data (``to_dict()``)."""

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

    ``layers``: one dict per weight layer, input -> output (name, module, params, grad_norm,
    grad_rms, grad_to_data, update_to_data); ``activations``: one dict per activation layer (name,
    activation, mean, std, saturated, dead); ``findings``: the problems found; ``loss``: the mean
    loss over the passes; ``time_grad_ratio``: for recurrent inputs, first/last time step gradient;
    ``mode``: which train/eval mode the passes ran in (the model is left in its own afterwards).
    """

    loss: float
    layers: list[dict]
    activations: list[dict]
    findings: list[Finding] = field(default_factory=list)
    time_grad_ratio: float | None = None
    gated: bool = False
    mode: str = ""  # the train/eval mode the passes ran in, in words

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
            "mode": self.mode,
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
        lines = [f"Gradient-flow diagnosis (loss {self.loss:.4g})"]
        if self.mode:
            lines.append(self.mode)
        lines.append(_text_table(head, rows))
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
            f"<div><p><b>Gradient-flow diagnosis</b> (loss {self.loss:.4g})</p>"
            f"{f'<p><i>{html.escape(self.mode)}</i></p>' if self.mode else ''}{verdict}"
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
