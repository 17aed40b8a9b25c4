"""plot_predictive: artists, densities against independent histograms, input errors."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.patches import StepPatch

from hssm_torch.plotting import plot_predictive
from tests.hssm_torch.plotting._helpers import fake_trials, make_idata

N = 300


@pytest.fixture
def two_choice():
    rng = np.random.default_rng(1)
    observed = fake_trials(rng, (N,), p=[0.3, 0.7])
    predicted = fake_trials(rng, (2, 15, N), p=[0.3, 0.7])
    data = pd.DataFrame(
        {"rt": observed[:, 0], "response": observed[:, 1], "cond": np.repeat(["a", "b", "c"], 100)}
    )
    return make_idata(observed, predicted), data


def _steps(ax):
    return [p for p in ax.patches if isinstance(p, StepPatch)]


def _area(values, edges):
    return float(np.sum(values * np.diff(edges)))


def test_hist_artists_and_labels(two_choice):
    idata, _ = two_choice
    fig = plot_predictive(idata=idata, bins=30)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    steps = _steps(ax)
    assert len(steps) == 3  # predicted band, predicted median, observed
    assert ax.get_xlabel() == "signed RT: rt × response (s)"
    assert ax.get_ylabel() == "density"
    assert fig.get_suptitle() == "Posterior predictive check"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["predicted 94% interval", "predicted median", "observed"]


def test_hist_observed_matches_numpy_histogram(two_choice):
    idata, _ = two_choice
    observed = idata.observed_data["rt,response"].values
    fig = plot_predictive(idata=idata, bins=30)
    obs = [p for p in _steps(fig.axes[0]) if p.get_label() == "observed"][0].get_data()
    values, edges = obs.values, obs.edges
    # signed layout: 30 mirrored lower bins, one empty gap bin (-rt_min, rt_min), 30 upper bins
    assert values.size == 61 and edges.size == 62
    rt_edges = edges[31:]
    assert np.allclose(edges[:31], -rt_edges[::-1])
    assert values[30] == 0.0
    width = np.diff(rt_edges)
    upper = np.histogram(observed[observed[:, 1] == 1, 0], bins=rt_edges)[0]
    lower = np.histogram(observed[observed[:, 1] == -1, 0], bins=rt_edges)[0]
    assert np.allclose(values[31:], upper / (N * width))
    assert np.allclose(values[:30][::-1], lower / (N * width))
    # every observed RT lies in the plotted range: the defective densities integrate to 1
    assert _area(values, edges) == pytest.approx(1.0)
    upper_share = float(np.mean(observed[:, 1] == 1))
    assert _area(values[31:], edges[31:]) == pytest.approx(upper_share)


def test_band_contains_median(two_choice):
    idata, _ = two_choice
    fig = plot_predictive(idata=idata, bins=20, ci=0.8)
    by_label = {p.get_label(): p.get_data() for p in _steps(fig.axes[0])}
    band, median = by_label["predicted 80% interval"], by_label["predicted median"]
    assert np.all(band.baseline <= median.values + 1e-12)
    assert np.all(median.values <= band.values + 1e-12)
    assert np.any(band.values > band.baseline)


def test_single_draw_has_no_band(two_choice):
    idata, _ = two_choice
    fig = plot_predictive(idata=idata, n_draws=1)
    assert [p.get_label() for p in _steps(fig.axes[0])] == ["predicted median", "observed"]


def test_kde_artists_and_area(two_choice):
    idata, _ = two_choice
    fig = plot_predictive(idata=idata, kind="kde")
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.lines] == ["predicted median", "observed"]
    assert sum(isinstance(c, PolyCollection) for c in ax.collections) == 1
    x, y = ax.lines[1].get_data()
    ok = np.isfinite(x)
    left, right = ok & (x < 0), ok & (x > 0)
    area = np.trapezoid(y[left], x[left]) + np.trapezoid(y[right], x[right])
    assert area == pytest.approx(1.0, abs=0.02)


def test_facets_by_condition(two_choice):
    idata, data = two_choice
    fig = plot_predictive(idata=idata, data=data, col="cond", col_wrap=2)
    assert len(fig.axes) == 3  # the fourth cell of the 2x2 grid is removed
    assert [ax.get_title() for ax in fig.axes] == ["cond = a", "cond = b", "cond = c"]
    for ax in fig.axes:
        obs = [p for p in _steps(ax) if p.get_label() == "observed"][0].get_data()
        assert _area(obs.values, obs.edges) == pytest.approx(1.0)
    # the panel above the removed cell keeps its x tick labels and the lowest its x label
    assert fig.axes[1].xaxis.get_tick_params()["labelbottom"]
    assert fig.axes[0].get_xlabel() == ""
    assert fig.axes[2].get_xlabel() != ""


def test_model_object_supplies_traces_and_data(two_choice):
    idata, data = two_choice
    model = SimpleNamespace(traces=idata, data=data)
    fig = plot_predictive(model, col="cond")
    assert len(fig.axes) == 3


def test_n_choice_panels_per_response():
    rng = np.random.default_rng(2)
    observed = fake_trials(rng, (240,), choices=(0, 1, 2))
    predicted = fake_trials(rng, (1, 10, 240), choices=(0, 1, 2))
    data = pd.DataFrame({"cond": np.tile(["x", "y"], 120)})
    fig = plot_predictive(idata=make_idata(observed, predicted), data=data, col="cond")
    assert len(fig.axes) == 6
    assert fig.axes[0].get_title() == "response 0, cond = x"
    assert fig.axes[5].get_title() == "response 2, cond = y"
    assert fig.axes[0].get_xlabel() == "" and fig.axes[4].get_xlabel() == "RT (s)"
    for j, level in enumerate(["x", "y"]):
        mask = data["cond"].to_numpy() == level
        for i, c in enumerate((0, 1, 2)):
            ax = fig.axes[i * 2 + j]
            obs = [p for p in _steps(ax) if p.get_label() == "observed"][0].get_data()
            share = np.mean(observed[mask, 1] == c)
            assert _area(obs.values, obs.edges) == pytest.approx(share)


def test_missing_rts_are_left_out(two_choice):
    idata, _ = two_choice
    observed = idata.observed_data["rt,response"].values.copy()
    observed[:30, 0] = -999.0
    predicted = idata.posterior_predictive["rt,response"].values
    fig = plot_predictive(idata=make_idata(observed, predicted))
    obs = [p for p in _steps(fig.axes[0]) if p.get_label() == "observed"][0].get_data()
    assert obs.edges.min() > -10  # the -999 code does not stretch the axis
    assert _area(obs.values, obs.edges) == pytest.approx(1.0)


def test_prior_predictive_title():
    rng = np.random.default_rng(3)
    idata = make_idata(fake_trials(rng, (50,)), fake_trials(rng, (1, 5, 50)), "prior_predictive")
    fig = plot_predictive(idata=idata, group="prior_predictive")
    assert fig.get_suptitle() == "Prior predictive check"


def test_draws_into_given_axes(two_choice):
    import matplotlib.pyplot as plt

    idata, _ = two_choice
    fig, ax = plt.subplots()
    assert plot_predictive(idata=idata, ax=ax) is fig
    assert len(_steps(ax)) == 3


def test_errors_name_the_problem(two_choice):
    idata, data = two_choice
    with pytest.raises(ValueError, match="no 'prior_predictive' group"):
        plot_predictive(idata=idata, group="prior_predictive")
    with pytest.raises(ValueError, match="column 'nope' not in data"):
        plot_predictive(idata=idata, data=data, col="nope")
    with pytest.raises(ValueError, match="col='cond': needs the model's data frame"):
        plot_predictive(idata=idata, col="cond")
    with pytest.raises(ValueError, match="kind: expected one of"):
        plot_predictive(idata=idata, kind="violin")
    with pytest.raises(ValueError, match="data: 10 rows"):
        plot_predictive(idata=idata, data=data.iloc[:10])
    with pytest.raises(ValueError, match="ci: expected a probability"):
        plot_predictive(idata=idata, ci=1.5)
    with pytest.raises(ValueError, match="ax: this plot needs 3 panels"):
        import matplotlib.pyplot as plt

        plot_predictive(idata=idata, data=data, col="cond", ax=plt.subplots()[1])
    with pytest.raises(ValueError, match="idata: no InferenceData"):
        plot_predictive(data=data)


def test_bin_edges_from_zero_join_the_two_sides(two_choice):
    idata, _ = two_choice
    edges = np.linspace(0.0, 3.0, 31)
    fig = plot_predictive(idata=idata, bins=edges)
    obs = [p for p in _steps(fig.axes[0]) if p.get_label() == "observed"][0].get_data()
    assert obs.values.size == 60  # no gap bin when the edges start at 0
    assert np.allclose(obs.edges, np.concatenate([-edges[::-1], edges[1:]]))
    with pytest.raises(ValueError, match="bins: expected non-negative, strictly increasing"):
        plot_predictive(idata=idata, bins=np.array([0.5, 0.2, 1.0]))


def test_model_choices_give_a_panel_to_unobserved_responses():
    rng = np.random.default_rng(7)
    observed = fake_trials(rng, (90,), choices=(0, 1))
    predicted = fake_trials(rng, (1, 5, 90), choices=(0, 1))
    idata = make_idata(observed, predicted)
    model = SimpleNamespace(traces=idata, data=pd.DataFrame(index=range(90)), choices=(0, 1, 2))
    fig = plot_predictive(model, kind="kde")
    assert [ax.get_title() for ax in fig.axes] == ["response 0", "response 1", "response 2"]
    x, y = fig.axes[2].lines[1].get_data()  # observed curve of the never-seen response
    assert np.all(y == 0)


def test_n_choice_without_levels_is_one_row():
    rng = np.random.default_rng(8)
    observed = fake_trials(rng, (90,), choices=(0, 1, 2))
    predicted = fake_trials(rng, (1, 5, 90), choices=(0, 1, 2))
    fig = plot_predictive(idata=make_idata(observed, predicted))
    rows = {ax.get_subplotspec().rowspan.start for ax in fig.axes}
    assert rows == {0} and len(fig.axes) == 3
    assert [ax.get_ylabel() for ax in fig.axes] == ["density", "", ""]
    assert all(ax.get_xlabel() == "RT (s)" for ax in fig.axes)
