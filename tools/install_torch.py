"""Install PyTorch into this Python once, choosing the build for the machine.

    python tools/install_torch.py          # used by `make course`, `make test` and .ci/run

* PyTorch already importable: nothing to do.
* An NVIDIA GPU visible (``nvidia-smi -L`` succeeds), or not Linux: ``pip install "torch>=2.2"``
  (on Linux that is the CUDA build; on macOS and Windows PyPI's default is the CPU/MPS build).
* Linux without an NVIDIA GPU: the CPU build, since a plain ``pip install torch`` pulls several GB of
  CUDA packages there. First the newest ``+cpu`` release that the configured package indexes list (a
  local mirror often has one), else PyTorch's CPU index (https://download.pytorch.org/whl/cpu); only
  if neither works, PyPI's default build, with a warning.

Uses nothing but the standard library and pip, so it runs before vgcourse is installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

MINIMUM = (2, 2)
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def pip(*args: str) -> bool:
    print("+ pip", " ".join(args), flush=True)
    return subprocess.run([sys.executable, "-m", "pip", *args]).returncode == 0


def torch_installed() -> str | None:
    out = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.__version__)"],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() if out.returncode == 0 else None


def nvidia_gpu_visible() -> bool:
    if shutil.which("nvidia-smi") is None:
        return False
    return subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode == 0


def listed_cpu_builds() -> list[str]:
    """``+cpu`` versions of torch >= MINIMUM that the configured indexes list, newest first."""
    out = subprocess.run(
        [sys.executable, "-m", "pip", "index", "versions", "torch"],
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    found = re.findall(r"\b(\d+)\.(\d+)\.(\d+)\+cpu\b", out)
    versions = sorted({tuple(map(int, v)) for v in found if tuple(map(int, v[:2])) >= MINIMUM})
    return [f"{a}.{b}.{c}+cpu" for a, b, c in reversed(versions)]


def main() -> int:
    version = torch_installed()
    if version:
        print(f"PyTorch {version} already installed")
        return 0
    requirement = f"torch>={MINIMUM[0]}.{MINIMUM[1]}"
    if not sys.platform.startswith("linux") or nvidia_gpu_visible():
        print("Installing PyTorch from PyPI (the CUDA build on Linux with an NVIDIA GPU)")
        return 0 if pip("install", requirement) else 1
    print("No NVIDIA GPU visible: installing the CPU build of PyTorch")
    for cpu_build in listed_cpu_builds()[:1]:
        if pip("install", f"torch=={cpu_build}"):
            return 0
    if pip("install", requirement, "--index-url", CPU_INDEX):
        return 0
    print(
        f"WARNING: neither a listed CPU build nor {CPU_INDEX} could be installed; "
        "installing PyPI's default build (on Linux with CUDA packages, several GB)",
        flush=True,
    )
    return 0 if pip("install", requirement) else 1


if __name__ == "__main__":
    sys.exit(main())
