"""The coarse-to-fine engine (simulators.refine) against the fine blocked engine.

The refined engine simulates the fine engine's scheme (same dt grid, same crossing checks)
with different draws, so the tests compare distributions: two independent samples (different
seeds) per case, choice proportions within 4 standard errors and per-response rt
distributions by a two-sample Kolmogorov-Smirnov test at p > 1e-3 (seeded, so each outcome
is fixed).  A control shows that the comparison detects a wrong skip rule.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
from scipy import stats

import simulators.kinds.diffusion as kinds_diffusion
import simulators.refine as refine
from simulators import simulate
from simulators.engine import diffuse_1d

ANGLE = {"v": 0.6, "a": 1.2, "z": 0.45, "t": 0.2, "theta": 0.4}
WEIBULL = {"v": -0.4, "a": 1.3, "z": 0.55, "t": 0.2, "alpha": 2.5, "beta": 1.5}
DDM = {"v": 1.0, "a": 0.8, "z": 0.4, "t": 0.3}
ORNSTEIN_LEAK = {"v": 0.5, "a": 1.2, "z": 0.45, "g": 0.8, "t": 0.3}
ORNSTEIN_GROW = {"v": 0.5, "a": 1.2, "z": 0.45, "g": -0.8, "t": 0.3}
N = 40_000


def _run(monkeypatch, model, theta, method, *, refined, seed, n=N, max_t=20.0):
    with monkeypatch.context() as m:
        m.setattr(kinds_diffusion, "diffuse_1d", functools.partial(diffuse_1d, refine=refined))
        return simulate(model, theta, n, seed=seed, method=method, max_t=max_t)


def _compare(a, b, *, n_se=4.0, p_min=1e-3):
    """Choice proportions within n_se standard errors, rt per response by a KS test;
    returns the smallest KS p-value."""
    n = a.rt.shape[1]
    p_values = []
    for code in (-1, 1, -999):
        ma, mb = a.response[0] == code, b.response[0] == code
        pa, pb = float(ma.double().mean()), float(mb.double().mean())
        p = (pa + pb) / 2
        se = math.sqrt(max(2 * p * (1 - p) / n, 1e-12))
        assert abs(pa - pb) < n_se * se, (code, pa, pb)
        if code != -999 and int(ma.sum()) > 50 and int(mb.sum()) > 50:
            ks = stats.ks_2samp(a.rt[0][ma].numpy(), b.rt[0][mb].numpy())
            p_values.append(ks.pvalue)
    assert min(p_values) > p_min, p_values
    return min(p_values)


@pytest.mark.parametrize(
    ("model", "theta", "method"),
    [
        ("angle", ANGLE, "bridge"),
        ("angle", ANGLE, "euler"),
        ("weibull", WEIBULL, "euler"),
        ("ddm", DDM, "bridge"),
        ("ornstein", ORNSTEIN_LEAK, "bridge"),
        ("ornstein", ORNSTEIN_GROW, "euler"),
    ],
)
def test_refined_engine_matches_the_fine_engine(monkeypatch, model, theta, method):
    fine = _run(monkeypatch, model, theta, method, refined=False, seed=3)
    coarse = _run(monkeypatch, model, theta, method, refined=True, seed=4)
    assert fine.n_omitted < 10 and coarse.n_omitted < 10
    _compare(fine, coarse)


@pytest.mark.parametrize(
    ("model", "theta", "method"),
    [("angle", ANGLE, "bridge"), ("ornstein", ORNSTEIN_LEAK, "euler")],
)
def test_refining_every_window_matches_the_fine_engine(monkeypatch, model, theta, method):
    """With the skip rule off (every window gets its fine points) only the bridge
    construction of the fine points differs from the fine engine (for the leak: the
    variance-weighted bridge of the rescaled walk)."""
    monkeypatch.setattr(refine, "_SAFE", math.inf)
    fine = _run(monkeypatch, model, theta, method, refined=False, seed=5)
    every = _run(monkeypatch, model, theta, method, refined=True, seed=6)
    _compare(fine, every)


def test_a_wrong_skip_rule_is_detected(monkeypatch):
    """Control for the comparison's power: skipping every window whose ends lie inside the
    bounds (no safety distance) misses crossings between the window ends, and the same
    comparison rejects it (later and fewer lower responses than the fine engine)."""
    fine = _run(monkeypatch, "angle", ANGLE, "bridge", refined=False, seed=5)
    monkeypatch.setattr(refine, "_SAFE", 0.0)
    wrong = _run(monkeypatch, "angle", ANGLE, "bridge", refined=True, seed=6)
    with pytest.raises(AssertionError):
        _compare(fine, wrong)
    assert float(wrong.rt.mean()) > float(fine.rt.mean()) + 0.02


def test_max_t_limit_is_the_fine_engines(monkeypatch):
    """Trials without a decision by max_t (not a multiple of the block) are omitted in the
    same proportion, and no decision lies beyond max_t."""
    theta = {**ANGLE, "theta": 0.0, "v": 0.0, "a": 1.5}
    kw = {"n": 20_000, "max_t": 1.5}
    fine = _run(monkeypatch, "angle", theta, "bridge", refined=False, seed=7, **kw)
    coarse = _run(monkeypatch, "angle", theta, "bridge", refined=True, seed=8, **kw)
    assert 0.2 < fine.n_omitted / 20_000 < 0.8
    _compare(fine, coarse)
    done = ~coarse.omitted
    assert float(coarse.rt[done].max()) <= 1.5 + theta["t"] + 1e-6


@pytest.mark.parametrize(
    ("model", "rows"),
    [
        ("angle", [[0.6, 1.2, 0.45, 0.2, 0.4], [-0.3, 0.9, 0.5, 0.1, 0.1]]),
        ("ornstein", [[0.5, 1.2, 0.45, 0.8, 0.3], [0.2, 0.9, 0.5, -0.6, 0.1]]),
    ],
)
def test_refined_draws_do_not_depend_on_chunking_or_other_sets(model, rows):
    theta = torch.tensor(rows)
    whole = simulate(model, theta, 3000, seed=9)
    for chunk in (777, 1001):
        parts = simulate(model, theta, 3000, seed=9, chunk_size=chunk)
        assert torch.equal(whole.rt, parts.rt), chunk
        assert torch.equal(whole.response, parts.response), chunk
    first = simulate(model, theta[:1], 3000, seed=9)
    assert torch.equal(whole.rt[:1], first.rt)


def test_window_ends_have_the_sum_of_the_fine_increments_distribution():
    """The window end is N(y0 + K v dt, K dt): checked on the coarse graph's output."""
    k, w, dt = refine.REFINE_STEPS, refine.REFINE_WINDOWS, 1e-3
    s = 50_000
    g = torch.Generator().manual_seed(0)
    rows = {
        "y": torch.zeros(s),
        "step": torch.zeros(s, dtype=torch.int64),
        "ck1": torch.randint(-(2**31), 2**31 - 1, (s,), dtype=torch.int32, generator=g),
        "ck2": torch.randint(-(2**31), 2**31 - 1, (s,), dtype=torch.int32, generator=g),
        "mu": torch.full((s,), 2.0),
        "grp": torch.zeros(s, dtype=torch.int64),
    }
    yc, unsafe = refine._coarse_impl(rows, torch.full((s, 1), 100.0), w, k, dt, 10**6, False)
    inc = torch.diff(torch.cat([torch.zeros(s, 1), yc], 1), dim=1).double().numpy()
    mean, var = 2.0 * k * dt, k * dt
    assert abs(inc.mean() - mean) < 4 * math.sqrt(var / inc.size)
    assert abs(inc.var() / var - 1) < 4 * math.sqrt(2 / inc.size)
    # consecutive windows independent
    r = np.corrcoef(inc[:, :-1].ravel(), inc[:, 1:].ravel())[0, 1]
    assert abs(r) < 4 / math.sqrt(inc.size)
    assert not bool(unsafe.any())  # far from a boundary at 100: nothing to refine


def test_refine_option_is_validated():
    rows = {
        "y": torch.zeros(4),
        "step": torch.zeros(4, dtype=torch.int64),
        "row": torch.arange(4),
        "k1": torch.zeros(4, dtype=torch.int32),
        "k2": torch.arange(4, dtype=torch.int32),
        "alpha": torch.full((4,), 1.5),
    }
    with pytest.raises(ValueError, match="refine"):
        diffuse_1d(
            rows,
            boundary=lambda t, r: torch.ones(4, 1),
            drift=lambda t, r: torch.ones(4, 1),
            n_steps=100,
            dt=1e-3,
            method="euler",
            noise="levy",
            refine=True,
        )
