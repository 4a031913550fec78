"""Time every lesson top to bottom in a fresh kernel and write the figures to benchmarks/RESULTS.md.

    python benchmarks/lesson_runtime.py                      # all lessons, quick scale
    python benchmarks/lesson_runtime.py lessons/02_*.ipynb   # some lessons
    VGCOURSE_SCALE=full python benchmarks/lesson_runtime.py  # full scale (a GPU is advised)

Targets (course design): <= 45 s per lesson at quick scale on a 2-core CPU, <= 5 min in total.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._results import write_section  # noqa: E402
from vgcourse.course.notebooks import run  # noqa: E402


def main(paths: list[str]) -> None:
    lessons = [Path(p) for p in paths] or sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb"))
    scale = os.environ.get("VGCOURSE_SCALE", "quick")
    rows, total = [], 0.0
    for path in lessons:
        seconds = run(path, env={"VGCOURSE_SCALE": scale})
        total += seconds
        flag = "" if scale != "quick" or seconds <= 45 else "  (over the 45 s target)"
        print(f"{seconds:7.1f} s  {path.name}{flag}", flush=True)
        rows.append(f"| {path.name} | {seconds:.1f} |{' over target' if flag else ''}")
    print(f"{total:7.1f} s  total")
    device = (
        torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor() or "cpu"
    )
    body = [
        f"Measured with `python benchmarks/lesson_runtime.py` (VGCOURSE_SCALE={scale}), one fresh kernel per",
        f"lesson, run one after another. Machine: {os.cpu_count()} cores, {device}, torch {torch.__version__}.",
        "",
        "| lesson | seconds |",
        "|---|---|",
        *rows,
        f"| **total** | **{total:.1f}** |",
    ]
    if len(lessons) > 1 or not paths:
        write_section(f"Lesson runtime ({scale} scale, {os.cpu_count()} cores)", "\n".join(body))


if __name__ == "__main__":
    main(sys.argv[1:])
