"""Batched NUTS: exact targets (Gaussians) within Monte-Carlo error, adaptation, seeding."""

import math

import arviz as az
import numpy as np
import pytest
import torch

from hssm_torch.samplers import mass_windows, nuts_sample
from hssm_torch.samplers.batched_nuts import _Checkpoints, _ckpt_range

F64 = torch.float64


def gaussian(mean: torch.Tensor, cov: torch.Tensor):
    prec = torch.linalg.inv(cov)

    def potential(x):
        d = x - mean
        return 0.5 * ((d @ prec) * d).sum(-1)

    return potential


def check_moments(draws: np.ndarray, mean: np.ndarray, cov: np.ndarray, z: float = 4.0):
    """Means, variances and correlations within ``z`` ESS-based standard errors.

    ``draws``: (chains, draws, D). Each checked quantity q (a coordinate, a squared
    standardised coordinate, a product of two standardised coordinates) has expectation
    known in closed form; its Monte-Carlo SE is sd(q) / sqrt(ESS(q)).
    """
    sd = np.sqrt(np.diag(cov))
    zs = (draws - mean) / sd
    corr = cov / np.outer(sd, sd)
    d = draws.shape[-1]
    checks = []
    for i in range(d):
        checks.append((f"mean[{i}]", zs[..., i], 0.0))
        checks.append((f"var[{i}]", zs[..., i] ** 2, 1.0))
        for j in range(i + 1, d):
            checks.append((f"corr[{i},{j}]", zs[..., i] * zs[..., j], corr[i, j]))
    for name, q, expected in checks:
        ess = float(az.ess(q))
        assert ess > 50, f"{name}: ESS {ess:.0f} too small to test"
        se = q.std() / math.sqrt(ess)
        assert abs(q.mean() - expected) < z * se, (
            f"{name}: {q.mean():.4f} vs {expected:.4f} (SE {se:.4f}, ESS {ess:.0f})"
        )


def test_correlated_2d_gaussian_moments():
    mean = torch.tensor([1.0, -2.0], dtype=F64)
    cov = torch.tensor([[1.0, 0.9 * 2.0], [0.9 * 2.0, 4.0]], dtype=F64)
    res = nuts_sample(
        gaussian(mean, cov),
        torch.zeros(4, 2, dtype=F64),
        draws=400,
        tune=200,
        seed=3,
        progress=False,
    )
    assert res.positions.shape == (4, 400, 2)
    assert not bool(res.diverging.any())
    check_moments(res.positions.numpy(), mean.numpy(), cov.numpy())


def test_correlated_10d_gaussian_moments_and_stats():
    g = torch.Generator().manual_seed(5)
    a = torch.randn(10, 10, generator=g, dtype=F64)
    cov = a @ a.T / 10 + 0.5 * torch.eye(10, dtype=F64)
    mean = torch.randn(10, generator=g, dtype=F64)
    res = nuts_sample(
        gaussian(mean, cov),
        torch.zeros(3, 10, dtype=F64),
        draws=400,
        tune=300,
        seed=4,
        progress=False,
    )
    check_moments(res.positions.numpy(), mean.numpy(), cov.numpy())
    # tree depth d holds between 2**(d-1) and 2**d - 1 leapfrog steps
    n, d = res.n_steps.numpy(), res.tree_depth.numpy()
    assert np.all((n >= 2 ** (d - 1)) & (n <= 2**d - 1))
    acc = res.acceptance_rate.numpy()
    assert np.all((acc >= 0) & (acc <= 1))
    assert 0.7 < acc.mean() < 0.98  # target 0.8; the averaged step size lands a bit above
    # the potential of every draw is the target's
    pot = gaussian(mean, cov)(res.positions.reshape(-1, 10)).reshape(3, 400)
    torch.testing.assert_close(res.potential, pot)
    # step size constant after warm-up, one per chain
    assert torch.all(res.step_size == res.step_size[:, :1])


def test_badly_scaled_target_adapts_the_mass_matrix():
    # standard deviations over two decades (variances over four), identity mass to start;
    # max_tree_depth 5 keeps the unadapted early iterations cheap (they hit the limit)
    sd = torch.logspace(-1, 1, 5, dtype=F64)
    cov = torch.diag(sd**2)
    res = nuts_sample(
        gaussian(torch.zeros(5, dtype=F64), cov),
        torch.full((2, 5), 0.1, dtype=F64) * sd,
        draws=400,
        tune=400,
        seed=6,
        max_tree_depth=5,
        progress=False,
    )
    ratio = (res.inv_mass / sd**2).numpy()
    assert np.all((ratio > 0.5) & (ratio < 2.0)), ratio
    # with the scales learnt the trajectories are short and rarely reach the depth limit
    assert float(res.n_steps.double().mean()) < 10
    assert float((res.tree_depth == 5).double().mean()) < 0.05
    check_moments(res.positions.numpy(), np.zeros(5), cov.numpy())


def test_same_seed_same_draws_and_other_seed_other_draws():
    pot = gaussian(torch.zeros(3, dtype=F64), torch.eye(3, dtype=F64))
    kw = dict(draws=30, tune=30, progress=False)
    a = nuts_sample(pot, torch.zeros(2, 3, dtype=F64), seed=9, **kw)
    b = nuts_sample(pot, torch.zeros(2, 3, dtype=F64), seed=9, **kw)
    c = nuts_sample(pot, torch.zeros(2, 3, dtype=F64), seed=10, **kw)
    assert torch.equal(a.positions, b.positions) and torch.equal(a.n_steps, b.n_steps)
    assert not torch.equal(a.positions, c.positions)
    # chains differ from each other
    assert not torch.equal(a.positions[0], a.positions[1])


def test_one_chain_and_no_warmup():
    pot = gaussian(torch.zeros(2, dtype=F64), torch.eye(2, dtype=F64))
    res = nuts_sample(
        pot, torch.zeros(1, 2, dtype=F64), draws=400, tune=200, seed=1, progress=False
    )
    assert res.positions.shape == (1, 400, 2)
    check_moments(res.positions.numpy(), np.zeros(2), np.eye(2))
    res0 = nuts_sample(
        pot, torch.zeros(1, 2, dtype=F64), draws=5, tune=0, seed=1, step_size=0.5, progress=False
    )
    assert torch.all(res0.step_size == 0.5)


def test_divergences_are_flagged():
    # a hard wall: U jumps by 1e4 outside |x| < 1; steps of size 1.5 cannot stay inside
    def wall(x):
        return 0.5 * (x**2).sum(-1) + 1e4 * (x.abs() > 1).any(-1).to(x.dtype) * (x**2).sum(-1)

    res = nuts_sample(
        wall, torch.zeros(2, 1, dtype=F64), draws=20, tune=0, seed=2, step_size=1.5, progress=False
    )
    assert bool(res.diverging.any())


def test_bad_arguments_name_the_parameter():
    pot = gaussian(torch.zeros(2, dtype=F64), torch.eye(2, dtype=F64))
    with pytest.raises(ValueError, match="init"):
        nuts_sample(pot, torch.zeros(2, dtype=F64), draws=1, tune=0)
    with pytest.raises(ValueError, match="draws"):
        nuts_sample(pot, torch.zeros(1, 2, dtype=F64), draws=0, tune=0)
    with pytest.raises(ValueError, match="target_accept"):
        nuts_sample(pot, torch.zeros(1, 2, dtype=F64), draws=1, tune=0, target_accept=1.0)
    with pytest.raises(ValueError, match="init: non-finite"):
        nuts_sample(lambda x: x.sum(-1) / 0.0 * 0.0, torch.zeros(1, 2, dtype=F64), draws=1, tune=0)


def test_stan_window_schedule():
    assert mass_windows(1000) == [(75, 100), (100, 150), (150, 250), (250, 450), (450, 950)]
    assert mass_windows(500) == [(75, 100), (100, 150), (150, 250), (250, 450)]
    assert mass_windows(400) == [(75, 100), (100, 150), (150, 350)]
    assert mass_windows(100) == [(15, 90)]
    assert mass_windows(19) == []


def test_checkpoint_ranges_cover_every_closing_subtree():
    # leaf n closes one sub-subtree per trailing 1 bit of n; they start at leaves
    # n - 2**k + 1, whose checkpoint index is popcount((n - 2**k + 1) >> 1)
    for n in range(64):
        lo, hi = _ckpt_range(n)
        k_max = (n ^ (n + 1)).bit_length() - 1  # trailing ones
        expected = sorted(bin((n - 2**k + 1) >> 1).count("1") for k in range(1, k_max + 1))
        assert list(range(lo, hi + 1)) == expected, n


def test_checkpoint_masks_follow_numpyro_scheme():
    # subtree of 8 leaves (max_tree_depth 4, 3 checkpoints): even leaves store at
    # popcount(n >> 1); odd leaf n closes the sub-subtrees of sizes 2, 4, ... ending at n
    # (one per trailing one bit), which start at the checkpoints listed
    ck = _Checkpoints(4, torch.device("cpu"))
    stores = {0: 0, 2: 1, 4: 1, 6: 2}
    checks = {1: [0], 3: [0, 1], 5: [1], 7: [0, 1, 2]}
    assert ck.k == 3 and len(ck.store) == 8
    for n in range(8):
        want_store = [i == stores.get(n) for i in range(3)]
        want_check = [i in checks.get(n, []) for i in range(3)]
        assert ck.store[n].tolist() == want_store, n
        assert ck.check[n].tolist() == want_check, n
