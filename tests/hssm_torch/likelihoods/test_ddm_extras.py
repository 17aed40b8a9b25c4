"""DDM choice probabilities and survival against numerical integration of the density."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate

from hssm_torch.likelihoods import (
    ddm_choice_probability,
    ddm_log_choice_probability,
    ddm_log_survival,
    log_likelihood,
)


def _mass(model, theta, lo, hi):
    th = torch.tensor(theta, dtype=torch.float64)

    def dens(r, c):
        return math.exp(
            float(log_likelihood(model, torch.tensor(r, dtype=torch.float64), torch.tensor(c), th))
        )

    return [
        integrate.quad(dens, lo, hi, args=(c,), limit=300, epsabs=1e-300, epsrel=1e-11)[0]
        for c in (-1, 1)
    ]


CASES = [
    ("ddm", (1.2, 0.8, 0.35, 0.2)),
    ("ddm", (-2.7, 2.2, 0.8, 0.5)),
    ("ddm_sdv", (0.9, 1.6, 0.6, 0.3, 1.2)),
    ("ddm_sdv", (-2.0, 2.4, 0.2, 0.1, 0.4)),
]


@pytest.mark.parametrize("model, theta", CASES)
def test_choice_probability_matches_integral(model, theta):
    t = theta[3]
    p_low, p_up = _mass(model, theta, t, np.inf)
    th = torch.tensor(theta, dtype=torch.float64)
    lp = ddm_log_choice_probability(th, torch.tensor([-1, 1]))
    assert float(lp[0]) == pytest.approx(math.log(p_low), abs=1e-8)
    assert float(lp[1]) == pytest.approx(math.log(p_up), abs=1e-8)
    assert float(ddm_choice_probability(th, torch.tensor([-1, 1])).sum()) == pytest.approx(1.0)


def test_choice_probability_zero_drift_and_tiny_drift():
    th = torch.tensor(
        [[0.0, 1.0, 0.3, 0.2], [1e-9, 1.0, 0.3, 0.2]], dtype=torch.float64, requires_grad=True
    )
    p = ddm_choice_probability(th, torch.tensor(1))
    assert torch.allclose(p, torch.tensor([0.3, 0.3], dtype=torch.float64), atol=1e-8)
    p.sum().backward()
    # d P(upper) / dv at v = 0 is 2a z (1 - z) (= 0.42 here)
    assert torch.allclose(th.grad[:, 0], torch.tensor([0.42, 0.42], dtype=torch.float64), atol=1e-6)


@pytest.mark.parametrize("model, theta", CASES)
@pytest.mark.parametrize("tt", [0.01, 0.2, 1.0, 4.0])
def test_log_survival_matches_integral(model, theta, tt):
    a, t = theta[1], theta[3]
    deadline = t + tt * (2 * a) ** 2
    before = sum(_mass(model, theta, t, deadline))
    if before < 0.5:
        ref = math.log1p(-before)
    else:  # survival is small: integrate the tail instead of 1 - (mass before)
        ref = math.log(sum(_mass(model, theta, deadline, np.inf)))
    got = ddm_log_survival(
        torch.tensor(deadline, dtype=torch.float64), torch.tensor(theta, dtype=torch.float64)
    )
    assert float(got) == pytest.approx(ref, abs=1e-8, rel=1e-9)


def test_log_survival_before_t_is_zero_and_grad_finite():
    th = torch.tensor(
        [[1.0, 1.0, 0.5, 0.3], [3.0, 0.3, 0.9, 0.1]], dtype=torch.float64, requires_grad=True
    )
    out = ddm_log_survival(torch.tensor([0.2, 50.0], dtype=torch.float64), th)
    assert out[0].item() == 0.0
    assert torch.isfinite(out).all() and out[1] < -500  # deep tail, accurate, not floored
    out.sum().backward()
    assert torch.isfinite(th.grad).all()
