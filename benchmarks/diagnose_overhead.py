"""Cost of `vg.diagnose` and `vg.monitor` against what a practitioner would write by hand.

    python benchmarks/diagnose_overhead.py [--repeats 7] [--no-write]

1. `vg.diagnose(net, X, y)` (one pass, no trial steps) against the same forward and backward
   pass with hand-written hooks: a forward hook on every activation module that keeps its
   dead-unit fraction, mean and standard deviation, and after `backward()` the gradient and weight norm of every
   parameter (what a fastai `ActivationStats` callback and `wandb.watch` compute). Target: <= 1.2x.
2. A training loop with `vg.monitor(net, every=10)` against the same loop without it
   (SGD, the same batches). Target: <= 1.1x.
3. Peak memory (resident set size, each case in a fresh process, large blocks returned to the
   system when freed) of `vg.diagnose(...,
   train_steps=5)` against 5 plain Adam steps on the same large MLP.

Two models: an MLP (10 ReLU layers of 256 units, batch 512) and a small CNN with BatchNorm and
skips (3x16x16 images, batch 64). The cases take turns within each round; the table gives the
median over rounds. `--no-write` prints without touching benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import vgcourse as vg  # noqa: E402
from benchmarks._results import write_section  # noqa: E402

MONITOR_STEPS = 100


class Block(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.relu(X + self.bn2(self.conv2(self.relu(self.bn1(self.conv1(X))))))


def cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1),
        nn.ReLU(),
        *[Block(32) for _ in range(4)],
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )


def models() -> dict[str, tuple[nn.Module, torch.Tensor, torch.Tensor]]:
    torch.manual_seed(0)
    mlp = vg.mlp(64, 10, depth=10, width=256, activation="relu", init="kaiming_normal")
    return {
        "MLP, 10 ReLU layers of 256, batch 512": (
            mlp,
            torch.randn(512, 64),
            torch.randint(0, 10, (512,)),
        ),
        "CNN, 4 BN residual blocks of 32 channels, batch 64": (
            cnn(),
            torch.randn(64, 3, 16, 16),
            torch.randint(0, 10, (64,)),
        ),
    }


def by_hand(net: nn.Module, X: torch.Tensor, y: torch.Tensor) -> dict:
    """One forward/backward pass with hand-written hooks: the baseline of case 1."""
    stats: dict = {}

    def keep(name):
        def hook(module, args, out):
            with torch.no_grad():
                flat = out.detach().transpose(0, 1).reshape(out.shape[1], -1)
                std, mean = torch.std_mean(out.detach())
                stats[name] = (float((flat <= 0).all(1).float().mean()), float(mean), float(std))

        return hook

    handles = [
        m.register_forward_hook(keep(n)) for n, m in net.named_modules() if isinstance(m, nn.ReLU)
    ]
    try:
        loss = nn.functional.cross_entropy(net(X), y)
        loss.backward()
        with torch.no_grad():
            grads = {n: (float(p.grad.norm()), float(p.norm())) for n, p in net.named_parameters()}
        net.zero_grad(set_to_none=True)
    finally:
        for h in handles:
            h.remove()
    return {"loss": loss.item(), "grads": grads, "acts": stats}


def train(net: nn.Module, X: torch.Tensor, y: torch.Tensor, watch: bool) -> None:
    opt = torch.optim.SGD(net.parameters(), lr=1e-3)
    batch = 64 if X.ndim == 4 else 128
    mon = vg.monitor(net, every=10).attach() if watch else None
    for step in range(MONITOR_STEPS):
        i = slice((step * batch) % len(X), (step * batch) % len(X) + batch)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(X[i]), y[i])
        loss.backward()
        opt.step()
        if mon is not None:
            mon.step(loss)
    if mon is not None:
        mon.detach()


def cases_of(net: nn.Module, X: torch.Tensor, y: torch.Tensor) -> dict:
    """The four timed cases on one model."""
    return {
        "hooks": lambda: by_hand(net, X, y),
        "diagnose": lambda: vg.diagnose(net, X, y),
        "loop": lambda: train(net, X, y, watch=False),
        "monitor": lambda: train(net, X, y, watch=True),
    }


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def memory_child(case: str) -> None:
    """Run one memory case in this (fresh) process; print its peak RSS and the parameters' size,
    in MiB. Both cases build the same model and batch first, so the peaks compare directly."""
    torch.manual_seed(0)
    net = vg.mlp(512, 10, depth=8, width=2048, activation="relu", init="kaiming_normal")
    X, y = torch.randn(256, 512), torch.randint(0, 10, (256,))
    if case == "plain":
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        for _ in range(5):
            opt.zero_grad()
            nn.functional.cross_entropy(net(X), y).backward()
            opt.step()
    else:
        vg.diagnose(net, X, y, train_steps=5)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    params = sum(p.numel() for p in net.parameters()) * 4 / 2**20
    print(f"{peak / 1024:.1f} {params:.1f}")


def memory() -> tuple[float, float, float]:
    """(plain peak MiB, diagnose peak MiB, parameter MiB)."""
    out = {}
    for case in ("plain", "diagnose"):
        text = subprocess.run(
            [sys.executable, __file__, "--memory-child", case],
            env={**os.environ, "MALLOC_MMAP_THRESHOLD_": str(64 * 2**10)},
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        out[case], params = float(text[-2]), float(text[-1])
    return out["plain"], out["diagnose"], params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="rounds of each comparison")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        return memory_child(args.memory_child)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    rows = []
    for name, (net, X, y) in models().items():
        cases = cases_of(net, X, y)
        state = {k: v.clone() for k, v in net.state_dict().items()}
        for fn in cases.values():  # warm-up
            fn()
        times: dict[str, list[float]] = {k: [] for k in cases}
        keys = list(cases)
        for r in range(args.repeats):
            for key in keys[r % len(keys) :] + keys[: r % len(keys)]:
                net.load_state_dict(state)
                times[key].append(timed(cases[key]))
        t = {k: statistics.median(v) for k, v in times.items()}
        rows.append((name, t))
        print(
            f"{name}: diagnose {1e3 * t['diagnose']:.1f} ms vs hooks {1e3 * t['hooks']:.1f} ms "
            f"({t['diagnose'] / t['hooks']:.2f}x); monitor(every=10) {t['monitor'] / t['loop']:.3f}x "
            f"a plain loop ({1e3 * t['loop'] / MONITOR_STEPS:.2f} ms per step)"
        )
    plain_mb, diagnose_mb, params_mb = memory()
    print(
        f"peak RSS: 5 plain Adam steps {plain_mb:.0f} MiB, diagnose(train_steps=5) "
        f"{diagnose_mb:.0f} MiB (parameters {params_mb:.0f} MiB)"
    )
    if args.no_write:
        return
    table = "\n".join(
        f"| {name} | {1e3 * t['hooks']:.1f} | {1e3 * t['diagnose']:.1f} | "
        f"{t['diagnose'] / t['hooks']:.2f}x | {1e3 * t['loop'] / MONITOR_STEPS:.2f} | "
        f"{t['monitor'] / t['loop']:.3f}x |"
        for name, t in rows
    )
    write_section(
        "Diagnose and monitor overhead",
        f"""Measured with `python benchmarks/diagnose_overhead.py` ({os.cpu_count()} cores, torch {torch.__version__}),
median of {args.repeats} rounds. Targets: `vg.diagnose` <= 1.2x the same pass with hand-written hooks;
`vg.monitor(every=10)` <= 1.1x a plain training step.

| model | hand-written hooks (ms) | `vg.diagnose` (ms) | ratio | plain step (ms) | with `vg.monitor(every=10)` |
|---|---|---|---|---|---|
{table}

Peak memory (resident set of a fresh process each, which first builds the same MLP 512-2048x8-10,
with glibc's `MALLOC_MMAP_THRESHOLD_=65536` so that freed tensors leave the resident set at once
and the peak is the live memory's, not the allocator's leftovers;
{params_mb:.0f} MiB of parameters, and a batch of 256): 5 plain Adam steps {plain_mb:.0f} MiB,
`vg.diagnose(..., train_steps=5)` (Adam) {diagnose_mb:.0f} MiB. The trial steps back the weights up to
a temporary file, not to memory, and copy one layer at a time to measure its update.
""",
    )


if __name__ == "__main__":
    main()
