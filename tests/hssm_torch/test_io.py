"""save -> load round trip: same specification, same posterior, no pickles."""

import json
import warnings

import numpy as np
import pytest
import xarray as xr

from hssm_torch.inference import ConvergenceWarning
from hssm_torch.likelihoods.wfpt import ddm_log_likelihood
from hssm_torch.model import HSSM
from tests.hssm_torch.fit_data import hierarchical_data


@pytest.mark.mcmc
def test_save_load_same_posterior(tmp_path):
    df, _ = hierarchical_data(3, 15, seed=9)
    m = HSSM(
        df,
        "ddm",
        loglik=ddm_log_likelihood,
        include=[
            {
                "name": "v",
                "formula": "v ~ 1 + x + (1|participant_id)",
                "prior": {"x": {"name": "Normal", "mu": 0.0, "sigma": 0.5}},
            },
            {"name": "z", "prior": 0.5},
        ],
        p_outlier={"name": "Beta", "alpha": 1.0, "beta": 30.0},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m.sample(chains=1, draws=15, tune=15, seed=4, progress=False, max_tree_depth=4)
    folder = m.save(tmp_path / "fit")
    assert sorted(p.name for p in folder.iterdir()) == ["data.csv", "spec.json", "traces.nc"]
    spec = json.loads((folder / "spec.json").read_text())
    assert spec["loglik"] == {"callable": "hssm_torch.likelihoods.wfpt:ddm_log_likelihood"}
    assert spec["include"][0]["prior"] == {"x": {"name": "Normal", "mu": 0.0, "sigma": 0.5}}

    back = HSSM.load(folder)
    assert back.var_names == m.var_names
    assert repr(back) == repr(m)
    xr.testing.assert_allclose(back.traces.posterior, m.traces.posterior)
    np.testing.assert_allclose(
        back.log_likelihood().values, m.traces.log_likelihood["rt,response"].values, rtol=1e-9
    )


def test_unsaveable_likelihood_is_named(tmp_path):
    df, _ = hierarchical_data(2, 5, seed=9)
    m = HSSM(df, "ddm", loglik=lambda rt, r, th: ddm_log_likelihood(rt, r, th))
    with pytest.raises(ValueError, match="not importable by name"):
        m.save(tmp_path / "x")


def test_load_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="spec.json"):
        HSSM.load(tmp_path)


def test_new_data_predictions_survive_save_and_load(tmp_path):
    """The reloaded model encodes new data like the saved one (levels, contrasts rebuilt from
    data.csv): the same seeded per-trial parameters (new participant included) and the same
    held-out log-likelihood; prior groups in traces are saved too."""
    import arviz as az
    import pandas as pd

    df, _ = hierarchical_data(3, 12, seed=9)
    df = df.assign(cond=np.tile(["lo", "mid", "hi"], len(df) // 3))
    m = HSSM(
        df,
        "ddm",
        include=[{"name": "v", "formula": "v ~ 1 + x + C(cond) + (1|participant_id)"}],
    )
    rng = np.random.default_rng(0)
    post = {
        "v_Intercept": rng.normal(0.5, 0.1, (1, 8)),
        "v_x": rng.normal(0.8, 0.1, (1, 8)),
        "v_C(cond)": rng.normal(0.0, 0.2, (1, 8, 2)),
        "v_1|participant_id": rng.normal(0.0, 0.3, (1, 8, 3)),
        "v_1|participant_id_sigma": rng.uniform(0.2, 0.4, (1, 8)),
        "a": rng.uniform(0.9, 1.1, (1, 8)),
        "z": rng.uniform(0.45, 0.55, (1, 8)),
        "t": rng.uniform(0.1, 0.2, (1, 8)),
    }
    m.traces = az.from_dict(posterior=post)
    m.sample_prior_predictive(draws=4, seed=1, progress=False)
    new = pd.DataFrame(
        {
            "x": [0.0, 1.0, -1.0],
            "cond": ["hi", "lo", "mid"],
            "participant_id": [df["participant_id"].iloc[0], 99, 99],
            "rt": [0.7, 0.9, 1.3],
            "response": [1.0, -1.0, 1.0],
        }
    )

    def predict(model):
        return (
            model.sample_posterior_predictive(
                data=new, kind="parameters", seed=3, progress=False, inplace=False
            )
            .posterior_predictive["v"]
            .values
        )

    before, ll_before = predict(m), m.log_likelihood(data=new, seed=3)
    back = HSSM.load(m.save(tmp_path / "fit"))
    assert {"prior", "prior_predictive"} <= set(back.traces.groups())
    np.testing.assert_allclose(predict(back), before, rtol=1e-12)
    np.testing.assert_allclose(
        back.log_likelihood(data=new, seed=3).log_likelihood["rt,response"].values,
        ll_before.log_likelihood["rt,response"].values,
        rtol=1e-12,
    )
