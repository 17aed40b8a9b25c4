"""Prior specifications: named distributions with HSSM/PyMC-style arguments, and defaults.

A :class:`Prior` is a plain description (distribution name + numeric arguments + optional
bounds), free of Pyro until :meth:`Prior.to_pyro` is called, so a model specification can
be written to JSON and read back. Names and argument names follow PyMC/HSSM
(``Normal(mu, sigma)``, ``Gamma(alpha, beta)`` or ``Gamma(mu, sigma)``, ``Weibull(alpha,
beta)`` ...); torch's names (``loc``, ``scale`` ...) are accepted as aliases.

The "safe" defaults (:func:`default_prior`) are documented in ``docs/fitting.md``.

Example
-------
>>> p = Prior.from_spec({"name": "Normal", "mu": 0.0, "sigma": 2.0})
>>> p.to_pyro().scale.item()
2.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyro.distributions as pdist
import torch
from pyro.distributions import constraints
from torch.distributions.utils import broadcast_all

__all__ = [
    "PRIOR_NAMES",
    "Prior",
    "TruncatedNormal",
    "default_group_sigma_prior",
    "default_intercept_prior",
    "default_prior",
    "default_slope_prior",
    "prior_from_dict",
    "prior_from_user",
    "prior_to_dict",
]

_SQRT2 = math.sqrt(2.0)


class TruncatedNormal(pdist.TorchDistribution):
    """Normal(loc, scale) truncated to ``[low, high]`` (either end may be infinite).

    Example
    -------
    >>> d = TruncatedNormal(0.0, 1.0, 0.0, float("inf"))
    >>> round(float(d.log_prob(torch.tensor(0.5))), 4)
    -0.3508
    """

    arg_constraints = {
        "loc": constraints.real,
        "scale": constraints.positive,
        "low": constraints.dependent(is_discrete=False, event_dim=0),
        "high": constraints.dependent(is_discrete=False, event_dim=0),
    }
    has_rsample = True

    def __init__(self, loc, scale, low, high, validate_args=None):
        self.loc, self.scale, self.low, self.high = broadcast_all(loc, scale, low, high)
        if validate_args is not False and bool(torch.any(self.low >= self.high)):
            raise ValueError(
                f"TruncatedNormal: expected low < high, got low={self.low}, high={self.high}"
            )
        self._alpha = (self.low - self.loc) / self.scale
        self._beta = (self.high - self.loc) / self.scale
        cdf_a, cdf_b = self._ndtr(self._alpha), self._ndtr(self._beta)
        self._cdf_a = cdf_a
        self._log_z = torch.log(torch.clamp(cdf_b - cdf_a, min=torch.finfo(cdf_a.dtype).tiny))
        super().__init__(self.loc.shape, validate_args=validate_args)

    @staticmethod
    def _ndtr(x: torch.Tensor) -> torch.Tensor:
        return 0.5 * torch.erfc(-x / _SQRT2)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        lo_inf = bool(torch.isinf(self.low).all())
        hi_inf = bool(torch.isinf(self.high).all())
        if lo_inf and hi_inf:
            return constraints.real
        if hi_inf:
            return constraints.greater_than(self.low)
        if lo_inf:
            return constraints.less_than(self.high)
        return constraints.interval(self.low, self.high)

    def expand(self, batch_shape, _instance=None):
        shape = torch.Size(batch_shape)
        return TruncatedNormal(
            self.loc.expand(shape),
            self.scale.expand(shape),
            self.low.expand(shape),
            self.high.expand(shape),
            validate_args=False,
        )

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = (value - self.loc) / self.scale
        lp = -0.5 * z * z - math.log(math.sqrt(2 * math.pi)) - torch.log(self.scale) - self._log_z
        inside = (value >= self.low) & (value <= self.high)
        return torch.where(inside, lp, torch.full_like(lp, -math.inf))

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        u = torch.rand(shape, dtype=self.loc.dtype, device=self.loc.device)
        cdf_b = self._ndtr(self._beta)
        p = self._cdf_a + u * (cdf_b - self._cdf_a)
        eps = torch.finfo(p.dtype).eps
        x = self.loc + self.scale * _SQRT2 * torch.erfinv(torch.clamp(2 * p - 1, -1 + eps, 1 - eps))
        return torch.minimum(torch.maximum(x, self.low), self.high)

    @property
    def mean(self):
        phi = lambda x: torch.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)  # noqa: E731
        num = phi(self._alpha) - phi(self._beta)
        return self.loc + self.scale * num / torch.exp(self._log_z)


def _gamma(alpha=None, beta=None, mu=None, sigma=None):
    if mu is not None or sigma is not None:
        if mu is None or sigma is None or alpha is not None or beta is not None:
            raise ValueError("prior 'Gamma': give either (alpha, beta) or (mu, sigma)")
        alpha, beta = mu**2 / sigma**2, mu / sigma**2
    if alpha is None or beta is None:
        raise ValueError("prior 'Gamma': give either (alpha, beta) or (mu, sigma)")
    return pdist.Gamma(alpha, beta)


# name -> (builder taking canonical kwargs, canonical arg names, aliases -> canonical)
_TABLE: dict[str, tuple[Any, tuple[str, ...], dict[str, str]]] = {
    "Beta": (
        lambda alpha, beta: pdist.Beta(alpha, beta),
        ("alpha", "beta"),
        {"concentration1": "alpha", "concentration0": "beta"},
    ),
    "Cauchy": (
        lambda alpha, beta: pdist.Cauchy(alpha, beta),
        ("alpha", "beta"),
        {"loc": "alpha", "scale": "beta"},
    ),
    "Exponential": (lambda lam: pdist.Exponential(lam), ("lam",), {"rate": "lam"}),
    "Gamma": (_gamma, ("alpha", "beta", "mu", "sigma"), {"concentration": "alpha", "rate": "beta"}),
    "HalfCauchy": (lambda beta: pdist.HalfCauchy(beta), ("beta",), {"scale": "beta"}),
    "HalfNormal": (lambda sigma: pdist.HalfNormal(sigma), ("sigma",), {"scale": "sigma"}),
    "InverseGamma": (
        lambda alpha, beta: pdist.InverseGamma(alpha, beta),
        ("alpha", "beta"),
        {"concentration": "alpha", "rate": "beta"},
    ),
    "LogNormal": (
        lambda mu, sigma: pdist.LogNormal(mu, sigma),
        ("mu", "sigma"),
        {"loc": "mu", "scale": "sigma"},
    ),
    "Normal": (
        lambda mu, sigma: pdist.Normal(mu, sigma),
        ("mu", "sigma"),
        {"loc": "mu", "scale": "sigma"},
    ),
    "StudentT": (
        lambda nu, mu, sigma: pdist.StudentT(nu, mu, sigma),
        ("nu", "mu", "sigma"),
        {"df": "nu", "loc": "mu", "scale": "sigma"},
    ),
    "TruncatedNormal": (
        lambda mu, sigma, lower, upper: TruncatedNormal(mu, sigma, lower, upper),
        ("mu", "sigma", "lower", "upper"),
        {"loc": "mu", "scale": "sigma", "low": "lower", "high": "upper"},
    ),
    "Uniform": (
        lambda lower, upper: pdist.Uniform(lower, upper),
        ("lower", "upper"),
        {"low": "lower", "high": "upper"},
    ),
    "Weibull": (
        lambda alpha, beta: pdist.Weibull(beta, alpha),
        ("alpha", "beta"),
        {"concentration": "alpha", "scale": "beta"},
    ),
}

#: Distribution names a prior may use (PyMC/HSSM spelling).
PRIOR_NAMES: tuple[str, ...] = tuple(sorted(_TABLE))

_OPTIONAL = {"TruncatedNormal": {"lower": -math.inf, "upper": math.inf}}


@dataclass(frozen=True)
class Prior:
    """A named prior distribution with numeric arguments.

    Parameters
    ----------
    name : str
        One of :data:`PRIOR_NAMES`.
    args : dict
        Arguments by PyMC name (``mu``, ``sigma``, ``alpha``, ``beta``, ``lower``, ``upper``,
        ``lam``, ``nu``) or torch alias (``loc``, ``scale`` ...).

    Examples
    --------
    >>> Prior("HalfNormal", {"sigma": 0.5}).to_dict()
    {'name': 'HalfNormal', 'sigma': 0.5}
    """

    name: str
    args: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in _TABLE:
            raise ValueError(
                f"prior: unknown distribution {self.name!r}; expected one of {list(PRIOR_NAMES)}"
            )
        _, allowed, aliases = _TABLE[self.name]
        canonical: dict[str, float] = {}
        for key, value in dict(self.args).items():
            ckey = aliases.get(key, key)
            if ckey not in allowed:
                raise ValueError(
                    f"prior {self.name!r}: unknown argument {key!r}; expected "
                    f"{list(allowed)} (or torch names {list(aliases)})"
                )
            if isinstance(value, (Mapping, Prior)):
                raise ValueError(
                    f"prior {self.name!r}: argument {key!r} must be a number here; hyperpriors "
                    "are only allowed for the sigma of a group term"
                )
            try:
                canonical[ckey] = float(value)
            except (TypeError, ValueError):
                raise ValueError(
                    f"prior {self.name!r}: argument {key!r} must be a number, got {value!r}"
                ) from None
        for k, v in _OPTIONAL.get(self.name, {}).items():
            canonical.setdefault(k, v)
        object.__setattr__(self, "args", canonical)
        try:
            self.to_pyro()
        except TypeError as err:
            raise ValueError(
                f"prior {self.name!r}: wrong arguments {dict(canonical)} ({err}); expected "
                f"{list(allowed)}"
            ) from None

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | Prior) -> Prior:
        """Build from ``{"name": ..., **args}`` (HSSM style) or return a Prior unchanged."""
        if isinstance(spec, Prior):
            return spec
        if not isinstance(spec, Mapping) or "name" not in spec:
            raise ValueError(
                f"prior: expected a dict with a 'name' key (e.g. {{'name': 'Normal', 'mu': 0, "
                f"'sigma': 1}}), a Prior or a Pyro distribution, got {spec!r}"
            )
        args = {k: v for k, v in spec.items() if k != "name"}
        return cls(str(spec["name"]), args)

    def to_pyro(self, dtype: torch.dtype | None = None, device=None) -> pdist.Distribution:
        """The Pyro distribution (scalar batch shape) in ``dtype`` on ``device``."""
        builder = _TABLE[self.name][0]
        dtype = dtype or torch.get_default_dtype()
        kwargs = {k: torch.tensor(v, dtype=dtype, device=device) for k, v in self.args.items()}
        return builder(**kwargs)

    def support_bounds(self) -> tuple[float, float]:
        """``(lower, upper)`` of the prior's support."""
        sup = self.to_pyro(torch.float64).support
        lo = float(getattr(sup, "lower_bound", -math.inf))
        hi = float(getattr(sup, "upper_bound", math.inf))
        return lo, hi

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly ``{"name": ..., **args}``."""
        return {"name": self.name, **self.args}


def prior_to_dict(prior: Prior | pdist.Distribution) -> dict[str, Any]:
    """Serialise a Prior, or a Pyro distribution by class name and tensor arguments."""
    if isinstance(prior, Prior):
        return prior.to_dict()
    args = {
        k: getattr(prior, k).tolist()
        for k in prior.arg_constraints
        if isinstance(getattr(prior, k, None), torch.Tensor)
    }
    return {"pyro": type(prior).__name__, **args}


def prior_from_dict(spec: Mapping[str, Any]) -> Prior | pdist.Distribution:
    """Inverse of :func:`prior_to_dict`."""
    if "pyro" in spec:
        cls = TruncatedNormal if spec["pyro"] == "TruncatedNormal" else getattr(pdist, spec["pyro"])
        args = {k: torch.tensor(v) for k, v in spec.items() if k != "pyro"}
        return cls(**args)
    return Prior.from_spec(spec)


def prior_from_user(spec: Any, what: str) -> Prior | pdist.Distribution:
    """Accept a dict, a :class:`Prior` or a Pyro distribution; ``what`` names it in errors."""
    if isinstance(spec, pdist.Distribution):
        if spec.batch_shape != torch.Size() or spec.event_shape != torch.Size():
            raise ValueError(
                f"prior for {what}: expected a scalar Pyro distribution, got batch shape "
                f"{tuple(spec.batch_shape)} and event shape {tuple(spec.event_shape)}"
            )
        return spec
    try:
        return Prior.from_spec(spec)
    except ValueError as err:
        raise ValueError(f"prior for {what}: {err}") from None


def _bounded(mu: float, sigma: float, lo: float, hi: float) -> Prior:
    if math.isinf(lo) and math.isinf(hi):
        return Prior("Normal", {"mu": mu, "sigma": sigma})
    return Prior("TruncatedNormal", {"mu": mu, "sigma": sigma, "lower": lo, "upper": hi})


# (mu, sigma) of the truncated-normal defaults for common parameter names.
_NAMED = {
    "v": (0.0, 2.0),
    "a": (1.0, 1.0),
    "z": (0.5, 0.2),
    "t": (0.2, 0.5),
    "sv": (0.0, 1.0),
    "sz": (0.0, 0.3),
    "st": (0.0, 0.3),
    "theta": (0.0, 0.5),
    "p_outlier": (0.0, 0.1),
}


def default_prior(name: str, bounds: tuple[float, float], default: float) -> Prior:
    """Safe default prior of a parameter without a formula, within ``bounds``.

    Named parameters get a truncated normal (``_NAMED``: v N(0, 2); a N(1, 1); z N(0.5, 0.2);
    t N(0.2, 0.5); sv N(0, 1); theta N(0, 0.5); ...) cut to ``bounds``; other parameters
    get Uniform(bounds) when both are finite and a truncated N(default, 2) otherwise.

    Examples
    --------
    >>> default_prior("a", (0.0, float("inf")), 1.0).name
    'TruncatedNormal'
    """
    lo, hi = float(bounds[0]), float(bounds[1])
    if name in _NAMED:
        mu, sigma = _NAMED[name]
        mu = min(max(mu, lo), hi)
        return _bounded(mu, sigma, lo, hi)
    if math.isfinite(lo) and math.isfinite(hi):
        return Prior("Uniform", {"lower": lo, "upper": hi})
    return _bounded(float(default), 2.0, lo, hi)


def default_intercept_prior(
    name: str, bounds: tuple[float, float], default: float, link_name: str, link_default: float
) -> Prior:
    """Default prior for ``<name>_Intercept``.

    Identity link: the parameter's own default prior (bounded). Other links: Normal centred on
    the linked default value, sigma 1.5 (gen_logit/logit) or 1 (log).
    """
    if link_name == "identity":
        return default_prior(name, bounds, default)
    return Prior("Normal", {"mu": float(link_default), "sigma": 1.0 if link_name == "log" else 1.5})


def default_slope_prior() -> Prior:
    """Default prior for fixed slopes: Normal(0, 1) on the linear-predictor scale."""
    return Prior("Normal", {"mu": 0.0, "sigma": 1.0})


def default_group_sigma_prior(bounds: tuple[float, float], link_name: str) -> Prior:
    """Default prior for a group term's standard deviation.

    HalfNormal(1) for unbounded identity-linked parameters, HalfNormal(0.5) otherwise.
    """
    unbounded = math.isinf(bounds[0]) and math.isinf(bounds[1])
    return Prior("HalfNormal", {"sigma": 1.0 if unbounded and link_name == "identity" else 0.5})
