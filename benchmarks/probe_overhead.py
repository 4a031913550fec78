"""Cost of recording per-layer statistics during training, relative to a plain training step.

    python benchmarks/probe_overhead.py [--repeats 5] [--no-write]

Times `vg.fit` on the seed experiment's net (9 sigmoid layers of 10 units, make_moons, batch 32,
Adam, 700 steps) four ways: no recording (`record=False`), per-layer gradient norms at every step
(`record=True`, the default), and the full probe (activation mean/std, saturation, dead units;
weight norm, weight-gradient norm, output-gradient norm, grad:data and update:data per weight
layer) at every 10th step (`probe_every=10`) and at every step (`probe_every=1`).
Target (course design): recording <= 1.25x the time of a plain step.

The four runs take turns within each round (which one goes first rotates), so a machine whose
load drifts slows them alike;
the table gives the median over repeats of the wall time (and, printed, of the process CPU
time, which another process on the machine disturbs less). `--no-write` prints without touching
benchmarks/RESULTS.md (for measurements on a loaded machine).
"""

from __future__ import annotations

import argparse
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
RUNS = {
    "plain": ("none (record=False)", dict(record=False)),
    "norms": ("per-layer gradient norms every step (record=True)", dict(record=True)),
    "probe10": ("full probe every 10th step (probe_every=10)", dict(record=True, probe_every=10)),
    "probe1": ("full probe every step (probe_every=1)", dict(record=True, probe_every=1)),
}


def timed(data, **kw) -> tuple[float, float]:
    """(wall, CPU) seconds of one 700-step fit."""
    torch.manual_seed(0)
    net = vg.mlp(2, 2, depth=9, width=10, activation="sigmoid", init="xavier_uniform")
    wall, cpu = time.perf_counter(), time.process_time()
    vg.fit(net, data, steps=STEPS, lr=1e-3, batch_size=32, **kw)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="rounds of the four runs")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    data = vg.data.moons(250, 0.05, seed=42)
    timed(data, record=False)  # warm-up
    times: dict[str, list[tuple[float, float]]] = {key: [] for key in RUNS}
    keys = list(RUNS)
    for r in range(args.repeats):  # each round in another order: no run always goes first
        for key in keys[r % len(keys) :] + keys[: r % len(keys)]:
            times[key].append(timed(data, **RUNS[key][1]))
    wall = {key: statistics.median(t[0] for t in runs) for key, runs in times.items()}
    cpu = {key: statistics.median(t[1] for t in runs) for key, runs in times.items()}
    per_step = 1e3 * wall["plain"] / STEPS
    print(f"plain step: {per_step:.2f} ms wall, {1e3 * cpu['plain'] / STEPS:.2f} ms CPU")
    for key, (name, _) in list(RUNS.items())[1:]:
        print(f"{name}: {wall[key] / wall['plain']:.2f}x wall, {cpu[key] / cpu['plain']:.2f}x CPU")
    if args.no_write:
        return
    table = "\n".join(
        f"| {name} | {1e3 * wall[key] / STEPS:.2f} | {wall[key] / wall['plain']:.2f}x |"
        for key, (name, _) in list(RUNS.items())[1:]
    )
    write_section(
        "Probe overhead",
        f"""Measured with `python benchmarks/probe_overhead.py` ({os.cpu_count()} cores, torch {torch.__version__}):
`vg.fit` on 9 sigmoid layers of 10 units, make_moons, batch 32, Adam, {STEPS} steps; the four runs
take turns, median of {args.repeats} rounds. Target: recording <= 1.25x a plain step.

| recording | ms per step | vs plain |
|---|---|---|
| none (record=False) | {per_step:.2f} | 1.00x |
{table}
""",
    )


if __name__ == "__main__":
    main()
