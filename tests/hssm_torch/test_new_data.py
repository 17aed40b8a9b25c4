"""Prior predictive, predictions on new data (new covariates, new participants) and the
held-out log-likelihood, against closed forms, independent simulation and hand computation.

Posteriors are built by hand (InferenceData with known values): no MCMC here.
"""

from __future__ import annotations

import math
import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest
import torch

from hssm_torch.likelihoods.ddm_extras import ddm_choice_probability, ddm_log_survival
from hssm_torch.likelihoods.wfpt import ddm_log_likelihood
from hssm_torch.model import HSSM
from simulators.simulate import simulate

F64 = torch.float64
TRUE = (0.6, 1.0, 0.5, 0.3)


def _p_upper(theta) -> float:
    return float(ddm_choice_probability(torch.tensor(theta, dtype=F64), torch.tensor(1)))


def _ks_stat(a: np.ndarray, b: np.ndarray) -> float:
    grid = np.sort(np.concatenate([a, b]))
    fa = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    fb = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return float(np.abs(fa - fb).max())


def _ks_bound(n: int, m: int) -> float:
    """Two-sample KS critical value at alpha = 0.001."""
    return 1.95 * math.sqrt((n + m) / (n * m))


def _ddm_df(n=40, seed=7, theta=TRUE):
    res = simulate("ddm", torch.tensor([theta]), n, seed=seed, dtype=F64)
    return pd.DataFrame({"rt": res.rt[0].numpy(), "response": res.response[0].numpy()})


def _hier_df(n_sub=3, n_trials=20, seed=0, levels=("a", "b", "c")):
    rng = np.random.default_rng(seed)
    n = n_sub * n_trials
    res = simulate("ddm", torch.tensor([TRUE]), n, seed=seed + 1, dtype=F64)
    return pd.DataFrame(
        {
            "rt": res.rt[0].numpy(),
            "response": res.response[0].numpy(),
            "x": rng.normal(size=n),
            "c": np.tile(list(levels), n // len(levels) + 1)[:n],
            "participant_id": np.repeat(np.arange(n_sub), n_trials),
        }
    )


def _const_posterior(values: dict, chains=2, draws=50) -> az.InferenceData:
    post = {}
    for k, v in values.items():
        arr = np.asarray(v, dtype=float)
        post[k] = np.broadcast_to(arr, (chains, draws, *arr.shape)).copy()
    return az.from_dict(posterior=post)


# ----------------------------------------------------------------------------- prior


def test_prior_predictive_matches_closed_form_and_independent_simulation():
    """Narrow prior on a, the rest fixed: 300 draws x 20 trials vs the DDM's choice
    probability (4 s.e.), its closed-form rt CDF (KS) and 6000 trials simulated directly
    (two-sample KS per response, alpha 0.001)."""
    m = HSSM(
        _ddm_df(20),
        "ddm",
        include=[
            {"name": "v", "prior": TRUE[0]},
            {"name": "a", "prior": {"name": "Normal", "mu": TRUE[1], "sigma": 1e-4}},
            {"name": "z", "prior": TRUE[2]},
            {"name": "t", "prior": TRUE[3]},
        ],
    )
    pri = m.sample_prior_predictive(draws=300, seed=3, progress=False)
    assert {"prior", "prior_predictive", "observed_data"} <= set(pri.groups())
    assert pri.prior["a"].shape == (1, 300)
    assert abs(float(pri.prior["a"].mean()) - TRUE[1]) < 1e-4
    da = pri.prior_predictive["rt,response"]
    assert da.dims == ("chain", "draw", "__obs__", "rt,response_dim")
    assert da.shape == (1, 300, 20, 2)
    x = da.values.reshape(-1, 2)
    p_up = _p_upper(TRUE)
    assert abs((x[:, 1] == 1).mean() - p_up) < 4 * math.sqrt(p_up * (1 - p_up) / len(x))
    # the rt distribution against the closed-form CDF (one-sample KS, alpha 0.001)
    rts = np.sort(x[:, 0])
    th = torch.tensor(TRUE, dtype=F64).expand(len(rts), 4)
    cdf = 1.0 - ddm_log_survival(torch.tensor(rts, dtype=F64), th).exp().numpy()
    i = np.arange(1, len(rts) + 1)
    ks = max((i / len(rts) - cdf).max(), (cdf - (i - 1) / len(rts)).max())
    assert ks < 1.95 / math.sqrt(len(rts))
    ref = simulate("ddm", torch.tensor([TRUE]), len(x), seed=99)
    for r in (1, -1):
        a, b = x[x[:, 1] == r, 0], ref.rt[0].numpy()[ref.response[0].numpy() == r]
        assert _ks_stat(a, b) < _ks_bound(len(a), len(b))
    # the chunking does not change the draws
    again = m.sample_prior_predictive(draws=300, seed=3, chunk_draws=7, progress=False)
    np.testing.assert_array_equal(again.prior_predictive["rt,response"].values, da.values)


def test_prior_predictive_lapses_and_deadline():
    """p_outlier ~ narrow prior at 0.2, lapses Uniform(12, 16); deadline 0.9 s: omissions at
    the rate (1 - p) P(rt >= 0.9) + p (lapses are all past it), within 4 s.e."""
    df = _ddm_df(30).assign(deadline=0.9)
    df.loc[df.rt >= 0.9, "rt"] = -999.0
    fixed = [{"name": n, "prior": v} for n, v in zip(("v", "a", "z", "t"), TRUE)]
    m = HSSM(
        df,
        "ddm",
        include=fixed,
        p_outlier={"name": "Uniform", "lower": 0.1999, "upper": 0.2001},
        lapse={"name": "Uniform", "lower": 12.0, "upper": 16.0},
        deadline=True,
    )
    pri = m.sample_prior_predictive(draws=200, seed=4, progress=False)
    assert pri.prior["p_outlier"].shape == (1, 200)
    x = pri.prior_predictive["rt,response"].values.reshape(-1, 2)
    surv = float(
        ddm_log_survival(torch.tensor(0.9, dtype=F64), torch.tensor(TRUE, dtype=F64)).exp()
    )
    want = 0.8 * surv + 0.2
    got = (x[:, 0] == -999.0).mean()
    assert abs(got - want) < 4 * math.sqrt(want * (1 - want) / len(x))
    assert (x[x[:, 0] != -999.0, 0] < 0.9).all()


def test_prior_draws_every_site_and_theta_follows_the_formula():
    """Prior means within 4 s.e. of the priors; kind='parameters' gives v = Intercept + slope x
    + group effect of the prior draw, exactly."""
    df = _hier_df()
    m = HSSM(
        df,
        "ddm",
        include=[
            {
                "name": "v",
                "formula": "v ~ 1 + x + (1|participant_id)",
                "prior": {
                    "Intercept": {"name": "Normal", "mu": 0.3, "sigma": 0.5},
                    "x": {"name": "Normal", "mu": -0.2, "sigma": 0.1},
                    "1|participant_id_sigma": {"name": "HalfNormal", "sigma": 0.4},
                },
            }
        ],
    )
    pri = m.sample_prior_predictive(draws=2000, seed=5, kind="parameters", progress=False)
    p = pri.prior
    assert abs(float(p["v_Intercept"].mean()) - 0.3) < 4 * 0.5 / math.sqrt(2000)
    assert abs(float(p["v_x"].mean()) + 0.2) < 4 * 0.1 / math.sqrt(2000)
    half_normal_mean = 0.4 * math.sqrt(2 / math.pi)
    sd = 0.4 * math.sqrt(1 - 2 / math.pi)
    assert abs(float(p["v_1|participant_id_sigma"].mean()) - half_normal_mean) < 4 * sd / math.sqrt(
        2000
    )
    # group effects / sigma are standard normal
    z = (p["v_1|participant_id"] / p["v_1|participant_id_sigma"]).values.ravel()
    assert abs(z.std() - 1.0) < 4 / math.sqrt(2 * z.size)
    v = pri.prior_predictive["v"].values[0]  # (draws, N)
    eff = p["v_1|participant_id"].values[0]  # (draws, levels)
    want = (
        p["v_Intercept"].values[0][:, None]
        + p["v_x"].values[0][:, None] * df["x"].to_numpy()[None]
        + eff[:, df["participant_id"].to_numpy()]
    )
    np.testing.assert_allclose(v, want, rtol=1e-12, atol=1e-14)
    assert set(pri.prior_predictive.data_vars) == {"v", "a", "z", "t"}


def test_prior_predictive_merges_into_traces():
    m = HSSM(_ddm_df(10), "ddm")
    m.traces = _const_posterior(dict(zip(("v", "a", "z", "t"), TRUE)), chains=1, draws=3)
    out = m.sample_prior_predictive(draws=5, seed=1, progress=False)
    assert {"posterior", "prior", "prior_predictive"} <= set(m.traces.groups())
    np.testing.assert_array_equal(
        m.traces.prior_predictive["rt,response"].values, out.prior_predictive["rt,response"].values
    )
    with pytest.raises(ValueError, match="draws"):
        m.sample_prior_predictive(draws=0, progress=False)


# ----------------------------------------------------------------------------- new data


EFFECTS = [0.2, -0.2, 0.1]


def _regression_model(formula="v ~ 1 + x + (1|participant_id)", **kw):
    return HSSM(_hier_df(), "ddm", include=[{"name": "v", "formula": formula}], **kw)


def _regression_posterior(chains=2, draws=50, sigma=0.3):
    return _const_posterior(
        {
            "v_Intercept": 0.5,
            "v_x": 0.8,
            "v_1|participant_id": EFFECTS,
            "v_1|participant_id_sigma": sigma,
            "a": TRUE[1],
            "z": TRUE[2],
            "t": TRUE[3],
        },
        chains,
        draws,
    )


def test_predictions_for_new_covariate_values_match_simulation_at_implied_theta():
    """Participant 1 at x = 1: v = 0.5 + 0.8 - 0.2 = 1.1; 100 draws x 40 trials vs the DDM's
    choice probability (4 s.e.) and a direct simulation (KS, alpha 0.001)."""
    m = _regression_model()
    idata = _regression_posterior()
    new = pd.DataFrame({"x": np.ones(40), "participant_id": 1})
    par = m.sample_posterior_predictive(
        idata, data=new, kind="parameters", seed=1, progress=False, inplace=False
    )
    np.testing.assert_allclose(par.posterior_predictive["v"].values, 1.1, rtol=1e-12)
    pred = m.sample_posterior_predictive(idata, data=new, seed=1, progress=False, inplace=False)
    x = pred.posterior_predictive["rt,response"].values.reshape(-1, 2)
    assert len(x) == 2 * 50 * 40
    theta = (1.1, *TRUE[1:])
    p_up = _p_upper(theta)
    assert abs((x[:, 1] == 1).mean() - p_up) < 4 * math.sqrt(p_up * (1 - p_up) / len(x))
    ref = simulate("ddm", torch.tensor([theta]), len(x), seed=123)
    a, b = x[:, 0], ref.rt[0].numpy()
    assert _ks_stat(a, b) < _ks_bound(len(a), len(b))
    # in place: the model's idata gets the group, for the new rows
    out = m.sample_posterior_predictive(idata, data=new, draws=5, seed=1, progress=False)
    assert out is idata and idata.posterior_predictive["rt,response"].shape == (2, 5, 40, 2)


def test_new_participants_get_effects_from_the_group_distribution():
    """200 new participants x 300 draws: drawn effects have sd sigma (0.3) within 4 s.e.,
    mean 0; one effect per (draw, participant) shared by the participant's trials; known
    participants keep their fitted effect; seeded and chunk-invariant."""
    m = _regression_model()
    idata = _regression_posterior(chains=1, draws=300)
    n_new = 200
    new = pd.DataFrame(
        {
            "x": 0.0,
            "participant_id": np.concatenate([np.repeat(np.arange(100, 100 + n_new), 2), [2]]),
        }
    )
    pp = m.sample_posterior_predictive(
        idata, data=new, kind="parameters", seed=11, progress=False, inplace=False
    )
    v = pp.posterior_predictive["v"].values[0]  # (300, 2 n_new + 1)
    eff = v[:, : 2 * n_new : 2] - 0.5
    np.testing.assert_array_equal(v[:, 0 : 2 * n_new : 2], v[:, 1 : 2 * n_new : 2])
    np.testing.assert_allclose(v[:, -1], 0.5 + EFFECTS[2], rtol=1e-12)
    n = eff.size
    assert abs(eff.std() - 0.3) < 4 * 0.3 / math.sqrt(2 * n)
    assert abs(eff.mean()) < 4 * 0.3 / math.sqrt(n)
    assert np.corrcoef(eff[:-1].ravel(), eff[1:].ravel())[0, 1] < 4 / math.sqrt(n)
    again = m.sample_posterior_predictive(
        idata, data=new, kind="parameters", seed=11, chunk_draws=7, progress=False, inplace=False
    )
    np.testing.assert_array_equal(again.posterior_predictive["v"].values, v[None])
    other = m.sample_posterior_predictive(
        idata, data=new, kind="parameters", seed=12, progress=False, inplace=False
    )
    assert not np.allclose(other.posterior_predictive["v"].values[0, :, :-1], v[:, :-1])


def test_new_participants_multi_column_terms_use_one_sigma_per_column():
    """(1 + x | g) and (0 + C(c) | g) with 3 columns: each column's drawn effects have its
    own sigma (4 s.e.)."""
    df = _hier_df(levels=("a", "b", "c"))
    m = HSSM(
        df,
        "ddm",
        include=[
            {
                "name": "v",
                "formula": "v ~ 1 + (1 + x|participant_id) + (0 + C(c)|participant_id)",
            }
        ],
    )
    names = [g.name for g in m.params[0].design.groups]
    assert names == ["v_1|participant_id", "v_x|participant_id", "v_C(c)|participant_id"]
    sig = {"v_1|participant_id_sigma": 0.2, "v_x|participant_id_sigma": 0.6}
    idata = _const_posterior(
        {
            "v_Intercept": 0.0,
            "v_1|participant_id": [0.0] * 3,
            "v_x|participant_id": [0.0] * 3,
            "v_C(c)|participant_id": np.zeros((3, 3)),
            "v_C(c)|participant_id_sigma": [0.1, 0.5, 1.0],
            **sig,
            "a": 1.0,
            "z": 0.5,
            "t": 0.3,
        },
        chains=1,
        draws=400,
    )
    n_new = 150
    rows = []
    for pid in range(50, 50 + n_new):  # per new participant: x=0 and x=1 at each level of c
        for c in ("a", "b", "c"):
            rows += [(pid, 0.0, c), (pid, 1.0, c)]
    new = pd.DataFrame(rows, columns=["participant_id", "x", "c"])
    pp = m.sample_posterior_predictive(
        idata, data=new, kind="parameters", seed=3, progress=False, inplace=False
    )
    v = pp.posterior_predictive["v"].values[0].reshape(400, n_new, 3, 2)
    slope = v[..., 1] - v[..., 0]  # x-slope effect (same for every c)
    np.testing.assert_allclose(slope[..., 0], slope[..., 1], atol=1e-12)
    level_eff = v[..., 0]  # intercept effect + C(c) column effect
    checks = [(slope[..., 0], 0.6)]
    # differences between c levels remove the common intercept effect
    for i, j in ((0, 1), (0, 2), (1, 2)):
        s = [0.1, 0.5, 1.0]
        checks.append((level_eff[..., i] - level_eff[..., j], math.hypot(s[i], s[j])))
    checks.append((level_eff[..., 0], math.hypot(0.2, 0.1)))
    for vals, want in checks:
        assert abs(vals.std() - want) < 4 * want / math.sqrt(2 * vals.size), (vals.std(), want)


def test_unknown_fixed_effect_level_is_a_value_error_naming_column_and_level():
    m = _regression_model("v ~ 1 + C(c) + (1|participant_id)")
    idata = _const_posterior(
        {
            "v_Intercept": 0.5,
            "v_C(c)": [0.1, 0.2],
            "v_1|participant_id": EFFECTS,
            "v_1|participant_id_sigma": 0.3,
            "a": 1.0,
            "z": 0.5,
            "t": 0.3,
        },
        draws=3,
    )
    new = pd.DataFrame({"c": ["a", "zz"], "participant_id": [0, 1], "rt": 0.6, "response": 1})
    with pytest.raises(ValueError, match=r"column 'c'.*\['zz'\]"):
        m.sample_posterior_predictive(idata, data=new, seed=1, progress=False)
    with pytest.raises(ValueError, match=r"column 'c'.*\['zz'\]"):
        m.log_likelihood(idata, data=new)
    with pytest.raises(ValueError, match="not found in data"):
        m.sample_posterior_predictive(idata, data=new.drop(columns="c"), seed=1, progress=False)
    # a known level goes through and uses the fitted contrast
    ok = m.sample_posterior_predictive(
        idata, data=new.iloc[:1].assign(c="b"), kind="parameters", seed=1, progress=False
    )
    np.testing.assert_allclose(ok.posterior_predictive["v"].values, 0.5 + 0.1 + EFFECTS[0])


def test_encoding_the_training_data_reproduces_theta():
    m = _regression_model("v ~ 1 + x + C(c) + (1 + x|participant_id)", p_outlier=0.1)
    values = m.builder.sample_prior(6, seed=2)
    enc = m.builder.encode(m.data)
    assert enc.new_levels == {}
    torch.testing.assert_close(m.builder.theta(values, enc.tensors), m.builder.theta(values))
    torch.testing.assert_close(
        m.builder.p_outlier_value(values, enc.tensors), m.builder.p_outlier_value(values)
    )


# ----------------------------------------------------------------------------- log-likelihood


def _random_posterior(rng, chains=2, draws=20):
    n = (chains, draws)
    return az.from_dict(
        posterior={
            "v_Intercept": rng.normal(0.5, 0.2, n),
            "v_x": rng.normal(0.8, 0.2, n),
            "v_1|participant_id": rng.normal(0.0, 0.3, (*n, 3)),
            "v_1|participant_id_sigma": rng.uniform(0.2, 0.5, n),
            "a": rng.uniform(0.8, 1.2, n),
            "z": rng.uniform(0.4, 0.6, n),
            "t": rng.uniform(0.1, 0.2, n),
            "p_outlier": rng.uniform(0.02, 0.1, n),
        }
    )


def test_log_likelihood_on_new_data_equals_direct_likelihood():
    """Known and new participants, lapses: equals the WFPT density mixed with the lapse at
    θ computed by hand (known levels) / from the same seeded draws (new levels), 1e-10."""
    rng = np.random.default_rng(0)
    m = _regression_model(p_outlier={"name": "Uniform", "lower": 0.0, "upper": 0.2})
    idata = _random_posterior(rng)
    test = _hier_df(n_sub=6, n_trials=5, seed=9)  # participants 0..5: 3, 4, 5 are new
    ll = m.log_likelihood(idata, data=test, seed=21)
    got = ll.log_likelihood["rt,response"]
    assert got.dims == ("chain", "draw", "__obs__") and got.shape == (2, 20, 30)
    assert {"posterior", "log_likelihood", "observed_data"} <= set(ll.groups())
    post = idata.posterior
    pid = test["participant_id"].to_numpy()
    known = pid < 3
    params = m.sample_posterior_predictive(
        idata, data=test, kind="parameters", seed=21, progress=False, inplace=False
    ).posterior_predictive
    v = params["v"].values
    v_hand = (
        post["v_Intercept"].values[..., None]
        + post["v_x"].values[..., None] * test["x"].to_numpy()
        + post["v_1|participant_id"].values[..., np.where(known, pid, 0)]
    )
    np.testing.assert_allclose(v[..., known], v_hand[..., known], rtol=1e-12)
    theta = np.stack(
        [v] + [np.broadcast_to(post[k].values[..., None], v.shape) for k in ("a", "z", "t")], -1
    )
    wfpt = ddm_log_likelihood(
        torch.tensor(test["rt"].to_numpy()),
        torch.tensor(test["response"].to_numpy()),
        torch.tensor(theta),
    ).numpy()
    p = post["p_outlier"].values[..., None]
    lapse = np.where(test["rt"].to_numpy() <= 20.0, 1.0 / 20.0 / 2.0, 0.0)
    direct = np.log((1 - p) * np.exp(wfpt) + p * lapse)
    np.testing.assert_allclose(got.values, direct, rtol=1e-10)
    # the same call without new levels needs no seed and matches on known rows
    ll_known = m.log_likelihood(idata, data=test[known])
    np.testing.assert_allclose(
        ll_known.log_likelihood["rt,response"].values, direct[..., known], rtol=1e-10
    )


def test_log_likelihood_on_new_censored_data_matches_the_model_on_that_data():
    """Deadline model: held-out rows (some past the deadline, scored by the DDM survival)
    give what a model built on those rows gives for the same posterior."""
    df = _hier_df().assign(deadline=1.0)
    m = HSSM(
        df,
        "ddm",
        include=[{"name": "v", "formula": "v ~ 1 + x + (1|participant_id)"}],
        deadline=True,
    )
    idata = _random_posterior(np.random.default_rng(1))
    idata.posterior = idata.posterior.drop_vars("p_outlier")
    test = _hier_df(n_trials=10, seed=5).assign(deadline=0.8)
    ll = m.log_likelihood(idata, data=test)
    direct_model = HSSM(
        test,
        "ddm",
        include=[{"name": "v", "formula": "v ~ 1 + x + (1|participant_id)"}],
        deadline=True,
    )
    assert direct_model.censored_data.n_omitted > 0
    want = direct_model.log_likelihood(idata)
    np.testing.assert_allclose(ll.log_likelihood["rt,response"].values, want.values, rtol=1e-10)
    late = test["rt"].to_numpy() >= 0.8
    post = idata.posterior
    v = (
        post["v_Intercept"].values[..., None]
        + post["v_x"].values[..., None] * test["x"].to_numpy()
        + post["v_1|participant_id"].values[..., test["participant_id"].to_numpy()]
    )
    theta = np.stack(
        [v] + [np.broadcast_to(post[k].values[..., None], v.shape) for k in ("a", "z", "t")], -1
    )
    surv = ddm_log_survival(torch.full(v.shape, 0.8, dtype=F64), torch.tensor(theta)).numpy()
    np.testing.assert_allclose(
        ll.log_likelihood["rt,response"].values[..., late], surv[..., late], rtol=1e-8
    )
    with pytest.raises(ValueError, match="deadline"):
        m.log_likelihood(idata, data=test.drop(columns="deadline"))


def test_az_compare_ranks_held_out_log_likelihoods():
    """Held-out data from v = 0.5 + 0.8 x: the model with x (posterior near the truth) beats
    the intercept-only one in az.compare (loo) and az.waic runs."""
    rng = np.random.default_rng(3)
    n = 300
    x = rng.uniform(-2.0, 2.0, n)
    v = 0.5 + 0.8 * x
    theta = torch.tensor(np.column_stack([v, np.full((n, 3), TRUE[1:])]))
    res = simulate("ddm", theta, 1, seed=8, dtype=F64)
    test = pd.DataFrame(
        {"rt": res.rt[:, 0].numpy(), "response": res.response[:, 0].numpy(), "x": x}
    )
    train = test.iloc[:50]
    m1 = HSSM(train, "ddm", include=[{"name": "v", "formula": "v ~ 1 + x"}])
    m0 = HSSM(train, "ddm")
    size = (2, 100)
    common = {k: rng.normal(val, 0.01, size) for k, val in zip(("a", "z", "t"), TRUE[1:])}
    post1 = az.from_dict(
        posterior={"v_Intercept": rng.normal(0.5, 0.03, size), "v_x": rng.normal(0.8, 0.03, size)}
        | common
    )
    post0 = az.from_dict(posterior={"v": rng.normal(0.5, 0.03, size)} | common)
    ll1 = m1.log_likelihood(post1, data=test)
    ll0 = m0.log_likelihood(post0, data=test)
    with warnings.catch_warnings():
        # arviz 0.23's compare calls sort_values(inplace=True), deprecated by pandas 3.1
        warnings.filterwarnings("ignore", message=".*inplace keyword.*", category=Warning)
        table = az.compare({"with_x": ll1, "intercept": ll0})
    assert list(table.index) == ["with_x", "intercept"]
    assert table.loc["intercept", "elpd_diff"] > 4 * table.loc["intercept", "dse"]
    assert np.isfinite(az.waic(ll1).elpd_waic)


def test_centred_parametrisation_prior_and_new_levels():
    """noncentered=False: the centred group site is drawn from Normal(0, sigma) of each prior
    draw, and new levels get Normal(0, sigma) effects too (sd within 4 s.e.)."""
    m = _regression_model(noncentered=False)
    assert [s.name for s in m.builder.sites if s.dist is None] == ["v_1|participant_id"]
    pri = m.sample_prior_predictive(draws=3000, seed=2, kind="parameters", progress=False)
    z = (pri.prior["v_1|participant_id"] / pri.prior["v_1|participant_id_sigma"]).values.ravel()
    assert abs(z.std() - 1.0) < 4 / math.sqrt(2 * z.size)
    new = pd.DataFrame({"x": 0.0, "participant_id": np.arange(100, 300)})
    pp = m.sample_posterior_predictive(
        _regression_posterior(chains=1, draws=200),
        data=new,
        kind="parameters",
        seed=5,
        progress=False,
        inplace=False,
    )
    eff = pp.posterior_predictive["v"].values - 0.5
    assert abs(eff.std() - 0.3) < 4 * 0.3 / math.sqrt(2 * eff.size)


def test_predictions_on_new_data_use_its_deadline_column():
    """Deadline model: new rows with a 0.7 s deadline are omitted (-999) at the rate of the
    DDM survival at 0.7 s (4 s.e.); a missing deadline column is named."""
    df = _ddm_df(40).assign(deadline=2.0)
    m = HSSM(df, "ddm", deadline=True)
    idata = _const_posterior(dict(zip(("v", "a", "z", "t"), TRUE)), chains=1, draws=100)
    new = pd.DataFrame({"deadline": np.full(50, 0.7)})
    pred = m.sample_posterior_predictive(idata, data=new, seed=3, progress=False, inplace=False)
    x = pred.posterior_predictive["rt,response"].values.reshape(-1, 2)
    surv = float(
        ddm_log_survival(torch.tensor(0.7, dtype=F64), torch.tensor(TRUE, dtype=F64)).exp()
    )
    got = (x[:, 0] == -999.0).mean()
    assert abs(got - surv) < 4 * math.sqrt(surv * (1 - surv) / len(x))
    with pytest.raises(ValueError, match="deadline column 'deadline'"):
        m.sample_posterior_predictive(idata, data=new.rename(columns={"deadline": "dl"}))


@pytest.mark.gpu
def test_new_data_on_cuda_matches_cpu_parameters_and_choice_probability():
    """The same seeded new-participant effects on CUDA as on CPU (CPU generator); the prior
    predictive on CUDA reproduces the DDM's choice probability (4 s.e.)."""
    idata = _regression_posterior(chains=1, draws=100)
    new = pd.DataFrame({"x": np.linspace(-1, 1, 30), "participant_id": [1, 77, 78] * 10})
    out = {}
    for dev in ("cpu", "cuda"):
        m = _regression_model(device=dev)
        pp = m.sample_posterior_predictive(
            idata, data=new, kind="parameters", seed=4, progress=False, inplace=False
        )
        out[dev] = pp.posterior_predictive["v"].values
    np.testing.assert_allclose(out["cuda"], out["cpu"], rtol=1e-12, atol=1e-12)
    fixed = [{"name": n, "prior": v} for n, v in zip(("v", "a", "z", "t"), TRUE)]
    m = HSSM(
        _ddm_df(50),
        "ddm",
        include=fixed[:3]
        + [{"name": "t", "prior": {"name": "Uniform", "lower": 0.29, "upper": 0.31}}],
        device="cuda",
    )
    x = (
        m.sample_prior_predictive(draws=200, seed=1, progress=False)
        .prior_predictive["rt,response"]
        .values.reshape(-1, 2)
    )
    p_up = _p_upper(TRUE)
    assert abs((x[:, 1] == 1).mean() - p_up) < 4 * math.sqrt(p_up * (1 - p_up) / len(x))
