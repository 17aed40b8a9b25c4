"""The opt-in compiled engine path (``simulate(..., compile=True)``).

What is checked:

- the traceable RNG forms give bitwise the draws of the eager ones (run eagerly here);
- compilation failure (``torch.compile`` raising when building, or the compiled function
  raising when called): a warning is logged and the result is bitwise the eager one;
- (slow: each model compiles for ~10-30 s on a cold inductor cache) compiled vs eager for
  angle and race_no_bias_3: with *different* seeds, choice proportions and mean rt per
  response agree within 4 standard errors of their difference (two independent samples of
  20,000 trials); with the *same* seed at least 99 % of the rts are exactly equal (measured:
  100 % of 20,000 for both; the noise may differ in the last ulp, which moves a crossing by a
  step only when the path lies within ~1e-7 of the boundary);
- (slow) chunk independence with ``compile=True``: different chunk sizes and simulating a
  parameter set alone or with others give identical draws (torch.equal), for angle (bridge
  scheme, time-dependent boundary), weibull (Euler), levy, ornstein and race_no_bias_3.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch

from simulators import engine
from simulators.rng import (
    normal_block,
    normal_block_pure,
    stream_keys,
    trial_keys,
    uniform,
    uniform_block,
    uniform_pairs_pure,
    uniform_pure,
)
from simulators.simulate import simulate

ANGLE = {"v": 0.5, "a": 1.5, "z": 0.5, "t": 0.3, "theta": 0.3}
RACE3 = {"v0": 1.0, "v1": 0.6, "v2": 0.3, "a": 2.0, "z": 0.5, "t": 0.3}


@pytest.fixture
def keys():
    g = torch.arange(3000)
    return trial_keys(77, g // 1000, g % 1000)


def test_pure_rng_forms_give_the_eager_draws(keys):
    k1, k2 = keys
    start = torch.arange(3000) % 5 * 64
    assert torch.equal(normal_block_pure(k1, k2, start, 64), normal_block(k1, k2, start, 64))
    u0, u1 = uniform_pairs_pure(k1, k2, start, 32)
    u = uniform_block(k1, k2, 2 * start, 64).reshape(-1, 32, 2)
    assert torch.equal(u0, u[..., 0]) and torch.equal(u1, u[..., 1])
    c = torch.full((3000,), 12345, dtype=torch.int32)
    assert torch.equal(uniform_pure(k1, k2, c), uniform(k1, k2, c))
    # keys of any shape: the race engine's (M, n) stream keys
    sk = [stream_keys(k1, k2, 101 + i) for i in range(3)]
    s1 = torch.stack([k[0] for k in sk], dim=1)
    s2 = torch.stack([k[1] for k in sk], dim=1)
    got = normal_block_pure(s1, s2, start.unsqueeze(-1), 64)
    for i in range(3):
        assert torch.equal(got[:, i], normal_block(sk[i][0], sk[i][1], start, 64))


def test_compile_argument_is_validated():
    with pytest.raises(ValueError, match="compile"):
        simulate("angle", ANGLE, 10, seed=0, compile="yes")


def _failing_compile(*args, **kwargs):
    raise RuntimeError("no C++ compiler (test)")


def _compile_to_failing_fn(fn, *args, **kwargs):
    def run(*a, **k):
        raise RuntimeError("unsupported op (test)")

    return run


@pytest.mark.parametrize("how", [_failing_compile, _compile_to_failing_fn])
@pytest.mark.parametrize(
    ("model", "theta", "method"),
    [("angle", ANGLE, "bridge"), ("angle", ANGLE, "euler"), ("race_no_bias_3", RACE3, "euler")],
)
def test_compile_failure_warns_and_runs_eager(monkeypatch, caplog, how, model, theta, method):
    monkeypatch.setattr(engine, "_COMPILED", {})
    monkeypatch.setattr(torch, "compile", how)
    eager = simulate(model, theta, 400, seed=5, method=method)
    with caplog.at_level(logging.WARNING, logger="simulators.engine"):
        comp = simulate(model, theta, 400, seed=5, method=method, compile=True)
    msgs = [r.getMessage() for r in caplog.records if r.name == "simulators.engine"]
    assert any("torch.compile failed" in m and "eager" in m for m in msgs), msgs
    assert torch.equal(comp.rt, eager.rt)
    assert torch.equal(comp.response, eager.response)


def _per_response(res):
    rt, resp = res.rt[0].double().numpy(), res.response[0].numpy()
    return {c: rt[resp == c] for c in np.unique(resp)}


@pytest.mark.slow
@pytest.mark.parametrize(("model", "theta"), [("angle", ANGLE), ("race_no_bias_3", RACE3)])
def test_compiled_agrees_with_eager(model, theta):
    n = 20_000
    eager = simulate(model, theta, n, seed=11)
    comp = simulate(model, theta, n, seed=12, compile=True)
    assert eager.n_omitted == comp.n_omitted == 0
    a, b = _per_response(eager), _per_response(comp)
    assert set(a) == set(b)
    for c in a:
        pa, pb = len(a[c]) / n, len(b[c]) / n
        p = (pa + pb) / 2
        se = math.sqrt(2 * p * (1 - p) / n)
        assert abs(pa - pb) < 4 * se, (c, pa, pb)
        se_m = math.sqrt(a[c].var() / len(a[c]) + b[c].var() / len(b[c]))
        assert abs(a[c].mean() - b[c].mean()) < 4 * se_m, (c, a[c].mean(), b[c].mean())
    # same seed: the same draws up to the last ulp of the noise
    same = simulate(model, theta, n, seed=11, compile=True)
    frac = float((same.rt == eager.rt).double().mean())
    assert frac >= 0.99, frac
    assert float((same.response == eager.response).double().mean()) >= 0.99


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "method"),
    [
        ("angle", "bridge"),
        ("weibull", "euler"),
        ("levy", "euler"),
        ("ornstein", "bridge"),
        ("race_no_bias_3", "euler"),
    ],
)
def test_compiled_draws_do_not_depend_on_chunking_or_other_sets(model, method):
    from simulators import get_model

    spec = get_model(model)
    lo = torch.tensor([p.lower for p in spec.params])
    hi = torch.tensor([p.upper for p in spec.params])
    u = torch.tensor([[0.3], [0.5], [0.7]]).expand(3, len(lo))
    theta = lo + (hi - lo) * (0.25 + 0.5 * u)
    kw = {"seed": 3, "method": method, "compile": True}
    full = simulate(model, theta, 700, chunk_size=4096, **kw)
    chunked = simulate(model, theta, 700, chunk_size=333, **kw)
    alone = simulate(model, theta[:1], 700, chunk_size=97, **kw)
    assert torch.equal(full.rt, chunked.rt)
    assert torch.equal(full.response, chunked.response)
    assert torch.equal(full.rt[:1], alone.rt)
    assert torch.equal(full.response[:1], alone.response)
    assert full.n_omitted < 3 * 700


def _uncompiled(key, impl, what, device_type):
    """Stand-in for ``engine._compiled``: the traced functions, run eagerly."""

    def run(sl, *args):
        return impl(sl, *args)

    return run


@pytest.mark.parametrize(
    ("model", "method"),
    [
        ("angle", "bridge"),
        ("ornstein", "bridge"),
        ("weibull", "euler"),
    ],
)
def test_traced_functions_run_eagerly_give_the_eager_engine_draws(monkeypatch, model, method):
    """The compiled path's logic (dense block, boundary grid per row group, the in-graph
    grid-crossing and first-crossing/side selection, the hand-over to the bridge search) run
    without compiling gives bitwise the eager engine's output: the traced functions
    implement the same scheme with the same draws; compiling them may then change only the
    last ulp of the math.  (The race kind's traced functions sum in float32 where its eager
    code sums in double: tests/simulators/test_refine_race.py checks them at >= 99 %.)"""
    from simulators import get_model

    spec = get_model(model)
    lo = torch.tensor([p.lower for p in spec.params])
    hi = torch.tensor([p.upper for p in spec.params])
    theta = lo + (hi - lo) * torch.tensor([[0.3], [0.5], [0.7]]).expand(3, len(lo))
    kw = {"seed": 8, "method": method, "max_t": 5.0}
    eager = simulate(model, theta, 1500, **kw)
    monkeypatch.setattr(engine, "_compiled", _uncompiled)
    traced = simulate(model, theta, 1500, compile=True, **kw)
    assert eager.n_omitted < 3 * 1500
    assert torch.equal(traced.rt, eager.rt)
    assert torch.equal(traced.response, eager.response)
