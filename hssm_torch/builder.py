"""Build the Pyro model from resolved parameters (no parsing happens here).

:class:`ModelBuilder` turns :class:`~hssm_torch.param.ResolvedParam` objects into

* Pyro sample sites (priors -> coefficients, group offsets and sigmas),
* the per-trial parameter matrix ``theta`` of shape ``(..., N, P)`` (registry order),
  computed with matrix products and integer group indexing (no loop over trials or groups),
* one :class:`~hssm_torch.distribution.SSMDistribution` observation site inside
  ``pyro.plate("__obs__", N)``, i.e. one vectorized likelihood call per evaluation.

The same ``theta`` computation is reused after sampling, vectorized over draws, for the
pointwise log-likelihood and deterministic group effects.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyro
import pyro.distributions as pdist
import torch

from hssm_torch.distribution import SSMDistribution
from hssm_torch.param import ResolvedParam
from hssm_torch.priors import Prior

__all__ = ["EncodedData", "ModelBuilder", "NEW_LEVELS_SUFFIX", "Site"]

#: ``values[g.name + NEW_LEVELS_SUFFIX]``: effects ``(S, L_new[, m])`` of group levels unseen
#: when fitting (appended after the fitted levels by :meth:`ModelBuilder.group_effects`).
NEW_LEVELS_SUFFIX = ":new_levels"


@dataclass
class EncodedData:
    """Covariates of a new data set encoded with the fitted formulas' ModelSpecs.

    Attributes
    ----------
    tensors : dict
        Per parameter name, ``{"X": (N, K), "<group>:codes": (N,), "<group>:Z": (N, m)}``,
        the layout :meth:`ModelBuilder.theta` takes as ``tensors`` (parameters without a
        formula get an empty ``(N, 0)`` ``X``, which gives the number of rows).
    designs : dict
        Per regression parameter name, the encoded :class:`~hssm_torch.formula.ParamDesign`.
    new_levels : dict
        Per group variable (e.g. ``"v_1|participant_id"``), the levels not seen when fitting
        (codes ``len(levels) + j``); only groups with new levels are listed.
    n_obs : int
    """

    tensors: dict[str, dict[str, torch.Tensor]]
    designs: dict[str, Any]
    new_levels: dict[str, tuple[str, ...]]
    n_obs: int


@dataclass
class Site:
    """One latent Pyro sample site."""

    name: str
    dist: pdist.Distribution
    shape: tuple[int, ...]
    init: torch.Tensor


def _to_pyro(prior: Any, dtype: torch.dtype, device) -> pdist.Distribution:
    if isinstance(prior, Prior):
        return prior.to_pyro(dtype, device)
    return prior


class ModelBuilder:
    """Pyro model of an SSM regression.

    Parameters
    ----------
    params : list of ResolvedParam
        The model's parameters in registry order.
    p_outlier : ResolvedParam or None
        Lapse probability (``None``: no lapse mixture).
    loglik : callable
        ``(rt, response, theta) -> log p`` over batched tensors.
    model_name : str
        Registry name (for simulation).
    choices : tuple of int
    rt, response : torch.Tensor
        Observed data, shape ``(N,)``.
    lapse : pyro distribution or None
        Lapse density over rt.
    noncentered : bool
        Group terms as ``offset * sigma`` (True) or ``Normal(0, sigma)`` (False).
    """

    def __init__(
        self,
        params: list[ResolvedParam],
        p_outlier: ResolvedParam | None,
        loglik: Callable,
        *,
        model_name: str,
        choices: tuple[int, ...],
        rt: torch.Tensor,
        response: torch.Tensor,
        lapse: pdist.Distribution | None = None,
        noncentered: bool = True,
        initval: Mapping[str, Any] | None = None,
        censored: Any = None,
    ) -> None:
        self.params = params
        self.censored = censored
        self.p_outlier = p_outlier
        self.loglik = loglik
        self.model_name = model_name
        self.choices = choices
        self.dtype, self.device = rt.dtype, rt.device
        self.obs = torch.stack([rt, response], dim=-1)
        self.n_obs = int(rt.shape[0])
        self.lapse = lapse
        self.noncentered = noncentered
        self.sites: list[Site] = []
        self._tensors: dict[str, dict[str, torch.Tensor]] = {}
        for p in [*params, *([p_outlier] if p_outlier is not None else [])]:
            self._add_param(p)
        initval = dict(initval or {})
        names = {s.name for s in self.sites}
        unknown = sorted(set(initval) - names)
        if unknown:
            raise ValueError(
                f"initval: unknown variable(s) {unknown}; variables are {sorted(names)}"
            )
        for s in self.sites:
            if s.name in initval:
                s.init = torch.as_tensor(initval[s.name], dtype=self.dtype, device=self.device)
                s.init = s.init.expand(s.shape).clone()

    # ------------------------------------------------------------------ construction
    def _tensor(self, x) -> torch.Tensor:
        if isinstance(x, np.ndarray):
            x = np.array(x, dtype=np.float64)  # writable copy (formulaic arrays are read-only)
        return torch.as_tensor(x, dtype=self.dtype, device=self.device)

    def _add_param(self, p: ResolvedParam) -> None:
        if p.kind == "fixed":
            return
        if p.kind == "scalar":
            d = _to_pyro(p.prior, self.dtype, self.device)
            self.sites.append(Site(p.name, d, (), self._tensor(p.init)))
            return
        design = p.design
        t = {"X": self._tensor(design.X)}
        self._tensors[p.name] = t
        first = True
        for term in design.fixed_terms:
            k = len(term.columns)
            d = _to_pyro(p.term_priors[term.name], self.dtype, self.device)
            shape: tuple[int, ...] = () if k == 1 else (k,)
            if k > 1:
                d = d.expand((k,)).to_event(1)
            start = p.init if (term.is_intercept or (first and not design.has_intercept)) else 0.0
            self.sites.append(Site(term.name, d, shape, torch.full(shape, start, dtype=self.dtype)))
            first = False
        for g in design.groups:
            m, n_levels = len(g.columns), len(g.levels)
            t[g.name + ":codes"] = torch.tensor(np.asarray(g.codes), device=self.device)
            t[g.name + ":Z"] = self._tensor(g.Z)
            sd = _to_pyro(p.term_priors[f"{g.name}_sigma"], self.dtype, self.device)
            sshape: tuple[int, ...] = () if m == 1 else (m,)
            if m > 1:
                sd = sd.expand((m,)).to_event(1)
            self.sites.append(
                Site(f"{g.name}_sigma", sd, sshape, torch.full(sshape, 0.3, dtype=self.dtype))
            )
            gshape = (n_levels,) if m == 1 else (n_levels, m)
            zero = torch.zeros(gshape, dtype=self.dtype)
            if self.noncentered:
                off = pdist.Normal(self._tensor(0.0), self._tensor(1.0)).expand(gshape)
                self.sites.append(Site(f"{g.name}_offset", off.to_event(len(gshape)), gshape, zero))
            else:
                # centred: the site's distribution depends on sigma; built in sample_sites
                self.sites.append(Site(g.name, None, gshape, zero))  # type: ignore[arg-type]

    # ------------------------------------------------------------------ model pieces
    def sample_sites(self) -> dict[str, torch.Tensor]:
        """Run the prior sample statements; returns the sampled values by site name."""
        values: dict[str, torch.Tensor] = {}
        for s in self.sites:
            if s.dist is None:
                sigma = values[f"{s.name}_sigma"]
                d = pdist.Normal(torch.zeros_like(s.init), sigma.expand(s.shape))
                values[s.name] = pyro.sample(s.name, d.to_event(len(s.shape)))
            else:
                values[s.name] = pyro.sample(s.name, s.dist)
        return values

    def group_effects(self, values: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Group-specific effects ``<name>`` (``offset * sigma`` when non-centred)."""
        out = {}
        for p in self._regressions():
            for g in p.design.groups:
                if self.noncentered:
                    sigma = values[f"{g.name}_sigma"]
                    off = values[f"{g.name}_offset"]
                    if len(g.columns) == 1:
                        out[g.name] = off * sigma.unsqueeze(-1)
                    else:
                        out[g.name] = off * sigma.unsqueeze(-2)
                else:
                    out[g.name] = values[g.name]
                extra = values.get(g.name + NEW_LEVELS_SUFFIX)
                if extra is not None:
                    level_dim = -1 if len(g.columns) == 1 else -2
                    out[g.name] = torch.cat([out[g.name], extra.to(out[g.name])], dim=level_dim)
        return out

    def _regressions(self) -> list[ResolvedParam]:
        ps = [*self.params, *([self.p_outlier] if self.p_outlier is not None else [])]
        return [p for p in ps if p.kind == "regression"]

    def _column(
        self,
        p: ResolvedParam,
        values: Mapping[str, torch.Tensor],
        effects: Mapping[str, torch.Tensor],
        batch: torch.Size,
        tensors: Mapping[str, torch.Tensor] | None,
    ) -> torch.Tensor:
        n = self.n_obs if tensors is None else tensors["X"].shape[0]
        if p.kind == "fixed":
            return torch.full(batch + (n,), p.value, dtype=self.dtype, device=self.device)
        if p.kind == "scalar":
            return values[p.name].unsqueeze(-1).expand(batch + (n,))
        t = tensors if tensors is not None else self._tensors[p.name]
        coefs = [
            values[term.name].unsqueeze(-1) if len(term.columns) == 1 else values[term.name]
            for term in p.design.fixed_terms
        ]
        beta = torch.cat(coefs, dim=-1)  # (..., K)
        eta = beta @ t["X"].transpose(0, 1)  # (..., N)
        for g in p.design.groups:
            b = effects[g.name]
            codes, Z = t[g.name + ":codes"], t[g.name + ":Z"]
            if len(g.columns) == 1:
                eta = eta + b[..., codes] * Z[:, 0]
            else:
                eta = eta + (b[..., codes, :] * Z).sum(-1)
        return p.link.inverse(eta)

    def _batch(self, values: Mapping[str, torch.Tensor]) -> torch.Size:
        for s in self.sites:
            v = values[s.name]
            return v.shape[: v.dim() - len(s.shape)]
        return torch.Size()

    def theta(
        self,
        values: Mapping[str, torch.Tensor],
        tensors: Mapping[str, Mapping[str, torch.Tensor]] | None = None,
    ) -> torch.Tensor:
        """Per-trial parameters ``(..., N, P)`` from site values with leading batch dims."""
        effects = self.group_effects(values)
        batch = self._batch(values)
        cols = [
            self._column(p, values, effects, batch, None if tensors is None else tensors[p.name])
            for p in self.params
        ]
        return torch.stack(cols, dim=-1)

    def p_outlier_value(
        self, values: Mapping[str, torch.Tensor], tensors=None
    ) -> torch.Tensor | None:
        """Lapse probability ``(..., N)`` or ``None``."""
        if self.p_outlier is None:
            return None
        effects = self.group_effects(values)
        t = None if tensors is None else tensors[self.p_outlier.name]
        return self._column(self.p_outlier, values, effects, self._batch(values), t)

    def distribution(self, theta: torch.Tensor, p_outlier: torch.Tensor | None) -> SSMDistribution:
        if self.censored is not None:
            from hssm_torch.censoring import CensoredSSMDistribution

            return CensoredSSMDistribution(
                theta,
                self.censored,
                model=self.model_name,
                choices=self.choices,
                p_outlier=p_outlier,
                lapse=self.lapse,
            )
        return SSMDistribution(
            theta,
            self.loglik,
            model=self.model_name,
            choices=self.choices,
            p_outlier=p_outlier,
            lapse=self.lapse,
        )

    def model(self) -> None:
        """The Pyro model (no arguments: the data are held by the builder)."""
        values = self.sample_sites()
        theta = self.theta(values)
        p = self.p_outlier_value(values)
        with pyro.plate("__obs__", self.n_obs):
            pyro.sample("rt,response", self.distribution(theta, p), obs=self.obs)

    # ------------------------------------------------------------------ new data, priors
    def encode(self, data: Any, allow_new_levels: bool = True) -> EncodedData:
        """Encode the covariates of ``data`` like the training data (see
        :meth:`hssm_torch.formula.ParamDesign.encode`).

        Example
        -------
        >>> enc = model.builder.encode(new_df)                      # doctest: +SKIP
        >>> theta = model.builder.theta(values, enc.tensors)         # doctest: +SKIP
        """
        tensors: dict[str, dict[str, torch.Tensor]] = {}
        designs: dict[str, Any] = {}
        new_levels: dict[str, tuple[str, ...]] = {}
        n_obs = len(data)
        for p in self._regressions():
            d = p.design.encode(data, allow_new_levels=allow_new_levels)
            designs[p.name] = d
            t = {"X": self._tensor(d.X)}
            for g in d.groups:
                t[g.name + ":codes"] = torch.tensor(np.asarray(g.codes), device=self.device)
                t[g.name + ":Z"] = self._tensor(g.Z)
                if g.new_levels:
                    new_levels[g.name] = g.new_levels
            tensors[p.name] = t
        for p in [*self.params, *([self.p_outlier] if self.p_outlier is not None else [])]:
            if p.kind != "regression":  # no covariates; "X" (N, 0) carries the row count
                empty = torch.zeros((n_obs, 0), dtype=self.dtype, device=self.device)
                tensors[p.name] = {"X": empty}
        return EncodedData(tensors, designs, new_levels, n_obs)

    def new_level_effects(
        self,
        values: Mapping[str, torch.Tensor],
        encoded: EncodedData,
        generator: torch.Generator,
    ) -> dict[str, torch.Tensor]:
        """Effects of unseen group levels drawn from the group distribution, per draw.

        For each group variable with new levels, ``effect = Normal(0, 1) * sigma`` with the
        draw's ``<group>_sigma`` (one standard deviation per expression column: the model's
        group terms are uncorrelated), shape ``(S, L_new)`` or ``(S, L_new, m)``. Normals
        come from ``generator`` (a CPU generator: the same draws on every device) in model
        order. Returns ``{<group> + NEW_LEVELS_SUFFIX: effects}`` to merge into ``values``.
        """
        out = {}
        for p in self._regressions():
            for g in p.design.groups:
                lv = encoded.new_levels.get(g.name)
                if not lv:
                    continue
                sigma = values[f"{g.name}_sigma"]
                m = len(g.columns)
                batch = tuple(sigma.shape) if m == 1 else tuple(sigma.shape[:-1])
                shape = (*batch, len(lv)) if m == 1 else (*batch, len(lv), m)
                eps = torch.randn(shape, generator=generator, dtype=self.dtype).to(sigma.device)
                scale = sigma.unsqueeze(-1) if m == 1 else sigma.unsqueeze(-2)
                out[g.name + NEW_LEVELS_SUFFIX] = eps * scale
        return out

    @torch.no_grad()
    def sample_prior(self, n_draws: int, seed: int) -> dict[str, torch.Tensor]:
        """``n_draws`` joint draws of every latent site from the priors, ``(S, ...)`` each.

        Sites are drawn in model order (group sigmas before their offsets or centred
        effects) from torch's generator seeded with ``seed`` inside ``fork_rng``, so the
        global random state is left as it was.
        """
        devices = [self.device] if self.device.type == "cuda" else []
        out: dict[str, torch.Tensor] = {}
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            for s in self.sites:
                if s.dist is None:
                    sigma = out[f"{s.name}_sigma"]
                    scale = sigma.unsqueeze(-1) if sigma.dim() == 1 else sigma.unsqueeze(-2)
                    z = torch.randn((n_draws, *s.shape), dtype=self.dtype, device=self.device)
                    out[s.name] = z * scale
                else:
                    out[s.name] = s.dist.sample((n_draws,)).to(dtype=self.dtype)
        return out

    # ------------------------------------------------------------------ helpers
    def init_values(self, jitter: float = 0.0, generator: torch.Generator | None = None):
        """Initial values by site; ``jitter`` > 0 perturbs them in unconstrained space."""
        out = {}
        for s in self.sites:
            v = s.init.to(self.device)
            if jitter > 0 and s.dist is not None:
                tr = torch.distributions.biject_to(s.dist.support)
                u = tr.inv(v)
                noise = torch.randn(u.shape, generator=generator, dtype=u.dtype)
                v = tr(u + jitter * noise.to(u.device))
            elif jitter > 0:
                noise = torch.randn(v.shape, generator=generator, dtype=v.dtype)
                v = v + 0.1 * jitter * noise.to(v.device)
            out[s.name] = v
        return out

    @torch.no_grad()
    def pointwise_log_likelihood(
        self, values: Mapping[str, torch.Tensor], chunk: int = 64
    ) -> tuple[torch.Tensor, dict[str, tuple[float, float]]]:
        """Pointwise log-likelihood ``(S, N)`` for draws ``values[name]: (S, ...)``.

        Also returns, per parameter with finite bounds, the fraction of (draw, trial)
        values within 1% of the bound width of each bound, ``(near_lower, near_upper)``.
        """
        n_draws = next(iter(values.values())).shape[0] if values else 1
        out = []
        near = {p.name: [0.0, 0.0] for p in self.params}
        for start in range(0, n_draws, chunk):
            sub = {k: v[start : start + chunk] for k, v in values.items()}
            theta = self.theta(sub) if values else self.theta({}).unsqueeze(0)
            p = self.p_outlier_value(sub)
            out.append(self.distribution(theta, p).log_prob(self.obs))
            for j, par in enumerate(self.params):
                lo, hi = par.bounds
                if math.isfinite(lo) and math.isfinite(hi):
                    col = theta[..., j]
                    w = 0.01 * (hi - lo)
                    near[par.name][0] += float((col < lo + w).sum())
                    near[par.name][1] += float((col > hi - w).sum())
        total = n_draws * self.n_obs
        return torch.cat(out, 0), {k: (a / total, b / total) for k, (a, b) in near.items()}
