"""Fixed-term WFPT series: bounds, accuracy against independent sums, gradients, no host sync."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from hssm_torch.likelihoods import LOG_FLOOR, ddm_log_likelihood, ddm_sdv_log_likelihood
from hssm_torch.likelihoods._common import series_log_eps
from hssm_torch.likelihoods.wfpt import (
    TT_SWITCH,
    fixed_term_counts,
    log_f01,
    log_wfpt_lower,
    wfpt_term_counts,
)

F64 = torch.float64


def test_fixed_counts_follow_the_documented_bounds():
    """Counts per dtype, and each bound (monotone in tt) met at the switch."""
    assert fixed_term_counts(series_log_eps(F64)) == (3, 3)
    assert fixed_term_counts(series_log_eps(torch.float32)) == (2, 2)
    for dtype in (F64, torch.float32):
        big_l = series_log_eps(dtype)
        ks, kl = fixed_term_counts(big_l)
        # small time: wfpt_term_counts' bound at the switch and the worst start w = 1/2
        ks_adaptive, _ = wfpt_term_counts(
            torch.tensor([TT_SWITCH], dtype=F64), torch.tensor([0.5], dtype=F64), big_l
        )
        assert int(ks_adaptive) == ks
        # large time: omitted terms relative to the first, at the switch
        x = 0.5 * math.pi**2 * TT_SWITCH
        omitted = sum(k * k * math.exp(-(k * k - 1) * x) for k in range(kl + 1, kl + 30))
        assert omitted < math.exp(-big_l)
        assert sum(k * k * math.exp(-(k * k - 1) * x) for k in range(kl, kl + 30)) > math.exp(
            -big_l
        )  # one term fewer would not do


def _direct_log_f01(tt: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Independent evaluation: plain image sum (30 terms each side) for tt < 1, plain sine
    series (30 terms) otherwise; no pairing tricks (so only used with w away from 0 and 1)."""
    k = torch.arange(-30, 31, dtype=F64).unsqueeze(-1)
    x = w + 2.0 * k
    small = (x * torch.exp(-(x * x - w * w) / (2.0 * tt))).sum(0)
    log_small = torch.log(small) - w * w / (2.0 * tt) - 0.5 * torch.log(2.0 * math.pi * tt**3)
    kk = torch.arange(1, 31, dtype=F64).unsqueeze(-1)
    big = (
        kk * torch.exp(-(kk * kk - 1.0) * math.pi**2 * tt / 2) * torch.sin(kk * math.pi * w)
    ).sum(0)
    log_big = math.log(math.pi) - math.pi**2 * tt / 2 + torch.log(big)
    return torch.where(tt < 1.0, log_small, log_big)


def test_fixed_matches_long_sums_on_a_dense_grid():
    """40,000 points, tt from 1e-4 to 1e3 (dense around the switch), w in [1e-3, 1 - 1e-3]:
    |log f01 - long sum| < 3e-12 in float64 (measured 9.3e-13, mostly the plain sums' own
    rounding near w = 1e-3)."""
    tt = torch.cat(
        [
            torch.logspace(-4, 3, 150, dtype=F64),
            torch.linspace(TT_SWITCH - 0.05, TT_SWITCH + 0.05, 50, dtype=F64),
        ]
    )
    w = torch.linspace(1e-3, 1 - 1e-3, 200, dtype=F64)
    tt_g, w_g = torch.meshgrid(tt, w, indexing="ij")
    tt_g, w_g = tt_g.reshape(-1), w_g.reshape(-1)
    ref = _direct_log_f01(tt_g, w_g)
    finite = torch.isfinite(ref)  # the direct small-time sum underflows for tt < ~1e-3 at w ~ 1
    assert finite.float().mean() > 0.9
    err = (log_f01(tt_g, w_g) - ref)[finite].abs()
    assert err.max() < 3e-12, err.max()


def _mp_log_f01(tt: float, w: float) -> float:
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 50
    tt, w = mp.mpf(tt), mp.mpf(w)
    if tt < 1:
        s = sum((w + 2 * k) * mp.exp(-((w + 2 * k) ** 2) / (2 * tt)) for k in range(-25, 26))
        return float(mp.log(s / mp.sqrt(2 * mp.pi * tt**3)))
    s = sum(k * mp.exp(-(k * k) * mp.pi**2 * tt / 2) * mp.sin(k * mp.pi * w) for k in range(1, 40))
    return float(mp.log(mp.pi * s))


def test_fixed_matches_50_digit_sums_at_extremes():
    """w within 1e-12 of either boundary, tt from 1e-6 to 50 and on both sides of the switch:
    |error of log f01| below 1e-12 * max(1, |log f01|) in float64 (deep tails such as
    -w^2 / 2tt = -5e5 carry the rounding of that term) and 2e-5 in float32 (w >= 1e-6)."""
    tts = [1e-6, 1e-3, 0.05, TT_SWITCH * (1 - 1e-9), TT_SWITCH, 0.61, 3.0, 50.0]
    ws = [1e-12, 1e-6, 0.3, 0.5, 0.7, 1 - 1e-6, 1 - 1e-12]
    pts = [(t, w) for t in tts for w in ws]
    tt = torch.tensor([p[0] for p in pts], dtype=F64)
    w = torch.tensor([p[1] for p in pts], dtype=F64)
    ref = torch.tensor([_mp_log_f01(float(a), float(b)) for a, b in zip(tt, w)], dtype=F64)
    err64 = (log_f01(tt, w) - ref).abs() / ref.abs().clamp_min(1.0)
    assert err64.max() < 1e-12, (err64.max(), pts[int(err64.argmax())])
    tt32, w32 = tt.float(), w.float()
    keep = (w32 >= 1e-6) & (w32 <= 1 - 1e-6) & (tt32 >= 1e-3)
    ref32 = torch.tensor(
        [_mp_log_f01(float(a), float(b)) for a, b in zip(tt32[keep], w32[keep])], dtype=F64
    )
    err32 = (log_f01(tt32[keep], w32[keep]).double() - ref32).abs() / ref32.abs().clamp_min(1.0)
    assert err32.max() < 2e-5, err32.max()


GRAD_POINTS = [
    # v, a, z, t, sv, rt: small and large tt, both sides of the switch, z near 0 and 1
    (0.8, 0.9, 0.4, 0.2, 0.7, 0.25),
    (0.8, 0.5, 0.4, 0.2, 0.7, 0.2 + 0.6 * 1.0 * (1 - 1e-6)),  # tt just below the switch
    (0.8, 0.5, 0.4, 0.2, 0.7, 0.2 + 0.6 * 1.0 * (1 + 1e-6)),  # just above
    (-1.5, 0.3, 0.02, 0.1, 1.2, 3.0),  # tt = 8.3
    (2.0, 1.2, 0.98, 0.3, 0.05, 0.31),
    (0.0, 2.0, 0.5, 0.01, 0.3, 40.0),
]


@pytest.mark.parametrize("response", [-1, 1])
@pytest.mark.parametrize("point", GRAD_POINTS)
def test_gradcheck_both_series(point, response):
    *th, rt = point
    rt_t = torch.tensor(rt, dtype=F64, requires_grad=True)
    resp = torch.tensor(response)
    th4 = torch.tensor(th[:4], dtype=F64, requires_grad=True)
    th5 = torch.tensor(th, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda r, t: ddm_log_likelihood(r, resp, t), (rt_t, th4), eps=1e-7, atol=1e-6
    )
    assert torch.autograd.gradcheck(
        lambda r, t: ddm_sdv_log_likelihood(r, resp, t), (rt_t, th5), eps=1e-7, atol=1e-6
    )


def test_second_derivatives_through_autograd():
    th = torch.tensor([[0.8, 0.9, 0.4, 0.2, 0.7], [-1.0, 0.4, 0.7, 0.1, 0.2]], dtype=F64)
    th.requires_grad_(True)
    rt = torch.tensor([0.35, 2.5], dtype=F64)
    assert torch.autograd.gradgradcheck(
        lambda t: ddm_sdv_log_likelihood(rt, torch.tensor([1, -1]), t), (th,)
    )


def test_log_wfpt_lower_gradients_and_value():
    """The plain-autograd path (used by full_ddm) agrees with the fused one and gradchecks."""
    u = torch.tensor([0.05, 0.4, 2.0], dtype=F64, requires_grad=True)
    v = torch.tensor([0.5, -1.0, 2.0], dtype=F64, requires_grad=True)
    sep = torch.tensor([1.0, 0.8, 1.5], dtype=F64, requires_grad=True)
    w = torch.tensor([0.3, 0.9, 1e-3], dtype=F64, requires_grad=True)
    sv = torch.tensor([0.5, 0.0, 1.0], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(log_wfpt_lower, (u, v, sep, w, sv))
    theta = torch.stack([v, sep / 2, w, torch.zeros_like(u), sv], -1).detach()
    fused = ddm_sdv_log_likelihood(u.detach(), torch.tensor(-1), theta)
    assert torch.allclose(log_wfpt_lower(u, v, sep, w, sv).detach(), fused, rtol=0, atol=1e-13)


def test_chain_batch_matches_separate_calls():
    """theta (C, N, P) with rt (N,): one call equals C calls, values and gradients."""
    gen = torch.Generator().manual_seed(3)
    n, chains = 300, 3
    rt = 0.3 + torch.rand(n, generator=gen, dtype=F64) * 3
    resp = torch.where(torch.rand(n, generator=gen) < 0.5, -1, 1)
    base = torch.tensor([0.5, 0.8, 0.45, 0.25, 0.6], dtype=F64)
    theta = base + 0.1 * torch.randn(chains, n, 5, generator=gen, dtype=F64)
    theta = theta.requires_grad_(True)
    out = ddm_sdv_log_likelihood(rt, resp, theta)
    assert out.shape == (chains, n)
    out.sum().backward()
    for c in range(chains):
        th_c = theta.detach()[c].clone().requires_grad_(True)
        o = ddm_sdv_log_likelihood(rt, resp, th_c)
        o.sum().backward()
        assert torch.equal(o, out[c].detach())
        assert torch.allclose(th_c.grad, theta.grad[c], rtol=1e-14, atol=0)


def test_floor_and_inf_have_zero_gradient():
    theta = torch.tensor(
        [[0.5, 1.0, 0.5, 0.3], [0.5, -1.0, 0.5, 0.3], [0.5, 1.0, 0.5, 0.3]], dtype=F64
    ).requires_grad_(True)
    rt = torch.tensor([0.2, 1.0, 1.0], dtype=F64, requires_grad=True)
    out = ddm_log_likelihood(rt, torch.tensor([1, 1, 0]), theta)
    assert out.tolist() == [LOG_FLOOR, -math.inf, LOG_FLOOR]
    out[[0, 2]].sum().backward()
    assert (theta.grad == 0).all() and (rt.grad == 0).all()


def test_no_host_sync_trace_reuses_on_other_data():
    """Traced once (as Pyro's JIT does: the log density traced, gradients by autograd), the
    graph gives the eager values and gradients on data with other tt ranges. Any
    data-dependent Python value in wfpt would raise a TracerWarning, an error here."""

    def fn(rt, resp, theta):
        return ddm_log_likelihood(rt, resp, theta).sum()

    gen = torch.Generator().manual_seed(5)
    theta = torch.tensor([[0.5, 1.0, 0.5, 0.3]], dtype=F64).repeat(200, 1).requires_grad_(True)
    rt_a = 0.31 + 0.2 * torch.rand(200, generator=gen, dtype=F64)  # all small-time
    resp = torch.where(torch.rand(200, generator=gen) < 0.5, -1, 1)
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=".*torch.jit.trace. is deprecated", category=DeprecationWarning
        )
        # as_inputs' shape check (shapes only, fixed within a trace) is the one Python-level
        # condition outside wfpt
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("error", category=torch.jit.TracerWarning, module=".*wfpt")
        traced = torch.jit.trace(fn, (rt_a, resp, theta), check_trace=False)
    rt_b = 0.3 + 20.0 * torch.rand(200, generator=gen, dtype=F64)  # mostly large-time
    for rt in (rt_a, rt_b):
        v_t = traced(rt, resp, theta)
        (g_t,) = torch.autograd.grad(v_t, theta)
        v_e = fn(rt, resp, theta)
        (g_e,) = torch.autograd.grad(v_e, theta)
        assert torch.allclose(v_t, v_e, rtol=1e-14) and torch.allclose(g_t, g_e, rtol=1e-13)
