"""The practitioner's toolkit without the course extras: import, train, diagnose, plot.

    python tests/toolkit_smoke.py --expect-no-extras   # in a fresh `pip install vgcourse` venv (.ci/run)
    python tests/toolkit_smoke.py --block-extras       # anywhere: the extras made unimportable first

Fails (exit 1) if JupyterLab, ipywidgets, nbconvert, nbgrader, IPython or ipykernel is needed (or,
with ``--expect-no-extras``, installed), if ``vg.diagnose`` changes the model, or if anything raises.
Run by tests/test_toolkit_install.py and by .ci/run.
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.util
import sys

EXTRAS = ("jupyterlab", "ipywidgets", "nbconvert", "nbgrader", "notebook", "IPython", "ipykernel")


class BlockExtras(importlib.abc.MetaPathFinder):
    """Make the course extras unimportable, as if they were not installed."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in EXTRAS:
            raise ModuleNotFoundError(
                f"No module named {name!r} (blocked: not a toolkit dependency)"
            )
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--block-extras", action="store_true")
    parser.add_argument("--expect-no-extras", action="store_true")
    args = parser.parse_args()
    if args.block_extras:
        sys.meta_path.insert(0, BlockExtras())
    if args.expect_no_extras:
        installed = [m for m in EXTRAS if importlib.util.find_spec(m) is not None]
        assert not installed, f"the toolkit install brought course extras: {installed}"

    import matplotlib

    matplotlib.use("Agg")
    import torch

    import vgcourse as vg

    vg.seed_everything(0)
    X, y = vg.data.moons(64, 0.1, seed=0)
    net = vg.mlp(2, 2, depth=6, width=16, activation="sigmoid", init="standard")
    history = vg.fit(net, (X, y), steps=20, lr=1e-2, batch_size=32)
    assert len(history.loss) == 20 and history.diverged_at is None
    before = {k: v.clone() for k, v in net.state_dict().items()}
    report = vg.diagnose(net, X, y)
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "vg.diagnose changed the model"
    assert str(report) and report.to_dict()
    fig = vg.plots.plot_grad_norms(history.grad_norms[-1])
    fig = getattr(fig, "figure", fig)
    assert fig is not None
    imported = [m for m in EXTRAS if m in sys.modules]
    assert not imported, f"the toolkit imported course extras: {imported}"
    print(
        f"toolkit OK without course extras (vgcourse from {vg.__file__}; verdict: {report.problems})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
