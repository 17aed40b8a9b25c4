"""Racing diffusion model with three accumulators (``racing_diffusion_3``), as HSSM 0.5.

Each accumulator is a Wiener process with drift ``v_i`` and unit noise, starting uniformly in
``[0, A]`` and responding at threshold ``b`` (Tillman, Van Zandt & Logan, 2020). With decision
time ``u = rt - t``, ``alpha = (b - A - v u)/sqrt(u)``, ``beta = (b - v u)/sqrt(u)`` the single
accumulator density (an average of Wald densities over the start point) is

    f(u) = [v (Phi(beta) - Phi(alpha)) + (phi(alpha) - phi(beta)) / sqrt(u)] / A

and its survival, integrating the Wald CDF over the start point (y = (x - v u)/sqrt(u),
x in [b - A, b], psi(y) = y Phi(y) + phi(y), E(x) = exp(2 v x) Phi(-(x + v u)/sqrt(u))),

    A S(u) = sqrt(u) [psi(y_b) - psi(y_{b-A})]
             - [Phi(y_b) - Phi(y_{b-A}) + E(b) - E(b - A)] / (2 v).

Response ``i`` in ``0, 1, 2`` has likelihood ``f_i(u) prod_{j != i} S_j(u)``. Parameters in
HSSM's order ``A, b, v0, v1, v2, t``; ``b <= A`` is outside the support (HSSM: ``b > A``).
Unlike HSSM the result is not clipped to ``[-66.1, 66.1]``. The survival is computed in float64
(inputs in float32 are promoted for this step); its ``1/(2v)`` terms lose accuracy for drifts
below about 1e-6.
"""

from __future__ import annotations

import math

import torch

from hssm_torch.likelihoods._common import (
    LOG_FLOOR,
    Support,
    apply_support,
    as_inputs,
    log_ndtr,
    sanitize,
)
from hssm_torch.likelihoods.lba import _log_pdf, _log_psi

__all__ = ["RDM3_SUPPORTS", "racing_diffusion_3_log_likelihood", "rdm_log_pdf", "rdm_log_survival"]

RDM3_SUPPORTS = (
    Support("A", 0.0),
    Support("b", 0.0),
    Support("v0", 0.0),
    Support("v1", 0.0),
    Support("v2", 0.0),
    Support("t", 0.0, lo_closed=True),
)


def rdm_log_pdf(u: torch.Tensor, A: torch.Tensor, b: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Log first-passage density of one racing-diffusion accumulator at decision time ``u``.

    Example
    -------
    >>> import torch
    >>> one = torch.ones((), dtype=torch.float64)
    >>> bool(rdm_log_pdf(one, 0.5 * one, one, one) < 0)
    True
    """
    sq = torch.sqrt(u)
    alpha = (b - A - v * u) / sq
    beta = (b - v * u) / sq
    return _log_pdf(alpha, beta, v, 1.0 / sq, A)


def rdm_log_survival(
    u: torch.Tensor, A: torch.Tensor, b: torch.Tensor, v: torch.Tensor
) -> torch.Tensor:
    """Log survival ``log(1 - F(u))`` of one racing-diffusion accumulator (float64 inside).

    Example
    -------
    >>> import torch
    >>> one = torch.ones((), dtype=torch.float64)
    >>> bool(rdm_log_survival(one, 0.5 * one, one, one) < 0)
    True
    """
    dtype = u.dtype
    u, A, b, v = (x.to(torch.float64) for x in (u, A, b, v))
    sq = torch.sqrt(u)
    x1 = b - A
    y2 = (b - v * u) / sq
    y1 = (x1 - v * u) / sq
    psi_diff = torch.exp(_log_psi(y2)) - torch.exp(_log_psi(y1))
    e2 = torch.exp(2.0 * v * b + log_ndtr(-(b + v * u) / sq))
    e1 = torch.exp(2.0 * v * x1 + log_ndtr(-(x1 + v * u) / sq))
    ndtr_diff = torch.special.ndtr(y2) - torch.special.ndtr(y1)
    s = (sq * psi_diff - (ndtr_diff + e2 - e1) / (2.0 * v)) / A
    s = s.clamp(min=torch.finfo(torch.float64).tiny, max=1.0)
    return torch.log(s).to(dtype)


def racing_diffusion_3_log_likelihood(
    rt: torch.Tensor, response: torch.Tensor, theta: torch.Tensor, *, validate: bool = False
) -> torch.Tensor:
    """Log-likelihood of the three-accumulator racing diffusion model.

    Parameters
    ----------
    rt, response:
        Response times (s) and responses ``0, 1, 2``.
    theta:
        ``(..., 6)``: ``A, b, v0, v1, v2, t`` (HSSM's order).
    validate:
        Raise ``ValueError`` naming the parameter instead of returning ``-inf``.

    Example
    -------
    >>> import torch
    >>> th = torch.tensor([0.5, 1.5, 1.0, 1.5, 0.8, 0.2], dtype=torch.float64)
    >>> racing_diffusion_3_log_likelihood(torch.tensor([1.0, 1.0]), torch.tensor([0, 2]), th).shape
    torch.Size([2])
    """
    model = "racing_diffusion_3"
    rt, response, theta = as_inputs(rt, response, theta, 6, model)
    A, b, t = theta[..., 0], theta[..., 1], theta[..., 5]
    v = theta[..., 2:5]
    resp_long = response.round().long() if response.is_floating_point() else response.long()
    known = (resp_long >= 0) & (resp_long < 3) & (resp_long == response)
    if validate and not bool(known.all()):
        raise ValueError(
            f"model {model!r}: response must be 0, 1 or 2, got {response[~known][:5].tolist()}"
        )
    inside = torch.ones_like(rt, dtype=torch.bool)
    for j, sup in enumerate(RDM3_SUPPORTS):
        inside = inside & sup.inside(theta[..., j])
    order = b > A
    if validate and not bool((order | ~inside).all()):
        raise ValueError(f"model {model!r}: requires b > A (threshold above the start range)")
    u = rt - t
    ok = inside & order & known & (u > 0)
    A_s = sanitize(A, ok, 0.5)[..., None]
    b_s = sanitize(b, ok, 1.0)[..., None]
    v_s = torch.where(ok[..., None], v, torch.ones_like(v))
    u_s = sanitize(u, ok, 1.0).clamp_min(torch.finfo(theta.dtype).tiny ** 0.25)[..., None]
    log_pdf = rdm_log_pdf(u_s, A_s, b_s, v_s)
    log_surv = rdm_log_survival(u_s, A_s, b_s, v_s)
    idx = torch.where(known, resp_long, torch.zeros_like(resp_long))[..., None]
    logp = (
        log_pdf.gather(-1, idx).squeeze(-1)
        + log_surv.sum(-1)
        - log_surv.gather(-1, idx).squeeze(-1)
    )
    logp = torch.where(ok, logp, torch.full_like(logp, LOG_FLOOR))
    logp = torch.where(inside & ~order, torch.full_like(logp, -math.inf), logp)
    return apply_support(logp, theta, RDM3_SUPPORTS, model, validate)
