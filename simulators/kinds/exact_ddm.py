"""Grid-free first-passage sampling for the Wiener diffusion with constant bounds.

Walk on spheres in one dimension: from position ``x`` inside ``(-a, a)`` take the interval
``[x - r, x + r]`` with ``r = min(a - x, x + a, 1 / |v|)`` and sample where and when the
particle leaves it.  For Brownian motion with drift ``v`` started at the centre of a
symmetric interval of half-width ``r`` the exit side and exit time are independent:
``P(up) = 1 / (1 + exp(-2 v r))`` and the time is ``r**2 * tau`` where ``tau`` has density
``cosh(m) exp(-m**2 tau / 2) f0(tau)`` (``m = v r``, ``f0`` the driftless exit-time density of
``(-1, 1)``).  ``tau`` is drawn from ``f0`` by inverting its CDF (Newton iterations in float64
on the series below, to ~1e-12) and accepted with probability ``exp(-m**2 tau / 2)``
(rejection; acceptance >= 1 / cosh(1) = 0.65 because ``|m| <= 1``).  The walk stops when it
lands on a boundary.  Exact apart from floating point and the CDF inversion tolerance.

``f0``'s CDF: ``F(t) = 1 - (4/pi) sum_k (-1)^k / (2k+1) exp(-(2k+1)^2 pi^2 t / 8)`` (10 terms,
used for t >= 0.1; truncation < 1e-17) and ``F(t) = 4 sum_k (-1)^k Phi(-(2k+1) / sqrt(t))``
(3 terms, t < 0.1).
"""

from __future__ import annotations

import math

import torch

from simulators.rng import stream_keys, uniform

__all__ = ["exit_time_cdf", "exit_time_quantile", "fast_exit_time_quantile", "first_passage"]

_K = torch.arange(10, dtype=torch.float64)
_T_SWITCH = 0.1
_MAX_ROUNDS = 200
_MAX_WALK = 100_000


def _ndtr(x):
    return 0.5 * torch.erfc(-x / math.sqrt(2.0))


def exit_time_cdf(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CDF, survival and density of the exit time of standard Brownian motion from (-1, 1)
    started at 0 (float64; the survival is computed directly in the tail, no cancellation)."""
    t = t.to(torch.float64)
    k = _K.to(t.device)
    odd = 2 * k + 1
    sign = 1 - 2 * (k % 2)
    tt = t.clamp_min(_T_SWITCH).unsqueeze(-1)
    e = torch.exp(-(odd**2) * math.pi**2 * tt / 8)
    sf_large = (4 / math.pi) * (sign / odd * e).sum(-1)
    pdf_large = (math.pi / 2) * (sign * odd * e).sum(-1)
    ts = t.clamp(1e-300, _T_SWITCH).unsqueeze(-1)
    o3, s3 = odd[:3], sign[:3]
    cdf_small = 4 * (s3 * _ndtr(-o3 / ts.sqrt())).sum(-1)
    pdf_small = 4 * (
        s3 * o3 / (2 * ts * ts.sqrt()) * torch.exp(-(o3**2) / (2 * ts)) / math.sqrt(2 * math.pi)
    ).sum(-1)
    small = t < _T_SWITCH
    cdf = torch.where(small, cdf_small, 1 - sf_large)
    sf = torch.where(small, 1 - cdf_small, sf_large)
    return cdf, sf, torch.where(small, pdf_small, pdf_large)


def exit_time_quantile(u: torch.Tensor, iters: int = 6) -> torch.Tensor:
    """Inverse of :func:`exit_time_cdf`: Newton on ``log F`` (u <= 1/2) or ``log S`` (u > 1/2),
    from the one-image small-time / one-term tail approximations, kept inside a bracket."""
    u = u.to(torch.float64)
    lower = u <= 0.5
    tail = -(8 / math.pi**2) * torch.log(math.pi * (1 - u).clamp_min(1e-300) / 4)
    q = torch.special.ndtri((u / 4).clamp(1e-300, 0.4999))
    t = torch.where(lower, 1.0 / (q * q), tail).clamp(1e-6, 400.0)
    log_u, log_1mu = torch.log(u), torch.log1p(-u)
    lo = torch.full_like(t, 1e-9)
    hi = torch.full_like(t, 1e3)
    for _ in range(iters):
        f, s, d = exit_time_cdf(t)
        below = f < u
        lo = torch.where(below, t, lo)
        hi = torch.where(below, hi, t)
        h = torch.where(lower, torch.log(f) - log_u, torch.log(s) - log_1mu)
        dh = torch.where(lower, d / f, -d / s)
        nt = t - h / dh
        bad = ~((nt >= lo) & (nt <= hi)) | ~torch.isfinite(nt)
        done = h.abs() < 1e-12
        t = torch.where(done, t, torch.where(bad, torch.sqrt(lo * hi), nt))
    return t


_TABLE: dict = {}
_X_LO, _X_HI, _N_TABLE = -40.0, 40.0, 8193


def _table(device) -> torch.Tensor:
    """Quantiles of the exit time at logit(u) on a uniform grid of [-40, 40] (per device)."""
    key = str(device)
    if key not in _TABLE:
        x = torch.linspace(_X_LO, _X_HI, _N_TABLE, dtype=torch.float64, device=device)
        _TABLE[key] = exit_time_quantile(torch.sigmoid(x), iters=12)
    return _TABLE[key]


def fast_exit_time_quantile(u: torch.Tensor) -> torch.Tensor:
    """:func:`exit_time_quantile` by interpolation in a table on the logit scale plus one
    Newton step (relative error ~1e-10; checked in the tests)."""
    u = u.to(torch.float64)
    tab = _table(u.device)
    x = torch.logit(u).clamp(_X_LO, _X_HI)
    pos = (x - _X_LO) / (_X_HI - _X_LO) * (_N_TABLE - 1)
    i = pos.floor().clamp(0, _N_TABLE - 2).long()
    w = pos - i
    t = tab[i] * (1 - w) + tab[i + 1] * w
    lower = u <= 0.5
    f, s, d = exit_time_cdf(t)
    h = torch.where(lower, torch.log(f) - torch.log(u), torch.log(s) - torch.log1p(-u))
    dh = torch.where(lower, d / f, -d / s)
    nt = t - h / dh
    t = torch.where(torch.isfinite(nt) & (nt > 0), nt, t)
    # beyond the table: one-image small-time / one-term tail formulas (exact in double there)
    q = torch.special.ndtri((u / 4).clamp_min(1e-300))
    t = torch.where(x <= _X_LO, 1.0 / (q * q), t)
    tail = -(8 / math.pi**2) * torch.log(math.pi * (1 - u).clamp_min(1e-300) / 4)
    return torch.where(x >= _X_HI, tail, t)


def first_passage(
    y0: torch.Tensor, v: torch.Tensor, a: torch.Tensor, keys: dict, *, max_t: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Exact first passage from ``y0`` in ``(-a, a)`` with drift ``v`` (unit noise).

    Returns decision time (float64), side (+1 / -1, int64) and finished (time <= max_t).
    """
    dev = y0.device
    m = y0.shape[0]
    x = y0.to(torch.float64).clone()
    v = v.to(torch.float64)
    a = a.to(torch.float64)
    k1, k2 = stream_keys(keys["k1"], keys["k2"], 41)
    elapsed = torch.zeros(m, dtype=torch.float64, device=dev)
    side = torch.zeros(m, dtype=torch.int64, device=dev)
    active = torch.arange(m, device=dev)
    eps = 1e-12
    # starting outside (only with out-of-bounds parameters): decided at once by position
    outside = x.abs() >= a * (1 - eps)
    side = torch.where(outside, torch.where(x >= 0, 1, -1), side)
    active = active[~outside]
    it = 0
    while active.numel() > 0 and it < _MAX_WALK:
        xa, va, aa = x[active], v[active], a[active]
        ka, kb = k1[active], k2[active]
        d_up, d_lo = aa - xa, xa + aa
        cap = torch.where(
            va.abs() > 0, 1.0 / va.abs().clamp_min(1e-300), torch.full_like(va, math.inf)
        )
        r = torch.minimum(torch.minimum(d_up, d_lo), cap)
        mm = va * r
        base = it * 1024
        tau = torch.zeros_like(r)
        todo = torch.arange(r.shape[0], device=dev)
        for rnd in range(_MAX_ROUNDS):
            ctr = base + 4 * rnd
            kt1, kt2 = ka[todo], kb[todo]
            cand = fast_exit_time_quantile(uniform(kt1, kt2, ctr, torch.float64))
            m_t = mm[todo]
            acc = uniform(kt1, kt2, ctr + 1, torch.float64) < torch.exp(-0.5 * m_t * m_t * cand)
            tau[todo[acc]] = cand[acc]
            todo = todo[~acc]
            if todo.numel() == 0:
                break
        p_up = 1.0 / (1.0 + torch.exp(-2.0 * mm))  # (torch.sigmoid is position-dependent)
        go_up = uniform(ka, kb, base + 1000, torch.float64) < p_up
        step = torch.where(go_up, r, -r)
        xn = xa + step
        el = elapsed[active] + r * r * tau
        x[active] = xn
        elapsed[active] = el
        hit_up = go_up & (r >= d_up * (1 - eps))
        hit_lo = ~go_up & (r >= d_lo * (1 - eps))
        done = hit_up | hit_lo | (el > max_t)
        side[active] = torch.where(hit_up, 1, torch.where(hit_lo, -1, side[active]))
        active = active[~done]
        it += 1
    finished = (side != 0) & (elapsed <= max_t)
    return elapsed, side, finished
