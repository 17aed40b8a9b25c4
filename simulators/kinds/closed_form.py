"""Models sampled in closed form: LBA, racing diffusion, Poisson race, softmax.

All draws come from :mod:`simulators.rng` (per-trial keys, fixed counters), so they are as
reproducible as the diffusion engines.  Decision times beyond ``max_t`` count as unfinished.

* LBA (HSSM's parameterization, the one its analytical likelihood uses): accumulator ``i``
  starts at ``U(0, A)`` and rises at rate ``N(v_i, 0.1)``; it reaches ``b`` after
  ``(b - start) / rate`` when the rate is positive and never otherwise; the first one wins
  (response 0..n-1); rt = that time + t.  Trials whose rates are all <= 0 never finish
  (omitted); HSSM's likelihood is conditional on finishing, as the non-omitted trials are.
* Racing diffusion (HSSM's ``rdm3`` likelihood): accumulator ``i`` starts at ``U(0, A)`` and
  is a unit-noise Wiener process with drift ``v_i`` that must reach ``b``: distance
  ``d = b - start``, first passage inverse-Gaussian(mean ``d / v``, shape ``d**2``) for
  ``v > 0`` (Michael-Schucany-Haas), ``d**2 / N(0,1)**2`` for ``v = 0``; for ``v < 0`` it
  arrives with probability ``exp(2 v d)``, then like drift ``|v|``.  ``d <= 0`` (``b < A``
  allowed only out of bounds) finishes at once.
* Poisson race (HSSM's ``logp_poisson_race``): counter ``i`` finishes at
  ``Gamma(k_i, rate r_i)`` (Marsaglia-Tsang); response -1 when counter 1 wins, 1 when
  counter 2 wins; rt = the winner's time + t.
* Softmax (choice only): HSSM's ``softmax_inv_temperature_n``: ``P(k) ∝ exp(beta * logit_k)``
  with ``logit_0 = 0``; ssm-simulators' ``inv_temp_softmax_n``: ``P(k) ∝ exp(beta * q_k)``.
  rt is ssm-simulators' placeholder ``-1.0``; nothing is omitted.
"""

from __future__ import annotations

import torch

from simulators.rng import normal, stream_keys, uniform

__all__ = ["lba", "poisson_race", "racing_diffusion", "softmax", "standard_gamma"]

SOFTMAX_RT = -1.0
LBA_DRIFT_SD = 0.1


def _keys(keys, stream):
    return stream_keys(keys["k1"], keys["k2"], stream)


def lba(spec, params, keys, *, n_steps, dt, method):
    """Linear ballistic accumulator (HSSM parameterization, s = 0.1)."""
    n = spec.n_accumulators
    p = params
    dtype = p["A"].dtype
    k1, k2 = _keys(keys, 21)
    times = []
    for i in range(n):
        start = p["A"] * uniform(k1, k2, 2 * i, dtype)
        rate = p[f"v{i}"] + LBA_DRIFT_SD * normal(k1, k2, 1000 + i, dtype)
        tt = torch.where(rate > 0, (p["b"] - start) / rate, torch.full_like(rate, float("inf")))
        times.append(tt.clamp_min(0.0))
    times = torch.stack(times, dim=-1)
    dec, resp = times.min(dim=-1)
    finished = dec <= n_steps * dt
    return dec + p["t"], resp, finished


def _wald(d, v, k1, k2, c0, dtype):
    """First passage of a unit-noise Wiener process with drift v to distance d > 0."""
    av = v.abs()
    zn = normal(k1, k2, c0, dtype)
    zz = zn * zn
    u = uniform(k1, k2, 2 * c0 + 10_000, dtype)
    safe_v = torch.where(av > 0, av, torch.ones_like(av))
    mu = d / safe_v
    lam = d * d
    muz = mu * zz
    root = torch.sqrt(4.0 * mu * lam * zz + muz * muz)
    x = mu - 2.0 * mu * mu * zz / (root + mu * zz)
    x = x.clamp_min(torch.finfo(dtype).tiny)
    ig = torch.where(u <= mu / (mu + x), x, mu * mu / x)
    z2 = normal(k1, k2, c0 + 5_000, dtype)
    levy = lam / (z2 * z2)
    t = torch.where(av > 0, ig, levy)
    arrive = uniform(k1, k2, 2 * c0 + 20_001, dtype) < torch.exp(2.0 * torch.clamp_max(v, 0) * d)
    t = torch.where(arrive, t, torch.full_like(t, float("inf")))
    return torch.where(d > 0, t, torch.zeros_like(t))


def racing_diffusion(spec, params, keys, *, n_steps, dt, method):
    """Racing Wald accumulators with uniform start points (HSSM's rdm)."""
    n = spec.n_accumulators
    p = params
    dtype = p["A"].dtype
    k1, k2 = _keys(keys, 22)
    times = []
    for i in range(n):
        d = p["b"] - p["A"] * uniform(k1, k2, 30_000 + i, dtype)
        times.append(_wald(d, p[f"v{i}"], k1, k2, 10 * i, dtype))
    dec, resp = torch.stack(times, dim=-1).min(dim=-1)
    finished = dec <= n_steps * dt
    return dec + p["t"], resp, finished


def standard_gamma(shape: torch.Tensor, k1, k2, stream: int, max_rounds: int = 64) -> torch.Tensor:
    """Gamma(shape, 1) draws (Marsaglia-Tsang; shape < 1 boosted by ``U ** (1 / shape)``)."""
    dtype = shape.dtype
    k1, k2 = stream_keys(k1, k2, stream)
    small = shape < 1
    a = torch.where(small, shape + 1.0, shape)
    d = a - 1.0 / 3.0
    c = 1.0 / torch.sqrt(9.0 * d)
    out = torch.full_like(a, float("nan"))
    pending = torch.ones_like(a, dtype=torch.bool)
    for r in range(max_rounds):
        x = normal(k1, k2, 2 * r, dtype)
        u = uniform(k1, k2, 100_000 + r, dtype)
        w = 1.0 + c * x
        v = w * w * w
        ok = (v > 0) & (torch.log(u) < 0.5 * x * x + d - d * v + d * torch.log(v.clamp_min(1e-30)))
        take = pending & ok
        out = torch.where(take, d * v, out)
        pending = pending & ~ok
        if not bool(pending.any()):
            break
    boost = torch.exp(torch.log(uniform(k1, k2, 200_000, dtype)) / shape)
    return torch.where(small, out * boost, out)


def poisson_race(spec, params, keys, *, n_steps, dt, method):
    """Race of two Poisson counters with gamma finishing times."""
    p = params
    g1 = standard_gamma(p["k1"], keys["k1"], keys["k2"], 31) / p["r1"]
    g2 = standard_gamma(p["k2"], keys["k1"], keys["k2"], 32) / p["r2"]
    second = g2 < g1
    dec = torch.where(second, g2, g1)
    resp = torch.where(second, 1, -1).to(torch.int64)
    return dec + p["t"], resp, dec <= n_steps * dt


def softmax(spec, params, keys, *, n_steps, dt, method):
    """Choice-only softmax; rt is the placeholder -1.0."""
    p = params
    n = spec.n_choices
    if "logit1" in p:
        logits = torch.stack(
            [torch.zeros_like(p["beta"])] + [p[f"logit{i}"] for i in range(1, n)], -1
        )
    else:
        logits = torch.stack([p[f"q{i}"] for i in range(n)], -1)
    prob = torch.softmax(p["beta"].unsqueeze(-1) * logits, dim=-1)
    k1, k2 = _keys(keys, 23)
    u = uniform(k1, k2, 0, prob.dtype).unsqueeze(-1)
    idx = (u > torch.cumsum(prob, -1)[..., :-1]).sum(-1)
    choices = torch.tensor(spec.choices, device=idx.device)
    resp = choices[idx]
    return torch.full_like(p["beta"], SOFTMAX_RT), resp, torch.ones_like(resp, dtype=torch.bool)
