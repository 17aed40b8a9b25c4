"""The full DDM: drift (sv), start-point (sz) and non-decision-time (st) variability.

Convention (HDDM's, which HSSM's ``full_ddm`` uses): across trials

    v ~ Normal(v, sv^2),   z ~ Uniform(z - sz/2, z + sz/2),   t ~ Uniform(t - st/2, t + st/2),

so ``sz`` is the relative *width* of the start-point range and ``st`` the width (seconds) of the
non-decision-time range, both centred on ``z`` and ``t``. Parameter sets with
``z - sz/2 <= 0``, ``z + sz/2 >= 1`` or ``t - st/2 < 0`` are outside the support (``-inf``).

``sv`` is integrated in closed form (:func:`~hssm_torch.likelihoods.wfpt.log_wfpt_lower`);
``sz`` and ``st`` by tensor-product Gauss--Legendre quadrature (``n_sz`` x ``n_st`` nodes).
The ``st`` integral runs over the decision times ``u = rt - tau`` that are positive; when the
range reaches ``u = 0`` the nodes are mapped by ``u = u_hi s^2`` so they cluster where the density
rises from zero. With the defaults (``n_sz = 10``, ``n_st = 24``) the log-likelihood agrees with
adaptive scipy integration to better than 1e-5 over the registry's training box (see
``tests/hssm_torch/likelihoods/test_full_ddm.py``; docs/likelihoods.md gives the figures).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from hssm_torch.likelihoods._common import (
    LOG_FLOOR,
    Support,
    apply_support,
    as_inputs,
    sanitize,
)
from hssm_torch.likelihoods.wfpt import log_wfpt_lower

__all__ = [
    "FULL_DDM_SUPPORTS",
    "full_ddm_log_likelihood",
    "gauss_laguerre",
    "gauss_legendre_01",
]

#: Use the 1/u substitution for the st integral where c / u_hi exceeds this (c = (w A)^2 / 2).
_STEEP = 2.0
#: Gauss-Laguerre is used only where the substituted range is at least this long.
_X_MIN = 30.0
#: Power of the node map u = u_hi s^_POW used where the t-range is truncated at u = 0.
_POW = 3.0

FULL_DDM_SUPPORTS = (
    Support("v"),
    Support("a", 0.0),
    Support("z", 0.0, 1.0),
    Support("t", 0.0, lo_closed=True),
    Support("sz", 0.0, 1.0, lo_closed=True),
    Support("sv", 0.0, lo_closed=True),
    Support("st", 0.0, lo_closed=True),
)


@functools.lru_cache(maxsize=32)
def _gl01_numpy(n: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(n)
    return (x + 1.0) / 2.0, w / 2.0


@functools.lru_cache(maxsize=32)
def _glag_numpy(n: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.laguerre.laggauss(n)
    return x, np.log(w)


def gauss_laguerre(
    n: int, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss--Laguerre nodes and log-weights for ``int_0^inf exp(-x) g(x) dx``.

    Example
    -------
    >>> x, log_w = gauss_laguerre(4)
    >>> round(float(log_w.exp().sum()), 12)
    1.0
    """
    if int(n) < 1:
        raise ValueError(f"n (number of quadrature nodes) must be >= 1, got {n}")
    x, lw = _glag_numpy(int(n))
    return (
        torch.as_tensor(x, dtype=dtype, device=device),
        torch.as_tensor(lw, dtype=dtype, device=device),
    )


def gauss_legendre_01(
    n: int, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss--Legendre nodes and weights on ``[0, 1]`` (weights sum to 1).

    Example
    -------
    >>> x, w = gauss_legendre_01(3)
    >>> round(float(w.sum()), 12)
    1.0
    """
    if int(n) < 1:
        raise ValueError(f"n (number of quadrature nodes) must be >= 1, got {n}")
    x, w = _gl01_numpy(int(n))
    return (
        torch.as_tensor(x, dtype=dtype, device=device),
        torch.as_tensor(w, dtype=dtype, device=device),
    )


def full_ddm_log_likelihood(
    rt: torch.Tensor,
    response: torch.Tensor,
    theta: torch.Tensor,
    *,
    validate: bool = False,
    n_sz: int = 10,
    n_st: int = 24,
) -> torch.Tensor:
    """Log-likelihood of the full DDM (parameters ``v, a, z, t, sz, sv, st``).

    Parameters
    ----------
    rt, response:
        Response times (s) and responses (``-1`` lower, ``1`` upper).
    theta:
        ``(..., 7)`` in registry order ``v, a, z, t, sz, sv, st`` (see the module docstring
        for the variability convention).
    validate:
        Raise ``ValueError`` naming the parameter instead of returning ``-inf``.
    n_sz, n_st:
        Gauss--Legendre nodes for the start-point and non-decision-time integrals.

    Returns
    -------
    torch.Tensor
        Log-likelihood; :data:`LOG_FLOOR` where ``rt <= t - st/2``.

    Example
    -------
    >>> import torch
    >>> th = torch.tensor([1.0, 1.0, 0.5, 0.3, 0.1, 0.5, 0.1], dtype=torch.float64)
    >>> full_ddm_log_likelihood(torch.tensor([0.9, 0.9]), torch.tensor([1, -1]), th).shape
    torch.Size([2])
    """
    model = "full_ddm"
    rt, response, theta = as_inputs(rt, response, theta, 7, model)
    v, a, z, t, sz, sv, st = theta.unbind(-1)
    upper = response == 1
    lower = response == -1
    known = upper | lower
    if validate and not bool(known.all()):
        bad = response[~known].flatten()[:5].tolist()
        raise ValueError(f"model {model!r}: response must be -1 or 1, got {bad}")
    inside = torch.ones_like(rt, dtype=torch.bool)
    for j, sup in enumerate(FULL_DDM_SUPPORTS):
        inside = inside & sup.inside(theta[..., j])
    joint = (z - sz / 2 > 0) & (z + sz / 2 < 1) & (t - st / 2 >= 0)
    if validate and not bool((joint | ~inside).all()):
        raise ValueError(
            f"model {model!r}: parameters must satisfy z - sz/2 > 0, z + sz/2 < 1 and "
            "t - st/2 >= 0 (sz and st are widths of ranges centred on z and t)"
        )
    u_hi = rt - t + st / 2
    ok = inside & joint & known & (u_hi > 0)

    # Sanitised parameters (double-where trick: invalid points never reach the formulas).
    v_s = sanitize(torch.where(upper, -v, v), ok, 0.0)
    sep_s = sanitize(2.0 * a, ok, 1.0)
    w0 = torch.where(upper, 1.0 - z, z)
    w_s = sanitize(w0, ok, 0.5)
    sz_s = sanitize(sz, ok, 0.0)
    sv_s = sanitize(sv, ok, 0.0)
    st_s = sanitize(st, ok, 0.0)
    u_hi_s = sanitize(u_hi, ok, 1.0)
    u_lo_raw = u_hi_s - st_s
    truncated = u_lo_raw <= 0
    u_lo = torch.where(truncated, torch.zeros_like(u_lo_raw), u_lo_raw)

    xz, wz = gauss_legendre_01(n_sz, theta.dtype, theta.device)
    xt, wt = gauss_legendre_01(n_st, theta.dtype, theta.device)
    e2 = lambda x: x[..., None, None]  # noqa: E731  (..., 1, 1)
    u_hi2, u_lo2, sep2, sz2 = e2(u_hi_s), e2(u_lo), e2(sep_s), e2(sz_s)
    w_lo2 = e2(w_s) - 0.5 * sz2
    span = u_hi2 - u_lo2
    # --- decision-time nodes, shape (..., 1, n_st) ---
    # The density rises from u = 0 like exp(-c / u), c = (w A)^2 / 2 (smallest w: widest).
    c = 0.5 * (w_lo2 * sep2) ** 2
    c_s0 = torch.where(c > 0, c, torch.ones_like(c))
    inv_lo = torch.where(u_lo2 > 0, 1.0 / torch.where(u_lo2 > 0, u_lo2, 1.0), math.inf)
    x_max = c_s0 * (inv_lo - 1.0 / u_hi2)
    steep = (c > _STEEP * u_hi2) & (x_max > _X_MIN) & (e2(st_s) > 0)
    # (1) Gauss-Legendre in u on [u_lo, u_hi] (mean of the density over the range).
    # Where the range is truncated at u = 0 (rt inside the t-range) use u = u_hi s^_POW, which
    # clusters nodes near the density's rise from zero.
    trunc2 = e2(truncated)
    u_lin = torch.where(trunc2, u_hi2 * xt**_POW, u_lo2 + span * xt)
    log_w_lin = torch.where(
        trunc2, torch.log(_POW * xt ** (_POW - 1) * wt), torch.log(wt).expand(u_lin.shape)
    )
    # (2) Steep rise: 1/u = 1/u_hi + x / c, x in [0, inf): the integrand is exp(-x) times a
    # smooth function, integrated by Gauss-Laguerre (nodes beyond x_max > _X_MIN dropped).
    # Integral = int_0^inf exp(-x) [f(u(x)) e^x u(x)^2 / c] dx; divided by span for the mean.
    c_s = torch.where(steep, c, torch.ones_like(c))
    xl, log_wl = gauss_laguerre(n_st, theta.dtype, theta.device)
    u_steep = 1.0 / (1.0 / u_hi2 + xl / c_s)
    span_s = torch.where(steep, span, torch.ones_like(span))
    beyond = xl > x_max
    log_w_steep = log_wl + xl + 2.0 * torch.log(u_steep) - torch.log(c_s) - torch.log(span_s)
    log_w_steep = torch.where(beyond, torch.full_like(log_w_steep, -math.inf), log_w_steep)
    u_nodes = torch.where(steep, u_steep, u_lin)
    log_wu = torch.where(steep, log_w_steep, log_w_lin)
    # --- start-point nodes for each u node, shape (..., n_sz, n_st) ---
    # At fixed u the density falls in w like exp(-w^2 A^2 / (2u)): rate kappa = w_lo A^2 / u
    # at the low end. Where kappa * sz is large, w = w_lo + x / kappa, x in [0, min(kappa sz, X)].
    xz_ = xz[:, None]
    wz_ = wz[:, None]
    kappa = w_lo2 * sep2 * sep2 / u_nodes
    steep_w = (kappa * sz2 > _X_MIN) & (u_nodes < 0.1 * sep2 * sep2)
    kappa_s = torch.where(steep_w, kappa, torch.ones_like(kappa))
    xlw, log_wlw = gauss_laguerre(n_sz, theta.dtype, theta.device)
    xlw, log_wlw = xlw[:, None], log_wlw[:, None]
    sz_k = torch.where(steep_w, sz2, torch.ones_like(sz2))
    w_nodes = torch.where(steep_w, w_lo2 + xlw / kappa_s, w_lo2 + sz2 * xz_)
    log_w_steep_w = log_wlw + xlw - torch.log(kappa_s) - torch.log(sz_k)
    log_w_steep_w = torch.where(
        xlw > kappa_s * sz_k, torch.full_like(log_w_steep_w, -math.inf), log_w_steep_w
    )
    log_ww = torch.where(steep_w, log_w_steep_w, torch.log(wz_).expand(w_nodes.shape))
    logf = log_wfpt_lower(u_nodes, e2(v_s), sep2, w_nodes, e2(sv_s))
    log_mean = torch.logsumexp((logf + log_wu + log_ww).flatten(-2), dim=-1)
    # Mean over the whole t-range = mean over the positive part x (u_hi - u_lo) / st.
    frac_ok = (st_s > 0) & truncated
    frac = torch.where(frac_ok, u_hi_s / sanitize(st_s, frac_ok, 1.0), torch.ones_like(st_s))
    logp = log_mean + torch.log(frac)
    logp = torch.where(ok, logp, torch.full_like(logp, LOG_FLOOR))
    logp = torch.where(inside & ~joint, torch.full_like(logp, -float("inf")), logp)
    return apply_support(logp, theta, FULL_DDM_SUPPORTS, model, validate)
