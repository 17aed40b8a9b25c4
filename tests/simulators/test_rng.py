"""Statistical quality and invariances of the counter-based generator (simulators/rng.py).

Tolerances: every statistic is compared with its sampling distribution under the ideal
generator; the limits are 5 standard errors (or a chi-square / KS p-value above 1e-6), so a
correct generator fails with probability < 1e-5 per check; the draws are fixed by the seed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from simulators.rng import normal, normal_block, stream_keys, trial_keys, uniform, uniform_block

N_SETS, N_TRIALS, K = 8, 500, 64  # 4,000 keys x 64 steps = 256,000 draws


@pytest.fixture(scope="module")
def keys():
    g = torch.arange(N_SETS * N_TRIALS)
    return trial_keys(20261128, g // N_TRIALS, g % N_TRIALS)


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(np.corrcoef(a.double().numpy().ravel(), b.double().numpy().ravel())[0, 1])


def test_uniforms_are_uniform_in_64_bins(keys):
    u = uniform_block(*keys, torch.zeros(N_SETS * N_TRIALS, dtype=torch.int64), K)
    assert float(u.min()) > 0.0 and float(u.max()) < 1.0
    counts = np.bincount((u.numpy().ravel() * 64).astype(int), minlength=64)
    chi2 = stats.chisquare(counts)
    assert chi2.pvalue > 1e-6, chi2
    # pairs of consecutive draws of one stream: uniform on an 8 x 8 grid
    pairs = (u[:, 0::2] * 8).long() * 8 + (u[:, 1::2] * 8).long()
    assert stats.chisquare(np.bincount(pairs.numpy().ravel(), minlength=64)).pvalue > 1e-6


def test_normals_have_normal_moments_and_distribution(keys):
    z = normal_block(*keys, torch.full((N_SETS * N_TRIALS,), 100, dtype=torch.int64), K)
    x = z.double().numpy().ravel()
    n = x.size
    assert abs(x.mean()) < 5 / math.sqrt(n)
    assert abs(x.var() - 1.0) < 5 * math.sqrt(2 / n)
    assert abs(stats.skew(x)) < 5 * math.sqrt(6 / n)
    assert abs(stats.kurtosis(x)) < 5 * math.sqrt(24 / n)
    assert stats.kstest(x, "norm").pvalue > 1e-6
    # tails: P(|z| > 3) = 0.0027
    p3 = float((np.abs(x) > 3).mean())
    assert abs(p3 - 0.0026998) < 5 * math.sqrt(0.0027 / n)


def test_no_correlation_along_a_stream_or_across_trials_and_sets(keys):
    z = normal_block(*keys, torch.zeros(N_SETS * N_TRIALS, dtype=torch.int64), K)
    lim = 5 / math.sqrt(z[:, :-1].numel())
    for lag in (1, 2, 3, 8):
        assert abs(_corr(z[:, :-lag], z[:, lag:])) < 5 / math.sqrt(z[:, lag:].numel()), lag
    # the two Box-Muller partners (steps 2j, 2j+1): uncorrelated, also in their squares
    assert abs(_corr(z[:, 0::2], z[:, 1::2])) < 2 * lim
    assert abs(_corr(z[:, 0::2] ** 2, z[:, 1::2] ** 2)) < 2 * lim
    # neighbouring trials of a set, and the same trial in neighbouring sets
    zz = z.view(N_SETS, N_TRIALS, K)
    lim_t = 5 / math.sqrt(zz[:, 1:].numel())
    assert abs(_corr(zz[:, :-1], zz[:, 1:])) < lim_t
    assert abs(_corr(zz[:-1], zz[1:])) < 5 / math.sqrt(zz[1:].numel())
    # an independent stream of the same trials
    z2 = normal_block(*stream_keys(*keys, 3), torch.zeros(N_SETS * N_TRIALS, dtype=torch.int64), K)
    assert abs(_corr(z, z2)) < 5 / math.sqrt(z.numel())


def test_a_draw_depends_only_on_its_counter_not_on_the_block(keys):
    k1, k2 = keys
    m = k1.shape[0]
    full = normal_block(k1, k2, torch.zeros(m, dtype=torch.int64), K)
    later = normal_block(k1, k2, torch.full((m,), 10, dtype=torch.int64), K - 10)
    assert torch.equal(full[:, 10:], later)
    # normal(c) is the first Box-Muller output of pair c, i.e. step 2c of the block
    assert torch.allclose(full[:5, 6], normal(k1[:5], k2[:5], 3), rtol=1e-6, atol=1e-6)
    # single draws agree with the block draws of the same counters
    u_block = uniform_block(k1[:7], k2[:7], torch.zeros(7, dtype=torch.int64), 4)
    assert torch.equal(u_block[:, 2], uniform(k1[:7], k2[:7], 2))
    # keys do not depend on which other (set, trial) pairs are keyed with them
    a1, a2 = trial_keys(20261128, torch.tensor([3]), torch.tensor([17]))
    assert int(a1) == int(k1[3 * N_TRIALS + 17]) and int(a2) == int(k2[3 * N_TRIALS + 17])
