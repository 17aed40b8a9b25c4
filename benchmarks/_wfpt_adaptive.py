"""The adaptive WFPT series that hssm_torch used before the fixed-term scheme (benchmark only).

Kept here, outside the package, so benchmarks/likelihoods.py can time old against new in
one run. Per call it chooses the series per element and the term counts from the data
(boolean indexing and a host synchronisation).
"""

from __future__ import annotations

import math

import torch

from hssm_torch.likelihoods._common import (
    LOG_FLOOR,
    Support,
    apply_support,
    as_inputs,
    sanitize,
    series_log_eps,
)

__all__ = [
    "DDM_SDV_SUPPORTS",
    "DDM_SUPPORTS",
    "ddm_log_likelihood",
    "ddm_sdv_log_likelihood",
    "log_f01",
    "log_wfpt_lower",
    "wfpt_term_counts",
]

_LOG_2PI = math.log(2.0 * math.pi)
_LOG_PI = math.log(math.pi)
_PI2 = math.pi**2

DDM_SUPPORTS = (
    Support("v"),
    Support("a", 0.0),
    Support("z", 0.0, 1.0),
    Support("t", 0.0, lo_closed=True),
)
DDM_SDV_SUPPORTS = DDM_SUPPORTS + (Support("sv", 0.0, lo_closed=True),)


def wfpt_term_counts(
    tt: torch.Tensor, w: torch.Tensor, log_eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Number of terms each series needs for relative error ``exp(-log_eps)``.

    Small-time series (pairs ``k, -k`` for ``k = 1..K_s`` beside ``k = 0``): the omitted
    terms relative to the ``k = 0`` term are at most
    ``exp(-((2K+2-w)^2 - w^2) / (2 tt))`` (Gaussian decay), hence
    ``K_s = ceil((w + sqrt(w^2 + 2 tt L)) / 2 - 1)``.

    Large-time series (``k = 1..K_l``): since ``|sin(k pi w)| <= k sin(pi w)`` the omitted
    terms relative to the first are at most ``sum_{k>K} k^2 exp(-(k^2-1) pi^2 tt / 2)``,
    below ``exp(-L)`` once ``(K+1)^2 - 1 >= 2 (L + 2 log(K+1) + log 2) / (pi^2 tt)``.

    Returns integer-valued float tensors ``(K_s, K_l)`` (no gradient).
    """
    with torch.no_grad():
        ks = torch.ceil((w + torch.sqrt(w * w + 2.0 * tt * log_eps)) / 2.0 - 1.0).clamp_min(0.0)
        m0 = torch.sqrt(1.0 + 2.0 * log_eps / (_PI2 * tt))
        m = torch.sqrt(1.0 + 2.0 * (log_eps + math.log(2.0) + 2.0 * torch.log1p(m0)) / (_PI2 * tt))
        kl = torch.ceil(m).clamp(min=1.0) - 1.0
        kl = kl.clamp_min(1.0)
    return ks, kl


def _log_f01_small(tt: torch.Tensor, w: torch.Tensor, n_pairs: int) -> torch.Tensor:
    # sum_k (w + 2k) exp(-(w + 2k)^2 / (2 tt)), factored by the k = 0 term's exponential.
    # Pairs (k, -k) are combined as E * (w (2 + m) + 2 k m) with E = exp(-2k(k - w)/tt),
    # m = expm1(-4 k w / tt): accurate for w -> 0 where the raw terms cancel.
    s = w
    for k in range(1, n_pairs + 1):
        e = torch.exp(-2.0 * k * (k - w) / tt)
        m = torch.expm1(-4.0 * k * w / tt)
        s = s + e * (w * (2.0 + m) + (2.0 * k) * m)
    s = s.clamp_min(torch.finfo(s.dtype).tiny)
    return -0.5 * _LOG_2PI - 1.5 * torch.log(tt) - w * w / (2.0 * tt) + torch.log(s)


def _log_f01_large(tt: torch.Tensor, w: torch.Tensor, n_terms: int) -> torch.Tensor:
    # pi * sum_{k>=1} k exp(-k^2 pi^2 tt / 2) sin(k pi w), factored by exp(-pi^2 tt / 2).
    x = 0.5 * _PI2 * tt
    pw = math.pi * w
    s = torch.sin(pw)
    for k in range(2, n_terms + 1):
        s = s + k * torch.exp(-(k * k - 1.0) * x) * torch.sin(k * pw)
    s = s.clamp_min(torch.finfo(s.dtype).tiny)
    return _LOG_PI - x + torch.log(s)


def log_f01(tt: torch.Tensor, w: torch.Tensor, log_eps: float | None = None) -> torch.Tensor:
    """Log of the standardised lower-boundary density ``f(tt | v=0, A=1, w)``.

    Each element uses the small-time series when it needs fewer terms than the large-time
    series (:func:`wfpt_term_counts`); each group is evaluated up to the largest term count
    it needs in this batch (surplus terms only lower the truncation error further).

    Parameters
    ----------
    tt:
        Normalised decision times ``u / A^2`` (> 0).
    w:
        Relative start point in (0, 1), measured from the lower boundary.
    log_eps:
        ``-log`` of the relative truncation error; default :func:`series_log_eps` of the dtype.

    Example
    -------
    >>> import torch
    >>> log_f01(torch.tensor([0.05, 2.0], dtype=torch.float64), torch.tensor([0.5, 0.5],
    ...         dtype=torch.float64)).shape
    torch.Size([2])
    """
    tt, w = torch.broadcast_tensors(tt, w)
    if log_eps is None:
        log_eps = series_log_eps(tt.dtype)
    info = torch.finfo(tt.dtype)
    # Keep tt in a range where values and gradients are finite; only affects log-densities
    # far below -1e9 (tt < tiny^(1/4)) or above 1e18 (tt > max^(1/4)).
    tt = tt.clamp(info.tiny**0.25, info.max**0.25)
    ks, kl = wfpt_term_counts(tt.detach(), w.detach(), log_eps)
    small = 2.0 * ks + 1.0 <= kl
    flat_small = small.reshape(-1)
    n_small = int(flat_small.sum())
    n = flat_small.numel()
    if n_small == n:
        return _log_f01_small(tt, w, int(ks.max()) if n else 0)
    if n_small == 0:
        return _log_f01_large(tt, w, int(kl.max()))
    idx_s = flat_small.nonzero().squeeze(-1)
    idx_l = (~flat_small).nonzero().squeeze(-1)
    tt_f, w_f = tt.reshape(-1), w.reshape(-1)
    ks_max, kl_max = torch.stack(
        [ks.reshape(-1)[idx_s].max(), kl.reshape(-1)[idx_l].max()]
    ).tolist()
    out_s = _log_f01_small(tt_f[idx_s], w_f[idx_s], int(ks_max))
    out_l = _log_f01_large(tt_f[idx_l], w_f[idx_l], int(kl_max))
    out = torch.zeros(n, dtype=out_s.dtype, device=out_s.device)
    out = out.index_copy(0, idx_s, out_s).index_copy(0, idx_l, out_l)
    return out.reshape(tt.shape)


def log_wfpt_lower(
    u: torch.Tensor,
    v: torch.Tensor,
    sep: torch.Tensor,
    w: torch.Tensor,
    sv: torch.Tensor | None = None,
) -> torch.Tensor:
    """Log density of hitting the lower boundary at decision time ``u``.

    Parameters
    ----------
    u:
        Decision time (> 0).
    v:
        Drift (towards the upper boundary when positive).
    sep:
        Boundary separation ``A`` (the project's ``2 a``).
    w:
        Relative start in (0, 1) measured from the lower boundary.
    sv:
        Standard deviation of the drift across trials (integrated out), or ``None`` for 0.

    Example
    -------
    >>> import torch
    >>> one = torch.ones((), dtype=torch.float64)
    >>> float(log_wfpt_lower(one, 0 * one, 2 * one, 0.5 * one)) < 0
    True
    """
    log_a = torch.log(sep)
    lf = log_f01(u / (sep * sep), w)
    if sv is None:
        return lf - v * sep * w - 0.5 * v * v * u - 2.0 * log_a
    s2u = sv * sv * u
    aw = sep * w
    num = (aw * sv) ** 2 - 2.0 * v * aw - v * v * u
    return lf + num / (2.0 * s2u + 2.0) - 0.5 * torch.log1p(s2u) - 2.0 * log_a


def _ddm_common(
    rt: torch.Tensor,
    response: torch.Tensor,
    theta: torch.Tensor,
    model: str,
    supports: tuple[Support, ...],
    validate: bool,
) -> torch.Tensor:
    n_params = len(supports)
    rt, response, theta = as_inputs(rt, response, theta, n_params, model)
    cols = theta.unbind(-1)
    v, a, z, t = cols[:4]
    sv = cols[4] if n_params == 5 else None
    upper = response == 1
    lower = response == -1
    known = upper | lower
    if validate and not bool(known.all()):
        bad = response[~known].flatten()[:5].tolist()
        raise ValueError(f"model {model!r}: response must be -1 or 1, got {bad}")
    inside = torch.ones_like(rt, dtype=torch.bool)
    for j, sup in enumerate(supports):
        inside = inside & sup.inside(cols[j])
    u = rt - t
    ok = inside & known & (u > 0)
    w = torch.where(upper, 1.0 - z, z)
    vv = torch.where(upper, -v, v)
    logp = log_wfpt_lower(
        sanitize(u, ok, 1.0),
        sanitize(vv, ok, 0.0),
        sanitize(2.0 * a, ok, 1.0),
        sanitize(w, ok, 0.5),
        None if sv is None else sanitize(sv, ok, 0.0),
    )
    logp = torch.where(ok, logp, torch.full_like(logp, LOG_FLOOR))
    return apply_support(logp, theta, supports, model, validate)


def ddm_log_likelihood(
    rt: torch.Tensor, response: torch.Tensor, theta: torch.Tensor, *, validate: bool = False
) -> torch.Tensor:
    """Log-likelihood of the DDM (parameters ``v, a, z, t``).

    Parameters
    ----------
    rt:
        Response times in seconds (non-decision time included).
    response:
        ``1`` (upper boundary) or ``-1`` (lower boundary).
    theta:
        ``(..., 4)``: ``v`` (drift), ``a`` (half the boundary separation, > 0), ``z``
        (relative start in (0, 1)), ``t`` (non-decision time, >= 0).
    validate:
        Raise ``ValueError`` naming the parameter/response instead of returning ``-inf``
        (parameters outside their support) or the floor (unknown response code).

    Returns
    -------
    torch.Tensor
        Broadcast batch shape; :data:`LOG_FLOOR` where ``rt <= t``; ``-inf`` where a
        parameter is outside its support.

    Example
    -------
    >>> import torch
    >>> theta = torch.tensor([1.0, 1.0, 0.5, 0.3], dtype=torch.float64)
    >>> ddm_log_likelihood(torch.tensor([0.8, 0.8]), torch.tensor([1, -1]), theta).shape
    torch.Size([2])
    """
    return _ddm_common(rt, response, theta, "ddm", DDM_SUPPORTS, validate)


def ddm_sdv_log_likelihood(
    rt: torch.Tensor, response: torch.Tensor, theta: torch.Tensor, *, validate: bool = False
) -> torch.Tensor:
    """Log-likelihood of the DDM with drift variability (parameters ``v, a, z, t, sv``).

    The drift is ``N(v, sv^2)`` across trials, integrated out in closed form; ``sv = 0``
    gives the DDM exactly. Conventions as :func:`ddm_log_likelihood`.

    Example
    -------
    >>> import torch
    >>> theta = torch.tensor([1.0, 1.0, 0.5, 0.3, 0.5], dtype=torch.float64)
    >>> bool(ddm_sdv_log_likelihood(torch.tensor(0.8), torch.tensor(1), theta) < 0)
    True
    """
    return _ddm_common(rt, response, theta, "ddm_sdv", DDM_SDV_SUPPORTS, validate)
