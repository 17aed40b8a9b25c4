"""``simulate(..., workers=n)``: chunks in a thread pool.

What is checked:

- ``workers`` is validated (ValueError naming it);
- the chunk split: a multiple of ``workers`` chunks of at most ``chunk_size`` that cover the
  trials once, in order;
- output identical (torch.equal) for workers 1, 2, 3 and several chunk sizes, eager, for a
  bridge model (angle), a race (race_no_bias_3), levy and the grid-free ddm sampler; and
  (slow: compiles) the same with ``compile=True`` for angle (bridge) and race_no_bias_3;
- the workers really run concurrently (two chunks meet at a barrier), each with
  ``max(1, T // workers)`` torch threads, and the caller's thread count is restored;
- an exception raised in a worker propagates, and the thread count is restored then too.
"""

from __future__ import annotations

import threading

import pytest
import torch

from simulators import kinds
from simulators.simulate import _chunks, simulate

ANGLE = {"v": 0.5, "a": 1.5, "z": 0.5, "t": 0.3, "theta": 0.3}
RACE3 = {"v0": 1.0, "v1": 0.6, "v2": 0.3, "a": 2.0, "z": 0.5, "t": 0.3}
LEVY = {"v": 0.5, "a": 1.5, "z": 0.5, "t": 0.3, "alpha": 1.5}
DDM = {"v": 0.5, "a": 1.0, "z": 0.5, "t": 0.3}


@pytest.fixture
def one_thread():
    """Run with 1 torch thread (compiled graphs are keyed by the thread count)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2", None])
def test_workers_is_validated(bad):
    with pytest.raises(ValueError, match=r"workers: expected an integer >= 1"):
        simulate("ddm", DDM, 10, seed=0, workers=bad)


@pytest.mark.parametrize(
    ("total", "chunk", "workers", "expected"),
    [
        (10, 3, 1, [(0, 3), (3, 6), (6, 9), (9, 10)]),
        (100, 1000, 2, [(0, 50), (50, 100)]),
        (5, 100, 3, [(0, 2), (2, 4), (4, 5)]),
        (2, 100, 3, [(0, 1), (1, 2)]),
        (1000, 300, 2, [(0, 250), (250, 500), (500, 750), (750, 1000)]),
    ],
)
def test_chunk_split(total, chunk, workers, expected):
    got = _chunks(total, chunk, workers)
    assert got == expected
    assert all(b - a <= chunk for a, b in got)


def _theta3(model):
    from simulators import get_model

    spec = get_model(model)
    lo = torch.tensor([p.lower for p in spec.params])
    hi = torch.tensor([p.upper for p in spec.params])
    u = torch.tensor([[0.3], [0.5], [0.7]]).expand(3, len(lo))
    return lo + (hi - lo) * (0.25 + 0.5 * u)


def _same(a, b):
    return torch.equal(a.rt, b.rt) and torch.equal(a.response, b.response)


@pytest.mark.parametrize(
    ("model", "method"),
    [("angle", "bridge"), ("race_no_bias_3", "euler"), ("levy", "euler"), ("ddm", "exact")],
)
def test_workers_give_identical_output_eager(one_thread, model, method):
    theta = _theta3(model)
    kw = {"seed": 4, "method": method, "max_t": 5.0}
    ref = simulate(model, theta, 300, **kw)
    assert ref.n_omitted < 900
    for workers in (1, 2, 3):
        for chunk in (None, 97, 450):
            res = simulate(model, theta, 300, workers=workers, chunk_size=chunk, **kw)
            assert _same(res, ref), (workers, chunk)


@pytest.mark.slow
@pytest.mark.parametrize(("model", "method"), [("angle", "bridge"), ("race_no_bias_3", "euler")])
def test_workers_give_identical_output_compiled(one_thread, model, method):
    theta = _theta3(model)
    kw = {"seed": 4, "method": method, "max_t": 5.0, "compile": True}
    ref = simulate(model, theta, 300, **kw)
    for workers in (1, 2, 3):
        for chunk in (None, 97, 450):
            res = simulate(model, theta, 300, workers=workers, chunk_size=chunk, **kw)
            assert _same(res, ref), (workers, chunk)


def _wrap_sampler(monkeypatch, kind, before_call):
    inner = kinds.SAMPLERS[kind]

    def wrapped(*args, **kwargs):
        before_call()
        return inner(*args, **kwargs)

    monkeypatch.setitem(kinds.SAMPLERS, kind, wrapped)  # the dict simulate() reads


def test_workers_run_concurrently_with_their_thread_share(monkeypatch):
    ref = simulate("ddm", DDM, 1000, seed=0)
    seen = []
    barrier = threading.Barrier(2, timeout=30)

    def check():
        seen.append((threading.get_ident(), torch.get_num_threads()))
        barrier.wait()  # both chunks must be in flight at once, or this times out

    _wrap_sampler(monkeypatch, "ddm", check)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        res = simulate("ddm", DDM, 1000, seed=0, workers=2)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert len(seen) == 2
    assert len({ident for ident, _ in seen}) == 2
    assert {n for _, n in seen} == {1}
    assert _same(res, ref)


def test_worker_exception_propagates(monkeypatch):
    calls = []

    def boom():
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("chunk failed (test)")

    _wrap_sampler(monkeypatch, "ddm", boom)
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="chunk failed"):
        simulate("ddm", DDM, 1000, seed=0, workers=2, chunk_size=100)
    assert torch.get_num_threads() == before
