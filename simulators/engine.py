"""Batched Euler-Maruyama engines for the diffusion family.

Rows are trials (any mix of parameter sets); every per-row quantity lives in a dict of
tensors with leading dimension ``M`` that is compacted together as trials finish, so a
finished trial costs nothing afterwards.  Time advances in blocks of ``block`` steps:

* :func:`diffuse_1d` (drift that does not depend on the state, or a linear leak: ddm kind,
  levy, ornstein, the stages of seq2/par2): the whole block is one ``cumsum`` of increments,
  the boundary is evaluated on the block's time grid, one reduction finds the rows that may
  end in the block and only those get the first-crossing search.
* :func:`race_blocked` (independent reflected accumulators): the Lindley identity turns a
  block of reflected Euler steps into ``cumsum`` + ``cummin``.
* :func:`step_loop` (coupled state-dependent dynamics: LCA, mic2, ornstein with
  ``1 - g dt <= 0``): the block's noise is drawn at once and its steps are taken one by one,
  each step one set of torch ops over all active rows.

On CPU the blocked engines process a block in row slices of about ``SLICE_ELEMENTS``
(rows x steps) so the block's temporaries stay in cache; this changes no draw.

Step ``k`` moves the particle from time ``k dt`` to ``(k + 1) dt``; a trial ends at the
first step whose end point lies outside ``[-b, b]`` (grid check, ``method="euler"``, the
scheme of ssm-simulators), or, with ``method="bridge"``, also when the Brownian bridge
between the two grid points crosses a boundary (probability
``exp(-2 (b0 - y0)(b1 - y1) / dt)`` for each boundary, exact for straight boundaries and
constant drift within the step).  Decision time = number of steps x dt.  A trial still
inside after ``n_steps`` steps is unfinished (the caller reports it as omitted).

All noise comes from :mod:`simulators.rng`, keyed per trial, so results do not depend on
chunking or on which other rows are simulated.

Gaussian diffusions with a constant drift (with or without the leak) go through the
coarse-to-fine engine of :mod:`simulators.refine` by default (``diffuse_1d(refine=None)``),
races through :mod:`simulators.refine_race`: the same schemes in distribution, with fine
steps drawn only in windows that may hold a crossing.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import threading
import types
from collections.abc import Callable, Iterator

import torch

from simulators.refine import (
    REFINE_STEPS,
    REFINE_WINDOWS,
    _coarse_impl,
    _coarse_leak_impl,
    _fine_impl,
    coarse_keys,
    refine_block,
)
from simulators.rng import (
    normal_block,
    normal_block_pure,
    stream_keys,
    uniform,
    uniform_block,
    uniform_pairs_pure,
)

__all__ = [
    "compiled_blocks",
    "diffuse_1d",
    "levy_block",
    "race_blocked",
    "step_loop",
    "time_independent",
]

log = logging.getLogger(__name__)

RowData = dict[str, torch.Tensor]
TimeFn = Callable[[torch.Tensor, RowData], torch.Tensor]


def _compact(rows: RowData, keep: torch.Tensor) -> RowData:
    idx = keep.nonzero().squeeze(-1)
    return {k: v.index_select(0, idx) for k, v in rows.items()}


def levy_block(
    k1: torch.Tensor, k2: torch.Tensor, start: torch.Tensor, k: int, alpha: torch.Tensor, dtype
) -> torch.Tensor:
    """``(M, k)`` symmetric alpha-stable draws (scale 1, Chambers-Mallows-Stuck).

    ``alpha`` has shape ``(M,)``; alpha = 2 gives normals with variance 2 (scipy's
    ``levy_stable(alpha, 0)`` convention, which ssm-simulators uses).
    """
    u = uniform_block(k1, k2, 2 * start, 2 * k, dtype).reshape(-1, k, 2)
    return _stable_from_uniforms(u[..., 0], u[..., 1], alpha)


def _stable_from_uniforms(u0: torch.Tensor, u1: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    v = math.pi * (u0 - 0.5)
    w = -torch.log(u1)
    a = alpha.unsqueeze(-1)
    # sin(a v) / cos(v)^(1/a) * (cos((1 - a) v) / w)^((1 - a) / a), both powers in one
    # exp(log(.) * .) (torch.pow's result depends on an element's position in the tensor,
    # SIMD body vs tail, which would break chunk-independent reproducibility)
    e = (1.0 - a) * torch.log(torch.cos(v - a * v) / w) - torch.log(torch.cos(v))
    return torch.sin(a * v) * torch.exp(e / a)


# Bridge crossing probabilities are only evaluated where an end point of the step lies within
# BRIDGE_WINDOW * sqrt(dt) of a boundary; elsewhere they are below exp(-2 * 3**2) ~ 1.5e-8.
BRIDGE_WINDOW = 3.0


def _bridge_crossings(rows, path, b_all, up, lo, cross, step0, dt):
    """Mark steps whose Brownian bridge crosses a boundary (in place on up/lo/cross)."""
    thr = BRIDGE_WINDOW * math.sqrt(dt)
    y0 = rows["y"].unsqueeze(-1)
    b = b_all[:, 1:]
    near = (b - path.abs()) < thr
    near0 = (b_all[:, :1] - y0.abs()) < thr
    cand = near.clone()
    cand[:, 1:] |= near[:, :-1]
    cand[:, :1] |= near0
    cand &= ~cross
    idx = cand.nonzero()
    if idx.shape[0] == 0:
        return
    r, j = idx[:, 0], idx[:, 1]
    y1 = path[r, j]
    prev_j = (j - 1).clamp_min(0)
    y_prev = torch.where(j > 0, path[r, prev_j], rows["y"][r])
    b1 = b_all[r, j + 1]
    bp = b_all[r, j]
    p_up = torch.exp(-2.0 * (bp - y_prev).clamp_min(0) * (b1 - y1).clamp_min(0) / dt)
    p_lo = torch.exp(-2.0 * (y_prev + bp).clamp_min(0) * (y1 + b1).clamp_min(0) / dt)
    ctr = (step0[r] + j + (1 << 30)).to(torch.int32)
    u = uniform(rows["k1"][r], rows["k2"][r], ctr, y1.dtype)
    via = u < p_up + p_lo
    if bool(via.any()):
        rv, jv = r[via], j[via]
        is_up = (u < p_up)[via]
        cross[rv, jv] = True
        up[rv, jv] = is_up
        lo[rv, jv] = ~is_up


# CPU: a block is processed in slices of about SLICE_ELEMENTS (rows x steps) so that its
# temporaries stay in the cache (a block over all rows of a 131,072-trial chunk is 32 MB per
# tensor and memory-bound; 2**18 and 2**22 were slower than 2**20 on the 2-core test machine,
# smaller slices pay more per-op overhead).  Other devices take the whole block at once.
SLICE_ELEMENTS = 1 << 20
# Compiled blocks: fewer, larger calls (each call costs ~1 ms of Python/dynamo overhead).
COMPILED_SLICE_ELEMENTS = 1 << 20


def _slices(
    m: int, block: int, device: torch.device, elements: int = SLICE_ELEMENTS
) -> list[tuple[int, int]]:
    if device.type != "cpu":
        return [(0, m)]
    s = max(1, elements // block)
    return [(i, min(i + s, m)) for i in range(0, m, s)]


# ------------------------------------------------------------------------------------------
# Compiled blocks (opt in: ``compiled_blocks()`` / ``simulate(..., compile=True)``).
#
# The dense part of a block (noise, drift, leak, cumsum, boundary, the reduction that finds
# the rows that may end in it) runs as one torch.compile'd function per (engine, noise, leak,
# time grid, block, dt, dtype, device type, boundary and drift function); the rare parts
# (first-crossing search, bridge draws, compaction) stay eager.  Each such function gets its
# own code object, hence its own dynamo cache, so models never evict each other's graphs or
# hit dynamo's recompile limit.  Rows are padded to a multiple of ROW_PAD and the row
# dimension is marked dynamic: one graph serves every slice size, and every row goes through
# the same vectorized code (a value never depends on the row's position, so results do not
# depend on chunking).  Compiled and eager results may differ in the last ulp of log/cos/sin.

_COMPILE: contextvars.ContextVar[bool] = contextvars.ContextVar("simulators_compile", default=False)

#: rows of a compiled call are padded to a multiple of this (>= any SIMD width in floats)
ROW_PAD = 16


@contextlib.contextmanager
def compiled_blocks(enabled: bool = True) -> Iterator[None]:
    """Run the blocked engines' dense part through ``torch.compile`` inside this context.

    :func:`diffuse_1d` and :func:`race_blocked` called without an explicit ``compile=``
    argument use the setting of the innermost context (default: eager).  The first call per
    model/settings compiles (about 10-20 s on CPU); if compiling fails a warning is logged and
    the eager code runs instead.

    Example
    -------
    >>> from simulators.engine import compiled_blocks
    >>> with compiled_blocks(False):
    ...     pass
    """
    token = _COMPILE.set(bool(enabled))
    try:
        yield
    finally:
        _COMPILE.reset(token)


def _fn_key(fn) -> tuple:
    """Hashable identity of a boundary/drift function: its code and closure contents."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return ("object", id(fn))
    cells = []
    for cell in fn.__closure__ or ():
        try:
            val = cell.cell_contents
        except ValueError:  # empty cell
            val = None
        try:
            hash(val)
            cells.append(val)
        except TypeError:
            cells.append(("id", id(val)))
    return (code, tuple(cells))


def _compile_options(device_type: str) -> dict | None:
    """Inductor options of a compiled block on ``device_type``.

    CPU: ``cpp_wrapper`` — the graph's wrapper (the code that calls the generated kernels)
    is C++ instead of Python: less per-call overhead, and it runs with the GIL released, so
    ``simulate(..., workers=n)`` threads overlap.  Other devices: inductor's default wrapper
    (not measured there)."""
    return (
        {"cpp_wrapper": True, "assert_indirect_indexing": False} if device_type == "cpu" else None
    )


class _CompiledBlock:
    """A torch.compile'd copy of ``impl`` with its own code object (own dynamo cache)."""

    def __init__(self, impl: Callable, tag: int, what: str, device_type: str = "cpu") -> None:
        self.what = what
        self.fn = None
        try:
            code = impl.__code__.replace(co_name=f"{impl.__name__}_{tag}")
            fresh = types.FunctionType(
                code, impl.__globals__, code.co_name, impl.__defaults__, impl.__closure__
            )
            self.fn = torch.compile(
                fresh, fullgraph=True, dynamic=False, options=_compile_options(device_type)
            )
        except Exception as err:  # noqa: BLE001 - any failure means: run eager
            self._fail(err)

    def _fail(self, err: BaseException) -> None:
        log.warning(
            "torch.compile failed for %s (%s: %s); running the eager engine instead",
            self.what,
            type(err).__name__,
            str(err).strip().splitlines()[0] if str(err).strip() else "",
        )
        self.fn = None

    def __call__(self, sl: RowData, *args):
        """``impl(sl, *args)`` compiled, or None when compilation failed (caller: eager).

        The rows of ``sl`` and of tensors in ``args`` (also inside dicts) are padded to a
        multiple of ROW_PAD (copies of the first row; dropped from the output), made
        contiguous (strides are guarded: one layout, no recompiles) and marked dynamic."""
        if self.fn is None:
            return None
        m = next(iter(sl.values())).shape[0]
        sl = {k: _pad_rows(v) for k, v in sl.items()}
        args = tuple(_pad_arg(a) for a in args)
        flat = [*sl.values()]
        for a in args:
            flat += a.values() if isinstance(a, dict) else [a]
        for v in flat:
            if isinstance(v, torch.Tensor):
                torch._dynamo.mark_dynamic(v, 0)
        try:
            out = self.fn(sl, *args)
        except Exception as err:  # noqa: BLE001 - any failure means: run eager
            self._fail(err)
            return None
        return tuple(o[:m] for o in out)


def _pad_arg(a):
    """:func:`_pad_rows` of a tensor argument, or of every tensor in a dict argument."""
    if isinstance(a, torch.Tensor):
        return _pad_rows(a)
    if isinstance(a, dict):
        return {k: _pad_rows(v) for k, v in a.items()}
    return a


def _pad_rows(v: torch.Tensor) -> torch.Tensor:
    pad = (-v.shape[0]) % ROW_PAD
    if pad:
        return torch.cat([v, v[:1].expand(pad, *v.shape[1:])])
    return v.contiguous()


# per-row tensors of the engines that are state, not parameters (see _groups)
_ROW_STATE = frozenset({"y", "x", "row", "k1", "k2", "sk1", "sk2", "ck1", "ck2", "_grp"})


def _groups(sl: RowData) -> tuple[torch.Tensor, torch.Tensor]:
    """Runs of consecutive rows with equal parameters and start step: (group of each row,
    first row of each group).  Rows of one parameter set are contiguous, so a slice holds
    few groups; a time-dependent boundary is then evaluated once per group and block."""
    step = sl["step"]
    change = torch.zeros(step.shape[0], dtype=torch.bool, device=step.device)
    change[0] = True
    for k, v in sl.items():
        if k in _ROW_STATE:
            continue
        ne = v[1:] != v[:-1]
        if ne.ndim > 1:
            ne = ne.flatten(1).any(1)
        change[1:] |= ne
    return torch.cumsum(change, 0) - 1, change.nonzero().squeeze(-1)


def _bound_grid_impl(sl: RowData, boundary, block: int, dt):
    """Boundary of a block's ``K + 1`` grid points for ``G`` rows (traced by torch.compile):
    ``(G, K+1)``; column 0 (the block's start) and columns 1..K are evaluated separately so
    that every vectorized inner dimension is K (no scalar tail loops)."""
    step0 = sl["step"].to(torch.int32)
    dtype = sl["y"].dtype
    m = step0.shape[0]
    ar = torch.arange(block, device=step0.device, dtype=torch.int32)
    t_end = (step0.unsqueeze(-1) + (ar + 1)).to(dtype) * dt
    t_start = step0.unsqueeze(-1).to(dtype) * dt
    b_start = boundary(t_start, sl).expand(m, 1)
    return (torch.cat([b_start, boundary(t_end, sl).expand(m, block)], dim=1),)


_COMPILED: dict[tuple, _CompiledBlock] = {}
_COMPILED_LOCK = threading.Lock()


def _compiled(key: tuple, impl: Callable, what: str, device_type: str) -> _CompiledBlock:
    """The compiled block of ``key`` (created once, also when threads ask at the same time).

    On CPU the key includes the calling thread's torch thread count: inductor bakes the
    OpenMP thread count into its kernels, so a graph compiled for 2 threads must not be
    reused by a 1-thread worker (``simulate(..., workers=n)``), which would oversubscribe."""
    if device_type == "cpu":
        key = (*key, torch.get_num_threads())
    with _COMPILED_LOCK:
        entry = _COMPILED.get(key)
        if entry is None:
            entry = _COMPILED[key] = _CompiledBlock(impl, len(_COMPILED), what, device_type)
    return entry


def _dense_1d_impl(
    sl: RowData,
    grid,
    boundary,
    drift,
    timed: bool,
    noise: str,
    leak,
    block: int,
    dt,
    bridge,
    n_steps,
):
    """One :func:`diffuse_1d` block for ``S`` rows, traced by torch.compile.

    Euler: returns per row whether the trial ends in the block, the index ``j`` of its last
    step there, the side (+1/-1) and the position at the block's end (grid check and the
    ``n_steps`` limit as in :func:`_block_1d`).  Bridge: returns the path ``(S, K)``, the
    boundary on the K+1 grid points and ``max_j (|y_j| - b_j)`` for the eager search (the
    bridge test concerns the few rows near a boundary).  Every vectorized inner dimension is
    K, a multiple of the SIMD width, so no row goes through a scalar tail loop whose math
    could differ.  ``grid``: the
    boundary per row group (:func:`_bound_grid_impl`, rows' group in ``sl["_grp"]``) or None
    (evaluated per row)."""
    y0 = sl["y"]
    # int32 step indices (< 2**29): int64 vector arithmetic/conversions are slow on AVX2
    step0 = sl["step"].to(torch.int32)
    dtype = y0.dtype
    m = step0.shape[0]
    ar = torch.arange(block, device=y0.device, dtype=torch.int32)
    t_prev = (step0.unsqueeze(-1) + ar).to(dtype) * dt if timed else None
    t_end = (step0.unsqueeze(-1) + (ar + 1)).to(dtype) * dt if timed else None
    mu = drift(t_prev, sl)
    if noise == "gauss":
        inc = normal_block_pure(sl["k1"], sl["k2"], step0, block, dtype) * math.sqrt(dt)
    else:
        u0, u1 = uniform_pairs_pure(sl["k1"], sl["k2"], step0, block, dtype)
        alpha = sl["alpha"]
        inc = _stable_from_uniforms(u0, u1, alpha)
        inc = inc * torch.exp(math.log(dt) / alpha).unsqueeze(-1)
    inc = inc + mu * dt
    if leak is None:
        path = torch.cumsum(inc, dim=1) + y0.unsqueeze(-1)
    else:
        log_c = torch.log1p(-sl[leak] * dt).unsqueeze(-1)
        grow = torch.exp(log_c * (ar + 1))
        path = (torch.cumsum(inc / grow, dim=1) + y0.unsqueeze(-1)) * grow
    if grid is not None:
        b_all = grid.index_select(0, sl["_grp"])  # (S, K+1)
        b = b_all[:, 1:]
    else:
        b = boundary(t_end, sl).expand(m, block)
        b_all = None
    if bridge:
        # the bridge test touches few rows: hand the block to the eager search (as the eager
        # engine does): path, boundary on the K+1 grid points, max_j (|y_j| - b_j)
        if b_all is None:
            b_start = boundary(t_prev[:, :1] if timed else None, sl)
            b_all = b_start.expand(m, -1) if b.shape[-1] == 1 else torch.cat([b_start, b], 1)
        return path, b_all, (path.abs() - b).amax(dim=1)
    cross = (path > b) | (path < -b)
    cross = cross & ((step0.unsqueeze(-1) + (ar + 1)) <= n_steps)
    # first crossing: a masked min over the step index (vectorizes, unlike argmax); the side
    # there is recomputed from the row's values at j (no (S, K) masks are stored)
    j = torch.where(cross, ar, block).amin(dim=1)
    hit = j < block
    jc = j.clamp_max(block - 1)
    jl = jc.to(torch.int64).unsqueeze(-1)
    y_j = path.gather(1, jl).squeeze(1)
    b_j = b.gather(1, jl).squeeze(1)
    side = _side_at(y_j > b_j, y_j < -b_j, y_j)
    return hit, jc.to(torch.int64), side.to(torch.int64), path[:, -1]


def _side_at(up_j: torch.Tensor, lo_j: torch.Tensor, y_j: torch.Tensor) -> torch.Tensor:
    """+1 / -1: the side of a first crossing from its upper/lower flags there (shared by the
    eager search and the compiled block).  Collapsed bounds (b <= 0) flag both sides: then
    the particle's sign decides."""
    return torch.where(up_j & lo_j, torch.where(y_j >= 0, 1, -1), torch.where(up_j, 1, -1))


def _dense_race_impl(sl: RowData, boundary, timed: bool, block: int, dt, n_steps):
    """One :func:`race_blocked` block for ``S`` rows, traced by torch.compile: per row,
    whether it ends in the block, the index ``j`` of its last step there, the leading
    accumulator then, and the accumulators at the block's end ``(S, n)``."""
    step0 = sl["step"].to(torch.int32)  # int64 vector arithmetic is slow on AVX2
    dtype = sl["x"].dtype
    ar = torch.arange(1, block + 1, device=step0.device, dtype=torch.int32)
    m, n = sl["sk1"].shape
    # one row of keys per accumulator: (S * n, K) vectorizes like diffuse_1d's noise
    start = step0.unsqueeze(-1).expand(m, n).reshape(-1)
    inc = normal_block_pure(sl["sk1"].reshape(-1), sl["sk2"].reshape(-1), start, block, dtype)
    inc = inc.view(m, n, block) * math.sqrt(dt) + (sl["vv"] * dt).unsqueeze(-1)
    path = torch.cumsum(inc, dim=2) + sl["x"].unsqueeze(-1)
    low = torch.cummin(path, dim=2).values.clamp_max(0.0)
    path = path - low
    t = (step0.unsqueeze(-1) + ar).to(dtype) * dt if timed else None
    lead = path.amax(dim=1) - boundary(t, sl)
    cross = (lead > 0) & ((step0.unsqueeze(-1) + ar) <= n_steps)
    j = torch.where(cross, ar - 1, block).amin(dim=1)
    hit = j < block
    j = j.clamp_max(block - 1).to(torch.int64)
    at = path.gather(2, j.view(-1, 1, 1).expand(-1, n, 1)).squeeze(2)
    return hit, j, torch.argmax(at, dim=-1), path[:, :, -1]


def time_independent(fn: TimeFn) -> TimeFn:
    """Mark a boundary/drift function that ignores its time argument (it may receive None).

    The engines then skip building the block's time grid.
    """
    fn.time_independent = True
    return fn


def _time_grid(step0: torch.Tensor, ar: torch.Tensor, dtype, dt: float) -> torch.Tensor:
    """Times ``(step0 + j) dt`` of a block's grid points: ``(S, K+1)``, or ``(1, K+1)`` when
    all rows are at the same step (rows advance in lockstep unless they started apart)."""
    if step0.shape[0] > 1 and bool((step0 == step0[0]).all()):
        step0 = step0[:1]
    return (step0.unsqueeze(-1) + ar).to(dtype) * dt


def _eager_dense_1d(sl, ar, *, boundary, drift, timed, dt, noise, leak):
    """Eager dense part of a :func:`diffuse_1d` block: (path, boundary, max (|y| - b))."""
    dtype = sl["y"].dtype
    block = ar.shape[0] - 1
    step0 = sl["step"]
    t = _time_grid(step0, ar, dtype, dt) if timed else None  # (S or 1, K+1)
    mu = drift(t[:, :-1] if timed else None, sl)
    if noise == "gauss":
        inc = normal_block(sl["k1"], sl["k2"], step0, block, dtype)
        inc *= math.sqrt(dt)
    else:
        inc = levy_block(sl["k1"], sl["k2"], step0, block, sl["alpha"], dtype)
        inc *= torch.exp(math.log(dt) / sl["alpha"]).unsqueeze(-1)
    inc += mu * dt
    y0 = sl["y"]
    if leak is None:
        path = torch.cumsum(inc, dim=1, out=inc)
        path += y0.unsqueeze(-1)
    else:
        log_c = torch.log1p(-sl[leak] * dt).unsqueeze(-1)
        grow = torch.exp(log_c * ar[1:])  # c^(j+1), j = 0..K-1
        inc /= grow
        path = torch.cumsum(inc, dim=1, out=inc)
        path += y0.unsqueeze(-1)
        path *= grow
    b_all = boundary(t, sl)  # (S or 1, K+1) or (S, 1)
    b_all = b_all.expand(step0.shape[0], -1)
    b = b_all[:, 1:] if b_all.shape[-1] > 1 else b_all
    # |y| > b  <=>  y > b or y < -b: one reduction finds the rows that may end in this block
    dist = path.abs()
    dist -= b
    dmax = dist.amax(dim=1)
    return path, b_all, dmax


def _finish(out, step0: torch.Tensor, state: torch.Tensor):
    """(hit rows, end step, code) from a compiled block's per-row output; moves ``state``
    to the block's end."""
    hit, j, code, end_state = out
    state.copy_(end_state)
    if not bool(hit.any()):
        return None
    hi = hit.nonzero().squeeze(-1)
    return hi, step0.index_select(0, hi) + j.index_select(0, hi) + 1, code.index_select(0, hi)


def _block_1d(
    sl, ar, *, boundary, drift, timed, n_steps, dt, bridge, noise, leak, dense=None, bgrid=None
):
    """One block of :func:`diffuse_1d` for a slice of rows; returns (hit rows, end, side).

    ``dense``, ``bgrid``: :class:`_CompiledBlock` of :func:`_dense_1d_impl` and of
    :func:`_bound_grid_impl` (time-dependent boundaries); None: eager."""
    block = ar.shape[0] - 1
    step0 = sl["step"]
    y0 = sl["y"]
    out = None
    if dense is not None:
        grid = None
        if bgrid is not None:
            grp, first = _groups(sl)
            g = bgrid({k: v.index_select(0, first) for k, v in sl.items()}, boundary, block, dt)
            if g is not None:
                grid = g[0]
                sl = {**sl, "_grp": grp}
        out = dense(sl, grid, boundary, drift, timed, noise, leak, block, dt, bridge, n_steps)
        if out is not None and not bridge:
            return _finish(out, step0, y0)
    if out is None:
        out = _eager_dense_1d(
            sl, ar, boundary=boundary, drift=drift, timed=timed, dt=dt, noise=noise, leak=leak
        )
    path, b_all, dmax = out
    if bridge:
        thr = BRIDGE_WINDOW * math.sqrt(dt)
        cand = (dmax > -thr) | ((y0.abs() - b_all[:, 0]) > -thr)
    else:
        cand = dmax > 0
    res = None
    if bool(cand.any()):
        ci = cand.nonzero().squeeze(-1)
        pc = path.index_select(0, ci)
        bc_all = b_all.index_select(0, ci).expand(-1, block + 1)
        bc = bc_all[:, 1:]
        up = pc > bc
        lo = pc < -bc
        cross = up | lo
        s0 = step0.index_select(0, ci)
        if bridge:
            sub = {"y": y0.index_select(0, ci), "k1": sl["k1"].index_select(0, ci)}
            sub["k2"] = sl["k2"].index_select(0, ci)
            _bridge_crossings(sub, pc, bc_all, up, lo, cross, s0, dt)
        if int(s0.max()) + block > n_steps:
            cross &= (s0.unsqueeze(-1) + ar[1:]) <= n_steps
        j = torch.argmax(cross.view(torch.uint8), dim=1, keepdim=True)
        hit = cross.gather(1, j).squeeze(1)
        if bool(hit.any()):
            hi = hit.nonzero().squeeze(-1)
            jj = j.index_select(0, hi)
            up_j = up.index_select(0, hi).gather(1, jj).squeeze(1)
            lo_j = lo.index_select(0, hi).gather(1, jj).squeeze(1)
            y_j = pc.index_select(0, hi).gather(1, jj).squeeze(1)
            side = _side_at(up_j, lo_j, y_j)
            res = (ci.index_select(0, hi), s0.index_select(0, hi) + jj.squeeze(1) + 1, side)
    y0.copy_(path[:, -1])
    return res


def diffuse_1d(
    rows: RowData,
    *,
    boundary: TimeFn,
    drift: TimeFn,
    n_steps: int,
    dt: float,
    method: str,
    block: int = 64,
    noise: str = "gauss",
    stream: int = 0,
    leak: str | None = None,
    compile: bool | None = None,  # noqa: A002 - the public option's name
    refine: bool | None = None,
) -> RowData:
    """First passage of ``M`` one-dimensional diffusions with state-independent drift
    (or a linear leak).

    Parameters
    ----------
    rows:
        Per-row tensors: ``y`` (start position), ``step`` (int64 start step), ``k1``, ``k2``
        (RNG keys), ``row`` (int64 output position), ``alpha`` when ``noise="levy"`` and
        whatever ``boundary``/``drift`` read.
    boundary, drift:
        ``fn(t, rows) -> Tensor`` broadcastable to ``(M, K)`` for a time grid ``t`` of shape
        ``(M, K)``: boundary height and total drift.  Functions marked with
        :func:`time_independent` receive ``t=None``.
    n_steps:
        Last step index a trial may end on (``round(max_t / dt)``).
    method:
        ``"euler"`` or ``"bridge"`` (the latter only for Gaussian noise).
    noise:
        ``"gauss"`` (unit diffusion coefficient) or ``"levy"`` (increments
        ``dt ** (1 / alpha) * S_alpha``).
    stream:
        RNG stream (independent noise for independent stages of one trial).
    leak:
        Name of a per-row tensor ``g``: Ornstein-Uhlenbeck Euler recursion
        ``y <- (1 - g dt) y + v dt + sqrt(dt) N``, summed over the block in closed form
        ``y_j = c^j (y_0 + sum_{i<j} c^-(i+1) u_i)`` with ``c = 1 - g dt`` (needs ``c > 0``).
    compile:
        Run the dense part of each block through ``torch.compile`` (None: the setting of
        :func:`compiled_blocks`, default off).  Same seed, same device and same setting give
        the same output whatever the chunking; compiled and eager may differ in the last ulp
        of the noise.
    refine:
        Walk in windows of ``REFINE_STEPS`` steps and draw a window's fine steps only where
        it may end a trial (:mod:`simulators.refine`: same scheme in distribution, different
        draws).  None (default): on where it applies, i.e. Gaussian noise and a drift
        marked :func:`time_independent` (with or without ``leak``); True there too; False:
        every step is drawn.

    Returns
    -------
    dict with ``row`` (output positions of the rows that finished), ``end`` (int64 end step)
    and ``side`` (+1 upper, -1 lower).  Rows not listed did not finish.
    """
    device = rows["y"].device
    rows = dict(rows)
    rows["k1"], rows["k2"] = stream_keys(rows["k1"], rows["k2"], stream)
    rows["y"] = rows["y"].clone()  # updated in place, slice by slice
    fits = noise == "gauss" and getattr(drift, "time_independent", False)
    if refine and not fits:
        raise ValueError(
            "refine: needs Gaussian noise and a drift marked time_independent "
            f"(got noise={noise!r})"
        )
    if fits and refine is not False:
        use_compile = _COMPILE.get() if compile is None else compile
        return _diffuse_refined(
            rows,
            boundary=boundary,
            drift=drift,
            n_steps=n_steps,
            dt=dt,
            bridge=method == "bridge",
            compiled=use_compile,
            leak=leak,
        )
    timed = not (
        getattr(boundary, "time_independent", False) and getattr(drift, "time_independent", False)
    )
    ar = torch.arange(block + 1, device=device)
    out_row, out_end, out_side = [], [], []
    opts = {
        "boundary": boundary,
        "drift": drift,
        "timed": timed,
        "n_steps": n_steps,
        "dt": dt,
        "bridge": method == "bridge",
        "noise": noise,
        "leak": leak,
    }
    if _COMPILE.get() if compile is None else compile:
        key = ("1d", noise, leak, timed, method, block, float(dt), n_steps)
        key += (rows["y"].dtype, device.type)
        key += (_fn_key(boundary), _fn_key(drift))
        opts["dense"] = _compiled(key, _dense_1d_impl, f"diffuse_1d ({noise} noise)", device.type)
        if not getattr(boundary, "time_independent", False):
            gkey = ("bound", block, float(dt), rows["y"].dtype, device.type, _fn_key(boundary))
            opts["bgrid"] = _compiled(gkey, _bound_grid_impl, "diffuse_1d boundary", device.type)
    slice_elements = SLICE_ELEMENTS if opts.get("dense") is None else COMPILED_SLICE_ELEMENTS
    while rows["y"].shape[0] > 0:
        m = rows["y"].shape[0]
        keep = torch.ones(m, dtype=torch.bool, device=device)
        for i0, i1 in _slices(m, block, device, slice_elements):
            sl = {k: v[i0:i1] for k, v in rows.items()}
            res = _block_1d(sl, ar, **opts)
            if res is not None:
                r, e, side = res
                keep[r + i0] = False
                out_row.append(sl["row"].index_select(0, r))
                out_end.append(e)
                out_side.append(side.to(torch.int64))
        rows["step"] = rows["step"] + block
        keep &= rows["step"] < n_steps
        if not bool(keep.all()):
            rows = _compact(rows, keep)
    if out_row:
        return {
            "row": torch.cat(out_row),
            "end": torch.cat(out_end),
            "side": torch.cat(out_side),
        }
    empty = torch.zeros(0, dtype=torch.int64, device=device)
    return {"row": empty, "end": empty, "side": empty}


# rows per slice of the refined engine: SLICE_ELEMENTS_REFINE / REFINE_WINDOWS
SLICE_ELEMENTS_REFINE = 1 << 18


def _diffuse_refined(rows, *, boundary, drift, n_steps, dt, bridge, compiled, leak=None):
    """:func:`diffuse_1d` through :func:`simulators.refine.refine_block` (keys already in the
    stage's stream, ``y`` already a private copy)."""
    device = rows["y"].device
    m = rows["y"].shape[0]
    dtype = rows["y"].dtype
    rows["ck1"], rows["ck2"] = coarse_keys(rows["k1"], rows["k2"])
    rows["mu"] = torch.broadcast_to(drift(None, rows), (m, 1)).reshape(-1).to(dtype).contiguous()
    span = REFINE_STEPS * REFINE_WINDOWS
    # the leak's skip rule works per row group on the boundary's grid: also for a constant one
    timed = leak is not None or not getattr(boundary, "time_independent", False)
    if leak is not None:
        rows["g"] = rows[leak]
    coarse = fine = bgrid = None
    if compiled:
        base = (float(dt), n_steps, dtype, device.type)
        coarse_impl = _coarse_impl if leak is None else _coarse_leak_impl
        coarse = _compiled(
            ("refine-coarse", timed, leak is None, bridge, *base),
            coarse_impl,
            "refine (windows)",
            device.type,
        )
        fine = _compiled(
            ("refine-fine", bridge, leak is None, *base),
            _fine_impl,
            "refine (fine steps)",
            device.type,
        )
        if timed:
            gkey = ("bound", span, float(dt), dtype, device.type, _fn_key(boundary))
            bgrid = _compiled(gkey, _bound_grid_impl, "diffuse_1d boundary", device.type)
    out_row, out_end, out_side = [], [], []
    while rows["y"].shape[0] > 0:
        m = rows["y"].shape[0]
        keep = torch.ones(m, dtype=torch.bool, device=device)
        for i0, i1 in _slices(m, REFINE_WINDOWS, device, SLICE_ELEMENTS_REFINE):
            sl = {k: v[i0:i1] for k, v in rows.items()}
            gpar = None
            if timed:
                grp, first = _groups(sl)
                sl["grp"] = grp
                sub = {k: v.index_select(0, first) for k, v in sl.items()}
                g = bgrid(sub, boundary, span, dt) if bgrid is not None else None
                table = (g if g is not None else _bound_grid_impl(sub, boundary, span, dt))[0]
                if leak is not None:
                    gpar = torch.stack([sub["mu"], sub["g"]], dim=1)
            else:
                sl["grp"] = sl["step"]  # unused
                table = torch.broadcast_to(boundary(None, sl), (i1 - i0, 1)).to(dtype)
            res = refine_block(
                sl,
                table=table.contiguous(),
                timed=timed,
                n_steps=n_steps,
                dt=dt,
                bridge=bridge,
                coarse=coarse,
                fine=fine,
                gpar=gpar,
            )
            if res is not None:
                r, e, side = res
                keep[r + i0] = False
                out_row.append(sl["row"].index_select(0, r))
                out_end.append(e)
                out_side.append(side)
        rows["step"] = rows["step"] + span
        keep &= rows["step"] < n_steps
        if not bool(keep.all()):
            rows = _compact(rows, keep)
    if out_row:
        return {"row": torch.cat(out_row), "end": torch.cat(out_end), "side": torch.cat(out_side)}
    empty = torch.zeros(0, dtype=torch.int64, device=device)
    return {"row": empty, "end": empty, "side": empty}


def step_loop(
    rows: RowData,
    *,
    step: Callable[[RowData, torch.Tensor, torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]],
    n_noise: int,
    n_steps: int,
    block: int = 64,
    stream: int = 0,
) -> RowData:
    """Generic stepwise engine for state-dependent dynamics.

    ``step(rows, z, t_end, k) -> (done, code)`` advances the state held in ``rows`` by one
    step in place (``z``: ``(M, n_noise)`` standard normals for this step, ``t_end``: step
    index at the end of the step as an ``(M,)`` int64 tensor, ``k``: position within the
    block) and returns which rows have decided and an int64 outcome code for them.  Rows
    need ``step``, ``k1``, ``k2`` and ``row``.

    Returns ``row``, ``end`` (end step) and ``code`` of the rows that finished.
    """
    rows = dict(rows)
    device = rows["k1"].device
    dtype = next(v for v in rows.values() if v.is_floating_point()).dtype
    rows["k1"], rows["k2"] = stream_keys(rows["k1"], rows["k2"], stream)
    out_row, out_end, out_code = [], [], []
    while rows["k1"].shape[0] > 0:
        m = rows["k1"].shape[0]
        step0 = rows["step"]
        zs = [
            normal_block(*stream_keys(rows["k1"], rows["k2"], 101 + i), step0, block, dtype)
            for i in range(n_noise)
        ]
        z = torch.stack(zs, dim=-1)  # (M, K, n_noise)
        done = torch.zeros(m, dtype=torch.bool, device=device)
        end = torch.zeros(m, dtype=torch.int64, device=device)
        code = torch.zeros(m, dtype=torch.int64, device=device)
        for k in range(block):
            t_end = step0 + (k + 1)
            d, c = step(rows, z[:, k], t_end, k)
            new = d & ~done & (t_end <= n_steps)
            end = torch.where(new, t_end, end)
            code = torch.where(new, c, code)
            done = done | new
        if bool(done.any()):
            hi = done.nonzero().squeeze(-1)
            out_row.append(rows["row"].index_select(0, hi))
            out_end.append(end.index_select(0, hi))
            out_code.append(code.index_select(0, hi))
        rows["step"] = step0 + block
        keep = ~done & (rows["step"] < n_steps)
        rows = _compact(rows, keep)
    if out_row:
        return {"row": torch.cat(out_row), "end": torch.cat(out_end), "code": torch.cat(out_code)}
    empty = torch.zeros(0, dtype=torch.int64, device=device)
    return {"row": empty, "end": empty, "code": empty}


def _eager_dense_race(sl, ar, *, boundary, dt):
    """Eager dense part of a :func:`race_blocked` block: (paths, lead, max lead)."""
    dtype = sl["x"].dtype
    n = sl["x"].shape[-1]
    block = ar.shape[0]
    step0 = sl["step"]
    zs = [
        normal_block(*stream_keys(sl["k1"], sl["k2"], 101 + i), step0, block, dtype)
        for i in range(n)
    ]
    inc = torch.stack(zs, dim=1)  # (S, n, K): time last, contiguous scans
    inc *= math.sqrt(dt)
    inc += (sl["vv"] * dt).unsqueeze(-1)
    path = torch.cumsum(inc, dim=2, out=inc)
    path += sl["x"].unsqueeze(-1)
    low = torch.cummin(path, dim=2).values.clamp_max_(0.0)
    path -= low
    t = None
    if not getattr(boundary, "time_independent", False):
        t = _time_grid(step0, ar, dtype, dt)
    b = boundary(t, sl)  # (S or 1, K) or (S, 1)
    lead = path.amax(dim=1)  # (S, K): the largest accumulator at each step
    lead -= b
    return path, lead, lead.amax(dim=1)


def _block_race(sl, ar, *, boundary, n_steps, dt, dense=None):
    """One block of :func:`race_blocked` for a slice of rows; returns (hit rows, end, code).

    ``dense``: a :class:`_CompiledBlock` of :func:`_dense_race_impl` (None: eager)."""
    n = sl["x"].shape[-1]
    block = ar.shape[0]
    step0 = sl["step"]
    if dense is not None:
        timed = not getattr(boundary, "time_independent", False)
        out = dense(sl, boundary, timed, block, dt, n_steps)
        if out is not None:
            return _finish(out, step0, sl["x"])
    path, lead, lead_max = _eager_dense_race(sl, ar, boundary=boundary, dt=dt)
    tidx = step0.unsqueeze(-1) + ar  # (S, K)
    cand = lead_max > 0
    res = None
    if bool(cand.any()):
        ci = cand.nonzero().squeeze(-1)
        cross = lead.index_select(0, ci) > 0
        if int(step0.max()) + block > n_steps:
            cross &= tidx.index_select(0, ci) <= n_steps
        j = torch.argmax(cross.view(torch.uint8), dim=1, keepdim=True)
        hit = cross.gather(1, j).squeeze(1)
        if bool(hit.any()):
            hi = hit.nonzero().squeeze(-1)
            ri = ci.index_select(0, hi)
            jj = j.index_select(0, hi)
            at = path.index_select(0, ri).gather(2, jj.unsqueeze(1).expand(-1, n, 1)).squeeze(2)
            res = (ri, step0.index_select(0, ri) + jj.squeeze(1) + 1, torch.argmax(at, dim=-1))
    sl["x"].copy_(path[:, :, -1])
    return res


def race_blocked(
    rows: RowData,
    *,
    boundary: TimeFn,
    n_steps: int,
    dt: float,
    block: int = 64,
    stream: int = 0,
    compile: bool | None = None,  # noqa: A002 - the public option's name
) -> RowData:
    """First passage of independent racing diffusions reflected at 0, a block at a time.

    ``rows["x"]`` (``(M, n)``: start positions) and ``rows["vv"]`` (``(M, n)``: drifts).  Each
    accumulator follows the Euler recursion ``x <- max(0, x + v dt + sqrt(dt) N)``, computed
    for a whole block with the Lindley identity ``W_j = P_j - min(0, min_{i<=j} P_i)`` where
    ``P`` is the unreflected path.  The trial ends at the first step where an accumulator
    exceeds ``b(t)``; ``code`` is the index of the largest accumulator then.  ``compile``:
    as in :func:`diffuse_1d`.
    """
    rows = dict(rows)
    device = rows["x"].device
    n = rows["x"].shape[-1]
    rows["k1"], rows["k2"] = stream_keys(rows["k1"], rows["k2"], stream)
    rows["x"] = rows["x"].clone()  # updated in place, slice by slice
    ar = torch.arange(1, block + 1, device=device)
    dense = None
    if _COMPILE.get() if compile is None else compile:
        # the accumulators' noise keys, computed once (the eager block derives them per block)
        sks = [stream_keys(rows["k1"], rows["k2"], 101 + i) for i in range(n)]
        rows["sk1"] = torch.stack([k[0] for k in sks], dim=1)
        rows["sk2"] = torch.stack([k[1] for k in sks], dim=1)
        timed = not getattr(boundary, "time_independent", False)
        key = ("race", n, timed, block, float(dt), n_steps, rows["x"].dtype, device.type)
        key += (_fn_key(boundary),)
        dense = _compiled(key, _dense_race_impl, f"race_blocked ({n} accumulators)", device.type)
    out_row, out_end, out_code = [], [], []
    while rows["x"].shape[0] > 0:
        m = rows["x"].shape[0]
        keep = torch.ones(m, dtype=torch.bool, device=device)
        elements = SLICE_ELEMENTS if dense is None else COMPILED_SLICE_ELEMENTS
        for i0, i1 in _slices(m, block * n, device, elements):
            sl = {k: v[i0:i1] for k, v in rows.items()}
            res = _block_race(sl, ar, boundary=boundary, n_steps=n_steps, dt=dt, dense=dense)
            if res is not None:
                r, e, code = res
                keep[r + i0] = False
                out_row.append(sl["row"].index_select(0, r))
                out_end.append(e)
                out_code.append(code)
        rows["step"] = rows["step"] + block
        keep &= rows["step"] < n_steps
        if not bool(keep.all()):
            rows = _compact(rows, keep)
    if out_row:
        return {"row": torch.cat(out_row), "end": torch.cat(out_end), "code": torch.cat(out_code)}
    empty = torch.zeros(0, dtype=torch.int64, device=device)
    return {"row": empty, "end": empty, "code": empty}
