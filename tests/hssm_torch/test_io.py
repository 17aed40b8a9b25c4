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
