"""Boundary functions b(t) for diffusion models.

A boundary function receives the time grid ``t`` (a tensor) and the model's boundary
parameters as tensors broadcastable against ``t`` and returns the *height* of the upper
boundary; the lower boundary is its mirror image ``-b(t)``.  ``b(0) = a`` (half the
boundary separation).  The height may reach zero or become negative (e.g. ``angle``): a
trial then ends at that step on the side its particle is on.

User functions follow the same contract: ``fn(t, a, *extra) -> Tensor`` where ``extra``
are the values of the model parameters named in ``ModelSpec.boundary_params``.

Example
-------
>>> import torch
>>> from simulators.boundaries import angle
>>> angle(torch.tensor([0.0, 1.0]), torch.tensor(1.0), torch.tensor(0.0)).tolist()
[1.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["BOUNDARIES", "BoundaryFn", "angle", "constant", "weibull_cdf"]

BoundaryFn = Callable[..., torch.Tensor]


def constant(t: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Constant boundary: ``b(t) = a``.

    >>> import torch
    >>> constant(torch.zeros(2), torch.tensor(1.5)).tolist()
    [1.5, 1.5]
    """
    return a + torch.zeros_like(t)


def angle(t: torch.Tensor, a: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Linearly collapsing boundary: ``b(t) = a - t * tan(theta)`` (theta in radians).

    >>> import torch
    >>> round(float(angle(torch.tensor(1.0), torch.tensor(1.0), torch.tensor(0.5))), 4)
    0.4537
    """
    return a - t * torch.tan(theta)


def weibull_cdf(
    t: torch.Tensor, a: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor
) -> torch.Tensor:
    """Weibull-shaped collapse: ``b(t) = a * exp(-(t / beta) ** alpha)``.

    >>> import torch
    >>> t, a, alpha, beta = (torch.tensor(x) for x in (0.0, 2.0, 3.0, 1.0))
    >>> float(weibull_cdf(t, a, alpha, beta))
    2.0
    """
    # exp(alpha * log(.)) rather than pow: torch.pow's result can depend on an element's
    # position in the tensor, which would make simulations depend on chunking.
    return a * torch.exp(-torch.exp(alpha * torch.log(t / beta)))


#: name -> (function, names of the extra parameters it takes after ``a``)
BOUNDARIES: dict[str, tuple[BoundaryFn, tuple[str, ...]]] = {
    "constant": (constant, ()),
    "angle": (angle, ("theta",)),
    "weibull_cdf": (weibull_cdf, ("alpha", "beta")),
}
