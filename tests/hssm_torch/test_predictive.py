"""Predictive simulation: reproducibility under chunking, agreement with the model's closed
forms and with data simulated from the same parameters, lapses, deadlines, xarray layout."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hssm_torch.likelihoods.ddm_extras import ddm_choice_probability, ddm_log_survival
from hssm_torch.predictive import simulate_predictive, to_inference_group
from simulators.simulate import simulate

F64 = torch.float64
TRUE = (0.6, 1.0, 0.5, 0.3)


def _theta(s, n, values=TRUE):
    return torch.tensor(values).expand(s, n, 4)


def _analytic_cdf(x, theta=TRUE):
    """P(rt <= x) under the DDM from the closed-form survival."""
    th = torch.tensor(theta, dtype=F64).expand(len(x), 4)
    return 1.0 - ddm_log_survival(torch.as_tensor(x, dtype=F64), th).exp().numpy()


def test_chunking_and_callables_do_not_change_draws():
    g = torch.Generator().manual_seed(1)
    th = _theta(7, 13).clone()
    th[..., 0] = torch.rand(7, 13, generator=g) * 2 - 1  # varied drift per (draw, trial)
    p = torch.rand(7, 1, generator=g) * 0.3
    a = simulate_predictive("ddm", th, p_outlier=p, seed=5, chunk_draws=7)
    b = simulate_predictive("ddm", th, p_outlier=p, seed=5, chunk_draws=2)
    c = simulate_predictive(
        "ddm", lambda i, j: th[i:j], n_draws=7, p_outlier=lambda i, j: p[i:j], seed=5, chunk_draws=3
    )
    out = np.full((7, 13, 2), np.nan, dtype=np.float64)
    d = simulate_predictive("ddm", th.numpy(), p_outlier=p.numpy(), seed=5, chunk_draws=4, out=out)
    assert d is out
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(a, d.astype(np.float32))
    e = simulate_predictive("ddm", th, p_outlier=p, seed=6, chunk_draws=7)
    assert (a != e).mean() > 0.5
    assert set(np.unique(a[..., 1])) <= {-1.0, 1.0}
    assert (a[..., 0] > 0).all()


def test_reproduces_choice_proportions_and_rt_quantiles():
    """4000 predictive trials vs the closed forms and vs 4000 trials simulated separately."""
    pred = simulate_predictive("ddm", _theta(100, 40), seed=2, chunk_draws=25).reshape(-1, 2)
    n = pred.shape[0]
    p_up = float(ddm_choice_probability(torch.tensor(TRUE, dtype=F64), torch.tensor(1)))
    se = math.sqrt(p_up * (1 - p_up) / n)
    assert abs((pred[:, 1] == 1).mean() - p_up) < 4 * se
    levels = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    q_pred = np.quantile(pred[:, 0], levels)
    # the analytical CDF at the predictive quantiles is the level, within 4 binomial SEs
    np.testing.assert_allclose(
        _analytic_cdf(q_pred), levels, atol=4 * np.sqrt(levels * (1 - levels) / n).max()
    )
    obs = simulate("ddm", torch.tensor([TRUE]), n, seed=99)
    q_obs = np.quantile(obs.rt[0].numpy(), levels)
    # two-sample: compare on the probability scale (SE of a difference of two ECDFs)
    np.testing.assert_allclose(
        _analytic_cdf(q_pred), _analytic_cdf(q_obs), atol=4 * math.sqrt(2 * 0.25 / n)
    )
    assert (
        abs((pred[:, 1] == 1).mean() - (obs.response[0].numpy() == 1).mean())
        < 4 * math.sqrt(2) * se
    )


def test_trialwise_conditions_are_kept_apart():
    th = _theta(60, 20).clone()
    th[:, 10:, 0] = -1.0  # second condition drifts to the lower bound
    pred = simulate_predictive("ddm", th, seed=3, chunk_draws=16)
    for cond, v in ((slice(0, 10), TRUE[0]), (slice(10, 20), -1.0)):
        want = float(
            ddm_choice_probability(torch.tensor([v, *TRUE[1:]], dtype=F64), torch.tensor(1))
        )
        got = (pred[:, cond, 1] == 1).mean()
        assert abs(got - want) < 4 * math.sqrt(want * (1 - want) / 600)


def test_lapses_follow_p_outlier_and_lapse_range():
    n_draws, n_trials = 40, 50
    p = np.zeros((n_draws, 1))
    p[20:] = 0.4  # half the draws lapse 40% of the time
    pred = simulate_predictive(
        "ddm", _theta(n_draws, n_trials), p_outlier=p, lapse_rt=(12.0, 16.0), seed=4, chunk_draws=15
    )
    # P(DDM rt > 12 s) ~ e^-16 at these parameters: lapses are the rts in [12, 16]
    lapse = (pred[..., 0] >= 12.0) & (pred[..., 0] <= 16.0)
    assert not lapse[:20].any()
    m = 20 * n_trials
    assert abs(lapse[20:].mean() - 0.4) < 4 * math.sqrt(0.24 / m)
    assert abs((pred[20:][lapse[20:]][:, 1] == 1).mean() - 0.5) < 4 * math.sqrt(
        0.25 / lapse[20:].sum()
    )


def test_deadline_omissions_match_the_survival_function():
    deadline = np.full(50, 1.0)
    pred = simulate_predictive("ddm", _theta(60, 50), deadline=deadline, seed=5, chunk_draws=30)
    omitted = pred[..., 0] == -999.0
    s = float(ddm_log_survival(torch.tensor(1.0, dtype=F64), torch.tensor(TRUE, dtype=F64)).exp())
    assert abs(omitted.mean() - s) < 4 * math.sqrt(s * (1 - s) / omitted.size)
    assert (pred[..., 0][~omitted] < 1.0).all()


def test_bad_arguments_raise_with_names():
    th = _theta(4, 3)
    with pytest.raises(ValueError, match="chunk_draws"):
        simulate_predictive("ddm", th, chunk_draws=0)
    with pytest.raises(ValueError, match="n_draws"):
        simulate_predictive("ddm", lambda i, j: th[i:j])
    with pytest.raises(ValueError, match="theta: expected shape"):
        simulate_predictive("ddm", torch.zeros(4, 3, 7))
    with pytest.raises(ValueError, match="deadline"):
        simulate_predictive("ddm", th, deadline=np.ones(5))
    with pytest.raises(ValueError, match="out"):
        simulate_predictive("ddm", th, out=np.empty((4, 3, 3)))
    with pytest.raises(ValueError, match="lapse_rt"):
        simulate_predictive("ddm", th, p_outlier=0.1, lapse_rt=(2.0, 1.0))
    with pytest.raises(ValueError, match="p_outlier"):
        simulate_predictive("ddm", th, p_outlier=np.ones((2, 2)) * 0.1)


def test_inference_group_layout_matches_hssm():
    import arviz as az

    arr = np.arange(6 * 4 * 2, dtype=np.float32).reshape(6, 4, 2)
    ds = to_inference_group(arr, n_chains=2, obs_coords=[10, 11, 12, 13])
    da = ds["rt,response"]
    assert da.dims == ("chain", "draw", "__obs__", "rt,response_dim")
    assert da.shape == (2, 3, 4, 2)
    assert list(ds["rt,response_dim"].values) == ["rt", "response"]
    # draws are chain-major: the 4th flat draw is chain 1, draw 0
    np.testing.assert_array_equal(da.sel(chain=1, draw=0).values, arr[3])
    idata = az.InferenceData(posterior_predictive=ds)
    assert "posterior_predictive" in idata.groups()
    with pytest.raises(ValueError, match="n_chains"):
        to_inference_group(arr, n_chains=4)


def test_posterior_predictive_of_an_hssm_model():
    """Through HSSM's builder: θ and p_outlier per chunk of posterior draws, lapse range."""
    import arviz as az

    from hssm_torch.model import HSSM
    from hssm_torch.predictive import posterior_predictive

    obs = simulate("ddm", torch.tensor([TRUE]), 200, seed=7)
    import pandas as pd

    df = pd.DataFrame(
        {"rt": obs.rt[0].double().numpy(), "response": obs.response[0].double().numpy()}
    )
    m = HSSM(df, "ddm", p_outlier=0.25, lapse={"name": "Uniform", "lower": 12.0, "upper": 16.0})
    names = [s.name for s in m.builder.sites]
    assert names == ["v", "a", "z", "t"]
    post = {n: np.full((2, 20), val) for n, val in zip(names, TRUE)}
    idata = az.from_dict(posterior=post)
    ds = posterior_predictive(m, idata, draws=10, seed=1, chunk_draws=7)
    da = ds["rt,response"]
    assert da.dims == ("chain", "draw", "__obs__", "rt,response_dim")
    assert da.shape == (2, 10, 200, 2)
    x = da.values.reshape(-1, 2)
    lapse = (x[:, 0] >= 12.0) & (x[:, 0] <= 16.0)
    assert abs(lapse.mean() - 0.25) < 4 * math.sqrt(0.25 * 0.75 / len(x))
    p_up = float(ddm_choice_probability(torch.tensor(TRUE, dtype=F64), torch.tensor(1)))
    got = (x[~lapse, 1] == 1).mean()
    assert abs(got - p_up) < 4 * math.sqrt(p_up * (1 - p_up) / (~lapse).sum())
    same = posterior_predictive(m, idata, draws=10, seed=1, chunk_draws=20)
    np.testing.assert_array_equal(same["rt,response"].values, da.values)


@pytest.mark.gpu
def test_predictive_on_cuda_is_chunk_invariant_and_matches_choice_probability():
    th = _theta(50, 40).cuda()
    a = simulate_predictive("ddm", th, p_outlier=0.1, seed=8, chunk_draws=50)
    b = simulate_predictive("ddm", th, p_outlier=0.1, seed=8, chunk_draws=7)
    np.testing.assert_array_equal(a, b)
    p_up = float(ddm_choice_probability(torch.tensor(TRUE, dtype=F64), torch.tensor(1)))
    want = 0.9 * p_up + 0.1 * 0.5
    assert abs((a[..., 1] == 1).mean() - want) < 4 * math.sqrt(want * (1 - want) / 2000)
