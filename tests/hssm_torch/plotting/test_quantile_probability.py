"""plot_quantile_probability: numbers against direct numpy computation, artists, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection, PathCollection

from hssm_torch.plotting import plot_quantile_probability
from hssm_torch.plotting.quantile_probability import quantile_probability_table
from tests.hssm_torch.plotting._helpers import fake_trials, make_idata

N = 200
Q = (0.1, 0.3, 0.5, 0.7, 0.9)


@pytest.fixture
def inputs():
    rng = np.random.default_rng(4)
    observed = fake_trials(rng, (N,), p=[0.25, 0.75])
    predicted = fake_trials(rng, (2, 10, N), p=[0.25, 0.75])
    data = pd.DataFrame({"cond": np.repeat(["easy", "hard"], N // 2)})
    return make_idata(observed, predicted), data, observed, predicted


def test_table_matches_numpy(inputs):
    idata, data, observed, predicted = inputs
    table = quantile_probability_table(idata=idata, data=data, cond="cond", n_draws=None, ci=0.9)
    assert len(table) == 2 * 2 * len(Q)
    mask = data["cond"].to_numpy() == "hard"
    rows = table[(table["cond"] == "hard") & (table["response"] == -1)]
    sel = observed[mask]
    rt = sel[sel[:, 1] == -1, 0]
    assert np.allclose(rows["obs_rt"], np.quantile(rt, Q))
    assert np.allclose(rows["obs_proportion"], np.mean(sel[:, 1] == -1))
    assert (rows["n_obs"] == rt.size).all()
    draws = predicted.reshape(-1, N, 2)[:, mask]
    per_draw = np.array([np.quantile(d[d[:, 1] == -1, 0], 0.5) for d in draws])
    median_row = rows[rows["quantile"] == 0.5].iloc[0]
    assert median_row["pred_rt_median"] == pytest.approx(np.median(per_draw))
    assert median_row["pred_rt_lo"] == pytest.approx(np.quantile(per_draw, 0.05))
    assert median_row["pred_rt_hi"] == pytest.approx(np.quantile(per_draw, 0.95))
    props = np.mean(draws[..., 1] == -1, axis=1)
    assert median_row["pred_proportion_median"] == pytest.approx(np.median(props))


def test_interval_artists(inputs):
    idata, data, observed, _ = inputs
    fig = plot_quantile_probability(idata=idata, data=data, cond="cond")
    ax = fig.axes[0]
    observed_lines = [ln for ln in ax.lines if ln.get_marker() == "o"]
    median_lines = [ln for ln in ax.lines if ln.get_linestyle() == "-"]
    assert len(observed_lines) == len(Q) and len(median_lines) == len(Q)
    # each observed line holds one point per (condition, response) cell
    assert all(ln.get_xdata().size == 4 for ln in observed_lines)
    assert sum(isinstance(c, LineCollection) for c in ax.collections) == 2 * len(Q)
    assert ax.get_xlabel() == "response proportion"
    assert ax.get_ylabel() == "RT quantile (s)"
    assert ax.get_title() == "Quantile-probability plot (posterior predictive)"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [f"q = {q:g}" for q in Q] + ["observed"]
    # one condition label per cell
    assert sorted(t.get_text() for t in ax.texts) == ["easy", "easy", "hard", "hard"]
    # the 0.9 quantile markers sit at the observed 0.9 quantiles, sorted by proportion
    top = observed_lines[-1]
    sel = observed[data["cond"].to_numpy() == "easy"]
    expected = np.quantile(sel[sel[:, 1] == 1, 0], 0.9)
    assert np.any(np.isclose(top.get_ydata(), expected))


def test_cloud_artists(inputs):
    idata, data, _, _ = inputs
    fig = plot_quantile_probability(idata=idata, data=data, cond="cond", predicted="cloud")
    ax = fig.axes[0]
    clouds = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(clouds) == len(Q)
    # one point per draw and cell: 20 draws x 2 conditions x 2 responses
    assert all(c.get_offsets().shape == (80, 2) for c in clouds)


def test_single_condition_without_data(inputs):
    idata, *_ = inputs
    fig = plot_quantile_probability(idata=idata, quantiles=(0.2, 0.8))
    ax = fig.axes[0]
    assert len(ax.lines) == 4 and not ax.texts


def test_errors(inputs):
    idata, data, _, _ = inputs
    with pytest.raises(ValueError, match="cond: column 'condition' not in data"):
        plot_quantile_probability(idata=idata, data=data, cond="condition")
    with pytest.raises(ValueError, match=r"quantiles: expected probabilities in \(0, 1\)"):
        plot_quantile_probability(idata=idata, quantiles=(0.5, 1.2))
    with pytest.raises(ValueError, match="predicted: expected one of"):
        plot_quantile_probability(idata=idata, predicted="ribbon")
    with pytest.raises(ValueError, match="no 'prior_predictive' group"):
        plot_quantile_probability(idata=idata, group="prior_predictive")


def test_cell_without_trials_is_not_drawn():
    """A response that never occurs in a condition leaves NaN, without numpy warnings."""
    rng = np.random.default_rng(6)
    observed = fake_trials(rng, (60,))
    observed[:30, 1] = 1.0  # condition "a": only upper responses observed
    predicted = fake_trials(rng, (1, 4, 60))
    predicted[..., :30, 1] = 1.0
    data = pd.DataFrame({"cond": np.repeat(["a", "b"], 30)})
    idata = make_idata(observed, predicted)
    table = quantile_probability_table(idata=idata, data=data, cond="cond")
    empty = table[(table["cond"] == "a") & (table["response"] == -1)]
    assert (empty["obs_proportion"] == 0).all() and empty["obs_rt"].isna().all()
    assert empty["pred_rt_median"].isna().all() and (empty["n_obs"] == 0).all()
    fig = plot_quantile_probability(idata=idata, data=data, cond="cond")
    assert len(fig.axes[0].texts) == 3  # labels only for the three cells with trials


def test_n_draws_reads_a_seeded_subset(inputs):
    idata, data, _, predicted = inputs
    fig = plot_quantile_probability(
        idata=idata, data=data, cond="cond", predicted="cloud", n_draws=7, seed=3
    )
    clouds = [c for c in fig.axes[0].collections if isinstance(c, PathCollection)]
    assert all(c.get_offsets().shape == (7 * 4, 2) for c in clouds)
    # the same seed picks the same draws: the table's medians come from exactly those draws
    picks = np.sort(np.random.default_rng(3).choice(20, size=7, replace=False))
    chosen = predicted.reshape(20, N, 2)[picks]
    table = quantile_probability_table(idata=idata, n_draws=7, seed=3, quantiles=(0.5,))
    upper = table[table["response"] == 1].iloc[0]
    per_draw = [np.quantile(d[d[:, 1] == 1, 0], 0.5) for d in chosen]
    assert upper["pred_rt_median"] == pytest.approx(np.median(per_draw))
    with pytest.raises(ValueError, match="n_draws: expected a positive integer"):
        plot_quantile_probability(idata=idata, n_draws=0)
