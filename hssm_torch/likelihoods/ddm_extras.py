"""DDM choice probabilities and survival (omission) probabilities.

Used by choice-only (CPN-like) and deadline (OPN-like) parts of the fitting code.

- :func:`ddm_log_choice_probability` / :func:`ddm_choice_probability`: the probability of each
  response integrated over all times, in closed form for the DDM (quadrature over the
  drift for ``ddm_sdv``).
- :func:`ddm_log_survival`: ``log P(no response before deadline)``, i.e.
  ``log(1 - CDF_upper(T) - CDF_lower(T))`` with ``T = deadline - t``.

Conventions as :mod:`hssm_torch.likelihoods.wfpt` (``a`` half the separation, separation
``A = 2a``, start ``z A`` above the lower boundary, response 1 = upper).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from hssm_torch.likelihoods._common import (
    Support,
    apply_support,
    as_inputs,
    log_ndtr,
    sanitize,
    series_log_eps,
)
from hssm_torch.likelihoods.wfpt import DDM_SDV_SUPPORTS, DDM_SUPPORTS

__all__ = [
    "SURVIVAL_TT_SWITCH",
    "ddm_choice_probability",
    "ddm_log_choice_probability",
    "ddm_log_survival",
]

#: Normalised time ``T / A^2`` below which the survival uses ``1 - CDFs`` (small-time image
#: series); above it the large-time eigenfunction series of the survival itself.
SURVIVAL_TT_SWITCH: float = 0.05

_PI2 = math.pi**2


@functools.lru_cache(maxsize=16)
def _normal_rule_numpy(n: int) -> tuple[np.ndarray, np.ndarray]:
    # E[g(X)], X ~ N(0, 1) ~= sum_i w_i g(x_i): Gauss-Legendre on [-9, 9] with weights phi(x).
    # (Gauss-Hermite converges slowly here: P(upper | v) has poles at v = i pi n / A.)
    x, w = np.polynomial.legendre.leggauss(n)
    x = 9.0 * x
    lw = np.log(9.0 * w) - 0.5 * x * x - 0.5 * math.log(2.0 * math.pi)
    return x, lw


@functools.lru_cache(maxsize=16)
def _gl_numpy(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(n)


def _h(x: torch.Tensor) -> torch.Tensor:
    """``log((1 - exp(-x)) / x)`` for any real ``x`` (0 at ``x = 0``), stable and smooth."""
    small = x.abs() < 1e-2
    # Away from 0: for x < 0, (1 - e^{-x}) / x = e^{|x|} (1 - e^{-|x|}) / |x|.
    y = torch.where(small, torch.ones_like(x), x.abs())
    big = torch.relu(-x) + torch.log(-torch.expm1(-y)) - torch.log(y)
    # Near 0 the (analytic) Taylor series in x itself, so the gradient at x = 0 is right.
    xs = torch.where(small, x, torch.zeros_like(x))
    x2 = xs * xs
    series = -xs / 2.0 + x2 / 24.0 - x2 * x2 / 2880.0
    return torch.where(small, series, big)


def _log_p_upper(v: torch.Tensor, sep: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    # P(upper) = (1 - exp(-2 v A z)) / (1 - exp(-2 v A)) = z * exp(h(cz) - h(c)), c = 2 v A.
    c = 2.0 * v * sep
    return torch.log(z) + _h(c * z) - _h(c)


def _split(theta: torch.Tensor, model_name: str):
    cols = theta.unbind(-1)
    sv = cols[4] if theta.shape[-1] == 5 else None
    return cols[0], cols[1], cols[2], cols[3], sv


def ddm_log_choice_probability(
    theta: torch.Tensor,
    response: torch.Tensor,
    *,
    validate: bool = False,
    n_sv: int = 160,
) -> torch.Tensor:
    """Log probability of ``response`` (over all response times) under the DDM.

    Parameters
    ----------
    theta:
        ``(..., 4)`` ``v, a, z, t`` (ddm) or ``(..., 5)`` with ``sv`` (ddm_sdv); ``t`` is
        irrelevant here but kept so rows are in registry order.
    response:
        ``1`` (upper) or ``-1`` (lower).
    validate:
        Raise ``ValueError`` for parameters outside the support instead of ``-inf``.
    n_sv:
        Quadrature nodes over the drift for ddm_sdv (Gauss--Legendre on ``v +- 9 sv``
        weighted by the normal density; 160 nodes give ~1e-10 over v in [-3, 3], a up to
        2.5, sv up to 1.5).

    Returns
    -------
    torch.Tensor
        ``log P(response)``: closed form ``P(upper) = (1 - e^{-4 v a z}) / (1 - e^{-4 v a})``.

    Example
    -------
    >>> import torch
    >>> th = torch.tensor([0.0, 1.0, 0.3, 0.2], dtype=torch.float64)
    >>> float(ddm_log_choice_probability(th, torch.tensor(1)).exp())  # doctest: +ELLIPSIS
    0.3...
    """
    model = "ddm_sdv" if torch.as_tensor(theta).shape[-1] == 5 else "ddm"
    supports = DDM_SDV_SUPPORTS if model == "ddm_sdv" else DDM_SUPPORTS
    _, response, theta = as_inputs(0.0, response, theta, (4, 5), "ddm/ddm_sdv")
    v, a, z, _t, sv = _split(theta, model)
    upper = response == 1
    known = upper | (response == -1)
    if validate and not bool(known.all()):
        raise ValueError(f"response must be -1 or 1, got {response[~known].flatten()[:5].tolist()}")
    ok = torch.ones_like(v, dtype=torch.bool)
    for j, sup in enumerate(supports):
        ok = ok & sup.inside(theta[..., j])
    vv = sanitize(torch.where(upper, v, -v), ok, 0.0)
    zz = sanitize(torch.where(upper, z, 1.0 - z), ok, 0.5)
    sep = sanitize(2.0 * a, ok, 1.0)
    if sv is None:
        out = _log_p_upper(vv, sep, zz)
    else:
        x, lw = _normal_rule_numpy(int(n_sv))
        x = torch.as_tensor(x, dtype=theta.dtype, device=theta.device)
        lw = torch.as_tensor(lw, dtype=theta.dtype, device=theta.device)
        svs = sanitize(sv, ok, 0.0)
        v_nodes = vv[..., None] + svs[..., None] * x
        out = torch.logsumexp(_log_p_upper(v_nodes, sep[..., None], zz[..., None]) + lw, -1)
    out = torch.where(known, out, torch.full_like(out, -math.inf))
    return apply_support(out, theta, supports, model, validate)


def ddm_choice_probability(
    theta: torch.Tensor, response: torch.Tensor, *, validate: bool = False
) -> torch.Tensor:
    """Probability of ``response`` under the DDM (``exp`` of :func:`ddm_log_choice_probability`).

    Example
    -------
    >>> import torch
    >>> th = torch.tensor([1.0, 1.0, 0.5, 0.2], dtype=torch.float64)
    >>> p = ddm_choice_probability(th, torch.tensor([1, -1]))
    >>> round(float(p.sum()), 12)
    1.0
    """
    return ddm_log_choice_probability(theta, response, validate=validate).exp()


def _log_cdf_lower_small(
    T: torch.Tensor, v: torch.Tensor, sep: torch.Tensor, w: torch.Tensor, n_pairs: int
) -> torch.Tensor:
    # Image series: F(T) = e^{-v x0} sum_k sgn(y_k) H(|y_k|), y_k = x0 + 2kA,
    # H(y) = e^{-v y} Phi((vT - y)/sqrt T) + e^{v y} Phi(-(vT + y)/sqrt T).
    sq = torch.sqrt(T)
    x0 = w * sep

    def log_h(y: torch.Tensor) -> torch.Tensor:
        return torch.logaddexp(
            -v * y + log_ndtr((v * T - y) / sq),
            v * y + log_ndtr(-(v * T + y) / sq),
        )

    base = log_h(x0)
    total = torch.ones_like(base)
    for k in range(1, n_pairs + 1):
        total = total + torch.exp(log_h(x0 + 2 * k * sep) - base)
        total = total - torch.exp(log_h(2 * k * sep - x0) - base)
    total = total.clamp_min(torch.finfo(total.dtype).tiny)
    return -v * x0 + base + torch.log(total)


def _log_survival_small(T, v, sep, w, n_pairs):
    lf_low = _log_cdf_lower_small(T, v, sep, w, n_pairs)
    lf_up = _log_cdf_lower_small(T, -v, sep, 1.0 - w, n_pairs)
    f = (torch.exp(lf_low) + torch.exp(lf_up)).clamp(max=1.0 - torch.finfo(T.dtype).eps)
    return torch.log1p(-f)


def _log_survival_large(T, v, sep, w, n_terms):
    # S(T) = e^{-v x0 - v^2 T/2} sum_k 2 k pi sin(k pi w) (1 - (-1)^k e^{vA})
    #        / (v^2 A^2 + k^2 pi^2) e^{-k^2 pi^2 T / (2 A^2)}
    va = v * sep
    m = torch.relu(va)
    tt = T / (sep * sep)
    log_pre = -v * w * sep - 0.5 * v * v * T + m - 0.5 * _PI2 * tt
    e_neg = torch.exp(-m)
    e_pos = torch.exp(va - m)
    va2 = va * va
    s = torch.zeros_like(T)
    for k in range(1, n_terms + 1):
        sign = -1.0 if k % 2 else 1.0
        coef = 2.0 * k * math.pi * torch.sin(k * math.pi * w) * (e_neg - sign * e_pos)
        s = s + coef / (va2 + k * k * _PI2) * torch.exp(-(k * k - 1.0) * 0.5 * _PI2 * tt)
    s = s.clamp_min(torch.finfo(s.dtype).tiny)
    return log_pre + torch.log(s)


def _log_survival_fixed_v(T, v, sep, w, log_eps):
    tt = T / (sep * sep)
    small = tt < SURVIVAL_TT_SWITCH
    with torch.no_grad():
        ttd = tt.detach()
        n_pairs = torch.ceil((1.0 + torch.sqrt(1.0 + 2.0 * ttd * log_eps)) / 2.0)
        n_large = torch.ceil(torch.sqrt(1.0 + 2.0 * (log_eps + 3.0) / (_PI2 * ttd)))
        kp = torch.where(small, n_pairs, torch.zeros_like(n_pairs)).max()
        kl = torch.where(small, torch.ones_like(n_large), n_large).max()
        kp, kl = (int(x) for x in torch.stack([kp, kl]).tolist())
    t_small = torch.where(small, T, SURVIVAL_TT_SWITCH * 0.5 * sep * sep)
    t_large = torch.where(small, SURVIVAL_TT_SWITCH * 2.0 * sep * sep, T)
    out_small = _log_survival_small(t_small, v, sep, w, max(kp, 1))
    out_large = _log_survival_large(t_large, v, sep, w, max(kl, 1))
    return torch.where(small, out_small, out_large)


def ddm_log_survival(
    deadline: torch.Tensor,
    theta: torch.Tensor,
    *,
    validate: bool = False,
    n_sv: int = 96,
) -> torch.Tensor:
    """``log P(no response before deadline)`` under the DDM or ddm_sdv.

    Parameters
    ----------
    deadline:
        Deadline in seconds (same clock as ``rt``: non-decision time included).
    theta:
        ``(..., 4)`` ``v, a, z, t`` or ``(..., 5)`` with ``sv`` (quadrature over the drift,
        ``n_sv`` Gauss--Legendre nodes on ``v +- 9 sv``).
    validate:
        Raise ``ValueError`` for parameters outside the support instead of ``-inf``.

    Returns
    -------
    torch.Tensor
        ``log(1 - CDF_upper(T) - CDF_lower(T))`` with ``T = deadline - t`` (0 where ``T <= 0``).
        For ``T / A^2 <`` :data:`SURVIVAL_TT_SWITCH` it is ``log1p(-(F_up + F_low))`` from the
        image (small-time) series of the CDFs; above, the large-time series of the survival
        itself, which stays accurate in relative terms when the survival is tiny.

    Example
    -------
    >>> import torch
    >>> th = torch.tensor([1.0, 1.0, 0.5, 0.2], dtype=torch.float64)
    >>> bool(ddm_log_survival(torch.tensor(1.0), th) < 0)
    True
    """
    model = "ddm_sdv" if torch.as_tensor(theta).shape[-1] == 5 else "ddm"
    supports: tuple[Support, ...] = DDM_SDV_SUPPORTS if model == "ddm_sdv" else DDM_SUPPORTS
    deadline, _, theta = as_inputs(deadline, 0, theta, (4, 5), "ddm/ddm_sdv")
    v, a, z, t, sv = _split(theta, model)
    ok = torch.ones_like(v, dtype=torch.bool)
    for j, sup in enumerate(supports):
        ok = ok & sup.inside(theta[..., j])
    T = deadline - t
    pos = ok & (T > 0)
    T_s = sanitize(T, pos, 1.0)
    v_s = sanitize(v, pos, 0.0)
    sep = sanitize(2.0 * a, pos, 1.0)
    w = sanitize(z, pos, 0.5)
    log_eps = series_log_eps(theta.dtype)
    if sv is None:
        out = _log_survival_fixed_v(T_s, v_s, sep, w, log_eps)
    else:
        # S(T | v) carries exp(-v x0 - v^2 T / 2) (and exp(v (A - x0) - ...)): with
        # v ~ N(v, sv^2) the integrand is concentrated on the tilted normals
        # N((v + beta sv^2) / (1 + sv^2 T), sv^2 / (1 + sv^2 T)), beta in {-x0, A - x0}.
        # Gauss-Legendre nodes cover both +- 9 sd; weights carry the N(v, sv^2) density.
        xg, wg = _gl_numpy(int(n_sv))
        xg = torch.as_tensor(xg, dtype=theta.dtype, device=theta.device)
        lwg = torch.as_tensor(np.log(wg), dtype=theta.dtype, device=theta.device)
        sv_s = sanitize(sv, pos, 1.0).clamp_min(torch.finfo(theta.dtype).tiny ** 0.25)
        den = 1.0 + sv_s * sv_s * T_s
        sd = sv_s / torch.sqrt(den)
        x0 = w * sep
        m1 = (v_s - x0 * sv_s * sv_s) / den
        m2 = (v_s + (sep - x0) * sv_s * sv_s) / den
        lo = torch.minimum(m1, m2) - 9.0 * sd
        hi = torch.maximum(m1, m2) + 9.0 * sd
        half = 0.5 * (hi - lo)
        v_nodes = 0.5 * (hi + lo)[..., None] + half[..., None] * xg
        log_norm = (
            -0.5 * ((v_nodes - v_s[..., None]) / sv_s[..., None]) ** 2
            - torch.log(sv_s[..., None])
            - 0.5 * math.log(2.0 * math.pi)
        )
        e = lambda q: q[..., None].expand(v_nodes.shape)  # noqa: E731
        out = torch.logsumexp(
            _log_survival_fixed_v(e(T_s), v_nodes, e(sep), e(w), log_eps)
            + log_norm
            + lwg
            + torch.log(half)[..., None],
            -1,
        )
    out = torch.where(pos, out, torch.zeros_like(out))
    return apply_support(out, theta, supports, model, validate)
