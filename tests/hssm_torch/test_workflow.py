"""HSSM with deadlines / missing RTs, and posterior predictive sampling through the class."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from hssm_torch import HSSM
from hssm_torch.censoring import CensoredSSMDistribution
from simulators import simulate_data

TRUTH = {"v": 0.6, "a": 1.0, "z": 0.5, "t": 0.3}


@pytest.fixture(scope="module")
def deadline_data() -> pd.DataFrame:
    df = simulate_data("ddm", TRUTH, 1500, seed=11)
    df["deadline"] = 1.0
    late = df["rt"] >= df["deadline"]
    df.loc[late, "rt"] = -999.0
    return df


def _map_v(model: HSSM) -> float:
    est = model.find_map(steps=600, lr=0.03, seed=1)
    return float(np.asarray(est["v"]))


def test_deadline_model_uses_the_censored_likelihood(deadline_data):
    n_late = int((deadline_data["rt"] == -999.0).sum())
    assert 300 < n_late < 1200  # the deadline censors a real share of the trials
    m = HSSM(deadline_data, model="ddm", deadline=True)
    vals = {s.name: torch.as_tensor(TRUTH[s.name], dtype=torch.float64) for s in m.builder.sites}
    dist = m.builder.distribution(m.builder.theta(vals), None)
    assert isinstance(dist, CensoredSSMDistribution)
    lp = dist.log_prob(m.builder.obs)
    assert lp.shape == (len(deadline_data),) and torch.isfinite(lp).all()
    # censored rows contribute log P(rt > deadline) < 0, observed rows their density
    late = torch.tensor((deadline_data["rt"] == -999.0).to_numpy().copy())
    assert (lp[late] < 0).all()


def test_deadline_aware_map_is_unbiased_where_dropping_is_not(deadline_data):
    aware = _map_v(HSSM(deadline_data, model="ddm", deadline=True))
    kept = deadline_data[deadline_data["rt"] != -999.0].drop(columns="deadline")
    dropped = _map_v(HSSM(kept, model="ddm"))
    assert abs(aware - TRUTH["v"]) < 0.15, aware
    assert dropped - TRUTH["v"] > 0.3, dropped  # dropping slow trials inflates the drift


def test_sentinel_rows_without_missing_data_are_refused(deadline_data):
    with pytest.raises(ValueError, match="rt"):
        HSSM(deadline_data.drop(columns="deadline"), model="ddm")


def test_posterior_predictive_group_through_the_class():
    df = simulate_data("ddm", TRUTH, 200, seed=3)
    m = HSSM(df, model="ddm")
    idata = m.vi(steps=200, draws=40, seed=0, progress=False)
    out = m.sample_posterior_predictive(idata, seed=0, progress=False)
    pp = out.posterior_predictive["rt,response"]
    assert pp.dims == ("chain", "draw", "__obs__", "rt,response_dim")
    assert pp.shape == (1, 40, 200, 2)
    resp = pp.values[..., 1]
    assert set(np.unique(resp)) <= {-1.0, 1.0}
    # predicted P(upper) close to the observed one (200 trials x 40 draws; loose MC bound)
    assert abs((resp == 1).mean() - (df["response"] == 1).mean()) < 0.08
