"""Two-stage binary decisions (ssm-simulators' ``ddm_flexbound_seq2/par2/mic2_ornstein``).

Responses ``2 * high + low`` (0..3) with ``high``, ``low`` = 1 for the upper boundary.
Starting points ``zh``, ``zl1``, ``zl2`` (0.5 in the ``_no_bias`` models); the low-level drift
is ``vl1`` after high choice 0 and ``vl2`` after high choice 1; both stages share ``b(t)``.

* seq2: the low-level diffusion starts when the high-level one ends (at time ``T_h``, from
  ``(2 zl - 1) b(T_h)``); rt = its end + t.  If ``b(T_h) <= 0`` the low choice is upper
  with probability ``zl`` at once (as ssm-simulators).
* par2: both start at 0 (the low one with the drift of the branch the high one picks);
  rt = max of the two ends + t.
* mic2 (``ddm_mic2_adj*``): both low-level branches start at 0 from ``(2 zl - 1) a``;
  while the high-level decision is pending, branch ``i`` drifts at
  ``vl_i * w_i(t) * (1 - d)`` with ``w_2 = (y_h + b) / (2 b)``, ``w_1 = 1 - w_2`` (the
  high-level particle's relative position); afterwards at ``vl_i``.  The branch the high
  decision picks is kept; rt = max of the two ends + t.
"""

from __future__ import annotations

import torch

from simulators.engine import diffuse_1d, step_loop, time_independent
from simulators.kinds.diffusion import _b0, _base_rows, boundary_of
from simulators.rng import stream_keys, uniform

__all__ = ["mic2", "par2", "seq2"]


def _z(p, name):
    return p[name] if name in p else torch.full_like(p["a"], 0.5)


def _scatter(res, m, device, key="side"):
    finished = torch.zeros(m, dtype=torch.bool, device=device)
    end = torch.zeros(m, dtype=torch.int64, device=device)
    side = torch.zeros(m, dtype=torch.int64, device=device)
    finished[res["row"]] = True
    end[res["row"]] = res["end"]
    side[res["row"]] = res[key]
    return finished, end, side


def _high(spec, p, keys, n_steps, dt, method):
    b0 = _b0(spec, p)
    rows = _base_rows(p, keys, (2.0 * _z(p, "zh") - 1.0) * b0)
    res = diffuse_1d(
        rows,
        boundary=boundary_of(spec),
        drift=time_independent(lambda t, r: r["vh"].unsqueeze(-1)),
        n_steps=n_steps,
        dt=dt,
        method=method,
    )
    return (b0, *_scatter(res, b0.shape[0], b0.device))


def seq2(spec, params, keys, *, n_steps, dt, method):
    """Sequential two-stage decision."""
    p = dict(params)
    b0, fin_h, end_h, side_h = _high(spec, p, keys, n_steps, dt, method)
    dtype = b0.dtype
    hi = side_h > 0
    zl = torch.where(hi, _z(p, "zl2"), _z(p, "zl1"))
    p["vl"] = torch.where(hi, p["vl2"], p["vl1"])
    bfn = boundary_of(spec)
    b_start = bfn((end_h.to(dtype) * dt).unsqueeze(-1), p).reshape(-1).expand_as(zl)
    rows = _base_rows(p, keys, (2.0 * zl - 1.0) * b_start)
    rows["step"] = end_h
    collapsed = b_start <= 0
    go = fin_h & ~collapsed & (end_h < n_steps)
    idx = go.nonzero().squeeze(-1)
    sub = {k: v.index_select(0, idx) for k, v in rows.items()}
    sub["row"] = idx
    res = diffuse_1d(
        sub,
        boundary=bfn,
        drift=time_independent(lambda t, r: r["vl"].unsqueeze(-1)),
        n_steps=n_steps,
        dt=dt,
        method=method,
        stream=1,
    )
    fin_l, end_l, side_l = _scatter(res, zl.shape[0], zl.device)
    # Collapsed boundary when the low stage starts: upper with probability zl, no time.
    k1, k2 = stream_keys(keys["k1"], keys["k2"], 5)
    coin = torch.where(uniform(k1, k2, 0, dtype) < zl, 1, -1)
    now = fin_h & collapsed
    fin_l = fin_l | now
    end_l = torch.where(now, end_h, end_l)
    side_l = torch.where(now, coin, side_l)
    resp = 2 * (side_h > 0).long() + (side_l > 0).long()
    return end_l.to(dtype) * dt + p["t"], resp, fin_h & fin_l


def par2(spec, params, keys, *, n_steps, dt, method):
    """Parallel two-stage decision."""
    p = dict(params)
    b0, fin_h, end_h, side_h = _high(spec, p, keys, n_steps, dt, method)
    hi = side_h > 0
    zl = torch.where(hi, _z(p, "zl2"), _z(p, "zl1"))
    p["vl"] = torch.where(hi, p["vl2"], p["vl1"])
    rows = _base_rows(p, keys, (2.0 * zl - 1.0) * b0)
    res = diffuse_1d(
        rows,
        boundary=boundary_of(spec),
        drift=time_independent(lambda t, r: r["vl"].unsqueeze(-1)),
        n_steps=n_steps,
        dt=dt,
        method=method,
        stream=1,
    )
    fin_l, end_l, side_l = _scatter(res, b0.shape[0], b0.device)
    resp = 2 * hi.long() + (side_l > 0).long()
    return torch.maximum(end_h, end_l).to(b0.dtype) * dt + p["t"], resp, fin_h & fin_l


def mic2(spec, params, keys, *, n_steps, dt, method):
    """Two-stage decision with the low-level drift gated by the pending high-level state."""
    p = dict(params)
    b0 = _b0(spec, p)
    dtype = b0.dtype
    m = b0.shape[0]
    dev = b0.device
    rows = _base_rows(p, keys, (2.0 * _z(p, "zh") - 1.0) * b0)
    rows["x"] = torch.stack(
        ((2.0 * _z(p, "zl1") - 1.0) * b0, (2.0 * _z(p, "zl2") - 1.0) * b0), dim=-1
    )
    for name in ("h", "l1", "l2"):
        rows[f"end_{name}"] = torch.zeros(m, dtype=torch.int64, device=dev)
        rows[f"side_{name}"] = torch.zeros(m, dtype=torch.int64, device=dev)
        rows[f"done_{name}"] = torch.zeros(m, dtype=torch.bool, device=dev)
    bfn = boundary_of(spec)
    sq = dt**0.5

    def step(r, zk, t_end, k):
        t1 = (t_end.to(dtype) * dt).unsqueeze(-1)
        b1 = bfn(t1, r).reshape(-1).expand_as(r["y"])
        b_prev = bfn(t1 - dt, r).reshape(-1).expand_as(r["y"])
        pending = ~r["done_h"]
        y_new = r["y"] + r["vh"] * dt + sq * zk[:, 0]
        y = torch.where(pending, y_new, r["y"])
        r["y"] = y
        w2 = (y + b_prev) / (2.0 * b_prev)
        gated = pending & (w2 > 0) & (w2 < 1)
        w = torch.stack((1.0 - w2, w2), dim=-1)
        vl = torch.stack((r["vl1"], r["vl2"]), dim=-1)
        damp = (1.0 - r["d"]).unsqueeze(-1)
        drift = torch.where(gated.unsqueeze(-1), vl * w * damp, vl)
        x = r["x"] + drift * dt + sq * zk[:, 1:]
        # freeze finished branches
        frozen = torch.stack((r["done_l1"], r["done_l2"]), dim=-1)
        x = torch.where(frozen, r["x"], x)
        r["x"] = x
        for name, val, live in (
            ("h", y, pending),
            ("l1", x[:, 0], ~r["done_l1"]),
            ("l2", x[:, 1], ~r["done_l2"]),
        ):
            up = val > b1
            lo = val < -b1
            side = torch.where(up & lo, torch.where(val >= 0, 1, -1), torch.where(up, 1, -1))
            new = live & (up | lo)
            r[f"end_{name}"] = torch.where(new, t_end, r[f"end_{name}"])
            r[f"side_{name}"] = torch.where(new, side, r[f"side_{name}"])
            r[f"done_{name}"] = r[f"done_{name}"] | new
        hi = r["side_h"] > 0
        low_done = torch.where(hi, r["done_l2"], r["done_l1"])
        low_side = torch.where(hi, r["side_l2"], r["side_l1"])
        low_end = torch.where(hi, r["end_l2"], r["end_l1"])
        done = r["done_h"] & low_done
        code = 2 * hi.long() + (low_side > 0).long()
        # report the end as max(high end, low end) through the code's companion below
        r["last_end"] = torch.maximum(r["end_h"], low_end)
        return done, code * (1 << 40) + r["last_end"]

    res = step_loop(rows, step=step, n_noise=3, n_steps=n_steps)
    fin = torch.zeros(m, dtype=torch.bool, device=dev)
    packed = torch.zeros(m, dtype=torch.int64, device=dev)
    fin[res["row"]] = True
    packed[res["row"]] = res["code"]
    resp = packed >> 40
    end = packed & ((1 << 40) - 1)
    return end.to(dtype) * dt + p["t"], resp, fin
