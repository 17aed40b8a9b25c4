"""Batched potential energy of a :class:`~hssm_torch.builder.ModelBuilder`'s posterior.

The sampler works on a flat unconstrained vector per chain. :class:`BatchedPotential` maps
``x`` of shape ``(C, D)`` (``C`` chains, ``D`` unconstrained coordinates) to the potential
energy ``U(x)`` of shape ``(C,)``: minus the log joint density of the constrained values plus
the log absolute Jacobian determinant of ``torch.distributions.biject_to(site.dist.support)``.
This is the same quantity as Pyro's ``potential_fn`` (``pyro.infer.mcmc.util.initialize_model``)
and uses the same layout: sites in sorted-name order, each flattened.

All chains go through one call of the model's likelihood (``builder.theta`` accepts leading
batch dimensions), and since the chains are independent, one backward pass of ``U(x).sum()``
gives every chain's gradient (:meth:`BatchedPotential.value_and_grad`).

Example
-------
>>> import pandas as pd, torch
>>> from hssm_torch import HSSM
>>> from hssm_torch.samplers import BatchedPotential
>>> df = pd.DataFrame({"rt": [0.6, 0.9, 1.2], "response": [1.0, -1.0, 1.0]})
>>> pot = BatchedPotential(HSSM(df, "ddm").builder)
>>> x = pot.initial_point().expand(4, -1)
>>> u, g = pot.value_and_grad(x)
>>> u.shape, g.shape
(torch.Size([4]), torch.Size([4, 4]))
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyro.distributions as pdist
import torch
from torch.distributions import biject_to
from torch.distributions.transforms import ComposeTransform

if TYPE_CHECKING:  # pragma: no cover
    from hssm_torch.builder import ModelBuilder

__all__ = ["BatchedPotential", "FlatSite"]


@dataclass(frozen=True)
class FlatSite:
    """Where one latent site lives in the flat unconstrained vector.

    Attributes
    ----------
    name : str
        Pyro site name.
    shape : tuple of int
        The site's (event) shape.
    start, stop : int
        Slice of the flat vector holding the site's unconstrained values.
    transform : torch.distributions.Transform or None
        Unconstrained -> constrained bijection (``None``: the support is the real line and
        no transform is applied, e.g. a centred group site).
    """

    name: str
    shape: tuple[int, ...]
    start: int
    stop: int
    transform: torch.distributions.Transform | None


def _unvalidated(dist):
    """A shallow copy of ``dist`` (and its base distributions) that skips argument checks.

    The sampler only evaluates values mapped into the support by ``biject_to``; a value
    rounded onto the boundary then gets its log density (possibly ``-inf``, which the
    sampler treats as a divergence) instead of an exception.
    """
    if dist is None:
        return None
    out = copy.copy(dist)
    out._validate_args = False
    if hasattr(out, "base_dist"):
        out.base_dist = _unvalidated(out.base_dist)
    return out


class BatchedPotential:
    """Potential energy ``U(x)`` for ``x`` of shape ``(C, D)``, one likelihood call per call.

    Parameters
    ----------
    builder : ModelBuilder
        The model (data, sites, likelihood) whose posterior is sampled.

    Attributes
    ----------
    sites : list of FlatSite
        The flat layout (sorted site names, as Pyro's ``initialize_model``).
    dim : int
        ``D``, the number of unconstrained coordinates.
    """

    def __init__(self, builder: ModelBuilder) -> None:
        self.builder = builder
        self.dtype, self.device = builder.dtype, builder.device
        by_name = {s.name: s for s in builder.sites}
        self._site_dist = {s.name: _unvalidated(s.dist) for s in builder.sites}
        self.sites: list[FlatSite] = []
        start = 0
        for name in sorted(by_name):
            s = by_name[name]
            size = math.prod(s.shape)
            tr = None
            if s.dist is not None:
                tr = biject_to(s.dist.support)
                if isinstance(tr, ComposeTransform) and not tr.parts:
                    tr = None  # the real line: identity
            self.sites.append(FlatSite(name, tuple(s.shape), start, start + size, tr))
            start += size
        self.dim = start
        # builder.sites order is the order of the model's sample statements: a centred
        # group site's sigma comes before it there, whatever the names sort to
        self._order = [s.name for s in builder.sites]
        self._rt, self._response = builder.obs[:, 0], builder.obs[:, 1]
        self._flat = {f.name: f for f in self.sites}
        self._groups = self._fuse_scalar_sites()
        self._grouped = {n for g in self._groups for n in g[0]}

    def _fuse_scalar_sites(self) -> list[tuple[list[str], torch.Tensor, object, object]]:
        """Scalar sites of one distribution family evaluated as one stacked distribution.

        Fewer, larger ops (and autograd nodes) than one prior and one transform per site;
        each group is checked against its members at a test point, and sites that do not
        stack (or do not match) keep their own evaluation.
        """
        families: dict[tuple[type, type], list[str]] = {}
        for f in self.sites:
            d = self._site_dist[f.name]
            if d is None or f.shape != () or not d.arg_constraints or d.event_shape != ():
                continue
            families.setdefault((type(d), type(d.support)), []).append(f.name)
        groups = []
        for (cls, _), names in families.items():
            if len(names) < 2:
                continue
            try:
                members = [self._site_dist[n] for n in names]
                params = {
                    k: torch.stack([torch.as_tensor(getattr(d, k)) for d in members])
                    for k in members[0].arg_constraints
                }
                fused = cls(**params, validate_args=False)
                tr = biject_to(fused.support)
                u = torch.linspace(-1.3, 0.7, len(names), dtype=self.dtype, device=self.device)
                v = tr(u)
                got = fused.log_prob(v) + tr.log_abs_det_jacobian(u, v)
                want = []
                for k, n in enumerate(names):
                    f = self._flat[n]
                    vk = u[k] if f.transform is None else f.transform(u[k])
                    lp = self._site_dist[n].log_prob(vk)
                    if f.transform is not None:
                        lp = lp + f.transform.log_abs_det_jacobian(u[k], vk)
                    want.append(lp)
                if not torch.allclose(got, torch.stack(want), rtol=1e-12, atol=1e-12):
                    continue
            except (TypeError, ValueError, RuntimeError, AttributeError):
                continue
            cols = torch.tensor([self._flat[n].start for n in names], device=self.device)
            groups.append((names, cols, fused, tr))
        return groups

    # ------------------------------------------------------------------ layout
    def unflatten(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Unconstrained site values ``(C, *shape)`` from flat ``x`` ``(C, D)``."""
        c = x.shape[0]
        return {f.name: x[:, f.start : f.stop].reshape((c,) + f.shape) for f in self.sites}

    def constrain(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Constrained site values ``(C, *shape)`` from flat unconstrained ``x`` ``(C, D)``."""
        out = {}
        for name, u in self.unflatten(x).items():
            tr = self._flat[name].transform
            out[name] = u if tr is None else tr(u)
        return out

    def flatten(self, values: dict[str, torch.Tensor]) -> torch.Tensor:
        """Flat unconstrained ``(C, D)`` from constrained site values ``(C, *shape)``."""
        parts = []
        for f in self.sites:
            v = torch.as_tensor(values[f.name], dtype=self.dtype, device=self.device)
            u = v if f.transform is None else f.transform.inv(v)
            parts.append(u.reshape(u.shape[: u.dim() - len(f.shape)] + (-1,)))
        return torch.cat(parts, dim=-1)

    def initial_point(self) -> torch.Tensor:
        """The builder's initial values as a flat unconstrained vector ``(D,)``."""
        init = self.builder.init_values()
        return self.flatten({k: v.unsqueeze(0) for k, v in init.items()})[0]

    # ------------------------------------------------------------------ energy
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Potential energy ``(C,)`` (minus the log joint in the unconstrained space)."""
        if x.dim() != 2 or x.shape[-1] != self.dim:
            raise ValueError(f"x: expected shape (C, {self.dim}), got {tuple(x.shape)}")
        c = x.shape[0]
        u = self.unflatten(x)
        values: dict[str, torch.Tensor] = {}
        log_joint = torch.zeros(c, dtype=x.dtype, device=x.device)
        for names, cols, dist, tr in self._groups:
            ug = x[:, cols]  # (C, G)
            vg = tr(ug)
            lp = dist.log_prob(vg) + tr.log_abs_det_jacobian(ug, vg)
            log_joint = log_joint + lp.sum(-1)
            for name, v in zip(names, vg.unbind(-1)):
                values[name] = v
        for name in self._order:
            if name in self._grouped:
                continue
            f = self._flat[name]
            dist = self._site_dist[name]
            if dist is None:
                # centred group site: Normal(0, sigma) with sigma the "<name>_sigma" site
                sigma = values[f"{name}_sigma"].unsqueeze(1)
                value = u[name]
                dist = pdist.Normal(
                    torch.zeros_like(value), sigma.expand_as(value), validate_args=False
                )
                lp = dist.log_prob(value)
            else:
                if f.transform is None:
                    value = u[name]
                else:
                    value = f.transform(u[name])
                    ldj = f.transform.log_abs_det_jacobian(u[name], value)
                    log_joint = log_joint + ldj.reshape(c, -1).sum(-1)
                lp = dist.log_prob(value)
            values[name] = value
            log_joint = log_joint + lp.reshape(c, -1).sum(-1)
        b = self.builder
        theta = b.theta(values)
        p = b.p_outlier_value(values)
        if p is None and b.censored is None:
            # what SSMDistribution.log_prob computes then, without building the object
            ll = b.loglik(self._rt, self._response, theta)  # (C, N)
        else:
            ll = b.distribution(theta, p).log_prob(b.obs)  # (C, N)
        log_joint = log_joint + ll.reshape(c, -1).sum(-1)
        return -log_joint

    def value_and_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``U(x)`` ``(C,)`` and its gradient ``(C, D)`` (one backward pass for all chains)."""
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            u = self(x)
            (g,) = torch.autograd.grad(u.sum(), x)
        return u.detach(), g
