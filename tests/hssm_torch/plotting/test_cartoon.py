"""plot_model_cartoon and its Euler path simulator: artists, geometry, closed forms."""

from __future__ import annotations

import math
import sys
import types

import numpy as np
import pytest
import torch
from matplotlib.patches import StepPatch

from hssm_torch.plotting import plot_model_cartoon
from hssm_torch.plotting.cartoon import simulate_paths

DDM = {"v": 1.0, "a": 1.0, "z": 0.5, "t": 0.3}


@pytest.fixture
def no_library_simulator(monkeypatch):
    """Force the fallback histogram path (whether or not simulators.simulate exists yet)."""
    monkeypatch.setitem(sys.modules, "simulators.simulate", None)


def test_ddm_cartoon_artists(no_library_simulator):
    fig = plot_model_cartoon("ddm", DDM, n_paths=5, n_samples=300, max_t=2.0)
    ax = fig.axes[0]
    labels = [ln.get_label() for ln in ax.lines]
    assert labels[:3] == ["boundaries ±b(t)", "_lower boundary", "drift (noise-free path)"]
    assert labels[3:8] == ["_sample path"] * 5
    assert labels[8] == "start point (2z-1)a = 0"
    assert len(labels) == 9
    steps = [p for p in ax.patches if isinstance(p, StepPatch)]
    assert len(steps) == 2
    assert len(ax.patches) == 3  # the two histograms and the non-decision-time band
    assert ax.get_xlabel() == "time since stimulus onset (s)"
    assert ax.get_ylabel() == "evidence"
    assert ax.get_title() == "ddm: v=1, a=1, z=0.5, t=0.3"
    assert ax.get_xlim() == (0.0, 2.0)
    bottom, top = ax.get_ylim()
    assert bottom == pytest.approx(-top)
    # the boundaries are flat at +-a and start at t
    upper, lower = ax.lines[0], ax.lines[1]
    assert upper.get_xdata()[0] == pytest.approx(0.3)
    assert np.allclose(upper.get_ydata(), 1.0) and np.allclose(lower.get_ydata(), -1.0)
    # the histograms sit outside the boundaries and their areas follow the choice shares
    up, low = steps[0].get_data(), steps[1].get_data()
    assert np.all(up.baseline == 1.0) and np.all(up.values >= 1.0)
    assert np.all(low.baseline == -1.0) and np.all(low.values <= -1.0)
    area_up = np.sum((up.values - 1.0) * np.diff(up.edges))
    area_low = np.sum((-1.0 - low.values) * np.diff(low.edges))
    assert area_up > 3 * area_low  # v = 1 favours the upper boundary (p about 0.88)


def test_angle_boundary_collapses_and_stops_at_zero(no_library_simulator):
    theta = {"v": 0.0, "a": 1.0, "z": 0.5, "t": 0.2, "theta": 0.8}
    fig = plot_model_cartoon("angle", theta, n_paths=3, n_samples=200, max_t=3.0)
    upper = fig.axes[0].lines[0]
    x, y = upper.get_xdata(), upper.get_ydata()
    assert np.allclose(y, 1.0 - (x - 0.2) * math.tan(0.8))
    assert y[-2] > 0 >= y[-1]  # drawn up to the step where the height reaches zero
    assert fig.axes[0].lines[1].get_ydata() == pytest.approx(-y)


def test_paths_end_on_the_boundary(no_library_simulator):
    fig = plot_model_cartoon(
        "weibull",
        {"v": 0.5, "a": 1.2, "z": 0.4, "t": 0.25, "alpha": 2.0, "beta": 1.0},
        n_paths=4,
        n_samples=100,
    )
    ax = fig.axes[0]
    paths = ax.lines[3:7]
    for path in paths:
        y = path.get_ydata()
        assert y[0] == pytest.approx((2 * 0.4 - 1) * 1.2)
        end = y[np.isfinite(y)][-1]
        t_end = path.get_xdata()[np.isfinite(y)][-1] - 0.25
        bound = 1.2 * math.exp(-((t_end / 1.0) ** 2.0))
        assert abs(end) == pytest.approx(bound, rel=1e-6)


def test_ddm_paths_match_closed_forms():
    """Euler DDM against P(upper) and E[decision time] of the Wiener process (bounds +-a)."""
    torch.set_num_threads(1)
    v, a = 1.0, 1.0
    rt, resp, _ = simulate_paths("ddm", {"v": v, "a": a, "z": 0.5, "t": 0.3}, 4000, seed=3)
    assert np.all(np.isin(resp, (-1, 1)))
    p_upper = (1 - math.exp(-2 * v * a)) / (1 - math.exp(-4 * v * a))  # start a above the lower
    mean_dt = a / v * math.tanh(a * v)
    # tolerances: 4 Monte-Carlo SEs (p: 0.005, mean: 0.01) plus the Euler overshoot bias
    assert np.mean(resp == 1) == pytest.approx(p_upper, abs=0.025)
    assert np.mean(rt - 0.3) == pytest.approx(mean_dt, abs=0.05)


def test_variability_and_ornstein_and_levy_run():
    rt, resp, paths = simulate_paths(
        "full_ddm", {**DDM, "sz": 0.2, "sv": 0.5, "st": 0.1}, 200, record=2, max_t=5
    )
    assert np.nanmin(rt) >= 0.25 and paths.shape[0] == 2
    # a strong leak (g < 0) with v = 0 keeps the particle near 0: slower than g = 0
    slow, _, _ = simulate_paths("ornstein", {**DDM, "v": 0.0, "g": -3.0}, 300, max_t=20)
    fast, _, _ = simulate_paths("ornstein", {**DDM, "v": 0.0, "g": 0.0}, 300, max_t=20)
    assert np.nanmean(slow) > np.nanmean(fast)
    rt, resp, _ = simulate_paths("levy", {**DDM, "alpha": 1.5}, 200, max_t=10)
    assert np.all(np.isin(resp, (-1, 1)))


def test_uses_library_simulator_when_present(monkeypatch):
    calls = {}

    def fake_simulate(model, theta, n_samples, *, dt, max_t, seed):
        calls.update(model=model.name, n=n_samples, theta=theta)
        rt = torch.full((1, n_samples), 0.5)
        response = torch.ones(1, n_samples)
        return types.SimpleNamespace(rt=rt, response=response)

    module = types.ModuleType("simulators.simulate")
    module.simulate = fake_simulate
    monkeypatch.setitem(sys.modules, "simulators.simulate", module)
    fig = plot_model_cartoon("ddm", DDM, n_paths=1, n_samples=50, max_t=1.0, bins=10)
    assert calls["model"] == "ddm" and calls["n"] == 50 and calls["theta"]["a"] == 1.0
    up, low = [p.get_data() for p in fig.axes[0].patches if isinstance(p, StepPatch)]
    assert np.count_nonzero(up.values > up.baseline) == 1  # every RT is 0.5 s
    assert np.all(low.values == low.baseline)


def test_draws_into_given_axes(no_library_simulator):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    assert plot_model_cartoon("ddm", DDM, n_paths=0, n_samples=50, max_t=1.0, ax=ax) is fig
    assert len(ax.lines) == 4


def test_errors():
    with pytest.raises(ValueError, match="simulator kinds.*model 'lba2' has simulator kind 'lba'"):
        plot_model_cartoon("lba2", {})
    with pytest.raises(ValueError, match=r"theta: missing parameter\(s\) \['t'\]"):
        plot_model_cartoon("ddm", {"v": 1.0, "a": 1.0, "z": 0.5})
    with pytest.raises(ValueError, match=r"theta: unknown parameter\(s\) \['theta'\]"):
        plot_model_cartoon("ddm", {**DDM, "theta": 0.3})
    with pytest.raises(ValueError, match=r"theta\['a'\] = -1.0 is outside the support"):
        plot_model_cartoon("ddm", {**DDM, "a": -1.0})
    with pytest.raises(ValueError, match="max_t: expected a value above t"):
        plot_model_cartoon("ddm", DDM, max_t=0.2)
    with pytest.raises(ValueError, match="unknown model 'dmd'"):
        plot_model_cartoon("dmd", DDM)


def test_ornstein_paths_match_ou_moments():
    """With far-away bounds the recorded paths are an OU process: check x(1)'s mean and var."""
    v, g, n = 1.0, -2.0, 3000
    _, _, paths = simulate_paths(
        "ornstein", {"v": v, "a": 40.0, "z": 0.5, "t": 0.3, "g": g}, n, record=n, max_t=1.0
    )
    x = paths[:, -1]
    mean = (v / g) * math.exp(g) - v / g  # start at 0
    var = (math.exp(2 * g) - 1) / (2 * g)
    # 4 Monte-Carlo SEs: mean sqrt(var/n) = 0.009, variance var*sqrt(2/n) = 0.0063
    assert x.mean() == pytest.approx(mean, abs=0.04)
    assert x.var() == pytest.approx(var, abs=0.03)


def test_histograms_from_the_library_simulator():
    """With simulators.simulate installed the histogram areas match the DDM's P(upper)."""
    pytest.importorskip("simulators.simulate")
    fig = plot_model_cartoon("ddm", DDM, n_paths=0, n_samples=2000, max_t=6.0, bins=60)
    up, low = [p.get_data() for p in fig.axes[0].patches if isinstance(p, StepPatch)]
    area_up = np.sum((up.values - up.baseline) * np.diff(up.edges))
    area_low = np.sum((low.baseline - low.values) * np.diff(low.edges))
    p_upper = (1 - math.exp(-2.0)) / (1 - math.exp(-4.0))
    # the areas are scaled alike, so their ratio is P(upper) / P(lower); 2000 trials: SE 0.007
    assert area_up / (area_up + area_low) == pytest.approx(p_upper, abs=0.03)
