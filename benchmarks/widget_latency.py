"""Explorer responsiveness: time from a control change to the redrawn plot.

    python benchmarks/widget_latency.py                 # every lesson, in a real browser
    python benchmarks/widget_latency.py 02 03           # some lessons (by number)
    python benchmarks/widget_latency.py --headless      # the Explorer core alone, no browser
    python benchmarks/widget_latency.py --kernel        # comm message to new image, live kernel

In a browser: starts JupyterLab on loopback, opens each lesson in Debian's Chromium (Playwright),
runs all cells, then for every explorer moves its first slider 24 times with the keyboard
(alternately right and left, so it stays in range), timing each change from the key press to the
new plot image being loaded in the page. Writes median and max per explorer to
benchmarks/RESULTS.md. Target (course design): median <= 120 ms on the 2-core machine.

Headless (``--headless``, one thread, ``OMP_NUM_THREADS=1``): builds a few explorers in this
process and times ``explorer.set(...)`` for 20 alternating values of one control after a warm-up
(each explorer caches its computations, so this is the cost of a redraw that needs no new
computation: what the Explorer itself adds to every slider move). Each row gives wall-clock and
CPU time (the CPU time does not grow when other processes share the cores) and how much of the wall
time the explorer's ``update`` took (clearing and re-plotting included); the rest is the Agg draw
and the PNG encoding. The first three rows are one lesson-01-style explorer with negligible
computation, drawn three ways: cleared and re-plotted; re-plotted after ``widgets.clear_data`` with
``clear=False``; its artists reused with ``clear=False``. Add ``--no-write`` to print the table only.

Through a kernel (``--kernel``): starts a real ipykernel and sends it slider changes as comm messages,
exactly as JupyterLab does, timing each from sending to the new image arriving on the IOPub channel
(the browser's websocket hop and image decode are what this leaves out).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from benchmarks._results import write_section  # noqa: E402

CHANGES = 24
HEADLESS_CHANGES = 20


# -- in a browser -------------------------------------------------------------------------------------
def browser(args: list[str]) -> None:
    from lab_driver import ExplorerHandle, LabServer, chromium, copy_lessons, run_all

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


# -- headless -----------------------------------------------------------------------------------------
def _lesson01_style(mode: str):
    """Two panels like lesson 01's explorer: a bar chart of six factors, a loss curve on a log scale.

    ``mode``: "clear" (the Explorer clears the axes, the update re-plots), "clear_data"
    (``clear=False``; the update calls ``widgets.clear_data`` and re-plots) or "reuse"
    (``clear=False``; the update moves the artists it made the first time).
    """
    import numpy as np

    from vgcourse import widgets

    names = [f"f{i}" for i in range(6)]
    drawn: dict = {}

    def update(axes, w: float) -> str:
        factors = 1 / (1 + np.exp(-w * np.linspace(-1, 1, 6)))
        curve = np.exp(-np.linspace(0, 4, 21) * (0.5 + abs(w)))
        if mode == "reuse" and axes[0].patches:
            for bar, h in zip(drawn["bars"], factors):
                bar.set_height(h)
            drawn["line"].set_ydata(curve)
            axes[1].relim()
            axes[1].autoscale_view()
        else:
            if mode == "clear_data":
                for ax in axes:
                    widgets.clear_data(ax)
            drawn["bars"] = axes[0].bar(names, factors)
            axes[0].set(ylabel="factor", ylim=(0, 1))
            (drawn["line"],) = axes[1].plot(range(21), curve, "o-", ms=2)
            axes[1].set(xlabel="update", ylabel="loss", yscale="log")
            axes[1].grid(True, which="major", alpha=0.3)
        axes[0].set_title(f"product = {np.prod(factors):.3g}")
        axes[1].set_title(f"w = {w:.2f}")
        return f"product {np.prod(factors):.3g} | final loss {curve[-1]:.3g}"

    kw = {} if mode == "clear" else {"clear": False}
    control = {"w": widgets.slider(0.4, -6, 6, 0.1, "w")}
    return widgets.Explorer(update, control, **kw), "w", (0.4, 0.5)


def _headless_cases() -> list[tuple[str, object]]:
    import inspect

    import torch

    import vgcourse as vg
    from vgcourse import widgets
    from vgcourse.lessons import lesson03_explorer
    from vgcourse.lessons import lesson04_explorer as variance

    cases = [("lesson-01 style, 2 panels, cleared", lambda: _lesson01_style("clear"))]
    if "clear" in inspect.signature(widgets.Explorer).parameters:
        cases += [
            ("same, clear=False + clear_data", lambda: _lesson01_style("clear_data")),
            ("same, clear=False, artists reused", lambda: _lesson01_style("reuse")),
        ]
    X, y = vg.data.digits()
    Xg = torch.rand(256, 64, generator=torch.Generator().manual_seed(0))
    cases += [
        (
            "03 activation_explorer, 3 panels",
            lambda: (
                lesson03_explorer.activation_explorer(X[:256], y[:256], depth=10),
                "depth",
                (10, 11),
            ),
        ),
        (
            "04 propagation_explorer, 3 panels",
            lambda: (variance.propagation_explorer(Xg, depth=20), "gain", (1.0, 1.05)),
        ),
        (
            "05 gradient_flow_explorer, 2 panels",
            lambda: (widgets.gradient_flow_explorer(depth=10), "depth", (10, 11)),
        ),
    ]
    return cases


def headless(write: bool = True) -> None:
    import matplotlib
    import torch

    matplotlib.use("Agg")
    torch.set_num_threads(1)
    rows = []
    for label, make in _headless_cases():
        explorer, name, (a, b) = make()
        spent: list[float] = []
        inner = explorer.update

        def timed(*args, _inner=inner, _spent=spent, **kw):
            start = time.perf_counter()
            try:
                return _inner(*args, **kw)
            finally:
                _spent.append(time.perf_counter() - start)

        explorer.update = timed
        for v in (b, a, b, a):  # warm-up: both settings computed and cached
            explorer.set(**{name: v})
        wall, cpu, spent[:] = [], [], []
        for k in range(HEADLESS_CHANGES):
            start, start_cpu = time.perf_counter(), time.thread_time()
            explorer.set(**{name: b if k % 2 == 0 else a})
            cpu.append(time.thread_time() - start_cpu)
            wall.append(time.perf_counter() - start)
        assert explorer.error is None, explorer.error
        med_cpu, upd = 1e3 * statistics.median(cpu), 1e3 * statistics.median(spent)
        row = (
            f"| {label} | {1e3 * statistics.median(wall):.0f} | {1e3 * max(wall):.0f} "
            f"| {med_cpu:.0f} | {upd:.0f} | {len(explorer.png) // 1024} |"
        )
        print(row, flush=True)
        rows.append(row)
    if write:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        write_section(
            "Explorer redraw time (headless)",
            f"""Measured with `python benchmarks/widget_latency.py --headless` ({os.cpu_count()} cores, one thread,
load average {load:.1f} at the end): {HEADLESS_CHANGES} `explorer.set(...)` calls alternating between two cached
settings, after a warm-up. `update` is the explorer's own drawing (clearing and re-plotting included), `render`
the Agg draw plus PNG encoding. Wall-clock times depend on what else runs on the machine; CPU time
(`time.thread_time`) of the redraw does not, so compare CPU times across runs. Browser latency adds the
comm round trip and the image decode to the wall-clock time.

| explorer | median ms | max ms | median CPU ms | of which update (wall) ms | PNG KiB |
|---|---|---|---|---|---|
"""
            + "\n".join(rows),
        )


# -- through a live kernel ----------------------------------------------------------------------------
KERNEL_SETUP = """
import json, torch
torch.set_num_threads(1)
from benchmarks.widget_latency import _lesson01_style
explorer, name, values = _lesson01_style({mode!r})
print(json.dumps({{"control": explorer.controls[name].model_id, "image": explorer._image.model_id,
                  "values": values}}))
"""


def kernel(write: bool = True) -> None:
    """Comm message in, image update out: a live kernel driven over ZMQ as JupyterLab drives it."""
    import json

    from jupyter_client.manager import start_new_kernel

    rows = []
    for mode, label in (("clear", "cleared"), ("clear_data", "clear=False + clear_data")):
        km, kc = start_new_kernel(kernel_name="python3", cwd=str(ROOT))
        try:
            msg_id = kc.execute(KERNEL_SETUP.format(mode=mode))
            ids = None
            while ids is None:
                m = kc.get_iopub_msg(timeout=120)
                if m["msg_type"] == "stream" and m["parent_header"].get("msg_id") == msg_id:
                    ids = json.loads(m["content"]["text"])
                elif m["msg_type"] == "error":
                    raise RuntimeError("\n".join(m["content"]["traceback"]))
            a, b = ids["values"]
            times = []
            for k in range(4 + HEADLESS_CHANGES):
                value = b if k % 2 == 0 else a
                data = {"method": "update", "state": {"value": value}, "buffer_paths": []}
                msg = kc.session.msg("comm_msg", {"comm_id": ids["control"], "data": data})
                start = time.perf_counter()
                kc.shell_channel.send(msg)
                while True:  # until the new image arrives
                    m = kc.get_iopub_msg(timeout=60)
                    if m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == ids["image"]:
                        break
                if k >= 4:  # after a warm-up
                    times.append(time.perf_counter() - start)
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
        row = f"| lesson-01 style, {label} | {1e3 * statistics.median(times):.0f} | {1e3 * max(times):.0f} |"
        print(row, flush=True)
        rows.append(row)
    if write:
        write_section(
            "Explorer latency through a kernel (headless)",
            f"""Measured with `python benchmarks/widget_latency.py --kernel` ({os.cpu_count()} cores): a live ipykernel
driven over ZMQ as JupyterLab drives it, {HEADLESS_CHANGES} slider changes (comm messages) after a warm-up, timed from
sending the change to receiving the new image. What a browser adds on top: the server's websocket hop and
the image decode.

| explorer | median ms | max ms |
|---|---|---|
"""
            + "\n".join(rows),
        )


if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--headless" in argv:
        headless(write="--no-write" not in argv)
    elif "--kernel" in argv:
        kernel(write="--no-write" not in argv)
    else:
        browser(argv)
