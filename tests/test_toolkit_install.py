"""A practitioner's ``pip install vgcourse`` needs no course extras (JupyterLab, ipywidgets, nbgrader...).

The package metadata lists none of them as a dependency, and the toolkit (train, diagnose, plot)
runs in a process where they cannot be imported. .ci/run also runs tests/toolkit_smoke.py in a fresh
virtual environment with a plain non-editable ``pip install .``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("jupyterlab", "ipywidgets", "nbconvert", "nbgrader", "notebook", "ipython", "ipykernel")


def test_core_dependencies_hold_no_course_extras():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = [
        d.split(">")[0].split("=")[0].split("[")[0].strip().lower() for d in project["dependencies"]
    ]
    assert "torch" in core
    assert not [d for d in core if d in EXTRAS], core
    assert "jupyterlab" in " ".join(project["optional-dependencies"]["course"])


def test_toolkit_runs_with_the_extras_blocked():
    out = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "toolkit_smoke.py"), "--block-extras"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "toolkit OK" in out.stdout
