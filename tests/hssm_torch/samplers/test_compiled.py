"""``torch.compile`` of the batched potential: same values, same draws, eager fallback.

Each compile takes 5-25 s of CPU, so the default suite compiles one small model twice (the
potential check and the seeded run); the other model variants are ``slow``.
"""

import logging
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import hssm_torch.samplers.batched_nuts as batched_nuts_mod
import hssm_torch.samplers.compiled as compiled_mod
from hssm_torch.inference import ConvergenceWarning
from hssm_torch.model import HSSM
from hssm_torch.samplers import BatchedPotential, nuts_sample, run_batched_nuts
from hssm_torch.samplers.compiled import value_and_grad_fn
from simulators import simulate_data
from tests.hssm_torch.fit_data import ddm_data, small_centred_regression
from tests.hssm_torch.samplers.test_potential import CASES


def _angle_lan():
    df = simulate_data("angle", dict(v=0.5, a=1.0, z=0.5, t=0.3, theta=0.2), size=60, seed=1)
    return HSSM(df, "angle", loglik_kind="approx_differentiable")


ALL_CASES = {**CASES, "lan_angle": _angle_lan}


def _assert_compiled_equals_eager(model: HSSM, rtol: float = 1e-10, atol: float = 1e-9) -> None:
    pot = BatchedPotential(model.builder)
    gen = torch.Generator().manual_seed(1)
    x = pot.initial_point() + 0.1 * torch.randn((3, pot.dim), generator=gen, dtype=pot.dtype)
    eager, _ = value_and_grad_fn(pot, x, compile=False)
    compiled, info = value_and_grad_fn(pot, x, compile=True)
    assert info["compiled"], info
    assert info["compile_time"] > 0.0
    u0, g0 = eager(x)
    for y in (x, x + 0.05):  # the compile point and another one
        u0, g0 = eager(y)
        u1, g1 = compiled(y)
        assert torch.isfinite(u0).all() and torch.isfinite(g0).all()
        torch.testing.assert_close(u1, u0, rtol=rtol, atol=atol)
        torch.testing.assert_close(g1, g0, rtol=rtol, atol=atol)


def test_compiled_potential_equals_eager_scalar_ddm():
    _assert_compiled_equals_eager(HSSM(ddm_data(40, seed=3), "ddm"))


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(c for c in ALL_CASES if c not in ("scalar", "censored")))
def test_compiled_potential_equals_eager(case):
    # networks run in their weights' dtype (float32 for ONNX): compiled and eager float32
    # sums over 60 trials differ by reassociation, ~1e-7 relative per term (observed 6e-9
    # relative on the potential); the analytical cases are float64 throughout
    tol = dict(rtol=1e-6, atol=1e-5) if case.startswith("lan") else {}
    _assert_compiled_equals_eager(ALL_CASES[case](), **tol)


@pytest.mark.slow
def test_censored_model_falls_back_to_eager_with_a_warning(caplog):
    # the survival term picks its series length from the data (a host sync), which
    # torch.compile(fullgraph=True) cannot trace: the sampler warns and runs eagerly
    pot = BatchedPotential(CASES["censored"]().builder)
    x = pot.initial_point().expand(2, -1).clone()
    with caplog.at_level(logging.WARNING, logger="hssm_torch.samplers.compiled"):
        vg, info = value_and_grad_fn(pot, x, compile=True)
    assert not info["compiled"] and "fallback_reason" in info
    assert "running eagerly" in caplog.text
    u, g = vg(x)
    u0, g0 = pot.value_and_grad(x)
    torch.testing.assert_close(u, u0, rtol=0, atol=0)
    torch.testing.assert_close(g, g0, rtol=0, atol=0)


def test_seeded_compiled_run_gives_the_eager_draws(monkeypatch):
    m = HSSM(ddm_data(40, seed=6), "ddm")
    kw = dict(chains=2, draws=25, tune=25, seed=3, progress=False, max_tree_depth=6)
    s0, st0, t0 = run_batched_nuts(m.builder, **kw)
    s1, st1, t1 = run_batched_nuts(m.builder, compile=True, **kw)
    assert t0["compiled"] == 0.0 and t0["compile_time"] == 0.0
    assert t1["compiled"] == 1.0 and t1["compile_time"] > 0.0
    # same trajectories: every accept/reject decision agrees; values up to reassociation
    # (the compiled leaf computes value and gradient in one fused graph: on this model the
    # potential and gradient agree with eager autograd to ~1e-13 relative)
    np.testing.assert_array_equal(st1["n_steps"], st0["n_steps"])
    for name in s0:
        np.testing.assert_allclose(s1[name], s0[name], rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(st1["lp"], st0["lp"], rtol=1e-9, atol=1e-8)
    # the default run skipped Dynamo's guards; with guards evaluated and any recompile an
    # error (torch.compiler's "fail_on_recompile"), the run completes with the same draws:
    # every leaf call matched the graph compiled before the loop
    monkeypatch.setattr(batched_nuts_mod, "GUARD_MODE", "check")
    s2, st2, t2 = run_batched_nuts(m.builder, compile=True, **kw)
    assert t2["compiled"] == 1.0
    np.testing.assert_array_equal(st2["n_steps"], st1["n_steps"])
    for name in s1:
        np.testing.assert_array_equal(s2[name], s1[name])


def test_compact_is_refused_with_compile():
    init = torch.zeros(2, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="compact: the compiled sampler evaluates every chain"):
        nuts_sample(_gauss, init, draws=5, tune=5, compile=True, compact=True, progress=False)


def _gauss(x):
    return 0.5 * (x * x * torch.tensor([1.0, 4.0], dtype=x.dtype)).sum(-1)


def test_compile_failure_falls_back_to_eager_with_a_logged_warning(monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(compiled_mod.torch, "compile", broken)
    init = torch.zeros(2, 2, dtype=torch.float64)
    kw = dict(draws=30, tune=30, seed=0, progress=False)
    with caplog.at_level(logging.WARNING, logger="hssm_torch.samplers.compiled"):
        res = nuts_sample(_gauss, init, compile=True, **kw)
    assert (
        "torch.compile of the potential and NUTS leaf failed (RuntimeError: no C++ compiler)"
        in caplog.text
    )
    assert not res.compiled
    ref = nuts_sample(_gauss, init, **kw)
    # the fallback is the eager sampler
    torch.testing.assert_close(res.positions, ref.positions, rtol=0, atol=0)


def test_compile_argument_checked():
    m = HSSM(pd.DataFrame({"rt": [0.6, 0.9, 1.2], "response": [1.0, -1.0, 1.0]}), "ddm")
    with pytest.raises(ValueError, match="compile: only sampler='nuts_batched'"):
        m.sample(sampler="nuts", compile=True, chains=1, draws=5, tune=5)
    with pytest.raises(TypeError, match="compile: expected True or False"):
        m.sample(sampler="nuts_batched", compile="yes", chains=1, draws=5, tune=5)


@pytest.mark.slow
@pytest.mark.mcmc
def test_hssm_sample_compiled_hierarchical_centred_matches_eager():
    m = small_centred_regression()
    kw = dict(sampler="nuts_batched", chains=2, draws=20, tune=20, seed=4, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 20 draws
        eager = m.sample(**kw)
        comp = m.sample(compile=True, **kw)
    assert comp.attrs["compiled"] == 1.0 and comp.attrs["compile_time"] > 0.0
    assert eager.attrs["compile_time"] == 0.0
    np.testing.assert_array_equal(comp.sample_stats["n_steps"], eager.sample_stats["n_steps"])
    for name in eager.posterior.data_vars:
        np.testing.assert_allclose(comp.posterior[name], eager.posterior[name], rtol=1e-8)
