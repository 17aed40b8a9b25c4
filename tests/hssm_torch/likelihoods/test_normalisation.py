"""Densities integrate to 1: sum over responses of the integral over rt."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hssm_torch.likelihoods import log_likelihood


def _total_mass(model, theta, choices, t0, breaks=()):
    """Sum over responses of the integral over rt, by composite Gauss-Legendre in log(rt - t0).

    1500 panels of 16 nodes on u = rt - t0 in [1e-16, 1e9] s (log-spaced; the LBA with rates
    near 0 has a ~1/u^2 tail, a Poisson race with k < 1 a u^(k-1) peak at 0); one
    vectorised call per response. ``breaks`` is unused (kept for
    symmetry with scipy-based checks).
    """
    x, w = np.polynomial.legendre.leggauss(16)
    edges = np.linspace(math.log(1e-16), math.log(1e9), 1501)
    lo, hi = edges[:-1, None], edges[1:, None]
    s = (lo + hi) / 2 + (hi - lo) / 2 * x
    ws = (hi - lo) / 2 * w
    u = np.exp(s).ravel()
    weights = (ws * np.exp(s)).ravel()
    th = torch.tensor(theta, dtype=torch.float64)
    rt = torch.tensor(t0 + u, dtype=torch.float64)
    total = 0.0
    for c in choices:
        lp = log_likelihood(model, rt, torch.full(rt.shape, c), th)
        total += float((torch.exp(lp) * torch.tensor(weights)).sum())
    return total


DDM_GRID = [
    (v, a, z, 0.3) for v in (-2.5, 0.0, 1.7) for a in (0.4, 1.2, 2.4) for z in (0.15, 0.5, 0.85)
]


def _some_slow(items, keep):
    """Keep ``keep`` items in the default run; the rest are marked slow."""
    return [
        x if i in keep else pytest.param(x, marks=pytest.mark.slow) for i, x in enumerate(items)
    ]


@pytest.mark.parametrize("theta", _some_slow(DDM_GRID, {0, 13, 26}))
def test_ddm_integrates_to_one(theta):
    a = theta[1]
    mass = _total_mass("ddm", theta, (-1, 1), theta[3], breaks=(0.05 * a * a, a * a, 10 * a * a))
    assert abs(mass - 1.0) < 1e-6


@pytest.mark.parametrize("sv", [0.3, 1.5])
@pytest.mark.parametrize("theta", _some_slow(DDM_GRID[1::4], {2}))
def test_ddm_sdv_integrates_to_one(theta, sv):
    a = theta[1]
    mass = _total_mass(
        "ddm_sdv", (*theta, sv), (-1, 1), theta[3], breaks=(0.05 * a * a, a * a, 10 * a * a)
    )
    assert abs(mass - 1.0) < 1e-6


@pytest.mark.parametrize(
    "theta",
    _some_slow([(1.0, 0.8, 0.5, 0.5, 0.1, 0.5, 0.2), (-2.0, 1.5, 0.4, 0.4, 0.15, 1.0, 0.1)], {0}),
)
def test_full_ddm_integrates_to_one(theta):
    t, st = theta[3], theta[6]
    lo = t - st / 2
    mass = _total_mass("full_ddm", theta, (-1, 1), lo, breaks=(st, 2.0, 10.0))
    assert abs(mass - 1.0) < 1e-6


@pytest.mark.parametrize(
    "model, theta",
    [
        ("lba2", (0.3, 0.6, 0.8, 0.5)),
        ("lba2", (0.5, 0.9, 0.05, 0.02)),  # rates often negative: the HSSM normalisation matters
        ("lba3", (0.2, 0.5, 0.4, 0.9, 0.6, 0.25)),
        ("lba4", (0.4, 1.0, 0.5, 0.7, 0.9, 1.1)),
        ("racing_diffusion_3", (0.5, 1.5, 1.0, 1.5, 0.8, 0.2)),
        ("racing_diffusion_3", (0.05, 0.6, 2.4, 0.2, 0.9, 0.0)),
        ("poisson_race", (3.0, 4.0, 2.0, 3.0, 0.2)),
        ("poisson_race", (10.0, 1.5, 0.7, 5.5, 0.0)),
    ],
)
def test_race_models_integrate_to_one(model, theta):
    from simulators import get_model

    choices = get_model(model).choices
    has_t = len(theta) == len(get_model(model).param_names)
    t0 = theta[-1] if has_t else 0.0
    mass = _total_mass(model, theta, choices, t0, breaks=(0.3, 2.0, 10.0))
    assert abs(mass - 1.0) < 1e-6


@pytest.mark.parametrize(
    "model, theta",
    [
        ("softmax_inv_temperature_2", (2.0, 0.7)),
        ("softmax_inv_temperature_3", (0.5, -1.0, 2.0)),
        ("inv_temp_softmax_2", (3.0, 0.2, 0.9)),
        ("inv_temp_softmax_3", (1.5, 0.1, 0.5, 0.3)),
    ],
)
def test_softmax_probabilities_sum_to_one(model, theta):
    from simulators import get_model

    choices = torch.tensor(get_model(model).choices)
    lp = log_likelihood(model, torch.zeros(len(choices)), choices, torch.tensor(theta))
    assert float(lp.exp().sum()) == pytest.approx(1.0, abs=1e-6)
    # HSSM's definition: p_k proportional to exp(beta * logit_k) with logit_0 = 0.
    beta, vals = theta[0], list(theta[1:])
    if model.startswith("softmax_inv_temperature"):
        vals = [0.0, *vals]
    expected = torch.softmax(beta * torch.tensor(vals, dtype=torch.float64), 0)
    assert torch.allclose(lp.exp().double(), expected, atol=1e-6)
