"""Import cost of the package: ``import vgcourse`` beyond ``import torch``, in fresh processes.

    python benchmarks/import_time.py            # 15 rounds, writes benchmarks/RESULTS.md
    python benchmarks/import_time.py --rounds 5 --no-write

Each round starts three fresh Python processes, in turn, and each times its own imports with
``time.perf_counter``:

* ``import torch`` alone (the floor every PyTorch program pays);
* ``import torch`` then ``import vgcourse`` (the figure the target is about: <= 0.3 s beyond torch);
* the same, then the names a practitioner reaches first: ``vg.mlp``, ``vg.fit``, ``vg.diagnose``
  (they load their submodules on first use).

The medians over the rounds are printed, together with the heavy optional libraries that the import
pulled in (there should be none: matplotlib.pyplot, scikit-learn and ipywidgets load on first use).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._results import write_section  # noqa: E402

HEAVY = ("matplotlib", "matplotlib.pyplot", "sklearn", "scipy", "ipywidgets", "IPython")

PROBE = f"""
import json, sys, time
HEAVY = {HEAVY!r}
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()
mode = sys.argv[1]
if mode != "torch":
    import vgcourse as vg
t2 = time.perf_counter()
if mode == "first-use":
    vg.mlp, vg.fit, vg.diagnose
t3 = time.perf_counter()
print(json.dumps({{"torch": t1 - t0, "vgcourse": t2 - t1, "first_use": t3 - t2,
                  "heavy": [m for m in HEAVY if m in sys.modules], "torch_version": torch.__version__}}))
"""

MODES = ("torch", "vgcourse", "first-use")


def measure(rounds: int) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {m: [] for m in MODES}
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="0")
    for _ in range(rounds):
        for mode in MODES:  # take turns, so a slow moment of the machine hits every mode alike
            out = subprocess.run(
                [sys.executable, "-c", PROBE, mode],
                capture_output=True,
                text=True,
                check=True,
                cwd=str(Path.home()),  # import the installed package, not a folder by that name
                env=env,
            ).stdout
            runs[mode].append(json.loads(out.strip().splitlines()[-1]))
    return runs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    # warm the file cache once, so the first round is not an outlier
    measure(1)
    runs = measure(args.rounds)
    med = {
        m: {k: statistics.median(r[k] for r in runs[m]) for k in ("torch", "vgcourse", "first_use")}
        for m in MODES
    }
    beyond = med["vgcourse"]["vgcourse"]
    first = med["first-use"]["vgcourse"] + med["first-use"]["first_use"]
    heavy = sorted({h for m in MODES for r in runs[m] for h in r["heavy"]})
    torch_version = runs["torch"][0]["torch_version"]
    lines = [
        f"import torch alone: {med['torch']['torch']:.3f} s (median of {args.rounds} fresh processes)",
        f"import vgcourse beyond import torch: {beyond:.3f} s (target <= 0.3 s)",
        f"... and vg.mlp, vg.fit, vg.diagnose on first use: {first:.3f} s beyond torch",
        f"heavy optional libraries loaded: {', '.join(heavy) if heavy else 'none'}",
    ]
    print("\n".join(lines))
    if args.no_write:
        return
    body = (
        f"Measured with `python benchmarks/import_time.py` ({os.cpu_count()} cores, "
        f"Python {platform.python_version()}, torch {torch_version}): median of {args.rounds} rounds, "
        "each a fresh process per row, rows taking turns. Target: `import vgcourse` <= 0.3 s beyond "
        "`import torch`.\n\n"
        "| what | seconds |\n|---|---|\n"
        f"| `import torch` alone | {med['torch']['torch']:.3f} |\n"
        f"| `import vgcourse` after `import torch` | {beyond:.3f} |\n"
        f"| `import vgcourse` + first use of `vg.mlp`, `vg.fit`, `vg.diagnose` | {first:.3f} |\n\n"
        f"Heavy optional libraries loaded by these imports: {', '.join(heavy) if heavy else 'none'}."
    )
    write_section("Import time", body)


if __name__ == "__main__":
    main()
