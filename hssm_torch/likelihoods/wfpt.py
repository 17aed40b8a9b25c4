"""Wiener first-passage time density (Navarro & Fuss, 2009) in log space: ddm and ddm_sdv.

Geometry (the project's convention): ``a`` is half the boundary separation, so the
separation is ``A = 2a``; ``z`` is the relative start; response ``1`` is the upper boundary,
``-1`` the lower. The upper-boundary density is the lower-boundary density of the mirrored
process (``v -> -v``, ``z -> 1 - z``). With ``u = rt - t`` and ``w`` the (mirrored) start,

    f(u) = A^-2 * exp(-v A w - v^2 u / 2) * f01(u / A^2 | w)

and, with drift variability ``v ~ N(v, sv^2)`` integrated out in closed form,

    f(u) = A^-2 * exp(((A w sv)^2 - 2 A v w - v^2 u) / (2 (sv^2 u + 1))) / sqrt(sv^2 u + 1)
           * f01(u / A^2 | w).

Series scheme (fixed term counts, no dependence on the data)
------------------------------------------------------------
``f01(tt | w)`` uses the small-time series where ``tt < TT_SWITCH = 0.6`` and the large-time
series elsewhere; both are evaluated on every element with a **fixed** number of terms and the
result is selected with ``torch.where`` (the unselected branch sees ``tt`` clamped to the
switch, so its values and gradients stay finite). The term counts depend only on the dtype
(``eps = machine epsilon / 100``, :func:`series_log_eps`), never on the data: no host sync,
no boolean indexing, and a traced/JIT-compiled graph is valid for every input.

- Small time. With ``d = min(w, 1 - w)`` the image sum ``sum_k (w + 2k) exp(-(w + 2k)^2/2tt)``
  is grouped in pairs that are odd around the nearer boundary (around ``w = 0`` when
  ``w <= 1/2``: centres ``m = 0, 2, 4, ...``; around ``w = 1`` otherwise: ``m = 1, 3, 5, ...``),
  each pair written with ``expm1`` so that nothing cancels as ``w -> 0`` or ``w -> 1``.
  ``K_s + 1`` centres are used. The omitted pairs relative to the leading term are bounded as
  in :func:`wfpt_term_counts` (``exp(-((2K+2-w)^2 - w^2) / 2tt)``), worst at ``w = 1/2`` and at
  the largest ``tt`` the series is used for, ``tt = TT_SWITCH``; the bound grows with ``tt``,
  so the count chosen there covers every ``tt < TT_SWITCH`` (down to ``tt -> 0``).
- Large time. ``K_l`` terms; omitted terms relative to the first are at most
  ``sum_{k > K_l} k^2 exp(-(k^2 - 1) pi^2 tt / 2)`` (``|sin(k pi w)| <= k sin(pi w)``), which
  decreases with ``tt``, so the count chosen at ``tt = TT_SWITCH`` covers every larger ``tt``.

At ``TT_SWITCH = 0.6`` this gives, for float64 (``eps = 2.2e-18``): ``K_s = 3`` (4 centres),
``K_l = 3`` (bound 8.3e-19); for float32 (``eps = 1.2e-9``): ``K_s = 2``, ``K_l = 2`` (bound
4.7e-10). Checked against 40-digit mpmath sums: worst relative truncation error of the
small-time series 1.7e-19 (float64 counts) and 3.3e-10 (float32 counts), of the large-time
series 8.2e-19 and 4.7e-10, over ``w`` from 1e-12 to ``1 - 1e-12``.

Gradients. :func:`ddm_log_likelihood` and :func:`ddm_sdv_log_likelihood` compute the value
and its analytical partial derivatives in one pass (a custom ``torch.autograd.Function``),
so backward is one multiply; second derivatives (``create_graph=True``) recompute through
ordinary autograd, and so does ``torch.jit.trace`` (Pyro's ``jit_compile``), in which the
custom Function does not trace here: the traced graph then holds the same fixed operations
differentiated by autograd (correct for any data, without the fused gradient).
:func:`log_f01` and :func:`log_wfpt_lower` are plain differentiable torch.

Not done: ``torch.compile`` of the fused forward was measured (inductor, this 2-core CPU,
load ~12): about 2x faster per call at 500 trials, no faster at 1e5, but 25-55 s of compile
per input shape, so it is not offered.
"""

from __future__ import annotations

import functools
import math

import torch

from hssm_torch.likelihoods._common import (
    LOG_FLOOR,
    Support,
    apply_support,
    as_inputs,
    series_log_eps,
)

__all__ = [
    "DDM_SDV_SUPPORTS",
    "DDM_SUPPORTS",
    "TT_SWITCH",
    "ddm_log_likelihood",
    "ddm_sdv_log_likelihood",
    "fixed_term_counts",
    "log_f01",
    "log_wfpt_lower",
    "wfpt_term_counts",
]

_LOG_2PI = math.log(2.0 * math.pi)
_LOG_PI = math.log(math.pi)
_PI2 = math.pi**2

#: Normalised decision time ``tt = u / A^2`` below which the small-time series is used.
TT_SWITCH: float = 0.6

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
    """Number of terms each series needs for relative error ``exp(-log_eps)`` (adaptive).

    Small-time series (pairs ``k, -k`` for ``k = 1..K_s`` beside ``k = 0``): the omitted
    terms relative to the ``k = 0`` term are at most
    ``exp(-((2K+2-w)^2 - w^2) / (2 tt))`` (Gaussian decay), hence
    ``K_s = ceil((w + sqrt(w^2 + 2 tt L)) / 2 - 1)``.

    Large-time series (``k = 1..K_l``): since ``|sin(k pi w)| <= k sin(pi w)`` the omitted
    terms relative to the first are at most ``sum_{k>K} k^2 exp(-(k^2-1) pi^2 tt / 2)``,
    below ``exp(-L)`` once ``(K+1)^2 - 1 >= 2 (L + 2 log(K+1) + log 2) / (pi^2 tt)``.

    The likelihoods use the fixed counts of :func:`fixed_term_counts` instead; this function
    documents the bounds and lets tests compare the two.

    Returns integer-valued float tensors ``(K_s, K_l)`` (no gradient).

    Example
    -------
    >>> import torch
    >>> ks, kl = wfpt_term_counts(torch.tensor([0.05, 5.0]), torch.tensor([0.5, 0.5]), 40.6)
    >>> ks.tolist(), kl.tolist()
    ([1.0, 10.0], [13.0, 1.0])
    """
    with torch.no_grad():
        ks = torch.ceil((w + torch.sqrt(w * w + 2.0 * tt * log_eps)) / 2.0 - 1.0).clamp_min(0.0)
        m0 = torch.sqrt(1.0 + 2.0 * log_eps / (_PI2 * tt))
        m = torch.sqrt(1.0 + 2.0 * (log_eps + math.log(2.0) + 2.0 * torch.log1p(m0)) / (_PI2 * tt))
        kl = torch.ceil(m).clamp(min=1.0) - 1.0
        kl = kl.clamp_min(1.0)
    return ks, kl


@functools.lru_cache(maxsize=32)
def fixed_term_counts(log_eps: float, tt_switch: float = TT_SWITCH) -> tuple[int, int]:
    """Fixed term counts ``(K_s, K_l)`` that reach relative error ``exp(-log_eps)`` everywhere.

    ``K_s`` (small-time pairs beside the leading centre) is :func:`wfpt_term_counts`' bound at
    ``tt = tt_switch`` and the worst start ``w = 1/2`` of the boundary-centred pairing; ``K_l``
    is the smallest count whose omitted-term bound
    ``sum_{k > K_l} k^2 exp(-(k^2 - 1) pi^2 tt_switch / 2)`` is below ``exp(-log_eps)``.
    Both bounds are monotone in ``tt`` (see the module docstring), so the counts hold on each
    series' whole side of the switch.

    Example
    -------
    >>> fixed_term_counts(series_log_eps(torch.float64)), fixed_term_counts(
    ...     series_log_eps(torch.float32))
    ((3, 3), (2, 2))
    """
    w = 0.5
    ks = max(0, math.ceil((w + math.sqrt(w * w + 2.0 * tt_switch * log_eps)) / 2.0 - 1.0))
    target = math.exp(-log_eps)
    x = 0.5 * _PI2 * tt_switch
    kl = 1
    while sum(k * k * math.exp(-(k * k - 1.0) * x) for k in range(kl + 1, kl + 40)) > target:
        kl += 1
    return ks, kl


class _Consts:
    """Per (dtype, device, counts) constant columns of the two series (term index first)."""

    def __init__(self, dtype: torch.dtype, device: torch.device, ks: int, kl: int) -> None:
        kw = {"dtype": dtype, "device": device}
        j = torch.arange(ks + 1, **kw)
        k = torch.arange(1, kl + 1, **kw)
        alt = torch.where(k.remainder(2) == 1, 1.0, -1.0).to(dtype)
        self.j = j
        self.j2 = 2.0 * j  # small-time centre m = 2j + p
        self.jm2 = -2.0 * j
        self.k = k
        self.k_alt = k * alt  # k (-1)^(k+1): sin(k pi (1 - d)) = (-1)^(k+1) sin(k pi d)
        self.kpi = math.pi * k
        self.km = -(k * k - 1.0)  # large-time exponent per x = pi^2 tt / 2
        self.one = torch.ones((), **kw)
        self.minus_one = -self.one
        self.tiny = torch.finfo(dtype).tiny
        self.tt_lo = torch.finfo(dtype).tiny ** 0.25
        self.tt_hi = torch.finfo(dtype).max ** 0.25
        self._views: dict[int, tuple[torch.Tensor, ...]] = {}

    def cols(self, ndim: int) -> tuple[torch.Tensor, ...]:
        """``(j, j2, jm2, k, k_alt, kpi, km)`` shaped ``(terms,) + (1,) * ndim``."""
        out = self._views.get(ndim)
        if out is None:
            shape = (-1,) + (1,) * ndim
            out = tuple(
                x.reshape(shape)
                for x in (self.j, self.j2, self.jm2, self.k, self.k_alt, self.kpi, self.km)
            )
            self._views[ndim] = out
        return out


@functools.lru_cache(maxsize=64)
def _consts(dtype: torch.dtype, device: torch.device, log_eps: float) -> _Consts:
    return _Consts(dtype, device, *fixed_term_counts(log_eps))


def _f01(
    tt: torch.Tensor,
    w: torch.Tensor,
    d: torch.Tensor,
    p: torch.Tensor,
    c: _Consts,
    need_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``log f01(tt | w)`` with fixed term counts, and optionally its partials.

    ``d = min(w, 1 - w)``, ``p = w > 1/2`` (bool); ``tt`` must already lie in
    ``[c.tt_lo, c.tt_hi]``. Returns ``(log f01, d/dtt, d/dw)`` (the series are written in
    ``d``; ``dd/dw = 1 - 2p``). Term tensors are ``(terms, *batch)``: contiguous rows.
    """
    cj, cj2, cjm2, ck, ck_alt, ckpi, ckm = c.cols(tt.dim())
    pf = p.to(tt.dtype)
    sig = torch.where(p, c.minus_one, c.one)
    small = tt < TT_SWITCH
    # --- small time: centres m = 2j + p, pairs odd around the nearer boundary -------------
    # term j = exp(ex) (2d + (m + d) expm1(mu)) relative to exp(-w^2 / 2tt), with
    # ex = -((m - d)^2 - w^2) / 2tt = -2j (j + p - d) / tt (0 at j = 0), mu = -2 m d / tt.
    r = tt.clamp_max(TT_SWITCH).reciprocal()
    ex = (cj + (pf - d)) * cjm2 * r
    e = torch.exp(ex)
    m = cj2 + pf
    mu = m * (-2.0 * d * r)
    mm = torch.expm1(mu)
    mpd = m + d
    tj = mpd * mm + 2.0 * d
    one_m_p = 1.0 - pf
    q = (e * tj).sum(0) - one_m_p * d  # the j = 0 centre of the w <= 1/2 grouping counts half
    s = (q * sig).clamp_min(c.tiny)
    wr = w * r
    hwwr = 0.5 * w * wr  # w^2 / 2tt
    lfs = torch.log(s) + 1.5 * torch.log(r) - hwwr - 0.5 * _LOG_2PI
    # --- large time -----------------------------------------------------------------------
    x = tt.clamp_min(TT_SWITCH) * (0.5 * _PI2)
    coef = torch.where(p, ck_alt, ck) * torch.exp(ckm * x)
    th = ck * (math.pi * d)
    term = coef * torch.sin(th)
    sl = term.sum(0).clamp_min(c.tiny)
    lfl = torch.log(sl) + (_LOG_PI - x)
    lf = torch.where(small, lfs, lfl)
    if not need_grad:
        return lf, None, None
    # partials of the small-time branch (d ex/d tt = -ex/tt, d ex/d d = 2j/tt, same for mu)
    mp1 = mm + 1.0
    g = mpd * mp1
    q_t = (e * torch.addcmul(tj * ex, g, mu)).sum(0)  # times -r below
    q_d = (e * (torch.sub(tj * cj2, m * g, alpha=2.0) * r + mp1 + 1.0)).sum(0) - one_m_p
    inv_q = sig / s
    dls_t = (hwwr - 1.5 - q_t * inv_q) * r
    dls_d = q_d * inv_q - sig * wr
    # partials of the large-time branch
    inv_sl = sl.reciprocal()
    dll_t = ((term * ckm).sum(0) * inv_sl - 1.0) * (0.5 * _PI2)
    dll_d = (coef * torch.cos(th) * ckpi).sum(0) * inv_sl
    return lf, torch.where(small, dls_t, dll_t), torch.where(small, dls_d, dll_d) * sig


def _start(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(w', d, p)`` from a start ``w``: ``d = min(w, 1 - w)``, ``p = w > 1/2``, ``w'`` equal
    to ``w`` up to one rounding and exactly ``1 - d`` where ``p`` (differentiable)."""
    p = w > 0.5
    d = torch.where(p, 1.0 - w, w)  # not torch.minimum: its gradient splits at w = 1/2
    return torch.where(p, 1.0 - d, d), d, p


def log_f01(tt: torch.Tensor, w: torch.Tensor, log_eps: float | None = None) -> torch.Tensor:
    """Log of the standardised lower-boundary density ``f(tt | v=0, A=1, w)``.

    Fixed term counts (:func:`fixed_term_counts`): small-time series below
    :data:`TT_SWITCH`, large-time series above, both evaluated on every element and selected
    with ``torch.where`` (no host synchronisation, no data-dependent shapes).

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
    c = _consts(tt.dtype, tt.device, float(log_eps))
    # Keep tt where values and gradients are finite; only affects log-densities far below
    # -1e9 (tt < tiny^(1/4)) or above 1e18 (tt > max^(1/4)).
    tt = tt.clamp(c.tt_lo, c.tt_hi)
    w, d, p = _start(w)
    return _f01(tt, w, d, p, c, need_grad=False)[0]


def _rest(
    u: torch.Tensor,
    vv: torch.Tensor,
    sep: torch.Tensor,
    w: torch.Tensor,
    sv: torch.Tensor | None,
    need_grad: bool,
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
    """Everything but ``log f01``: drift terms and ``-2 log A``; partials in
    ``(u, vv, sep, w, sv)`` order when asked (``sv`` omitted when ``None``)."""
    aw = sep * w
    if sv is None:
        hv = 0.5 * vv
        hvu = hv * u
        val = -torch.add(vv * (aw + hvu), torch.log(sep), alpha=2.0)
        if not need_grad:
            return val, None
        g_u = -(hv * vv)
        g_v = -torch.add(aw, hvu, alpha=2.0)
        g_a = -torch.add(vv * w, sep.reciprocal(), alpha=2.0)
        g_w = -(vv * sep)
        return val, (g_u, g_v, g_a, g_w)
    sv2 = sv * sv
    s2u = sv2 * u
    den = s2u + 1.0
    inv = den.reciprocal()
    num = (aw * sv) ** 2 - 2.0 * vv * aw - vv * vv * u
    val = (0.5 * num) * inv - 0.5 * torch.log1p(s2u) - 2.0 * torch.log(sep)
    if not need_grad:
        return val, None
    h = (aw * sv2 - vv) * inv
    g_u = -0.5 * (vv * vv + num * sv2 * inv + sv2) * inv
    g_v = -(aw + vv * u) * inv
    g_a = w * h - 2.0 / sep
    g_w = sep * h
    g_s = sv * ((aw * aw - num * u * inv) - u) * inv
    return val, (g_u, g_v, g_a, g_w, g_s)


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
    w, d, p = _start(w)
    c = _consts(u.dtype, u.device, series_log_eps(u.dtype))
    tt = (u / (sep * sep)).clamp(c.tt_lo, c.tt_hi)
    tt, w, d, p = torch.broadcast_tensors(tt, w, d, p)
    lf = _f01(tt, w, d, p, c, need_grad=False)[0]
    return lf + _rest(u, v, sep, w, sv, need_grad=False)[0]


def _ddm_core(
    rt: torch.Tensor,
    response: torch.Tensor,
    theta: torch.Tensor,
    fill: torch.Tensor,
    ok: torch.Tensor,
    upper: torch.Tensor,
    safe: torch.Tensor,
    c: _Consts,
    need_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Value (and ``(..., P + 1)`` partials in ``theta`` then ``rt``) at valid points ``ok``;
    ``fill`` elsewhere (partials 0); ``safe`` is the parameter row used where ``~ok``.
    Plain torch: differentiable when ``need_grad`` is false."""
    okp = ok.unsqueeze(-1)
    th = torch.where(okp, theta, safe)
    cols = th.unbind(-1)
    v, a, z, t = cols[:4]
    sv = cols[4] if len(cols) == 5 else None
    u = torch.where(ok, rt - t, 1.0)
    sgn = torch.where(upper, c.minus_one, c.one)  # +1 lower, -1 upper
    vv = sgn * v
    sep = 2.0 * a
    z_hi = z > 0.5
    d = torch.where(z_hi, 1.0 - z, z)  # not torch.minimum: its gradient splits at z = 1/2
    p = z_hi ^ upper
    w = torch.where(p, 1.0 - d, d)
    inv_a2 = (sep * sep).reciprocal()
    tt_raw = u * inv_a2
    tt = tt_raw.clamp(c.tt_lo, c.tt_hi)
    lf, lf_t, lf_w = _f01(tt, w, d, p, c, need_grad)
    rest, gr = _rest(u, vv, sep, w, sv, need_grad)
    val = torch.where(ok, lf + rest, fill)
    if not need_grad:
        return val, None
    lf_t = torch.where(tt_raw == tt, lf_t, 0.0)
    g_u = lf_t * inv_a2 + gr[0]
    g_sep = torch.sub(gr[2], lf_t * tt / sep, alpha=2.0)
    g_w = lf_w + gr[3]
    parts = [sgn * gr[1], 2.0 * g_sep, sgn * g_w, -g_u]
    if sv is not None:
        parts.append(gr[4])
    parts.append(g_u)
    jac = torch.where(okp, torch.stack(parts, -1), 0.0)
    return val, jac


@functools.lru_cache(maxsize=64)
def _safe_row(dtype: torch.dtype, device: torch.device, n_params: int) -> torch.Tensor:
    # v, a, z, t, (sv): a harmless parameter set for masked-out elements.
    return torch.stack(
        [torch.full((), x, dtype=dtype, device=device) for x in (0.0, 0.5, 0.5, 0.0, 0.0)][
            :n_params
        ]
    )


@functools.lru_cache(maxsize=64)
def _fills(dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    return (
        torch.full((), LOG_FLOOR, dtype=dtype, device=device),
        torch.full((), -math.inf, dtype=dtype, device=device),
    )


@functools.lru_cache(maxsize=64)
def _support_bounds(
    dtype: torch.dtype, device: torch.device, supports: tuple[Support, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Strict bounds ``lo < x < hi`` equivalent to the supports (closed ends moved one ulp)."""
    lo, hi = [], []
    for s in supports:
        lo_t = torch.full((), s.lo, dtype=dtype)
        hi_t = torch.full((), s.hi, dtype=dtype)
        if s.lo_closed:
            lo_t = torch.nextafter(lo_t, torch.full((), -math.inf, dtype=dtype))
        if s.hi_closed:
            hi_t = torch.nextafter(hi_t, torch.full((), math.inf, dtype=dtype))
        lo.append(lo_t)
        hi.append(hi_t)
    return torch.stack(lo).to(device), torch.stack(hi).to(device)


class _DdmFunction(torch.autograd.Function):
    """Value and analytical gradient in one forward; backward multiplies by the saved partials."""

    @staticmethod
    def forward(ctx, rt, theta, response, fill, ok, upper, safe):  # noqa: D102
        c = _consts(theta.dtype, theta.device, series_log_eps(theta.dtype))
        val, jac = _ddm_core(rt, response, theta, fill, ok, upper, safe, c, need_grad=True)
        ctx.save_for_backward(jac, rt, theta, response, fill, ok, upper, safe)
        return val

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        jac, rt, theta, response, fill, ok, upper, safe = ctx.saved_tensors
        c = _consts(theta.dtype, theta.device, series_log_eps(theta.dtype))
        if torch.is_grad_enabled():  # create_graph=True: differentiate the plain-torch path
            wrt = [x for x in (rt, theta) if x.requires_grad]
            with torch.enable_grad():
                val, _ = _ddm_core(rt, response, theta, fill, ok, upper, safe, c, need_grad=False)
                grads = list(torch.autograd.grad(val, wrt, grad, create_graph=True))
            g_rt = grads.pop(0) if rt.requires_grad else None
            g_th = grads.pop(0) if theta.requires_grad else None
            return g_rt, g_th, None, None, None, None, None
        g = grad.unsqueeze(-1) * jac
        return g[..., -1], g[..., :-1], None, None, None, None, None


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
    upper = response == 1
    known = upper | (response == -1)
    if validate:
        if not bool(known.all()):
            bad = response[~known].flatten()[:5].tolist()
            raise ValueError(f"model {model!r}: response must be -1 or 1, got {bad}")
        apply_support(theta[..., 0], theta, supports, model, validate=True)
    lo, hi = _support_bounds(theta.dtype, theta.device, supports)
    inside = ((theta > lo) & (theta < hi)).all(-1)
    ok = inside & known & (rt > theta[..., 3])
    floor, ninf = _fills(theta.dtype, theta.device)
    fill = torch.where(inside, floor, ninf)
    safe = _safe_row(theta.dtype, theta.device, n_params)
    c = _consts(theta.dtype, theta.device, series_log_eps(theta.dtype))
    # The fused Function does not trace (torch.jit.trace fails inside autograd.Function.apply
    # here); under tracing the same operations run through ordinary autograd.
    traced = torch.jit.is_tracing()
    if torch.is_grad_enabled() and (rt.requires_grad or theta.requires_grad) and not traced:
        return _DdmFunction.apply(rt, theta, response, fill, ok, upper, safe)
    return _ddm_core(rt, response, theta, fill, ok, upper, safe, c, need_grad=False)[0]


def ddm_log_likelihood(
    rt: torch.Tensor, response: torch.Tensor, theta: torch.Tensor, *, validate: bool = False
) -> torch.Tensor:
    """Log-likelihood of the DDM (parameters ``v, a, z, t``).

    Fixed-term series (see the module docstring): no host synchronisation, the same
    operations for every input, so it can be traced or JIT-compiled once and reused.

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
