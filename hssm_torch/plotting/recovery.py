"""Parameter recovery: posterior estimates against the true values that generated the data."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from hssm_torch.plotting._inputs import figure_of, interval_bounds

__all__ = ["plot_posterior_recovery", "recovery_table"]

logger = logging.getLogger(__name__)

_POINTS = ("mean", "median")
_INTERVAL_COLUMN = re.compile(r"^(hdi|eti)_([0-9.]+)%$")


def _truth_array(name: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    size = int(np.prod(shape)) if shape else 1
    if arr.size != size:
        raise ValueError(
            f"truth[{name!r}]: expected {size} value(s) (the posterior variable has shape "
            f"{shape}), got {arr.size}"
        )
    return arr.reshape(-1)


def _from_draws(
    draws: Mapping[str, np.ndarray], truth: Mapping[str, Any], point: str, q: tuple[float, float]
) -> list[dict]:
    """Rows from draws: each value ``(S, *shape)`` with draws along axis 0."""
    rows = []
    for name, value in truth.items():
        if name not in draws:
            raise ValueError(f"truth: no estimates for {name!r} (estimated: {sorted(draws)})")
        samples = np.asarray(draws[name], dtype=float)
        shape = samples.shape[1:]
        true = _truth_array(name, value, shape)
        flat = samples.reshape(samples.shape[0], -1)
        est = flat.mean(axis=0) if point == "mean" else np.median(flat, axis=0)
        lo, hi = np.quantile(flat, q, axis=0)
        for i in range(flat.shape[1]):
            label = name if flat.shape[1] == 1 else f"{name}[{i}]"
            rows.append(
                {
                    "variable": name,
                    "name": label,
                    "true": true[i],
                    "estimate": est[i],
                    "lower": lo[i],
                    "upper": hi[i],
                }
            )
    return rows


def _from_summary(
    summary: pd.DataFrame, truth: Mapping[str, Any], point: str
) -> tuple[list[dict], float]:
    """Rows from an ``az.summary``-style table (index = names, point and interval columns)."""
    bounds = []
    for column in summary.columns:
        match = _INTERVAL_COLUMN.match(str(column))
        if match:
            bounds.append((float(match.group(2)), column))
    if len(bounds) != 2:
        raise ValueError(
            "estimates: a summary table needs two interval columns like 'hdi_3%' and "
            f"'hdi_97%' (columns: {list(summary.columns)})"
        )
    (p_lo, c_lo), (p_hi, c_hi) = sorted(bounds)
    if point not in summary.columns:
        raise ValueError(
            f"point={point!r}: the summary table has no {point!r} column (columns: "
            f"{list(summary.columns)})"
        )
    rows = []
    index = [str(i) for i in summary.index]
    for name, value in truth.items():
        if name in index:
            labels = [name]
        else:
            labels = [i for i in index if i.startswith(f"{name}[")]
        if not labels:
            raise ValueError(f"truth: no estimates for {name!r} (estimated: {index})")
        true = _truth_array(name, value, (len(labels),))
        for label, tv in zip(labels, true):
            row = summary.loc[label] if label in summary.index else summary.iloc[index.index(label)]
            rows.append(
                {
                    "variable": name,
                    "name": label,
                    "true": tv,
                    "estimate": float(row[point]),
                    "lower": float(row[c_lo]),
                    "upper": float(row[c_hi]),
                }
            )
    return rows, (p_hi - p_lo) / 100.0


def recovery_table(
    estimates: Any,
    truth: Mapping[str, Any],
    *,
    ci: float = 0.94,
    point: str = "mean",
) -> tuple[pd.DataFrame, float]:
    """Point estimates and central intervals beside the true values, one row per value.

    ``estimates`` may be an ``InferenceData`` (its ``posterior``), an xarray ``Dataset`` of
    draws with ``chain``/``draw`` dims, a ``DataFrame`` of draws (one column per parameter,
    one row per draw) or an ``az.summary``-style ``DataFrame`` (index = variable names such
    as ``v`` or ``v[0]``, a ``mean``/``median`` column and two ``hdi_``/``eti_`` columns, whose
    level then replaces ``ci``). Returns the table (columns ``variable, name, true,
    estimate, lower, upper, covered``) and the interval mass used.

    Example
    -------
    >>> import pandas as pd, numpy as np
    >>> draws = pd.DataFrame({"v": np.random.default_rng(0).normal(1.0, 0.1, 500)})
    >>> table, mass = recovery_table(draws, {"v": 1.05})
    >>> bool(table["covered"].iloc[0]), mass
    (True, 0.94)
    """
    if point not in _POINTS:
        raise ValueError(f"point: expected one of {list(_POINTS)}, got {point!r}")
    if not isinstance(truth, Mapping) or not truth:
        raise ValueError("truth: expected a non-empty dict of parameter name -> true value(s)")
    q = interval_bounds(ci)
    mass = ci
    posterior = getattr(estimates, "posterior", None)
    dataset = posterior if posterior is not None else estimates
    if isinstance(dataset, pd.DataFrame):
        is_summary = any(_INTERVAL_COLUMN.match(str(c)) for c in dataset.columns)
        if is_summary:
            rows, mass = _from_summary(dataset, truth, point)
        else:
            rows = _from_draws(
                {str(c): dataset[c].to_numpy() for c in dataset.columns}, truth, point, q
            )
    elif hasattr(dataset, "data_vars"):
        draws = {}
        for name in dataset.data_vars:
            var = dataset[name]
            if var.dims[:2] != ("chain", "draw"):
                raise ValueError(
                    f"estimates[{name!r}]: expected leading dims (chain, draw), got {var.dims}"
                )
            values = var.values
            draws[str(name)] = values.reshape(-1, *values.shape[2:])
        rows = _from_draws(draws, truth, point, q)
    else:
        raise TypeError(
            "estimates: expected an InferenceData, an xarray Dataset or a pandas DataFrame, "
            f"got {type(estimates).__name__}"
        )
    table = pd.DataFrame(rows)
    table["covered"] = (table["lower"] <= table["true"]) & (table["true"] <= table["upper"])
    return table, mass


def plot_posterior_recovery(
    estimates: Any,
    truth: Mapping[str, Any],
    *,
    ci: float = 0.94,
    point: str = "mean",
    var_names: Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Plot posterior estimates against true values, with intervals and the identity line.

    Parameters
    ----------
    estimates:
        ``InferenceData``, xarray ``Dataset`` of draws, ``DataFrame`` of draws or an
        ``az.summary``-style table (see :func:`recovery_table`).
    truth:
        ``{name: value}`` with one value per element of the posterior variable (a scalar for
        ``v_Intercept``, an array for ``v_1|participant_id``).
    ci:
        Mass of the central (equal-tailed) interval drawn as error bars.
    point:
        ``"mean"`` or ``"median"`` of the draws as the point estimate.
    var_names:
        Only these names of ``truth`` (default: all of them).
    ax:
        Draw into this axes instead of a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        One panel: per variable an ``errorbar`` (a ``Line2D`` of markers plus a
        ``LineCollection`` of intervals), the identity line, and the count of true values
        inside their intervals in the title.

    Example
    -------
    >>> import pandas as pd, numpy as np
    >>> rng = np.random.default_rng(0)
    >>> draws = pd.DataFrame({"v": rng.normal(1.0, 0.1, 500), "a": rng.normal(1.5, 0.05, 500)})
    >>> fig = plot_posterior_recovery(draws, {"v": 1.05, "a": 1.5})
    >>> fig.axes[0].get_title()
    'Parameter recovery: 2/2 true values inside 94% intervals'
    """
    if var_names is not None:
        absent = [n for n in var_names if n not in truth]
        if absent:
            raise ValueError(f"var_names: {absent} not in truth (keys: {sorted(truth)})")
        truth = {n: truth[n] for n in var_names}
    table, mass = recovery_table(estimates, truth, ci=ci, point=point)
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.8, 4.6), layout="constrained")
    else:
        fig = figure_of(ax)
    colors = plt.get_cmap("tab10")
    for i, (name, rows) in enumerate(table.groupby("variable", sort=False)):
        err = np.vstack([rows["estimate"] - rows["lower"], rows["upper"] - rows["estimate"]])
        ax.errorbar(
            rows["true"],
            rows["estimate"],
            yerr=err,
            fmt="o",
            color=colors(i % 10),
            markersize=5,
            elinewidth=1.2,
            capsize=2,
            label=str(name),
        )
    values = table[["true", "lower", "upper"]].to_numpy()
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    pad = 0.05 * (hi - lo) if hi > lo else 0.5
    lims = (lo - pad, hi + pad)
    ax.plot(lims, lims, color="0.4", linestyle="--", linewidth=1.0, label="identity")
    ax.set_xlim(lims)
    ax.set_ylim(lims)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("true value")
    ax.set_ylabel(f"posterior {point} ({mass:.0%} interval)")
    ax.set_title(
        f"Parameter recovery: {int(table['covered'].sum())}/{len(table)} true values inside "
        f"{mass:.0%} intervals"
    )
    ax.legend(loc="upper left", fontsize="small", frameon=False)
    return fig
