"""The source lessons read as lessons: claims instead of asserts, short plotting cells, no QA cells.

Static checks of ``lessons/*.ipynb`` (the executed checks are nbval's and the learner-edition tests'):
no bare ``assert`` outside the graded exercise cells (a lesson's claims go through ``vg.claim``, in
cells tagged ``claims``, folded), each lesson checks its claims, and a plotting cell a learner reads
stays within about ten lines (what every plot repeats lives in ``vg.plots``).
"""

from __future__ import annotations

import json
import re

import pytest

from vgcourse.course import lesson_files

LESSONS = lesson_files.lesson_names()
SOURCE = lesson_files.lessons_dir()
MAX_PLOT_LINES = 12  # "about ten lines" (issue 15); formatter-wrapped calls count line by line
PLOTTING = re.compile(r"\bplt\.|\bvg\.plots\.|\bax\d?\.|\baxes\[|\bfig\.|\.imshow\(")


def code_cells(name: str) -> list[tuple[int, dict, list[str]]]:
    """(index, cell, code lines without blanks and comments) of every non-exercise code cell."""
    cells = json.loads((SOURCE / f"{name}.ipynb").read_text("utf-8"))["cells"]
    out = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "code" or "nbgrader" in cell["metadata"]:
            continue
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        lines = [ln for ln in source.splitlines() if ln.strip() and not ln.strip().startswith("#")]
        out.append((i, cell, lines))
    return out


@pytest.mark.parametrize("name", LESSONS)
def test_claims_not_asserts(name):
    claim_cells = 0
    for i, cell, lines in code_cells(name):
        bare = [ln for ln in lines if ln.lstrip().startswith("assert ")]
        assert not bare, f"{name} cell {i}: a bare assert, use vg.claim: {bare[0].strip()}"
        if any("vg.claim(" in ln for ln in lines):
            claim_cells += 1
            tags = cell["metadata"].get("tags", [])
            assert "claims" in tags and "hide-input" in tags, f"{name} cell {i}: tag it claims"
            assert cell["metadata"].get("jupyter", {}).get("source_hidden") is True, (
                f"{name} cell {i}: a claims cell is folded (jupyter.source_hidden)"
            )
    assert claim_cells >= 3, f"{name}: only {claim_cells} claims cells"


@pytest.mark.parametrize("name", LESSONS)
def test_plotting_cells_are_short(name):
    for i, cell, lines in code_cells(name):
        if "claims" in cell["metadata"].get("tags", []):
            continue
        if any(PLOTTING.search(ln) for ln in lines):
            assert len(lines) <= MAX_PLOT_LINES, (
                f"{name} cell {i}: a plotting cell of {len(lines)} lines (at most "
                f"{MAX_PLOT_LINES}); move what every plot repeats into vg.plots"
            )
