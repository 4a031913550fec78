"""The learner edition from a plain ``pip install`` (no clone): run by .ci/run outside the repository.

Checks that the lessons came with the package (not from a checkout), that ``vgcourse lessons``
lists all nine and that ``vgcourse learn DIR`` writes every lesson with its solutions folded away.
Prints ``learner edition OK`` on success; exits non-zero with a message otherwise.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from vgcourse.course import lesson_files

source = lesson_files.lessons_dir()
if "site-packages" not in source.parts:
    sys.exit(f"the lessons were found in {source}, not in the installed package")
script = Path(sys.executable).with_name("vgcourse")
listed = subprocess.run([script, "lessons"], capture_output=True, text=True, check=True).stdout
if len(listed.split()) != 9:
    sys.exit(f"`vgcourse lessons` listed {listed.split()}, expected nine lessons")
with tempfile.TemporaryDirectory() as tmp:
    out = subprocess.run([script, "learn", tmp], capture_output=True, text=True, check=True).stdout
    written = sorted(Path(tmp).glob("[0-9][0-9]_*.ipynb"))
    if len(written) != 9:
        sys.exit(f"`vgcourse learn` wrote {[p.name for p in written]}:\n{out}")
    for path in written:
        text = "".join("".join(c["source"]) for c in json.loads(path.read_text("utf-8"))["cells"])
        if "### BEGIN SOLUTION" in text or "### BEGIN HIDDEN TESTS" in text:
            sys.exit(f"{path.name}: nbgrader markers left in the learner edition")
        if "<summary>Show a solution</summary>" not in text:
            sys.exit(f"{path.name}: no 'Show a solution' block")
print(f"learner edition OK: nine lessons from {source}")
