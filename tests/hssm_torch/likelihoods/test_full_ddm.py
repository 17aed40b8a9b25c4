"""full_ddm against brute-force scipy integration of the DDM density over sz and st."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate

from hssm_torch.likelihoods import full_ddm_log_likelihood


def _ddm_sdv_density(rt, resp, v, a, z, t, sv):
    """Independent scalar Navarro-Fuss density (many terms, numpy), sv in closed form."""
    if resp == 1:
        v, z = -v, 1 - z
    u = rt - t
    if u <= 0:
        return 0.0
    sep = 2 * a
    tt = u / sep**2
    if tt < 1:
        k = np.arange(-30, 31)
        y = z + 2 * k
        f = np.sum(y * np.exp(-y * y / (2 * tt))) / math.sqrt(2 * math.pi * tt**3)
    else:
        k = np.arange(1, 60)
        f = math.pi * np.sum(k * np.exp(-k * k * math.pi**2 * tt / 2) * np.sin(k * math.pi * z))
    drift = ((sep * z * sv) ** 2 - 2 * sep * v * z - v * v * u) / (2 * sv * sv * u + 2)
    return f * math.exp(drift) / math.sqrt(sv * sv * u + 1) / sep**2


def _brute_force(rt, resp, v, a, z, t, sz, sv, st):
    val, _ = integrate.dblquad(
        lambda tau, zz: _ddm_sdv_density(rt, resp, v, a, zz, tau, sv),
        z - sz / 2,
        z + sz / 2,
        t - st / 2,
        min(t + st / 2, rt),
        epsabs=1e-14,
        epsrel=1e-10,
    )
    return math.log(val / (sz * st))


def _cases(n, seed):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        v, a = rng.uniform(-3, 3), rng.uniform(0.3, 2.5)
        z, t = rng.uniform(0.3, 0.7), rng.uniform(0.25, 2.25)
        sz, sv, st = rng.uniform(0.001, 0.2), rng.uniform(0.001, 2), rng.uniform(0.001, 0.25)
        resp = int(rng.choice([-1, 1]))
        # rt inside the t-range, at its ends and beyond (registry training box).
        rt = t + rng.choice([-st / 4, 0.0, 0.45 * st, 0.05, 0.3, 1.0, 3.0])
        out.append((rt, resp, (v, a, z, t, sz, sv, st)))
    return out


def _check(cases):
    worst = 0.0
    for rt, resp, theta in cases:
        ref = _brute_force(rt, resp, *theta)
        out = float(
            full_ddm_log_likelihood(
                torch.tensor(rt, dtype=torch.float64),
                torch.tensor(resp),
                torch.tensor(theta, dtype=torch.float64),
                validate=True,
            )
        )
        err = abs(out - ref) if ref > -100 else abs(out - ref) / abs(ref)
        tol = 1e-5 if ref > -100 else 1e-4
        assert err < tol, (rt, resp, theta, out, ref)
        worst = max(worst, err)
    return worst


def test_full_ddm_matches_scipy_quick():
    """1e-5 absolute where the log-likelihood is above -100 (1e-4 relative below)."""
    _check(_cases(6, seed=3))


@pytest.mark.slow
def test_full_ddm_matches_scipy_box():
    _check(_cases(120, seed=11))


def test_full_ddm_reduces_to_ddm_sdv():
    from hssm_torch.likelihoods import ddm_sdv_log_likelihood

    th = torch.tensor([0.7, 1.1, 0.45, 0.3, 0.0, 0.8, 0.0], dtype=torch.float64)
    rt = torch.tensor([0.35, 0.6, 1.4, 4.0], dtype=torch.float64)
    resp = torch.tensor([1, -1, 1, -1])
    a = full_ddm_log_likelihood(rt, resp, th)
    b = ddm_sdv_log_likelihood(rt, resp, th[[0, 1, 2, 3, 5]])
    assert torch.allclose(a, b, atol=1e-12)


def test_full_ddm_invalid_ranges():
    th = torch.tensor([0.7, 1.1, 0.05, 0.3, 0.2, 0.8, 0.1], dtype=torch.float64)  # z - sz/2 < 0
    out = full_ddm_log_likelihood(torch.tensor(1.0), torch.tensor(1), th)
    assert out.item() == -math.inf
    with pytest.raises(ValueError, match="z - sz/2"):
        full_ddm_log_likelihood(torch.tensor(1.0), torch.tensor(1), th, validate=True)
    th = torch.tensor([0.7, 1.1, 0.5, 0.3, 0.1, 0.8, 0.2], dtype=torch.float64)
    # rt before the earliest non-decision time -> the documented floor
    from hssm_torch.likelihoods import LOG_FLOOR

    assert full_ddm_log_likelihood(torch.tensor(0.1), torch.tensor(1), th).item() == LOG_FLOOR
