"""Poisson race (LaBerge, 1962) with two accumulators, as HSSM 0.5's ``poisson_race``.

Accumulator ``i`` counts Poisson events at rate ``r_i`` and finishes at its ``k_i``-th event,
so its finishing time is ``Gamma(shape=k_i, rate=r_i)`` (``k`` may be any positive real).
Response ``1`` means the *second* accumulator (``r2, k2``) won, ``-1`` the first (HSSM's
convention). With decision time ``u = rt - t``:

    log p = k_c log r_c + (k_c - 1) log u - r_c u - lgamma(k_c) + log Q(k_l, r_l u)

where ``c`` is the winner, ``l`` the loser and ``Q`` the regularised upper incomplete gamma
function. Unlike HSSM we do not clip ``Q`` at 1e-15: ``log Q`` is computed accurately in its
tail (asymptotic series where ``Q`` underflows). PyTorch has no derivative of ``Q`` in its
shape, so :class:`LogGammaQ` supplies it by a central difference of ``log Q`` in ``k``
(step ``1e-4 * max(1, k)``, computed in float64: error ~1e-8 relative).
"""

from __future__ import annotations

import torch

from hssm_torch.likelihoods._common import (
    LOG_FLOOR,
    Support,
    apply_support,
    as_inputs,
    sanitize,
)

__all__ = ["POISSON_RACE_SUPPORTS", "LogGammaQ", "log_gammaincc", "poisson_race_log_likelihood"]

POISSON_RACE_SUPPORTS = (
    Support("r1", 0.0),
    Support("r2", 0.0),
    Support("k1", 0.0),
    Support("k2", 0.0),
    Support("t", 0.0, lo_closed=True),
)


def _log_q_value(k: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``log Q(k, x)`` in float64 without gradient tracking."""
    q = torch.special.gammaincc(k, x)
    p = torch.special.gammainc(k, x)
    direct = torch.where(p < 0.5, torch.log1p(-p), torch.log(q))
    # Asymptotic: Q ~ x^(k-1) e^-x / Gamma(k) * sum_n (k-1)(k-2)...(k-n) / x^n  (x >> k).
    tail = q < 1e-250
    xs = torch.where(tail, x, torch.full_like(x, 1e3))
    term = torch.ones_like(x)
    total = torch.ones_like(x)
    for n in range(1, 30):
        term = term * (k - n) / xs
        total = total + term
    asym = (k - 1.0) * torch.log(xs) - xs - torch.lgamma(k) + torch.log(total.clamp_min(1e-300))
    return torch.where(tail, asym, direct)


class LogGammaQ(torch.autograd.Function):
    """``log Q(k, x)`` (regularised upper incomplete gamma) with gradients in ``k`` and ``x``.

    ``d/dx`` is exact (``-x^(k-1) e^-x / (Gamma(k) Q)``); ``d/dk`` is a central difference.
    """

    @staticmethod
    def forward(ctx, k: torch.Tensor, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        k64, x64 = k.to(torch.float64), x.to(torch.float64)
        out = _log_q_value(k64, x64)
        ctx.save_for_backward(k64, x64, out)
        ctx.dtype = k.dtype
        return out.to(k.dtype)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        k, x, out = ctx.saved_tensors
        grad64 = grad.to(torch.float64)
        gk = gx = None
        if ctx.needs_input_grad[0]:
            h = 1e-4 * k.clamp_min(1.0)
            h = torch.minimum(h, 0.5 * k)
            dk = (_log_q_value(k + h, x) - _log_q_value(k - h, x)) / (2.0 * h)
            gk = (grad64 * dk).to(ctx.dtype)
        if ctx.needs_input_grad[1]:
            log_dens = (k - 1.0) * torch.log(x) - x - torch.lgamma(k)
            gx = (-grad64 * torch.exp(log_dens - out)).to(ctx.dtype)
        return gk, gx


def log_gammaincc(k: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Differentiable ``log Q(k, x)``; see :class:`LogGammaQ`.

    Example
    -------
    >>> import torch
    >>> k = torch.tensor(2.0, dtype=torch.float64)
    >>> round(float(log_gammaincc(k, torch.tensor(1.0, dtype=torch.float64)).exp()), 10)
    0.7357588823
    """
    k, x = torch.broadcast_tensors(torch.as_tensor(k), torch.as_tensor(x))
    return LogGammaQ.apply(k, x)


def poisson_race_log_likelihood(
    rt: torch.Tensor, response: torch.Tensor, theta: torch.Tensor, *, validate: bool = False
) -> torch.Tensor:
    """Log-likelihood of the two-accumulator Poisson race.

    Parameters
    ----------
    rt, response:
        Response times (s); response ``1`` (second accumulator won) or ``-1`` (first).
    theta:
        ``(..., 5)``: ``r1, r2, k1, k2, t``.
    validate:
        Raise ``ValueError`` naming the parameter instead of returning ``-inf``.

    Example
    -------
    >>> import torch
    >>> th = torch.tensor([3.0, 4.0, 2.0, 3.0, 0.2], dtype=torch.float64)
    >>> poisson_race_log_likelihood(torch.tensor([0.9, 0.9]), torch.tensor([-1, 1]), th).shape
    torch.Size([2])
    """
    model = "poisson_race"
    rt, response, theta = as_inputs(rt, response, theta, 5, model)
    r1, r2, k1, k2, t = theta.unbind(-1)
    second = response == 1
    known = second | (response == -1)
    if validate and not bool(known.all()):
        raise ValueError(
            f"model {model!r}: response must be -1 or 1, got {response[~known][:5].tolist()}"
        )
    inside = torch.ones_like(rt, dtype=torch.bool)
    for j, sup in enumerate(POISSON_RACE_SUPPORTS):
        inside = inside & sup.inside(theta[..., j])
    u = rt - t
    ok = inside & known & (u > 0)
    u_s = sanitize(u, ok, 1.0)
    r_c = sanitize(torch.where(second, r2, r1), ok, 1.0)
    r_l = sanitize(torch.where(second, r1, r2), ok, 1.0)
    k_c = sanitize(torch.where(second, k2, k1), ok, 1.0)
    k_l = sanitize(torch.where(second, k1, k2), ok, 1.0)
    log_pdf = k_c * torch.log(r_c) + (k_c - 1.0) * torch.log(u_s) - r_c * u_s - torch.lgamma(k_c)
    logp = log_pdf + log_gammaincc(k_l, r_l * u_s)
    logp = torch.where(ok, logp, torch.full_like(logp, LOG_FLOOR))
    return apply_support(logp, theta, POISSON_RACE_SUPPORTS, model, validate)
