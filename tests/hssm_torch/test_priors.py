"""Priors (names, arguments, truncated normal, defaults) and link functions."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from hssm_torch.links import default_link, get_link
from hssm_torch.priors import PRIOR_NAMES, Prior, TruncatedNormal, default_prior


def test_pymc_and_torch_argument_names():
    a = Prior.from_spec({"name": "Normal", "mu": 1.0, "sigma": 2.0}).to_pyro()
    b = Prior.from_spec({"name": "Normal", "loc": 1.0, "scale": 2.0}).to_pyro()
    assert float(a.loc) == float(b.loc) == 1.0 and float(a.scale) == float(b.scale) == 2.0


def test_gamma_mu_sigma_matches_moments():
    d = Prior("Gamma", {"mu": 1.5, "sigma": 0.5}).to_pyro(torch.float64)
    assert math.isclose(float(d.mean), 1.5) and math.isclose(float(d.variance), 0.25)


def test_weibull_uses_pymc_alpha_shape_beta_scale():
    d = Prior("Weibull", {"alpha": 2.0, "beta": 3.0}).to_pyro(torch.float64)
    assert math.isclose(float(d.mean), 3.0 * math.gamma(1.5), rel_tol=1e-12)


@pytest.mark.parametrize(
    "spec, match",
    [
        ({"name": "Norml", "mu": 0, "sigma": 1}, "unknown distribution 'Norml'"),
        ({"name": "Normal", "mu": 0, "sd": 1}, "unknown argument 'sd'"),
        ({"name": "Normal", "mu": 0}, "wrong arguments"),
        ({"name": "HalfNormal", "sigma": "wide"}, "must be a number"),
        ({"mu": 0}, "'name' key"),
    ],
)
def test_bad_prior_specs(spec, match):
    with pytest.raises(ValueError, match=match):
        Prior.from_spec(spec)


def test_every_named_prior_builds():
    args = {
        "Beta": {"alpha": 2, "beta": 3},
        "Cauchy": {"alpha": 0, "beta": 1},
        "Exponential": {"lam": 2},
        "Gamma": {"alpha": 2, "beta": 1},
        "HalfCauchy": {"beta": 1},
        "HalfNormal": {"sigma": 1},
        "InverseGamma": {"alpha": 3, "beta": 1},
        "LogNormal": {"mu": 0, "sigma": 1},
        "Normal": {"mu": 0, "sigma": 1},
        "StudentT": {"nu": 3, "mu": 0, "sigma": 1},
        "TruncatedNormal": {"mu": 0, "sigma": 1, "lower": -1, "upper": 2},
        "Uniform": {"lower": 0, "upper": 1},
        "Weibull": {"alpha": 1.5, "beta": 1},
    }
    assert sorted(args) == list(PRIOR_NAMES)
    for name, a in args.items():
        lp = Prior(name, a).to_pyro(torch.float64).log_prob(torch.tensor(0.5, dtype=torch.float64))
        assert torch.isfinite(lp), name


def test_truncated_normal_against_scipy():
    d = TruncatedNormal(*(torch.tensor(v, dtype=torch.float64) for v in (0.3, 0.7, 0.0, 1.5)))
    x = np.linspace(0.01, 1.49, 7)
    ref = stats.truncnorm.logpdf(x, (0 - 0.3) / 0.7, (1.5 - 0.3) / 0.7, loc=0.3, scale=0.7)
    np.testing.assert_allclose(d.log_prob(torch.tensor(x)).numpy(), ref, rtol=1e-10)
    torch.manual_seed(0)
    s = d.sample((20000,))
    assert float(s.min()) >= 0.0 and float(s.max()) <= 1.5
    ref_mean = stats.truncnorm.mean((0 - 0.3) / 0.7, (1.5 - 0.3) / 0.7, loc=0.3, scale=0.7)
    sd = stats.truncnorm.std((0 - 0.3) / 0.7, (1.5 - 0.3) / 0.7, loc=0.3, scale=0.7)
    assert abs(float(s.mean()) - ref_mean) < 4 * sd / math.sqrt(20000)
    assert math.isclose(float(d.mean), ref_mean, rel_tol=1e-10)
    with pytest.raises(ValueError, match="support"):
        d.log_prob(torch.tensor(2.0, dtype=torch.float64))


@pytest.mark.parametrize(
    "name, bounds",
    [
        ("v", (-math.inf, math.inf)),
        ("a", (0.0, math.inf)),
        ("z", (0.0, 1.0)),
        ("t", (0.0, math.inf)),
        ("theta", (-0.1, 1.3)),
        ("g", (-1.0, 1.0)),
        ("w", (0.0, math.inf)),
    ],
)
def test_default_priors_stay_inside_bounds(name, bounds):
    p = default_prior(name, bounds, 0.5)
    lo, hi = p.support_bounds()
    assert lo >= bounds[0] and hi <= bounds[1]


def test_links_map_onto_bounds_and_invert():
    link = get_link("gen_logit", (0.3, 2.5))
    eta = torch.linspace(-30, 30, 101, dtype=torch.float64)
    theta = link.inverse(eta)
    assert float(theta.min()) >= 0.3 and float(theta.max()) <= 2.5
    assert math.isclose(
        link.forward(float(link.inverse(torch.tensor(0.7, dtype=torch.float64)))), 0.7
    )
    assert math.isclose(get_link("log").forward(2.0), math.log(2.0))
    assert math.isclose(float(get_link("logit").inverse(torch.tensor(0.0))), 0.5)
    with pytest.raises(ValueError, match="unknown link 'probit'"):
        get_link("probit")
    with pytest.raises(ValueError, match="finite bounds"):
        get_link("gen_logit", (0.0, math.inf))


def test_default_links():
    inf = math.inf
    assert default_link((0.0, inf), None).name == "identity"
    assert default_link((0.0, inf), "log_logit").name == "log"
    assert default_link((0.0, 1.0), "log_logit").name == "gen_logit"
    assert default_link((-inf, inf), "gen_logit").name == "identity"
    assert default_link((-3.0, 3.0), "gen_logit").upper == 3.0
