"""LAN rows, CPN and OPN targets and the degenerate-θ filters on synthetic data."""

from __future__ import annotations

import math

import pytest
import torch

from simulators.training_data.filters import FilterPolicy
from simulators.training_data.labels import LANRecipe, OPNRecipe, cpn_targets, lan_rows, opn_targets


def _data(B=2, n=3000):
    g = torch.Generator().manual_seed(2)
    rt = torch.exp(torch.randn(B, n, generator=g) * 0.4 - 0.4) + 0.2
    resp = torch.where(torch.rand(B, n, generator=g) < 0.4, -1, 1)
    return rt, resp, torch.zeros(B, n, dtype=torch.bool)


def test_lan_rows_follow_the_mixture():
    rt, resp, om = _data()
    recipe = LANRecipe(mixture=(0.6, 0.3, 0.1), uniform_rt_max=5.0)
    g = torch.Generator().manual_seed(0)
    pts, codes, lab, nf = lan_rows(
        rt, resp, om, (-1, 1), 200, max_t=20.0, recipe=recipe, generator=g
    )
    assert pts.shape == codes.shape == lab.shape == (2, 200)
    assert set(codes.unique().tolist()) <= {-1, 1}
    kde, unif, neg = pts[:, :120], pts[:, 120:180], pts[:, 180:]
    assert bool((kde > 0).all()) and bool(((unif > 1e-4) & (unif < 5.0)).all())
    assert bool(((neg < 0) & (neg >= -1)).all())
    assert bool((lab[:, 180:] == recipe.negative_rt_label).all())
    assert bool((lab >= recipe.label_floor).all()) and bool(torch.isfinite(lab).all())
    assert nf == int((lab[:, :180] == recipe.label_floor).sum())
    # KDE-drawn points are data-like: their labels are mostly well above the floor
    assert (lab[:, :120] > -10).double().mean() > 0.95


def test_labels_are_deterministic_given_the_generator():
    rt, resp, om = _data()
    a = lan_rows(rt, resp, om, (-1, 1), 50, max_t=20.0, generator=torch.Generator().manual_seed(3))
    b = lan_rows(rt, resp, om, (-1, 1), 50, max_t=20.0, generator=torch.Generator().manual_seed(3))
    for x, y in zip(a[:3], b[:3]):
        assert torch.equal(x, y)


def test_cpn_targets_are_shares_among_responded_trials_in_choice_order():
    resp = torch.tensor([[0, 2, 2, 1, -999], [1, 1, 1, 1, 1]])
    om = resp == -999
    out = cpn_targets(resp, om, (0, 1, 2))
    assert out.tolist() == [[0.25, 0.25, 0.5], [0.0, 1.0, 0.0]]


def test_opn_targets_count_late_and_omitted_trials():
    rt = torch.tensor([[0.2, 0.9, 1.5, -999.0], [0.1, 0.2, 0.3, 0.4]])
    om = rt == -999.0
    out = opn_targets(rt, om, torch.tensor([1.0, 0.25]))
    assert out.tolist() == [0.5, 0.5]
    assert opn_targets(rt, om, torch.tensor([0.0, 10.0])).tolist() == [1.0, 0.0]


def test_opn_deadlines_cover_the_range():
    for dist in ("uniform", "log_uniform"):
        d = OPNRecipe(0.1, 10.0, dist).draw(
            20000, torch.Generator().manual_seed(1), torch.device("cpu")
        )
        assert float(d.min()) >= 0.1 and float(d.max()) <= 10.0
        med = float(d.median())
        assert med == pytest.approx(5.05 if dist == "uniform" else 1.0, rel=0.05)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"mixture": (0.5, 0.5, 0.5)}, "lan.mixture"),
        ({"mixture": (1.2, -0.2, 0.0)}, "lan.mixture"),
        ({"uniform_rt_max": 0.0}, "lan.uniform_rt_max"),
    ],
)
def test_bad_lan_recipe(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LANRecipe(**kwargs)


def test_bad_opn_recipe():
    with pytest.raises(ValueError, match="opn.distribution"):
        OPNRecipe(distribution="gamma")
    with pytest.raises(ValueError, match="opn.deadline_low"):
        OPNRecipe(deadline_low=0.0, distribution="log_uniform")


def test_filters_flag_each_reason():
    n = 200
    rt = torch.rand(4, n) + 0.3
    resp = torch.ones(4, n, dtype=torch.long)
    resp[:, ::2] = -1
    om = torch.zeros(4, n, dtype=torch.bool)
    om[0, :20] = True  # 10% omitted
    resp[1] = 1  # one response only
    rt[2, resp[2] == -1] = 0.5  # a point mass
    rt[om], resp[om] = -999.0, -999
    f = FilterPolicy(max_omitted_fraction=0.05)
    reasons = f.evaluate(rt, resp, om, (-1, 1))
    assert reasons["omitted"].tolist() == [True, False, False, False]
    assert reasons["few_trials"].tolist() == [False, True, False, False]
    assert reasons["point_mass"].tolist() == [False, False, True, False]
    assert f.keep(reasons).tolist() == [False, False, False, True]
    relaxed = FilterPolicy(max_omitted_fraction=0.2, min_trials_per_choice=0, min_rt_std=-0.0)
    assert relaxed.keep(relaxed.evaluate(rt, resp, om, (-1, 1))).tolist() == [
        True,
        True,
        False,
        True,
    ]


def test_bad_filter_policy():
    with pytest.raises(ValueError, match="max_omitted_fraction"):
        FilterPolicy(max_omitted_fraction=1.5)
    with pytest.raises(ValueError, match="min_trials_per_choice"):
        FilterPolicy(min_trials_per_choice=-1)
    assert math.isfinite(FilterPolicy().min_rt_std)
