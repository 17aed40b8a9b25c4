"""Model cartoon: what a single-accumulator two-choice diffusion model does.

One axes shows, on a time axis that starts at stimulus onset: the non-decision time as a
shaded band, the boundaries ``±b(t)`` (collapsing ones included, from the registry's
boundary function), the starting point, the noise-free trajectory implied by the drift, a
few simulated evidence paths, and the predicted RT histograms of the two responses drawn
above the upper and below the lower boundary (areas proportional to the choice
probabilities).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import math
from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from hssm_torch.plotting._inputs import figure_of
from simulators import ModelSpec, get_model

__all__ = ["SUPPORTED_KINDS", "plot_model_cartoon", "simulate_paths"]

logger = logging.getLogger(__name__)

#: Simulator kinds the cartoon can draw (single accumulator, two boundaries).
SUPPORTED_KINDS = ("ddm", "levy", "ornstein")
_UPPER_COLOR = "tab:blue"
_BLOCK = 512  # Euler steps simulated per vectorised block
_LOWER_COLOR = "tab:red"


def _check_spec(model: str | ModelSpec) -> ModelSpec:
    spec = get_model(model)
    if (
        not isinstance(spec.simulator, str)
        or spec.simulator not in SUPPORTED_KINDS
        or tuple(spec.choices) != (-1, 1)
    ):
        kind = spec.simulator if isinstance(spec.simulator, str) else "a user callable"
        raise ValueError(
            f"model: plot_model_cartoon supports single-accumulator two-choice diffusions "
            f"(simulator kinds {list(SUPPORTED_KINDS)} with choices (-1, 1)); model "
            f"{spec.name!r} has simulator kind {kind!r} and choices {spec.choices}"
        )
    return spec


def _theta_values(spec: ModelSpec, theta: Mapping[str, Any]) -> dict[str, float]:
    if not isinstance(theta, Mapping):
        raise TypeError(f"theta: expected a dict of parameter values, got {type(theta).__name__}")
    unknown = sorted(set(theta) - set(spec.param_names))
    if unknown:
        raise ValueError(
            f"theta: unknown parameter(s) {unknown} for model {spec.name!r} (parameters: "
            f"{list(spec.param_names)})"
        )
    missing = [n for n in spec.required_param_names if n not in theta]
    if missing:
        raise ValueError(f"theta: missing parameter(s) {missing} of model {spec.name!r}")
    values: dict[str, float] = {}
    for p in spec.params:
        raw = theta.get(p.name, p.default)
        try:
            val = float(np.asarray(raw, dtype=float).reshape(()))
        except (TypeError, ValueError):
            raise ValueError(f"theta[{p.name!r}]: expected one number, got {raw!r}") from None
        lo, hi = p.support  # type: ignore[misc]
        if not math.isfinite(val) or not lo <= val <= hi:
            raise ValueError(
                f"theta[{p.name!r}] = {val} is outside the support [{lo}, {hi}] of model "
                f"{spec.name!r}"
            )
        values[p.name] = val
    if not 0.0 < values["z"] < 1.0:
        raise ValueError(f"theta['z'] = {values['z']}: expected a value in (0, 1)")
    if values["a"] <= 0:
        raise ValueError(f"theta['a'] = {values['a']}: expected a value > 0")
    return values


def _stable(alpha: float, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Symmetric alpha-stable draws (Chambers-Mallows-Stuck, unit scale)."""
    u = (torch.rand(shape, generator=generator, dtype=torch.float64) - 0.5) * math.pi
    w = -torch.log1p(-torch.rand(shape, generator=generator, dtype=torch.float64))
    if abs(alpha - 1.0) < 1e-12:
        return torch.tan(u)
    return (
        torch.sin(alpha * u)
        / torch.cos(u) ** (1.0 / alpha)
        * (torch.cos((1.0 - alpha) * u) / w) ** ((1.0 - alpha) / alpha)
    )


def simulate_paths(
    model: str | ModelSpec,
    theta: Mapping[str, Any],
    n: int,
    *,
    dt: float = 1e-3,
    max_t: float = 20.0,
    seed: int | None = 0,
    record: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Euler simulation of a single-accumulator two-choice diffusion, keeping some paths.

    Follows the project's conventions: bounds ``±b(t)`` with ``b(0) = a``, start
    ``(2z - 1) a``, unit noise, total drift ``v(t)`` from the registry's drift function;
    ``ornstein`` adds ``g * x`` to the drift and ``levy`` uses alpha-stable increments
    ``dt ** (1 / alpha) * S``. Trial-to-trial variability, where the model has it: ``v``
    normal with sd ``sv``; ``z`` and ``t`` uniform with ranges ``sz`` and ``st`` centred on
    ``z`` and ``t``. A trial ends when the particle reaches a bound (or the bound height
    reaches zero: it then ends on the side the particle is on).

    Parameters
    ----------
    model:
        Registry name or spec of a supported model (see :data:`SUPPORTED_KINDS`).
    theta:
        Parameter values by name.
    n:
        Number of trials.
    dt, max_t:
        Step and horizon (seconds of decision time).
    seed:
        Seed of the torch generator.
    record:
        How many of the trials' paths to return.

    Returns
    -------
    rt, response, paths
        ``rt`` ``(n,)`` in seconds including the non-decision time (NaN when no bound was
        reached by ``max_t``), ``response`` ``(n,)`` in ``{-1, 1}`` (0 when unfinished),
        ``paths`` ``(record, steps + 1)`` evidence on the grid ``dt * arange(steps + 1)``
        (NaN after the trial ended; the last value is placed on the bound reached).

    Example
    -------
    >>> rt, resp, paths = simulate_paths("ddm", {"v": 1, "a": 1, "z": 0.5, "t": 0.3}, 100,
    ...                                  record=2, max_t=5)
    >>> paths.shape[0], set(resp.tolist()) <= {-1, 1}
    (2, True)
    """
    spec = _check_spec(model)
    th = _theta_values(spec, theta)
    if n < 1 or record < 0 or record > n:
        raise ValueError(f"n / record: expected n >= 1 and 0 <= record <= n, got {n}, {record}")
    if dt <= 0 or max_t <= 0:
        raise ValueError(f"dt / max_t: expected positive values, got {dt}, {max_t}")
    gen = torch.Generator().manual_seed(0 if seed is None else int(seed))
    f64 = torch.float64
    a = th["a"]
    v_i = th["v"] + th.get("sv", 0.0) * torch.randn(n, generator=gen, dtype=f64)
    z_i = th["z"] + th.get("sz", 0.0) * (torch.rand(n, generator=gen, dtype=f64) - 0.5)
    t_i = th["t"] + th.get("st", 0.0) * (torch.rand(n, generator=gen, dtype=f64) - 0.5)
    n_steps = int(math.ceil(max_t / dt))
    grid = torch.arange(n_steps + 1, dtype=f64) * dt
    bound = spec.boundary_fn()(
        grid,
        torch.tensor(a, dtype=f64),
        *(torch.tensor(th[p], dtype=f64) for p in spec.boundary_params or ()),
    )
    drift = spec.drift_fn()(
        grid,
        torch.tensor(th["v"], dtype=f64),
        *(torch.tensor(th[p], dtype=f64) for p in spec.drift_params or ()),
    )
    offset = v_i - th["v"]
    g = th.get("g", 0.0) if spec.simulator == "ornstein" else 0.0
    alpha = th.get("alpha", 2.0) if spec.simulator == "levy" else 2.0
    noise_scale = dt ** (1.0 / alpha) if spec.simulator == "levy" else math.sqrt(dt)
    # Euler step x' = r x + u with r = 1 + g dt (r = 1 without leak) and u the drift and noise
    # increment; over a block of m steps x_j = r^j (x_0 + sum_{i<j} r^-(i+1) u_i), evaluated
    # with a cumulative sum (blocks short enough that r^(+-m) stays moderate).
    ratio = 1.0 + g * dt
    if ratio <= 0:
        raise ValueError(f"dt: {dt} is too large for the leak g = {g} (need 1 + g*dt > 0)")
    log_r = math.log(ratio)
    block = _BLOCK if log_r == 0 else max(1, min(_BLOCK, int(10.0 / abs(log_r))))

    y = (2.0 * z_i - 1.0) * a
    rt = torch.full((n,), float("nan"), dtype=f64)
    resp = torch.zeros(n, dtype=f64)
    done = torch.zeros(n, dtype=torch.bool)
    paths = torch.full((record, n_steps + 1), float("nan"), dtype=f64)
    paths[:, 0] = y[:record]
    k = 0
    last = 0
    while k < n_steps and not bool(done.all()):
        m = min(block, n_steps - k)
        idx = torch.nonzero(~done).squeeze(1)
        shape = (idx.numel(), m)
        if spec.simulator == "levy":
            noise = _stable(alpha, shape, gen)
        else:
            noise = torch.randn(shape, generator=gen, dtype=f64)
        u = (drift[k : k + m] + offset[idx, None]) * dt + noise_scale * noise
        j = torch.arange(1, m + 1, dtype=f64)
        traj = ratio**j * (y[idx, None] + torch.cumsum(ratio ** (-j) * u, dim=1))
        b = bound[k + 1 : k + m + 1]
        up, low = traj >= b, traj <= -b
        hit = up | low
        hit_any = hit.any(dim=1)
        first = torch.argmax(hit.to(torch.int8), dim=1)
        y_end = traj.gather(1, first[:, None]).squeeze(1)
        up_end = up.gather(1, first[:, None]).squeeze(1)
        low_end = low.gather(1, first[:, None]).squeeze(1)
        side = torch.where(
            up_end & ~low_end,
            1.0,
            torch.where(low_end & ~up_end, -1.0, torch.where(y_end >= 0, 1.0, -1.0)),
        )
        ended = idx[hit_any]
        rt[ended] = grid[k + 1 + first[hit_any]] + t_i[ended]
        resp[ended] = side[hit_any].to(f64)
        if record:
            for row in torch.nonzero(idx < record).squeeze(1).tolist():
                trial = int(idx[row])
                stop = int(first[row]) + 1 if bool(hit_any[row]) else m
                paths[trial, k + 1 : k + 1 + stop] = traj[row, :stop]
                if bool(hit_any[row]):
                    paths[trial, k + stop] = float(side[row]) * b[stop - 1]
                    last = max(last, k + stop)
        y[idx] = traj[:, -1]
        done[ended] = True
        k += m
    if bool(done[:record].all()):
        paths = paths[:, : last + 1]
    return rt.numpy(), resp.numpy(), paths.numpy()


def _predicted_rts(
    spec: ModelSpec, th: dict[str, float], n: int, *, dt: float, max_t: float, seed: int | None
) -> tuple[np.ndarray, np.ndarray, str]:
    """RTs and responses for the histograms: the library simulator when it is installed."""
    try:
        module = importlib.import_module("simulators.simulate")
    except ModuleNotFoundError as err:
        if err.name != "simulators.simulate":
            raise
        module = None
    if module is not None and hasattr(module, "simulate"):
        options = {}
        if "allow_out_of_bounds" in inspect.signature(module.simulate).parameters:
            options["allow_out_of_bounds"] = True  # any value in the support may be drawn
        result = module.simulate(spec, th, n, dt=dt, max_t=max_t, seed=seed, **options)
        rt = np.asarray(torch.as_tensor(result.rt).detach().cpu(), dtype=float).reshape(-1)
        resp = np.asarray(torch.as_tensor(result.response).detach().cpu(), dtype=float).reshape(-1)
        return rt, resp, "simulators.simulate"
    rt, resp, _ = simulate_paths(spec, th, n, dt=dt, max_t=max_t, seed=seed)
    return rt, resp, "simulate_paths"


def plot_model_cartoon(
    model: str | ModelSpec,
    theta: Mapping[str, Any],
    *,
    n_paths: int = 8,
    n_samples: int = 4000,
    bins: int = 40,
    seed: int | None = 0,
    max_t: float | None = None,
    dt: float = 1e-3,
    ax: Axes | None = None,
) -> Figure:
    """Draw a model cartoon: boundaries, drift, start point, non-decision time, paths, RTs.

    Parameters
    ----------
    model:
        Registry name or :class:`~simulators.ModelSpec` of a single-accumulator two-choice
        diffusion (simulator kinds ``ddm``, ``levy``, ``ornstein``: e.g. ``ddm``,
        ``angle``, ``weibull``, ``levy``, ``ornstein``, ``gamma_drift``, ``full_ddm``).
    theta:
        Parameter values by name (optional parameters may be left out).
    n_paths:
        Number of sample paths drawn (seeded Euler simulation, :func:`simulate_paths`).
    n_samples:
        Trials simulated for the RT histograms (with ``simulators.simulate`` when that module
        is installed, otherwise with :func:`simulate_paths`).
    bins:
        Number of histogram bins between the shortest RT (or ``t``) and the right edge of
        the time axis.
    seed:
        Seed for the paths and the histogram trials.
    max_t:
        Right edge of the time axis and simulation horizon (seconds). ``None``: simulate up
        to 20 s and show up to the 99th percentile of the simulated RTs.
    dt:
        Euler step (seconds).
    ax:
        Draw into this axes instead of a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure. The axes holds two boundary lines, the drift line, the start-point
        marker, ``n_paths`` path lines (``Line2D``), the non-decision-time band and two
        histogram ``StepPatch`` es.

    Raises
    ------
    ValueError
        For models of other simulator kinds (naming the supported ones), unknown or missing
        parameters, or values outside a parameter's support.

    Example
    -------
    >>> fig = plot_model_cartoon("angle", {"v": 1.0, "a": 1.2, "z": 0.5, "t": 0.3,
    ...                                    "theta": 0.5}, n_samples=300)
    >>> fig.axes[0].get_xlabel()
    'time since stimulus onset (s)'
    """
    spec = _check_spec(model)
    th = _theta_values(spec, theta)
    if n_paths < 0 or n_samples < 1 or bins < 1:
        raise ValueError(
            f"n_paths / n_samples / bins: expected n_paths >= 0, n_samples >= 1, bins >= 1; "
            f"got {n_paths}, {n_samples}, {bins}"
        )
    if max_t is not None and max_t <= th["t"]:
        raise ValueError(f"max_t: expected a value above t = {th['t']}, got {max_t}")
    horizon = 20.0 if max_t is None else float(max_t)

    rt, resp, source = _predicted_rts(spec, th, n_samples, dt=dt, max_t=horizon, seed=seed)
    finished = np.isfinite(rt) & (rt >= 0) & np.isin(resp, (-1, 1))
    n_unfinished = int((~finished).sum())
    if max_t is None:
        x_max = float(np.quantile(rt[finished], 0.99)) if finished.any() else th["t"] + 1.0
        x_max = max(x_max, th["t"] + 10 * dt)
    else:
        x_max = float(max_t)
    _, _, paths = simulate_paths(
        spec,
        th,
        max(n_paths, 1),
        dt=dt,
        max_t=horizon,
        seed=None if seed is None else seed + 1,
        record=n_paths,
    )

    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 4.6), layout="constrained")
    else:
        fig = figure_of(ax)
    t0 = th["t"]
    grid = np.arange(0.0, max(x_max - t0, 0.0) + dt, dt)
    g64 = torch.as_tensor(grid, dtype=torch.float64)
    b = spec.boundary_fn()(
        g64,
        torch.tensor(th["a"], dtype=torch.float64),
        *(torch.tensor(th[p], dtype=torch.float64) for p in spec.boundary_params or ()),
    ).numpy()
    b = np.broadcast_to(b, grid.shape).copy()
    if np.any(b <= 0):  # the process ends when the bound height reaches zero
        stop = int(np.argmax(b <= 0)) + 1
        grid, b = grid[:stop], b[:stop]
    top = float(max(np.max(b), th["a"]))

    ax.axvspan(0.0, t0, color="0.85", label=f"non-decision time t = {t0:g} s")
    ax.plot(t0 + grid, b, color="black", linewidth=1.8, label="boundaries ±b(t)")
    ax.plot(t0 + grid, -b, color="black", linewidth=1.8, label="_lower boundary")

    y0 = (2.0 * th["z"] - 1.0) * th["a"]
    drift = spec.drift_fn()(
        g64,
        torch.tensor(th["v"], dtype=torch.float64),
        *(torch.tensor(th[p], dtype=torch.float64) for p in spec.drift_params or ()),
    ).numpy()
    drift = np.broadcast_to(drift, g64.shape)
    g = th.get("g", 0.0) if spec.simulator == "ornstein" else 0.0
    mean_path = np.empty(grid.size)
    mean_path[0] = y0
    for k in range(grid.size - 1):
        mean_path[k + 1] = mean_path[k] + (drift[k] + g * mean_path[k]) * dt
    outside = np.abs(mean_path) >= b
    end = int(np.argmax(outside)) + 1 if outside.any() else grid.size
    ax.plot(
        t0 + grid[:end],
        np.clip(mean_path[:end], -b[:end], b[:end]),
        color="tab:orange",
        linewidth=2.0,
        linestyle="--",
        label="drift (noise-free path)",
    )

    path_t = t0 + np.arange(paths.shape[1]) * dt
    for path in paths[:n_paths]:
        last = path[np.isfinite(path)][-1]
        color = _UPPER_COLOR if last > 0 else _LOWER_COLOR
        ax.plot(path_t, path, color=color, linewidth=0.7, alpha=0.6, label="_sample path")
    ax.plot(
        [t0],
        [y0],
        marker="o",
        markersize=7,
        color="tab:orange",
        markeredgecolor="black",
        linestyle="none",
        label=f"start point (2z-1)a = {y0:.2g}",
    )

    start = min(t0, float(rt[finished].min())) if finished.any() else t0
    edges = np.linspace(max(0.0, min(start, x_max - dt)), x_max, bins + 1)
    widths = np.diff(edges)
    dens = {
        c: np.histogram(rt[finished & (resp == c)], bins=edges)[0] / (n_samples * widths)
        for c in (-1, 1)
    }
    peak = max(float(dens[-1].max()), float(dens[1].max()), 1e-12)
    height = 0.8 * th["a"]
    scale = height / peak
    p_up = float(np.mean(resp[finished] == 1)) if finished.any() else float("nan")
    ax.stairs(
        top + dens[1] * scale,
        edges,
        baseline=top,
        fill=True,
        color=_UPPER_COLOR,
        alpha=0.45,
        label=f"RTs, response 1 (p = {p_up:.2f})",
    )
    ax.stairs(
        -top - dens[-1] * scale,
        edges,
        baseline=-top,
        fill=True,
        color=_LOWER_COLOR,
        alpha=0.45,
        label=f"RTs, response -1 (p = {1 - p_up:.2f})",
    )
    if n_unfinished:
        ax.text(
            0.99,
            0.01,
            f"{n_unfinished} of {n_samples} trials reached no bound by {horizon:g} s",
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=7,
        )

    ax.set_xlim(0.0, x_max)
    ax.set_ylim(-(top + 1.1 * height), top + 1.1 * height)
    ax.set_yticks([-top, 0.0, top])
    ax.set_xlabel("time since stimulus onset (s)")
    ax.set_ylabel("evidence")
    shown = ", ".join(f"{k}={v:.3g}" for k, v in th.items())
    ax.set_title(f"{spec.name}: {shown}", fontsize="medium")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    logger.debug("plot_model_cartoon: histogram trials from %s", source)
    return fig
