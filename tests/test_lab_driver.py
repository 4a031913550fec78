"""The JupyterLab driver of the browser tests leaves nothing running: not the server, not a kernel.

Kernels run in process sessions of their own, so stopping the server's process group alone would
leave them behind; these tests start a real ``jupyter lab`` with a kernel and check every process
is gone after a normal exit, after an exception inside the ``with`` block, and after the test
process itself is killed with SIGKILL (no clean-up code runs then).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("jupyterlab")
from lab_driver import LabServer  # noqa: E402

HERE = Path(__file__).resolve().parent


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_gone(pids: list[int], timeout_s: float = 30) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.2)
    return [p for p in pids if alive(p)]


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def test_server_and_kernels_stop_on_exit_and_on_error(tmp_path):
    for fail in (False, True):
        root = tmp_path / f"fail-{fail}"
        root.mkdir()
        pids: list[int] = []
        try:
            with LabServer(root) as lab:
                lab.start_kernel()
                lab.start_kernel()
                deadline = time.monotonic() + 30
                while len(pids) < 3 and time.monotonic() < deadline:
                    pids = lab.leftover_processes()
                    time.sleep(0.2)
                assert len(pids) >= 3, f"expected the server and two kernels, found {pids}"
                if fail:
                    raise KeyboardInterrupt  # as when a run is interrupted
        except KeyboardInterrupt:
            assert fail
        assert wait_gone(pids, timeout_s=5) == [], f"still running after exit (fail={fail})"


def test_server_and_kernels_stop_when_the_test_process_is_killed(tmp_path):
    script = (
        "import json, sys, time; sys.path.insert(0, sys.argv[1])\n"
        "from pathlib import Path\n"
        "from lab_driver import LabServer\n"
        "lab = LabServer(Path(sys.argv[2])).__enter__()\n"
        "lab.start_kernel()\n"
        "while len(lab.leftover_processes()) < 2: time.sleep(0.2)\n"
        "print(json.dumps(lab.leftover_processes()), flush=True)\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(HERE), str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        pids = json.loads(proc.stdout.readline())
        assert len(pids) >= 2, pids
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert wait_gone(pids) == [], "JupyterLab or a kernel outlived the killed test process"
