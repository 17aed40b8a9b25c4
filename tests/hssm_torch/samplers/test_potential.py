"""The batched potential equals Pyro's potential energy, chain by chain."""

import pytest
import torch
from pyro.infer.autoguide import init_to_value
from pyro.infer.mcmc.util import initialize_model

from hssm_torch.model import HSSM
from hssm_torch.samplers import BatchedPotential
from tests.hssm_torch.fit_data import ddm_data, hierarchical_data


def _censored_data():
    df = ddm_data(60, seed=4)
    df["deadline"] = 1.0
    df.loc[df.index[:5], "rt"] = -999.0  # missing rts
    return df


CASES = {
    "scalar": lambda: HSSM(ddm_data(50, seed=1), "ddm"),
    "regression_noncentered": lambda: HSSM(
        hierarchical_data(3, 15, seed=2)[0],
        "ddm",
        include=[{"name": "v", "formula": "v ~ 1 + x + (1 + x|participant_id)"}],
        global_formula=None,
    ),
    "regression_centred": lambda: HSSM(
        hierarchical_data(3, 15, seed=3)[0],
        "ddm",
        include=[
            {"name": "v", "formula": "v ~ 1 + x + (1|participant_id)"},
            {"name": "a", "formula": "a ~ 1 + (1 + x|participant_id)"},
        ],
        noncentered=False,
    ),
    "p_outlier": lambda: HSSM(ddm_data(50, seed=5), "ddm", p_outlier=0.05),
    "p_outlier_prior": lambda: HSSM(
        ddm_data(50, seed=5),
        "ddm",
        p_outlier={"name": "Beta", "alpha": 2.0, "beta": 20.0},
    ),
    "censored": lambda: HSSM(_censored_data(), "ddm", missing_data=True, deadline=True),
}


def _pyro_potential(builder):
    init, potential, transforms, _ = initialize_model(
        builder.model,
        jit_compile=False,
        init_strategy=init_to_value(values=builder.init_values()),
    )
    return init, potential


@pytest.mark.parametrize("case", sorted(CASES))
def test_potential_equals_pyro_per_chain(case):
    torch.manual_seed(0)
    b = CASES[case]().builder
    pot = BatchedPotential(b)
    init, pyro_pot = _pyro_potential(b)
    assert [s.name for s in pot.sites] == sorted(init)
    assert pot.dim == sum(v.numel() for v in init.values())
    gen = torch.Generator().manual_seed(1)
    x0 = torch.cat([init[n].reshape(-1) for n in sorted(init)])
    x = x0 + 0.1 * torch.randn((5, pot.dim), generator=gen, dtype=torch.float64)
    u, g = pot.value_and_grad(x)
    assert u.shape == (5,) and g.shape == (5, pot.dim)
    for c in range(5):
        params = {
            k: v.squeeze(0).clone().requires_grad_(True)
            for k, v in pot.unflatten(x[c : c + 1]).items()
        }
        ref = pyro_pot(params)
        ref_g = torch.autograd.grad(ref, [params[f.name] for f in pot.sites])
        ref_g = torch.cat([r.reshape(-1) for r in ref_g])
        assert torch.isfinite(ref)
        torch.testing.assert_close(u[c], ref.detach(), rtol=1e-10, atol=1e-8)
        torch.testing.assert_close(g[c], ref_g, rtol=1e-8, atol=1e-8)


def test_flatten_constrain_round_trip():
    b = CASES["regression_noncentered"]().builder
    pot = BatchedPotential(b)
    x = torch.randn(3, pot.dim, dtype=torch.float64)
    back = pot.flatten(pot.constrain(x))
    torch.testing.assert_close(back, x)
    init = pot.initial_point()
    vals = pot.constrain(init.unsqueeze(0))
    for k, v in b.init_values().items():
        torch.testing.assert_close(vals[k][0], v.to(torch.float64))


def test_bad_shape_names_expected_shape():
    pot = BatchedPotential(CASES["scalar"]().builder)
    with pytest.raises(ValueError, match=r"x: expected shape \(C, 4\)"):
        pot(torch.zeros(4, dtype=torch.float64))
