"""plot_posterior_recovery: estimates/intervals against numpy, coverage, artists, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection

from hssm_torch.plotting import plot_posterior_recovery
from hssm_torch.plotting.recovery import recovery_table

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    import arviz as az


@pytest.fixture
def posterior():
    rng = np.random.default_rng(5)
    draws = {
        "v_Intercept": rng.normal(0.8, 0.1, (2, 200)),
        "a": rng.normal(1.4, 0.05, (2, 200)),
        "v_1|participant_id": rng.normal([-0.5, 0.0, 0.5, 1.0], 0.1, (2, 200, 4)),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        idata = az.from_dict(posterior=draws)
    truth = {"v_Intercept": 0.8, "a": 1.9, "v_1|participant_id": [-0.5, 0.0, 0.5, 1.0]}
    return idata, draws, truth


def test_table_against_numpy(posterior):
    idata, draws, truth = posterior
    table, mass = recovery_table(idata, truth, ci=0.9, point="median")
    assert mass == 0.9 and len(table) == 6
    flat = draws["v_1|participant_id"].reshape(-1, 4)
    rows = table[table["variable"] == "v_1|participant_id"]
    assert list(rows["name"]) == [f"v_1|participant_id[{i}]" for i in range(4)]
    assert np.allclose(rows["estimate"], np.median(flat, axis=0))
    assert np.allclose(rows["lower"], np.quantile(flat, 0.05, axis=0))
    assert np.allclose(rows["upper"], np.quantile(flat, 0.95, axis=0))
    # a = 1.9 is far outside its posterior (1.4 +- 0.05): not covered
    assert not bool(table.set_index("name").loc["a", "covered"])
    assert int(table["covered"].sum()) == 5


def test_plot_artists(posterior):
    idata, _, truth = posterior
    fig = plot_posterior_recovery(idata, truth)
    ax = fig.axes[0]
    assert ax.get_title() == "Parameter recovery: 5/6 true values inside 94% intervals"
    assert ax.get_xlabel() == "true value"
    assert ax.get_ylabel() == "posterior mean (94% interval)"
    # one marker line per variable plus the identity line
    assert [ln.get_label() for ln in ax.lines][-1] == "identity"
    marker_lines = [ln for ln in ax.lines if ln.get_marker() == "o"]
    assert [ln.get_xdata().size for ln in marker_lines] == [1, 1, 4]
    assert sum(isinstance(c, LineCollection) for c in ax.collections) == 3
    identity = ax.lines[-1]
    assert np.allclose(identity.get_xdata(), identity.get_ydata())
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["identity", "v_Intercept", "a", "v_1|participant_id"]


def test_dataframe_of_draws_and_var_names(posterior):
    _, draws, truth = posterior
    frame = pd.DataFrame({"v_Intercept": draws["v_Intercept"].ravel(), "a": draws["a"].ravel()})
    fig = plot_posterior_recovery(frame, truth, var_names=["a"])
    assert fig.axes[0].get_title().startswith("Parameter recovery: 0/1")


def test_summary_table_uses_its_interval_columns():
    summary = pd.DataFrame(
        {"mean": [1.0, 2.0], "hdi_5%": [0.8, 1.5], "hdi_95%": [1.2, 2.5]}, index=["v", "a"]
    )
    table, mass = recovery_table(summary, {"v": 1.1, "a": 3.0})
    assert mass == pytest.approx(0.9)
    assert list(table["covered"]) == [True, False]
    fig = plot_posterior_recovery(summary, {"v": 1.1, "a": 3.0})
    assert fig.axes[0].get_title() == "Parameter recovery: 1/2 true values inside 90% intervals"


def test_errors(posterior):
    idata, _, truth = posterior
    with pytest.raises(ValueError, match="truth: no estimates for 'z'"):
        plot_posterior_recovery(idata, {"z": 0.5})
    with pytest.raises(ValueError, match=r"truth\['v_1\|participant_id'\]: expected 4 value"):
        plot_posterior_recovery(idata, {"v_1|participant_id": [1.0, 2.0]})
    with pytest.raises(ValueError, match="var_names"):
        plot_posterior_recovery(idata, truth, var_names=["t"])
    with pytest.raises(ValueError, match="point: expected one of"):
        plot_posterior_recovery(idata, truth, point="mode")
    with pytest.raises(TypeError, match="estimates: expected an InferenceData"):
        plot_posterior_recovery([1, 2], truth)
