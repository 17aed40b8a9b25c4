"""Single-accumulator diffusions: ddm kind (any boundary/drift, sv/sz/st), levy, ornstein.

Conventions: bounds at ``±b(t)`` with ``b(0) = a``; start ``y0 = (2z - 1) b(0)``; unit noise;
upper -> 1, lower -> -1; rt = decision time + t.

Trial-to-trial variability (ddm kind, when the model has the parameters; registry meaning):
drift ``v + sv * N(0, 1)``; relative start ``z + sz * (U - 1/2)`` (uniform of width ``sz``
centred on ``z``, as HDDM); non-decision time ``t + st * (U - 1/2)`` (uniform of width ``st``
centred on ``t``, as HDDM).  ssm-simulators' ``full_ddm`` instead adds ``U(-sz, sz)`` to the
*absolute* start and ``U(-st, st)`` to ``t``; see docs/simulators.md.
"""

from __future__ import annotations

import torch

from simulators.engine import diffuse_1d, step_loop, time_independent
from simulators.kinds.exact_ddm import first_passage
from simulators.rng import normal, stream_keys, uniform

__all__ = ["boundary_of", "ddm", "drift_of", "levy", "ornstein"]

# RNG streams of per-trial draws (diffusion noise uses stream 0 and the engines' own).
STREAM_VAR = 7


def boundary_of(spec, name_a: str = "a"):
    """``fn(t, rows)`` giving the boundary height for the rows' parameters."""
    if spec.boundary == "constant":
        return time_independent(lambda t, rows: rows[name_a].unsqueeze(-1))
    fn = spec.boundary_fn()
    names = (name_a, *spec.boundary_params)

    def bound(t, rows):
        vals = [rows[n] for n in names]
        if t is not None and t.shape[0] == 1 and vals[0].shape[0] > 1 and _uniform(vals):
            # one shared time grid and one parameter set (e.g. all trials of one θ): evaluate
            # once (elementwise, so the values equal the per-row ones)
            return fn(t, *(v[:1].unsqueeze(-1) for v in vals)).expand(vals[0].shape[0], -1)
        return fn(t, *(v.unsqueeze(-1) for v in vals))

    return bound


def _uniform(vals) -> bool:
    """Whether every tensor in ``vals`` holds a single repeated value."""
    return all(bool((v == v[0]).all()) for v in vals)


def drift_of(spec, name_v: str = "v"):
    """``fn(t, rows)`` giving the total drift for the rows' parameters."""
    if spec.drift == "constant":
        return time_independent(lambda t, rows: rows[name_v].unsqueeze(-1))
    fn = spec.drift_fn()
    extra = spec.drift_params
    return lambda t, rows: fn(
        t, rows[name_v].unsqueeze(-1), *(rows[p].unsqueeze(-1) for p in extra)
    )


def _b0(spec, params, name_a="a"):
    t0 = torch.zeros_like(params[name_a]).unsqueeze(-1)
    return boundary_of(spec, name_a)(t0, params).reshape(-1)


def _collect(res, m, rt_decision_dtype, device, n_steps):
    finished = torch.zeros(m, dtype=torch.bool, device=device)
    end = torch.zeros(m, dtype=torch.int64, device=device)
    side = torch.zeros(m, dtype=torch.int64, device=device)
    finished[res["row"]] = True
    end[res["row"]] = res["end"]
    key = "side" if "side" in res else "code"
    side[res["row"]] = res[key]
    return finished, end, side


def _base_rows(params, keys, y0):
    m = y0.shape[0]
    rows = dict(params)
    rows.update(
        y=y0,
        step=torch.zeros(m, dtype=torch.int64, device=y0.device),
        row=torch.arange(m, device=y0.device),
        k1=keys["k1"],
        k2=keys["k2"],
    )
    return rows


def ddm(spec, params, keys, *, n_steps, dt, method):
    """ddm kind: Wiener diffusion with boundary/drift functions and optional sv, sz, st."""
    p = dict(params)
    k1, k2 = stream_keys(keys["k1"], keys["k2"], STREAM_VAR)
    dtype = p["v"].dtype
    if "sv" in p:
        p["v"] = p["v"] + p["sv"] * normal(k1, k2, 0, dtype)
    z = p["z"]
    if "sz" in p:
        z = z + p["sz"] * (uniform(k1, k2, 2, dtype) - 0.5)
    t = p["t"]
    if "st" in p:
        t = t + p["st"] * (uniform(k1, k2, 3, dtype) - 0.5)
    b0 = _b0(spec, p)
    if method == "exact":
        dec, side, finished = first_passage(
            (2.0 * z - 1.0) * b0, p["v"], b0, keys, max_t=n_steps * dt
        )
        return dec.to(dtype) + t, side, finished
    rows = _base_rows(p, keys, (2.0 * z - 1.0) * b0)
    res = diffuse_1d(
        rows,
        boundary=boundary_of(spec),
        drift=drift_of(spec),
        n_steps=n_steps,
        dt=dt,
        method=method,
    )
    finished, end, side = _collect(res, b0.shape[0], dtype, b0.device, n_steps)
    return end.to(dtype) * dt + t, side, finished


def levy(spec, params, keys, *, n_steps, dt, method):
    """Levy flight: increments ``v dt + dt**(1/alpha) * S_alpha`` (symmetric, scale 1)."""
    p = dict(params)
    b0 = _b0(spec, p)
    rows = _base_rows(p, keys, (2.0 * p["z"] - 1.0) * b0)
    res = diffuse_1d(
        rows,
        boundary=boundary_of(spec),
        drift=drift_of(spec),
        n_steps=n_steps,
        dt=dt,
        method=method,
        noise="levy",
    )
    finished, end, side = _collect(res, b0.shape[0], b0.dtype, b0.device, n_steps)
    return end.to(b0.dtype) * dt + p["t"], side, finished


def ornstein(spec, params, keys, *, n_steps, dt, method):
    """Ornstein-Uhlenbeck: ``dy = (v - g y) dt + dW`` (ssm-simulators' sign: g > 0 leaks)."""
    p = dict(params)
    b0 = _b0(spec, p)
    bfn = boundary_of(spec)
    m = b0.shape[0]
    rows = _base_rows(p, keys, (2.0 * p["z"] - 1.0) * b0)
    if bool((p["g"] * dt < 1).all()):
        # blocked closed-form Euler recursion (the usual case)
        res = diffuse_1d(
            rows,
            boundary=bfn,
            drift=drift_of(spec),
            n_steps=n_steps,
            dt=dt,
            method=method,
            leak="g",
        )
        finished, end, side = _collect(res, m, b0.dtype, b0.device, n_steps)
        return end.to(b0.dtype) * dt + p["t"], side, finished
    sq = dt**0.5
    bridge = method == "bridge"
    if bridge:
        rows["ku1"], rows["ku2"] = stream_keys(keys["k1"], keys["k2"], 11)

    def step(r, zk, t_end, k):
        y = r["y"]
        t1 = (t_end.to(y.dtype) * dt).unsqueeze(-1)
        b1 = bfn(t1, r).reshape(-1).expand_as(y)
        y_new = y + (r["v"] - r["g"] * y) * dt + sq * zk[:, 0]
        up = y_new > b1
        lo = y_new < -b1
        if bridge:
            b_prev = bfn(t1 - dt, r).reshape(-1).expand_as(y)
            p_up = torch.exp(-2.0 * (b_prev - y).clamp_min(0) * (b1 - y_new).clamp_min(0) / dt)
            p_lo = torch.exp(-2.0 * (y + b_prev).clamp_min(0) * (y_new + b1).clamp_min(0) / dt)
            u = uniform(r["ku1"], r["ku2"], t_end.to(torch.int32), y.dtype)
            via = (u < p_up + p_lo) & ~(up | lo)
            up = up | (via & (u < p_up))
            lo = lo | (via & ~(u < p_up))
        both = up & lo
        side = torch.where(both, torch.where(y_new >= 0, 1, -1), torch.where(up, 1, -1))
        r["y"] = y_new
        return up | lo, side

    res = step_loop(rows, step=step, n_noise=1, n_steps=n_steps)
    finished, end, side = _collect(res, m, b0.dtype, b0.device, n_steps)
    return end.to(b0.dtype) * dt + p["t"], side, finished
