"""Racing diffusion and Poisson race against numerical integration of their definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from hssm_torch.likelihoods import log_likelihood
from hssm_torch.likelihoods.racing_diffusion import rdm_log_pdf, rdm_log_survival


def _f64(x):
    return torch.tensor(x, dtype=torch.float64)


def _wald_pdf(u, x, v):
    return x / math.sqrt(2 * math.pi * u**3) * math.exp(-((x - v * u) ** 2) / (2 * u))


@pytest.mark.parametrize("A, b, v", [(0.5, 1.5, 1.0), (0.05, 0.6, 2.4), (0.9, 1.0, 0.3)])
@pytest.mark.parametrize("u", [0.05, 0.4, 1.5, 5.0])
def test_rdm_accumulator_is_start_point_average_of_wald(A, b, v, u):
    """f(u) = (1/A) int_{b-A}^{b} Wald(u | x, v) dx;  S(u) = int_u^inf f."""
    ref_pdf = integrate.quad(lambda x: _wald_pdf(u, x, v), b - A, b, epsabs=0, epsrel=1e-12)[0] / A
    assert math.exp(float(rdm_log_pdf(_f64(u), _f64(A), _f64(b), _f64(v)))) == pytest.approx(
        ref_pdf, rel=1e-9, abs=1e-300
    )
    ref_s = integrate.quad(
        lambda s: integrate.quad(lambda x: _wald_pdf(s, x, v), b - A, b, epsrel=1e-12)[0] / A,
        u,
        np.inf,
        epsabs=1e-14,
        epsrel=1e-10,
        limit=200,
    )[0]
    got = math.exp(float(rdm_log_survival(_f64(u), _f64(A), _f64(b), _f64(v))))
    assert got == pytest.approx(ref_s, rel=1e-7, abs=1e-13)


def test_rdm3_race_density_is_winner_times_loser_survivals():
    A, b, vs, t = 0.4, 1.2, (1.3, 0.6, 0.9), 0.25
    theta = _f64([A, b, *vs, t])
    for rt in (0.4, 1.0, 2.5):
        u = rt - t

        def f(v, u=u):
            return integrate.quad(lambda x: _wald_pdf(u, x, v), b - A, b, epsrel=1e-12)[0] / A

        def surv(v, u=u):
            return integrate.quad(
                lambda s: integrate.quad(lambda x: _wald_pdf(s, x, v), b - A, b)[0] / A,
                u,
                np.inf,
                epsabs=1e-14,
                epsrel=1e-10,
            )[0]

        for c in range(3):
            ref = f(vs[c]) * math.prod(surv(vs[j]) for j in range(3) if j != c)
            got = float(log_likelihood("racing_diffusion_3", _f64(rt), torch.tensor(c), theta))
            assert got == pytest.approx(math.log(ref), abs=1e-7)


@pytest.mark.parametrize(
    "theta", [(3.0, 4.0, 2.0, 3.0, 0.2), (10.0, 1.5, 0.7, 5.5, 0.0), (0.8, 6.0, 12.0, 1.2, 0.5)]
)
def test_poisson_race_is_gamma_race(theta):
    """Response 1: second accumulator (r2, k2) won; -1: first. Density = f_win * S_lose."""
    r1, r2, k1, k2, t = theta
    g1, g2 = stats.gamma(k1, scale=1 / r1), stats.gamma(k2, scale=1 / r2)
    for rt in (t + 0.05, t + 0.6, t + 3.0):
        u = rt - t
        # survival by numerical integration of the loser's density
        s1 = integrate.quad(g1.pdf, u, np.inf, epsabs=1e-300, epsrel=1e-11, limit=200)[0]
        s2 = integrate.quad(g2.pdf, u, np.inf, epsabs=1e-300, epsrel=1e-11, limit=200)[0]
        out = log_likelihood("poisson_race", _f64([rt, rt]), torch.tensor([1, -1]), _f64(theta))
        assert float(out[0]) == pytest.approx(math.log(g2.pdf(u) * s1), abs=1e-7)
        assert float(out[1]) == pytest.approx(math.log(g1.pdf(u) * s2), abs=1e-7)


def test_poisson_race_deep_tail_is_not_clipped():
    # Q(2, x) = e^-x (1 + x): exact, far below HSSM's 1e-15 clip and float64's range.
    th = _f64([1.0, 400.0, 2.0, 1.0, 0.0])
    out = log_likelihood("poisson_race", _f64(2.0), torch.tensor(1), th)
    expected = math.log(400.0) - 800.0 + (-2.0 + math.log(3.0))  # f2(2) * Q(2, 1 * 2)
    assert float(out) == pytest.approx(expected, abs=1e-9)
    th = _f64([400.0, 1.0, 2.0, 1.0, 0.0])  # first accumulator loses at x = 800
    out = log_likelihood("poisson_race", _f64(2.0), torch.tensor(1), th)
    assert float(out) == pytest.approx(-2.0 + (-800.0 + math.log(801.0)), abs=1e-9)
