"""Drift functions v(t) for diffusion models.

A drift function receives the time grid ``t`` and the model's drift parameters and returns
the *total* drift at time ``t`` (so the constant drift returns ``v``).

User functions follow the same contract: ``fn(t, v, *extra) -> Tensor`` where ``extra``
are the values of the model parameters named in ``ModelSpec.drift_params``.

Example
-------
>>> import torch
>>> from simulators.drifts import constant
>>> constant(torch.zeros(3), torch.tensor(0.7)).tolist()
[0.699999988079071, 0.699999988079071, 0.699999988079071]
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["DRIFTS", "DriftFn", "constant", "gamma_drift"]

DriftFn = Callable[..., torch.Tensor]


def constant(t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Constant drift ``v(t) = v``.

    >>> import torch
    >>> constant(torch.zeros(1), torch.tensor(2.0)).tolist()
    [2.0]
    """
    return v + torch.zeros_like(t)


def gamma_drift(
    t: torch.Tensor,
    v: torch.Tensor,
    shape: torch.Tensor,
    scale: torch.Tensor,
    c: torch.Tensor,
) -> torch.Tensor:
    """Drift with a transient gamma-shaped pulse (as ssm-simulators' ``gamma_drift``).

    ``v(t) = v + c * g(t) / g(t_peak)`` with ``g(t) = t^(shape-1) exp(-t/scale)`` and
    ``t_peak = (shape - 1) * scale``: the pulse rises from 0 to ``c`` at ``t_peak`` and decays.

    >>> import torch
    >>> s, k, c = torch.tensor(5.0), torch.tensor(0.5), torch.tensor(1.0)
    >>> round(float(gamma_drift(torch.tensor(2.0), torch.tensor(0.0), s, k, c)), 4)
    1.0
    """
    km1 = shape - 1.0
    log_g = km1 * torch.log(t.clamp_min(1e-30)) - t / scale
    log_peak = km1 * torch.log(km1 * scale) - km1
    pulse = torch.where(t > 0, torch.exp(log_g - log_peak), torch.zeros_like(log_g))
    return v + c * pulse


#: name -> (function, names of the extra parameters it takes after ``v``)
DRIFTS: dict[str, tuple[DriftFn, tuple[str, ...]]] = {
    "constant": (constant, ()),
    "gamma_drift": (gamma_drift, ("shape", "scale", "c")),
}
