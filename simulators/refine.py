"""Coarse-to-fine first passage of one-dimensional Brownian diffusions.

The blocked Euler engine (:func:`simulators.engine.diffuse_1d`) draws one normal for every
``dt`` step of every trial, although far from the boundaries no step can end a trial.  This
engine walks in *windows* of ``K`` fine steps instead:

1. The window's end point is drawn at once: the sum of its ``K`` Gaussian increments is
   ``N(K v dt, K dt)`` (exact; ``v`` is the row's constant drift).
2. Given both ends, the window's fine points are an exact discrete Brownian bridge:
   ``P_j = y_0 + B_j + (j / K) (y_K - y_0 - B_K)`` with ``B`` a free walk of ``K`` fresh
   increments ``N(v dt, dt)``.  They are only drawn for windows that may hold a crossing.
3. A window is *skipped* (no fine points, no crossing) when the continuous Brownian bridge
   between its ends stays inside ``(-m, m)`` with probability at least ``1 - REFINE_EPS``,
   ``m`` being the boundary's minimum over the window's ``K + 1`` grid points: the bridge
   reaches a level ``L`` with probability ``exp(-2 (L - y_0)(L - y_K) / (K dt))``, so both
   ``(m - y_0)(m - y_K)`` and ``(m + y_0)(m + y_K)`` must exceed
   ``K dt log(2 / REFINE_EPS) / 2``.  The fine grid points lie on that continuous path and
   the fine Brownian-bridge test (``method="bridge"``) declares a crossing with the
   probability that the continuous path between two grid points crosses, so a skipped window
   hides a crossing of the fine scheme with probability of order ``REFINE_EPS`` (1e-9).
4. Windows that are not skipped get their fine points and exactly the fine engine's checks
   (grid crossing, the bridge test with its uniforms, the ``n_steps`` limit).

The output therefore follows the fine engine's distribution (same scheme, same ``dt``
grid of decision times) while drawing about a fifth of the normals on typical models
(measured: 20-30 % of the fine engine's normals for angle and weibull); the individual
draws differ from the fine engine's.  Used by :func:`~simulators.engine.diffuse_1d` for
Gaussian noise with a drift that does not depend on time or state (ddm kind with any
boundary, angle, weibull, the stages of seq2/par2); the fine engine serves the rest
(time-dependent drift, the Ornstein leak, Levy noise).

All draws come from :mod:`simulators.rng` keyed per trial (window ends from their own
stream, fine normals and bridge uniforms at the fine steps' counters), so the output does
not depend on chunking or on which rows are simulated together.
"""

from __future__ import annotations

import math

import torch

from simulators.rng import normal_block_pure, stream_keys, uniform_pure

__all__ = ["REFINE_EPS", "REFINE_STEPS", "REFINE_WINDOWS", "refine_block"]

#: fine steps per window (K; a power of two)
REFINE_STEPS = 16
#: windows per block (a power of two; a row advances ``REFINE_STEPS * REFINE_WINDOWS`` steps
#: per block)
REFINE_WINDOWS = 16
#: probability bound of a fine-scheme crossing inside a skipped window
REFINE_EPS = 1e-9
_SAFE = 0.5 * math.log(2.0 / REFINE_EPS)
# the window ends' RNG stream (derived from the engine's keys of the stage)
COARSE_STREAM = 211
_TWO_PI = 2.0 * math.pi
#: the leak's skip rule keeps the fine points this many sqrt(dt) inside the bounds for the
#: bridge test (whose crossing probability there is below exp(-18) < 2**-24, the smallest
#: uniform of simulators.rng)
LEAK_BRIDGE_MARGIN = 3.0
_BRIDGE_CTR = 1 << 30  # counter offset of the bridge test's uniforms (as the fine engine)


def coarse_keys(k1: torch.Tensor, k2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Keys of the window ends' normals."""
    return stream_keys(k1, k2, COARSE_STREAM)


def _window_normals(sl, step0: torch.Tensor, c: torch.Tensor, k_steps: int, dtype):
    """``(S, W)`` standard normals of the block's windows ``c`` (Box-Muller, cosine branch,
    from the window-end stream ``ck1``/``ck2``; counters from the window index)."""
    # window index of the first window (k_steps is a power of two: a shift, which vectorizes)
    q = torch.bitwise_right_shift(step0, k_steps.bit_length() - 1).unsqueeze(-1) + c
    a1, a2 = sl["ck1"].unsqueeze(-1), sl["ck2"].unsqueeze(-1)
    u1 = uniform_pure(a1, a2, 2 * q, dtype)
    u2 = uniform_pure(a1, a2, 2 * q + 1, dtype)
    return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(_TWO_PI * u2)


def _coarse_impl(sl, table, n_win: int, k_steps: int, dt: float, n_steps: int, timed: bool):
    """Window ends ``(S, W)`` and which windows need their fine points ``(S, W)``, 1.0 or 0.0
    (traced by torch.compile, also run as is).

    ``sl``: ``y``, ``step``, ``ck1``, ``ck2``, ``mu`` and ``grp``; ``table``: the boundary on
    the block's ``W K + 1`` grid points per row group ``(G, W K + 1)`` (row ``i`` uses group
    ``grp[i]``), or, for a time-independent boundary, its height per row ``(S, 1)``."""
    y0 = sl["y"]
    dtype = y0.dtype
    step0 = sl["step"].to(torch.int32)
    c = torch.arange(n_win, dtype=torch.int32, device=y0.device)
    z = _window_normals(sl, step0, c, k_steps, dtype)
    h = k_steps * dt
    yc = torch.cumsum(z * math.sqrt(h) + (sl["mu"] * h).unsqueeze(-1), dim=1) + y0.unsqueeze(-1)
    yp = torch.cat([y0.unsqueeze(-1), yc[:, :-1]], dim=1)
    if timed:
        g = table.shape[0]
        inner = table[:, :-1].reshape(g, n_win, k_steps).amin(dim=2)
        ends = table[:, k_steps::k_steps]
        bw = torch.minimum(inner, ends).index_select(0, sl["grp"])
        b_end = ends.index_select(0, sl["grp"])
    else:
        bw = b_end = table
    lim = _SAFE * h
    du0, du1 = bw - yp, bw - yc
    dl0, dl1 = bw + yp, bw + yc
    safe = (du0 > 0) & (du1 > 0) & (dl0 > 0) & (dl1 > 0) & (du0 * du1 > lim) & (dl0 * dl1 > lim)
    # a window reaching past n_steps gets the fine engine's limit
    safe = safe & ((step0.unsqueeze(-1) + (c + 1) * k_steps) <= n_steps)
    # a window whose end lies outside the boundary ends the trial (at the latest there):
    # later windows need nothing
    out = (yc > b_end) | (yc < -b_end)
    last = torch.where(out, c, n_win).amin(dim=1, keepdim=True)
    unsafe = ~safe & (c <= last)
    # returned as 0/1 floats: inductor's CPU store of a boolean (S, W) output costs more
    # than the rest of this graph
    return yc, unsafe.to(dtype)


def _fine_impl(
    sl,
    yc,
    rows,
    table,
    k_steps: int,
    n_win: int,
    dt: float,
    bridge: bool,
    n_steps: int,
    timed: bool,
    leak: bool = False,
):
    """Fine points and crossing checks of ``P`` windows (traced by torch.compile, also run
    as is): per window whether the trial ends in it, the step it ends on (0..K-1 within the
    window) and the side.

    ``sl["idx"]``: the windows' flat indices into the block's ``(S, W)`` windows; ``yc``:
    the window ends ``(S, W)``; ``rows``: ``y`` (block start), ``step``, ``k1``, ``k2``
    (fine noise keys), ``mu``, ``grp``; ``table`` as in :func:`_coarse_impl`."""
    idx = sl["idx"]
    dtype = yc.dtype
    shift = n_win.bit_length() - 1
    r = torch.bitwise_right_shift(idx, shift)
    c = idx & (n_win - 1)
    y_end = yc.reshape(-1).index_select(0, idx)
    y_prev = yc.reshape(-1).index_select(0, (idx - 1).clamp_min(0))
    yp = torch.where(c > 0, y_prev, rows["y"].index_select(0, r))
    k1 = rows["k1"].index_select(0, r)
    k2 = rows["k2"].index_select(0, r)
    w = (rows["step"].index_select(0, r) + c * k_steps).to(torch.int32)
    mu = rows["mu"].index_select(0, r)
    ar = torch.arange(k_steps, dtype=torch.int32, device=yc.device)
    inc = normal_block_pure(k1, k2, w, k_steps, dtype) * math.sqrt(dt)
    inc = inc + (mu * dt).unsqueeze(-1)
    if leak:
        # Z_j = c^-j y_j (relative to the window's start) is a Gaussian walk with increments
        # c^-(i+1) u_i of variances c^-2(i+1) dt: its bridge to Z_K = c^-K y_K weights the
        # correction by the cumulative variance
        log_c = torch.log1p(-rows["g"].index_select(0, r) * dt).unsqueeze(-1)
        inv = torch.exp(-log_c * (ar + 1))  # c^-(i+1)
        free = torch.cumsum(inc * inv, dim=1)
        var = torch.cumsum(inv * inv, dim=1)
        frac = var / var[:, -1:]
        z_end = y_end.unsqueeze(-1) * inv[:, -1:]
        zp = yp.unsqueeze(-1) + free + frac * (z_end - yp.unsqueeze(-1) - free[:, -1:])
        path = zp / inv
    else:
        free = torch.cumsum(inc, dim=1)
        frac = (ar + 1).to(dtype) / k_steps
        path = yp.unsqueeze(-1) + free + frac * (y_end - yp - free[:, -1]).unsqueeze(-1)
    if timed:
        span = table.shape[1]
        base = rows["grp"].index_select(0, r) * span + c * k_steps
        ar1 = torch.arange(k_steps + 1, device=yc.device)
        bf = table.reshape(-1)[base.unsqueeze(-1) + ar1]
    else:
        bf = table.index_select(0, r).expand(-1, k_steps + 1)
    b = bf[:, 1:]
    cross = (path > b) | (path < -b)
    if bridge:
        prev = torch.cat([yp.unsqueeze(-1), path[:, :-1]], dim=1)
        p_up, p_lo = _bridge_p(prev, bf[:, :-1], path, b, dt)
        ctr = w.unsqueeze(-1) + ar + _BRIDGE_CTR
        u = uniform_pure(k1.unsqueeze(-1), k2.unsqueeze(-1), ctr, dtype)
        cross = cross | (u < p_up + p_lo)
    cross = cross & ((w.unsqueeze(-1) + ar + 1) <= n_steps)
    j = torch.where(cross, ar, k_steps).amin(dim=1)
    hit = j < k_steps
    # the side at j, recomputed from gathered floats (gathering the boolean masks makes
    # inductor's kernel 4x slower)
    jc = j.clamp_max(k_steps - 1)
    jl = jc.to(torch.int64).unsqueeze(-1)
    y_j = path.gather(1, jl).squeeze(1)
    b_j = b.gather(1, jl).squeeze(1)
    up_j = y_j > b_j
    lo_j = y_j < -b_j
    if bridge:
        y_prev = torch.where(jc > 0, path.gather(1, (jl - 1).clamp_min(0)).squeeze(1), yp)
        bp_j = bf.gather(1, jl).squeeze(1)
        pu_j, _ = _bridge_p(y_prev, bp_j, y_j, b_j, dt)
        u_j = uniform_pure(k1, k2, w + jc + _BRIDGE_CTR, dtype)
        via = ~(up_j | lo_j)
        is_up = u_j < pu_j
        up_j = up_j | (via & is_up)
        lo_j = lo_j | (via & ~is_up)
    side = torch.where(up_j & lo_j, torch.where(y_j >= 0, 1, -1), torch.where(up_j, 1, -1))
    end = w.to(torch.int64) + j + 1
    return hit, end, side.to(torch.int64)


def _coarse_leak_impl(
    sl, table, gpar, n_win: int, k_steps: int, dt: float, n_steps: int, margin: float
):
    """:func:`_coarse_impl` for the Ornstein-Uhlenbeck Euler recursion
    ``y <- c y + v dt + sqrt(dt) N`` (``c = 1 - g dt > 0``; ``sl`` also holds ``g``).

    Window ends: ``y_K = c^K y_0 + v dt S_1 + sqrt(dt S_2) Z`` with ``S_1 = sum_m c^m``,
    ``S_2 = sum_m c^2m`` (m < K), chained over the block in closed form.  Skip rule in the
    coordinates ``Z_j = c^-j y_j`` (relative to the window's start), where the fine points
    are a Gaussian walk whose bridge is a Brownian bridge in the cumulative-variance clock
    ``V_j`` (``V_K dt`` in all) plus the deviation ``L_j`` of its conditional mean from the
    straight line; the levels are ``min_j (c^-j (b_j - margin) -+ L_j)`` over the window's
    K + 1 grid points (``table`` per group, ``gpar`` ``(G, 2)``: each group's ``v`` and
    ``g``).  ``margin``: 0 for the grid check; for the bridge test ``3 sqrt(dt)``, inside
    which its crossing probability is below exp(-18), less than the smallest uniform."""
    y0 = sl["y"]
    dtype = y0.dtype
    step0 = sl["step"].to(torch.int32)
    c = torch.arange(n_win, dtype=torch.int32, device=y0.device)
    z = _window_normals(sl, step0, c, k_steps, dtype)
    m = torch.arange(k_steps, device=y0.device).to(dtype)
    log_c = torch.log1p(-sl["g"] * dt).unsqueeze(-1)  # (S, 1)
    s1 = torch.exp(log_c * m).sum(dim=1, keepdim=True)
    s2 = torch.exp(2.0 * log_c * m).sum(dim=1, keepdim=True)
    inc = (sl["mu"].unsqueeze(-1) * dt) * s1 + torch.sqrt(dt * s2) * z  # (S, W)
    log_ck = log_c * k_steps
    grow = torch.exp(log_ck * (c + 1).to(dtype))  # C^(c+1)
    yc = (torch.cumsum(inc / grow, dim=1) + y0.unsqueeze(-1)) * grow
    yp = torch.cat([y0.unsqueeze(-1), yc[:, :-1]], dim=1)
    # per group and window: the levels of the skip rule in Z coordinates
    lc = torch.log1p(-gpar[:, 1] * dt).unsqueeze(-1)  # (G, 1)
    j = torch.arange(k_steps + 1, device=y0.device).to(dtype)
    inv = torch.exp(-lc * j)  # c^-j, j = 0..K
    a_j = torch.cumsum(torch.exp(-lc * (j + 1)), dim=1) - torch.exp(-lc * (j + 1))  # sum_{i<j}
    v_j = torch.cumsum(torch.exp(-2.0 * lc * (j + 1)), dim=1) - torch.exp(-2.0 * lc * (j + 1))
    dev = (gpar[:, :1] * dt) * (a_j - v_j / v_j[:, -1:] * a_j[:, -1:])  # L_j (G, K+1)
    cols = (c.to(torch.int64) * k_steps).unsqueeze(-1) + torch.arange(k_steps + 1, device=y0.device)
    tb = table[:, cols] - margin  # (G, W, K+1)
    scaled = tb * inv.unsqueeze(1)
    up_lvl = (scaled - dev.unsqueeze(1)).amin(dim=2).index_select(0, sl["grp"])  # (S, W)
    lo_lvl = (scaled + dev.unsqueeze(1)).amin(dim=2).index_select(0, sl["grp"])
    vk = v_j[:, -1:].index_select(0, sl["grp"])  # (S, 1)
    z0 = yp
    zk = yc * torch.exp(-log_ck)
    lim = _SAFE * dt * vk
    du0, du1 = up_lvl - z0, up_lvl - zk
    dl0, dl1 = lo_lvl + z0, lo_lvl + zk
    safe = (du0 > 0) & (du1 > 0) & (dl0 > 0) & (dl1 > 0) & (du0 * du1 > lim) & (dl0 * dl1 > lim)
    safe = safe & ((step0.unsqueeze(-1) + (c + 1) * k_steps) <= n_steps)
    b_end = table[:, k_steps::k_steps].index_select(0, sl["grp"])
    out = (yc > b_end) | (yc < -b_end)
    last = torch.where(out, c, n_win).amin(dim=1, keepdim=True)
    unsafe = ~safe & (c <= last)
    return yc, unsafe.to(dtype)


def _bridge_p(y0, b0, y1, b1, dt: float):
    """Probabilities that the Brownian bridge from ``y0`` to ``y1`` over ``dt`` crosses the
    upper / lower boundary (straight from ``±b0`` to ``±b1``).  Exponents are floored at -30
    (exp(-30) < 2**-24, below every uniform of :mod:`simulators.rng`: the same decisions),
    which keeps exp off its slow underflow path."""
    s = -2.0 / dt
    p_up = torch.exp((s * (b0 - y0).clamp_min(0) * (b1 - y1).clamp_min(0)).clamp_min(-30.0))
    p_lo = torch.exp((s * (y0 + b0).clamp_min(0) * (y1 + b1).clamp_min(0)).clamp_min(-30.0))
    return p_up, p_lo


def refine_block(
    sl,
    *,
    table: torch.Tensor,
    timed: bool,
    n_steps: int,
    dt: float,
    bridge: bool,
    coarse=None,
    fine=None,
    gpar: torch.Tensor | None = None,
):
    """One block of ``REFINE_WINDOWS`` windows for a slice of rows.

    ``sl``: ``y`` (updated in place to the block's end), ``step``, ``k1``, ``k2``, ``ck1``,
    ``ck2``, ``mu`` and ``grp``; ``table``: the boundary (see :func:`_coarse_impl`).
    ``coarse``, ``fine``: compiled forms of :func:`_coarse_impl` (or
    :func:`_coarse_leak_impl`) / :func:`_fine_impl` (None: run them as they are).  ``gpar``:
    the Ornstein leak's per-group ``(v, g)`` (``sl`` then holds ``g``; ``timed`` must be
    True).  Returns None or (rows that end in the block, their end step, side).
    """
    k_steps, n_win = REFINE_STEPS, REFINE_WINDOWS
    y0 = sl["y"]
    leak = gpar is not None
    keys = ("y", "step", "ck1", "ck2", "mu", "grp") + (("g",) if leak else ())
    rows = {k: sl[k] for k in keys}
    if leak:
        margin = LEAK_BRIDGE_MARGIN * math.sqrt(dt) if bridge else 0.0
        impl = _coarse_leak_impl
        cargs = (table, gpar, n_win, k_steps, dt, n_steps, margin)
    else:
        impl = _coarse_impl
        cargs = (table, n_win, k_steps, dt, n_steps, timed)
    out = coarse(rows, *cargs) if coarse is not None else None
    if out is None:
        out = impl(rows, *cargs)
    yc, unsafe = out
    res = None
    idx = unsafe.reshape(-1).nonzero().squeeze(-1)
    if idx.shape[0] > 0:
        keys = ("y", "step", "k1", "k2", "mu", "grp") + (("g",) if leak else ())
        rows = {k: sl[k] for k in keys}
        fargs = (yc, rows, table, k_steps, n_win, dt, bridge, n_steps, timed, leak)
        fout = fine({"idx": idx}, *fargs) if fine is not None else None
        if fout is None:
            fout = _fine_impl({"idx": idx}, *fargs)
        hit, end, side = fout
        hi = hit.nonzero().squeeze(-1)
        if hi.shape[0] > 0:
            # windows come row by row in increasing order: a row's first hit is its earliest
            rr = torch.bitwise_right_shift(idx.index_select(0, hi), n_win.bit_length() - 1)
            first = torch.ones_like(rr, dtype=torch.bool)
            first[1:] = rr[1:] != rr[:-1]
            hi = hi[first]
            res = (rr[first], end.index_select(0, hi), side.index_select(0, hi))
    y0.copy_(yc[:, -1])
    return res
