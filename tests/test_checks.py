"""Exercise feedback (vg.checks): each check passes the right answer, names a known mistake,
states the tolerance it used, and refuses tolerances that mean nothing."""

import numpy as np
import pytest
import torch

from vgcourse import checks


def test_check_close_messages(capsys):
    checks.check_close("x", torch.tensor([1.0, 2.0]), [1.0, 2.0])
    assert "correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match=r"expected 2 at index \(1,\), got 3 .*try again"):
        checks.check_close("x", [1.0, 3.0], [1.0, 2.0], hint="try again")
    with pytest.raises(AssertionError, match="shape"):
        checks.check_close("x", [1.0], [1.0, 2.0])
    with pytest.raises(AssertionError, match="return"):
        checks.check_close("x", None, 1.0)


def test_check_close_uses_the_stated_tolerances():
    checks.check_close("x", 1.0 + 1e-11, 1.0, rtol=1e-10, atol=0.0, quiet=True)
    with pytest.raises(AssertionError, match=r"atol 0 \+ rtol 1e-10"):
        checks.check_close("x", 1.0 + 1e-9, 1.0, rtol=1e-10, atol=0.0)
    with pytest.raises(ValueError, match="rtol must be a number >= 0"):
        checks.check_close("x", 1.0, 1.0, rtol=-1.0)
    with pytest.raises(ValueError, match="atol"):
        checks.check_close("x", 1.0, 1.0, atol="0")


def test_check_close_names_the_mistake():
    W = np.arange(6.0).reshape(2, 3)
    mistakes = {"using W instead of its transpose": W, "forgetting phi'(z)": lambda g: g.sum() == 0}
    with pytest.raises(AssertionError, match="That is what using W instead of its transpose gives"):
        checks.check_close("grad", W, W.T, rtol=1e-9, atol=0.0, mistakes=mistakes)
    with pytest.raises(AssertionError, match="forgetting phi'\\(z\\)"):
        checks.check_close("grad", np.zeros((3, 2)), W.T, rtol=1e-9, atol=0.0, mistakes=mistakes)
    with pytest.raises(AssertionError, match="transposed matrix"):
        checks.check_close("grad", np.ones((2, 3)), np.ones((3, 2)), rtol=1e-9, atol=0.0)
    with pytest.raises(AssertionError) as err:  # an unknown wrong answer names no mistake
        checks.check_close("grad", W.T + 1, W.T, rtol=1e-9, atol=0.0, mistakes=mistakes)
    assert "That is what" not in str(err.value)


def test_check_prediction(capsys):
    checks.check_prediction("depth", 30, 33, atol=5)
    assert "you predicted 30, measured 33" in capsys.readouterr().out
    checks.check_prediction("ratio", 400, 1000, factor=3, quiet=True)
    checks.check_prediction("loss", 0.5, 0.55, rtol=0.2, quiet=True)
    with pytest.raises(AssertionError, match="333 to 3e\\+03"):
        checks.check_prediction("ratio", 10, 1000, factor=3)
    with pytest.raises(AssertionError, match="both positive"):
        checks.check_prediction("ratio", -10, 1000, factor=3)
    with pytest.raises(AssertionError, match="write your prediction"):
        checks.check_prediction("ratio", ..., 1000, factor=3)
    with pytest.raises(AssertionError, match="one number"):
        checks.check_prediction("ratio", [1, 2], 1000, factor=3)
    with pytest.raises(ValueError, match="exactly one of factor, rtol, atol"):
        checks.check_prediction("ratio", 1, 1000)
    with pytest.raises(ValueError, match="exactly one"):
        checks.check_prediction("ratio", 1, 1000, factor=2, rtol=0.1)
    with pytest.raises(ValueError, match="factor must be >= 1"):
        checks.check_prediction("ratio", 1, 1, factor=0.5)


def test_check_true(capsys):
    checks.check_true("repaired", True, "final loss 0.08")
    assert "final loss 0.08" in capsys.readouterr().out
    with pytest.raises(AssertionError, match=r"not yet \(final loss 2.3\). lower the lr"):
        checks.check_true("repaired", False, "final loss 2.3", hint="lower the lr")
