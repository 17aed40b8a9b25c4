"""θ sampling: boxes, user bounds, uniform / Sobol streams, per-shard seeds."""

from __future__ import annotations

import pytest
import torch

from simulators import get_model
from simulators.training_data.sampling import (
    ParameterSampler,
    resolve_bounds,
    sample_parameters,
    shard_seed,
)


def test_registry_box_is_default_and_user_bounds_narrow_it():
    lo, hi = resolve_bounds("ddm")
    spec = get_model("ddm")
    assert lo.tolist() == [p.lower for p in spec.params]
    assert hi.tolist() == [p.upper for p in spec.params]
    lo, hi = resolve_bounds("ddm", {"v": [-1.0, 2.0]})
    assert (lo[0].item(), hi[0].item()) == (-1.0, 2.0)


@pytest.mark.parametrize(
    "bounds, match",
    [
        ({"v": [-4.0, 1.0]}, r"bounds\['v'\].*outside.*training box"),
        ({"a": [0.2, 2.0]}, r"bounds\['a'\].*outside"),
        ({"q": [0.0, 1.0]}, r"no parameter 'q'"),
        ({"v": [1.0, 0.0]}, r"lower < upper"),
        ({"v": 3}, r"expected a pair"),
    ],
)
def test_bad_bounds_raise(bounds, match):
    with pytest.raises(ValueError, match=match):
        resolve_bounds("ddm", bounds)


def test_unknown_model_raises():
    with pytest.raises(ValueError, match="unknown model 'ddmm'"):
        resolve_bounds("ddmm")


@pytest.mark.parametrize("method", ["uniform", "sobol"])
def test_draws_inside_box_and_cover_it(method):
    lo, hi = resolve_bounds("angle", {"a": [0.5, 1.5]})
    th = sample_parameters(lo, hi, 4096, seed=3, method=method)
    assert th.shape == (4096, 5)
    assert bool(((th >= lo) & (th <= hi)).all())
    u = (th - lo) / (hi - lo)
    # each coordinate uniform: mean 1/2 and variance 1/12 within 4 standard errors
    assert torch.allclose(
        u.mean(0), torch.full((5,), 0.5, dtype=torch.float64), atol=4 * (1 / 12 / 4096) ** 0.5
    )
    assert torch.allclose(u.var(0), torch.full((5,), 1 / 12, dtype=torch.float64), atol=0.01)


def test_sobol_stream_continues_and_is_more_even_than_uniform():
    lo, hi = torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    s = ParameterSampler(lo, hi, seed=5, method="sobol")
    a = torch.cat([s.draw(3), s.draw(5)])
    b = ParameterSampler(lo, hi, seed=5, method="sobol").draw(8)
    assert torch.equal(a, b)

    # discrepancy proxy: counts in a 8x8 grid of 1024 points are closer to 16 for Sobol
    def spread(x):
        cells = (x * 8).floor().long().clamp_max(7)
        counts = torch.bincount(cells[:, 0] * 8 + cells[:, 1], minlength=64).double()
        return counts.std().item()

    sob = ParameterSampler(lo, hi, seed=1, method="sobol").draw(1024)
    uni = ParameterSampler(lo, hi, seed=1, method="uniform").draw(1024)
    assert spread(sob) < 0.5 * spread(uni)


def test_shard_seeds_are_deterministic_and_distinct():
    seeds = {shard_seed(7, i, s) for i in range(100) for s in range(3)}
    assert len(seeds) == 300
    assert shard_seed(7, 3, 1) == shard_seed(7, 3, 1)
    assert shard_seed(7, 3) != shard_seed(8, 3)
    with pytest.raises(ValueError, match="seed"):
        shard_seed(-1, 0)


def test_bad_sampler_name():
    with pytest.raises(ValueError, match="sampler: expected one of"):
        ParameterSampler(torch.zeros(1), torch.ones(1), seed=0, method="halton")
