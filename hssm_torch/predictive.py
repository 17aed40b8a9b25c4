"""Memory-bounded predictive simulation: one ``(rt, response)`` per (draw, trial).

:func:`simulate_predictive` takes parameter draws ``θ`` of shape ``(S, N, P)`` (or a callable
producing them for a slice of draws) and simulates one trial per (draw, trial) through the
simulators, ``chunk_draws`` draws at a time: only one chunk of ``θ`` and of simulator state is
alive at once, so peak memory beyond the ``(S, N, 2)`` output is flat in ``S``. The output
can be preallocated by the caller (e.g. a memory-mapped array).

Randomness is keyed by ``(seed, draw index, trial index)`` with the simulators' counter-based
generator (:func:`simulators.rng.trial_keys`: the draw index plays the role of the
parameter-set index), so for a fixed seed the result does not depend on ``chunk_draws`` nor on
the device's batch sizes. (Models with a user-supplied simulator callable go through
:func:`simulators.simulate.simulate` once per chunk with a seed derived from
``(seed, first draw of the chunk)``; their draws then depend on ``chunk_draws``.)

Lapses: with ``p_outlier``, each (draw, trial) is replaced with probability ``p_outlier`` by
a lapse: ``rt ~ Uniform(lapse_rt)`` and a response drawn uniformly from the model's choices.
Deadlines: with ``deadline`` (``(N,)`` seconds), simulated rts at or past the trial's deadline
are recoded as omitted (``rt = -999.0``; the simulated response is kept), as
:func:`hssm_torch.censoring.prepare_censored_data` codes the observed data. Trials that made
no decision by ``max_t`` come back as the simulators report them (``rt = -999.0``,
``response = -999``).

:func:`to_inference_group` wraps the array as an :class:`xarray.Dataset` laid out as HSSM's
``posterior_predictive`` group: variable ``"rt,response"`` with dims
``(chain, draw, __obs__, rt,response_dim)``.

Example
-------
>>> import torch
>>> from hssm_torch.predictive import simulate_predictive
>>> theta = torch.tensor([0.5, 1.0, 0.5, 0.3]).expand(10, 20, 4)   # 10 draws x 20 trials
>>> simulate_predictive("ddm", theta, seed=1, chunk_draws=4).shape
(10, 20, 2)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

__all__ = [
    "KINDS",
    "OMITTED_RT",
    "posterior_predictive",
    "predictive_from_values",
    "prior_predictive",
    "simulate_predictive",
    "to_inference_group",
]

#: Accepted ``kind`` of the model-level predictive functions.
KINDS: tuple[str, ...] = ("response", "parameters")

log = logging.getLogger(__name__)

#: rt of a predictive trial at or past its deadline (HSSM's missing-data code).
OMITTED_RT: float = -999.0

#: Trials handed to a sampler at once (bounds the simulator's working memory).
SIM_CHUNK: int = 1 << 17

_LAPSE_STREAM = 0x5EED

ThetaSource = Any  # tensor/array (S, N, P) or callable(start, stop) -> (stop - start, N, P)


def _as_chunk(x: Any, start: int, stop: int, dtype, device) -> torch.Tensor:
    if callable(x):
        got = x(start, stop)
    else:
        got = x[start:stop]
    t = torch.as_tensor(np.array(got) if not isinstance(got, torch.Tensor) else got)
    return t.detach().to(dtype=dtype, device=device)


def _method(spec, method: str) -> str:
    from simulators import kinds

    allowed = (
        kinds.methods_for(spec) if hasattr(kinds, "methods_for") else kinds.METHODS[spec.simulator]
    )
    if method == "auto":
        return allowed[0]
    if method not in allowed:
        raise ValueError(
            f"method: {method!r} is not available for model {spec.name!r}; expected 'auto' or one "
            f"of {list(allowed)}"
        )
    return method


def _keyed_simulate(spec, rows, draw_idx, trial_idx, seed, dt, max_t, method):
    """Simulate one trial per row with keys ``(seed, draw, trial)``."""
    from simulators.kinds import SAMPLERS
    from simulators.rng import trial_keys

    sampler = SAMPLERS[spec.simulator]
    n_steps = int(round(max_t / dt))
    m = rows.shape[0]
    rt = torch.empty(m, dtype=rows.dtype, device=rows.device)
    resp = torch.empty(m, dtype=torch.int64, device=rows.device)
    fin = torch.empty(m, dtype=torch.bool, device=rows.device)
    for a in range(0, m, SIM_CHUNK):
        b = min(m, a + SIM_CHUNK)
        k1, k2 = trial_keys(seed, draw_idx[a:b], trial_idx[a:b])
        params = {n: rows[a:b, i] for i, n in enumerate(spec.param_names)}
        r, c, f = sampler(
            spec, params, {"k1": k1, "k2": k2}, n_steps=n_steps, dt=float(dt), method=method
        )
        rt[a:b], resp[a:b], fin[a:b] = r, c, f
    return rt, resp, fin


def _derive_seed(seed: int, start: int) -> int:
    ss = np.random.SeedSequence([seed, start])
    return int(ss.generate_state(2, dtype=np.uint64)[0] >> np.uint64(1))


def simulate_predictive(
    model: str,
    theta: ThetaSource,
    *,
    n_draws: int | None = None,
    p_outlier: Any = None,
    lapse_rt: tuple[float, float] = (0.0, 20.0),
    deadline: Any = None,
    chunk_draws: int = 100,
    seed: int | None = None,
    out: np.ndarray | None = None,
    dt: float = 1e-3,
    max_t: float = 20.0,
    method: str = "auto",
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    allow_out_of_bounds: bool = True,
    progress: bool = False,
) -> np.ndarray:
    """Simulate one ``(rt, response)`` per (draw, trial), chunked over draws.

    Parameters
    ----------
    model : str
        Registry model name.
    theta : tensor, array or callable
        ``(S, N, P)`` parameters in registry order, or ``theta(start, stop)`` returning the
        ``(stop - start, N, P)`` parameters of draws ``start:stop`` (then ``n_draws`` is
        required). Only one chunk is materialized at a time.
    n_draws : int, optional
        ``S`` (default: ``len(theta)``).
    p_outlier : float, tensor, array or callable, optional
        Lapse probability broadcastable to ``(S, N)`` (or a callable ``(start, stop)`` giving
        the chunk's, broadcastable to ``(stop - start, N)``).
    lapse_rt : (float, float)
        Range of the uniform lapse rt.
    deadline : array, optional
        ``(N,)`` deadlines; predicted rts ``>= deadline`` become ``-999.0``.
    chunk_draws : int
        Draws simulated together (peak memory ~ ``chunk_draws * N`` trials).
    seed : int, optional
        ``None`` draws one (logged). The result for a seed does not depend on ``chunk_draws``.
    out : numpy.ndarray, optional
        Preallocated ``(S, N, 2)`` float array to fill (e.g. ``np.memmap``).
    dt, max_t, method :
        As :func:`simulators.simulate.simulate`.
    device, dtype :
        Where and in what precision to simulate.
    allow_out_of_bounds : bool
        Accept draws outside the registry's simulation box (inside the support); default
        True since posterior draws may leave it.
    progress : bool
        Show a tqdm progress bar over chunks.

    Returns
    -------
    numpy.ndarray
        ``(S, N, 2)``: ``[..., 0]`` rt, ``[..., 1]`` response (``out`` when given; float32
        otherwise).

    Example
    -------
    >>> import torch
    >>> th = torch.tensor([0.5, 1.0, 0.5, 0.3]).expand(6, 5, 4)
    >>> a = simulate_predictive("ddm", th, seed=3, chunk_draws=2)
    >>> b = simulate_predictive("ddm", th, seed=3, chunk_draws=6)
    >>> bool((a == b).all())
    True
    """
    from simulators.registry import get_model
    from simulators.rng import new_seed, stream_keys, trial_keys, uniform
    from simulators.simulate import parse_theta, simulate

    spec = get_model(model)
    if (
        isinstance(chunk_draws, bool)
        or not isinstance(chunk_draws, (int, np.integer))
        or chunk_draws < 1
    ):
        raise ValueError(f"chunk_draws: expected an integer >= 1, got {chunk_draws!r}")
    if n_draws is None:
        if callable(theta):
            raise ValueError("n_draws: required when theta is a callable")
        n_draws = len(theta)
    n_draws = int(n_draws)
    if n_draws < 1:
        raise ValueError(f"n_draws: expected >= 1, got {n_draws}")
    lo, hi = (float(x) for x in lapse_rt)
    if not (math.isfinite(lo) and math.isfinite(hi) and 0.0 <= lo < hi):
        raise ValueError(f"lapse_rt: expected (low, high) with 0 <= low < high, got {lapse_rt!r}")
    seed = new_seed() if seed is None else int(seed)
    if seed < 0 or seed >= 2**63:
        raise ValueError(f"seed: expected an integer in [0, 2**63), got {seed}")
    device = torch.device(device) if device is not None else None
    custom = callable(spec.simulator)
    chosen = None if custom else _method(spec, method)
    p_names = spec.param_names
    first = _as_chunk(theta, 0, min(chunk_draws, n_draws), dtype, device)
    if first.dim() != 3 or first.shape[-1] not in (len(p_names), len(spec.required_param_names)):
        raise ValueError(
            f"theta: expected shape (S, N, P) with P = {len(p_names)} ({list(p_names)}), got "
            f"{tuple(first.shape)}"
        )
    n_trials = first.shape[1]
    device = first.device
    if out is None:
        out = np.empty((n_draws, n_trials, 2), dtype=np.float32)
    elif out.shape != (n_draws, n_trials, 2):
        raise ValueError(f"out: expected shape {(n_draws, n_trials, 2)}, got {out.shape}")
    dl = None
    if deadline is not None:
        dl = torch.as_tensor(np.array(deadline, dtype=np.float64), device=device).to(dtype)
        if dl.shape != (n_trials,):
            raise ValueError(f"deadline: expected shape ({n_trials},), got {tuple(dl.shape)}")
    codes = torch.tensor(spec.choices, dtype=dtype, device=device)
    trial = torch.arange(n_trials, device=device)
    chunks = range(0, n_draws, chunk_draws)
    if progress:
        from tqdm.auto import tqdm

        chunks = tqdm(chunks, desc=f"predictive {model}", unit="chunk")
    for start in chunks:
        stop = min(n_draws, start + chunk_draws)
        th = first if start == 0 else _as_chunk(theta, start, stop, dtype, device)
        if th.shape[0] != stop - start or th.shape[1] != n_trials:
            raise ValueError(
                f"theta: draws {start}:{stop} have shape {tuple(th.shape)}; expected "
                f"({stop - start}, {n_trials}, P)"
            )
        rows = parse_theta(
            spec,
            th.reshape(-1, th.shape[-1]),
            dtype=dtype,
            device=device,
            allow_out_of_bounds=allow_out_of_bounds,
        )
        s_idx = torch.arange(start, stop, device=device).repeat_interleave(n_trials)
        t_idx = trial.repeat(stop - start)
        if custom:
            res = simulate(
                spec,
                rows,
                1,
                dt=dt,
                max_t=max_t,
                seed=_derive_seed(seed, start),
                device=device,
                dtype=dtype,
                allow_out_of_bounds=allow_out_of_bounds,
            )
            rt, resp = res.rt[:, 0], res.response[:, 0]
        else:
            rt, resp, fin = _keyed_simulate(spec, rows, s_idx, t_idx, seed, dt, max_t, chosen)
            rt = torch.where(fin, rt, torch.full_like(rt, OMITTED_RT))
            resp = torch.where(fin, resp, torch.full_like(resp, -999))
        resp = resp.to(dtype)
        if p_outlier is not None:
            p = _p_chunk(p_outlier, start, stop, n_draws, dtype, device)
            try:
                p = p.expand(stop - start, n_trials).reshape(-1)
            except RuntimeError:
                raise ValueError(
                    f"p_outlier: shape {tuple(p.shape)} for draws {start}:{stop} does not "
                    "broadcast "
                    f"to ({stop - start}, {n_trials}); use a float, (N,), (S, 1) or (S, N)"
                ) from None
            k1, k2 = stream_keys(*trial_keys(seed, s_idx, t_idx), _LAPSE_STREAM)
            is_lapse = uniform(k1, k2, 0, dtype) < p
            lapse_draw = lo + (hi - lo) * uniform(k1, k2, 1, dtype)
            pick = (uniform(k1, k2, 2, dtype) * len(codes)).long().clamp(max=len(codes) - 1)
            rt = torch.where(is_lapse, lapse_draw, rt)
            resp = torch.where(is_lapse, codes[pick], resp)
        if dl is not None:
            late = (rt >= dl.repeat(stop - start)) & (rt != OMITTED_RT)
            rt = torch.where(late, torch.full_like(rt, OMITTED_RT), rt)
        block = torch.stack([rt, resp], -1).reshape(stop - start, n_trials, 2)
        out[start:stop] = block.cpu().numpy()
        del th, rows, rt, resp, block
    return out


def _p_chunk(p: Any, start: int, stop: int, n_draws: int, dtype, device) -> torch.Tensor:
    """The lapse probabilities of draws ``start:stop``: (S, ·) arrays are sliced by draw."""
    if callable(p):
        return _as_chunk(p, start, stop, dtype, device)
    t = torch.as_tensor(p if isinstance(p, torch.Tensor) else np.array(p, dtype=np.float64))
    t = t.detach().to(dtype=dtype, device=device)
    if t.dim() == 2 and t.shape[0] == n_draws and n_draws > 1:
        t = t[start:stop]
    return t


def to_inference_group(
    samples: np.ndarray,
    *,
    n_chains: int = 1,
    obs_coords: Sequence[Any] | None = None,
    var_name: str = "rt,response",
) -> Any:
    """An :class:`xarray.Dataset` laid out as HSSM's ``posterior_predictive`` group.

    Parameters
    ----------
    samples : numpy.ndarray
        ``(S, N, 2)`` from :func:`simulate_predictive`, draws chain-major
        (``S = n_chains * n_draws``), or already ``(chains, draws, N, 2)``.
    n_chains : int
        Chains to split ``S`` into.
    obs_coords : sequence, optional
        ``__obs__`` coordinate values (default ``0..N-1``).
    var_name : str
        Variable name (HSSM: ``"rt,response"``).

    Returns
    -------
    xarray.Dataset
        Variable ``var_name`` with dims ``(chain, draw, __obs__, rt,response_dim)`` and
        coordinate ``rt,response_dim = ["rt", "response"]``; use as
        ``idata.add_groups(posterior_predictive=ds)`` or
        ``az.InferenceData(posterior_predictive=ds)``.

    Example
    -------
    >>> import numpy as np
    >>> ds = to_inference_group(np.zeros((6, 4, 2)), n_chains=2)
    >>> dict(ds["rt,response"].sizes)
    {'chain': 2, 'draw': 3, '__obs__': 4, 'rt,response_dim': 2}
    """
    import xarray as xr

    arr = np.asarray(samples)
    if arr.ndim == 3:
        s, n, k = arr.shape
        if s % n_chains:
            raise ValueError(f"n_chains: {s} draws do not split into {n_chains} chains")
        arr = arr.reshape(n_chains, s // n_chains, n, k)
    if arr.ndim != 4 or arr.shape[-1] != 2:
        raise ValueError(
            f"samples: expected (S, N, 2) or (chains, draws, N, 2), got {np.shape(samples)}"
        )
    c, d, n, _ = arr.shape
    obs = np.arange(n) if obs_coords is None else np.asarray(obs_coords)
    if obs.shape != (n,):
        raise ValueError(f"obs_coords: expected {n} values, got {obs.shape}")
    dim = f"{var_name}_dim"
    return xr.Dataset(
        {var_name: (("chain", "draw", "__obs__", dim), arr)},
        coords={
            "chain": np.arange(c),
            "draw": np.arange(d),
            "__obs__": obs,
            dim: ["rt", "response"],
        },
    )


def _lapse_range(model: Any) -> tuple[float, float]:
    lapse = getattr(model, "lapse", None)
    lo, hi = getattr(lapse, "low", None), getattr(lapse, "high", None)
    if lo is None or hi is None:
        raise ValueError(
            f"lapse: predictive lapses are uniform over an rt range; got "
            f"{type(lapse).__name__} (use a Uniform lapse distribution)"
        )
    return float(lo), float(hi)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {list(KINDS)}, got {kind!r}")


def predictive_from_values(
    model: Any,
    values: Mapping[str, torch.Tensor],
    *,
    n_chains: int = 1,
    n_draws: int | None = None,
    tensors: Mapping[str, Mapping[str, torch.Tensor]] | None = None,
    deadline: Any = None,
    kind: str = "response",
    chunk_draws: int = 100,
    seed: int | None = None,
    progress: bool = False,
    **kwargs: Any,
) -> Any:
    """Predictive group from site values ``(S, ...)`` of ``model.builder`` (chain-major).

    The machinery behind :func:`posterior_predictive` and :func:`prior_predictive`: θ (and
    the lapse probability) of ``chunk_draws`` draws at a time from ``model.builder.theta``
    (on ``tensors``, the encoded covariates of new data, or the model's own data), then
    :func:`simulate_predictive` with the model's lapse range and ``deadline``.

    Parameters
    ----------
    model : HSSM
    values : mapping
        Site values with a leading draw dimension (may include new-level effects, see
        :mod:`hssm_torch.newdata`).
    n_chains : int
        Chains the ``S`` draws split into.
    n_draws : int, optional
        ``S`` when ``values`` is empty (a model without latent variables); default 1.
    tensors : mapping, optional
        :attr:`EncodedData.tensors` of new data (default: the model's data).
    deadline : array, optional
        ``(N,)`` deadlines (predicted rts at or past them become ``-999.0``).
    kind : {"response", "parameters"}
        ``"response"``: variable ``"rt,response"`` ``(chain, draw, __obs__,
        rt,response_dim)``. ``"parameters"``: one variable per model parameter (and
        ``p_outlier`` when the model has lapses), ``(chain, draw, __obs__)``, the per-trial
        values that would be simulated.
    chunk_draws, seed, progress, **kwargs :
        As :func:`simulate_predictive`.

    Returns
    -------
    xarray.Dataset
    """
    import xarray as xr

    _check_kind(kind)
    builder = model.builder
    n_draws = int(next(iter(values.values())).shape[0]) if values else int(n_draws or 1)

    def sub(i: int, j: int) -> dict:
        if not values:
            return {}
        return {k: v[i:j] for k, v in values.items()}

    def theta_fn(i: int, j: int) -> torch.Tensor:
        with torch.no_grad():
            th = builder.theta(sub(i, j), tensors)
            return th if values else th.unsqueeze(0).expand(j - i, *th.shape)

    def p_fn(i: int, j: int) -> torch.Tensor:
        with torch.no_grad():
            p = builder.p_outlier_value(sub(i, j), tensors)
            return p if values else p.unsqueeze(0).expand(j - i, *p.shape)

    has_lapse = getattr(model, "p_outlier", None) is not None
    if kind == "parameters":
        names = list(model.info.param_names) + (["p_outlier"] if has_lapse else [])
        arrays: dict[str, np.ndarray] = {}
        for i in range(0, n_draws, chunk_draws):
            j = min(n_draws, i + chunk_draws)
            th = theta_fn(i, j)
            cols = [th[..., k] for k in range(len(model.info.param_names))]
            if has_lapse:
                cols.append(p_fn(i, j))
            for name, col in zip(names, cols):
                arr = col.detach().cpu().numpy()
                if name not in arrays:
                    arrays[name] = np.empty((n_draws, arr.shape[-1]), dtype=arr.dtype)
                arrays[name][i:j] = arr
        n_obs = next(iter(arrays.values())).shape[-1]
        per = n_draws // n_chains
        return xr.Dataset(
            {
                k: (("chain", "draw", "__obs__"), v.reshape(n_chains, per, n_obs))
                for k, v in arrays.items()
            },
            coords={
                "chain": np.arange(n_chains),
                "draw": np.arange(per),
                "__obs__": np.arange(n_obs),
            },
        )
    arr = simulate_predictive(
        model.model_name,
        theta_fn,
        n_draws=n_draws,
        p_outlier=p_fn if has_lapse else None,
        lapse_rt=_lapse_range(model) if has_lapse else (0.0, 20.0),
        deadline=deadline,
        chunk_draws=chunk_draws,
        seed=seed,
        device=builder.device,
        progress=progress,
        **kwargs,
    )
    return to_inference_group(arr, n_chains=n_chains)


def _seed(seed: int | None, what: str) -> int:
    from simulators.rng import new_seed

    if seed is None:
        seed = new_seed()
        log.info("%s: seed=%d", what, seed)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ValueError(f"seed: expected an integer in [0, 2**63), got {seed!r}")
    return int(seed)


def _check_draws(draws: Any, n_max: int | None) -> int:
    top = "" if n_max is None else f", <= {n_max}"
    if (
        isinstance(draws, bool)
        or not isinstance(draws, (int, np.integer))
        or draws < 1
        or (n_max is not None and draws > n_max)
    ):
        raise ValueError(f"draws: expected an integer >= 1{top}, got {draws!r}")
    return int(draws)


def posterior_predictive(
    model: Any,
    idata: Any,
    *,
    draws: int | None = None,
    data: pd.DataFrame | None = None,
    kind: str = "response",
    chunk_draws: int = 100,
    seed: int | None = None,
    deadline: Any = None,
    progress: bool = False,
    **kwargs: Any,
) -> Any:
    """Posterior predictive group of a fitted :class:`hssm_torch.HSSM`, on its data or new data.

    θ for a chunk of draws comes from ``model.builder.theta`` on the posterior's site values,
    so only ``chunk_draws`` draws of ``(N, P)`` parameters exist at a time; lapses use
    ``model.builder.p_outlier_value`` and the lapse distribution's range (``model.lapse``,
    a Uniform); deadlines (the model's, or the new data's deadline column) recode predicted
    rts past them to ``-999.0``.

    With ``data``, the covariates are encoded with the fitted formulas (same categorical
    levels and transforms; an unseen level of a fixed-effect categorical raises
    ``ValueError``). Group levels seen when fitting use their fitted effects; levels never
    seen (new participants) get, per posterior draw, effects drawn from the fitted group
    distribution ``Normal(0, <group>_sigma)`` for every random-effects term, seeded by
    ``seed`` (see :mod:`hssm_torch.newdata`).

    Parameters
    ----------
    model : HSSM
        The fitted model.
    idata : arviz.InferenceData
        With a ``posterior`` group from ``model.sample()`` / ``model.vi()``.
    draws : int, optional
        Use this many draws per chain (evenly spread; default all).
    data : pandas.DataFrame, optional
        New trials (covariates, group columns, the deadline column if the model has one;
        ``rt`` / ``response`` are not needed). Default: the model's data.
    kind : {"response", "parameters"}
        Simulated ``"rt,response"`` or the per-trial parameter draws (one variable per
        parameter; see :func:`predictive_from_values`).
    chunk_draws, seed, progress :
        As :func:`simulate_predictive`; ``seed`` also seeds the new-level effects.
    deadline : array, optional
        ``(N,)`` deadlines overriding the model's / the data's.
    **kwargs :
        Passed to :func:`simulate_predictive` (``dt``, ``max_t``, ``method``...).

    Returns
    -------
    xarray.Dataset
        ``"rt,response"`` with dims ``(chain, draw, __obs__, rt,response_dim)``; add it with
        ``idata.add_groups(posterior_predictive=ds)`` (or ``idata.posterior_predictive = ds``).

    Example
    -------
    >>> ds = posterior_predictive(model, idata, draws=100, seed=1)  # doctest: +SKIP
    >>> ds = posterior_predictive(model, idata, data=new_df, seed=1)  # doctest: +SKIP
    """
    from types import SimpleNamespace

    from hssm_torch.inference import _sites_from_posterior

    _check_kind(kind)
    post = idata.posterior
    n_all = post.sizes["draw"]
    if draws is not None:
        draws = _check_draws(draws, n_all)
        keep = np.unique(np.linspace(0, n_all - 1, draws).round().astype(int))
        post = post.isel(draw=keep)
    values = _sites_from_posterior(model, SimpleNamespace(posterior=post))
    seed = _seed(seed, "posterior predictive")
    tensors = None
    if data is not None:
        from hssm_torch.newdata import prepare_new_data, with_new_level_effects

        new = prepare_new_data(model, data)
        values = with_new_level_effects(model, values, new, seed)
        tensors = new.encoded.tensors
        if deadline is None:
            deadline = new.deadline
    elif deadline is None:
        cd = getattr(model, "censored_data", None)
        deadline = None if cd is None else cd.deadline
    ds = predictive_from_values(
        model,
        values,
        n_chains=post.sizes["chain"],
        n_draws=post.sizes["chain"] * post.sizes["draw"],
        tensors=tensors,
        deadline=deadline,
        kind=kind,
        chunk_draws=chunk_draws,
        seed=seed,
        progress=progress,
        **kwargs,
    )
    return ds.assign_coords(chain=post.chain.values, draw=post.draw.values)


def prior_predictive(
    model: Any,
    *,
    draws: int = 500,
    data: pd.DataFrame | None = None,
    kind: str = "response",
    chunk_draws: int = 100,
    seed: int | None = None,
    progress: bool = False,
    **kwargs: Any,
) -> Any:
    """Prior and prior predictive of an :class:`hssm_torch.HSSM` through the simulators.

    Draws every latent site of the model from its prior (coefficients, group sigmas and
    offsets, ``p_outlier`` when it is a prior or a regression), computes per-trial θ with
    the model's formulas and links, and simulates one ``(rt, response)`` per (draw, trial)
    with lapses and deadline recoding, ``chunk_draws`` draws at a time (as
    :func:`posterior_predictive`).

    Parameters
    ----------
    model : HSSM
    draws : int
        Prior draws (one chain).
    data : pandas.DataFrame, optional
        Trials to predict (default: the model's data). Group levels not in the model's
        data get effects drawn from ``Normal(0, <group>_sigma)`` of each prior draw.
    kind : {"response", "parameters"}
        As :func:`posterior_predictive`.
    chunk_draws, progress, **kwargs :
        As :func:`simulate_predictive`.
    seed : int, optional
        Seeds the prior draws, the new-level effects and the simulation.

    Returns
    -------
    arviz.InferenceData
        ``prior`` (the model's variables, Bambi names, dims and coords as the posterior;
        absent when every parameter is fixed), ``prior_predictive`` (as
        ``posterior_predictive``) and, when the predicted trials have observations (the
        model's data), ``observed_data``.

    Example
    -------
    >>> pri = prior_predictive(model, draws=200, seed=1)                  # doctest: +SKIP
    >>> pri.prior_predictive["rt,response"].shape                         # doctest: +SKIP
    (1, 200, 500, 2)
    """
    import arviz as az
    import xarray as xr

    from hssm_torch.inference import _dims_and_coords, _posterior_arrays
    from hssm_torch.newdata import (
        PRIOR_STREAM,
        derive_seed,
        prepare_new_data,
        with_new_level_effects,
    )

    draws = _check_draws(draws, None)
    seed = _seed(seed, "prior predictive")
    values = model.builder.sample_prior(draws, derive_seed(seed, PRIOR_STREAM))
    prior_vars = _posterior_arrays(model, values)
    dims, coords = _dims_and_coords(model)
    dims.pop("rt,response", None)
    coords.pop("__obs__", None)
    groups: dict[str, Any] = {}
    if prior_vars:  # (every parameter fixed: no latent variable, no prior group)
        groups["prior"] = az.from_dict(
            prior={k: v[None] for k, v in prior_vars.items()}, dims=dims, coords=coords
        ).prior
    tensors, obs, deadline = None, None, None
    if data is not None:
        new = prepare_new_data(model, data)
        values = with_new_level_effects(model, values, new, seed)
        tensors, deadline = new.encoded.tensors, new.deadline
    else:
        obs = model.builder.obs.detach().cpu().numpy()
        cd = getattr(model, "censored_data", None)
        deadline = None if cd is None else cd.deadline
    pp = predictive_from_values(
        model,
        values,
        n_chains=1,
        n_draws=draws,
        tensors=tensors,
        deadline=deadline,
        kind=kind,
        chunk_draws=chunk_draws,
        seed=seed,
        progress=progress,
        **kwargs,
    )
    groups["prior_predictive"] = pp
    if obs is not None:
        groups["observed_data"] = xr.Dataset(
            {"rt,response": (("__obs__", "rt,response_dim"), obs)},
            coords={"__obs__": np.arange(obs.shape[0]), "rt,response_dim": ["rt", "response"]},
        )
    return az.InferenceData(**groups)
