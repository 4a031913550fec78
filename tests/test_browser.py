"""End-to-end: the learner edition of every lesson in a real JupyterLab in a real browser, as a learner uses it.

JupyterLab runs on loopback with a known token over the learner edition (``vgcourse learn``, written
into a scratch folder); Debian's Chromium is driven by Playwright. For each lesson: Run All, then check
that every cell ran, that the only tracebacks are the unanswered exercises' NotImplementedError in
cells tagged ``raises-exception``, that every claim cell is folded and printed its ticks, and that
every "Show a solution" block is collapsed; then in every explorer move a slider and change a
dropdown, and check that the plot image and the readout changed. Screenshots go to
``test-artifacts/`` (not committed): the lesson at its first claims, and each explorer after
interaction. Skipped when Playwright or Chromium is missing (``.ci/run`` installs both).
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
    learner_state,
    run_all,
)

from vgcourse.course import learner, lesson_files  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LESSONS = [Path(f"{name}.ipynb") for name in lesson_files.lesson_names()]
ARTIFACTS = ROOT / "test-artifacts"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and shutil.which("chromium") is None,
    reason="Debian's chromium is not installed",
)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    learner.write_learner_edition(root)
    with LabServer(root) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def check_learner_view(page, lesson: Path) -> None:
    """Tracebacks only from unanswered exercises; claims folded and ticked; solutions collapsed."""
    seen = learner_state(page)
    for error in seen["errors"]:
        assert "raises-exception" in error["tags"] and "NotImplementedError" in error["text"], (
            f"{lesson.name}: cell {error['index']} failed, and not as an unanswered exercise:\n"
            f"{error['text']}"
        )
    assert seen["errors"], f"{lesson.name}: no exercise stub raised NotImplementedError"
    assert seen["claims"], f"{lesson.name}: no claims cell"
    for claims in seen["claims"]:
        assert claims["folded"], f"{lesson.name}: claims cell {claims['index']} is not folded"
        assert "\u2713" in claims["output"], (
            f"{lesson.name}: claims cell {claims['index']} printed no tick: {claims['output']!r}"
        )
    assert seen["solutions"], f"{lesson.name}: no 'Show a solution' block rendered"
    for block in seen["solutions"]:
        assert block["summary"] == learner.SUMMARY, block
        assert not block["open"] and not block["body_visible"], (
            f"{lesson.name}: the solution block in cell {block['index']} is not collapsed"
        )
    first = seen["claims"][0]["index"]
    page.locator(".jp-Notebook .jp-Cell").nth(first).scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / f"{lesson.stem}-learner.png"))


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_explorers_in_jupyterlab(lab, browser, lesson):
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        state = run_all(page, lab, lesson.name, errors_expected=True)
        assert state["finished"] == state["code_cells"], (
            f"{lesson.name}: not every cell ran: {state}"
        )
        check_learner_view(page, lesson)
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
        for error in learner_state(page)["errors"]:  # only the unanswered exercises, as before
            assert "raises-exception" in error["tags"] and "NotImplementedError" in error["text"], (
                f"{lesson.name}: an explorer raised in JupyterLab:\n{error['text']}"
            )
    finally:
        page.close()
        lab.shutdown_kernels()  # an idle lesson kernel still holds ~0.6 GB and wakes up now and then
