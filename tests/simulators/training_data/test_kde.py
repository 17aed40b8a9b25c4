"""The batched grid/FFT log-RT KDE against a brute-force float64 Gaussian KDE."""

from __future__ import annotations

import math

import pytest
import torch

from simulators.training_data.kde import LogRTKDE, silverman_bandwidth


def _brute_force(rt, resp, choices, y, ci, n_total):
    """Exact log p(y, c) = log(n_c/n) + log KDE(log y) - log y, row by row."""
    out = torch.empty(y.shape, dtype=torch.float64)
    for b in range(rt.shape[0]):
        for j, code in enumerate(choices):
            x = rt[b][resp[b] == code].double().log()
            m = ci[b] == j
            if not m.any():
                continue
            if x.numel() == 0:
                out[b][m] = -math.inf
                continue
            h = silverman_bandwidth(x.std(unbiased=False), torch.tensor(x.numel()))
            ly = y[b][m].double().log()
            z = (ly[:, None] - x[None]) / h
            lf = (
                torch.logsumexp(-0.5 * z * z, 1)
                - 0.5 * math.log(2 * math.pi)
                - h.log()
                - math.log(x.numel())
            )
            out[b][m] = lf + math.log(x.numel() / n_total) - ly
    return out


def _data(B=3, n=4000, p_lower=0.3):
    g = torch.Generator().manual_seed(1)
    rt = torch.exp(torch.randn(B, n, generator=g) * 0.5 - 0.5) + 0.25
    resp = torch.where(torch.rand(B, n, generator=g) < p_lower, -1, 1)
    return rt, resp


def test_matches_brute_force_kde_in_body_and_tails():
    rt, resp = _data()
    kde = LogRTKDE(rt, resp, (-1, 1))
    y = torch.cat([torch.linspace(0.005, 20.0, 400), torch.linspace(0.3, 3.0, 400)]).repeat(3, 1)
    ci = torch.randint(0, 2, y.shape)
    got = kde.log_density(y, ci)
    ref = _brute_force(rt, resp, (-1, 1), y, ci, rt.shape[1])
    relevant = ref > -66.8  # the label floor; below it labels are floored anyway
    err = (got - ref).abs()[relevant]
    assert relevant.sum() > 500
    assert err.max().item() < 5e-3, err.max()
    assert err.mean().item() < 2e-4


def test_bandwidth_is_silverman_on_log_rt():
    rt, resp = _data(B=1, n=2000)
    kde = LogRTKDE(rt, resp, (-1, 1))
    for j, code in enumerate((-1, 1)):
        x = rt[0][resp[0] == code].double().log()
        want = (4 / 3) ** 0.2 * x.std(unbiased=False) * x.numel() ** -0.2
        assert kde.bandwidth[0, j].item() == pytest.approx(want.item(), rel=1e-9)


def test_omitted_trials_count_in_n_but_not_in_the_kde():
    rt, resp = _data(B=1, n=2000)
    omitted = torch.zeros_like(resp, dtype=torch.bool)
    omitted[0, :500] = True
    rt2, resp2 = rt.clone(), resp.clone()
    rt2[omitted], resp2[omitted] = -999.0, -999
    kde = LogRTKDE(rt2, resp2, (-1, 1), omitted)
    assert kde.counts.sum().item() == 1500
    y, ci = torch.tensor([[0.8, 0.8]]), torch.tensor([[0, 1]])
    ref = _brute_force(rt2, resp2, (-1, 1), y, ci, 2000)
    assert torch.allclose(kde.log_density(y, ci), ref, atol=1e-3)
    # densities integrate to the responded share (0.75)
    grid = torch.linspace(1e-3, 8.0, 8000, dtype=torch.float64)
    tot = sum(
        torch.trapezoid(
            kde.log_density(grid[None], torch.full((1, grid.numel()), j)).exp()[0], grid
        )
        for j in range(2)
    )
    assert tot.item() == pytest.approx(0.75, abs=2e-3)


def test_response_without_trials_gives_minus_inf():
    rt = torch.rand(1, 300) + 0.3
    resp = torch.ones(1, 300, dtype=torch.long)
    kde = LogRTKDE(rt, resp, (-1, 1))
    out = kde.log_density(torch.tensor([[0.5, 0.5]]), torch.tensor([[0, 1]]))
    assert out[0, 0].item() == -math.inf and math.isfinite(out[0, 1].item())


def test_samples_follow_the_kde():
    rt, resp = _data(B=2, n=20000, p_lower=0.25)
    kde = LogRTKDE(rt, resp, (-1, 1))
    g = torch.Generator().manual_seed(0)
    r, c = kde.sample(20000, g)
    assert r.shape == (2, 20000) and bool((r > 0).all())
    share_lower = (c == 0).double().mean(1)
    want = (resp == -1).double().mean(1)
    assert torch.allclose(share_lower, want, atol=4 * (0.25 * 0.75 / 20000) ** 0.5)
    # log-rt moments of the draws: data mean and variance + h^2
    for b in range(2):
        x = rt[b][resp[b] == 1].double().log()
        s = r[b][c[b] == 1].log()
        h = kde.bandwidth[b, 1]
        assert s.mean().item() == pytest.approx(x.mean().item(), abs=0.02)
        assert s.var().item() == pytest.approx((x.var(unbiased=False) + h * h).item(), rel=0.05)


def test_bad_inputs():
    with pytest.raises(ValueError, match="same shape"):
        LogRTKDE(torch.rand(2, 10), torch.ones(2, 9, dtype=torch.long), (-1, 1))
    with pytest.raises(ValueError, match="rt > 0"):
        LogRTKDE(torch.zeros(1, 10), torch.ones(1, 10, dtype=torch.long), (-1, 1))
    with pytest.raises(ValueError, match="grid_size"):
        LogRTKDE(torch.rand(1, 10) + 1, torch.ones(1, 10, dtype=torch.long), (-1, 1), grid_size=8)
