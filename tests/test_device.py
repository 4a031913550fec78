import random
import warnings

import numpy as np
import pytest
import torch

import vgcourse as vg


def test_get_device_default_is_present():
    d = vg.get_device()
    assert isinstance(d, torch.device)
    torch.zeros(1, device=d)


def test_get_device_cpu_explicit():
    assert vg.get_device("cpu") == torch.device("cpu")


def test_env_override(monkeypatch):
    monkeypatch.setenv("VGCOURSE_DEVICE", "cpu")
    assert vg.get_device() == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_absent_device_warns_and_falls_back():
    with pytest.warns(UserWarning, match="not available"):
        assert vg.get_device("cuda") == torch.device("cpu")


def test_absent_device_from_env_warns(monkeypatch):
    monkeypatch.setenv("VGCOURSE_DEVICE", "cuda:7")
    if torch.cuda.device_count() > 7:
        pytest.skip("machine has 8 GPUs")
    with pytest.warns(UserWarning):
        assert vg.get_device() == torch.device("cpu")


def test_bad_device_name_raises():
    with pytest.raises(ValueError, match="prefer"):
        vg.get_device("gpu-please")


def test_seed_everything_repeats_all_generators():
    vg.seed_everything(3)
    a = (random.random(), np.random.rand(), torch.rand(3))  # noqa: NPY002
    vg.seed_everything(3)
    b = (random.random(), np.random.rand(), torch.rand(3))  # noqa: NPY002
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_seed_bad(bad):
    with pytest.raises((TypeError, ValueError), match="seed"):
        vg.seed_everything(bad)


def test_scale_env(monkeypatch):
    monkeypatch.setenv("VGCOURSE_SCALE", "full")
    assert vg.scale() == "full"
    assert vg.by_scale(quick=1, full=2) == 2
    monkeypatch.setenv("VGCOURSE_SCALE", "Quick")
    assert vg.scale() == "quick"
    assert vg.by_scale(quick=1, full=2) == 1
    monkeypatch.setenv("VGCOURSE_SCALE", "huge")
    with pytest.raises(ValueError, match="VGCOURSE_SCALE"):
        vg.scale()


def test_scale_default_follows_device(monkeypatch):
    monkeypatch.delenv("VGCOURSE_SCALE", raising=False)
    monkeypatch.setenv("VGCOURSE_DEVICE", "cpu")
    assert vg.scale() == "quick"


def test_setup_prints(capsys, monkeypatch):
    monkeypatch.setenv("VGCOURSE_DEVICE", "cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        device, scale = vg.setup(seed=1)
    out = capsys.readouterr().out
    assert "device: cpu" in out and f"scale: {scale}" in out and device.type == "cpu"
