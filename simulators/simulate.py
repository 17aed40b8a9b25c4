"""``simulate``: draw (rt, response) from any registry model, batched over parameter sets.

Example
-------
>>> from simulators.simulate import simulate
>>> res = simulate("ddm", {"v": 1.0, "a": 1.0, "z": 0.5, "t": 0.3}, 1000, seed=1)
>>> res.rt.shape, res.response.dtype
(torch.Size([1, 1000]), torch.int64)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from simulators.engine import compiled_blocks
from simulators.kinds import SAMPLERS, methods_for
from simulators.registry import ModelSpec, get_model
from simulators.rng import new_seed, trial_keys

__all__ = ["OMITTED_RESPONSE", "OMITTED_RT", "SimulationResult", "parse_theta", "simulate"]

log = logging.getLogger(__name__)

#: rt and response of a trial that made no decision by ``max_t``.
OMITTED_RT = -999.0
OMITTED_RESPONSE = -999

DEFAULT_CHUNK = 1 << 17


@dataclass(frozen=True)
class SimulationResult:
    """Simulated trials of ``B`` parameter sets.

    Attributes
    ----------
    rt, response:
        ``(B, n_samples)`` tensors: response time in seconds (float, including the
        non-decision time) and response code (int64; ±1 or 0..n-1).  Trials without a
        decision by ``max_t`` have ``rt = -999.0`` and ``response = -999``.
    omitted:
        ``(B, n_samples)`` bool mask of those trials.
    theta:
        ``(B, P)`` parameters used (registry order, optional ones filled with defaults).
    model, dt, max_t, seed, method:
        What produced the draws (``seed`` is the one drawn when ``None`` was passed).
    """

    rt: torch.Tensor
    response: torch.Tensor
    omitted: torch.Tensor
    theta: torch.Tensor
    model: str
    dt: float
    max_t: float
    seed: int
    method: str

    @property
    def n_omitted(self) -> int:
        """Number of omitted trials."""
        return int(self.omitted.sum())


def _as_1d(name: str, value, dtype, device) -> torch.Tensor:
    if isinstance(value, bool):
        raise ValueError(f"theta[{name!r}]: expected a number or 1-D tensor, got a bool")
    if isinstance(value, (int, float, np.floating, np.integer)):
        return torch.tensor([float(value)], dtype=dtype, device=device)
    if isinstance(value, (list, tuple, np.ndarray, torch.Tensor)):
        arr = torch.as_tensor(
            np.asarray(value, dtype=np.float64) if not isinstance(value, torch.Tensor) else value
        )
        if arr.ndim > 1:
            raise ValueError(
                f"theta[{name!r}]: expected a scalar or a 1-D tensor, got shape {tuple(arr.shape)}"
            )
        if arr.is_complex() or not (
            arr.is_floating_point() or arr.dtype in (torch.int32, torch.int64)
        ):
            raise ValueError(f"theta[{name!r}]: expected real numbers, got dtype {arr.dtype}")
        return arr.reshape(-1).to(device=device, dtype=dtype)
    raise ValueError(
        f"theta[{name!r}]: expected a float or a 1-D tensor/array, got {type(value).__name__}"
    )


def parse_theta(
    spec: ModelSpec,
    theta,
    *,
    dtype: torch.dtype = torch.float32,
    device=None,
    allow_out_of_bounds: bool = False,
) -> torch.Tensor:
    """Validate ``theta`` and return it as a ``(B, P)`` tensor in registry order.

    ``theta`` is a mapping name -> float / 1-D tensor (length ``B`` or 1; optional parameters
    may be left out and take their defaults) or a ``(B, P)`` / ``(P,)`` tensor or array whose
    columns are all parameters or the required ones, in registry order.

    Example
    -------
    >>> from simulators import get_model
    >>> parse_theta(get_model("lba2"), {"A": 0.3, "b": 0.5, "v0": 0.5, "v1": 0.4}).tolist()
    [[0.30000001192092896, 0.5, 0.5, 0.4000000059604645, 0.0]]
    """
    names = spec.param_names
    required = spec.required_param_names
    if isinstance(theta, Mapping):
        keys = list(theta)
        extra = [k for k in keys if k not in names]
        if extra:
            raise ValueError(
                f"theta: unknown parameter(s) {extra} for model {spec.name!r}; expected names "
                f"from {list(names)}"
            )
        missing = [k for k in required if k not in theta]
        if missing:
            raise ValueError(
                f"theta: missing parameter(s) {missing} for model {spec.name!r}; expected "
                f"{list(required)}"
            )
        cols = {k: _as_1d(k, theta[k], dtype, device) for k in keys}
        lengths = {k: c.shape[0] for k, c in cols.items()}
        big = {n for n in lengths.values() if n != 1}
        if len(big) > 1:
            raise ValueError(
                f"theta: parameters have different lengths {lengths}; expected all of one "
                "length B (or 1 to broadcast)"
            )
        if any(n == 0 for n in lengths.values()):
            raise ValueError(f"theta: empty parameter values {lengths}; expected length >= 1")
        b = big.pop() if big else 1
        dev = next(iter(cols.values())).device
        out = []
        for p in spec.params:
            if p.name in cols:
                out.append(cols[p.name].expand(b))
            else:
                out.append(torch.full((b,), p.default, dtype=dtype, device=dev))
        mat = torch.stack(out, dim=1)
    else:
        if isinstance(theta, (list, tuple)):
            theta = np.asarray(theta, dtype=np.float64)
        if isinstance(theta, np.ndarray):
            theta = torch.as_tensor(theta)
        if not isinstance(theta, torch.Tensor):
            raise ValueError(
                f"theta: expected a dict or a (B, P) tensor, got {type(theta).__name__}"
            )
        mat = theta.to(device=device if device is not None else theta.device, dtype=dtype)
        if mat.ndim == 1:
            mat = mat.unsqueeze(0)
        if mat.ndim != 2 or mat.shape[0] == 0:
            raise ValueError(
                f"theta: expected shape (B, {len(names)}) or (B, {len(required)}) with B >= 1, "
                f"got {tuple(theta.shape)}"
            )
        if mat.shape[1] == len(required) and len(required) != len(names):
            fill = [
                torch.full((mat.shape[0], 1), p.default, dtype=dtype, device=mat.device)
                for p in spec.params[len(required) :]
            ]
            mat = torch.cat([mat, *fill], dim=1)
        elif mat.shape[1] != len(names):
            raise ValueError(
                f"theta: expected {len(names)} columns {list(names)} for model {spec.name!r}"
                + (
                    f" (or the {len(required)} required ones)"
                    if len(required) != len(names)
                    else ""
                )
                + f", got shape {tuple(mat.shape)}"
            )
    mat = mat.detach()
    finite = torch.isfinite(mat)
    if not bool(finite.all()):
        col = int((~finite).any(0).nonzero()[0])
        raise ValueError(f"theta[{names[col]!r}]: expected finite values, got non-finite ones")
    for i, p in enumerate(spec.params):
        lo, hi = (p.lower, p.upper) if not allow_out_of_bounds else p.support
        col = mat[:, i]
        bad = (col < lo) | (col > hi)
        if bool(bad.any()):
            val = float(col[bad][0])
            what = "bounds" if not allow_out_of_bounds else "support"
            hint = (
                ""
                if allow_out_of_bounds
                else " (pass allow_out_of_bounds=True to go beyond the box)"
            )
            raise ValueError(
                f"theta[{p.name!r}]: value {val} is outside the model's {what} "
                f"[{lo}, {hi}] for {spec.name!r}{hint}"
            )
    return mat


def _check_workers(workers) -> int:
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers: expected an integer >= 1, got {workers!r}")
    return int(workers)


def _chunks(total: int, chunk: int, workers: int) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges of at most ``chunk`` trials.  With several workers the
    number of chunks is rounded up to a multiple of ``workers`` (equal sizes), so that every
    worker gets work, also when ``total < workers * chunk``; draws are keyed per trial, so
    the split changes no draw."""
    n = -(-total // chunk)
    if workers > 1:
        n = min(total, -(-n // workers) * workers)
        chunk = -(-total // n)
    return [(s, min(total, s + chunk)) for s in range(0, total, chunk)]


def _run_chunks(run: Callable[[int, int], None], chunks: list, workers: int) -> None:
    """``run(start, stop)`` for every chunk: in this thread (``workers == 1``) or in a pool of
    ``workers`` threads, each with ``max(1, T // workers)`` torch threads (``T``: this
    thread's count), restoring this thread's setting afterwards.  The first exception raised
    by a chunk propagates (chunks not started yet are cancelled)."""
    if workers == 1 or len(chunks) == 1:
        for start, stop in chunks:
            run(start, stop)
        return
    n_threads = torch.get_num_threads()
    per_worker = max(1, n_threads // workers)

    def job(start: int, stop: int) -> None:
        if torch.get_num_threads() != per_worker:
            torch.set_num_threads(per_worker)
        run(start, stop)

    try:
        with ThreadPoolExecutor(max_workers=min(workers, len(chunks))) as pool:
            futures = [pool.submit(job, start, stop) for start, stop in chunks]
            try:
                for fut in futures:
                    fut.result()
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
    finally:
        # torch.set_num_threads is partly process-wide (OpenMP's setting is per thread, the
        # intra-op pool and MKL's are not): put back the caller's value
        torch.set_num_threads(n_threads)


def _check_scalars(n_samples, dt, max_t, method, spec, chunk_size, seed):
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"n_samples: expected an integer >= 1, got {n_samples!r}")
    if not isinstance(dt, (int, float)) or not math.isfinite(dt) or dt <= 0:
        raise ValueError(f"dt: expected a finite number > 0, got {dt!r}")
    if not isinstance(max_t, (int, float)) or not math.isfinite(max_t) or max_t <= dt:
        raise ValueError(f"max_t: expected a finite number > dt ({dt}), got {max_t!r}")
    if max_t / dt >= (1 << 29):
        raise ValueError(f"max_t / dt: expected fewer than 2**29 steps, got {max_t / dt:.3g}")
    if chunk_size is not None and (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, (int, np.integer))
        or chunk_size < 1
    ):
        raise ValueError(f"chunk_size: expected an integer >= 1 or None, got {chunk_size!r}")
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63
    ):
        raise ValueError(f"seed: expected None or an integer in [0, 2**63), got {seed!r}")
    if callable(spec.simulator):
        return "custom"
    allowed = methods_for(spec)
    if method == "auto":
        return allowed[0]
    if method not in allowed:
        raise ValueError(
            f"method: {method!r} is not available for model {spec.name!r} "
            f"(kind {spec.simulator!r}); expected 'auto' or one of {list(allowed)}"
        )
    return method


def simulate(
    model: str | ModelSpec,
    theta,
    n_samples: int,
    *,
    dt: float = 1e-3,
    max_t: float = 20.0,
    seed: int | None = None,
    device=None,
    dtype: torch.dtype = torch.float32,
    method: str = "auto",
    chunk_size: int | None = None,
    allow_out_of_bounds: bool = False,
    compile: bool = False,  # noqa: A002 - the public option's name
    workers: int = 1,
) -> SimulationResult:
    """Simulate ``n_samples`` trials for each of ``B`` parameter sets of a registry model.

    Parameters
    ----------
    model:
        Registry name or :class:`~simulators.registry.ModelSpec`.
    theta:
        Dict name -> float / 1-D tensor (length B or 1), or a ``(B, P)`` tensor in registry
        order (all parameters, or the required ones; optional ones default).
    n_samples:
        Trials per parameter set.
    dt, max_t:
        Euler step (s) and the time (s, excluding t) after which a trial without a decision
        is omitted: ``rt = -999.0``, ``response = -999``, ``omitted = True``.
    seed:
        Integer in ``[0, 2**63)``; ``None`` draws one (recorded in the result).  The same seed
        on the same device gives the same draws whatever ``chunk_size`` and whatever other
        parameter sets are simulated after set ``i`` (draws are keyed by set index and trial).
    device, dtype:
        Where and in what float type to simulate (default: theta's device / CPU, float32).
    method:
        ``"auto"`` (best available), ``"euler"`` (grid crossing, as ssm-simulators),
        ``"bridge"`` (Euler with the Brownian-bridge crossing correction) or ``"exact"``
        (closed-form kinds); see docs/simulators.md for what each model supports.  Gaussian
        diffusions with a constant drift (angle, weibull, ornstein, ...) and races run these
        schemes coarse-to-fine: windows of 16 steps are drawn at once and their steps only
        where the window may hold a crossing (same distribution as step by step, up to
        1e-9 per window; see :mod:`simulators.refine`).
    chunk_size:
        Trials (sets x samples) simulated at once; bounds memory (default 131072).
    allow_out_of_bounds:
        Accept parameters outside the registry's box (still inside their support).
    compile:
        Run the Euler engines' dense block work (noise, drift, boundary, crossing check)
        through ``torch.compile`` (measured on a 2-core CPU, one thread, 1,000 parameter sets
        x 1,000 trials: 2.8-4.5x ssm-simulators' speed for angle, weibull, ornstein and
        race_no_bias_3, levy 2.7-3.0x; eager 0.9-1.6x; the first call per model and settings
        compiles for about 5-25 s).  Models with exact samplers
        (ddm, full_ddm, lba, ...) and the stepwise engine (lca, mic2) are unaffected.  The
        same seed on the same device with the same ``compile`` setting gives the same draws
        whatever ``chunk_size``; compiled and eager draws may differ in the last ulp of the
        noise (hence, rarely, in an rt by one step).  If compilation fails a warning is logged
        and the eager engine runs.  See docs/simulators.md.
    workers:
        Simulate chunks concurrently in a pool of this many Python threads (default 1: no
        pool, chunks one after another in the calling thread).  Output is identical for any
        ``workers`` (draws are keyed per trial).  With ``workers > 1`` the trials are split
        into a multiple of ``workers`` chunks of at most ``chunk_size`` (so every worker gets
        work) and each worker runs torch with ``max(1, torch.get_num_threads() // workers)``
        threads; ``torch.set_num_threads`` is partly process-wide, so the caller's thread
        count is restored before returning.  It pays on CPU where the work runs outside the
        GIL: mostly with ``compile=True`` (the compiled graph runs in C++ with the GIL
        released; measured on 2 cores with the second core free: 1.5-1.8x with 2 workers; with
        another job on it, no gain or a loss: see docs/simulators.md);
        eager torch ops release the GIL too, but the Python between them does not.  Memory
        grows with ``workers x chunk_size``.  On CUDA the threads share the device; expect
        no gain there.  A user model whose ``simulator`` is a callable ignores it.  An
        exception in a worker propagates.

    Returns
    -------
    SimulationResult

    Example
    -------
    >>> import torch
    >>> theta = torch.tensor([[0.5, 1.0, 0.5, 0.2, 0.3], [0.0, 1.2, 0.5, 0.2, 0.0]])
    >>> simulate("angle", theta, 100, seed=0).rt.shape
    torch.Size([2, 100])
    """
    spec = get_model(model)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype: expected a torch floating dtype, got {dtype!r}")
    chosen = _check_scalars(n_samples, dt, max_t, method, spec, chunk_size, seed)
    if not isinstance(compile, bool):
        raise ValueError(f"compile: expected True or False, got {compile!r}")
    workers = _check_workers(workers)
    n_samples = int(n_samples)
    seed = new_seed() if seed is None else int(seed)
    if device is not None:
        device = torch.device(device)
    mat = parse_theta(
        spec, theta, dtype=dtype, device=device, allow_out_of_bounds=allow_out_of_bounds
    )
    device = mat.device
    n_sets = mat.shape[0]
    n_steps = int(round(max_t / dt))
    total = n_sets * n_samples
    chunk = int(chunk_size) if chunk_size is not None else DEFAULT_CHUNK
    rt = torch.empty(total, dtype=dtype, device=device)
    resp = torch.empty(total, dtype=torch.int64, device=device)
    fin = torch.empty(total, dtype=torch.bool, device=device)
    names = spec.param_names
    if callable(spec.simulator):
        params = {n: mat[:, i] for i, n in enumerate(names)}
        r, c = spec.simulator(
            params, n_samples, dt=dt, max_t=max_t, seed=seed, device=device, dtype=dtype
        )
        rt_m = torch.as_tensor(r, dtype=dtype, device=device).reshape(n_sets, n_samples)
        resp_m = torch.as_tensor(c, device=device).to(torch.int64).reshape(n_sets, n_samples)
        omitted = rt_m == OMITTED_RT
        return SimulationResult(
            rt_m, resp_m, omitted, mat, spec.name, float(dt), float(max_t), seed, chosen
        )
    sampler = SAMPLERS[spec.simulator]

    def run(start: int, stop: int) -> None:
        g = torch.arange(start, stop, device=device)
        set_idx = g // n_samples
        trial_idx = g % n_samples
        k1, k2 = trial_keys(seed, set_idx, trial_idx)
        rows = mat.index_select(0, set_idx)
        params = {n: rows[:, i] for i, n in enumerate(names)}
        with compiled_blocks(compile):
            r, c, f = sampler(
                spec, params, {"k1": k1, "k2": k2}, n_steps=n_steps, dt=float(dt), method=chosen
            )
        rt[start:stop] = r
        resp[start:stop] = c
        fin[start:stop] = f

    _run_chunks(run, _chunks(total, chunk, workers), workers)
    omitted = ~fin
    rt = torch.where(omitted, torch.full_like(rt, OMITTED_RT), rt)
    resp = torch.where(omitted, torch.full_like(resp, OMITTED_RESPONSE), resp)
    if bool(omitted.any()):
        log.info(
            "%s: %d of %d trials made no decision by max_t=%g",
            spec.name,
            int(omitted.sum()),
            total,
            max_t,
        )
    return SimulationResult(
        rt.reshape(n_sets, n_samples),
        resp.reshape(n_sets, n_samples),
        omitted.reshape(n_sets, n_samples),
        mat,
        spec.name,
        float(dt),
        float(max_t),
        seed,
        chosen,
    )
