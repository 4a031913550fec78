"""Cost of recording per-layer statistics during training, relative to a plain training step.

    python benchmarks/probe_overhead.py

Times `vg.fit` on the seed experiment's net (9 sigmoid layers of 10 units, make_moons, batch 32,
Adam, 700 steps) three ways: no recording (`record=False`), per-layer gradient norms at every step
(`record=True`, the default), and the full probe (activation mean/std, saturation, dead units,
grad:data and update:data per layer) at every step (`probe_every=1`) and every 10th step.
Target (course design): recording <= 1.25x the time of a plain step. Median of 5 repeats.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import vgcourse as vg  # noqa: E402
from benchmarks._results import write_section  # noqa: E402

STEPS = 700


def timed(**kw) -> float:
    X, y = vg.data.moons(250, 0.05, seed=42)
    runs = []
    for _ in range(5):
        torch.manual_seed(0)
        net = vg.mlp(2, 2, depth=9, width=10, activation="sigmoid", init="xavier_uniform")
        start = time.perf_counter()
        vg.fit(net, (X, y), steps=STEPS, lr=1e-3, batch_size=32, **kw)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> None:
    timed(record=False)  # warm-up
    plain = timed(record=False)
    norms = timed(record=True)
    probe10 = timed(record=True, probe_every=10)
    probe1 = timed(record=True, probe_every=1)
    per_step = 1e3 * plain / STEPS
    print(f"plain step: {per_step:.2f} ms")
    rows = [
        ("per-layer gradient norms every step (record=True)", norms),
        ("full probe every 10th step (probe_every=10)", probe10),
        ("full probe every step (probe_every=1)", probe1),
    ]
    for name, t in rows:
        print(f"{name}: {t / plain:.2f}x")
    table = "\n".join(f"| {name} | {1e3 * t / STEPS:.2f} | {t / plain:.2f}x |" for name, t in rows)
    write_section(
        "Probe overhead",
        f"""Measured with `python benchmarks/probe_overhead.py` ({os.cpu_count()} cores, torch {torch.__version__}):
`vg.fit` on 9 sigmoid layers of 10 units, make_moons, batch 32, Adam, {STEPS} steps, median of 5 runs.
Target: recording <= 1.25x a plain step.

| recording | ms per step | vs plain |
|---|---|---|
| none (record=False) | {per_step:.2f} | 1.00x |
{table}
""",
    )


if __name__ == "__main__":
    main()
