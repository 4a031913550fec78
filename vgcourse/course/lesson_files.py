"""Where the lesson notebooks (the source, with solutions and nbgrader markers) are found.

In a clone of the repository they are ``lessons/``; after ``pip install vgcourse`` they are package
data, ``vgcourse/course/lesson_notebooks/`` (pyproject maps ``lessons/`` there). Every command that
needs them (``vgcourse learn``, ``init``, ``lessons``) asks :func:`lessons_dir`, which fails loudly
when it finds none instead of doing nothing.
"""

from __future__ import annotations

from pathlib import Path

#: the lesson files: two digits, an underscore, a topic (``01_backprop.ipynb``)
PATTERN = "[0-9][0-9]_*.ipynb"
_REPOSITORY = Path(__file__).resolve().parents[2] / "lessons"
_INSTALLED = Path(__file__).resolve().parent / "lesson_notebooks"


def lessons_dir() -> Path:
    """The folder holding the lesson notebooks: the repository's ``lessons/`` when this package runs
    from a clone, else the copy installed with the package. Raises ``RuntimeError`` when neither
    holds a lesson."""
    for folder in (_REPOSITORY, _INSTALLED):
        if folder.is_dir() and any(folder.glob(PATTERN)):
            return folder
    raise RuntimeError(
        f"no lesson notebooks found (looked in {_REPOSITORY} and {_INSTALLED}); the installation "
        'is incomplete: reinstall with pip install --force-reinstall "vgcourse[course]"'
    )


def lesson_names(folder: Path | str | None = None) -> list[str]:
    """The lesson names (file stems, ``01_backprop``, ...) in order, from ``folder`` or
    :func:`lessons_dir`."""
    folder = lessons_dir() if folder is None else Path(folder)
    return [p.stem for p in sorted(folder.glob(PATTERN))]


def choose_lessons(lessons: list[str] | None, folder: Path | str | None = None) -> list[str]:
    """The lesson names ``lessons`` refers to (full names or numbers such as ``"01"``; all when
    empty). Raises ``ValueError`` naming the unknown one and the choices."""
    available = lesson_names(folder)
    if not lessons:
        return available
    chosen = []
    for name in lessons:
        matches = [a for a in available if name in (a, a.split("_", 1)[0])]
        if len(matches) != 1:
            raise ValueError(
                f"lesson {name!r} is not one of {available} (or their numbers, e.g. '01')"
            )
        chosen.append(matches[0])
    return chosen
