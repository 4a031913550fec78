import pytest
import torch

import vgcourse as vg
from vgcourse import data


def test_moons_matches_sklearn_and_dtypes():
    from sklearn.datasets import make_moons

    X, y = data.moons()
    Xs, ys = make_moons(n_samples=250, noise=0.05, random_state=42)
    assert X.dtype == torch.float32 and y.dtype == torch.int64 and X.shape == (250, 2)
    assert torch.allclose(X, torch.as_tensor(Xs, dtype=torch.float32)) and torch.equal(
        y, torch.as_tensor(ys)
    )


def test_circles_and_spirals():
    X, y = data.circles(100, 0.0, 0.5, seed=1)
    r = X.norm(dim=1)
    assert torch.allclose(r[y == 1], torch.full_like(r[y == 1], 0.5), atol=1e-5)
    X, y = data.spirals(300, classes=3, seed=0)
    assert X.shape == (300, 2) and set(y.tolist()) == {0, 1, 2}
    X2, _ = data.spirals(300, classes=3, seed=0)
    assert torch.equal(X, X2)


def test_digits_forms():
    X, y = data.digits()
    assert X.shape == (1797, 64) and float(X.max()) == 1.0 and float(X.min()) == 0.0
    assert data.digits("images")[0].shape == (1797, 1, 8, 8)
    Xs, _ = data.digits("sequence")
    assert Xs.shape == (1797, 64, 1) and torch.equal(Xs[:, :, 0], X)
    with pytest.raises(ValueError, match="form"):
        data.digits("pixels")


def test_adding_problem_definition():
    X, y = data.adding_problem(500, 40, seed=3)
    assert X.shape == (500, 40, 2) and y.shape == (500,)
    markers = X[:, :, 1]
    assert torch.all(markers.sum(1) == 2)
    assert torch.all(markers[:, :20].sum(1) == 1) and torch.all(markers[:, 20:].sum(1) == 1)
    assert torch.allclose((X[:, :, 0] * markers).sum(1), y)
    assert float(((y - 1.0) ** 2).mean()) == pytest.approx(data.ADDING_BASELINE_MSE, rel=0.15)
    X2, y2 = data.adding_problem(500, 40, seed=3)
    assert torch.equal(X, X2) and torch.equal(y, y2)


def test_temporal_order_definition():
    X, y = data.temporal_order(400, 100, seed=0)
    assert X.shape == (400, 100, 8) and torch.all(X.sum(-1) == 1)
    sym = X.argmax(-1)
    assert torch.all(sym[:, 0] == 6) and torch.all(sym[:, -1] == 7)
    relevant = (sym == 4) | (sym == 5)
    assert torch.all(relevant.sum(1) == 2)
    pos = relevant.float().argmax(1)
    assert torch.all((pos >= 10) & (pos < 20))
    first = sym[torch.arange(400), pos] - 4
    assert torch.all(first == y // 2)
    assert set(y.tolist()) == {0, 1, 2, 3}


def test_train_test_split_is_seeded():
    X, y = data.moons()
    (a, b), (c, d) = data.train_test_split(X, y, 0.2, seed=42)
    assert len(a) == 200 and len(c) == 50
    (a2, _), _ = data.train_test_split(X, y, 0.2, seed=42)
    assert torch.equal(a, a2)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: data.moons(n=1), ValueError, "n"),
        (lambda: data.moons(noise=-0.1), ValueError, "noise"),
        (lambda: data.adding_problem(10, 1), ValueError, "T"),
        (lambda: data.temporal_order(10, 5), ValueError, "T"),
        (lambda: data.circles(factor=2.0), ValueError, "factor"),
        (
            lambda: data.train_test_split(torch.zeros(5, 2), torch.zeros(4)),
            ValueError,
            "same number of rows",
        ),
        (
            lambda: data.train_test_split(torch.zeros(5, 2), torch.zeros(5), test_size=2),
            ValueError,
            "test_size",
        ),
        (lambda: data.moons(seed="a"), TypeError, "seed"),
    ],
)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_public_alias():
    assert vg.data.adding_problem is data.adding_problem
