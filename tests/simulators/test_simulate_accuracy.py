"""Simulated distributions against closed forms / numerical integration (scipy, numpy).

Tolerances: every choice proportion and every conditional RT quantile (.1 .3 .5 .7 .9) within
4 Monte-Carlo standard errors (see tests/simulators/_mc.py).  The diffusion comparisons use
``method="bridge"`` at dt = 1e-3, whose remaining bias (rt reported at the end of the step in
which the crossing happened: < dt) is far below the standard errors at these sample sizes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from simulators.simulate import simulate
from tests.simulators._mc import check_choice_and_quantiles


# ---- DDM first passage (Feller / Navarro-Fuss large-time series) ---------------------------
def ddm_lower(t, v, sep, w, k_max=300):
    """P(lower) and CDF of the lower-boundary passage by t (bounds 0, sep; start w * sep)."""
    k = np.arange(1, k_max + 1)
    if abs(v) < 1e-12:
        p_lower = 1.0 - w
    else:
        p_lower = (np.exp(-2 * v * sep) - np.exp(-2 * v * sep * w)) / (np.exp(-2 * v * sep) - 1)
    t = np.atleast_1d(np.asarray(t, dtype=float))
    c = v * v / 2 + (k * np.pi / sep) ** 2 / 2
    terms = k * np.sin(k * np.pi * w) * np.exp(-np.outer(t, c)) / c
    tail = np.pi / sep**2 * np.exp(-v * sep * w) * terms.sum(axis=1)
    return p_lower, p_lower - tail


def ddm_reference(v, a, z, t, sv=0.0, n_gh=40):
    """Choice probabilities and conditional rt CDFs of the DDM (optionally sv, by Gauss-Hermite)."""
    sep = 2 * a
    if sv > 0:
        x, wts = np.polynomial.hermite_e.hermegauss(n_gh)
        vs, wts = v + sv * x, wts / wts.sum()
    else:
        vs, wts = np.array([v]), np.array([1.0])

    def side(sign):
        def p_and_cdf(tt):
            out_p, out_f = 0.0, 0.0
            for vi, wi in zip(vs, wts):
                # lower: drift v, start z; upper: mirror (drift -v, start 1-z)
                p, f = ddm_lower(tt, vi if sign < 0 else -vi, sep, z if sign < 0 else 1 - z)
                out_p += wi * p
                out_f = out_f + wi * f
            return out_p, out_f

        return p_and_cdf

    prob, cdf = {}, {}
    for sign in (-1, 1):
        fn = side(sign)
        p, _ = fn(1.0)
        prob[sign] = p
        cdf[sign] = lambda x, fn=fn, p=p: float(fn(max(x - t, 1e-9))[1][0] / p)
    return prob, cdf


def _sim(model, theta, n, **kw):
    res = simulate(model, theta, n, seed=kw.pop("seed", 7), **kw)
    assert not res.omitted.any()
    return res.rt[0].double().numpy(), res.response[0].numpy()


def test_reference_series_is_a_distribution():
    # the test's own reference: P(lower) + P(upper) = 1 and the CDF tends to P
    prob, cdf = ddm_reference(0.8, 0.8, 0.4, 0.2)
    assert abs(prob[-1] + prob[1] - 1) < 1e-12
    assert abs(cdf[1](50.0) - 1) < 1e-9 and abs(cdf[-1](50.0) - 1) < 1e-9
    # mean decision time from the CDF equals the closed form (A P_up(x0) - x0) / v
    v, sep, x0 = 0.8, 1.6, 0.4 * 1.6
    p_up = (1 - np.exp(-2 * v * x0)) / (1 - np.exp(-2 * v * sep))
    closed = (sep * p_up - x0) / v
    grid = np.linspace(1e-4, 30, 30001)
    surv = 1 - (
        prob[-1] * np.array([cdf[-1](g + 0.2) for g in grid[::100]])
        + prob[1] * np.array([cdf[1](g + 0.2) for g in grid[::100]])
    )
    assert abs(np.trapezoid(surv, grid[::100]) - closed) < 2e-3


@pytest.mark.parametrize("method", ["exact", "bridge"])
@pytest.mark.parametrize(
    ("model", "theta"),
    [
        ("ddm", {"v": 0.8, "a": 0.8, "z": 0.4, "t": 0.2}),
        ("ddm", {"v": -1.5, "a": 0.6, "z": 0.6, "t": 0.3}),
        ("ddm_sdv", {"v": 0.5, "a": 0.7, "z": 0.5, "t": 0.2, "sv": 1.0}),
    ],
)
def test_ddm_matches_first_passage_distribution(model, theta, method):
    rt, resp = _sim(model, theta, 20_000, method=method)
    prob, cdf = ddm_reference(theta["v"], theta["a"], theta["z"], theta["t"], theta.get("sv", 0.0))
    check_choice_and_quantiles(rt, resp, prob, cdf, label=model)


def test_euler_is_biased_by_order_sqrt_dt_and_bridge_removes_it():
    """At dt = 0.01 grid-only crossing overshoots (mean rt too long by ~0.58 sqrt(dt) / |v|-ish);
    the bridge correction brings the mean back within Monte-Carlo error + dt/2."""
    theta = {"v": 1.0, "a": 0.6, "z": 0.5, "t": 0.0}
    v, sep, x0 = 1.0, 1.2, 0.6
    p_up = (1 - np.exp(-2 * v * x0)) / (1 - np.exp(-2 * v * sep))
    mean_exact = (sep * p_up - x0) / v
    n = 20_000
    rt_e, _ = _sim("ddm", theta, n, method="euler", dt=0.01)
    rt_b, _ = _sim("ddm", theta, n, method="bridge", dt=0.01)
    se = rt_b.std() / np.sqrt(n)
    bias_e = rt_e.mean() - mean_exact
    bias_b = rt_b.mean() - mean_exact
    assert bias_e > 0.02 and bias_e > 6 * se  # visibly too slow
    assert abs(bias_b - 0.005) < 4 * se + 0.005  # at most the dt/2 reporting offset


# ---- closed-form families ------------------------------------------------------------------
def _race_reference(pdfs, sfs, t0, norm=1.0):
    """Choice probabilities / conditional CDFs of a race given each runner's pdf and survival."""
    n = len(pdfs)

    def g(i):
        return lambda s: pdfs[i](s) * np.prod([sfs[j](s) for j in range(n) if j != i]) / norm

    prob, cdf = {}, {}
    for i in range(n):
        gi = g(i)
        p = integrate.quad(gi, 0, np.inf, limit=400)[0]
        prob[i] = p
        cdf[i] = lambda x, gi=gi, p=p: integrate.quad(gi, 0, max(x - t0, 0), limit=400)[0] / p
    return prob, cdf


def test_lba_matches_closed_form():
    A, b, v, t0, s = 0.4, 0.8, (0.6, 1.0), 0.2, 0.1

    def pdf(vi):
        def f(x):
            if x <= 0:
                return 0.0
            g, h = (b - A - x * vi) / (x * s), (b - x * vi) / (x * s)
            return (
                -vi * stats.norm.cdf(g)
                + s * stats.norm.pdf(g)
                + vi * stats.norm.cdf(h)
                - s * stats.norm.pdf(h)
            ) / A

        return f

    def sf(vi):
        def f(x):
            if x <= 0:
                return 1.0
            g, h = (b - A - x * vi) / (x * s), (b - x * vi) / (x * s)
            cdf = (
                1
                + (b - A - x * vi) / A * stats.norm.cdf(g)
                - (b - x * vi) / A * stats.norm.cdf(h)
                + x * s / A * (stats.norm.pdf(g) - stats.norm.pdf(h))
            )
            return 1 - cdf

        return f

    norm = 1 - np.prod([stats.norm.cdf(-vi / s) for vi in v])
    prob, cdf = _race_reference([pdf(x) for x in v], [sf(x) for x in v], t0, norm)
    assert abs(sum(prob.values()) - 1) < 1e-6
    rt, resp = _sim("lba2", {"A": A, "b": b, "v0": v[0], "v1": v[1], "t": t0}, 20_000)
    check_choice_and_quantiles(rt, resp, prob, cdf, label="lba2")


def _grid_race_reference(dens, surv, grid, t0):
    """Like _race_reference, from densities/survivals tabulated on a fine time grid."""
    n = len(dens)
    prob, cdf = {}, {}
    for i in range(n):
        g = dens[i] * np.prod([surv[j] for j in range(n) if j != i], axis=0)
        cum = integrate.cumulative_trapezoid(g, grid, initial=0.0)
        prob[i] = cum[-1]
        cdf[i] = lambda x, cum=cum: float(np.interp(x - t0, grid, cum) / cum[-1])
    return prob, cdf


def test_racing_diffusion_matches_closed_form():
    """Each runner: uniform start on [0, A], Wald passage to b; densities by averaging the
    Wald density / CDF over the distance d in [b - A, b] (Gauss-Legendre, 64 nodes)."""
    A, b, v, t0 = 0.5, 1.2, (1.0, 1.5, 0.5), 0.15
    grid = np.concatenate(([0.0], np.geomspace(1e-4, 40.0, 40_000)))
    x, w = np.polynomial.legendre.leggauss(64)
    d = (b - A / 2) + (A / 2) * x  # nodes on [b - A, b]
    w = w / 2
    tt = grid[1:, None]
    dens, surv = [], []
    for vi in v:
        pdf = d / np.sqrt(2 * np.pi * tt**3) * np.exp(-((d - vi * tt) ** 2) / (2 * tt))
        cdf = stats.norm.cdf((vi * tt - d) / np.sqrt(tt)) + np.exp(2 * vi * d) * stats.norm.cdf(
            -(vi * tt + d) / np.sqrt(tt)
        )
        dens.append(np.concatenate(([0.0], pdf @ w)))
        surv.append(np.concatenate(([1.0], 1 - cdf @ w)))
    prob, cdf = _grid_race_reference(dens, surv, grid, t0)
    assert abs(sum(prob.values()) - 1) < 1e-4
    theta = {"A": A, "b": b, "v0": v[0], "v1": v[1], "v2": v[2], "t": t0}
    rt, resp = _sim("racing_diffusion_3", theta, 20_000)
    check_choice_and_quantiles(rt, resp, prob, cdf, label="racing_diffusion_3")


def test_poisson_race_matches_gamma_race():
    r1, r2, k1, k2, t0 = 3.0, 4.0, 2.0, 3.5, 0.1
    g1, g2 = stats.gamma(k1, scale=1 / r1), stats.gamma(k2, scale=1 / r2)
    prob, cdf = _race_reference([g1.pdf, g2.pdf], [g1.sf, g2.sf], t0)
    prob, cdf = {-1: prob[0], 1: prob[1]}, {-1: cdf[0], 1: cdf[1]}
    rt, resp = _sim("poisson_race", {"r1": r1, "r2": r2, "k1": k1, "k2": k2, "t": t0}, 20_000)
    check_choice_and_quantiles(rt, resp, prob, cdf, label="poisson_race")


def test_exit_time_quantile_inverts_the_cdf():
    from simulators.kinds.exact_ddm import (
        exit_time_cdf,
        exit_time_quantile,
        fast_exit_time_quantile,
    )

    u = torch.cat(
        [torch.rand(20_000, dtype=torch.float64), torch.logspace(-15, -1, 50, dtype=torch.float64)]
    )
    u = torch.cat([u, 1 - u])
    for fn in (exit_time_quantile, fast_exit_time_quantile):
        cdf, sf, _ = exit_time_cdf(fn(u))
        rel = torch.where(u <= 0.5, (cdf - u).abs() / u, (sf - (1 - u)).abs() / (1 - u))
        assert float(rel.max()) < 1e-9
    # the series: E[exit time of (-1, 1)] = 1 and the small/large-time branches agree
    t = torch.linspace(1e-3, 30, 300_001, dtype=torch.float64)
    assert abs(float(torch.trapezoid(exit_time_cdf(t)[1], t)) + 1e-3 - 1.0) < 1e-4


def test_exact_ddm_full_ddm_variability():
    """full_ddm (exact sampler): z ~ U(z -/+ sz/2), t ~ U(t -/+ st/2), v ~ N(v, sv): averaging the
    analytical DDM over those draws (quadrature) gives the reference."""
    v, a, z, t, sz, sv, st = 0.7, 0.9, 0.45, 0.4, 0.2, 0.8, 0.2
    n = 20_000
    res = simulate(
        "full_ddm", {"v": v, "a": a, "z": z, "t": t, "sz": sz, "sv": sv, "st": st}, n, seed=9
    )
    rt, resp = res.rt[0].double().numpy(), res.response[0].numpy()
    zs = z + sz * (np.arange(8) + 0.5) / 8 - sz / 2
    ts = t + st * (np.arange(8) + 0.5) / 8 - st / 2
    parts = [ddm_reference(v, a, zi, ti, sv) for zi in zs for ti in ts]
    prob = {c: np.mean([p[0][c] for p in parts]) for c in (-1, 1)}
    cdf = {
        c: (lambda x, c=c: float(np.mean([p[0][c] * p[1][c](x) for p in parts]) / prob[c]))
        for c in (-1, 1)
    }
    check_choice_and_quantiles(rt, resp, prob, cdf, label="full_ddm")


def test_gamma_sampler_small_shape_boost():
    from simulators.kinds.closed_form import standard_gamma
    from simulators.rng import trial_keys

    n = 20_000
    k1, k2 = trial_keys(3, torch.zeros(n, dtype=torch.long), torch.arange(n))
    for shape in (0.3, 1.0, 7.5):
        x = standard_gamma(torch.full((n,), shape, dtype=torch.float64), k1, k2, 1).numpy()
        assert stats.kstest(x, stats.gamma(shape).cdf).pvalue > 1e-3


@pytest.mark.parametrize(
    ("model", "theta", "logits", "codes"),
    [
        ("softmax_inv_temperature_2", {"beta": 2.0, "logit1": 0.7}, [0.0, 0.7], [-1, 1]),
        (
            "softmax_inv_temperature_3",
            {"beta": 1.5, "logit1": -1.0, "logit2": 0.5},
            [0.0, -1.0, 0.5],
            [0, 1, 2],
        ),
        (
            "inv_temp_softmax_3",
            {"beta": 3.0, "q0": 0.2, "q1": 0.9, "q2": 0.5},
            [0.2, 0.9, 0.5],
            [0, 1, 2],
        ),
    ],
)
def test_softmax_choice_probabilities(model, theta, logits, codes):
    n = 20_000
    res = simulate(model, theta, n, seed=4)
    p = np.exp(theta["beta"] * np.array(logits))
    p /= p.sum()
    resp = res.response[0].numpy()
    for c, pc in zip(codes, p):
        z = ((resp == c).mean() - pc) / np.sqrt(pc * (1 - pc) / n)
        assert abs(z) < 4, (model, c, z)
    assert (res.rt == -1.0).all()
