"""Link functions: map a linear predictor (any real number) onto a parameter's scale.

A :class:`Link` holds the *inverse* link used by the model (linear predictor -> parameter)
and the forward link used to translate initial values (parameter -> linear predictor).

========== ====================================== ===========================================
name       inverse link (eta -> theta)            use
========== ====================================== ===========================================
identity   theta = eta                            unbounded parameters (HSSM's default)
log        theta = exp(eta)                       parameters bounded below by 0
logit      theta = sigmoid(eta)                   parameters in (0, 1)
gen_logit  theta = lower + (upper-lower)*sig(eta) parameters in (lower, upper)
========== ====================================== ===========================================

Example
-------
>>> import torch
>>> link = get_link("gen_logit", bounds=(0.3, 2.5))
>>> round(float(link.inverse(torch.tensor(0.0))), 4)
1.4
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["LINK_NAMES", "Link", "default_link", "get_link"]

#: Names accepted by :func:`get_link`.
LINK_NAMES: tuple[str, ...] = ("gen_logit", "identity", "log", "logit")


@dataclass(frozen=True)
class Link:
    """A link function with optional bounds (``gen_logit`` only).

    Parameters
    ----------
    name : str
        One of :data:`LINK_NAMES`.
    lower, upper : float
        Bounds of the parameter for ``gen_logit`` (``logit`` is ``gen_logit`` on (0, 1)).
    """

    name: str
    lower: float = 0.0
    upper: float = 1.0

    def inverse(self, eta: torch.Tensor) -> torch.Tensor:
        """Linear predictor -> parameter value."""
        if self.name == "identity":
            return eta
        if self.name == "log":
            return torch.exp(eta)
        if self.name == "logit":
            return torch.sigmoid(eta)
        return self.lower + (self.upper - self.lower) * torch.sigmoid(eta)

    def forward(self, theta: float) -> float:
        """Parameter value -> linear predictor (used for initial values)."""
        if self.name == "identity":
            return float(theta)
        if self.name == "log":
            return math.log(theta)
        lo, hi = (0.0, 1.0) if self.name == "logit" else (self.lower, self.upper)
        u = (theta - lo) / (hi - lo)
        return math.log(u) - math.log1p(-u)

    def to_dict(self) -> dict:
        """JSON-friendly description."""
        return {"name": self.name, "lower": self.lower, "upper": self.upper}


def get_link(name: str | Link, bounds: tuple[float, float] | None = None) -> Link:
    """Build a link by name.

    Parameters
    ----------
    name : str or Link
        One of :data:`LINK_NAMES` (a :class:`Link` is returned unchanged).
    bounds : tuple of float, optional
        ``(lower, upper)`` for ``gen_logit``; both must be finite.

    Examples
    --------
    >>> get_link("log").name
    'log'
    """
    if isinstance(name, Link):
        return name
    if name not in LINK_NAMES:
        raise ValueError(f"link: unknown link {name!r}; expected one of {list(LINK_NAMES)}")
    if name == "gen_logit":
        if bounds is None or not all(math.isfinite(b) for b in bounds):
            raise ValueError(f"link 'gen_logit': needs finite bounds (lower, upper), got {bounds}")
        lo, hi = float(bounds[0]), float(bounds[1])
        if not lo < hi:
            raise ValueError(f"link 'gen_logit': expected lower < upper, got {bounds}")
        return Link("gen_logit", lo, hi)
    return Link(name)


def default_link(bounds: tuple[float, float], setting: str | None) -> Link:
    """The link a regression parameter gets when the user names none.

    Parameters
    ----------
    bounds : tuple of float
        The parameter's bounds (its support for analytical likelihoods, the training box
        for networks).
    setting : {None, "identity", "log_logit", "gen_logit"}
        ``None``/``"identity"``: identity (HSSM's default); ``"log_logit"``: log for
        ``(0, inf)``, gen_logit for finite bounds, identity otherwise; ``"gen_logit"``:
        gen_logit onto finite bounds (the default for network likelihoods, so a network is
        never evaluated outside its training box), identity for unbounded parameters.

    Examples
    --------
    >>> default_link((0.0, float("inf")), "log_logit").name
    'log'
    """
    lo, hi = bounds
    if setting in (None, "identity"):
        return Link("identity")
    if setting not in ("log_logit", "gen_logit"):
        raise ValueError(
            f"link_settings: expected None, 'identity', 'log_logit' or 'gen_logit', got {setting!r}"
        )
    if math.isfinite(lo) and math.isfinite(hi):
        return get_link("gen_logit", (lo, hi))
    if setting == "log_logit" and lo == 0.0 and math.isinf(hi):
        return Link("log")
    return Link("identity")
