"""vg.claim: one readable line per checked claim, an AssertionError with the numbers when it fails."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vgcourse as vg
from vgcourse.claims import format_measured


def test_a_holding_claim_prints_its_tick_and_number(capsys):
    ratio = 2.1e-05
    vg.claim(
        "layer 1 gets less than 1e-3 of the last layer's gradient", ratio < 1e-3, measured=ratio
    )
    assert capsys.readouterr().out == (
        "✓ layer 1 gets less than 1e-3 of the last layer's gradient (measured 2.1e-05)\n"
    )
    vg.claim("no number", np.float64(1.0) > 0)
    assert capsys.readouterr().out == "✓ no number\n"


def test_a_failing_claim_raises_with_the_claim_and_the_number():
    with pytest.raises(
        vg.ClaimError, match=r"✗ the loss falls below 0.1: does not hold \(measured 0.25\)"
    ):
        vg.claim("the loss falls below 0.1", 0.25 < 0.1, measured=0.25)
    assert issubclass(vg.ClaimError, AssertionError)  # nbval and pytest see a failed check


def test_full_scale_claims_are_checked_only_at_full_scale(monkeypatch, capsys):
    monkeypatch.setenv("VGCOURSE_SCALE", "quick")
    assert vg.claim("50x at width 1024", False, measured=3.0, scale="full") is None
    assert capsys.readouterr().out == (
        "· 50x at width 1024 (measured 3) [full scale, not checked at quick scale]\n"
    )
    monkeypatch.setenv("VGCOURSE_SCALE", "full")
    with pytest.raises(vg.ClaimError):
        vg.claim("50x at width 1024", False, measured=3.0, scale="full")
    vg.claim("50x at width 1024", True, measured=60.0, scale="full")
    assert capsys.readouterr().out.startswith("✓ 50x at width 1024 (measured 60)")


def test_measured_values_read_well():
    assert format_measured(torch.tensor(0.123456)) == "0.123"
    assert format_measured(torch.tensor([1.0, 2e-9])) == "[1, 2e-09]"
    assert format_measured({"tanh": 0.5, "relu": np.float32(2.0)}) == "tanh=0.5, relu=2"
    assert format_measured(np.array([3, 4])) == "[3, 4]"
    assert format_measured("44 of 64 units") == "44 of 64 units"
    assert format_measured(float("inf")) == "inf"
    assert format_measured(7) == "7"


@pytest.mark.parametrize(
    "holds", [0.5, 1, None, "yes", torch.tensor([True, False]), torch.tensor(1.0)]
)
def test_holds_must_be_a_bool(holds):
    with pytest.raises(TypeError, match="holds must be a bool"):
        vg.claim("something", holds)


def test_bad_statement_and_scale():
    with pytest.raises(TypeError, match="statement must be a non-empty string"):
        vg.claim("", True)
    with pytest.raises(ValueError, match="scale"):
        vg.claim("x", True, scale="quick")
    vg.claim("a tensor test", torch.tensor(2.0) > 1, measured=torch.tensor(2.0))
