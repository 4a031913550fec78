"""The instructor workflow with real nbgrader: release, leak check, student run, autograde.

For every lesson: the student version is generated; none of its cells contains a line of a solution
or of a hidden test from the source; the reference solution autogrades to full marks and the
untouched student version to zero; and in the untouched student version every error raised while
running top to bottom is a NotImplementedError from an exercise cell.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

nbgrader = pytest.importorskip("nbgrader")

from vgcourse.course import cli, instructor  # noqa: E402

LESSONS = instructor.lesson_names()
BEGIN = {"solution": "### BEGIN SOLUTION", "hidden": "### BEGIN HIDDEN TESTS"}
END = {"solution": "### END SOLUTION", "hidden": "### END HIDDEN TESTS"}


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def split_lines(path: Path) -> tuple[Counter, Counter]:
    """(public, secret) stripped non-empty lines of a notebook: secret = between solution or hidden-test markers."""
    public, secret = Counter(), Counter()
    for cell in _cells(path):
        inside = None
        for line in _source(cell).splitlines():
            stripped = line.strip()
            if stripped in BEGIN.values():
                inside = stripped
                continue
            if stripped in END.values():
                inside = None
                continue
            if stripped:
                (secret if inside else public)[stripped] += 1
    return public, secret


def secret_lines(path: Path) -> list[str]:
    """The lines that appear only between solution / hidden-test markers of a source notebook."""
    public, secret = split_lines(path)
    return [line for line in secret if line not in public]


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    assert cli.main(["init", str(root)]) == 0
    assert cli.main(["assign", str(root)]) == 0
    return root


def test_every_lesson_is_an_assignment_with_exercises():
    assert LESSONS, "no lessons found"
    for name in LESSONS:
        cells = _cells(instructor.lessons_dir() / f"{name}.ipynb")
        graded = [
            c
            for c in cells
            if c["metadata"].get("nbgrader", {}).get("grade") and c["cell_type"] == "code"
        ]
        assert len(graded) >= 2, (
            f"{name} has {len(graded)} graded code exercises, expected at least 2"
        )
        assert secret_lines(instructor.lessons_dir() / f"{name}.ipynb"), (
            f"{name} has no solution lines"
        )


@pytest.mark.parametrize("lesson", LESSONS)
def test_student_version_leaks_nothing(course, lesson):
    released = course / "release" / lesson / f"{lesson}.ipynb"
    assert released.exists()
    text = "\n".join(_source(c) for c in _cells(released))
    for marker in (*BEGIN.values(), *END.values()):
        assert marker not in text
    # every line of every solution and hidden test, checked against every released notebook: a line may
    # appear in a student version no more often than it appears outside the secret regions of its source
    secrets = set()
    for name in LESSONS:
        secrets |= set(split_lines(instructor.lessons_dir() / f"{name}.ipynb")[1])
    public, _ = split_lines(instructor.lessons_dir() / f"{lesson}.ipynb")
    released_lines = Counter(line.strip() for line in text.splitlines() if line.strip())
    leaks = [
        line
        for line, n in released_lines.items()
        if line in secrets
        and n > public[line]
        and len(line) > 3
        and any(ch.isalnum() for ch in line)
    ]
    assert not leaks, (
        f"{lesson}: the student version contains solution/hidden-test lines: {leaks[:5]}"
    )
    assert "raise NotImplementedError()" in text


@pytest.mark.parametrize("lesson", LESSONS)
def test_autograde_reference_full_marks_student_zero(course, lesson, tmp_path):
    (tmp_path / "reference").mkdir()
    (tmp_path / "untouched").mkdir()
    (tmp_path / "reference" / f"{lesson}.ipynb").write_bytes(
        (instructor.lessons_dir() / f"{lesson}.ipynb").read_bytes()
    )
    (tmp_path / "untouched" / f"{lesson}.ipynb").write_bytes(
        (course / "release" / lesson / f"{lesson}.ipynb").read_bytes()
    )
    instructor.grade(course, lesson, tmp_path, feedback=True)
    scores = instructor.autograded_scores(course, lesson)
    got, total = scores["reference"]
    assert total > 0 and got == total, f"{lesson}: reference solution scored {got} / {total}"
    assert scores["untouched"][0] == 0, (
        f"{lesson}: untouched student version scored {scores['untouched']}"
    )
    assert (course / "feedback" / "reference" / lesson / f"{lesson}.html").exists()

    # the untouched student version ran top to bottom; only exercise cells failed, with NotImplementedError
    executed = course / "autograded" / "untouched" / lesson / f"{lesson}.ipynb"
    for cell in _cells(executed):
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if not errors:
            continue
        meta = cell["metadata"].get("nbgrader", {})
        assert meta.get("solution") or meta.get("grade"), (
            f"{lesson}: a non-exercise cell failed: {_source(cell)[:200]}"
        )
        assert "raises-exception" in cell["metadata"].get("tags", []), (
            f"{lesson}: exercise cell not tagged raises-exception"
        )
        assert errors[0]["ename"] == "NotImplementedError", (
            f"{lesson}: exercise cell failed with {errors[0]['ename']}: {errors[0]['evalue'][:200]}"
        )


def test_export_csv(course, tmp_path):
    out = tmp_path / "grades.csv"
    assert cli.main(["export", str(course), str(out)]) == 0
    assert out.read_text().splitlines()[0].startswith("assignment")


def test_cli_errors(tmp_path, capsys):
    assert cli.main(["init", str(tmp_path / "c"), "99"]) == 2
    assert "not one of" in capsys.readouterr().err
    assert cli.main(["grade", str(tmp_path / "c"), LESSONS[0], str(tmp_path)]) == 2
