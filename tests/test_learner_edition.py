"""The learner edition (``vgcourse learn DIR``): answers out of sight, every lesson still runs.

For every lesson: no line of a solution appears outside its "Show a solution" block and no line of a
hidden test appears at all; every solution is offered once, collapsed, after its check; stubs are
tagged so Run All carries on; claim cells are folded; and a learner who pastes each shown solution
into its stub runs the whole lesson with no error and no warning. Writing the edition keeps a learner's own work.
(The untouched learner edition is run top to bottom in JupyterLab by tests/test_browser.py.)
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from vgcourse.course import cli, learner, lesson_files

LESSONS = lesson_files.lesson_names()
SOURCE = lesson_files.lessons_dir()
MARKERS = {
    "### BEGIN SOLUTION": "solution",
    "### END SOLUTION": None,
    "### BEGIN HIDDEN TESTS": "hidden",
    "### END HIDDEN TESTS": None,
}


def _text(cell: dict) -> str:
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def source_lines(name: str) -> dict[str, Counter]:
    """Stripped non-empty lines of a source lesson: public, inside solutions, inside hidden tests."""
    lines = {"public": Counter(), "solution": Counter(), "hidden": Counter()}
    for cell in json.loads((SOURCE / f"{name}.ipynb").read_text("utf-8"))["cells"]:
        inside = "public"
        for line in _text(cell).splitlines():
            stripped = line.strip()
            if stripped in MARKERS:
                inside = MARKERS[stripped] or "public"
            elif stripped:
                lines[inside][stripped] += 1
    return lines


def edition(name: str) -> dict:
    return learner.learner_notebook(json.loads((SOURCE / f"{name}.ipynb").read_text("utf-8")))


def is_solution_block(cell: dict) -> bool:
    return cell["cell_type"] == "markdown" and "solution" in cell["metadata"].get("tags", [])


@pytest.mark.parametrize("name", LESSONS)
def test_no_answer_outside_its_solution_block(name):
    lines = source_lines(name)
    secret_solution = set(lines["solution"]) - set(lines["public"])
    secret_hidden = set(lines["hidden"]) - set(lines["public"])
    assert secret_solution, f"{name}: no solution line to hide (is the lesson's exercise gone?)"
    for i, cell in enumerate(edition(name)["cells"]):
        for line in _text(cell).splitlines():
            stripped = line.strip()
            assert stripped not in secret_hidden, f"{name} cell {i} shows a hidden test: {line}"
            assert stripped not in MARKERS, f"{name} cell {i} keeps an nbgrader marker"
            if not is_solution_block(cell):
                assert stripped not in secret_solution, f"{name} cell {i} shows a solution: {line}"


@pytest.mark.parametrize("name", LESSONS)
def test_every_solution_offered_once_collapsed_after_its_check(name):
    source = json.loads((SOURCE / f"{name}.ipynb").read_text("utf-8"))["cells"]
    n_solutions = sum("### BEGIN SOLUTION" in _text(c) for c in source)
    cells = edition(name)["cells"]
    blocks = [i for i, c in enumerate(cells) if is_solution_block(c)]
    assert len(blocks) == n_solutions, (name, blocks)
    for i in blocks:
        text = _text(cells[i])
        assert text.startswith("<details>\n<summary>Show a solution</summary>"), text[:80]
        assert "<details open" not in text and text.rstrip().endswith("</details>")
        before = cells[i - 1]
        if "```python" in text:  # code: offered after the check that follows the stub
            assert before["cell_type"] == "code" and "NotImplementedError()" not in _text(before)
            stub = next(c for c in reversed(cells[:i]) if "NotImplementedError()" in _text(c))
            assert "raises-exception" in stub["metadata"]["tags"], _text(stub)
            assert "raises-exception" in before["metadata"]["tags"], _text(before)
        else:  # a written answer: offered right after the answer cell
            assert before["cell_type"] == "markdown" and learner.MARKDOWN_STUB in _text(before)
    assert not any("nbgrader" in c["metadata"] for c in cells)


@pytest.mark.parametrize("name", LESSONS)
def test_claim_cells_are_folded(name):
    for cell in edition(name)["cells"]:
        if cell["cell_type"] == "code" and "vg.claim(" in _text(cell):
            assert "claims" in cell["metadata"].get("tags", []), _text(cell)[:200]
            assert cell["metadata"]["jupyter"]["source_hidden"] is True
            assert "hide-input" in cell["metadata"]["tags"]


def pasted(name: str) -> tuple[dict, list[int]]:
    """The learner edition with each shown solution pasted into the stub before it, and the indices
    of the pasted cells and of their checks."""
    nb = edition(name)
    cells, exercise_cells = nb["cells"], []
    for i, cell in enumerate(cells):
        body = re.search(r"```python\n(.*)\n```", _text(cell), re.S)
        if not is_solution_block(cell) or body is None:  # not a solution, or a written answer
            continue
        j = max(k for k in range(i) if "NotImplementedError()" in _text(cells[k]))
        cells[j]["source"] = body.group(1)
        exercise_cells += [j, i - 1]
    return nb, exercise_cells


@pytest.mark.parametrize("name", LESSONS)
def test_pasting_the_shown_solutions_runs_the_lesson_without_error(name, tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    monkeypatch.setenv("VGCOURSE_SCALE", "quick")
    nb, exercise_cells = pasted(name)
    assert exercise_cells, f"{name}: no code exercise"
    nb = nbformat.from_dict(nb)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # an error in an untagged cell raises CellExecutionError naming the cell
    warned = [
        (i, o["text"][:300])
        for i, cell in enumerate(nb.cells)
        for o in cell.get("outputs", [])
        if o.output_type == "stream" and o.name == "stderr" and "Warning" in o["text"]
    ]
    assert not warned, f"{name}: a warning in the output of cell {warned[0][0]}: {warned[0][1]}"
    for i in exercise_cells:  # the exercise cells are tagged raises-exception: look at them
        errors = [o for o in nb.cells[i].outputs if o.output_type == "error"]
        assert not errors, f"{name} cell {i} failed with the shown solution: {errors[0]['evalue']}"


def test_writing_keeps_the_learners_work(tmp_path, capsys):
    first = learner.write_learner_edition(tmp_path, ["01", "04"])
    assert first == {"01_backprop.ipynb": "new", "04_initialization.ipynb": "new"}
    assert learner.write_learner_edition(tmp_path, ["01"]) == {"01_backprop.ipynb": "unchanged"}
    mine = tmp_path / "01_backprop.ipynb"
    mine.write_text(mine.read_text("utf-8").replace("YOUR CODE HERE", "my answer"), "utf-8")
    assert learner.write_learner_edition(tmp_path, ["01"]) == {"01_backprop.ipynb": "kept"}
    assert "my answer" in mine.read_text("utf-8")
    # the source changes: an untouched lesson is updated, an edited one kept with the new one beside
    changed = tmp_path / "source"
    changed.mkdir()
    for name in ("01_backprop", "04_initialization"):
        nb = json.loads((SOURCE / f"{name}.ipynb").read_text("utf-8"))
        nb["cells"].append({"cell_type": "markdown", "metadata": {}, "source": "New section."})
        (changed / f"{name}.ipynb").write_text(json.dumps(nb), "utf-8")
    report = learner.write_learner_edition(tmp_path, ["01", "04"], source_dir=changed)
    assert report == {
        "01_backprop.ipynb": "kept; new version in 01_backprop.updated.ipynb",
        "04_initialization.ipynb": "updated",
    }
    assert "my answer" in mine.read_text("utf-8")
    assert "New section." in (tmp_path / "01_backprop.updated.ipynb").read_text("utf-8")
    report = learner.write_learner_edition(tmp_path, ["01"], source_dir=changed, force=True)
    assert report == {"01_backprop.ipynb": "updated"}
    assert "my answer" not in mine.read_text("utf-8")
    assert cli.main(["learn", str(tmp_path / "cli"), "02"]) == 0
    out = capsys.readouterr().out
    assert "02_chain_rule_shrinkage.ipynb: new" in out and "jupyter lab" in out


def test_bad_arguments(tmp_path, capsys):
    with pytest.raises(ValueError, match="lesson '10' is not one of"):
        learner.write_learner_edition(tmp_path, ["10"])
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="folder must be a directory"):
        learner.write_learner_edition(a_file)
    assert cli.main(["learn", str(tmp_path / "x"), "nope"]) == 2
    assert "lesson 'nope' is not one of" in capsys.readouterr().err


def test_stubs_keep_the_indentation_and_markdown_answers():
    code = "def f(x):\n    # doc\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n"
    assert learner.stub_solutions(code, "code") == (
        "def f(x):\n    # doc\n    # YOUR CODE HERE\n    raise NotImplementedError()"
    )
    assert learner.without_markers(code) == "def f(x):\n    # doc\n    return 2 * x"
    text = "### BEGIN SOLUTION\nBecause $x$.\n### END SOLUTION"
    assert learner.stub_solutions(text, "markdown") == "YOUR ANSWER HERE"
    tests = "check(f(1))\n### BEGIN HIDDEN TESTS\ncheck(f(2))\n### END HIDDEN TESTS\n"
    assert learner.remove_hidden_tests(tests) == "check(f(1))"
    with pytest.raises(ValueError, match="has no '### END SOLUTION'"):
        learner.stub_solutions("### BEGIN SOLUTION\nx = 1\n", "code")


def test_the_wheel_ships_every_lesson(tmp_path):
    import subprocess
    import sys
    import zipfile

    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*cmd, "-w", str(tmp_path), str(root)], check=True, timeout=300)
    (wheel,) = tmp_path.glob("vgcourse-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(
        Path(n).stem for n in names if n.startswith("vgcourse/course/lesson_notebooks/")
    )
    assert shipped == LESSONS
