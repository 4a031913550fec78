"""Grade chosen answers to a lesson's exercises with real nbgrader, cell by cell.

The per-lesson exercise tests (``tests/test_exercises_lessonNN.py``) use this to check that each
exercise's autograder gives 0 points to a typical wrong answer and full points to the reference:

>>> scores = grade_answers(tmp_path, "01_backprop", {"wrong": {"ex1_delta": "def delta(...): ..."}})
>>> scores["wrong"]["ex1_delta_test"]   # (points scored, points available) of that graded cell

An answer replaces the whole source of the *student* cell (the released cell that holds
``# YOUR CODE HERE``) whose nbgrader ``grade_id`` is the key; cells not named keep the released
stub, so they score 0.
"""

from __future__ import annotations

import json
from pathlib import Path

from vgcourse.course import instructor


def _source(cell: dict) -> str:
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def solution_cells(lesson: str) -> dict[str, str]:
    """``{grade_id: source}`` of the source notebook's solution cells (the reference answers)."""
    cells = json.loads((instructor.lessons_dir() / f"{lesson}.ipynb").read_text("utf-8"))["cells"]
    return {
        cell["metadata"]["nbgrader"]["grade_id"]: _source(cell)
        for cell in cells
        if cell.get("metadata", {}).get("nbgrader", {}).get("solution")
    }


def student_notebook(released: Path, answers: dict[str, str]) -> dict:
    """The released student notebook with the cells named in ``answers`` filled in."""
    nb = json.loads(released.read_text("utf-8"))
    known = set()
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        grade_id = meta.get("grade_id")
        if meta.get("solution") and grade_id in answers:
            cell["source"] = answers[grade_id]
            known.add(grade_id)
    missing = set(answers) - known
    if missing:
        raise ValueError(f"no solution cell with grade_id {sorted(missing)} in {released}")
    return nb


def grade_answers(
    root: Path, lesson: str, students: dict[str, dict[str, str]]
) -> dict[str, dict[str, tuple[float, float]]]:
    """Autograde one submission per student; ``{student: {grade_id: (score, max)}}`` of graded cells.

    ``root`` is an empty folder for the course; ``students`` maps a student id to their answers
    (``{grade_id: cell source}``).
    """
    course = instructor.init_course(root / "course", [lesson])
    instructor.assign(course, [lesson])
    released = course / "release" / lesson / f"{lesson}.ipynb"
    submissions = root / "submissions"
    for student, answers in students.items():
        folder = submissions / student
        folder.mkdir(parents=True)
        nb = student_notebook(released, answers)
        (folder / f"{lesson}.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    instructor.grade(course, lesson, submissions, feedback=False)
    return cell_scores(course, lesson)


def cell_scores(course: Path, lesson: str) -> dict[str, dict[str, tuple[float, float]]]:
    """``{student: {grade_id: (auto score, max score)}}`` from the gradebook (autograded cells only)."""
    from nbgrader.api import Gradebook

    out: dict[str, dict[str, tuple[float, float]]] = {}
    with Gradebook(f"sqlite:///{Path(course).resolve() / 'gradebook.db'}") as gb:
        for submission in gb.assignment_submissions(lesson):
            cells = out.setdefault(submission.student.id, {})
            for notebook in submission.notebooks:
                for g in notebook.grades:
                    if g.auto_score is not None:
                        cells[g.name] = (float(g.auto_score), float(g.max_score))
    return out
