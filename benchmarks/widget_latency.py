"""Explorer responsiveness in a real browser: time from a slider change to the redrawn plot.

    python benchmarks/widget_latency.py                 # every lesson
    python benchmarks/widget_latency.py 02 03           # some lessons (by number)

Starts JupyterLab on loopback, opens each lesson in Debian's Chromium (Playwright), runs all cells,
then for every explorer moves its first slider 24 times with the keyboard (alternately right and
left, so it stays in range), timing each change from the key press to the new plot image being
loaded in the page. Writes median and max per explorer to benchmarks/RESULTS.md.
Target (course design): median <= 120 ms on the 2-core machine.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from lab_driver import ExplorerHandle, LabServer, chromium, copy_lessons, run_all  # noqa: E402

from benchmarks._results import write_section  # noqa: E402

CHANGES = 24


def main(args: list[str]) -> None:
    lessons = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb"))
    if args:
        lessons = [p for p in lessons if p.name[:2] in args]
    rows = []
    with tempfile.TemporaryDirectory() as tmp, LabServer(Path(tmp)) as lab, chromium() as browser:
        copy_lessons(lessons, Path(tmp))
        for lesson in lessons:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            run_all(page, lab, lesson.name)
            for i in range(ExplorerHandle.count(page)):
                ex = ExplorerHandle(page, i)
                ex.image.scroll_into_view_if_needed()
                if not ex.sliders().count():
                    print(f"{lesson.stem} explorer {i}: no slider, skipped")
                    continue
                times = [
                    1e3 * ex.nudge_slider(0, key="ArrowRight" if k % 2 == 0 else "ArrowLeft")
                    for k in range(CHANGES)
                ]
                med, worst = statistics.median(times), max(times)
                flag = "" if med <= 120 else " (over target)"
                print(
                    f"{lesson.stem} explorer {i}: median {med:.0f} ms, max {worst:.0f} ms{flag}",
                    flush=True,
                )
                rows.append(f"| {lesson.stem} | {i} | {med:.0f} | {worst:.0f} |{flag}")
            page.close()
    write_section(
        "Explorer latency in JupyterLab",
        f"""Measured with `python benchmarks/widget_latency.py` ({os.cpu_count()} cores): JupyterLab + Debian Chromium
(Playwright), {CHANGES} slider changes per explorer, key press to new plot image loaded. Target: median <= 120 ms.

| lesson | explorer | median ms | max ms |
|---|---|---|---|
"""
        + "\n".join(rows),
    )


if __name__ == "__main__":
    main(sys.argv[1:])
