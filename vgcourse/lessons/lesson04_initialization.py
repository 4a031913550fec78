r"""Variance propagation at initialization: predictions, measurements, and random-matrix spectra.

Lesson 04 derives how the second moments of activations and gradients change from layer to layer,
and this module turns the derivation into numbers a notebook can compare with measurements.

**Forward.** A linear layer :math:`a = W h` with weights drawn independently of :math:`h`,
zero-mean with variance :math:`v = \mathrm{Var}(w)`, gives (LeCun et al. 1998; Glorot & Bengio 2010,
sec. 4.2.1; He et al. 2015, sec. 2.2, eq. 7)

.. math:: \mathbb E[a_i^2] = n_{in}\, v\, \mathbb E[h^2],

with the *second moment* :math:`\mathbb E[h^2]` of the input, which equals :math:`\mathrm{Var}(h)`
only when :math:`h` has zero mean (the point He et al. make about ReLU outputs). With wide layers
:math:`a` is close to Gaussian, so the next layer sees
:math:`\mathbb E[\phi(a)^2] = \mathbb E_{z\sim\mathcal N(0,q)}[\phi(z)^2]` with :math:`q=\mathbb E[a^2]`.
For ReLU this is exactly :math:`q/2`; for tanh it is :math:`\approx q` while :math:`q \ll 1`
(the linear regime) and below :math:`q` beyond. This is the mean-field recursion of Poole et al.
2016 and Schoenholz et al. 2017 (eq. 3 there, with :math:`\sigma_b = 0`):

.. math:: q_{\ell+1} = n_\ell\, v_{\ell+1}\, \mathbb E_{z\sim\mathcal N(0,q_\ell)}[\phi(z)^2].

**Backward.** :math:`\partial L/\partial h = W^\top \partial L/\partial a` sums over the
:math:`n_{out}` outputs of the layer, and :math:`\partial L/\partial a = \phi'(a) \odot \partial L/\partial h`:

.. math::
    \mathrm{Var}\Big(\frac{\partial L}{\partial h_{\ell-1}}\Big) = n_{out}\, v_\ell\,
    \mathrm{Var}\Big(\frac{\partial L}{\partial a_\ell}\Big), \qquad
    \mathrm{Var}\Big(\frac{\partial L}{\partial a_\ell}\Big) = \mathbb E[\phi'(a_\ell)^2]\,
    \mathrm{Var}\Big(\frac{\partial L}{\partial h_\ell}\Big)

(Glorot & Bengio 2010, sec. 4.2.1; He et al. 2015, eq. 13-14), treating the backward signal as
independent of the forward pass, the usual mean-field assumption.

**Products of random matrices.** Back-propagation through :math:`L` linear layers multiplies by
:math:`W_1^\top\cdots W_L^\top`. For Gaussian :math:`W` scaled to keep the mean squared singular
value at 1 the singular values of the product spread over many decades as :math:`L` grows; for
orthogonal :math:`W` they are all exactly 1 ("dynamical isometry", Saxe, McClelland & Ganguli 2014).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from .. import activations as _act
from .._validate import check_choice, check_int, check_positive, check_tensor, check_xy
from ..inits import INITS

__all__ = [
    "Propagation",
    "derivative_second_moment",
    "fixed_point",
    "forward_factor",
    "layer_jacobians_batch",
    "max_unit_difference",
    "mean_jacobian_singular_values",
    "measure_propagation",
    "predict_propagation",
    "predicted_second_moments",
    "product_singular_values",
    "propagation_explorer",
    "rescale_weights_",
    "second_moment",
    "weight_variance",
]


def weight_variance(scheme: str, fan_in: int, fan_out: int, **kw) -> float:
    r"""The variance :math:`v` of one weight entry under ``scheme`` (see :mod:`vgcourse.inits`).

    ==================  ==========================================================
    scheme              :math:`v = \mathrm{Var}(w)`
    ==================  ==========================================================
    zeros               :math:`0`
    normal              :math:`\mathrm{std}^2` (``std`` keyword, default 0.01)
    standard            :math:`b^2/3 = 1/(3 n_{in})` for :math:`U(-b, b)`, :math:`b = 1/\sqrt{n_{in}}`
    xavier_*            :math:`2 g^2 / (n_{in} + n_{out})` (Glorot & Bengio 2010, eq. 16)
    kaiming_*           :math:`g^2 / n_{in}`, :math:`g` = ``calculate_gain(nonlinearity, a)``
                        (default ReLU: :math:`g^2 = 2`, He et al. 2015, eq. 10)
    lecun_normal        :math:`g^2 / n_{in}` (default :math:`g = 1`)
    orthogonal          :math:`g^2 / \max(n_{in}, n_{out})` (every row or column has norm :math:`g`)
    ==================  ==========================================================
    """
    check_choice("scheme", scheme, INITS)
    fan_in = check_int("fan_in", fan_in, minimum=1)
    fan_out = check_int("fan_out", fan_out, minimum=1)
    gain = kw.get("gain")
    if gain is not None:
        gain = check_positive("gain", gain)
    if scheme == "zeros":
        return 0.0
    if scheme == "normal":
        return check_positive("std", kw.get("std", 0.01)) ** 2
    if scheme == "standard":
        return 1.0 / (3.0 * fan_in)
    if scheme.startswith("xavier"):
        return 2.0 * (gain or 1.0) ** 2 / (fan_in + fan_out)
    if scheme.startswith("kaiming"):
        if gain is None:
            gain = nn.init.calculate_gain(kw.get("nonlinearity", "relu"), kw.get("a"))
        return gain**2 / fan_in
    if scheme == "lecun_normal":
        return (gain or 1.0) ** 2 / fan_in
    return (gain or 1.0) ** 2 / max(fan_in, fan_out)  # orthogonal


@lru_cache(maxsize=4)
def _standard_normal_grid(num_points: int) -> tuple[torch.Tensor, torch.Tensor]:
    u = torch.linspace(-10.0, 10.0, num_points, dtype=torch.float64)
    return u, torch.exp(-0.5 * u**2) / math.sqrt(2 * math.pi)


def _gauss_expectation(fn, q: float, num_points: int = 4000) -> float:
    """:math:`\\mathbb E_{z\\sim\\mathcal N(0,q)}[f(z)]` by the trapezoid rule over :math:`\\pm 10\\sqrt q`.

    An even number of points keeps 0 exactly midway between two nodes, so the kinks and jumps of
    ReLU-like functions at 0 cost no accuracy (the error is below 1e-6).
    """
    if q == 0:
        return float(fn(torch.zeros(1, dtype=torch.float64))[0])
    u, density = _standard_normal_grid(num_points)
    return float(torch.trapezoid(fn(math.sqrt(q) * u) * density, u))


def _check_q(q) -> float:
    return check_positive("q", q, allow_zero=True)


def second_moment(activation: str, q: float) -> float:
    r""":math:`\mathbb E_{z\sim\mathcal N(0,q)}[\phi(z)^2]`: the second moment after the activation.

    ReLU gives exactly :math:`q/2` (half of a symmetric distribution is cut to zero; He et al.
    2015, sec. 2.2); the identity gives :math:`q`; tanh gives :math:`\approx q` for small
    :math:`q` and at most 1.
    """
    key = _act.canonical_name(activation)
    q = _check_q(q)
    return _gauss_expectation(lambda z: _act.function(key, z) ** 2, q)


def derivative_second_moment(activation: str, q: float) -> float:
    r""":math:`\mathbb E_{z\sim\mathcal N(0,q)}[\phi'(z)^2]`: the backward factor of the activation.

    ReLU: :math:`1/2`; tanh: 1 at :math:`q = 0`, falling as units saturate. Times
    :math:`\sigma_w^2 = n v` this is Schoenholz et al.'s :math:`\chi_1` (2017, eq. 5), the factor by
    which the squared gradient grows (> 1) or shrinks (< 1) per layer.
    """
    key = _act.canonical_name(activation)
    q = _check_q(q)
    return _gauss_expectation(lambda z: _act.derivative(key, z) ** 2, q)


def forward_factor(activation: str, q: float = 1.0) -> float:
    r""":math:`\mathbb E[\phi(z)^2] / q` for :math:`z\sim\mathcal N(0,q)`: 1/2 for ReLU, 1 for identity.

    The inverse of this factor is the squared "gain" a scheme needs to keep the forward second
    moment constant; compare ``torch.nn.init.calculate_gain``.
    """
    q = check_positive("q", q)
    return second_moment(activation, q) / q


def fixed_point(
    activation: str, sigma_w2: float, *, q0: float = 1.0, iterations: int = 1000
) -> tuple[float, float]:
    r"""The mean-field fixed point :math:`q^*` of :math:`q \mapsto \sigma_w^2\,\mathbb E_{z\sim\mathcal N(0,q)}[\phi(z)^2]` and :math:`\chi_1` there.

    :math:`\sigma_w^2 = n\,\mathrm{Var}(w)` (e.g. :math:`g^2` for LeCun normal with gain
    :math:`g`), biases zero. Returns ``(q_star, chi)`` with
    :math:`\chi_1 = \sigma_w^2\,\mathbb E_{z\sim\mathcal N(0,q^*)}[\phi'(z)^2]`, the per-layer
    factor of the squared gradient deep in the network: :math:`\chi_1 < 1` ordered (gradients
    vanish), :math:`> 1` chaotic (they explode), :math:`= 1` the edge of chaos (Schoenholz et al.
    2017, sec. 3; Poole et al. 2016). Found by iterating the map ``iterations`` times from ``q0``;
    where :math:`q^* = 0` the approach is slow (power law), so the returned :math:`q` is small but
    not exactly 0.
    """
    key = _act.canonical_name(activation)
    sigma_w2 = check_positive("sigma_w2", sigma_w2)
    q = check_positive("q0", q0)
    iterations = check_int("iterations", iterations, minimum=1)
    for _ in range(iterations):
        new = sigma_w2 * second_moment(key, q)
        if not math.isfinite(new):
            raise ValueError(
                f"the second moment diverges for activation={activation!r}, sigma_w2={sigma_w2}"
            )
        if abs(new - q) <= 1e-12 * max(1.0, q):
            q = new
            break
        q = new
    return q, sigma_w2 * derivative_second_moment(key, q)


@dataclass
class Propagation:
    r"""Per-layer second moments, layer 1 (input side) first; arrays of length ``depth``.

    ``preact``: :math:`\mathbb E[a_\ell^2]` (the Linear layer's output); ``act``:
    :math:`\mathbb E[h_\ell^2]` (the block's output); ``grad_preact``:
    :math:`\mathbb E[(\partial L/\partial a_\ell)^2]`; ``grad_act``:
    :math:`\mathbb E[(\partial L/\partial h_\ell)^2]`; ``grad_weight``:
    :math:`\mathbb E[(\partial L/\partial W_\ell)^2]` (measured only; ``nan`` in predictions).
    All are means over samples and units. For zero-mean quantities (pre-activations, gradients)
    a second moment is a variance. With ``keep_values``, :func:`measure_propagation` also keeps a
    sample of each layer's outputs :math:`h_\ell` (``act_values``) and of
    :math:`\partial L/\partial a_\ell` (``grad_values``) for histograms.
    """

    preact: np.ndarray
    act: np.ndarray
    grad_preact: np.ndarray
    grad_act: np.ndarray
    grad_weight: np.ndarray = field(default_factory=lambda: np.zeros(0))
    act_values: list[torch.Tensor] = field(default_factory=list)
    grad_values: list[torch.Tensor] = field(default_factory=list)

    @property
    def depth(self) -> int:
        return len(self.preact)


def predict_propagation(
    depth: int,
    scheme: str,
    activation: str = "relu",
    *,
    width: int,
    in_features: int | None = None,
    out_features: int = 10,
    input_second_moment: float = 1.0,
    output_grad_var: float = 1.0,
    multiplier: float = 1.0,
    **init_kw,
) -> Propagation:
    r"""Mean-field prediction of every layer's forward and backward second moments.

    The network is a :func:`vgcourse.mlp` with ``depth`` hidden layers of ``width`` units, every
    Linear layer (the output layer too) initialised with ``scheme`` and then multiplied by
    ``multiplier`` (its variance by ``multiplier**2``), biases zero. Forward:
    :math:`q_1 = n_0 v_1 \mathbb E[x^2]`, :math:`m_\ell = \mathbb E_{\mathcal N(0,q_\ell)}[\phi^2]`,
    :math:`q_{\ell+1} = n_\ell v_{\ell+1} m_\ell`. Backward, starting from output gradients of
    variance ``output_grad_var`` (what :func:`measure_propagation` uses when ``y`` is ``None``):
    :math:`g^h_L = n_{out} v_{out}\,\mathrm{Var}(\partial L/\partial \hat y)`,
    :math:`g^a_\ell = \mathbb E[\phi'(a_\ell)^2]\, g^h_\ell`,
    :math:`g^h_{\ell-1} = n_\ell v_\ell\, g^a_\ell` (module docstring).
    """
    depth = check_int("depth", depth, minimum=1)
    width = check_int("width", width, minimum=1)
    in_features = check_int(
        "in_features", in_features if in_features is not None else width, minimum=1
    )
    out_features = check_int("out_features", out_features, minimum=1)
    m0 = check_positive("input_second_moment", input_second_moment, allow_zero=True)
    g_out = check_positive("output_grad_var", output_grad_var, allow_zero=True)
    mult2 = check_positive("multiplier", multiplier, allow_zero=True) ** 2
    key = _act.canonical_name(activation)
    v_first = mult2 * weight_variance(scheme, in_features, width, **init_kw)
    v_hidden = mult2 * weight_variance(scheme, width, width, **init_kw)
    v_out = mult2 * weight_variance(scheme, width, out_features, **init_kw)
    preact, act, dphi = np.zeros(depth), np.zeros(depth), np.zeros(depth)
    m = m0
    for i in range(depth):
        fan_in = in_features if i == 0 else width
        v = v_first if i == 0 else v_hidden
        preact[i] = fan_in * v * m
        m = act[i] = second_moment(key, preact[i])
        dphi[i] = derivative_second_moment(key, preact[i])
    grad_act, grad_preact = np.zeros(depth), np.zeros(depth)
    g = out_features * v_out * g_out
    for i in reversed(range(depth)):
        grad_act[i] = g
        grad_preact[i] = dphi[i] * g
        g = width * (v_first if i == 0 else v_hidden) * grad_preact[i]
    return Propagation(preact, act, grad_preact, grad_act, np.full(depth, np.nan))


def predicted_second_moments(
    depth: int,
    scheme: str,
    activation: str = "relu",
    *,
    width: int,
    input_second_moment: float = 1.0,
    **init_kw,
) -> np.ndarray:
    r"""Predicted :math:`\mathbb E[h_\ell^2]` after each of ``depth`` square ``width x width`` layers.

    A shortcut for ``predict_propagation(...).act`` with ``in_features = width``. For ReLU with
    :math:`v = 1/n` every layer halves the second moment (:math:`2^{-\ell}`), with :math:`v = 2/n`
    it stays constant (He et al. 2015, sec. 2.2).
    """
    return predict_propagation(
        depth,
        scheme,
        activation,
        width=width,
        in_features=width,
        input_second_moment=input_second_moment,
        **init_kw,
    ).act


def rescale_weights_(net: nn.Module, factor: float) -> nn.Module:
    """Multiply every Linear weight of ``net`` by ``factor`` in place (an extra gain on any scheme)."""
    if not isinstance(net, nn.Module):
        raise TypeError(f"net must be a torch.nn.Module, got {type(net).__name__}")
    factor = check_positive("factor", factor, allow_zero=True)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.Linear):
                module.weight.mul_(factor)
    return net


def _blocks(net: nn.Module):
    blocks = getattr(net, "blocks", None)
    if blocks is None or not hasattr(net, "hidden_layers"):
        raise TypeError(
            f"net must be a vgcourse.mlp model (with .blocks and .hidden_layers), got {type(net).__name__}"
        )
    return list(blocks)


def measure_propagation(
    net: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    loss: str = "cross_entropy",
    seed: int = 0,
    keep_values: bool = False,
    max_values: int = 20000,
) -> Propagation:
    r"""Measure every hidden layer's forward and backward second moments with hooks (one pass).

    ``net`` is a :func:`vgcourse.mlp` model. With ``y`` the backward pass starts from ``loss``;
    without it, from random output gradients :math:`\partial L/\partial \hat y \sim \mathcal N(0, 1)`
    (``seed``), i.e. :math:`L = \sum \hat y \odot G`, the input the mean-field prediction
    :func:`predict_propagation` assumes. Gradients are cleared afterwards; no update is made.
    Fields are described in :class:`Propagation`; ``keep_values`` keeps up to ``max_values``
    sampled values per layer for histograms.
    """
    from ..losses import get_loss
    from ..models import model_device

    blocks = _blocks(net)
    X = check_tensor("X", X)
    if y is not None:
        X, y = check_xy(X, y)
    seed = check_int("seed", seed, minimum=0)
    max_values = check_int("max_values", max_values, minimum=1)
    device = model_device(net)
    X = X.to(device)
    depth = len(blocks)
    stats = {k: np.full(depth, np.nan) for k in ("preact", "act", "grad_preact", "grad_act")}
    samples: dict[str, list] = {"act": [None] * depth, "grad_preact": [None] * depth}
    handles = []

    def keep(name: str, i: int, t: torch.Tensor) -> None:
        if keep_values and name in samples:
            flat = t.detach().reshape(-1)
            step = max(1, -(-flat.numel() // max_values))
            samples[name][i] = flat[::step].float().cpu()

    def watch(i: int, name: str, grad_name: str):
        def hook(module, inputs, output):
            stats[name][i] = float(output.detach().double().pow(2).mean())
            keep(name, i, output)
            if output.requires_grad:

                def grad_hook(g):
                    stats[grad_name][i] = float(g.detach().double().pow(2).mean())
                    keep(grad_name, i, g)

                output.register_hook(grad_hook)

        return hook

    for i, block in enumerate(blocks):
        handles.append(block.linear.register_forward_hook(watch(i, "preact", "grad_preact")))
        handles.append(block.register_forward_hook(watch(i, "act", "grad_act")))
    net.zero_grad(set_to_none=True)
    try:
        out = net(X)
        if y is None:
            g = torch.Generator().manual_seed(seed)
            G = torch.randn(out.shape, generator=g, dtype=out.dtype).to(out.device)
            value = (out * G).sum()
        else:
            value = get_loss(loss)(out, y.to(device))
        value.backward()
    finally:
        for h in handles:
            h.remove()
    grad_weight = np.array(
        [
            float(layer.weight.grad.double().pow(2).mean())
            if layer.weight.grad is not None
            else np.nan
            for layer in net.hidden_layers
        ]
    )
    net.zero_grad(set_to_none=True)
    result = Propagation(grad_weight=grad_weight, **stats)
    if keep_values:
        result.act_values = samples["act"]
        result.grad_values = samples["grad_preact"]
    return result


def max_unit_difference(weight: torch.Tensor) -> float:
    r""":math:`\max_{i,j} |W_{ij} - W_{0j}|`: how far the units (rows) of a layer are from being copies.

    Zero means every unit of the layer has the same incoming weights, i.e. the layer behaves like a
    single unit: the symmetry that zero or constant initialisation never breaks.
    """
    weight = check_tensor("weight", weight, ndim=2)
    w = weight.detach().double()
    return float((w - w[:1]).abs().max())


def product_singular_values(
    depth: int, width: int, kind: str = "gaussian", *, gain: float = 1.0, seed: int = 0
) -> torch.Tensor:
    r"""Singular values (float64, largest first) of :math:`W_L \cdots W_1`, ``depth`` random ``width x width`` matrices.

    ``kind="gaussian"``: entries :math:`\mathcal N(0, g^2/n)` (mean squared singular value
    :math:`g^2`, the He/LeCun scaling of a linear net); ``kind="orthogonal"``: :math:`g\,Q` with
    :math:`Q` Haar-random orthogonal (``torch.nn.init.orthogonal_``), so with :math:`g=1` every
    singular value of the product is exactly 1 (Saxe et al. 2014, dynamical isometry).

    Computed in float64; values below about :math:`10^{-15}` times the largest are rounding noise.
    """
    depth = check_int("depth", depth, minimum=1)
    width = check_int("width", width, minimum=1)
    check_choice("kind", kind, ("gaussian", "orthogonal"))
    gain = check_positive("gain", gain)
    g = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    product = torch.eye(width, dtype=torch.float64)
    log_scale = 0.0
    for _ in range(depth):
        if kind == "gaussian":
            W = torch.randn(width, width, generator=g, dtype=torch.float64) * (
                gain / math.sqrt(width)
            )
        else:
            A = torch.randn(width, width, generator=g, dtype=torch.float64)
            Q, R = torch.linalg.qr(A)
            W = gain * Q * torch.sign(torch.diagonal(R))  # Haar measure (Mezzadri 2007)
        product = W @ product
        norm = float(product.norm())  # rescale to stay in range; multiplied back at the end
        product = product / norm
        log_scale += math.log(norm)
    return torch.linalg.svdvals(product) * math.exp(log_scale)


def layer_jacobians_batch(net: nn.Module, X: torch.Tensor) -> list[torch.Tensor]:
    r"""Every hidden layer's Jacobian at every row of ``X``: a list of ``(batch, n_out, n_in)`` tensors.

    For a plain :func:`vgcourse.mlp` (no norm layers, no skips) the Jacobian has the closed form
    :math:`J_\ell = \mathrm{diag}(\phi'(a_\ell))\, W_\ell`, computed here for the whole batch at
    once (lesson 04 checks it against :func:`vgcourse.jacobians.layer_jacobians`, which uses
    autograd one input at a time and also handles norms and skips).
    """
    blocks = _blocks(net)
    X = check_tensor("X", X, ndim=2)
    for block in blocks:
        if getattr(block, "residual", False) or not isinstance(block.norm, nn.Identity):
            raise ValueError(
                "layer_jacobians_batch needs a plain MLP (norm=None, residual=False); "
                "use vgcourse.jacobians.layer_jacobians for the others"
            )
    out = []
    with torch.no_grad():
        h = X.to(next(net.parameters()).device)
        for block in blocks:
            a = block.linear(h)
            d = _act.module_derivative(block.act, a)
            if d is None:  # identity
                d = torch.ones_like(a)
            out.append(d.unsqueeze(2) * block.linear.weight.unsqueeze(0))
            h = block.act(a)
    return out


def mean_jacobian_singular_values(net: nn.Module, X: torch.Tensor) -> np.ndarray:
    r"""Mean singular value of each hidden layer's Jacobian :math:`J_\ell = \partial h_\ell/\partial h_{\ell-1}`, averaged over the rows of ``X``.

    The quantity Glorot & Bengio 2010 (sec. 4.2.1) track: for a square tanh layer in its linear
    regime :math:`J_\ell \approx W_\ell`, whose singular values follow the quarter-circle law with
    mean :math:`\tfrac{8}{3\pi}\sqrt{n v} \approx 0.85\sqrt{n v}`. Uses the closed form of
    :func:`layer_jacobians_batch` (float64 singular values).
    """
    X = check_tensor("X", X, ndim=2)
    if len(X) == 0:
        raise ValueError("X must hold at least one input row")
    jacobians = layer_jacobians_batch(net, X)
    return np.array(
        [float(torch.linalg.svdvals(J.double()).mean()) for J in jacobians], dtype=float
    )


def _log_magnitude(values: torch.Tensor) -> torch.Tensor:
    """:math:`\\log_{10}|v|` of the nonzero entries (an all-zero sample stays as it is)."""
    magnitude = values.abs()
    nonzero = magnitude[magnitude > 0]
    return torch.log10(nonzero) if nonzero.numel() else magnitude


#: Schemes and activations offered by :func:`propagation_explorer`.
EXPLORER_SCHEMES = ("standard", "xavier_normal", "kaiming_normal", "lecun_normal", "orthogonal")
EXPLORER_ACTIVATIONS = ("tanh", "relu", "selu", "sigmoid", "identity")


def propagation_explorer(
    X: torch.Tensor,
    *,
    scheme: str = "xavier_normal",
    activation: str = "tanh",
    depth: int = 20,
    gain: float = 1.0,
    width: int = 64,
    out_features: int = 10,
    max_depth: int = 50,
    seed: int = 0,
    device: torch.device | str | None = None,
):
    r"""Explorer: init scheme, activation, depth and an extra gain -> per-layer statistics.

    Left: histograms of the activations :math:`h_\ell` of a few layers (of
    :math:`\log_{10}|h_\ell|` when their scales span more than two decades); middle: histograms of
    :math:`\log_{10}|\partial L/\partial a_\ell|` (the back-propagated gradients); right: the
    measured second moments :math:`\mathbb E[h_\ell^2]` and :math:`\mathbb E[(\partial L/\partial a_\ell)^2]`
    per layer (solid) against the mean-field prediction of :func:`predict_propagation` (dashed).
    The weights are the scheme's times ``gain`` (so ``gain=1`` is the scheme as published). Each
    setting is computed once (cached). ``explorer.state`` holds the last setting (``scheme``,
    ``activation``, ``depth``, ``gain``), its measurement (``measured``, a :class:`Propagation` of
    :func:`measure_propagation`) and the mean-field prediction (``predicted``). The networks run
    on ``device`` (default: :func:`vgcourse.get_device`).
    """
    from functools import lru_cache

    from ..device import get_device
    from ..models import mlp
    from ..plots import plot_histograms
    from ..widgets import Explorer, clear_data, dropdown, slider

    X = check_tensor("X", X, ndim=2)
    width = check_int("width", width, minimum=1)
    max_depth = check_int("max_depth", max_depth, minimum=2)
    check_choice("scheme", scheme, EXPLORER_SCHEMES)
    check_choice("activation", activation, EXPLORER_ACTIVATIONS)
    m0 = float(X.double().pow(2).mean())
    device = get_device(device)
    X = X.to(device)
    state: dict = {}

    @lru_cache(maxsize=64)
    def compute(scheme: str, activation: str, depth: int, gain: float):
        torch.manual_seed(seed)
        net = mlp(
            X.shape[1],
            out_features,
            depth=depth,
            width=width,
            activation=activation,
            init=scheme,
            device=device,
        )
        rescale_weights_(net, gain)
        measured = measure_propagation(net, X, seed=seed, keep_values=True, max_values=4000)
        predicted = predict_propagation(
            depth,
            scheme,
            activation,
            width=width,
            in_features=X.shape[1],
            out_features=out_features,
            input_second_moment=m0,
            multiplier=gain,
        )
        return measured, predicted

    def update(axes, scheme, activation, depth, gain):
        depth = int(depth)
        measured, predicted = compute(scheme, activation, depth, float(gain))
        state.update(
            scheme=scheme,
            activation=activation,
            depth=depth,
            gain=float(gain),
            measured=measured,
            predicted=predicted,
        )
        for ax in axes:
            clear_data(ax)  # keeps the axes' ticks: cheaper than clearing them
        shown = sorted({0, *range(0, depth, max(1, depth // 5)), depth - 1})
        moments = [measured.act[i] for i in shown]
        if max(moments) > 100 * max(min(moments), 1e-300):  # spans decades: show magnitudes
            plot_histograms(
                {f"layer {i + 1}": _log_magnitude(measured.act_values[i]) for i in shown},
                ax=axes[0],
                title=r"activations $h_\ell$ (magnitude)",
                xlabel=r"$\log_{10}|h_\ell|$ (zeros left out)",
            )
        else:
            plot_histograms(
                {f"layer {i + 1}": measured.act_values[i] for i in shown},
                ax=axes[0],
                title=r"activations $h_\ell$",
                xlabel="activation value",
            )
        plot_histograms(
            {f"layer {i + 1}": _log_magnitude(measured.grad_values[i]) for i in shown},
            ax=axes[1],
            title="back-propagated gradients",
            xlabel=r"$\log_{10}|\partial L/\partial a_\ell|$",
        )
        layers = np.arange(1, depth + 1)
        ax = axes[2]
        for values, pred, label in (
            (measured.act, predicted.act, r"$E[h_\ell^2]$"),
            (measured.grad_preact, predicted.grad_preact, r"$E[(\partial L/\partial a_\ell)^2]$"),
        ):
            (line,) = ax.plot(layers, values, "o-", ms=3, label=label + " measured")
            ax.plot(layers, pred, "--", color=line.get_color(), label="mean-field")
        ax.set_yscale("log")
        ax.set_xlabel("layer (1 = input side)")
        ax.set_ylabel("second moment")
        ax.set_title("per layer: measured vs predicted")
        ax.legend(fontsize=7)
        ax.grid(True, which="both", alpha=0.3)
        ratio = measured.grad_preact[0] / measured.grad_preact[-1]
        predicted_ratio = predicted.grad_preact[0] / predicted.grad_preact[-1]
        return (
            f"E[h^2]: layer 1 {measured.act[0]:.3g}, layer {depth} {measured.act[-1]:.3g} | "
            f"gradient E[g^2] layer 1 / layer {depth}: {ratio:.3g} (mean-field {predicted_ratio:.3g})"
        )

    controls = {
        "scheme": dropdown(EXPLORER_SCHEMES, scheme, "init"),
        "activation": dropdown(EXPLORER_ACTIVATIONS, activation, "activation"),
        "depth": slider(depth, 2, max_depth, 1, "depth", integer=True),
        "gain": slider(gain, 0.25, 4.0, 0.05, "extra gain"),
    }
    return Explorer(
        update,
        controls,
        caption="pick an activation, then find the init and gain that keep both curves flat; "
        "raise the depth and watch small per-layer factors compound.",
        title="Variance propagation at initialization",
        ncols=3,
        figsize=(12.5, 3.8),
        clear=False,  # update re-plots on the kept axes (see clear_data)
        state=state,
    )
