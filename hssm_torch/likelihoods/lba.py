"""Linear ballistic accumulator (Brown & Heathcote, 2008), HSSM's parameterisation.

Accumulator ``i`` starts at ``k ~ Uniform(0, A)``, rises linearly at rate
``d_i ~ Normal(v_i, s^2)`` (``s = 0.1``, fixed as in HSSM) and responds when it reaches ``b``.
With decision time ``u = rt - t``, ``g = (b - A - u v)/(u s)``, ``h = (b - u v)/(u s)``:

    f_i(u) = [v (Phi(h) - Phi(g)) + s (phi(g) - phi(h))] / A
    S_i(u) = 1 - F_i(u) = (u s / A) [psi(h) - psi(g)],   psi(y) = y Phi(y) + phi(y)

(``S`` as an average over the start point of ``P(rate < (b - k) / u)``). Both are evaluated in
log space (tail-side normal CDF differences, an asymptotic series for ``psi`` at very negative
arguments), so deep-tail values are accurate where the textbook ``1 - F`` cancels: HSSM's own
values (reference file) lose accuracy below about -15 for this reason.

and the likelihood of response ``i`` is ``f_i(u) prod_{j != i} S_j(u)`` divided by
``1 - prod_j Phi(-v_j / s)`` (the probability that some rate is positive), exactly as HSSM 0.5.
Unlike HSSM we do not clip the result to ``[-66.1, 66.1]`` and we allow an optional trailing
non-decision time ``t`` (theta with ``P`` or ``P + 1`` columns; ``t = 0`` when absent).
``b <= A`` is outside the support (HSSM: ``b > A``).
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

__all__ = ["LBA_S", "lba_log_likelihood", "make_lba_likelihood"]

#: Standard deviation of the drift rates (fixed, as in HSSM).
LBA_S: float = 0.1

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _log_phi(x: torch.Tensor) -> torch.Tensor:
    return -0.5 * x * x - _LOG_SQRT_2PI


def _log1mexp(d: torch.Tensor) -> torch.Tensor:
    """``log(1 - exp(-d))`` for ``d >= 0`` (``-inf`` at 0), stable for small and large d."""
    d = d.clamp_min(torch.finfo(d.dtype).tiny)
    return torch.where(d < math.log(2.0), torch.log(-torch.expm1(-d)), torch.log1p(-torch.exp(-d)))


def _log_psi(y: torch.Tensor) -> torch.Tensor:
    """``log(y Phi(y) + phi(y))``, accurate for very negative ``y`` (where it is ~phi/y^2)."""
    pos = y >= 0
    y_pos = torch.where(pos, y, torch.zeros_like(y))
    direct = torch.log(y_pos * torch.special.ndtr(y_pos) + torch.exp(_log_phi(y_pos)))
    x = torch.where(pos, torch.ones_like(y), -y)  # x = |y| > 0 on the negative branch
    # psi(-x) = phi(x) (1 - x R(x)), R the Mills ratio: erfcx for moderate x, asymptotic
    # series 1/x^2 - 3/x^4 + 15/x^6 - ... for x > 20.
    mills = math.sqrt(math.pi / 2.0) * torch.special.erfcx(x / math.sqrt(2.0))
    moderate = 1.0 - x * mills
    big = x > 20.0
    xi2 = 1.0 / torch.where(big, x, torch.full_like(x, 20.0)) ** 2
    series = torch.zeros_like(x)
    term = torch.ones_like(x)
    for k in range(1, 9):
        term = term * xi2 * (2 * k - 1) if k > 1 else xi2
        series = series + (term if k % 2 else -term)
    neg = _log_phi(x) + torch.log(
        torch.where(big, series, moderate).clamp_min(torch.finfo(x.dtype).tiny)
    )
    return torch.where(pos, direct, neg)


def _log_ndtr_diff(hi: torch.Tensor, lo: torch.Tensor) -> torch.Tensor:
    """``log(Phi(hi) - Phi(lo))`` for ``hi > lo``, using the tail on the side away from 0."""
    upper = lo > 0
    a = torch.where(upper, -lo, hi)  # log_ndtr(a) is the larger term
    c = torch.where(upper, -hi, lo)
    la, lc = log_ndtr(a), log_ndtr(c)
    return la + _log1mexp(la - lc)


def _log_pdf(g, h, v, s, A):
    # f = [v (Phi(h) - Phi(g)) + s (phi(g) - phi(h))] / A, both parts >= 0 (g < h, v >= 0).
    l1 = _log_ndtr_diff(h, g)
    # phi(g) - phi(h) is negative where |g| > |h|; the v-term then dominates.
    lphg, lphh = _log_phi(g), _log_phi(h)
    m = torch.maximum(torch.maximum(l1, lphg), lphh)
    val = v * torch.exp(l1 - m) + s * (torch.exp(lphg - m) - torch.exp(lphh - m))
    val = val.clamp_min(torch.finfo(val.dtype).tiny)
    return torch.log(val) + m - torch.log(A)


def _lba_supports(n: int) -> tuple[Support, ...]:
    return (
        Support("A", 0.0),
        Support("b", 0.0),
        *(Support(f"v{i}", 0.0, lo_closed=True) for i in range(n)),
        Support("t", 0.0, lo_closed=True),
    )


def lba_log_likelihood(
    rt: torch.Tensor,
    response: torch.Tensor,
    theta: torch.Tensor,
    *,
    n_choices: int,
    validate: bool = False,
) -> torch.Tensor:
    """Log-likelihood of the ``n_choices``-accumulator LBA.

    Parameters
    ----------
    rt, response:
        Response times (s) and responses ``0 .. n_choices - 1``.
    theta:
        ``(..., 2 + n)`` ``A, b, v0 .. v{n-1}`` or ``(..., 3 + n)`` with a trailing ``t``.
    n_choices:
        Number of accumulators (2, 3, 4, ...).
    validate:
        Raise ``ValueError`` naming the parameter instead of returning ``-inf``.

    Returns
    -------
    torch.Tensor
        :data:`LOG_FLOOR` where ``rt <= t``; ``-inf`` outside the support or where ``b <= A``.

    Example
    -------
    >>> import torch
    >>> th = torch.tensor([0.3, 0.6, 0.8, 0.5], dtype=torch.float64)
    >>> lba_log_likelihood(torch.tensor([0.7, 0.7]), torch.tensor([0, 1]), th, n_choices=2).shape
    torch.Size([2])
    """
    n = int(n_choices)
    model = f"lba{n}"
    rt, response, theta = as_inputs(rt, response, theta, (2 + n, 3 + n), model)
    supports = _lba_supports(n)
    has_t = theta.shape[-1] == 3 + n
    A = theta[..., 0]
    b = theta[..., 1]
    v = theta[..., 2 : 2 + n]
    t = theta[..., 2 + n] if has_t else torch.zeros_like(A)
    resp_long = response.long() if not response.is_floating_point() else response.round().long()
    known = (resp_long >= 0) & (resp_long < n) & (resp_long == response)
    if validate and not bool(known.all()):
        bad = response[~known].flatten()[:5].tolist()
        raise ValueError(f"model {model!r}: response must be in 0..{n - 1}, got {bad}")
    inside = torch.ones_like(rt, dtype=torch.bool)
    for j, sup in enumerate(supports[: theta.shape[-1]]):
        inside = inside & sup.inside(theta[..., j])
    order = b > A
    if validate and not bool((order | ~inside).all()):
        raise ValueError(f"model {model!r}: requires b > A (threshold above the start range)")
    u = rt - t
    ok = inside & order & known & (u > 0)

    s = LBA_S
    A_s = sanitize(A, ok, 0.5)[..., None]
    b_s = sanitize(b, ok, 1.0)[..., None]
    v_s = torch.where(ok[..., None], v, torch.ones_like(v))
    # keep (b - A)/(u s) squared finite: only affects u below tiny^(1/4) (1e-77 in float64)
    u_s = sanitize(u, ok, 1.0).clamp_min(torch.finfo(theta.dtype).tiny ** 0.25)[..., None]
    us = u_s * s
    bu = b_s - u_s * v_s
    g = (bu - A_s) / us
    h = bu / us
    log_pdf = _log_pdf(g, h, v_s, s, A_s)
    # S = (u s / A) (psi(h) - psi(g)), psi(y) = y Phi(y) + phi(y)  (exact, see module doc)
    lpg, lph = _log_psi(g), _log_psi(h)
    log_surv = torch.log(us / A_s) + lph + _log1mexp(lph - lpg)
    log_surv = log_surv.clamp(max=0.0)
    idx = torch.where(known, resp_long, torch.zeros_like(resp_long))[..., None]
    win_pdf = log_pdf.gather(-1, idx).squeeze(-1)
    win_surv = log_surv.gather(-1, idx).squeeze(-1)
    log_all_neg = log_ndtr(-v_s / s).sum(-1)
    log_norm = torch.log1p(-torch.exp(log_all_neg).clamp(max=1.0 - torch.finfo(theta.dtype).eps))
    logp = win_pdf + log_surv.sum(-1) - win_surv - log_norm
    logp = torch.where(ok, logp, torch.full_like(logp, LOG_FLOOR))
    logp = torch.where(inside & ~order, torch.full_like(logp, -math.inf), logp)
    return apply_support(logp, theta, supports[: theta.shape[-1]], model, validate)


def make_lba_likelihood(n_choices: int):
    """The ``(rt, response, theta, *, validate=False)`` likelihood of ``lba{n_choices}``.

    Example
    -------
    >>> fn = make_lba_likelihood(3)
    >>> fn.__name__
    'lba3_log_likelihood'
    """

    def fn(
        rt: torch.Tensor, response: torch.Tensor, theta: torch.Tensor, *, validate: bool = False
    ) -> torch.Tensor:
        return lba_log_likelihood(rt, response, theta, n_choices=n_choices, validate=validate)

    fn.__name__ = f"lba{n_choices}_log_likelihood"
    fn.__doc__ = (
        f"Log-likelihood of the {n_choices}-accumulator LBA (theta: A, b, v0..v{n_choices - 1}"
        "[, t]); see :func:`lba_log_likelihood`."
    )
    return fn
