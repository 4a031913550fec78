r"""Gradient checking: compare back-propagated gradients with central finite differences.

Back-propagation (Rumelhart, Hinton & Williams 1986) computes every partial derivative of a loss
:math:`L(\theta)` in one backward pass. A *gradient check* verifies it entry by entry against the
centered difference

.. math::
    \frac{\partial L}{\partial \theta_i} \approx
    \frac{L(\theta + h\,e_i) - L(\theta - h\,e_i)}{2h},

whose error has two parts (Taylor expansion plus floating-point rounding of :math:`L`):

.. math::
    \underbrace{\frac{h^2}{6}\,|\partial_i^3 L|}_{\text{truncation}, O(h^2)}
    \;+\; \underbrace{\frac{\epsilon_{\mathrm{mach}}\,|L|}{h}}_{\text{rounding}, O(\epsilon/h)},

so the error against :math:`h` is V-shaped on a log-log plot, with its minimum near
:math:`h^\ast \sim (3\epsilon_{\mathrm{mach}}|L|/|\partial_i^3 L|)^{1/3}`: about :math:`10^{-5}` in
float64 (:math:`\epsilon \approx 2.2\times10^{-16}`) and :math:`10^{-2}` in float32
(:math:`\epsilon \approx 1.2\times10^{-7}`), where the best attainable error is only about
:math:`\epsilon^{2/3} \approx 10^{-5}`. Hence the practice described in the CS231n notes ("Neural Networks
Part 3", section "Gradient Checks"; comparing back-propagated with numerical derivatives is also
one of the debugging strategies of Goodfellow, Bengio & Courville 2016, *Deep Learning*, sec. 11.5
"Debugging Strategies"): centered differences, in double precision, compared by the relative error

.. math:: r = \frac{|g_a - g_n|}{\max(|g_a|,\ |g_n|,\ \text{tiny})},

where :math:`r < 10^{-7}` is a pass, :math:`r > 10^{-2}` usually a bug (CS231n's thresholds).

``torch.autograd.gradcheck`` does the same check on a whole Jacobian with the criterion
:math:`|g_a - g_n| \le \text{atol} + \text{rtol}\,|g_n|` (defaults ``eps=1e-6``, ``atol=1e-5``,
``rtol=1e-3``). Lesson 01's 2-2-1 network (its chain-rule factors, drawing and autograd graph) is in
:mod:`vgcourse.lessons.lesson01_network`.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Union

import numpy as np
import torch
from torch import nn

from ._validate import _as_tensor_list, _check_dtype, check_int, check_positive, check_tensor
from .losses import LossSpec, get_loss

Tensors = Union[torch.Tensor, Sequence[torch.Tensor]]

#: CS231n's reading of a relative error (upper bound, verdict), checked in order.
THRESHOLDS: tuple[tuple[float, str], ...] = (
    (1e-7, "good"),
    (1e-4, "ok only with kinks (ReLU, max)"),
    (1e-2, "uncomfortable"),
    (float("inf"), "probably wrong"),
)


def _scalar(value: Any, where: str) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"f must return a scalar, got a tensor of shape {tuple(value.shape)} {where}"
            )
        out = float(value.detach().reshape(()))
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        out = float(value)
    else:
        raise TypeError(f"f must return a scalar tensor or a number, got {type(value).__name__}")
    if not np.isfinite(out):
        raise ValueError(f"f returned a non-finite value ({out}) {where}; pick a smaller eps")
    return out


# -- the three core functions ------------------------------------------------------------------
def numerical_gradient(
    f: Callable[..., Any],
    params: Tensors,
    eps: float = 1e-6,
    *,
    dtype: torch.dtype | None = torch.float64,
    vectorize: bool | str = "auto",
    chunk_size: int = 256,
) -> torch.Tensor | list[torch.Tensor]:
    r"""Central-difference gradient of a scalar function of tensors, every entry of every tensor.

    ``f(*params)`` must return a scalar. For each entry :math:`\theta_i` of each tensor,

    .. math:: g_i = \frac{f(\theta + h e_i) - f(\theta - h e_i)}{2h}, \qquad h = \texttt{eps},

    which costs two evaluations of ``f`` per entry and has error :math:`O(h^2) + O(\epsilon/h)`
    (module docstring). The tensors are copied and cast to ``dtype`` first (float64 by default, as
    the CS231n notes advise; ``None`` keeps each tensor's own dtype, e.g. to
    show how noisy float32 is); the originals are never modified. The perturbed value
    :math:`\theta_i \pm h` is computed in float64 and then rounded to ``dtype``, as storing it in
    a low-precision tensor would.

    ``vectorize``: ``False`` runs the textbook loop (perturb one entry, evaluate, restore);
    ``True`` evaluates the same perturbed points ``chunk_size`` entries at a time with
    ``torch.func.vmap`` (same formula, far fewer Python calls; ``f`` must be vmappable: no
    ``.item()``, no in-place updates of captured tensors); ``"auto"`` tries ``True`` and falls
    back to the loop when ``vmap`` refuses ``f``.

    Returns one gradient tensor per input tensor (same shape, in ``dtype``), or a single tensor if
    ``params`` was a single tensor.
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    items, single = _as_tensor_list("params", params)
    eps = check_positive("eps", eps)
    dtype = _check_dtype("dtype", dtype, allow_none=True)
    if vectorize not in (True, False, "auto"):
        raise ValueError(f"vectorize must be one of True, False, 'auto'; got {vectorize!r}")
    chunk_size = check_int("chunk_size", chunk_size, minimum=1)
    xs = [
        p.detach().to(dtype=dtype or p.dtype).clone(memory_format=torch.contiguous_format)
        for p in items
    ]
    with torch.no_grad():
        _scalar(f(*xs), "at the given point")  # a clear error for a non-scalar or non-finite f
        grads = None
        if vectorize:
            try:
                grads = _central_differences_vmap(f, xs, eps, chunk_size)
            except (RuntimeError, NotImplementedError):
                if vectorize is True:
                    raise
        if grads is None:
            grads = _central_differences_loop(f, xs, eps)
    return grads[0] if single else grads


def _central_differences_loop(
    f: Callable[..., Any], xs: list[torch.Tensor], eps: float
) -> list[torch.Tensor]:
    grads = []
    for k, x in enumerate(xs):
        flat = x.view(-1)
        g = torch.zeros(flat.numel(), dtype=torch.float64)
        for j in range(flat.numel()):
            old = flat[j].item()
            flat[j] = old + eps
            f_plus = _scalar(f(*xs), f"at params[{k}] entry {j} + eps")
            flat[j] = old - eps
            f_minus = _scalar(f(*xs), f"at params[{k}] entry {j} - eps")
            flat[j] = old
            g[j] = (f_plus - f_minus) / (2 * eps)
        grads.append(g.to(dtype=x.dtype, device=x.device).view_as(x))
    return grads


def _central_differences_vmap(
    f: Callable[..., Any], xs: list[torch.Tensor], eps: float, chunk_size: int
) -> list[torch.Tensor]:
    shapes = [x.shape for x in xs]
    sizes = [x.numel() for x in xs]
    device = xs[0].device
    base = torch.cat([x.reshape(-1).to(torch.float64) for x in xs])
    P = base.numel()

    def one(v: torch.Tensor) -> torch.Tensor:
        parts = torch.split(v, sizes)
        out = f(*[p.view(s).to(x.dtype) for p, s, x in zip(parts, shapes, xs)])
        return out.reshape(())

    batched = torch.func.vmap(one)
    g = torch.empty(P, dtype=torch.float64, device=device)
    for start in range(0, P, chunk_size):
        idx = torch.arange(start, min(P, start + chunk_size), device=device)
        rows = torch.arange(len(idx), device=device)
        plus = base.expand(len(idx), P).clone()
        plus[rows, idx] += eps
        minus = base.expand(len(idx), P).clone()
        minus[rows, idx] -= eps
        values = batched(torch.cat([plus, minus])).to(torch.float64)
        if not bool(torch.isfinite(values).all()):
            bad = int(idx[0]) + int((~torch.isfinite(values)).nonzero()[0, 0]) % len(idx)
            raise ValueError(
                f"f returned a non-finite value near flat entry {bad}; pick a smaller eps"
            )
        g[idx] = (values[: len(idx)] - values[len(idx) :]) / (2 * eps)
    return [part.to(dtype=x.dtype).view(s) for part, x, s in zip(torch.split(g, sizes), xs, shapes)]


def relative_error(a: Any, b: Any, *, tiny: float = 1e-12) -> torch.Tensor:
    r"""Elementwise relative error :math:`|a-b| / \max(|a|, |b|, \text{tiny})`, in float64.

    The symmetric form of the CS231n notes ("Gradient Checks"): it does not care which of the two
    gradients is the reference, and ``tiny`` keeps :math:`0/0` (both gradients exactly zero, as for
    a dead ReLU unit) at 0 instead of NaN. Below ``tiny`` in magnitude it becomes an absolute error.
    """
    tiny = check_positive("tiny", tiny)
    ta = torch.as_tensor(a.detach() if isinstance(a, torch.Tensor) else a)
    tb = torch.as_tensor(b.detach() if isinstance(b, torch.Tensor) else b)
    if ta.shape != tb.shape:
        raise ValueError(
            f"a and b must have the same shape, got {tuple(ta.shape)} and {tuple(tb.shape)}"
        )
    ta = ta.to(torch.float64).cpu()
    tb = tb.to(torch.float64).cpu()
    denom = torch.maximum(
        torch.maximum(ta.abs(), tb.abs()), torch.tensor(tiny, dtype=torch.float64)
    )
    return (ta - tb).abs() / denom


def verdict(error: float) -> str:
    """CS231n's reading of a relative error: ``"good"`` below 1e-7 ... ``"probably wrong"`` above 1e-2."""
    error = check_positive("error", error, allow_zero=True)
    for bound, words in THRESHOLDS:
        if error < bound:
            return words
    return THRESHOLDS[-1][1]


def analytic_gradient(
    f: Callable[..., Any], params: Tensors, *, dtype: torch.dtype | None = torch.float64
) -> torch.Tensor | list[torch.Tensor]:
    """Autograd's gradient of ``f(*params)`` (copies cast to ``dtype``; ``None`` keeps each dtype).

    A tensor that ``f`` does not use gets a zero gradient.
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    items, single = _as_tensor_list("params", params)
    dtype = _check_dtype("dtype", dtype, allow_none=True)
    xs = [p.detach().to(dtype=dtype or p.dtype).clone().requires_grad_(True) for p in items]
    with torch.enable_grad():
        value = f(*xs)
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            raise ValueError("f must return a scalar tensor that depends on params")
        grads = torch.autograd.grad(value.reshape(()), xs, allow_unused=True)
    out = [torch.zeros_like(x) if g is None else g.detach() for x, g in zip(xs, grads)]
    return out[0] if single else out


def as_function(
    model: nn.Module, data: Any, *, loss: LossSpec = "mse", dtype: torch.dtype = torch.float64
) -> tuple[Callable[..., torch.Tensor], list[str], list[torch.Tensor]]:
    r"""A model's loss as a plain function of its parameters: ``(f, names, params)``.

    ``f(*params)`` computes :math:`L(\theta) = \text{loss}(\text{model}(X;\theta), y)` on
    ``data = (X, y)`` with ``torch.func.functional_call``, so any parameter values can be passed in
    (what :func:`numerical_gradient` needs). The model is deep-copied and cast to ``dtype``;
    ``names`` and ``params`` (detached copies) cover every parameter that requires a gradient.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if next(model.parameters(), None) is None:
        raise ValueError("model has no parameters; there are no gradients to check")
    dtype = _check_dtype("dtype", dtype)
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(
            "for a model, the data must be the pair (X, y), as for vgcourse.fit; "
            f"got {type(data).__name__}"
        )
    X, y = (check_tensor(n, t) for n, t in zip(("X", "y"), data))
    if X.shape[0] != y.shape[0]:
        raise ValueError(
            f"X and y must have the same number of rows, got {X.shape[0]} and {y.shape[0]}"
        )
    net = copy.deepcopy(model).to(dtype)
    device = next(net.parameters()).device
    X = X.to(device=device, dtype=dtype if X.is_floating_point() else X.dtype)
    y = y.to(device=device, dtype=dtype if y.is_floating_point() else y.dtype)
    named = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    names = [n for n, _ in named]
    loss_fn = get_loss(loss)

    def f(*ps: torch.Tensor) -> torch.Tensor:
        out = torch.func.functional_call(net, dict(zip(names, ps)), (X,))
        return loss_fn(out, y)

    return f, names, [p.detach() for _, p in named]


def gradient_check(
    model_or_fn: nn.Module | Callable[..., Any],
    inputs: Any,
    *,
    loss: LossSpec = "mse",
    eps: float = 1e-6,
    dtype: torch.dtype = torch.float64,
    tiny: float = 1e-12,
    vectorize: bool | str = "auto",
) -> dict[str, float]:
    r"""Check autograd's gradient against central differences; the max relative error per parameter.

    Two forms:

    * ``gradient_check(net, (X, y), loss="bce")``: an ``nn.Module`` and its data; the loss
      (a name from :data:`vgcourse.LOSSES` or a callable) is differentiated with respect to every
      parameter that requires a gradient. The model is deep-copied and cast to ``dtype`` (float64
      by default), so the caller's model is untouched.
    * ``gradient_check(f, [W, b])``: a function of tensors returning a scalar, and the tensors
      (a tensor, a sequence, or a dict ``name -> tensor`` to name the results).

    For each parameter tensor :math:`\theta` the result is
    :math:`\max_i |g_{a,i} - g_{n,i}| / \max(|g_{a,i}|, |g_{n,i}|, \text{tiny})`, with :math:`g_a`
    from autograd and :math:`g_n` from :func:`numerical_gradient`. Read it with :func:`verdict`
    (below 1e-7 in float64 is a pass). ``vectorize`` goes to :func:`numerical_gradient`.
    The function must be deterministic: a model whose loss
    changes between two identical calls (dropout in training mode) raises ``ValueError``.
    """
    eps = check_positive("eps", eps)
    tiny = check_positive("tiny", tiny)
    dtype = _check_dtype("dtype", dtype)
    if isinstance(model_or_fn, nn.Module):
        f, names, tensors = as_function(model_or_fn, inputs, loss=loss, dtype=dtype)
    elif callable(model_or_fn):
        f = model_or_fn
        if isinstance(inputs, Mapping):
            names = [str(k) for k in inputs]
            tensors, _ = _as_tensor_list("inputs", list(inputs.values()))
        else:
            tensors, _ = _as_tensor_list("inputs", inputs)
            names = [f"arg{i}" for i in range(len(tensors))]
    else:
        raise TypeError(
            f"model_or_fn must be an nn.Module or a callable, got {type(model_or_fn).__name__}"
        )
    with torch.no_grad():
        xs = [t.detach().to(dtype) for t in tensors]
        first, second = _scalar(f(*xs), "at the given point"), _scalar(f(*xs), "at the given point")
    if first != second:
        raise ValueError(
            "the loss differs between two identical evaluations; turn off randomness "
            "(call model.eval() for dropout, fix the seed) before a gradient check"
        )
    g_a = analytic_gradient(f, tensors, dtype=dtype)
    g_n = numerical_gradient(f, tensors, eps, dtype=dtype, vectorize=vectorize)
    return {
        name: float(relative_error(a, n, tiny=tiny).max()) if a.numel() else 0.0
        for name, a, n in zip(names, g_a, g_n)
    }


def step_size_sweep(
    f: Callable[..., Any],
    params: Tensors,
    steps: Sequence[float],
    *,
    dtype: torch.dtype | None = torch.float64,
    reference: Tensors | None = None,
    reduce: str = "max",
    tiny: float = 1e-12,
    vectorize: bool | str = "auto",
) -> np.ndarray:
    r"""Relative error of the central difference against the true gradient, for each step size ``h``.

    For every ``h`` in ``steps``: :func:`numerical_gradient` in ``dtype``, compared by
    :func:`relative_error` with ``reference`` (default: autograd's gradient in float64, the best
    available "truth"), reduced over all entries by ``"max"`` (what a gradient check reports) or
    ``"median"`` (a typical entry). On log-log axes the result shows the V of the module docstring:
    slope -1 (rounding) for small ``h``, slope +2 (truncation) for large ``h``.
    """
    items, _ = _as_tensor_list("params", params)
    if isinstance(steps, (str, bytes)) or not isinstance(steps, (Sequence, np.ndarray)):
        raise TypeError(f"steps must be a sequence of step sizes, got {type(steps).__name__}")
    hs = [check_positive("steps[i]", float(h)) for h in steps]
    if not hs:
        raise ValueError("steps is empty; give at least one step size")
    if reduce not in ("max", "median"):
        raise ValueError(f"reduce must be one of 'max', 'median'; got {reduce!r}")
    if reference is None:
        ref = analytic_gradient(f, items, dtype=torch.float64)
    else:
        ref, _ = _as_tensor_list("reference", reference)
        if [r.shape for r in ref] != [p.shape for p in items]:
            raise ValueError("reference must have one tensor per parameter, with the same shapes")
    ref_flat = torch.cat([torch.as_tensor(r).detach().double().cpu().reshape(-1) for r in ref])
    out = np.empty(len(hs))
    for k, h in enumerate(hs):
        g = numerical_gradient(f, items, h, dtype=dtype, vectorize=vectorize)
        g_flat = torch.cat([t.double().cpu().reshape(-1) for t in g])
        err = relative_error(g_flat, ref_flat, tiny=tiny)
        out[k] = float(err.max() if reduce == "max" else err.median())
    return out
