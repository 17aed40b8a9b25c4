"""Quantile-probability plots: RT quantiles against response proportions.

Each (condition, response) cell is one column of points: its x position is the share of the
condition's trials that gave that response, its y values the RT quantiles of those trials.
Observed cells are drawn as markers; the predictive draws give, per cell, a proportion and
quantiles per draw, summarised as medians with central intervals (``predicted="interval"``)
or shown as a cloud of per-draw points (``predicted="cloud"``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from hssm_torch.plotting._inputs import (
    condition_masks,
    figure_of,
    interval_bounds,
    resolve_inputs,
    valid_rt,
)

__all__ = ["plot_quantile_probability", "quantile_probability_table"]

logger = logging.getLogger(__name__)

_DISPLAYS = ("interval", "cloud")


def _cell_stats(
    values: np.ndarray, choices: Sequence[int], quantiles: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Proportions ``(S, K)`` and RT quantiles ``(S, K, Q)`` of ``values`` ``(S, M, 2)``.

    Proportions are over all ``M`` trials (missing RTs included: their response is known);
    quantiles use the valid RTs only and are NaN where a cell has none.
    """
    n_sets, n_trials = values.shape[:2]
    props = np.full((n_sets, len(choices)), np.nan)
    quants = np.full((n_sets, len(choices), quantiles.size), np.nan)
    if n_trials == 0:
        return props, quants
    ok = valid_rt(values)
    for k, c in enumerate(choices):
        is_c = values[..., 1] == c
        props[:, k] = is_c.sum(axis=1) / n_trials
        for s in range(n_sets):
            rt = values[s, is_c[s] & ok[s], 0]
            if rt.size:
                quants[s, k] = np.quantile(rt, quantiles)
    return props, quants


def _summaries(x: np.ndarray, q: tuple[float, float]) -> np.ndarray:
    """``(3, ...)``: lower, median and upper over axis 0, ignoring NaN draws."""
    out = np.full((3,) + x.shape[1:], np.nan)
    flat_x = x.reshape(x.shape[0], -1)
    flat_out = out.reshape(3, -1)
    for i in range(flat_x.shape[1]):
        col = flat_x[:, i]
        col = col[np.isfinite(col)]
        if col.size:
            flat_out[:, i] = np.quantile(col, [q[0], 0.5, q[1]])
    return out


def quantile_probability_table(
    model: Any = None,
    idata: Any = None,
    *,
    data: pd.DataFrame | None = None,
    group: str = "posterior_predictive",
    cond: str | None = None,
    quantiles: Sequence[float] = (0.1, 0.3, 0.5, 0.7, 0.9),
    n_draws: int | None = 100,
    ci: float = 0.94,
    seed: int | None = 0,
) -> pd.DataFrame:
    """The numbers behind :func:`plot_quantile_probability`, one row per cell and quantile.

    Columns: ``cond`` level (``None`` without ``cond``), ``response``, ``quantile``,
    ``n_obs`` (observed trials in the cell), ``obs_proportion``, ``obs_rt``, and for the
    predictions ``pred_proportion_{lo,median,hi}`` and ``pred_rt_{lo,median,hi}`` (central
    ``ci`` interval across draws).

    Example
    -------
    >>> import arviz as az, numpy as np
    >>> rng = np.random.default_rng(0)
    >>> def fake(*shape):
    ...     return np.stack([0.3 + rng.gamma(2, 0.2, shape), rng.choice([-1, 1], shape)], -1)
    >>> idata = az.from_dict(
    ...     posterior_predictive={"rt,response": fake(1, 10, 50)},
    ...     observed_data={"rt,response": fake(50)},
    ...     dims={"rt,response": ["__obs__", "rt,response_dim"]})
    >>> quantile_probability_table(idata=idata).shape
    (10, 12)
    """
    q = interval_bounds(ci)
    levels_q = np.asarray(quantiles, dtype=float)
    if levels_q.ndim != 1 or levels_q.size == 0 or np.any((levels_q <= 0) | (levels_q >= 1)):
        raise ValueError(f"quantiles: expected probabilities in (0, 1), got {list(quantiles)}")
    inputs = resolve_inputs(model, idata, data=data, group=group, n_draws=n_draws, seed=seed)
    predicted = inputs.predicted
    rows = []
    for level, mask in condition_masks(inputs.data, cond, "cond", inputs.observed.shape[0]):
        obs_p, obs_q = _cell_stats(inputs.observed[mask][None], inputs.choices, levels_q)
        pred_p, pred_q = _cell_stats(predicted[:, mask], inputs.choices, levels_q)
        sum_p, sum_q = _summaries(pred_p, q), _summaries(pred_q, q)
        for k, c in enumerate(inputs.choices):
            n_obs = int((inputs.observed[mask, 1] == c).sum())
            for j, lev in enumerate(levels_q):
                rows.append(
                    {
                        "cond": level,
                        "response": c,
                        "quantile": float(lev),
                        "n_obs": n_obs,
                        "obs_proportion": obs_p[0, k],
                        "obs_rt": obs_q[0, k, j],
                        "pred_proportion_lo": sum_p[0, k],
                        "pred_proportion_median": sum_p[1, k],
                        "pred_proportion_hi": sum_p[2, k],
                        "pred_rt_lo": sum_q[0, k, j],
                        "pred_rt_median": sum_q[1, k, j],
                        "pred_rt_hi": sum_q[2, k, j],
                    }
                )
    return pd.DataFrame(rows)


def plot_quantile_probability(
    model: Any = None,
    idata: Any = None,
    *,
    data: pd.DataFrame | None = None,
    group: str = "posterior_predictive",
    cond: str | None = None,
    quantiles: Sequence[float] = (0.1, 0.3, 0.5, 0.7, 0.9),
    n_draws: int | None = 100,
    ci: float = 0.94,
    predicted: str = "interval",
    seed: int | None = 0,
    ax: Axes | None = None,
) -> Figure:
    """Plot RT quantiles against response proportions, data against predictions.

    Parameters
    ----------
    model, idata, data, group:
        As in :func:`~hssm_torch.plotting.plot_predictive`.
    cond:
        A column of ``data`` whose levels are the conditions (``None``: all trials form one
        condition).
    quantiles:
        RT quantile levels, each in (0, 1).
    n_draws:
        At most this many predictive draws (chosen at random with ``seed``).
    ci:
        Mass of the central interval across draws.
    predicted:
        ``"interval"``: per cell and quantile, the median over draws with ``ci`` error bars
        in both proportion and RT, joined by one line per quantile level; ``"cloud"``: one
        faint point per draw, plus the median line.
    seed:
        Seed for choosing the draws.
    ax:
        Draw into this axes instead of a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure. Per quantile level the axes hold one observed ``Line2D`` (markers only)
        and one predicted median ``Line2D``; ``"interval"`` adds two ``LineCollection`` s
        (error bars), ``"cloud"`` one ``PathCollection``.

    Notes
    -----
    Proportions count every trial of the condition (also those with a missing RT);
    quantiles use trials with a valid RT. Cells without trials are not drawn.

    Example
    -------
    >>> import arviz as az, numpy as np
    >>> rng = np.random.default_rng(0)
    >>> def fake(*shape):
    ...     return np.stack([0.3 + rng.gamma(2, 0.2, shape), rng.choice([-1, 1], shape)], -1)
    >>> idata = az.from_dict(
    ...     posterior_predictive={"rt,response": fake(1, 10, 50)},
    ...     observed_data={"rt,response": fake(50)},
    ...     dims={"rt,response": ["__obs__", "rt,response_dim"]})
    >>> fig = plot_quantile_probability(idata=idata)
    """
    if predicted not in _DISPLAYS:
        raise ValueError(f"predicted: expected one of {list(_DISPLAYS)}, got {predicted!r}")
    table = quantile_probability_table(
        model,
        idata,
        data=data,
        group=group,
        cond=cond,
        quantiles=quantiles,
        n_draws=n_draws,
        ci=ci,
        seed=seed,
    )
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
    else:
        fig = figure_of(ax)
    levels_q = sorted(table["quantile"].unique())
    colors = plt.get_cmap("viridis")(np.linspace(0.05, 0.85, len(levels_q)))
    cloud: list[tuple[np.ndarray, np.ndarray]] = []
    if predicted == "cloud":
        inputs = resolve_inputs(model, idata, data=data, group=group, n_draws=n_draws, seed=seed)
        draws = inputs.predicted
        for _level, mask in condition_masks(inputs.data, cond, "cond", inputs.observed.shape[0]):
            cloud.append(_cell_stats(draws[:, mask], inputs.choices, np.asarray(levels_q)))
    for j, (lev, color) in enumerate(zip(levels_q, colors)):
        rows = table[table["quantile"] == lev].sort_values("pred_proportion_median")
        if predicted == "interval":
            xerr = np.abs(
                rows[["pred_proportion_lo", "pred_proportion_hi"]].to_numpy().T
                - rows["pred_proportion_median"].to_numpy()
            )
            yerr = np.abs(
                rows[["pred_rt_lo", "pred_rt_hi"]].to_numpy().T - rows["pred_rt_median"].to_numpy()
            )
            ax.errorbar(
                rows["pred_proportion_median"],
                rows["pred_rt_median"],
                xerr=xerr,
                yerr=yerr,
                fmt="none",
                ecolor=color,
                elinewidth=1.0,
                alpha=0.7,
            )
        else:
            xs = np.concatenate([p.ravel() for p, _ in cloud])
            ys = np.concatenate([qv[:, :, j].ravel() for _, qv in cloud])
            ax.scatter(xs, ys, s=6, color=color, alpha=0.15, linewidths=0)
        ax.plot(
            rows["pred_proportion_median"],
            rows["pred_rt_median"],
            "-",
            color=color,
            linewidth=1.4,
            label=f"q = {lev:g}",
        )
        obs_rows = rows.sort_values("obs_proportion")
        ax.plot(
            obs_rows["obs_proportion"],
            obs_rows["obs_rt"],
            ls="none",
            marker="o",
            markersize=6,
            markerfacecolor=color,
            markeredgecolor="black",
        )
    if cond is not None:
        top = table[table["quantile"] == levels_q[-1]]
        for _, row in top.iterrows():
            heights = [h for h in (row["obs_rt"], row["pred_rt_hi"]) if np.isfinite(h)]
            if heights and np.isfinite(row["obs_proportion"]):
                y = max(heights)
                ax.annotate(
                    f"{row['cond']}",
                    (row["obs_proportion"], y),
                    xytext=(0, 4),
                    textcoords="offset points",
                    ha="center",
                    fontsize=7,
                    color="dimgray",
                )
        bottom, top_y = ax.get_ylim()
        ax.set_ylim(bottom, top_y + 0.08 * (top_y - bottom))  # room for the labels
    handles, labels = ax.get_legend_handles_labels()
    handles.append(
        Line2D([], [], ls="none", marker="o", markerfacecolor="white", markeredgecolor="black")
    )
    labels.append("observed")
    spread = f"{ci:.0%} interval" if predicted == "interval" else "draws"
    ax.legend(
        handles,
        labels,
        title=f"predicted median, {spread}",
        fontsize="small",
        title_fontsize="small",
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
    )
    ax.set_xlim(-0.03, 1.03)
    ax.set_xlabel("response proportion")
    ax.set_ylabel("RT quantile (s)")
    source = "posterior" if group == "posterior_predictive" else "prior"
    ax.set_title(f"Quantile-probability plot ({source} predictive)")
    return fig
