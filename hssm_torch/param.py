"""User-facing parameter specification (:class:`Param`) and its resolved form.

A :class:`Param` says how one model parameter is modelled: a fixed value, a single prior,
or a regression formula (with per-term priors, a link and bounds). :func:`resolve_param`
turns it, together with the data and the model's bounds, into a :class:`ResolvedParam`
holding design matrices and concrete priors. Neither class knows about Pyro samplers;
the Pyro model is built from resolved parameters by :mod:`hssm_torch.builder`.

Example
-------
>>> p = Param("v", formula="v ~ 1 + x", prior={"x": {"name": "Normal", "mu": 0, "sigma": 0.5}})
>>> p.to_dict()["formula"]
'v ~ 1 + x'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyro.distributions as pdist

from hssm_torch.formula import ParamDesign, build_design, parse_formula
from hssm_torch.links import Link, default_link, get_link
from hssm_torch.priors import (
    Prior,
    default_group_sigma_prior,
    default_intercept_prior,
    default_prior,
    default_slope_prior,
    prior_from_dict,
    prior_from_user,
    prior_to_dict,
)

__all__ = ["Param", "ResolvedParam", "resolve_param"]

_KEYS = ("name", "formula", "prior", "link", "bounds")


@dataclass
class Param:
    """How one parameter is modelled.

    Parameters
    ----------
    name : str
        A parameter of the model (or ``"p_outlier"``).
    formula : str, optional
        ``"<name> ~ ..."`` regression formula, with group terms ``(x|g)``.
    prior : float, dict, Prior or pyro distribution, optional
        Without formula: a number fixes the parameter; a dict/Prior/distribution is its prior.
        With a formula: a dict mapping term names (``"Intercept"``, ``"x"``,
        ``"1|participant_id"``, ``"1|participant_id_sigma"``) to priors; a group term may
        be given as ``{"name": "Normal", "mu": 0, "sigma": {"name": "HalfNormal", ...}}``
        (HSSM style: the inner dict is the prior of its sigma).
    link : str or Link, optional
        ``identity``, ``log``, ``logit`` or ``gen_logit`` (onto ``bounds``).
    bounds : (float, float), optional
        Overrides the model's bounds for this parameter.
    """

    name: str
    formula: str | None = None
    prior: Any = None
    link: str | Link | None = None
    bounds: tuple[float, float] | None = None

    @classmethod
    def from_user(cls, spec: Param | Mapping[str, Any]) -> Param:
        """Build from a ``Param`` or a dict with keys name, formula, prior, link, bounds."""
        if isinstance(spec, Param):
            return spec
        if not isinstance(spec, Mapping):
            raise TypeError(f"include: expected dicts or Param objects, got {type(spec).__name__}")
        unknown = sorted(set(spec) - set(_KEYS))
        if unknown:
            raise ValueError(f"include: unknown key(s) {unknown}; expected {list(_KEYS)}")
        if "name" not in spec:
            raise ValueError(f"include: every entry needs a 'name', got {dict(spec)}")
        return cls(**{k: spec[k] for k in _KEYS if k in spec})

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (priors serialised with :func:`prior_to_dict`)."""
        return {
            "name": self.name,
            "formula": self.formula,
            "prior": _prior_json(self.prior),
            "link": self.link.to_dict() if isinstance(self.link, Link) else self.link,
            "bounds": list(self.bounds) if self.bounds is not None else None,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Param:
        """Inverse of :meth:`to_dict`."""
        link = d.get("link")
        if isinstance(link, Mapping):
            link = Link(link["name"], link["lower"], link["upper"])
        bounds = tuple(d["bounds"]) if d.get("bounds") is not None else None
        return cls(d["name"], d.get("formula"), _prior_unjson(d.get("prior")), link, bounds)


def _prior_json(prior: Any) -> Any:
    if prior is None or isinstance(prior, (int, float)):
        return prior
    if isinstance(prior, (Prior, pdist.Distribution)):
        return prior_to_dict(prior)
    if isinstance(prior, Mapping) and "name" not in prior and "pyro" not in prior:
        return {k: _prior_json(v) for k, v in prior.items()}
    if isinstance(prior, Mapping):
        return {k: _prior_json(v) if isinstance(v, Mapping) else v for k, v in prior.items()}
    raise TypeError(f"prior: cannot serialise {prior!r}")


def _prior_unjson(prior: Any) -> Any:
    if isinstance(prior, Mapping) and "pyro" in prior:
        return prior_from_dict(prior)
    if isinstance(prior, Mapping) and "name" not in prior:
        return {k: _prior_unjson(v) for k, v in prior.items()}
    return prior


@dataclass
class ResolvedParam:
    """A parameter ready for the Pyro builder.

    ``kind`` is ``"fixed"`` (``value``), ``"scalar"`` (``prior``) or ``"regression"``
    (``design``, ``link``, ``term_priors``: variable name -> prior, including group
    ``_sigma`` priors).
    """

    name: str
    kind: str
    bounds: tuple[float, float]
    value: float | None = None
    prior: Any = None
    link: Link | None = None
    design: ParamDesign | None = None
    term_priors: dict[str, Any] = field(default_factory=dict)
    init: float = 0.0

    def variable_names(self) -> list[str]:
        """Names of the posterior variables this parameter contributes."""
        if self.kind == "scalar":
            return [self.name]
        if self.kind != "regression":
            return []
        names = [t.name for t in self.design.fixed_terms]
        for g in self.design.groups:
            names += [g.name, f"{g.name}_sigma"]
        return names


def _interior(value: float, lo: float, hi: float) -> float:
    """Pull ``value`` inside ``(lo, hi)`` by 5% of the width (or a small margin)."""
    if math.isfinite(lo) and math.isfinite(hi):
        margin = 0.05 * (hi - lo)
        return min(max(value, lo + margin), hi - margin)
    if math.isfinite(lo):
        return max(value, lo + 1e-2)
    if math.isfinite(hi):
        return min(value, hi - 1e-2)
    return value


def _check_scalar_prior(prior: Any, name: str, bounds: tuple[float, float]) -> Any:
    """Truncate a Normal prior to ``bounds``; reject priors reaching outside them."""
    lo, hi = bounds
    if isinstance(prior, Prior):
        if prior.name == "Normal" and (math.isfinite(lo) or math.isfinite(hi)):
            return Prior("TruncatedNormal", {**prior.args, "lower": lo, "upper": hi})
        plo, phi = prior.support_bounds()
    else:
        sup = prior.support
        plo = float(getattr(sup, "lower_bound", -math.inf))
        phi = float(getattr(sup, "upper_bound", math.inf))
    if plo < lo or phi > hi:
        raise ValueError(
            f"prior for {name!r}: its support ({plo}, {phi}) reaches outside the parameter's "
            f"bounds ({lo}, {hi}); use a bounded prior (e.g. TruncatedNormal, Uniform) or a "
            "formula with a bounded link"
        )
    return prior


def resolve_param(
    param: Param,
    data: pd.DataFrame,
    *,
    bounds: tuple[float, float],
    default: float,
    link_setting: str | None,
    init: float | None = None,
) -> ResolvedParam:
    """Resolve a :class:`Param` against the data and the parameter's bounds.

    Parameters
    ----------
    param : Param
        The user's specification.
    data : pandas.DataFrame
        Trial data (formula columns).
    bounds : (float, float)
        Support (analytical likelihoods) or training box (networks); ``param.bounds`` wins.
    default : float
        Typical value, used for default priors and initial values.
    link_setting : str or None
        See :func:`hssm_torch.links.default_link`.
    init : float, optional
        Initial value on the parameter scale (default: ``default``).
    """
    name = param.name
    bounds = tuple(float(b) for b in (param.bounds or bounds))  # type: ignore[assignment]
    if not bounds[0] < bounds[1]:
        raise ValueError(f"bounds for {name!r}: expected lower < upper, got {bounds}")
    init_value = _interior(float(default if init is None else init), *bounds)
    if param.formula is None:
        if param.link is not None:
            raise ValueError(f"include[{name!r}]: a link needs a formula")
        if isinstance(param.prior, (int, float)) and not isinstance(param.prior, bool):
            value = float(param.prior)
            if not bounds[0] <= value <= bounds[1]:
                raise ValueError(f"include[{name!r}]: fixed value {value} is outside {bounds}")
            return ResolvedParam(name, "fixed", bounds, value=value)
        if param.prior is None:
            prior: Any = default_prior(name, bounds, init_value)
        else:
            prior = prior_from_user(param.prior, repr(name))
        prior = _check_scalar_prior(prior, name, bounds)
        return ResolvedParam(name, "scalar", bounds, prior=prior, init=init_value)

    parsed = parse_formula(param.formula, param=name)
    design = build_design(parsed, data)
    link = (
        get_link(param.link, bounds)
        if param.link is not None
        else default_link(bounds, link_setting)
    )
    link_init = link.forward(init_value)
    user = param.prior if param.prior is not None else {}
    if not isinstance(user, Mapping) or "name" in user:
        raise ValueError(
            f"include[{name!r}]: with a formula, prior must map term names to priors "
            f"(e.g. {{'Intercept': {{...}}, 'x': {{...}}}}), got {param.prior!r}"
        )
    known: dict[str, str] = {}
    for t in design.fixed_terms:
        known[t.label] = t.name
    for g in design.groups:
        known[g.label] = g.name
        known[f"{g.label}_sigma"] = f"{g.name}_sigma"
    strip = f"{name}_"
    priors: dict[str, Any] = {}
    for key, spec in user.items():
        label = key[len(strip) :] if key.startswith(strip) and key[len(strip) :] in known else key
        if label not in known:
            raise ValueError(
                f"include[{name!r}]: prior given for unknown term {key!r}; the formula's terms "
                f"are {sorted(known)}"
            )
        target = known[label]
        if isinstance(spec, Mapping) and isinstance(spec.get("sigma"), (Mapping, Prior)):
            # HSSM style group prior: Normal(mu=0, sigma=<hyperprior>)
            if not any(g.name == target for g in design.groups):
                raise ValueError(
                    f"include[{name!r}]: a hyperprior on sigma is only allowed for group terms, "
                    f"not {key!r}"
                )
            if spec.get("name") != "Normal" or float(spec.get("mu", 0.0)) != 0.0:
                raise ValueError(
                    f"include[{name!r}]: group term {key!r} must be Normal(mu=0, sigma=...)"
                )
            priors[f"{target}_sigma"] = prior_from_user(spec["sigma"], f"{name}: {key}_sigma")
            continue
        if any(g.name == target for g in design.groups):
            raise ValueError(
                f"include[{name!r}]: group term {key!r} takes a prior on its sigma: give "
                f"'{label}_sigma' or {{'name': 'Normal', 'mu': 0, 'sigma': {{...}}}}"
            )
        priors[target] = prior_from_user(spec, f"{name}: {key}")
    for t in design.fixed_terms:
        if t.name not in priors:
            priors[t.name] = (
                default_intercept_prior(name, bounds, init_value, link.name, link_init)
                if t.is_intercept
                else default_slope_prior()
            )
    for g in design.groups:
        priors.setdefault(f"{g.name}_sigma", default_group_sigma_prior(bounds, link.name))
    return ResolvedParam(
        name,
        "regression",
        bounds,
        link=link,
        design=design,
        term_priors=priors,
        init=link_init,
    )
