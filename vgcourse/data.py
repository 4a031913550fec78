"""Data sets for the lessons, all generated or bundled with scikit-learn: nothing is downloaded.

Every function returns ``(X, y)`` as tensors (``X`` float32; ``y`` int64 class labels, or float32
targets for regression) and is deterministic for a given ``seed``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ._validate import check_choice, check_int, check_positive, check_xy

Data = tuple[torch.Tensor, torch.Tensor]


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(check_int("seed", seed, minimum=0))


def moons(n: int = 250, noise: float = 0.05, seed: int = 42) -> Data:
    """Two interleaving half circles (``sklearn.datasets.make_moons``): X (n, 2), y (n,) in {0, 1}.

    The defaults are the seed article's (n=250, noise=0.05, random_state=42).
    """
    from sklearn.datasets import make_moons

    n = check_int("n", n, minimum=2)
    noise = check_positive("noise", noise, allow_zero=True)
    X, y = make_moons(n_samples=n, noise=noise, random_state=check_int("seed", seed, minimum=0))
    return torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y, dtype=torch.int64)


def circles(n: int = 250, noise: float = 0.05, factor: float = 0.5, seed: int = 0) -> Data:
    """Two concentric circles (``sklearn.datasets.make_circles``): X (n, 2), y (n,) in {0, 1}."""
    from sklearn.datasets import make_circles

    n = check_int("n", n, minimum=2)
    noise = check_positive("noise", noise, allow_zero=True)
    if not 0 < factor < 1:
        raise ValueError(
            f"factor must be between 0 and 1 (inner radius / outer radius), got {factor!r}"
        )
    X, y = make_circles(
        n_samples=n, noise=noise, factor=factor, random_state=check_int("seed", seed, minimum=0)
    )
    return torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y, dtype=torch.int64)


def spirals(n: int = 300, classes: int = 3, noise: float = 0.2, seed: int = 0) -> Data:
    """Interleaved spirals, ``n // classes`` points per arm (the CS231n toy problem): X (n, 2), y (n,).

    Arm ``k`` has radius ``r = t`` and angle ``4 t + 2 pi k / classes`` for ``t`` in [0, 1], plus
    Gaussian angle noise of std ``noise``.
    """
    n = check_int("n", n, minimum=2)
    classes = check_int("classes", classes, minimum=2)
    noise = check_positive("noise", noise, allow_zero=True)
    g = _generator(seed)
    per = n // classes
    xs, ys = [], []
    for k in range(classes):
        t = torch.linspace(0.0, 1.0, per)
        angle = 4 * t + 2 * math.pi * k / classes + noise * torch.randn(per, generator=g)
        xs.append(torch.stack([t * torch.sin(angle), t * torch.cos(angle)], dim=1))
        ys.append(torch.full((per,), k, dtype=torch.int64))
    return torch.cat(xs), torch.cat(ys)


def digits(form: str = "flat") -> Data:
    """scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes), pixels scaled to [0, 1].

    ``form``: ``"flat"`` -> X (1797, 64); ``"images"`` -> X (1797, 1, 8, 8) for CNNs;
    ``"sequence"`` -> X (1797, 64, 1), the pixels read row by row, one per time step (the small
    cousin of pixel-by-pixel MNIST, Le et al. 2015).
    """
    from sklearn.datasets import load_digits

    check_choice("form", form, ("flat", "images", "sequence"))
    bunch = load_digits()
    X = torch.as_tensor(bunch.data / 16.0, dtype=torch.float32)
    y = torch.as_tensor(bunch.target, dtype=torch.int64)
    if form == "images":
        X = X.view(-1, 1, 8, 8)
    elif form == "sequence":
        X = X.view(-1, 64, 1)
    return X, y


def adding_problem(n: int, T: int, seed: int = 0) -> Data:
    """The adding problem (Hochreiter & Schmidhuber 1997, sec. 5.4; the variant of Arjovsky et al. 2016).

    Each sequence has ``T`` steps of two channels: a value drawn from U[0, 1] and a marker that is 1
    at exactly two steps, one chosen uniformly in the first half and one in the second half. The
    target is the sum of the two marked values. Returns X (n, T, 2) and y (n,) float32.

    Predicting the constant 1 (the mean of the sum) gives an MSE of Var(u1 + u2) = 2/12 = 1/6.
    """
    n = check_int("n", n, minimum=1)
    T = check_int("T", T, minimum=2)
    g = _generator(seed)
    values = torch.rand(n, T, generator=g)
    half = T // 2
    first = torch.randint(0, half, (n,), generator=g)
    second = torch.randint(half, T, (n,), generator=g)
    markers = torch.zeros(n, T)
    rows = torch.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    X = torch.stack([values, markers], dim=2)
    y = values[rows, first] + values[rows, second]
    return X, y


#: The constant-prediction MSE of the adding problem: Var(U[0,1] + U[0,1]) = 1/6.
ADDING_BASELINE_MSE = 1.0 / 6.0

TEMPORAL_ORDER_SYMBOLS = ("a", "b", "c", "d", "X", "Y", "B", "E")


def temporal_order(n: int, T: int, seed: int = 0) -> Data:
    """The temporal-order task (Hochreiter & Schmidhuber 1997, task 6a; used by Pascanu et al. 2013).

    A sequence of ``T`` one-hot symbols from the alphabet :data:`TEMPORAL_ORDER_SYMBOLS`: it
    starts with ``B``, ends with ``E``, and is otherwise random distractors ``a``-``d`` except at two
    positions, ``t1`` in ``[T/10, 2T/10)`` and ``t2`` in ``[5T/10, 6T/10)``, which hold ``X`` or
    ``Y``. The class (4 of them) is the ordered pair: XX=0, XY=1, YX=2, YY=3. Chance accuracy is 1/4.
    Returns X (n, T, 8) float32 and y (n,) int64.
    """
    n = check_int("n", n, minimum=1)
    T = check_int("T", T, minimum=20)
    g = _generator(seed)
    symbols = torch.randint(0, 4, (n, T), generator=g)
    symbols[:, 0] = 6  # B
    symbols[:, -1] = 7  # E
    t1 = torch.randint(T // 10, max(T // 10 + 1, 2 * T // 10), (n,), generator=g)
    t2 = torch.randint(5 * T // 10, max(5 * T // 10 + 1, 6 * T // 10), (n,), generator=g)
    first = torch.randint(0, 2, (n,), generator=g)
    second = torch.randint(0, 2, (n,), generator=g)
    rows = torch.arange(n)
    symbols[rows, t1] = 4 + first
    symbols[rows, t2] = 4 + second
    X = torch.nn.functional.one_hot(symbols, num_classes=len(TEMPORAL_ORDER_SYMBOLS)).float()
    y = 2 * first + second
    return X, y


def train_test_split(
    X: torch.Tensor, y: torch.Tensor, test_size: float = 0.2, seed: int = 0
) -> tuple[Data, Data]:
    """Shuffle with ``seed`` and split into ``((X_train, y_train), (X_test, y_test))``.

    Uses scikit-learn's ``train_test_split`` (same ``random_state`` gives the same split as the
    seed article's code).
    """
    from sklearn.model_selection import train_test_split as sk_split

    X, y = check_xy(X, y)
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be a fraction between 0 and 1, got {test_size!r}")
    idx = np.arange(len(X))
    train_idx, test_idx = sk_split(
        idx, test_size=test_size, random_state=check_int("seed", seed, minimum=0)
    )
    train_idx, test_idx = torch.as_tensor(train_idx), torch.as_tensor(test_idx)
    return (X[train_idx], y[train_idx]), (X[test_idx], y[test_idx])
