"""Shared helpers for the analytical likelihoods: input broadcasting, supports, floors.

Every likelihood in this package takes ``(rt, response, theta)`` with ``theta`` of shape
``(..., P)`` (parameters in the model's order) and returns a log-likelihood whose shape is the
broadcast of ``rt.shape``, ``response.shape`` and ``theta.shape[:-1]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = [
    "LOG_FLOOR",
    "Support",
    "apply_support",
    "as_inputs",
    "log_ndtr",
    "sanitize",
    "series_log_eps",
]

#: Log-likelihood returned where the data are impossible under valid parameters
#: (``rt <= t``, a response code the model does not have). Same value as HSSM's ``LOGP_LB``.
LOG_FLOOR: float = -66.1


@dataclass(frozen=True)
class Support:
    """Mathematical support of one parameter.

    ``lo``/``hi`` are the limits; ``lo_closed``/``hi_closed`` say whether the limit itself
    is allowed. Values outside give ``-inf`` (or a ``ValueError`` under ``validate``).
    """

    name: str
    lo: float = -math.inf
    hi: float = math.inf
    lo_closed: bool = False
    hi_closed: bool = False

    def inside(self, x: torch.Tensor) -> torch.Tensor:
        """Boolean mask: ``x`` inside the support (NaN is outside)."""
        ok_lo = x >= self.lo if self.lo_closed else x > self.lo
        ok_hi = x <= self.hi if self.hi_closed else x < self.hi
        if math.isinf(self.lo) and math.isinf(self.hi):
            return torch.isfinite(x)
        return ok_lo & ok_hi & ~torch.isnan(x)

    def describe(self) -> str:
        """Interval notation, e.g. ``(0, inf)`` or ``[0, 1)``."""
        left = "[" if self.lo_closed else "("
        right = "]" if self.hi_closed else ")"
        return f"{left}{self.lo:g}, {self.hi:g}{right}"


def as_inputs(
    rt: torch.Tensor | float,
    response: torch.Tensor | float,
    theta: torch.Tensor,
    n_params: int | tuple[int, ...],
    model: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Convert and broadcast ``rt``, ``response`` and ``theta``.

    Returns ``rt`` and ``response`` in ``theta``'s floating dtype and device, broadcast to the
    common batch shape, and ``theta`` broadcast to ``batch + (P,)``.

    Raises
    ------
    ValueError
        If ``theta``'s last dimension is not one of ``n_params``.
    """
    if not isinstance(theta, torch.Tensor):
        theta = torch.as_tensor(theta)
    if not theta.is_floating_point():
        theta = theta.to(torch.get_default_dtype())
    allowed = (n_params,) if isinstance(n_params, int) else tuple(n_params)
    if theta.dim() == 0 or theta.shape[-1] not in allowed:
        shape = tuple(theta.shape)
        raise ValueError(
            f"theta for model {model!r} must have shape (..., P) with P in {list(allowed)} "
            f"(parameters in registry order), got shape {shape}"
        )
    # .to on tensors (a no-op when nothing changes; traceable), as_tensor on anything else
    if isinstance(rt, torch.Tensor):
        rt = rt.to(dtype=theta.dtype, device=theta.device)
    else:
        rt = torch.as_tensor(rt, dtype=theta.dtype, device=theta.device)
    if isinstance(response, torch.Tensor):
        response = response.to(device=theta.device)
    else:
        response = torch.as_tensor(response, device=theta.device)
    if response.is_floating_point() and response.dtype != theta.dtype:
        response = response.to(theta.dtype)
    batch = torch.broadcast_shapes(rt.shape, response.shape, theta.shape[:-1])
    rt = rt.expand(batch)
    response = response.expand(batch)
    theta = theta.expand(batch + theta.shape[-1:])
    return rt, response, theta


def apply_support(
    logp: torch.Tensor,
    theta: torch.Tensor,
    supports: tuple[Support, ...],
    model: str,
    validate: bool,
) -> torch.Tensor:
    """Set ``logp`` to ``-inf`` where a parameter lies outside its support.

    Under ``validate=True`` raise ``ValueError`` naming the first offending parameter instead.
    The gradient at such points is zero (they never reach the formulas: callers compute on
    sanitised parameters, see :func:`sanitize`).
    """
    bad = None
    for j, sup in enumerate(supports):
        if j >= theta.shape[-1]:
            break
        inside = sup.inside(theta[..., j])
        if validate and not bool(inside.all()):
            x = theta[..., j][~inside]
            raise ValueError(
                f"model {model!r}: parameter {sup.name!r} must lie in {sup.describe()}, "
                f"got {x.flatten()[:5].tolist()} ({int(x.numel())} value(s) outside)"
            )
        bad = ~inside if bad is None else bad | ~inside
    if bad is None:
        return logp
    return torch.where(bad, torch.full_like(logp, -math.inf), logp)


def sanitize(x: torch.Tensor, ok: torch.Tensor, fill: float) -> torch.Tensor:
    """First half of the double-``where`` trick: replace ``x`` by ``fill`` where ``~ok``.

    Computing a formula on the sanitised value and selecting the result with a second
    ``torch.where`` keeps NaN/inf out of the gradient at the masked points.
    """
    return torch.where(ok, x, torch.full_like(x, fill))


def series_log_eps(dtype: torch.dtype) -> float:
    """``-log`` of the relative truncation error targeted for series in ``dtype``.

    One hundredth of the machine epsilon: ``~40.6`` for float64, ``~20.5`` for float32.
    """
    return -math.log(torch.finfo(dtype).eps) + math.log(100.0)


def log_ndtr(x: torch.Tensor) -> torch.Tensor:
    """``log Phi(x)`` with finite gradients everywhere.

    ``torch.special.log_ndtr``'s backward returns NaN for very negative arguments in float32;
    below ``x = -10`` this uses the asymptotic series
    ``log phi(x) - log(-x) + log(1 - 1/x^2 + 3/x^4 - 15/x^6 + ...)`` (12 terms, relative
    error below 1e-13 there).

    Example
    -------
    >>> import torch
    >>> round(float(log_ndtr(torch.tensor(0.0, dtype=torch.float64))), 6)
    -0.693147
    """
    far = x < -10.0
    x_near = torch.where(far, torch.zeros_like(x), x)
    x_far = torch.where(far, x, torch.full_like(x, -10.0))
    i2 = 1.0 / (x_far * x_far)
    # 1 - 1/x^2 + 3/x^4 - 15/x^6 + ...  (12 terms: relative error < 1e-13 for x <= -10)
    series = torch.ones_like(x_far)
    term = torch.ones_like(x_far)
    for n in range(1, 13):
        term = -term * (2 * n - 1) * i2
        series = series + term
    asym = (
        -0.5 * x_far * x_far - 0.5 * math.log(2.0 * math.pi) - torch.log(-x_far) + torch.log(series)
    )
    return torch.where(far, asym, torch.special.log_ndtr(x_near))
