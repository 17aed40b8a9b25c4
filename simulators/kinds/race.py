"""Racing diffusions and leaky competing accumulators (ssm-simulators' ``race_model``/``lca``).

Accumulator ``i`` starts at ``z_i * b(0)`` (``z`` shared by the ``*_no_bias_*`` models) and
moves by ``(v_i - g x_i - b * sum_{j != i} x_j) dt + sqrt(dt) N(0, 1)`` (``g = b = 0`` for
races), is reflected at 0 (``x <- max(x, 0)`` after each step), and the trial ends at the
first step where some accumulator exceeds ``b(t)``; the response is the index of the
largest accumulator then (0..n-1).
"""

from __future__ import annotations

import torch

from simulators.engine import step_loop
from simulators.kinds.diffusion import _b0, _base_rows, _collect, boundary_of
from simulators.refine_race import race_refined

__all__ = ["lca", "race"]


def _run(spec, params, keys, *, n_steps, dt, leaky):
    n = spec.n_accumulators
    p = dict(params)
    b0 = _b0(spec, p)
    dtype = b0.dtype
    v = torch.stack([p[f"v{i}"] for i in range(n)], dim=-1)
    if "z" in p:
        z = p["z"].unsqueeze(-1).expand(-1, n)
    else:
        z = torch.stack([p[f"z{i}"] for i in range(n)], dim=-1)
    rows = _base_rows(p, keys, b0)
    rows["x"] = z * b0.unsqueeze(-1)
    rows["vv"] = v
    bfn = boundary_of(spec)
    sq = dt**0.5

    def step(r, zk, t_end, k):
        x = r["x"]
        drift = r["vv"]
        if leaky:
            others = x.sum(-1, keepdim=True) - x
            drift = drift - r["g"].unsqueeze(-1) * x - r["b"].unsqueeze(-1) * others
        x = (x + drift * dt + sq * zk).clamp_min(0.0)
        r["x"] = x
        bt = bfn((t_end.to(dtype) * dt).unsqueeze(-1), r)  # (M, 1)
        done = (x > bt).any(-1)
        return done, torch.argmax(x, dim=-1)

    if leaky:
        res = step_loop(rows, step=step, n_noise=n, n_steps=n_steps)
    else:
        # coarse-to-fine: the blocked scheme's distribution, fine steps only where needed
        res = race_refined(rows, boundary=bfn, n_steps=n_steps, dt=dt)
    finished, end, code = _collect(res, b0.shape[0], dtype, b0.device, n_steps)
    return end.to(dtype) * dt + p["t"], code, finished


def race(spec, params, keys, *, n_steps, dt, method):
    """Independent racing Wiener diffusions reflected at 0 (Euler, grid crossing; blocked)."""
    return _run(spec, params, keys, n_steps=n_steps, dt=dt, leaky=False)


def lca(spec, params, keys, *, n_steps, dt, method):
    """Leaky competing accumulators (leak g, lateral inhibition b), reflected at 0."""
    return _run(spec, params, keys, n_steps=n_steps, dt=dt, leaky=True)
