"""Coarse-to-fine race engine: reflected racing diffusions that pay for fine steps only
where a window may hold a reflection or a boundary crossing.

:func:`~simulators.engine.race_blocked` takes every Euler step of every accumulator.  This
engine simulates the same discrete scheme in distribution (each accumulator follows
``x <- max(0, x + v dt + sqrt(dt) N)`` on the ``dt`` grid; the trial ends at the first grid
step where the largest accumulator exceeds ``b(t)``; the code is the index of the largest
accumulator then; same ``n_steps`` limit) in *windows* of ``K`` fine steps:

1. For every accumulator the unreflected increment over the window is drawn at once:
   ``S ~ N(v K dt, K dt)`` (the exact sum of the ``K`` fine increments).
2. An accumulator's window is *safe* when, with probability at least ``1 - eps``, its fine
   grid points stay inside ``(0, m)`` with ``m`` the boundary's minimum over the window's
   ``K + 1`` grid points.  The grid points lie on the continuous Brownian bridge from
   ``x_0`` to ``x_K = x_0 + S`` over time ``K dt``, which reaches a level ``L`` with
   probability ``exp(-2 (L - x_0)(L - x_K) / (K dt))``, so safe means
   ``x_0 x_K > h``, ``(m - x_0)(m - x_K) > h`` (all four distances positive) with
   ``h = K dt log(2 / eps) / 2``.  Then the reflection does not act, the accumulator
   cannot exceed the boundary in the window and it simply moves to ``x_0 + S``.
3. The other accumulators get their ``K`` fine points as an exact discrete Brownian bridge
   (``P_j = x_0 + B_j + (j / K)(S - B_K)`` with ``B`` a free walk of ``K`` fresh increments;
   exact for a constant drift), are reflected with the Lindley identity
   ``W_j = P_j - min(0, min_{i <= j} P_i)`` and checked against the boundary at the ``K``
   grid points, with the ``n_steps`` limit.  Safe accumulators are below the boundary, so
   the first crossing and the leading accumulator there are found among the refined ones.

The output follows ``race_blocked``'s distribution up to ``eps`` per safe window (1e-9);
the individual draws differ from it.  All draws come from :mod:`simulators.rng` keyed per
trial: the window increments from one stream (counters at the window's first
step), the fine normals from another stream per accumulator (counters = the fine steps), so
the output does not depend on chunking or on which rows are simulated together.

Cost (race_no_bias_3, 1,000 parameter sets drawn like ``benchmarks/simulators.py`` x 1,000
trials, dt 1e-3, one thread, 2-core machine with load ~1.8): 20.8 % of the accumulator
windows are refined; eager 16.2 s, compiled 5.7 s (``compile=True``, after a one-off
compilation of ~10-30 s), against race_blocked eager 29.8 s / compiled 20.3 s and
ssm-simulators 0.15 29.4 s.  With ``compile`` the dense parts (window ends and safe test;
the refined accumulators' walk, reflection and crossing search, gathered inside the graph)
run as two fused torch.compile'd functions per setting; the rest (which accumulators to
refine, the first crossing per row, compaction) stays eager.

Example
-------
>>> import torch
>>> from simulators.engine import time_independent
>>> from simulators.refine_race import race_refined
>>> from simulators.rng import trial_keys
>>> k1, k2 = trial_keys(0, torch.zeros(4), torch.arange(4))
>>> rows = {"x": torch.full((4, 2), 0.5), "vv": torch.tensor([[1.0, 0.5]]).expand(4, 2),
...         "step": torch.zeros(4, dtype=torch.int64), "k1": k1, "k2": k2,
...         "row": torch.arange(4), "a": torch.full((4,), 1.5)}
>>> bound = time_independent(lambda t, r: r["a"].unsqueeze(-1))
>>> out = race_refined(rows, boundary=bound, n_steps=20_000, dt=1e-3)
>>> sorted(out) == ["code", "end", "row"]
True
"""

from __future__ import annotations

import math

import torch

from simulators import engine as _engine
from simulators.engine import _COMPILE, _compact, _groups
from simulators.rng import normal_block, stream_keys, uniform_pure

__all__ = ["REFINE_EPS", "race_refined"]

#: default bound on the probability that a skipped (safe) window of one accumulator would
#: have been reflected or would have crossed the boundary on the fine grid
REFINE_EPS = 1e-9

# RNG streams (on top of the caller's ``stream``): the window increments of all accumulators
# (normals at counters from the window's first step, one per accumulator) and the fine
# normals of accumulator i (_STREAM_FINE + i, counters = fine steps).  Different from
# race_blocked's 101 + i.
_STREAM_COARSE = 401
_STREAM_FINE = 301

# rows per slice: about SLICE_ELEMENTS (rows x accumulators x window) elements, as the
# blocked engines (eager temporaries stay in cache); compiled calls take larger slices (fewer
# calls; their temporaries live in registers).  Measured on race_no_bias_3, 100 sets x 1,000
# trials, 1 thread: compiled 1.67 / 1.51 / 1.48 s for 2**20 / 2**22 / 2**24, eager 2.26 /
# 2.15 s for 2**20 / 2**22 (a loaded 2-core machine: +-10 %).
SLICE_ELEMENTS = 1 << 20
COMPILED_SLICE_ELEMENTS = 1 << 22

# engine-private per-row keys (excluded from the parameter groups of a time-dependent bound)
_KEYS = ("ck1", "ck2", "fk1", "fk2")

# row padding of the noise draws: a multiple of any CPU float SIMD width, so that no element
# goes through a scalar tail loop whose log/cos could differ in the last ulp (the output must
# not depend on a row's position in a slice)
_PAD = 16


def _normals(k1: torch.Tensor, k2: torch.Tensor, start: torch.Tensor, k: int, dtype):
    """``(R, k)`` standard normals of counters from ``start`` (rows padded to _PAD)."""
    r = k1.shape[0]
    pad = (-r) % _PAD
    if pad:
        k1 = torch.cat([k1, k1[:1].expand(pad)])
        k2 = torch.cat([k2, k2[:1].expand(pad)])
        start = torch.cat([start, start[:1].expand(pad)])
    return normal_block(k1, k2, start, k, dtype)[:r]


def _pad_rows(v: torch.Tensor) -> torch.Tensor:
    pad = (-v.shape[0]) % _PAD
    return torch.cat([v, v[:1].expand(pad, *v.shape[1:])]) if pad else v


def _bound_grid(first, boundary, window: int, dt: float, dtype) -> torch.Tensor:
    """Boundary at a window's ``K + 1`` grid points for one row per group: ``(G, K+1)``.

    Rows are padded to _PAD so that the boundary's elementwise math treats every row alike
    (no scalar tail loop), whatever the number of groups."""
    g = first["step"].shape[0]
    first = {k: _pad_rows(v) for k, v in first.items()}
    ar = torch.arange(window + 1, device=first["step"].device)
    t = (first["step"].unsqueeze(-1) + ar).to(dtype) * dt
    return boundary(t, first).expand(t.shape[0], window + 1)[:g]


def _bridge(
    z: torch.Tensor, x0: torch.Tensor, xk: torch.Tensor, frac: torch.Tensor, dt: float
) -> torch.Tensor:
    """Discrete Brownian bridge from ``x0`` to ``xk`` (``(R, 1)``) over ``K`` steps of
    ``dt`` from ``K`` standard normals per row ``z`` (``(R, K)``, overwritten): the points
    ``P_j = x0 + B_j + (j/K)(xk - x0 - B_K)``, ``j = 1..K``, with ``B`` the walk of the
    increments ``sqrt(dt) z`` (a constant drift cancels); ``frac`` = ``j/K`` (``(1, K)``).
    ``P_K`` equals ``xk``."""
    path = torch.cumsum(z, dim=1, out=z)
    path -= frac * path[:, -1:]
    path *= math.sqrt(dt)
    path += x0
    path += frac * (xk - x0)
    path[:, -1:] = xk  # the same end point as a skipped window (no rounding difference)
    return path


def _row_slices(m: int, per_row: int, device: torch.device, elements: int):
    """Row ranges of about ``elements / per_row`` rows, a multiple of _PAD (compiled calls
    then pad only the last slice); one range off the CPU."""
    if device.type != "cpu":
        return [(0, m)]
    s = max(_PAD, elements // per_row // _PAD * _PAD)
    return [(i, min(i + s, m)) for i in range(0, m, s)]


class _Stats:
    """Counts of accumulator windows simulated and refined (for benchmarks)."""

    def __init__(self) -> None:
        self.windows = 0
        self.refined = 0


def _coarse_eager(sub, window: int, dt: float, h: float):
    """Window ends ``x_K`` (``(S, n)``) and the safe mask of every accumulator."""
    x0 = sub["x"]
    n = x0.shape[1]
    kdt = window * dt
    nc = n + (n % 2)
    zc = _normals(sub["ck1"], sub["ck2"], sub["step"], nc, x0.dtype)
    xk = zc[:, :n].contiguous() if nc != n else zc
    xk *= math.sqrt(kdt)
    xk += sub["vv"] * kdt
    xk += x0
    u0 = sub["bmin"] - x0
    uk = sub["bmin"] - xk
    safe = (x0 * xk > h) & (xk > 0) & (u0 * uk > h) & (u0 + uk > 0)
    safe |= torch.isnan(x0)  # finished rows awaiting compaction
    return xk, safe


def _coarse_impl(sub, window: int, dt: float, h: float):
    """:func:`_coarse_eager` for torch.compile (same arithmetic, pure RNG forms), written
    per accumulator column so that the row dimension is innermost in the fused loop; the
    mask is returned as float 0/1 (``1``: refine): inductor's CPU code for bool outputs was
    several times slower than for float ones (measured 6.1 vs 1.9 ms for 87,376 rows)."""
    x0 = sub["x"]
    n = x0.shape[1]
    kdt = window * dt
    nc = n + (n % 2)
    start = (torch.div(sub["step"], 2, rounding_mode="floor") * 2).to(torch.int32)
    k1, k2 = sub["ck1"], sub["ck2"]
    cols = []
    for p in range(nc // 2):
        rad = torch.sqrt(-2.0 * torch.log(uniform_pure(k1, k2, start + 2 * p, x0.dtype)))
        ang = uniform_pure(k1, k2, start + (2 * p + 1), x0.dtype) * (2.0 * math.pi)
        cols.append(torch.cos(ang) * rad)
        if 2 * p + 1 < n:  # (odd n: the last pair's second normal is not used)
            cols.append(torch.sin(ang) * rad)
    bmin = sub["bmin"][:, 0]
    xs, refine = [], []
    for i in range(n):
        x0i = x0[:, i]
        xk = cols[i] * math.sqrt(kdt) + sub["vv"][:, i] * kdt + x0i
        u0 = bmin - x0i
        uk = bmin - xk
        safe = (x0i * xk > h) & (xk > 0) & (u0 * uk > h) & (u0 + uk > 0) | torch.isnan(x0i)
        xs.append(xk)
        refine.append(torch.where(safe, 0.0, 1.0))
    return torch.stack(xs, dim=1), torch.stack(refine, dim=1)


def _fine_eager(sub, frac, ar, window: int, dt: float, n_steps: int):
    """The refined accumulators' reflected fine walk: per accumulator its end value, the
    index ``j`` of its first grid point above the bound within ``n_steps`` (``K``: none;
    float) and its value there (its end value when none)."""
    s0 = sub["step"]
    z = _normals(sub["k1"], sub["k2"], s0, window, sub["x0"].dtype)
    path = _bridge(z, sub["x0"], sub["xk"], frac, dt)
    low = torch.cummin(path, dim=1).values.clamp_max_(0.0)
    path -= low
    over = path > sub["b"]
    if int(s0.max()) + window > n_steps:
        over &= (s0.unsqueeze(-1) + ar) <= n_steps
    # first crossing: a masked min over float step indices (a min over int64 is slow on CPU)
    j = torch.where(over, (ar - 1).to(path.dtype), float(window)).amin(dim=1)
    jl = j.to(torch.int64).clamp_max_(window - 1).unsqueeze(-1)
    return path[:, -1], j, path.gather(1, jl).squeeze(1)


def _fine_impl(sel, step0, fk1, fk2, x0f, xkf, bsrc, bgrp, window: int, dt: float, n_steps: int):
    """:func:`_fine_eager` for torch.compile: the same draws, written column by column (one
    ``(R,)`` tensor per fine step, so that inductor fuses the walk, the bridge, the running
    minimum and the crossing search into one loop over the rows; ``cummin`` would run as a
    separate ATen call).  The running sum is accumulated in the float type (eager ``cumsum``
    accumulates in double), so compiled and eager may differ in the last ulp.

    The refined accumulators are gathered inside the graph (fused into the loop):
    ``sel["step"]`` holds their rows in the slice (named so for the compiled block's row
    count), ``sel["idx"]`` their flat ``row * n + accumulator`` index; ``step0`` ``(S,)``,
    ``fk1``/``fk2``/``x0f``/``xkf`` ``(S n,)`` are the slice's tensors; ``bsrc`` the bound:
    ``(S, 1)`` per row, or ``(G, K+1)`` per group with ``bgrp`` ``(S,)`` the rows' groups."""
    r, idx = sel["step"], sel["idx"]
    s0 = step0[r]
    x0, xk = x0f[idx], xkf[idx]
    dtype = x0.dtype
    k1, k2 = fk1[idx], fk2[idx]
    b = bsrc[r] if bgrp is None else bsrc[bgrp[r]][:, 1:]
    start = (torch.div(s0, 2, rounding_mode="floor") * 2).to(torch.int32)
    z = []
    for p in range(window // 2):
        rad = torch.sqrt(-2.0 * torch.log(uniform_pure(k1, k2, start + 2 * p, dtype)))
        ang = uniform_pure(k1, k2, start + (2 * p + 1), dtype) * (2.0 * math.pi)
        z += [torch.cos(ang) * rad, torch.sin(ang) * rad]
    c = [z[0]]
    for j in range(1, window):
        c.append(c[-1] + z[j])
    sq = math.sqrt(dt)
    low = torch.zeros_like(x0)
    # float outputs (see _coarse_impl): index of the first crossing, value there
    first = torch.full_like(x0, float(window))
    val = x0
    for j in range(window):
        f = (j + 1) / window
        if j + 1 < window:
            pj = (c[j] - f * c[-1]) * sq + x0 + f * (xk - x0)
        else:
            pj = xk
        low = torch.minimum(low, pj)
        wj = pj - low
        bj = b[:, j] if b.shape[1] > 1 else b[:, 0]
        hit = (wj > bj) & (s0 + (j + 1) <= n_steps) & (first == window)
        first = torch.where(hit, float(j), first)
        val = torch.where(hit, wj, val) if j + 1 < window else torch.where(first == window, wj, val)
    return wj, first, val


def _window(sl, frac, ar, *, boundary, timed, n_steps, dt, window, h, stats, coarse, fine):
    """One window for a slice of rows; moves ``sl["x"]`` in place, returns
    (hit rows, end step, code) or None.  ``coarse``, ``fine``: compiled blocks of
    :func:`_coarse_impl` / :func:`_fine_impl` (None: eager)."""
    x0 = sl["x"]
    step0 = sl["step"]
    s, n = x0.shape
    dtype = x0.dtype
    # boundary over the window: minimum per row, values per parameter group
    if timed:
        params = {k: v for k, v in sl.items() if k not in _KEYS}
        grp, first = _groups(params)
        grid = _bound_grid(
            {k: v.index_select(0, first) for k, v in params.items()}, boundary, window, dt, dtype
        )  # (G, K+1)
        bmin = grid.amin(dim=1).index_select(0, grp).unsqueeze(-1)
    else:
        grid = grp = None
        bmin = boundary(None, sl).expand(s, 1).contiguous()
    # 1. window ends and the safe test
    sub = {k: sl[k] for k in ("step", "x", "vv", "ck1", "ck2")}
    sub["bmin"] = bmin
    out = coarse(sub, window, dt, h) if coarse is not None else None
    if out is not None:
        xk, refine = out  # refine: float 1.0 where the accumulator's window is refined
        # (the bits of 1.0 are a nonzero int32; nonzero over int32 is faster than over float)
        idx = refine.view(-1).view(torch.int32).nonzero().squeeze(-1)
    else:
        xk, safe = _coarse_eager(sub, window, dt, h)
        idx = (~safe).view(-1).nonzero().squeeze(-1)
    nref = idx.shape[0]
    if stats is not None:
        stats.windows += s * n
        stats.refined += nref
    if nref == 0:
        x0.copy_(xk)
        return None
    # 2. fine points of the refined accumulators
    if fine is not None and nref % _PAD:
        # padded to a multiple of _PAD with copies of the first refined accumulator (dropped
        # below), so that the compiled call need not copy every input to pad it
        idx = torch.cat([idx, idx[:1].expand(_PAD - nref % _PAD)])
    r = torch.div(idx, n, rounding_mode="floor")
    a = idx - r * n
    out = None
    if fine is not None:
        args = (step0, sl["fk1"].view(-1), sl["fk2"].view(-1), x0.view(-1), xk.view(-1))
        bargs = (grid, grp) if timed else (bmin, None)
        out = fine({"step": r, "idx": idx}, *args, *bargs, window, dt, n_steps)
    if out is None:
        if timed:  # the bound at the K grid points (end points of the fine steps)
            bf = grid.index_select(0, grp.index_select(0, r))[:, 1:]
        else:
            bf = bmin.index_select(0, r)
        sub = {
            "step": step0.index_select(0, r),
            "k1": sl["fk1"].view(-1).index_select(0, idx),
            "k2": sl["fk2"].view(-1).index_select(0, idx),
            "x0": x0.view(-1).index_select(0, idx).unsqueeze(-1),
            "xk": xk.reshape(-1).index_select(0, idx).unsqueeze(-1),
            "b": bf,
        }
        out = _fine_eager(sub, frac, ar, window, dt, n_steps)
    wk, j, val = out
    if idx.shape[0] != nref:
        idx, r, a = idx[:nref], r[:nref], a[:nref]
        wk, j, val = wk[:nref], j[:nref], val[:nref]
    x0.copy_(xk)
    x0.view(-1).index_copy_(0, idx, wk)
    # 3. the first crossing of each row among its refined accumulators, and the leader there:
    # at the row's first crossing step the accumulators above the bound are those whose own
    # first crossing is that step (safe ones stay below), the leader is the largest of them
    cand = j < window
    if not bool(cand.any()):
        return None
    ci = cand.nonzero().squeeze(-1)
    jc = j.index_select(0, ci)
    rc = r.index_select(0, ci)
    jrow = torch.full((s,), float(window), dtype=jc.dtype, device=jc.device)
    jrow.scatter_reduce_(0, rc, jc, reduce="amin")
    at_first = jc == jrow.index_select(0, rc)
    lead = torch.full((s, n), -math.inf, dtype=dtype, device=x0.device)
    lead[rc, a.index_select(0, ci)] = torch.where(at_first, val.index_select(0, ci), -math.inf)
    hit = (jrow < window).nonzero().squeeze(-1)
    code = torch.argmax(lead.index_select(0, hit), dim=1)
    end = step0.index_select(0, hit) + jrow.index_select(0, hit).to(step0.dtype) + 1
    return hit, end, code


def race_refined(
    rows: dict[str, torch.Tensor],
    *,
    boundary,
    n_steps: int,
    dt: float,
    window: int = 16,
    stream: int = 0,
    eps: float = REFINE_EPS,
    compile: bool | None = None,  # noqa: A002 - the engines' option name
    stats: dict | None = None,
) -> dict[str, torch.Tensor]:
    """First passage of independent racing diffusions reflected at 0, coarse to fine.

    Same contract as :func:`simulators.engine.race_blocked`: ``rows`` holds ``x``
    (``(M, n)`` start positions, >= 0), ``vv`` (``(M, n)`` drifts), ``step`` (int64 start
    step), ``k1``, ``k2`` (RNG keys), ``row`` (int64 output position) and whatever
    ``boundary`` reads; ``boundary(t, rows)`` gives the bound for a time grid ``t`` of shape
    ``(S or 1, K)`` (``t=None`` when marked
    :func:`~simulators.engine.time_independent`).

    Parameters
    ----------
    window:
        Fine steps per window ``K`` (even, at least the number of accumulators rounded up
        to even).
    stream:
        RNG stream (as the other engines).
    eps:
        Bound on the probability that a skipped accumulator window would have been
        reflected or would have reached the boundary on the fine grid (in ``(0, 1)``).
    compile:
        Run the dense parts (window ends and safe test; fine points of the refined
        accumulators) through ``torch.compile`` (None: the setting of
        :func:`~simulators.engine.compiled_blocks`, default off); as in ``race_blocked``,
        compiled and eager may differ in the last ulp of the noise.
    stats:
        Optional dict that receives ``windows`` (accumulator windows simulated) and
        ``refined`` (those that got fine points).

    Returns
    -------
    dict with ``row`` (output positions of the rows that finished), ``end`` (int64 end
    step) and ``code`` (index of the leading accumulator).  Rows not listed did not finish
    within ``n_steps``.

    Example
    -------
    >>> import torch
    >>> from simulators.engine import time_independent
    >>> from simulators.rng import trial_keys
    >>> k1, k2 = trial_keys(0, torch.zeros(2), torch.arange(2))
    >>> rows = {"x": torch.zeros(2, 3), "vv": torch.ones(2, 3),
    ...         "step": torch.zeros(2, dtype=torch.int64), "k1": k1, "k2": k2,
    ...         "row": torch.arange(2), "a": torch.ones(2)}
    >>> bound = time_independent(lambda t, r: r["a"].unsqueeze(-1))
    >>> race_refined(rows, boundary=bound, n_steps=10_000, dt=1e-3)["code"].shape
    torch.Size([2])
    """
    if not isinstance(window, int) or window < 2 or window % 2:
        raise ValueError(f"window: expected an even int >= 2, got {window!r}")
    if not 0.0 < eps < 1.0:
        raise ValueError(f"eps: expected a probability in (0, 1), got {eps!r}")
    x = rows["x"]
    if x.ndim != 2:
        raise ValueError(f"rows['x']: expected shape (M, n), got {tuple(x.shape)}")
    n = x.shape[-1]
    if n + (n % 2) > window:
        raise ValueError(
            f"window: expected at least {n + (n % 2)} (the number of accumulators, even), "
            f"got {window}"
        )
    device = x.device
    rows = dict(rows)
    k1, k2 = stream_keys(rows["k1"], rows["k2"], stream)
    rows["k1"], rows["k2"] = k1, k2
    rows["ck1"], rows["ck2"] = stream_keys(k1, k2, _STREAM_COARSE)
    ks = [stream_keys(k1, k2, _STREAM_FINE + i) for i in range(n)]
    rows["fk1"] = torch.stack([k[0] for k in ks], dim=1).contiguous()
    rows["fk2"] = torch.stack([k[1] for k in ks], dim=1).contiguous()
    rows["x"] = x.clone().contiguous()  # updated in place, slice by slice
    rows["vv"] = rows["vv"].expand_as(x).contiguous()
    timed = not getattr(boundary, "time_independent", False)
    dtype = x.dtype
    ar = torch.arange(1, window + 1, device=device)
    frac = (ar.to(dtype) / window).unsqueeze(0)
    h = window * dt * math.log(2.0 / eps) / 2.0
    st = _Stats()
    coarse = fine = None
    if _COMPILE.get() if compile is None else compile:
        key = ("race_refined", n, window, float(dt), n_steps, float(h), dtype, device.type)
        what = f"race_refined ({n} accumulators)"
        coarse = _engine._compiled((*key, "coarse"), _coarse_impl, what, device.type)
        fine = _engine._compiled((*key, "fine", timed), _fine_impl, what, device.type)
    opts = {
        "boundary": boundary,
        "timed": timed,
        "n_steps": n_steps,
        "dt": dt,
        "window": window,
        "h": h,
        "stats": st,
        "coarse": coarse,
        "fine": fine,
    }
    elements = SLICE_ELEMENTS if coarse is None else COMPILED_SLICE_ELEMENTS
    out_row, out_end, out_code = [], [], []
    # Finished rows get x = NaN (never refined, so they cannot finish again) and are dropped
    # once they are an eighth of the rows (compacting ~17 row tensors after every window took
    # 13 % of a compiled run); rows past n_steps are dropped at once.
    dead = 0
    while rows["x"].shape[0] > 0:
        m = rows["x"].shape[0]
        done = []
        for i0, i1 in _row_slices(m, n * window, device, elements):
            sl = {k: v[i0:i1] for k, v in rows.items()}
            res = _window(sl, frac, ar, **opts)
            if res is not None:
                r, e, code = res
                done.append(r + i0)
                out_row.append(sl["row"].index_select(0, r))
                out_end.append(e)
                out_code.append(code)
        st.windows -= dead * n  # (counted by _window, not simulated)
        if done:
            fin = torch.cat(done)
            rows["x"].index_fill_(0, fin, math.nan)
            dead += fin.shape[0]
        rows["step"] = rows["step"] + window
        if 8 * dead >= m or int(rows["step"].max()) >= n_steps:
            keep = (rows["step"] < n_steps) & ~torch.isnan(rows["x"][:, 0])
            rows = _compact(rows, keep)
            dead = 0
    if stats is not None:
        stats["windows"] = stats.get("windows", 0) + st.windows
        stats["refined"] = stats.get("refined", 0) + st.refined
    if out_row:
        return {"row": torch.cat(out_row), "end": torch.cat(out_end), "code": torch.cat(out_code)}
    empty = torch.zeros(0, dtype=torch.int64, device=device)
    return {"row": empty, "end": empty, "code": empty}
