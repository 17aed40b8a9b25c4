"""Predictive checks: observed against predicted RT distributions.

For two-choice models coded ``-1``/``1`` the plot shows the *signed* RT ``rt * response``
(lower-boundary responses to the left of zero, upper ones to the right); for n-choice
models it shows one panel per response.  Densities are *defective*: each response's area
equals its proportion of the trials, so the choice proportions are visible too.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy.ndimage import gaussian_filter1d

from hssm_torch.plotting._inputs import (
    condition_masks,
    figure_of,
    interval_bounds,
    resolve_inputs,
    valid_rt,
)

__all__ = ["plot_predictive"]

logger = logging.getLogger(__name__)

_KINDS = ("hist", "kde")
_OBS_STYLE: dict[str, Any] = {"color": "black", "linewidth": 1.6}
_PRED_COLOR = "tab:blue"
_KDE_GRID = 256


def _rt_range(observed: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    """RT range covering every observed RT and 99.8% of the predicted ones."""
    obs_rt = observed[valid_rt(observed), 0]
    pred_rt = predicted[valid_rt(predicted)][:, 0]
    lo, hi = [], []
    if obs_rt.size:
        lo.append(obs_rt.min())
        hi.append(obs_rt.max())
    if pred_rt.size:
        q_lo, q_hi = np.quantile(pred_rt, [0.001, 0.999])
        lo.append(q_lo)
        hi.append(q_hi)
    if not lo:
        raise ValueError("rt: no finite, non-missing RTs in the observed or predicted data")
    lo_v, hi_v = float(min(lo)), float(max(hi))
    if hi_v <= lo_v:
        hi_v = lo_v + 1.0
    return max(0.0, lo_v), hi_v


def _hist(values: np.ndarray, choice: int, edges: np.ndarray) -> np.ndarray:
    """Defective histogram density of ``values`` (``(..., M, 2)``) for one response.

    Normalised by the number of trials ``M`` (invalid and out-of-range RTs count in ``M``
    but fall in no bin), so the areas over all responses sum to the share of valid RTs.
    """
    lead = values.shape[:-2]
    flat = values.reshape(-1, values.shape[-2], 2)
    n_trials = flat.shape[1]
    n_bins = edges.size - 1
    keep = valid_rt(flat) & (flat[..., 1] == choice)
    idx = np.searchsorted(edges, flat[..., 0], side="right") - 1
    idx[flat[..., 0] == edges[-1]] = n_bins - 1
    keep &= (idx >= 0) & (idx < n_bins)
    rows = np.broadcast_to(np.arange(flat.shape[0])[:, None], idx.shape)
    counts = np.bincount((rows * n_bins + idx)[keep], minlength=flat.shape[0] * n_bins).reshape(
        flat.shape[0], n_bins
    )
    density = counts / (max(n_trials, 1) * np.diff(edges))
    return density.reshape(*lead, n_bins)


def _bandwidth(rt: np.ndarray) -> float:
    """Silverman's rule of thumb."""
    if rt.size < 2:
        return float("nan")
    sd = rt.std(ddof=1)
    iqr = np.subtract(*np.quantile(rt, [0.75, 0.25])) / 1.34
    scale = min(sd, iqr) if iqr > 0 else sd
    return float(0.9 * scale * rt.size ** (-0.2))


def _kde(values: np.ndarray, choice: int, grid: np.ndarray, bandwidth: float) -> np.ndarray:
    """Defective Gaussian KDE (binned on ``grid``, then smoothed) for one response."""
    step = grid[1] - grid[0]
    edges = np.concatenate([grid - step / 2, [grid[-1] + step / 2]])
    dens = _hist(values, choice, edges)
    return gaussian_filter1d(dens, sigma=bandwidth / step, axis=-1, mode="constant")


def _signed(
    x_lower: np.ndarray,
    y_lower: np.ndarray,
    x_upper: np.ndarray,
    y_upper: np.ndarray,
    *,
    edges: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Mirror the lower-boundary curve to negative RTs and join it to the upper one."""
    if edges:
        x = np.concatenate([-x_lower[::-1], x_upper])
        y = np.concatenate(
            [y_lower[..., ::-1], np.zeros(y_lower.shape[:-1] + (1,)), y_upper], axis=-1
        )
        if x_lower[0] <= 0:  # no gap between -rt_min and rt_min: drop the empty middle bin
            x = np.concatenate([-x_lower[::-1], x_upper[1:]])
            y = np.concatenate([y_lower[..., ::-1], y_upper], axis=-1)
        return x, y
    x = np.concatenate([-x_lower[::-1], [np.nan], x_upper])
    nan = np.full(y_lower.shape[:-1] + (1,), np.nan)
    return x, np.concatenate([y_lower[..., ::-1], nan, y_upper], axis=-1)


def _draw_panel(
    ax: Axes,
    x: np.ndarray,
    obs: np.ndarray,
    pred: np.ndarray,
    *,
    kind: str,
    q: tuple[float, float],
    ci: float,
) -> None:
    """Observed curve, predicted median and the central ``ci`` band across draws."""
    med = np.median(pred, axis=0)
    if kind == "hist":
        if pred.shape[0] > 1:
            lo, hi = np.quantile(pred, q, axis=0)
            ax.stairs(
                hi,
                x,
                baseline=lo,
                fill=True,
                color=_PRED_COLOR,
                alpha=0.3,
                label=f"predicted {ci:.0%} interval",
            )
        ax.stairs(med, x, color=_PRED_COLOR, linewidth=1.4, label="predicted median")
        ax.stairs(obs, x, label="observed", **_OBS_STYLE)
    else:
        if pred.shape[0] > 1:
            lo, hi = np.quantile(pred, q, axis=0)
            ax.fill_between(
                x,
                lo,
                hi,
                color=_PRED_COLOR,
                alpha=0.3,
                linewidth=0,
                label=f"predicted {ci:.0%} interval",
            )
        ax.plot(x, med, color=_PRED_COLOR, linewidth=1.4, label="predicted median")
        ax.plot(x, obs, label="observed", **_OBS_STYLE)


def _level_label(col: str | None, level: Any) -> str:
    return "" if col is None else f"{col} = {level}"


def plot_predictive(
    model: Any = None,
    idata: Any = None,
    *,
    data: pd.DataFrame | None = None,
    group: str = "posterior_predictive",
    kind: str = "hist",
    bins: int | np.ndarray = 40,
    n_draws: int | None = 100,
    col: str | None = None,
    col_wrap: int = 3,
    ci: float = 0.94,
    seed: int | None = 0,
    ax: Axes | None = None,
) -> Figure:
    """Plot observed against predicted RT densities, with credible bands across draws.

    Parameters
    ----------
    model:
        An HSSM-like object (its ``.traces`` / ``.idata`` and ``.data`` are used when
        ``idata`` / ``data`` are not given) or an ``InferenceData``; may be ``None``.
    idata:
        ``InferenceData`` holding ``group`` (``"rt,response"`` with dims ``chain, draw,
        __obs__, rt,response_dim``) and, normally, ``observed_data``.
    data:
        The data frame aligned with ``__obs__`` (for ``col``, and for the observed values
        when ``idata`` has no ``observed_data``).
    group:
        ``"posterior_predictive"`` or ``"prior_predictive"``.
    kind:
        ``"hist"`` (step histograms) or ``"kde"`` (Gaussian kernel density, Silverman
        bandwidth from the observed RTs of each response, shared by all draws).
    bins:
        Number of bins over the RT range, or an increasing array of RT bin edges (seconds,
        applied to each response). Ignored by ``kind="kde"``, which uses a 256-point grid.
    n_draws:
        At most this many predictive draws (chosen at random with ``seed``); ``None`` = all.
    col:
        A column of ``data``: one panel per level (two-choice models), or one column of
        panels per level (n-choice models, one row per response; without ``col`` the
        responses stand side by side).
    col_wrap:
        Panels per row for two-choice facets.
    ci:
        Mass of the central interval across draws shown as a band.
    seed:
        Seed for choosing the draws.
    ax:
        Draw into this axes (only when the plot has a single panel).

    Returns
    -------
    matplotlib.figure.Figure
        The figure; ``fig.axes`` are the panels in reading order.

    Notes
    -----
    The RT range covers every observed RT and the central 99.8% of predicted RTs; predicted
    mass outside it is not drawn but still counts in the normalisation. Trials whose observed
    RT is missing (``-999``) are left out of observed *and* predicted densities (logged);
    predicted trials without a finite RT count in the normalisation but in no bin.

    Example
    -------
    >>> import arviz as az, numpy as np
    >>> rng = np.random.default_rng(0)
    >>> def fake(*shape):
    ...     return np.stack([0.3 + rng.gamma(2, 0.2, shape), rng.choice([-1, 1], shape)], -1)
    >>> idata = az.from_dict(
    ...     posterior_predictive={"rt,response": fake(2, 20, 100)},
    ...     observed_data={"rt,response": fake(100)},
    ...     dims={"rt,response": ["__obs__", "rt,response_dim"]})
    >>> fig = plot_predictive(idata=idata)
    >>> len(fig.axes)
    1
    """
    if kind not in _KINDS:
        raise ValueError(f"kind: expected one of {list(_KINDS)}, got {kind!r}")
    if not isinstance(col_wrap, int) or col_wrap < 1:
        raise ValueError(f"col_wrap: expected a positive integer, got {col_wrap!r}")
    q = interval_bounds(ci)
    inputs = resolve_inputs(model, idata, data=data, group=group, n_draws=n_draws, seed=seed)
    observed = inputs.observed
    predicted = inputs.predicted
    levels = condition_masks(inputs.data, col, "col", observed.shape[0])

    ok_obs = valid_rt(observed)
    n_missing = int((~ok_obs).sum())
    if n_missing:
        logger.info("plot_predictive: %d trials with a missing observed RT left out", n_missing)
    n_bad_pred = int((~valid_rt(predicted[:, ok_obs])).sum())
    if n_bad_pred:
        logger.info(
            "plot_predictive: %d predicted trials without a finite RT (counted in the "
            "normalisation, drawn in no bin)",
            n_bad_pred,
        )

    lo, hi = _rt_range(observed[ok_obs], predicted[:, ok_obs])
    if kind == "hist":
        if isinstance(bins, (int, np.integer)):
            if bins < 1:
                raise ValueError(f"bins: expected a positive integer or edges, got {bins}")
            x_rt = np.linspace(lo, hi, int(bins) + 1)
        else:
            x_rt = np.asarray(bins, dtype=float)
            if x_rt.ndim != 1 or x_rt.size < 2 or np.any(np.diff(x_rt) <= 0) or x_rt[0] < 0:
                raise ValueError("bins: expected non-negative, strictly increasing RT edges")

    choices = inputs.choices
    signed = inputs.signed
    n_levels = len(levels)
    if signed:
        n_panels = n_levels
        ncols = min(n_levels, col_wrap)
        nrows = math.ceil(n_levels / ncols)
    else:
        n_panels = n_levels * len(choices)
        # one row per response and one column per level; without levels, responses side by side
        ncols, nrows = (n_levels, len(choices)) if n_levels > 1 else (len(choices), 1)
    if ax is not None:
        if n_panels != 1:
            raise ValueError(
                f"ax: this plot needs {n_panels} panels (col={col!r}, {len(choices)} "
                "responses); leave ax=None"
            )
        fig = figure_of(ax)
        axes = np.array([[ax]])
    else:
        fig, axes = plt.subplots(
            nrows,
            ncols,
            figsize=(4.2 * ncols, 3.0 * nrows + 0.6),
            sharex=True,
            sharey=True,
            squeeze=False,
            layout="constrained",
        )
        title = (
            "Posterior predictive check"
            if group == "posterior_predictive"
            else ("Prior predictive check")
        )
        fig.suptitle(title)

    bandwidths: dict[int, float] = {}
    if kind == "kde":
        for c in choices:
            rt_c = observed[ok_obs & (observed[:, 1] == c), 0]
            bw = _bandwidth(rt_c)
            if not np.isfinite(bw) or bw <= 0:
                pred_c = predicted[:, ok_obs]
                pred_c = pred_c[valid_rt(pred_c) & (pred_c[..., 1] == c)][:, 0]
                bw = _bandwidth(pred_c)
            if not np.isfinite(bw) or bw <= 0:
                bw = (hi - lo) / 50
            bandwidths[c] = bw

    if kind == "kde":
        pad = 3.0 * max(bandwidths.values())
        x_rt = np.linspace(max(0.0, lo - pad), hi + pad, _KDE_GRID)

    def curves(values: np.ndarray, c: int) -> np.ndarray:
        if kind == "hist":
            return _hist(values, c, x_rt)
        return _kde(values, c, x_rt, bandwidths[c])

    for j, (level, mask) in enumerate(levels):
        sel = mask & ok_obs
        obs_l, pred_l = observed[sel], predicted[:, sel]
        if signed:
            panel = axes.flat[j]
            lower, upper = (-1, 1)
            x, obs_y = _signed(
                x_rt, curves(obs_l, lower), x_rt, curves(obs_l, upper), edges=kind == "hist"
            )
            _, pred_y = _signed(
                x_rt, curves(pred_l, lower), x_rt, curves(pred_l, upper), edges=kind == "hist"
            )
            _draw_panel(panel, x, obs_y, pred_y, kind=kind, q=q, ci=ci)
            panel.set_title(_level_label(col, level))
            panel.set_xlabel("signed RT: rt × response (s)")
            panel.set_ylabel("density")
        else:
            for i, c in enumerate(choices):
                panel = axes[i, j] if n_levels > 1 else axes[0, i]
                _draw_panel(panel, x_rt, curves(obs_l, c), curves(pred_l, c), kind=kind, q=q, ci=ci)
                label = _level_label(col, level)
                panel.set_title(f"response {c}" + (f", {label}" if label else ""))
                panel.set_xlabel("RT (s)")
                panel.set_ylabel("density")
    for extra in axes.flat[n_panels:]:
        fig.delaxes(extra)
    if ax is None:
        used = list(axes.flat[:n_panels])
        spans = [
            (p.get_subplotspec().rowspan.start, p.get_subplotspec().colspan.start) for p in used
        ]
        for panel, (row, column) in zip(used, spans):
            if any(c == column and r > row for r, c in spans):
                panel.set_xlabel("")
            else:  # the lowest panel of its column keeps its tick labels (wrapped facets)
                panel.xaxis.set_tick_params(labelbottom=True)
            if column > 0:
                panel.set_ylabel("")
    fig.axes[0].legend(loc="upper left", fontsize="small", frameon=False)
    return fig
