"""End-to-end: every lesson in a real JupyterLab in a real browser, its explorers moved as a learner would.

JupyterLab runs on loopback with a known token over a scratch copy of the lessons; Debian's Chromium
is driven by Playwright. For each lesson: run all cells, then in every explorer move a slider and
change a dropdown, and check that the plot image and the readout changed and that no cell shows a
traceback. A screenshot of each explorer after interaction goes to ``test-artifacts/`` (not committed).
Skipped when Playwright or Chromium is missing (``.ci/run`` installs both).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("playwright")
from lab_driver import (  # noqa: E402
    CHROMIUM,
    ExplorerHandle,
    LabServer,
    chromium,
    copy_lessons,
    error_outputs,
    run_all,
)

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb"))
ARTIFACTS = ROOT / "test-artifacts"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and shutil.which("chromium") is None,
    reason="Debian's chromium is not installed",
)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    copy_lessons(LESSONS, root)
    with LabServer(root) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_explorers_in_jupyterlab(lab, browser, lesson):
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        run_all(page, lab, lesson.name)
        errors = error_outputs(page)
        assert not errors, f"{lesson.name}: a cell failed in JupyterLab:\n{errors[0][:2000]}"
        n = ExplorerHandle.count(page)
        assert n >= 1, f"{lesson.name} shows no explorer (no widget plot image rendered)"
        for i in range(n):
            ex = ExplorerHandle(page, i)
            ex.image.scroll_into_view_if_needed()
            assert ex.src().startswith("blob:") or ex.src().startswith("data:"), (
                "explorer plot not rendered"
            )
            moved = 0
            if ex.sliders().count():
                before_src, before_text = ex.src(), ex.readout()
                ex.nudge_slider(0)
                assert ex.src() != before_src
                moved += 1
                readout_changed = ex.readout() != before_text
            if ex.dropdowns().count():
                before_src, before_text = ex.src(), ex.readout()
                ex.choose(0)
                assert ex.src() != before_src
                readout_changed = moved == 0 or readout_changed or ex.readout() != before_text
                moved += 1
            assert moved, f"{lesson.name} explorer {i} has neither a slider nor a dropdown"
            assert readout_changed, f"{lesson.name} explorer {i}: the readout did not change"
            ex.box.screenshot(path=str(ARTIFACTS / f"{lesson.stem}-explorer-{i}.png"))
        errors = error_outputs(page)
        assert not errors, f"{lesson.name}: an explorer raised in JupyterLab:\n{errors[0][:2000]}"
    finally:
        page.close()
        lab.shutdown_kernels()  # an idle lesson kernel still holds ~0.6 GB and wakes up now and then
