"""The learner edition: the lessons as a learner opens them, with the answers out of sight.

The notebooks in ``lessons/`` are the source: each exercise holds its solution between
``### BEGIN SOLUTION`` and ``### END SOLUTION`` and its hidden tests between
``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS`` (nbgrader's markers). The learner edition
(``vgcourse learn DIR``, used by ``make course``) turns each source notebook into:

* every solution region replaced by the stub a student gets (``raise NotImplementedError()`` in
  code, "YOUR ANSWER HERE" in a written answer), the cell tagged ``raises-exception`` so that
  Run All carries on past an unanswered exercise (JupyterLab and nbval both honour the tag);
* hidden tests removed;
* the solution offered right after the exercise's check (after the answer cell for a written
  answer) in a collapsed ``<details>`` block, "Show a solution", which renders collapsed in
  JupyterLab, Colab, GitHub and the course site: a learner has to choose to look;
* the ``claims`` cells folded (:func:`vgcourse.course.notebooks.fold_claims`), the nbgrader
  metadata dropped (the learner edition is not graded), outputs cleared.

:func:`write_learner_edition` writes the edition into a folder and keeps a learner's work: a lesson
the learner has changed since it was written is never overwritten (unless ``force``); when its
source changed meanwhile, the new version is written beside it.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

from .lesson_files import choose_lessons, lessons_dir
from .notebooks import fold_claims

SOLUTION = ("### BEGIN SOLUTION", "### END SOLUTION")
HIDDEN_TESTS = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
MARKDOWN_STUB = "YOUR ANSWER HERE"
SUMMARY = "Show a solution"
MANIFEST = ".vgcourse-learner.json"


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return source if isinstance(source, str) else "".join(source)


def _regions(source: str, markers: tuple[str, str]) -> tuple[list[str], list[list[str]]]:
    """Split ``source`` into the lines outside the ``markers`` and the regions inside them; the
    BEGIN line of each region is kept in the outside lines as a placeholder ``None``."""
    begin, end = markers
    outside: list[Any] = []
    regions: list[list[str]] = []
    inside: list[str] | None = None
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == begin and inside is None:
            inside = []
            outside.append((len(regions), line[: len(line) - len(line.lstrip())]))
        elif stripped == end and inside is not None:
            regions.append(inside)
            inside = None
        elif inside is not None:
            inside.append(line)
        else:
            outside.append(line)
    if inside is not None:
        raise ValueError(f"a {begin!r} region has no {end!r}")
    return outside, regions


def without_markers(source: str) -> str:
    """The full source (the solution itself) with the solution markers removed."""
    marks = set(SOLUTION)
    return "\n".join(line for line in source.splitlines() if line.strip() not in marks).strip("\n")


def stub_solutions(source: str, cell_type: str) -> str:
    """``source`` with every solution region replaced by the student's stub (indented as the
    region was)."""
    outside, _ = _regions(source, SOLUTION)
    stub = CODE_STUB if cell_type == "code" else MARKDOWN_STUB
    lines: list[str] = []
    for item in outside:
        if isinstance(item, tuple):
            indent = item[1]
            lines.extend(indent + s for s in stub.splitlines())
        else:
            lines.append(item)
    return "\n".join(lines)


def remove_hidden_tests(source: str) -> str:
    """``source`` without its hidden-test regions (and without the blank lines they leave at the end)."""
    outside, _ = _regions(source, HIDDEN_TESTS)
    return "\n".join(line for line in outside if not isinstance(line, tuple)).rstrip()


def solution_block(solution: str, cell_type: str) -> dict:
    """A markdown cell offering ``solution`` collapsed: ``<details><summary>Show a solution``."""
    body = f"```python\n{solution}\n```" if cell_type == "code" else solution
    text = f"<details>\n<summary>{SUMMARY}</summary>\n\n{body}\n\n</details>"
    return {"cell_type": "markdown", "metadata": {"tags": ["solution"]}, "source": text}


def _tag(cell: dict, tag: str) -> None:
    tags = cell.setdefault("metadata", {}).setdefault("tags", [])
    if tag not in tags:
        tags.append(tag)


def learner_notebook(source_nb: dict) -> dict:
    """The learner edition of one source notebook (a new dict; ``source_nb`` is not changed)."""
    nb = copy.deepcopy(source_nb)
    cells: list[dict] = []
    pending: list[dict] = []  # solution blocks of code exercises, shown after their check
    for cell in nb["cells"]:
        source = _source(cell)
        grades = cell.get("metadata", {}).get("nbgrader", {}).get("grade", False)
        graded_check = grades and SOLUTION[0] not in source
        cell.get("metadata", {}).pop("nbgrader", None)
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        block = None
        if SOLUTION[0] in source:
            block = solution_block(without_markers(source), cell["cell_type"])
            source = stub_solutions(source, cell["cell_type"])
            if cell["cell_type"] == "code":
                _tag(cell, "raises-exception")
        if HIDDEN_TESTS[0] in source:
            source = remove_hidden_tests(source)
        cell["source"] = source
        fold_claims(cell)
        if block is not None and cell["cell_type"] == "code":
            cells.extend(pending)  # a previous exercise without its own check: show it now
            pending = [block]
            cells.append(cell)
            continue
        cells.append(cell)
        if block is not None:  # a written answer: its solution right after it
            cells.append(block)
        elif graded_check and pending:
            cells.extend(pending)
            pending = []
    cells.extend(pending)
    nb["cells"] = cells
    nb.setdefault("metadata", {})["vgcourse"] = {"edition": "learner"}
    return nb


def _dumps(nb: dict) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write_learner_edition(
    folder: Path | str,
    lessons: list[str] | None = None,
    *,
    force: bool = False,
    source_dir: Path | str | None = None,
) -> dict[str, str]:
    """Write the learner edition of ``lessons`` (default: all) into ``folder``; returns
    ``{file name: what happened}``: ``"new"``, ``"updated"`` (the source changed, the learner's copy
    was untouched), ``"unchanged"``, ``"kept"`` (the learner changed it; the source did not) or
    ``"kept; new version in <file>"`` (both changed). ``force`` overwrites the learner's copies.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"folder must be a directory, got the file {folder}")
    source_dir = lessons_dir() if source_dir is None else Path(source_dir)
    folder.mkdir(parents=True, exist_ok=True)
    manifest_path = folder / MANIFEST
    written = json.loads(manifest_path.read_text("utf-8")) if manifest_path.exists() else {}
    report = {}
    for name in choose_lessons(lessons, source_dir):
        source_nb = json.loads((source_dir / f"{name}.ipynb").read_text("utf-8"))
        text = _dumps(learner_notebook(source_nb))
        target = folder / f"{name}.ipynb"
        current = target.read_text("utf-8") if target.exists() else None
        untouched = current is not None and _digest(current) == written.get(target.name)
        if current is None or untouched or force:
            status = "new" if current is None else "unchanged" if current == text else "updated"
            target.write_text(text, encoding="utf-8")
            written[target.name] = _digest(text)
        elif _digest(text) == written.get(f"{target.name}:source"):
            status = "kept"
        else:
            beside = folder / f"{name}.updated.ipynb"
            beside.write_text(text, encoding="utf-8")
            status = f"kept; new version in {beside.name}"
        written[f"{target.name}:source"] = _digest(text)
        report[target.name] = status
    manifest_path.write_text(json.dumps(written, indent=1, sort_keys=True) + "\n", "utf-8")
    return report
