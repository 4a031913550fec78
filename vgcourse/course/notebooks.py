"""Notebook housekeeping: strip outputs before committing, and run a lesson in a fresh kernel.

Command line::

    python -m vgcourse.notebooks clean lessons/*.ipynb     # remove outputs and execution counts
    python -m vgcourse.notebooks check lessons/*.ipynb     # exit 1 if any notebook carries outputs
    python -m vgcourse.notebooks run lessons/01_backprop.ipynb   # execute, print seconds
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


def has_outputs(path: str | Path) -> bool:
    """True if any code cell of the notebook has outputs or an execution count."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    return any(
        c.cell_type == "code" and (c.get("outputs") or c.get("execution_count")) for c in nb.cells
    )


CLAIMS_TAG = "claims"


def fold_claims(cell: dict) -> None:
    """Fold the source of a code cell tagged ``claims`` (its ``vg.claim`` checks): JupyterLab's
    ``jupyter.source_hidden`` and the ``hide-input`` tag of Jupyter Book / MyST-NB. The learner sees
    the printed ticks; one click on the fold shows the code."""
    tags = cell.get("metadata", {}).get("tags", [])
    if cell.get("cell_type") != "code" or CLAIMS_TAG not in tags:
        return
    cell["metadata"].setdefault("jupyter", {})["source_hidden"] = True
    if "hide-input" not in tags:
        tags.append("hide-input")


def clean(path: str | Path) -> bool:
    """Strip outputs and execution counts, fold ``claims`` cells (:func:`fold_claims`) and set the
    ``python3`` kernelspec; True if the file changed."""
    import nbformat

    path = Path(path)
    before = path.read_text(encoding="utf-8")
    nb = nbformat.reads(before, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
        fold_claims(cell)
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    after = nbformat.writes(nb) + "\n"
    if after != before:
        path.write_text(after, encoding="utf-8")
        return True
    return False


def run(path: str | Path, *, timeout: int = 600, env: dict | None = None) -> float:
    """Execute a notebook top to bottom in a fresh ``python3`` kernel (in a temporary folder); seconds."""
    import os

    import nbformat
    from nbclient import NotebookClient

    path = Path(path).resolve()
    nb = nbformat.read(str(path), as_version=4)
    old = dict(os.environ)
    os.environ.update(env or {})
    try:
        with tempfile.TemporaryDirectory() as tmp:
            client = NotebookClient(
                nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": tmp}}
            )
            start = time.perf_counter()
            client.execute()
            return time.perf_counter() - start
    finally:
        os.environ.clear()
        os.environ.update(old)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vgcourse.notebooks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("command", choices=("clean", "check", "run"))
    parser.add_argument("paths", nargs="+")
    args = parser.parse_args(argv)
    status = 0
    for p in args.paths:
        if args.command == "clean":
            print(f"{'cleaned' if clean(p) else 'clean  '} {p}")
        elif args.command == "check":
            if has_outputs(p):
                print(f"has outputs: {p}")
                status = 1
        else:
            print(f"{run(p):7.1f} s  {p}")
    return status


if __name__ == "__main__":
    sys.exit(main())
