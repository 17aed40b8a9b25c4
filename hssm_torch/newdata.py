"""New (held-out) data for a fitted :class:`~hssm_torch.HSSM`: encoding, unseen group levels.

:func:`prepare_new_data` encodes a data frame with the ModelSpecs kept from fitting (same
categorical levels, contrasts, stateful transforms; an unseen level of a fixed-effect
categorical is a ``ValueError`` naming the column and level), reads the model's deadline
column when the model has one, and, when observations are needed (log-likelihood), checks
``rt`` / ``response`` and binds the censored likelihood (missing RTs, deadlines) to the new
trials as the model does for its own data.

:func:`with_new_level_effects` adds, per posterior (or prior) draw, the effects of group
levels never seen when fitting, drawn from the fitted group distribution
``Normal(0, <group>_sigma)`` of that draw, for every random-effects term (each expression
column has its own sigma: the model's group terms are uncorrelated). Known levels keep their
fitted effects. The draws come from a CPU generator seeded from ``seed``, so a seed gives the
same new-participant effects on every device and whatever the chunking over draws.

Example
-------
>>> nd = prepare_new_data(model, new_df)                                  # doctest: +SKIP
>>> values = with_new_level_effects(model, values, nd, seed=1)            # doctest: +SKIP
>>> theta = model.builder.theta(values, nd.encoded.tensors)               # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from hssm_torch.builder import EncodedData

__all__ = [
    "NewData",
    "derive_seed",
    "held_out_log_likelihood",
    "prepare_new_data",
    "with_new_level_effects",
]

log = logging.getLogger(__name__)

#: Stream index of the new-level effects in :func:`derive_seed`.
NEW_LEVEL_STREAM = 1
#: Stream index of prior draws in :func:`derive_seed`.
PRIOR_STREAM = 2


def derive_seed(seed: int, stream: int) -> int:
    """An independent seed in ``[0, 2**63)`` for ``stream`` of ``seed`` (SeedSequence)."""
    ss = np.random.SeedSequence([int(seed), 0xA11CE, int(stream)])
    return int(ss.generate_state(2, dtype=np.uint64)[0] >> np.uint64(1))


@dataclass
class NewData:
    """A new data set encoded for a fitted model.

    Attributes
    ----------
    data : pandas.DataFrame
        The rows, index reset to ``0..N-1`` (the ``__obs__`` coordinate).
    encoded : EncodedData
        Design tensors for :meth:`ModelBuilder.theta` and the unseen group levels.
    deadline : numpy.ndarray or None
        ``(N,)`` deadlines when the model has a deadline column.
    obs : torch.Tensor or None
        ``(N, 2)`` observations (censored rows with ``rt = -999.0``) when asked for.
    censored : CensoredLikelihood or None
        The censored likelihood bound to these rows (missing RTs / deadlines), when asked
        for and the model handles censoring.
    """

    data: pd.DataFrame
    encoded: EncodedData
    deadline: np.ndarray | None = None
    obs: torch.Tensor | None = None
    censored: Any = None

    @property
    def n_obs(self) -> int:
        return int(len(self.data))

    @property
    def new_levels(self) -> dict[str, tuple[str, ...]]:
        return self.encoded.new_levels


def _censoring_args(model: Any):
    from hssm_torch.censoring import resolve_censoring_args

    kw = getattr(model, "_init_kwargs", {})
    return resolve_censoring_args(kw.get("missing_data", False), kw.get("deadline", False))


def prepare_new_data(model: Any, data: pd.DataFrame, *, observations: bool = False) -> NewData:
    """Encode ``data`` for ``model`` (a fitted or unfitted :class:`~hssm_torch.HSSM`).

    Parameters
    ----------
    model : HSSM
    data : pandas.DataFrame
        The formulas' covariate and group columns (and the deadline column when the model
        has one); with ``observations``, also ``rt`` and ``response``.
    observations : bool
        Check and keep ``rt`` / ``response`` (for the log-likelihood).

    Returns
    -------
    NewData

    Raises
    ------
    ValueError
        Missing columns, an unseen level of a fixed-effect categorical (naming column and
        level), a missing deadline column, invalid observations.

    Example
    -------
    >>> nd = prepare_new_data(model, pd.DataFrame({"x": [0.0, 1.0]}))    # doctest: +SKIP
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
    if len(data) == 0:
        raise ValueError("data: no rows")
    df = data.reset_index(drop=True)
    encoded = model.builder.encode(df, allow_new_levels=True)
    for g, levels in encoded.new_levels.items():
        log.info(
            "new data: %d level(s) of %s not seen when fitting; their effects are drawn from "
            "the group distribution",
            len(levels),
            g,
        )
    args = _censoring_args(model)
    deadline = None
    if args.deadline:
        if args.deadline_name not in df.columns:
            raise ValueError(
                f"data: the model was fitted with deadline column {args.deadline_name!r}; new "
                f"data need it too (columns: {list(df.columns)})"
            )
        deadline = np.array(pd.to_numeric(df[args.deadline_name], errors="coerce"), dtype=float)
        bad = ~np.isfinite(deadline) | (deadline <= 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"data: column {args.deadline_name!r} must be finite and > 0; row {i} has "
                f"{deadline[i]}"
            )
    obs, censored = None, None
    if observations:
        obs, censored = _observations(model, df, args)
    return NewData(df, encoded, deadline, obs, censored)


def _observations(model: Any, df: pd.DataFrame, args: Any):
    from hssm_torch.model import _validate_data

    dtype, device = model.builder.dtype, model.builder.device
    if not (args.missing_data or args.deadline):
        valid = _validate_data(df, model.choices)
        rt = valid["rt"].to_numpy(dtype=float)
        resp = valid["response"].to_numpy(dtype=float)
        obs = torch.tensor(np.stack([rt, resp], -1), dtype=dtype, device=device)
        return obs, None
    from hssm_torch.censoring import CensoredLikelihood, prepare_censored_data

    cd = prepare_censored_data(
        df,
        missing_data=args.missing_data_value if args.missing_data else False,
        deadline=args.deadline_name if args.deadline else False,
        choices=model.choices,
    )
    extra = getattr(model, "_loglik_missing_data", None)
    censored = CensoredLikelihood(
        model.model_name,
        model._loglik,
        cd,
        cpn=None if args.deadline else extra,
        opn=extra if args.deadline else None,
        choices=model.choices,
        device=device,
        dtype=dtype,
    )
    obs = torch.tensor(np.stack([cd.rt, cd.response], -1), dtype=dtype, device=device)
    return obs, censored


def with_new_level_effects(
    model: Any, values: Mapping[str, torch.Tensor], new: NewData, seed: int
) -> dict[str, torch.Tensor]:
    """``values`` plus the drawn effects of ``new``'s unseen group levels (if any).

    Parameters
    ----------
    model : HSSM
    values : mapping
        Site values with a leading draw dimension ``(S, ...)``.
    new : NewData
    seed : int
        Seeds the CPU generator of the ``Normal(0, 1)`` draws (stream
        :data:`NEW_LEVEL_STREAM`).

    Returns
    -------
    dict
        A new dict; the effects are under ``<group> + NEW_LEVELS_SUFFIX``.
    """
    out = dict(values)
    if not new.new_levels:
        return out
    gen = torch.Generator().manual_seed(derive_seed(seed, NEW_LEVEL_STREAM))
    out.update(model.builder.new_level_effects(values, new.encoded, gen))
    return out


def held_out_log_likelihood(
    model: Any,
    idata: Any,
    data: pd.DataFrame,
    *,
    seed: int | None = None,
    chunk_draws: int = 64,
) -> Any:
    """Pointwise log-likelihood of new trials under each posterior draw, as InferenceData.

    θ per draw comes from the fitted formulas on the encoded new covariates; known group
    levels use their fitted effects; each unseen level gets one effect per posterior draw
    drawn from ``Normal(0, <group>_sigma)`` of that draw (seeded by ``seed``), so the
    pointwise values are a one-sample Monte Carlo over the new participant's effects and
    ``az.loo`` / ``az.waic`` average them over draws. With ``missing_data`` / ``deadline``
    models the new rows are classified and scored as the model scores its own data
    (censored likelihood). Lapses are included as in the model.

    Parameters
    ----------
    model : HSSM
    idata : arviz.InferenceData
        With a ``posterior`` group.
    data : pandas.DataFrame
        New trials with ``rt``, ``response`` and the formulas' columns.
    seed : int, optional
        Seeds the new-level effects (only used when there are unseen levels; ``None``
        draws one and logs it).
    chunk_draws : int
        Draws evaluated together.

    Returns
    -------
    arviz.InferenceData
        ``posterior`` (as given), ``log_likelihood`` (``"rt,response"``, dims
        ``(chain, draw, __obs__)``) and ``observed_data`` of the new trials.

    Example
    -------
    >>> ll = held_out_log_likelihood(model, idata, test_df, seed=1)      # doctest: +SKIP
    >>> az.loo(ll)                                                        # doctest: +SKIP
    """
    import arviz as az
    import xarray as xr

    from hssm_torch.censoring import CensoredSSMDistribution
    from hssm_torch.distribution import SSMDistribution
    from hssm_torch.inference import _sites_from_posterior

    if idata is None or "posterior" not in idata.groups():
        raise ValueError("idata: expected an InferenceData with a posterior group; fit first")
    if isinstance(chunk_draws, bool) or not isinstance(chunk_draws, int) or chunk_draws < 1:
        raise ValueError(f"chunk_draws: expected an integer >= 1, got {chunk_draws!r}")
    new = prepare_new_data(model, data, observations=True)
    values = _sites_from_posterior(model, idata)
    if new.new_levels:
        if seed is None:
            from simulators.rng import new_seed

            seed = new_seed()
            log.info("held-out log-likelihood: seed=%d", seed)
        values = with_new_level_effects(model, values, new, int(seed))
    builder = model.builder
    post = idata.posterior
    n_chains, n_per = post.sizes["chain"], post.sizes["draw"]
    n_draws = n_chains * n_per
    out = np.empty((n_draws, new.n_obs), dtype=np.float64)
    with torch.no_grad():
        for i in range(0, n_draws, chunk_draws):
            j = min(n_draws, i + chunk_draws)
            sub = {k: v[i:j] for k, v in values.items()}
            theta = builder.theta(sub, new.encoded.tensors)
            p = builder.p_outlier_value(sub, new.encoded.tensors)
            if not values:  # every parameter fixed: one evaluation serves every draw
                theta = theta.unsqueeze(0)
                p = None if p is None else p.unsqueeze(0)
            common = {
                "model": model.model_name,
                "choices": model.choices,
                "p_outlier": p,
                "lapse": model.lapse,
            }
            if new.censored is not None:
                dist = CensoredSSMDistribution(theta, new.censored, **common)
            else:
                dist = SSMDistribution(theta, model._loglik, **common)
            lp = dist.log_prob(new.obs)
            out[i:j] = lp.expand(j - i, new.n_obs).detach().cpu().numpy()
    obs_idx = np.arange(new.n_obs)
    ll = xr.Dataset(
        {"rt,response": (("chain", "draw", "__obs__"), out.reshape(n_chains, n_per, -1))},
        coords={"chain": post.chain.values, "draw": post.draw.values, "__obs__": obs_idx},
    )
    obs = xr.Dataset(
        {"rt,response": (("__obs__", "rt,response_dim"), new.obs.detach().cpu().numpy())},
        coords={"__obs__": obs_idx, "rt,response_dim": ["rt", "response"]},
    )
    return az.InferenceData(posterior=post, log_likelihood=ll, observed_data=obs)
