"""Run Pyro NUTS / SVI on a :class:`~hssm_torch.builder.ModelBuilder` and build InferenceData.

NUTS chains run one after the other through Pyro's kernel API (``kernel.setup`` then
``kernel.sample``), which lets us record numpyro-style per-draw statistics that
``pyro.infer.MCMC`` does not expose: ``lp``, ``diverging``, ``step_size``, ``n_steps``
(leapfrog steps), ``tree_depth`` (derived from ``n_steps``: depth d holds up to 2**d - 1
steps) and ``acceptance_rate``.

InferenceData is built with ``az.from_dict`` (posterior with Bambi names, sample_stats,
pointwise ``log_likelihood`` named ``"rt,response"`` on ``__obs__``, observed_data).
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import arviz as az
import numpy as np
import pyro
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.infer.autoguide import (
    AutoDelta,
    AutoLowRankMultivariateNormal,
    AutoMultivariateNormal,
    AutoNormal,
    init_to_value,
)
from pyro.infer.mcmc import NUTS
from tqdm.auto import tqdm

if TYPE_CHECKING:  # pragma: no cover
    from hssm_torch.builder import ModelBuilder
    from hssm_torch.model import HSSM

__all__ = [
    "BoundaryWarning",
    "ConvergenceWarning",
    "GUIDES",
    "JitMismatchWarning",
    "build_idata",
    "check_fit",
    "check_nuts_arguments",
    "pointwise_from_idata",
    "run_map",
    "run_nuts",
    "run_svi",
]

logger = logging.getLogger(__name__)

#: Autoguides accepted by ``HSSM.vi(guide=...)``.
GUIDES = {
    "lowrank": AutoLowRankMultivariateNormal,
    "mvn": AutoMultivariateNormal,
    "normal": AutoNormal,
}


class ConvergenceWarning(UserWarning):
    """r_hat above 1.01 or divergent transitions after sampling."""


class BoundaryWarning(UserWarning):
    """Posterior mass of a parameter piles up against one of its bounds."""


class JitMismatchWarning(UserWarning):
    """The JIT-compiled log density differs from the eager one at the chain's last draw.

    The PyTorch JIT freezes Python control flow that depends on tensor values (e.g. a
    likelihood choosing its number of series terms from the data at trace time); use
    ``jit=False`` when this warning appears.
    """


#: Largest difference (nats) tolerated between the JIT and eager log densities.
JIT_TOLERANCE = 1e-3


class _CountingNUTS(NUTS):
    """Pyro NUTS that counts leapfrog steps per iteration."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.n_leapfrog = 0

    def _build_basetree(self, *args, **kwargs):
        self.n_leapfrog += 1
        return super()._build_basetree(*args, **kwargs)


def check_nuts_arguments(*, tune: int, target_accept: float, **counts: int) -> None:
    """Validate NUTS settings: ``counts`` (e.g. chains, draws) integers >= 1, ``tune`` >= 0.

    Raises ``ValueError`` naming the argument and the expected value.

    Example
    -------
    >>> check_nuts_arguments(tune=0, target_accept=0.8, draws=10)
    """
    for name, v in counts.items():
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}: expected an integer >= 1, got {v!r}")
    if not isinstance(tune, int) or tune < 0:
        raise ValueError(f"tune: expected an integer >= 0, got {tune!r}")
    if not 0.0 < target_accept < 1.0:
        raise ValueError(f"target_accept: expected a value in (0, 1), got {target_accept}")


def run_nuts(
    builder: ModelBuilder,
    *,
    chains: int,
    draws: int,
    tune: int,
    target_accept: float = 0.8,
    seed: int | None = None,
    progress: bool = True,
    jit: bool = True,
    max_tree_depth: int = 10,
    init_mass: bool = True,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, float]]:
    """Run ``chains`` NUTS chains sequentially.

    With ``init_mass`` (default) the chains start around the posterior mode (L-BFGS in the
    unconstrained space), dispersed by one Laplace standard deviation, and warm-up starts
    from a diagonal inverse mass matrix equal to the inverse of the Hessian's diagonal at
    the mode (finite differences of gradients) instead of the identity: NUTS then does not
    spend its first adaptation window with tiny steps on badly scaled parameters
    (e.g. ``t`` with posterior sd 0.01 next to group offsets with sd 1).

    Returns
    -------
    samples : dict
        Site name -> array ``(chains, draws, *site_shape)`` (constrained values).
    stats : dict
        ``lp, diverging, step_size, n_steps, tree_depth, acceptance_rate`` -> ``(chains, draws)``.
    timing : dict
        ``sampling_time`` (seconds, all chains, warm-up included) and ``n_leapfrog_total``
        (gradient evaluations, warm-up included).
    """
    site_names = [s.name for s in builder.sites]
    samples: dict[str, list[np.ndarray]] = {n: [] for n in site_names}
    stats: dict[str, list[np.ndarray]] = {
        k: [] for k in ("lp", "diverging", "step_size", "n_steps", "tree_depth", "acceptance_rate")
    }
    t0 = time.perf_counter()
    n_leapfrog_total = 0
    jit_gap = 0.0
    laplace = _laplace(builder) if init_mass else None
    for c in range(chains):
        chain_seed = None if seed is None else int(seed) + c
        if chain_seed is not None:
            pyro.set_rng_seed(chain_seed)
        gen = torch.Generator().manual_seed(chain_seed if chain_seed is not None else c)
        if laplace is not None:
            init = laplace.start(gen if chains > 1 else None)
        else:
            init = builder.init_values(jitter=0.1 if chains > 1 else 0.0, generator=gen)
        kernel = _CountingNUTS(
            builder.model,
            target_accept_prob=target_accept,
            max_tree_depth=max_tree_depth,
            jit_compile=jit,
            ignore_jit_warnings=True,
            init_strategy=init_to_value(values=init),
        )
        pyro.clear_param_store()
        with warnings.catch_warnings():
            # the JIT trace warns about Python control flow on tensor values (data constant)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            # Pyro's jit_compile uses torch.jit.trace, deprecated in torch >= 2.9 but working
            warnings.filterwarnings(
                "ignore", message=".*torch.jit.trace.* is deprecated", category=DeprecationWarning
            )
            kernel.setup(tune)
            params = kernel.initial_params
            if laplace is not None and tune > 0:
                laplace.set_mass(kernel, params)
            chain_draws = {n: [] for n in site_names}
            st = {k: [] for k in stats}
            bar = tqdm(
                total=tune + draws,
                disable=not progress,
                desc=f"chain {c + 1}/{chains}",
                leave=False,
            )
            for i in range(tune + draws):
                n_div = len(kernel._divergences)
                m_prev, t_prev = kernel._mean_accept_prob, kernel._t
                kernel.n_leapfrog = 0
                params = kernel.sample(params)
                n_leapfrog_total += kernel.n_leapfrog
                bar.update(1)
                if i < tune:
                    continue
                n = kernel._t - kernel._warmup_steps
                acc = (
                    kernel._mean_accept_prob * n - m_prev * (n - 1)
                    if n > 1
                    else (kernel._mean_accept_prob)
                )
                del t_prev
                for name in site_names:
                    val = (
                        kernel.transforms[name].inv(params[name])
                        if name in kernel.transforms
                        else params[name]
                    )
                    chain_draws[name].append(val.detach().cpu().numpy())
                st["lp"].append(-float(kernel._potential_energy_last))
                st["diverging"].append(len(kernel._divergences) > n_div)
                st["step_size"].append(float(kernel.step_size))
                st["n_steps"].append(kernel.n_leapfrog)
                st["tree_depth"].append(int(kernel.n_leapfrog).bit_length())
                st["acceptance_rate"].append(float(acc))
            bar.close()
            if jit:
                jit_gap = max(jit_gap, _jit_gap(builder, kernel, params))
            kernel.cleanup()
        for name in site_names:
            samples[name].append(np.stack(chain_draws[name]))
        for k in stats:
            stats[k].append(np.asarray(st[k]))
    timing = {
        "sampling_time": time.perf_counter() - t0,
        "n_leapfrog_total": n_leapfrog_total,
        "jit_gap": jit_gap,
    }
    if jit_gap > JIT_TOLERANCE:
        warnings.warn(
            f"the JIT-compiled log density differs from the eager one by {jit_gap:.3g} nats at "
            "the last draw: the likelihood has value-dependent control flow that the JIT froze; "
            "rerun with jit=False",
            JitMismatchWarning,
            stacklevel=3,
        )
    return (
        {k: np.stack(v) for k, v in samples.items()},
        {k: np.stack(v) for k, v in stats.items()},
        timing,
    )


class _Laplace:
    """Posterior mode and diagonal curvature in Pyro's unconstrained space."""

    def __init__(self, names, shapes, mode, inv_mass, transforms):
        self.names, self.shapes, self.mode = names, shapes, mode
        self.inv_mass, self.transforms = inv_mass, transforms

    def _split(self, x):
        out, i = {}, 0
        for n, shp in zip(self.names, self.shapes):
            k = int(np.prod(shp)) if shp else 1
            out[n] = x[i : i + k].reshape(shp)
            i += k
        return out

    def start(self, gen):
        x = self.mode
        if gen is not None:
            noise = torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device)
            x = x + self.inv_mass.sqrt() * noise
        u = self._split(x)
        return {n: self.transforms[n].inv(v) if n in self.transforms else v for n, v in u.items()}

    def set_mass(self, kernel, params):
        adapter = kernel._adapter
        key = tuple(sorted(params))
        shapes = adapter.mass_matrix_adapter.mass_matrix_size
        if list(shapes) != [key] or key != tuple(self.names):
            return  # an unexpected layout: keep Pyro's identity start
        adapter.mass_matrix_adapter.inverse_mass_matrix = {key: self.inv_mass.clone()}
        adapter.reset_step_size_adaptation(params)


def _laplace(builder: ModelBuilder) -> _Laplace | None:
    from pyro.infer.mcmc.util import initialize_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        init, potential, transforms, _ = initialize_model(
            builder.model,
            jit_compile=False,
            init_strategy=init_to_value(values=builder.init_values()),
        )
    names = sorted(init)
    shapes = [tuple(init[n].shape) for n in names]
    x0 = torch.cat([init[n].detach().reshape(-1) for n in names])
    lp = _Laplace(names, shapes, x0, torch.ones_like(x0), transforms)

    def f(x):
        return potential(lp._split(x))

    x = x0.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([x], max_iter=200, line_search_fn="strong_wolfe", tolerance_grad=1e-6)

    def closure():
        opt.zero_grad()
        val = f(x)
        val.backward()
        return val

    try:
        opt.step(closure)
    except RuntimeError as err:  # pragma: no cover - numerical failure: keep Pyro's defaults
        logger.info("mode search failed (%s); NUTS starts from the initial values", err)
        return None
    mode = x.detach()
    if not bool(torch.isfinite(f(mode))) or float(f(mode)) > float(f(x0)):
        return None

    def grad(z):
        z = z.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(f(z), z)
        return g

    h = 1e-4
    diag = torch.empty_like(mode)
    for i in range(mode.numel()):
        e = torch.zeros_like(mode)
        e[i] = h
        diag[i] = (grad(mode + e)[i] - grad(mode - e)[i]) / (2 * h)
    inv = torch.where(torch.isfinite(diag) & (diag > 0), 1.0 / diag, torch.ones_like(diag))
    lp.mode, lp.inv_mass = mode, inv.clamp(1e-6, 1e2)
    return lp


def _jit_gap(builder: ModelBuilder, kernel, params) -> float:
    """|JIT potential - eager potential| at ``params`` (unconstrained)."""
    from pyro.infer.mcmc.util import initialize_model

    _, eager, _, _ = initialize_model(
        builder.model, jit_compile=False, init_strategy=init_to_value(values=builder.init_values())
    )
    return float((kernel.potential_fn(params) - eager(params)).detach().abs())


def _make_guide(builder: ModelBuilder, guide: str):
    if guide not in GUIDES:
        raise ValueError(f"guide: expected one of {sorted(GUIDES)}, got {guide!r}")
    init = init_to_value(values=builder.init_values())
    return GUIDES[guide](builder.model, init_loc_fn=init)


def _fit_guide(builder, guide_obj, steps, lr, seed, progress, num_particles):
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps: expected an integer >= 1, got {steps!r}")
    if not lr > 0:
        raise ValueError(f"lr: expected > 0, got {lr!r}")
    if seed is not None:
        pyro.set_rng_seed(int(seed))
    pyro.clear_param_store()
    svi = SVI(
        builder.model,
        guide_obj,
        pyro.optim.Adam({"lr": lr}),
        Trace_ELBO(num_particles=num_particles),
    )
    losses = []
    bar = tqdm(range(steps), disable=not progress, desc="SVI", leave=False)
    for i in bar:
        losses.append(float(svi.step()))
        if progress and i % 100 == 0:
            bar.set_postfix(loss=f"{losses[-1]:.1f}")
    return losses


def run_svi(
    builder: ModelBuilder,
    *,
    guide: str = "normal",
    steps: int = 2000,
    lr: float = 0.01,
    draws: int = 1000,
    seed: int | None = None,
    progress: bool = True,
    num_particles: int = 1,
) -> tuple[dict[str, np.ndarray], list[float]]:
    """Fit an autoguide with SVI and draw ``draws`` samples from it (one chain)."""
    if not isinstance(draws, int) or draws < 1:
        raise ValueError(f"draws: expected an integer >= 1, got {draws!r}")
    guide_obj = _make_guide(builder, guide)
    losses = _fit_guide(builder, guide_obj, steps, lr, seed, progress, num_particles)
    out: dict[str, list[np.ndarray]] = {s.name: [] for s in builder.sites}
    with torch.no_grad():
        for _ in range(draws):
            values = guide_obj()
            for name in out:
                out[name].append(values[name].detach().cpu().numpy())
    return {k: np.stack(v)[None] for k, v in out.items()}, losses


def run_map(model: HSSM, *, steps: int, lr: float, seed: int | None, progress: bool):
    """MAP estimate with an ``AutoDelta`` guide; values by posterior variable name."""
    builder = model.builder
    guide_obj = AutoDelta(builder.model, init_loc_fn=init_to_value(values=builder.init_values()))
    _fit_guide(builder, guide_obj, steps, lr, seed, progress, 1)
    with torch.no_grad():
        values = guide_obj()
        values = {k: v.unsqueeze(0) for k, v in values.items()}
    post = _posterior_arrays(model, values)
    return {k: v[0] for k, v in post.items()}


def _posterior_arrays(model: HSSM, values: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Posterior variables (Bambi names) from flat site values ``(S, ...)``."""
    builder = model.builder
    effects = builder.group_effects(values)
    out = {}
    for name in model.var_names:
        v = effects[name] if name in effects else values[name]
        out[name] = v.detach().cpu().numpy()
    return out


def _dims_and_coords(model: HSSM) -> tuple[dict[str, list[str]], dict[str, Any]]:
    dims: dict[str, list[str]] = {}
    coords: dict[str, Any] = {"__obs__": np.arange(model.n_obs)}
    for p in [*model.params, *([model.p_outlier] if model.p_outlier else [])]:
        if p.kind != "regression":
            continue
        for t in p.design.fixed_terms:
            if t.dim is not None:
                dims[t.name] = [t.dim]
                coords[t.dim] = list(t.columns)
        for g in p.design.groups:
            coords[g.factor_dim] = list(g.levels)
            if g.expr_dim is None:
                dims[g.name] = [g.factor_dim]
            else:
                coords[g.expr_dim] = list(g.columns)
                dims[g.name] = [g.factor_dim, g.expr_dim]
                dims[f"{g.name}_sigma"] = [g.expr_dim]
    dims["rt,response"] = ["__obs__"]
    return dims, coords


def build_idata(
    model: HSSM,
    samples: Mapping[str, np.ndarray],
    stats: Mapping[str, np.ndarray] | None,
    *,
    log_likelihood: bool = True,
):
    """InferenceData from site samples ``(chains, draws, ...)`` (and NUTS stats).

    Returns the InferenceData and the near-bound fractions (see
    :meth:`ModelBuilder.pointwise_log_likelihood`).
    """
    builder = model.builder
    first = next(iter(samples.values())) if samples else np.zeros((1, 1))
    n_chains, n_draws = first.shape[:2]
    flat = {
        k: torch.as_tensor(
            v.reshape((n_chains * n_draws,) + v.shape[2:]),
            dtype=builder.dtype,
            device=builder.device,
        )
        for k, v in samples.items()
    }
    post = _posterior_arrays(model, flat)
    posterior = {k: v.reshape((n_chains, n_draws) + v.shape[1:]) for k, v in post.items()}
    dims, coords = _dims_and_coords(model)
    ll, near = builder.pointwise_log_likelihood(flat)
    groups: dict[str, Any] = {
        "posterior": posterior,
        "observed_data": {"rt,response": builder.obs.cpu().numpy()},
    }
    if log_likelihood:
        groups["log_likelihood"] = {"rt,response": ll.cpu().numpy().reshape(n_chains, n_draws, -1)}
    if stats is not None:
        groups["sample_stats"] = dict(stats)
    dims_obs = dict(dims)
    dims_obs["rt,response"] = ["__obs__", "rt,response_dim"]
    coords["rt,response_dim"] = ["rt", "response"]
    idata = az.from_dict(
        posterior=groups["posterior"],
        sample_stats=groups.get("sample_stats"),
        log_likelihood=groups.get("log_likelihood"),
        coords=coords,
        dims=dims,
    )
    obs = az.from_dict(observed_data=groups["observed_data"], coords=coords, dims=dims_obs)
    idata.extend(obs)
    return idata, near


def check_fit(model: HSSM, idata, near: Mapping[str, tuple[float, float]]) -> None:
    """Warn about r_hat > 1.01, divergences, and posterior mass at a parameter's bounds."""
    n_chains = idata.posterior.sizes["chain"]
    if n_chains > 1 and idata.posterior.sizes["draw"] >= 4:
        rhat = az.rhat(idata, var_names=model.var_names)
        worst = {k: float(np.nanmax(v.values)) for k, v in rhat.data_vars.items()}
        bad = {k: round(v, 3) for k, v in worst.items() if v > 1.01}
        if bad:
            warnings.warn(
                f"r_hat > 1.01 for {bad}; run longer chains or check the model",
                ConvergenceWarning,
                stacklevel=3,
            )
    if "sample_stats" in idata.groups():
        n_div = int(idata.sample_stats["diverging"].sum())
        if n_div:
            warnings.warn(
                f"{n_div} divergent transition(s) after tuning; raise target_accept or "
                "reparameterise",
                ConvergenceWarning,
                stacklevel=3,
            )
    for name, (lo_frac, hi_frac) in near.items():
        for side, frac in (("lower", lo_frac), ("upper", hi_frac)):
            if frac > 0.05:
                lo, hi = next(p.bounds for p in model.params if p.name == name)
                warnings.warn(
                    f"parameter {name!r}: {100 * frac:.0f}% of the posterior trial values lie "
                    f"within 1% of its {side} bound (bounds [{lo}, {hi}]); the bound may be "
                    "shaping the estimate",
                    BoundaryWarning,
                    stacklevel=3,
                )


def _sites_from_posterior(model: HSSM, idata) -> dict[str, torch.Tensor]:
    """Invert the posterior (Bambi names) back to flat site values ``(S, ...)``."""
    builder = model.builder
    post = idata.posterior
    n = post.sizes["chain"] * post.sizes["draw"]

    def flat(name):
        arr = post[name].values
        return torch.as_tensor(
            arr.reshape((n,) + arr.shape[2:]), dtype=builder.dtype, device=builder.device
        )

    values = {}
    group_names = {
        g.name
        for p in [*model.params, *([model.p_outlier] if model.p_outlier else [])]
        if p.kind == "regression"
        for g in p.design.groups
    }
    for s in builder.sites:
        if s.name.endswith("_offset") and s.name[: -len("_offset")] in group_names:
            g = s.name[: -len("_offset")]
            eff, sigma = flat(g), flat(f"{g}_sigma")
            sigma = sigma.unsqueeze(-1) if eff.dim() == 2 else sigma.unsqueeze(-2)
            values[s.name] = eff / sigma
        else:
            values[s.name] = flat(s.name)
    return values


def pointwise_from_idata(model: HSSM, idata):
    """Recompute the pointwise log-likelihood of ``model``'s data under ``idata``'s posterior."""
    import xarray as xr

    values = _sites_from_posterior(model, idata)
    ll, _ = model.builder.pointwise_log_likelihood(values)
    post = idata.posterior
    arr = ll.cpu().numpy().reshape(post.sizes["chain"], post.sizes["draw"], -1)
    return xr.DataArray(
        arr,
        dims=("chain", "draw", "__obs__"),
        coords={
            "chain": post.chain.values,
            "draw": post.draw.values,
            "__obs__": np.arange(arr.shape[-1]),
        },
        name="rt,response",
    )
