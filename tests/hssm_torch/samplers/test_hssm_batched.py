"""``HSSM.sample(sampler="nuts_batched")``: output like Pyro NUTS, parameters recovered."""

import warnings

import arviz as az
import numpy as np
import pytest

from hssm_torch.inference import ConvergenceWarning
from hssm_torch.model import HSSM
from hssm_torch.samplers import run_batched_nuts
from tests.hssm_torch.fit_data import (
    DDM_TRUE,
    assert_inside_hdi,
    ddm_data,
    small_centred_regression,
)


@pytest.mark.slow
@pytest.mark.mcmc
def test_small_ddm_fit_recovers_and_converges():
    m = HSSM(ddm_data(150, seed=21), "ddm")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # r_hat 1.01-1.02 at 200 draws
        idata = m.sample(
            sampler="nuts_batched", chains=2, draws=200, tune=200, seed=2, progress=False
        )
    assert idata.attrs["sampler"] == "batched NUTS"
    assert idata.posterior.sizes == {"chain": 2, "draw": 200}
    assert set(idata.sample_stats.data_vars) == {
        "lp",
        "diverging",
        "step_size",
        "tree_depth",
        "acceptance_rate",
        "n_steps",
    }
    assert idata.log_likelihood["rt,response"].shape == (2, 200, 150)
    assert_inside_hdi(idata, DDM_TRUE)
    assert float(az.rhat(idata).to_array().max()) < 1.02
    assert int(idata.sample_stats["diverging"].sum()) == 0
    # lp is the log joint (unconstrained): it equals minus the potential at the draws
    assert np.isfinite(idata.sample_stats["lp"].values).all()


@pytest.mark.mcmc
def test_run_batched_nuts_matches_run_nuts_contract_and_seed():
    m = small_centred_regression()
    kw = dict(chains=2, draws=20, tune=20, seed=4, progress=False, max_tree_depth=5)
    s1, st1, t1 = run_batched_nuts(m.builder, **kw)
    s2, st2, _ = run_batched_nuts(m.builder, **kw)
    shapes = {s.name: s.shape for s in m.builder.sites}
    assert set(s1) == set(shapes)
    for name, arr in s1.items():
        assert arr.shape == (2, 20) + tuple(shapes[name])
        np.testing.assert_array_equal(arr, s2[name])
    assert set(st1) == {"lp", "diverging", "step_size", "n_steps", "tree_depth", "acceptance_rate"}
    for v in st1.values():
        assert v.shape == (2, 20)
    assert (s1["v_1|participant_id_sigma"] > 0).all()
    assert {"sampling_time", "n_leapfrog_total", "jit_gap"} <= set(t1)
    assert t1["n_leapfrog_total"] > int(st1["n_steps"].sum())  # warm-up steps included
    # one chain, no Laplace start
    s3, st3, _ = run_batched_nuts(
        m.builder, chains=1, draws=5, tune=0, seed=1, progress=False, init_mass=False
    )
    assert s3["v_Intercept"].shape == (1, 5)


@pytest.mark.slow
@pytest.mark.mcmc
def test_ddm_recovery_nuts_batched():
    """As tests/hssm_torch/test_inference.py::test_ddm_recovery_nuts, with the batched sampler."""
    m = HSSM(ddm_data(500, seed=11), "ddm")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        idata = m.sample(
            sampler="nuts_batched", chains=2, draws=1000, tune=1000, seed=11, progress=False
        )
    assert_inside_hdi(idata, DDM_TRUE)
    assert float(az.rhat(idata).to_array().max()) < 1.01
    assert int(idata.sample_stats["diverging"].sum()) == 0
    assert float(az.ess(idata, method="bulk").to_array().min()) > 400
