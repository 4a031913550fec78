"""Assign and autograde the lessons with nbgrader (``pip install "vgcourse[instructor]"``).

Each lesson is one nbgrader *assignment* named after its file (``01_backprop``). The lessons in
``lessons/`` are nbgrader source notebooks: solutions between ``### BEGIN SOLUTION`` and
``### END SOLUTION``, hidden tests between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``,
graded cells marked with nbgrader metadata. The workflow, also available as ``vgcourse`` commands:

1. :func:`init_course` (``vgcourse init COURSE``): a course folder with ``nbgrader_config.py`` and
   ``source/<lesson>/<lesson>.ipynb`` copied from ``lessons/``;
2. :func:`assign` (``vgcourse assign COURSE``): ``nbgrader generate_assignment`` writes the student
   versions to ``release/<lesson>/`` (solutions replaced, hidden tests removed);
3. :func:`grade` (``vgcourse grade COURSE LESSON SUBMISSIONS``): copies each student's notebook from
   ``SUBMISSIONS/<student>/`` into ``submitted/``, runs ``nbgrader autograde`` and
   ``nbgrader generate_feedback`` (HTML in ``feedback/``);
4. :func:`export_grades` (``vgcourse export COURSE grades.csv``): ``nbgrader export`` to CSV.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .lesson_files import choose_lessons, lesson_names, lessons_dir  # noqa: F401 (re-exported)

CONFIG = '''"""nbgrader configuration written by `vgcourse init`."""
c = get_config()  # noqa: F821
c.CourseDirectory.course_id = {course_id!r}
c.CourseDirectory.root = {root!r}
# Lessons run real experiments: allow each cell up to 10 minutes when autograding.
c.Execute.timeout = 600
c.Execute.interrupt_on_timeout = True
# Unanswered exercises raise NotImplementedError; the notebook must still run to the end.
c.ClearSolutions.code_stub = {{"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}}
c.Exchange.root = {exchange!r}
'''


class NbgraderMissing(RuntimeError):
    """nbgrader is not installed."""


def _require_nbgrader() -> None:
    try:
        import nbgrader  # noqa: F401
    except ImportError:
        raise NbgraderMissing(
            'nbgrader is not installed; run: pip install "vgcourse[instructor]"'
        ) from None


def _run(course: Path, *args: str) -> subprocess.CompletedProcess:
    _require_nbgrader()
    cmd = [sys.executable, "-m", "nbgrader", *args]
    # nbgrader runs `alembic` as a program: put this Python's scripts folder on PATH, so the
    # command works from a virtual environment that is not activated (e.g. `.venv/bin/python`)
    scripts = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": scripts + os.pathsep + os.environ.get("PATH", "")}
    result = subprocess.run(cmd, cwd=course, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(
            f"`nbgrader {' '.join(args)}` failed in {course}:\n{result.stdout}\n{result.stderr}"
        )
    return result


def init_course(
    course: Path | str,
    lessons: list[str] | None = None,
    *,
    course_id: str = "vgcourse",
    source_dir: Path | str | None = None,
) -> Path:
    """Create (or refresh) an nbgrader course folder holding the chosen lessons (default: all),
    copied from ``source_dir`` (default: :func:`~vgcourse.course.lesson_files.lessons_dir`)."""
    course = Path(course).resolve()
    source_dir = lessons_dir() if source_dir is None else Path(source_dir)
    chosen = choose_lessons(lessons, source_dir)
    (course / "source").mkdir(parents=True, exist_ok=True)
    exchange = course / "exchange"
    exchange.mkdir(exist_ok=True)
    (course / "nbgrader_config.py").write_text(
        CONFIG.format(course_id=course_id, root=str(course), exchange=str(exchange)),
        encoding="utf-8",
    )
    for name in chosen:
        target = course / "source" / name
        target.mkdir(exist_ok=True)
        shutil.copy2(source_dir / f"{name}.ipynb", target / f"{name}.ipynb")
    return course


def assign(course: Path | str, lessons: list[str] | None = None) -> list[Path]:
    """Generate the student version of each lesson into ``release/<lesson>/``; returns the notebooks."""
    course = Path(course).resolve()
    names = lessons or sorted(p.name for p in (course / "source").iterdir() if p.is_dir())
    released = []
    for name in names:
        _run(course, "generate_assignment", name, "--force")
        released.extend(sorted((course / "release" / name).glob("*.ipynb")))
    return released


def grade(
    course: Path | str, lesson: str, submissions: Path | str, *, feedback: bool = True
) -> dict[str, float]:
    """Autograde every student's submission of ``lesson``; returns ``{student: score}``.

    ``submissions`` holds one folder per student (the folder name is the student id) containing the
    student's notebook (``<lesson>.ipynb``).
    """
    course = Path(course).resolve()
    submissions = Path(submissions)
    if not (course / "source" / lesson).is_dir():
        raise ValueError(
            f"lesson {lesson!r} is not in {course / 'source'}; run `vgcourse init` first"
        )
    students = (
        sorted(p.name for p in submissions.iterdir() if p.is_dir()) if submissions.is_dir() else []
    )
    if not students:
        raise ValueError(f"submissions folder {submissions} has no student folders")
    for student in students:
        notebook = submissions / student / f"{lesson}.ipynb"
        if not notebook.exists():
            raise ValueError(f"{student} has no {lesson}.ipynb in {submissions / student}")
        target = course / "submitted" / student / lesson
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(notebook, target / notebook.name)
        _run(course, "autograde", lesson, "--student", student, "--force")
        if feedback:
            _run(course, "generate_feedback", lesson, "--student", student, "--force")
    scores = {}
    for row in _export_rows(course):
        if row["assignment"] == lesson and row["student_id"] in students:
            scores[row["student_id"]] = float(row["raw_score"])
    return scores


def _export_rows(course: Path) -> list[dict]:
    out = course / "grades.csv"
    _run(course, "export", "--to", str(out))
    with out.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def export_grades(course: Path | str, to: Path | str) -> Path:
    """Write every grade in the course's gradebook to a CSV file (nbgrader's export format)."""
    course = Path(course).resolve()
    to = Path(to).resolve()
    _export_rows(course)
    if to != course / "grades.csv":
        shutil.copy2(course / "grades.csv", to)
    return to


def max_score(course: Path | str, lesson: str) -> float:
    """The points available in a lesson (from the gradebook, after :func:`assign`)."""
    from nbgrader.api import Gradebook

    course = Path(course).resolve()
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return float(gb.find_assignment(lesson).max_score)


def autograded_scores(course: Path | str, lesson: str) -> dict[str, tuple[float, float]]:
    """``{student: (points scored, points available)}`` over the *autograded* cells of ``lesson``.

    Written answers (manually graded markdown cells) are left out: they wait for the instructor in
    ``nbgrader formgrader``.
    """
    from nbgrader.api import Gradebook

    course = Path(course).resolve()
    out = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for submission in gb.assignment_submissions(lesson):
            got = total = 0.0
            for notebook in submission.notebooks:
                for g in notebook.grades:
                    if g.auto_score is not None:
                        got += g.auto_score
                        total += g.max_score
            out[submission.student.id] = (got, total)
    return out
