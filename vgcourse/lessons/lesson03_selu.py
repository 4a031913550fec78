r"""SELU's self-normalizing fixed point (Klambauer et al. 2017, sec. 3 and appendix A3): the mean and
second moment of :math:`\mathrm{SELU}(z)` for :math:`z \sim N(\mu, \nu)` in closed form, the moment map
:math:`(\mu, \nu) \mapsto (\tilde\mu, \tilde\nu)` of a layer with :math:`\sum w = 0`, :math:`\sum w^2 = 1`,
its iteration and Jacobian at the fixed point, and the constants :math:`\lambda, \alpha` solved from the
two conditions :math:`\tilde\mu(0, 1) = 0`, :math:`\tilde\nu(0, 1) = 1`."""

from __future__ import annotations

import math

import numpy as np
import torch

from .. import activations as _act
from .._validate import (
    check_int,
    check_positive,
)
from .lesson03_activations import _check_real, _phi, gaussian_expectation


# -- SELU -----------------------------------------------------------------------------------------
def elu_gaussian_moments(mean: float, std: float, alpha: float = 1.0) -> tuple[float, float]:
    r""":math:`(\mathbb E[\mathrm{elu}_\alpha(z)],\ \mathbb E[\mathrm{elu}_\alpha(z)^2])` for :math:`z\sim\mathcal N(m, s^2)`, in closed form.

    With :math:`\Phi` the normal CDF, :math:`\varphi` its density and :math:`r = m/s`:

    .. math::
        \mathbb E[z;\,z>0] = m\Phi(r) + s\varphi(r),\quad
        \mathbb E[z^2;\,z>0] = (m^2+s^2)\Phi(r) + ms\varphi(r),\quad
        \mathbb E[e^{kz};\,z<0] = e^{km + k^2s^2/2}\,\Phi\!\big(-(m + ks^2)/s\big),

    so :math:`\mathbb E[\mathrm{elu}] = \mathbb E[z;z>0] + \alpha(\mathbb E[e^z;z<0] - \Phi(-r))` and
    :math:`\mathbb E[\mathrm{elu}^2] = \mathbb E[z^2;z>0] + \alpha^2(\mathbb E[e^{2z};z<0] - 2\mathbb E[e^z;z<0] + \Phi(-r))`.
    """
    m = _check_real("mean", mean)
    s = check_positive("std", std)
    alpha = _check_real("alpha", alpha)
    r = m / s
    dens = math.exp(-0.5 * r * r) / math.sqrt(2 * math.pi)

    def exp_neg(k: float) -> float:
        return math.exp(k * m + 0.5 * k * k * s * s) * _phi(-(m + k * s * s) / s)

    pos1 = m * _phi(r) + s * dens
    pos2 = (m * m + s * s) * _phi(r) + m * s * dens
    e1, e2, p_neg = exp_neg(1.0), exp_neg(2.0), _phi(-r)
    first = pos1 + alpha * (e1 - p_neg)
    second = pos2 + alpha**2 * (e2 - 2 * e1 + p_neg)
    return first, second


def selu_moment_map(
    mu: float,
    nu: float,
    *,
    omega: float = 0.0,
    tau: float = 1.0,
    alpha: float = _act.SELU_ALPHA,
    lam: float = _act.SELU_LAMBDA,
) -> tuple[float, float]:
    r"""Klambauer et al. 2017 (sec. 2): the map :math:`g: (\mu, \nu) \mapsto (\tilde\mu, \tilde\nu)` of a SELU layer.

    Inputs with mean :math:`\mu` and variance :math:`\nu`, one unit with weights :math:`w`,
    :math:`\omega = \sum_i w_i`, :math:`\tau = \sum_i w_i^2`: by the central limit theorem
    :math:`z = w^\top x \sim \mathcal N(\mu\omega, \nu\tau)`, and
    :math:`\tilde\mu = \mathbb E[\mathrm{selu}(z)]`,
    :math:`\tilde\nu = \mathbb E[\mathrm{selu}(z)^2] - \tilde\mu^2` (closed form,
    :func:`elu_gaussian_moments`). With :math:`\omega = 0, \tau = 1` and the constants
    :math:`\alpha_{01}, \lambda_{01}`, :math:`(0, 1)` is a fixed point.
    """
    mu = _check_real("mu", mu)
    nu = check_positive("nu", nu)
    omega = _check_real("omega", omega)
    tau = check_positive("tau", tau)
    lam = check_positive("lam", lam)
    first, second = elu_gaussian_moments(mu * omega, math.sqrt(nu * tau), alpha)
    m = lam * first
    return m, lam**2 * second - m * m


def iterate_moment_map(
    mu: float, nu: float, steps: int, *, omega: float = 0.0, tau: float = 1.0
) -> np.ndarray:
    """Apply :func:`selu_moment_map` ``steps`` times from ``(mu, nu)``: array ``(steps + 1, 2)``, start included."""
    steps = check_int("steps", steps, minimum=0)
    path = [(float(mu), float(nu))]
    for _ in range(steps):
        path.append(selu_moment_map(*path[-1], omega=omega, tau=tau))
    return np.asarray(path)


def moment_map_jacobian(mu: float = 0.0, nu: float = 1.0, *, h: float = 1e-6, **kw) -> np.ndarray:
    r"""Jacobian :math:`\partial(\tilde\mu,\tilde\nu)/\partial(\mu,\nu)` of :func:`selu_moment_map` by central differences.

    At the fixed point its spectral norm below 1 makes :math:`g` a contraction there (Klambauer et
    al. 2017, sec. 2), so nearby means and variances are pulled back to :math:`(0, 1)`.
    """
    h = check_positive("h", h)
    J = np.zeros((2, 2))
    for j, (dm, dn) in enumerate(((h, 0.0), (0.0, h))):
        plus = selu_moment_map(mu + dm, nu + dn, **kw)
        minus = selu_moment_map(mu - dm, nu - dn, **kw)
        J[:, j] = (np.asarray(plus) - np.asarray(minus)) / (2 * h)
    return J


def selu_constants_closed_form() -> tuple[float, float]:
    r""":math:`(\alpha_{01}, \lambda_{01})` from :math:`\mathbb E[\mathrm{selu}(z)] = 0`, :math:`\mathbb E[\mathrm{selu}(z)^2] = 1`, :math:`z \sim \mathcal N(0,1)`.

    The mean condition does not involve :math:`\lambda`:
    :math:`\tfrac{1}{\sqrt{2\pi}} + \alpha\,(e^{1/2}\Phi(-1) - \tfrac12) = 0`, so
    :math:`\alpha_{01} = \sqrt{2/\pi}\,/\,(1 - e^{1/2}\,\mathrm{erfc}(1/\sqrt2))`. Then
    :math:`\lambda_{01} = \big(\tfrac12 + \alpha_{01}^2(e^2\Phi(-2) - 2e^{1/2}\Phi(-1) + \tfrac12)\big)^{-1/2}`.
    """
    alpha = math.sqrt(2 / math.pi) / (1 - math.exp(0.5) * math.erfc(1 / math.sqrt(2)))
    inner = math.exp(2) * _phi(-2) - 2 * math.exp(0.5) * _phi(-1) + 0.5
    lam = 1 / math.sqrt(0.5 + alpha**2 * inner)
    return alpha, lam


def solve_selu_constants(
    *, target_mean: float = 0.0, target_var: float = 1.0, tol: float = 1e-13
) -> tuple[float, float]:
    r"""Solve :math:`\mathbb E[\lambda\,\mathrm{elu}_\alpha(z)] = \mu^*`, :math:`\mathrm{Var}[\lambda\,\mathrm{elu}_\alpha(z)] = \nu^*` numerically.

    For :math:`z \sim \mathcal N(0, 1)`, the expectations by quadrature of PyTorch's own ``elu``
    (:func:`gaussian_expectation`). The mean is :math:`\lambda` times a quantity decreasing in
    :math:`\alpha`, so for :math:`\mu^* = 0` bisection on :math:`\alpha` alone gives
    :math:`\alpha`, then :math:`\lambda` follows from the variance. Only ``target_mean = 0`` has
    this decoupling; other targets raise ``ValueError``.
    """
    target_mean = _check_real("target_mean", target_mean)
    target_var = check_positive("target_var", target_var)
    if target_mean != 0.0:
        raise ValueError(f"target_mean must be 0 (the SELU fixed point), got {target_mean!r}")
    tol = check_positive("tol", tol)
    fn = torch.nn.functional.elu

    def mean_elu(alpha: float) -> float:
        return gaussian_expectation(lambda z: fn(z, alpha=alpha))

    lo, hi = 0.0, 10.0  # mean_elu(0) = 1/sqrt(2 pi) > 0, mean_elu(10) < 0
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if mean_elu(mid) > 0:
            lo = mid
        else:
            hi = mid
    alpha = 0.5 * (lo + hi)
    m = mean_elu(alpha)
    second = gaussian_expectation(lambda z: fn(z, alpha=alpha) ** 2)
    lam = math.sqrt(target_var / (second - m * m))
    return alpha, lam
