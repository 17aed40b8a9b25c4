"""HSSM construction: input checks, parameter handling, the Pyro model's log density."""

import math

import numpy as np
import pyro
import pyro.poutine as poutine
import pytest
import torch

from hssm_torch.distribution import SSMDistribution
from hssm_torch.likelihoods.wfpt import ddm_log_likelihood
from hssm_torch.model import HSSM
from hssm_torch.param import Param
from tests.hssm_torch.fit_data import ddm_data, hierarchical_data


@pytest.fixture(scope="module")
def df():
    return ddm_data(60, seed=3)


@pytest.fixture(scope="module")
def hdf():
    return hierarchical_data(4, 15, seed=4)[0]


def make(data, **kw):
    kw.setdefault("loglik", ddm_log_likelihood)
    return HSSM(data, "ddm", **kw)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda d: d.drop(columns="rt"), r"missing column\(s\) \['rt'\]"),
        (lambda d: d.drop(columns="response"), r"missing column\(s\) \['response'\]"),
        (
            lambda d: d.assign(rt=np.where(np.arange(len(d)) == 2, np.nan, d.rt)),
            "'rt' has 1 missing",
        ),
        (
            lambda d: d.assign(rt=np.where(np.arange(len(d)) == 4, -0.5, d.rt)),
            "'rt' must be > 0; row 4",
        ),
        (
            lambda d: d.assign(response=np.where(np.arange(len(d)) == 1, 0.0, d.response)),
            r"'response' has value\(s\) \[0.0\] outside choices \[-1, 1\]",
        ),
    ],
)
def test_bad_data(df, mutate, match):
    with pytest.raises(ValueError, match=match):
        make(mutate(df.copy()))


def test_data_must_be_a_dataframe(df):
    with pytest.raises(TypeError, match="pandas DataFrame"):
        make(df.to_numpy())


@pytest.mark.parametrize(
    "include, match",
    [
        ([{"name": "q", "prior": 1.0}], "unknown parameter 'q'"),
        ([{"name": "v", "formula": "v ~ 1 + stimulus"}], r"\['stimulus'\] not found"),
        ([{"name": "v", "prior": {"name": "Normall", "mu": 0}}], "unknown distribution 'Normall'"),
        (
            [{"name": "v", "prior": {"name": "Normal", "mean": 0, "sigma": 1}}],
            "unknown argument 'mean'",
        ),
        (
            [{"name": "a", "prior": {"name": "Uniform", "lower": -1, "upper": 2}}],
            "outside the parameter's bounds",
        ),
        (
            [
                {
                    "name": "v",
                    "formula": "v ~ 1",
                    "prior": {"x": {"name": "Normal", "mu": 0, "sigma": 1}},
                }
            ],
            "unknown term 'x'",
        ),
        ([{"name": "v", "form": "v ~ 1"}], r"unknown key\(s\) \['form'\]"),
        ([{"name": "v", "prior": 1.0}, {"name": "v", "prior": 2.0}], "given twice"),
        ([{"name": "z", "prior": 1.5}], "outside"),
    ],
)
def test_bad_include(df, include, match):
    with pytest.raises(ValueError, match=match):
        make(df, include=include)


def test_single_level_group_is_an_error(df):
    with pytest.raises(ValueError, match="single level"):
        make(
            df.assign(participant_id=0),
            include=[{"name": "v", "formula": "v ~ 1 + (1|participant_id)"}],
        )


def test_network_width_mismatch(df):
    class Net(torch.nn.Module):
        input_width = 7

        def forward(self, x):
            return x[:, :1]

    with pytest.raises(ValueError, match="takes 7 input columns but model 'ddm' needs 6"):
        HSSM(df, "ddm", loglik_kind="approx_differentiable", loglik=Net())


def test_bad_option_values(df):
    with pytest.raises(ValueError, match="loglik_kind"):
        make(df, loglik_kind="exact")
    with pytest.raises(ValueError, match="p_outlier"):
        make(df, p_outlier=1.5)
    with pytest.raises(ValueError, match="unknown model"):
        HSSM(df, "dmm", loglik=ddm_log_likelihood)
    with pytest.raises(ValueError, match="initval: unknown"):
        make(df, initval={"v_Intercept": 0.1})
    with pytest.raises(ValueError, match="prior_settings"):
        make(df, prior_settings="wild")


# ---------------------------------------------------------------- parameters and names
def test_scalar_fixed_and_regression_names(hdf):
    m = make(
        hdf,
        include=[
            Param("v", formula="v ~ 1 + x + (1|participant_id)"),
            {"name": "z", "prior": 0.5},
        ],
        p_outlier={"name": "Beta", "alpha": 1, "beta": 20},
    )
    assert m.var_names == [
        "v_Intercept",
        "v_x",
        "v_1|participant_id",
        "v_1|participant_id_sigma",
        "a",
        "t",
        "p_outlier",
    ]
    site_names = [s.name for s in m.builder.sites]
    assert "v_1|participant_id_offset" in site_names and "z" not in site_names


def test_global_formula_applies_to_parameters_not_included(hdf):
    m = make(
        hdf,
        include=[
            {"name": "v", "formula": "v ~ 1 + x"},
            {"name": "z", "prior": 0.5},
            {"name": "t", "prior": 0.2},
        ],
        global_formula="y ~ 1 + (1|participant_id)",
        link_settings="log_logit",
    )
    assert m.var_names == [
        "v_Intercept",
        "v_x",
        "a_Intercept",
        "a_1|participant_id",
        "a_1|participant_id_sigma",
    ]
    assert m.params[1].link.name == "log"


def test_hssm_style_group_prior_sets_sigma_prior(hdf):
    m = make(
        hdf,
        include=[
            {
                "name": "v",
                "formula": "v ~ 1 + (1|participant_id)",
                "prior": {
                    "1|participant_id": {
                        "name": "Normal",
                        "mu": 0,
                        "sigma": {"name": "HalfNormal", "sigma": 0.2},
                    }
                },
            }
        ],
    )
    prior = m.params[0].term_priors["v_1|participant_id_sigma"]
    assert prior.name == "HalfNormal" and prior.args["sigma"] == 0.2


def test_normal_prior_on_bounded_parameter_is_truncated(df):
    m = make(df, include=[{"name": "a", "prior": {"name": "Normal", "mu": 1, "sigma": 1}}])
    assert m.params[1].prior.name == "TruncatedNormal" and m.params[1].prior.args["lower"] == 0.0


# ---------------------------------------------------------------- the model's density
def _values(m, seed=0):
    g = torch.Generator().manual_seed(seed)
    return m.builder.init_values(jitter=0.5, generator=g)


def test_theta_matches_a_hand_computation(hdf):
    m = make(hdf, include=[{"name": "v", "formula": "v ~ 1 + x + (1 + x|participant_id)"}])
    vals = _values(m)
    theta = m.builder.theta(vals).numpy()
    pid = hdf["participant_id"].to_numpy()
    u0 = (vals["v_1|participant_id_offset"] * vals["v_1|participant_id_sigma"]).numpy()
    u1 = (vals["v_x|participant_id_offset"] * vals["v_x|participant_id_sigma"]).numpy()
    x = hdf["x"].to_numpy()
    v = float(vals["v_Intercept"]) + float(vals["v_x"]) * x + u0[pid] + u1[pid] * x
    np.testing.assert_allclose(theta[:, 0], v, rtol=1e-12)
    np.testing.assert_allclose(theta[:, 1], float(vals["a"]))


def test_model_log_density_is_priors_plus_likelihood(hdf):
    m = make(hdf, include=[{"name": "v", "formula": "v ~ 1 + x + (1|participant_id)"}])
    vals = _values(m, 1)
    tr = poutine.trace(poutine.condition(m.pyro_model, data=vals)).get_trace()
    total = float(tr.log_prob_sum())
    theta = m.builder.theta(vals)
    rt = torch.tensor(hdf["rt"].to_numpy())
    resp = torch.tensor(hdf["response"].to_numpy())
    ll = float(ddm_log_likelihood(rt, resp, theta).sum())
    prior = 0.0
    for s in m.builder.sites:
        prior += float(s.dist.log_prob(vals[s.name]).sum())
    assert math.isclose(total, ll + prior, rel_tol=1e-10)


def test_lapse_mixture_formula(df):
    m = make(df, p_outlier=0.1, lapse={"name": "Uniform", "lower": 0.0, "upper": 10.0})
    vals = _values(m)
    theta = m.builder.theta(vals)
    obs = m.builder.obs
    lp = m.builder.distribution(theta, m.builder.p_outlier_value(vals)).log_prob(obs)
    f = ddm_log_likelihood(obs[:, 0], obs[:, 1], theta).exp()
    # lapse: uniform rt on [0, 10] and a uniform response over the 2 choices
    expected = torch.log(0.9 * f + 0.1 / 10.0 / 2)
    torch.testing.assert_close(lp, expected)


def test_lapse_mixture_is_a_proper_density_and_tolerates_slow_trials(df):
    m = make(df, p_outlier=0.2, lapse={"name": "Uniform", "lower": 0.0, "upper": 5.0})
    vals = _values(m)
    theta = m.builder.theta(vals)[:1].expand(4000, -1)
    rt = torch.linspace(1e-4, 40.0, 4000, dtype=theta.dtype)
    dist = m.builder.distribution(theta, torch.full((4000,), 0.2, dtype=theta.dtype))
    total = 0.0
    for r in (-1.0, 1.0):
        obs = torch.stack([rt, torch.full_like(rt, r)], dim=-1)
        lp = dist.log_prob(obs)
        assert torch.isfinite(lp).all()  # rt = 40 s lies outside the lapse range: no error
        total += float(torch.trapezoid(lp.exp(), rt))
    assert abs(total - 1.0) < 5e-3


def test_network_likelihood_input_layout_and_box_penalty(df):
    class Net(torch.nn.Module):
        input_width = 6

        def forward(self, x):
            # a made-up function of every column, to check the input order
            return (x * torch.arange(1, 7, dtype=x.dtype)).sum(-1, keepdim=True) * 0.01

    m = HSSM(df, "ddm", loglik_kind="approx_differentiable", loglik=Net())
    theta = torch.tensor([[0.5, 1.0, 0.5, 0.2], [5.0, 1.0, 0.5, 0.2]], dtype=torch.float64)
    rt = torch.tensor([1.0, 1.0], dtype=torch.float64)
    resp = torch.tensor([1.0, -1.0], dtype=torch.float64)
    out = m._loglik(rt, resp, theta)
    assert math.isclose(float(out[0]), 0.01 * (0.5 + 2 + 1.5 + 0.8 + 5 + 6))
    assert float(out[1]) == -66.1  # v = 5 outside the training box [-3, 3]
    assert m.link_settings == "gen_logit"


def test_regression_on_network_uses_bounded_link(df):
    class Net(torch.nn.Module):
        input_width = 6

        def forward(self, x):
            return -x[:, -2:-1]

    d = df.assign(x=np.linspace(-1, 1, len(df)))
    m = HSSM(d, "ddm", loglik=Net(), include=[{"name": "a", "formula": "a ~ 1 + x"}])
    link = m.params[1].link
    assert (link.name, link.lower, link.upper) == ("gen_logit", 0.3, 2.5)
    vals = {s.name: torch.tensor(50.0, dtype=torch.float64) for s in m.builder.sites}
    theta = m.builder.theta(vals)
    assert float(theta[:, 1].max()) <= 2.5
    lo, hi = m.params[0].prior.support_bounds()  # scalar v: prior cut to the box
    assert (lo, hi) == (-3.0, 3.0)


def test_distribution_samples_via_simulators():
    theta = torch.tensor([[0.5, 1.0, 0.5, 0.3]] * 5, dtype=torch.float64)
    pyro.set_rng_seed(0)
    d = SSMDistribution(theta, ddm_log_likelihood, model="ddm")
    x = d.sample((200,))
    assert x.shape == (200, 5, 2)
    assert set(x[..., 1].unique().tolist()) == {-1.0, 1.0}
    assert float(x[..., 0].min()) > 0.3
    assert d.log_prob(x).shape == (200, 5)


def test_default_likelihood_is_the_packages_analytical_ddm(df):
    m = HSSM(df, "ddm")
    assert m.loglik_kind == "analytical"
    theta = torch.tensor([[0.5, 1.0, 0.5, 0.2]] * len(df), dtype=torch.float64)
    rt, resp = m.builder.obs[:, 0], m.builder.obs[:, 1]
    torch.testing.assert_close(m._loglik(rt, resp, theta), ddm_log_likelihood(rt, resp, theta))


def test_p_outlier_regression_uses_a_logit_link(hdf):
    m = make(hdf, p_outlier={"formula": "p_outlier ~ 1 + x"})
    assert m.var_names[-2:] == ["p_outlier_Intercept", "p_outlier_x"]
    assert (m.p_outlier.link.name, m.p_outlier.link.lower, m.p_outlier.link.upper) == (
        "gen_logit",
        0.0,
        1.0,
    )
    p = m.builder.p_outlier_value(_values(m, 2))
    assert p.shape == (len(hdf),) and float(p.min()) > 0 and float(p.max()) < 1


def test_centred_group_terms_sample_the_effects_directly(hdf):
    m = make(
        hdf, include=[{"name": "v", "formula": "v ~ 1 + (1|participant_id)"}], noncentered=False
    )
    names = [s.name for s in m.builder.sites]
    assert "v_1|participant_id" in names and "v_1|participant_id_offset" not in names
    vals = _values(m, 3)
    tr = poutine.trace(poutine.condition(m.pyro_model, data=vals)).get_trace()
    sigma = vals["v_1|participant_id_sigma"]
    expected = torch.distributions.Normal(0.0, sigma).log_prob(vals["v_1|participant_id"]).sum()
    torch.testing.assert_close(
        tr.nodes["v_1|participant_id"]["fn"].log_prob(vals["v_1|participant_id"]), expected
    )
