"""The coarse-to-fine race engine (:mod:`simulators.refine_race`).

What is checked (two-sample Monte-Carlo comparisons against the blocked engine, which takes
every Euler step; tolerance N_SE = 4.5 standard errors of the difference of two independent
samples; the seeds differ, the engines draw differently anyway):

- race_no_bias_3 (constant bound), race_no_bias_angle_3 (collapsing bound, evaluated per
  window), race_no_bias_2 with z = 0 (every accumulator starts on the reflecting barrier),
  race_no_bias_4 (an even number of accumulators: every window-increment pair is used):
  mean rt, choice proportions and the mid-ECDFs of each response's rt at the pooled
  10/30/50/70/90 % quantiles;
- unfinished trials (max_t shorter than many rts): the omitted fraction agrees and omitted
  trials are reported as the blocked engine reports them (rt -999, response -999);
- the engine's output is identical whatever the slice size, the row order and which other
  rows (other parameter sets, other start steps) are simulated together;
- the skip test matters: with eps = 0.9 and 64-step windows (windows skipped far too
  eagerly) the same comparison fails by far, and the Brownian-bridge fill-in has the exact
  discrete-bridge mean, variance and covariance and ends on the window's end point;
- float64 rows follow the float32 draws; no rows give empty outputs;
- bad arguments raise ValueError naming the argument.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch

import simulators.kinds.race  # noqa: F401 - registers the module in sys.modules
from simulators import engine as engine_mod
from simulators import refine_race
from simulators.engine import race_blocked, time_independent
from simulators.refine_race import _bridge, race_refined
from simulators.rng import trial_keys
from simulators.simulate import simulate

N_SE = 4.5
QS = (0.1, 0.3, 0.5, 0.7, 0.9)
RACE_MOD = sys.modules["simulators.kinds.race"]

RACE3 = {"v0": 1.0, "v1": 0.6, "v2": 0.3, "a": 2.0, "z": 0.5, "t": 0.3}
ANGLE3 = {"v0": 1.2, "v1": 0.8, "v2": 0.4, "a": 1.8, "z": 0.3, "t": 0.2, "theta": 0.6}
RACE2_Z0 = {"v0": 0.8, "v1": 0.5, "a": 1.5, "z": 0.0, "t": 0.1}
RACE4 = {"v0": 1.5, "v1": 1.0, "v2": 0.7, "v3": 0.2, "a": 1.5, "z": 0.2, "t": 0.2}


def _sim(monkeypatch, engine, model, theta, n, seed, **kw):
    """``simulate`` with the race kind running on ``engine``; numpy (rt, response, omitted)."""
    monkeypatch.setattr(RACE_MOD, "race_refined", engine)
    res = simulate(model, theta, n, seed=seed, **kw)
    return res.rt.numpy().ravel(), res.response.numpy().ravel(), res.omitted.numpy().ravel()


def _refined(**opts):
    return lambda rows, **kw: race_refined(rows, **kw, **opts)


def _mid_ecdf(x: np.ndarray, at: float) -> float:
    """Mid-ECDF (ties count half): unbiased for both samples on the discrete dt grid."""
    return 0.5 * (np.mean(x < at) + np.mean(x <= at))


def _compare(a, b, n_choices, label):
    """Largest |z| of the differences between samples a and b (rt, response): mean rt,
    choice proportions and per-response mid-ECDFs at the pooled quantiles."""
    (rt_a, ra), (rt_b, rb) = a, b
    na, nb = len(ra), len(rb)
    se_mean = math.sqrt(rt_a.var() / na + rt_b.var() / nb)
    zs = [(rt_a.mean() - rt_b.mean()) / se_mean]
    for c in range(n_choices):
        pa, pb = np.mean(ra == c), np.mean(rb == c)
        p = (pa * na + pb * nb) / (na + nb)
        zs.append((pa - pb) / math.sqrt(max(p * (1 - p), 1e-12) * (1 / na + 1 / nb)))
        xa, xb = rt_a[ra == c], rt_b[rb == c]
        if min(len(xa), len(xb)) < 500:
            continue
        pooled = np.concatenate([xa, xb])
        for q in QS:
            at = np.quantile(pooled, q)
            fa, fb = _mid_ecdf(xa, at), _mid_ecdf(xb, at)
            f = 0.5 * (fa + fb)
            se = math.sqrt(f * (1 - f) * (1 / len(xa) + 1 / len(xb)))
            zs.append((fa - fb) / se)
    worst = float(np.max(np.abs(zs)))
    print(f"{label}: largest |z| = {worst:.2f} over {len(zs)} statistics")
    return worst


@pytest.mark.parametrize(
    ("model", "theta", "n_choices", "n"),
    [
        ("race_no_bias_3", RACE3, 3, 40_000),
        ("race_no_bias_angle_3", ANGLE3, 3, 40_000),
        ("race_no_bias_2", RACE2_Z0, 2, 40_000),
        ("race_no_bias_4", RACE4, 4, 20_000),
    ],
)
def test_refined_matches_blocked_in_distribution(monkeypatch, model, theta, n_choices, n):
    torch.set_num_threads(1)
    rt_b, r_b, om_b = _sim(monkeypatch, race_blocked, model, theta, n, 11)
    rt_r, r_r, om_r = _sim(monkeypatch, _refined(), model, theta, n, 12)
    assert not om_b.any() and not om_r.any()
    worst = _compare((rt_r, r_r), (rt_b, r_b), n_choices, model)
    assert worst < N_SE, f"{model}: largest |z| {worst:.2f} >= {N_SE}"


def test_unfinished_trials_reported_like_blocked(monkeypatch):
    torch.set_num_threads(1)
    theta = {"v0": 0.4, "v1": 0.3, "v2": 0.2, "a": 2.0, "z": 0.5, "t": 0.3}
    n = 20_000
    kw = {"max_t": 1.0}
    rt_b, r_b, om_b = _sim(monkeypatch, race_blocked, "race_no_bias_3", theta, n, 21, **kw)
    rt_r, r_r, om_r = _sim(monkeypatch, _refined(), "race_no_bias_3", theta, n, 22, **kw)
    pa, pb = om_r.mean(), om_b.mean()
    assert 0.2 < pb < 0.8  # the case does exercise the limit
    p = 0.5 * (pa + pb)
    z = (pa - pb) / math.sqrt(p * (1 - p) * 2 / n)
    assert abs(z) < N_SE, f"omitted fraction {pa:.4f} vs blocked {pb:.4f} (z={z:.1f})"
    for rt, r, om in ((rt_r, r_r, om_r), (rt_b, r_b, om_b)):
        assert np.all(rt[om] == -999.0) and np.all(r[om] == -999)
        assert np.all(rt[~om] <= 1.0 + 0.3 + 1e-6) and np.all(rt[~om] > 0.3)
    # finished trials: same distribution given that they finished
    worst = _compare((rt_r[~om_r], r_r[~om_r]), (rt_b[~om_b], r_b[~om_b]), 3, "max_t=1")
    assert worst < N_SE


def _rows(m_sets=5, per_set=400, seed=3):
    """Rows of several parameter sets of a 3-accumulator race, some starting at later steps."""
    g = torch.Generator().manual_seed(seed)
    m = m_sets * per_set
    set_idx = torch.arange(m) // per_set
    k1, k2 = trial_keys(seed, set_idx, torch.arange(m) % per_set)
    vv = (torch.rand(m_sets, 3, generator=g) * 2.0)[set_idx]
    a = (1.0 + torch.rand(m_sets, generator=g))[set_idx]
    theta = (torch.rand(m_sets, generator=g) * 0.8)[set_idx]
    z = (torch.rand(m_sets, generator=g) * 0.6)[set_idx]
    z[set_idx == 0] = 0.0  # one set starts on the reflecting barrier
    step = torch.where(set_idx == 1, 37, 0).to(torch.int64)  # one set starts later (odd step)
    return {
        "x": (z * a).unsqueeze(-1).expand(m, 3).contiguous(),
        "vv": vv,
        "step": step,
        "k1": k1,
        "k2": k2,
        "row": torch.arange(m),
        "a": a,
        "theta": theta,
    }


def _angle(t, rows):
    return rows["a"].unsqueeze(-1) - t * torch.tan(rows["theta"]).unsqueeze(-1)


_const = time_independent(lambda t, rows: rows["a"].unsqueeze(-1))


def _by_row(out, m):
    end = torch.full((m,), -1, dtype=torch.int64)
    code = torch.full((m,), -1, dtype=torch.int64)
    end[out["row"]] = out["end"]
    code[out["row"]] = out["code"]
    return end, code


@pytest.mark.parametrize("boundary", [_const, _angle], ids=["constant", "angle"])
def test_output_does_not_depend_on_slicing_order_or_company(monkeypatch, boundary):
    torch.set_num_threads(1)
    rows = _rows()
    m = rows["x"].shape[0]
    kw = {"boundary": boundary, "n_steps": 1500, "dt": 1e-3}
    end, code = _by_row(race_refined(rows, **kw), m)
    assert (end > 0).float().mean() > 0.5 and (end < 0).any()  # finished and unfinished
    assert set(code[end > 0].tolist()) == {0, 1, 2}
    # tiny slices (48 rows: many slices per window, the last one partial)
    monkeypatch.setattr(refine_race, "SLICE_ELEMENTS", 48 * 3 * 16)
    end2, code2 = _by_row(race_refined(rows, **kw), m)
    assert torch.equal(end, end2) and torch.equal(code, code2)
    monkeypatch.undo()
    # reversed, shuffled rows
    perm = torch.randperm(m, generator=torch.Generator().manual_seed(5))
    shuffled = {k: v[perm] for k, v in rows.items()}
    end3, code3 = _by_row(race_refined(shuffled, **kw), m)
    assert torch.equal(end, end3) and torch.equal(code, code3)
    # one parameter set alone
    sel = torch.arange(800, 1200)
    alone = {k: v[sel] for k, v in rows.items()}
    end4, code4 = _by_row(race_refined(alone, **kw), m)
    assert torch.equal(end4[sel], end[sel]) and torch.equal(code4[sel], code[sel])


def test_large_eps_is_detected(monkeypatch):
    """eps = 0.9 (windows of 64 steps skipped when their ends are ~0.16 from 0 and the bound)
    misses crossings and delays decisions (mean rt 0.997 vs 0.951 s at 20,000 trials): the
    comparison used above fails by far (measured: largest |z| 11.4 at 40,000 trials)."""
    torch.set_num_threads(1)
    n = 40_000
    rt_b, r_b, _ = _sim(monkeypatch, race_blocked, "race_no_bias_2", RACE2_Z0, n, 31)
    wrong = _refined(eps=0.9, window=64)
    rt_r, r_r, _ = _sim(monkeypatch, wrong, "race_no_bias_2", RACE2_Z0, n, 32)
    worst = _compare((rt_r, r_r), (rt_b, r_b), 2, "eps=0.9")
    assert worst > 2 * N_SE


def test_bridge_fill_in_moments():
    k, dt, m = 16, 1e-3, 100_000
    g = torch.Generator().manual_seed(7)
    z = torch.randn(m, k, generator=g, dtype=torch.float64)
    x0 = torch.full((m, 1), 0.3, dtype=torch.float64)
    xk = torch.full((m, 1), 0.7, dtype=torch.float64)
    j = torch.arange(1, k + 1, dtype=torch.float64)
    p = _bridge(z, x0, xk, (j / k).unsqueeze(0), dt)
    assert torch.equal(p[:, -1], xk[:, 0])
    mean = 0.3 + j * 0.4 / k
    var = dt * j * (k - j) / k
    # mean within 5 standard errors; variance within 5 % (se of a sample variance of
    # 1e5 normals: 0.45 %), covariance of points 4 and 12 within 5 %
    se = torch.sqrt(var / m)[:-1]
    assert torch.all((p.mean(0)[:-1] - mean[:-1]).abs() < 5 * se)
    assert torch.allclose(p.var(0)[:-1], var[:-1], rtol=0.05)
    cov = ((p[:, 3] - p[:, 3].mean()) * (p[:, 11] - p[:, 11].mean())).mean()
    assert abs(float(cov) / (dt * 4 * (k - 12) / k) - 1) < 0.05


def test_float64_rows_and_empty_input():
    """float64 rows give the float32 draws up to rounding (>= 99 % of rows identical;
    measured: all); no rows give empty int64 outputs."""
    rows = _rows()
    m = rows["x"].shape[0]
    kw = {"boundary": _angle, "n_steps": 1500, "dt": 1e-3}
    end, code = _by_row(race_refined(rows, **kw), m)
    rows64 = {k: v.double() if v.is_floating_point() else v for k, v in rows.items()}
    end64, code64 = _by_row(race_refined(rows64, **kw), m)
    same = (end == end64) & (code == code64)
    print(f"float64 vs float32: {int(same.sum())} of {m} rows identical")
    assert same.float().mean() >= 0.99
    empty = race_refined({k: v[:0] for k, v in rows.items()}, **kw)
    assert all(v.shape == (0,) and v.dtype == torch.int64 for v in empty.values())


@pytest.mark.parametrize(
    ("kw", "word"),
    [({"window": 15}, "window"), ({"window": 2}, "window"), ({"eps": 1.5}, "eps")],
)
def test_bad_arguments(kw, word):
    rows = _rows(1, 4)
    with pytest.raises(ValueError, match=word):
        race_refined(rows, boundary=_const, n_steps=100, dt=1e-3, **kw)


class _Eager:
    """Stand-in for ``engine._compiled``'s blocks: the traced functions, run eagerly."""

    def __init__(self, key, impl, what, device_type):
        self.impl = impl

    def __call__(self, sub, *args):
        return self.impl(sub, *args)


@pytest.mark.parametrize("boundary", [_const, _angle], ids=["constant", "angle"])
def test_traced_functions_follow_the_eager_engine(monkeypatch, boundary):
    """The functions handed to torch.compile (column-wise RNG and walk), run eagerly, give
    the eager engine's draws: all codes and ends equal here (their running sum is accumulated
    in float32, eager ``cumsum`` in double, so an end may move by a step when a point lies
    within ~1e-7 of the bound: at most 1 % of rows may differ)."""
    torch.set_num_threads(1)
    rows = _rows()
    m = rows["x"].shape[0]
    kw = {"boundary": boundary, "n_steps": 1500, "dt": 1e-3}
    end, code = _by_row(race_refined(rows, **kw), m)
    monkeypatch.setattr(engine_mod, "_compiled", _Eager)
    end2, code2 = _by_row(race_refined(rows, compile=True, **kw), m)
    same = (end == end2) & (code == code2)
    print(f"traced vs eager: {int(same.sum())} of {m} rows identical")
    assert same.float().mean() >= 0.99


@pytest.mark.slow
def test_compiled_matches_eager(monkeypatch):
    """(slow: compiles two graphs, ~30 s) compiled vs eager on race_no_bias_3: >= 99 % of the
    rts equal with the same seed."""
    torch.set_num_threads(1)
    n = 20_000
    rt_e, r_e, _ = _sim(monkeypatch, _refined(compile=False), "race_no_bias_3", RACE3, n, 41)
    rt_c, r_c, _ = _sim(monkeypatch, _refined(compile=True), "race_no_bias_3", RACE3, n, 41)
    same = (rt_e == rt_c) & (r_e == r_c)
    print(f"compiled vs eager: {same.mean():.4%} identical")
    assert same.mean() >= 0.99
