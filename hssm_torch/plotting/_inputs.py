"""Shared input handling for the plotting functions.

Turns the ways a user may hand data to a plot (an HSSM-like model object, an ArviZ
``InferenceData``, a pandas ``DataFrame``) into plain numpy arrays, and validates them with
errors that name the offending argument, group or column.

The layout read here is HSSM's: ``observed_data["rt,response"]`` with dims
``("__obs__", "rt,response_dim")`` and ``posterior_predictive["rt,response"]`` (or
``prior_predictive``) with dims ``("chain", "draw", "__obs__", "rt,response_dim")``;
column 0 is the RT, column 1 the response.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = [
    "MISSING_RT",
    "PlotInputs",
    "condition_masks",
    "draw_indices",
    "figure_of",
    "interval_bounds",
    "resolve_inputs",
    "valid_rt",
]

logger = logging.getLogger(__name__)

#: The variable name HSSM uses for the joint (rt, response) observation.
OBS_VAR = "rt,response"
#: Missing RTs are coded with this value (HSSM's ``missing_data`` convention).
MISSING_RT = -999.0
PREDICTIVE_GROUPS = ("posterior_predictive", "prior_predictive")


@dataclass
class PlotInputs:
    """Arrays a predictive plot works from.

    Attributes
    ----------
    observed:
        ``(N, 2)`` float array of observed ``(rt, response)``.
    predicted:
        ``(S, N, 2)`` float array of predicted ``(rt, response)``, draws flattened over
        chains (``S = chains * draws``, or the ``n_draws`` chosen).
    data:
        The model's data frame aligned with ``__obs__`` (``None`` when not given).
    choices:
        The response codes, sorted.
    """

    observed: np.ndarray
    predicted: np.ndarray
    data: pd.DataFrame | None
    choices: tuple[int, ...]

    @property
    def signed(self) -> bool:
        """Whether responses are coded ``-1``/``1`` (plotted as signed RT ``rt * response``)."""
        return set(self.choices) <= {-1, 1}


def _groups(idata: Any) -> list[str]:
    groups = getattr(idata, "groups", None)
    if callable(groups):
        return list(groups())
    return [g for g in ("posterior", "observed_data", *PREDICTIVE_GROUPS) if hasattr(idata, g)]


def _looks_like_idata(obj: Any) -> bool:
    return callable(getattr(obj, "groups", None)) and hasattr(obj, "__getitem__")


def _rt_response(array: Any, where: str) -> np.ndarray:
    values = np.asarray(array, dtype=float)
    if values.ndim < 1 or values.shape[-1] != 2:
        raise ValueError(
            f"{where}: expected a last dimension of size 2 (rt, response), got shape {values.shape}"
        )
    return values


def resolve_inputs(
    model: Any = None,
    idata: Any = None,
    *,
    data: pd.DataFrame | None = None,
    group: str = "posterior_predictive",
    choices: tuple[int, ...] | None = None,
    n_draws: int | None = None,
    seed: int | None = 0,
) -> PlotInputs:
    """Collect observed and predicted ``(rt, response)`` arrays from the accepted inputs.

    ``model`` may be an HSSM-like object (its ``.traces`` or ``.idata`` is used when
    ``idata`` is not given, its ``.data`` when ``data`` is not given) or an
    ``InferenceData`` itself.  Observed values come from ``idata.observed_data`` when it
    exists, otherwise from ``data[["rt", "response"]]``. At most ``n_draws`` predictive
    draws are read (chosen at random with ``seed``; ``None`` reads all).
    """
    if group not in PREDICTIVE_GROUPS:
        raise ValueError(f"group: expected one of {list(PREDICTIVE_GROUPS)}, got {group!r}")
    if model is not None and _looks_like_idata(model) and not hasattr(model, "data"):
        if idata is not None:
            raise ValueError("model: got an InferenceData as `model` and another as `idata`")
        model, idata = None, model
    if model is not None:
        if idata is None:
            idata = getattr(model, "traces", None)
            if idata is None:
                idata = getattr(model, "idata", None)
        if data is None:
            data = getattr(model, "data", None)
        if choices is None:
            choices = getattr(model, "choices", None)
    if idata is None:
        raise ValueError(
            f"idata: no InferenceData given (pass `idata=` or a model whose `.traces` holds "
            f"a {group!r} group)"
        )
    available = _groups(idata)
    if group not in available:
        raise ValueError(
            f"group: the InferenceData has no {group!r} group (it has {available}); "
            f"run sample_{group}() first"
        )
    pred_ds = getattr(idata, group)
    if OBS_VAR not in pred_ds:
        raise ValueError(
            f"group {group!r}: no variable {OBS_VAR!r} (variables: {list(pred_ds.data_vars)})"
        )
    pred = pred_ds[OBS_VAR]
    dims = tuple(pred.dims)
    if len(dims) != 4 or dims[:2] != ("chain", "draw"):
        raise ValueError(
            f"group {group!r}: {OBS_VAR!r} must have dims (chain, draw, __obs__, "
            f"rt,response_dim), got {dims}"
        )
    n_chains, n_draws_all = pred.sizes["chain"], pred.sizes["draw"]
    picks = draw_indices(n_chains * n_draws_all, n_draws, seed)
    if picks is None:
        values = pred.values.reshape(n_chains * n_draws_all, *pred.shape[2:])
    else:  # read only the chosen draws (the group may be large or lazily loaded)
        chain_idx, draw_idx = np.divmod(picks, n_draws_all)
        values = np.stack(
            [pred.isel(chain=int(c), draw=int(d)).values for c, d in zip(chain_idx, draw_idx)]
        )
    predicted = _rt_response(values, f"{group}[{OBS_VAR!r}]")

    if "observed_data" in available and OBS_VAR in idata.observed_data:
        observed = _rt_response(idata.observed_data[OBS_VAR].values, "observed_data")
    elif data is not None:
        missing = [c for c in ("rt", "response") if c not in data.columns]
        if missing:
            raise ValueError(
                f"data: missing column(s) {missing}; expected 'rt' and 'response' "
                f"(columns: {list(data.columns)})"
            )
        observed = data[["rt", "response"]].to_numpy(dtype=float)
    else:
        raise ValueError(
            "observed data: the InferenceData has no 'observed_data' group and no `data` "
            "frame was given"
        )
    if observed.ndim != 2:
        raise ValueError(f"observed_data: expected shape (N, 2), got {observed.shape}")
    if observed.shape[0] != predicted.shape[1]:
        raise ValueError(
            f"group {group!r}: {predicted.shape[1]} predicted trials per draw but "
            f"{observed.shape[0]} observed trials"
        )
    if data is not None:
        if not isinstance(data, pd.DataFrame):
            raise TypeError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
        if len(data) != observed.shape[0]:
            raise ValueError(
                f"data: {len(data)} rows but the InferenceData has {observed.shape[0]} "
                "observations on __obs__"
            )
    if choices is None:
        finite = predicted[..., 1][np.isfinite(predicted[..., 1])]
        codes = np.unique(np.concatenate([observed[:, 1], finite]))
        choices = tuple(int(c) for c in codes)
    choices = tuple(sorted(int(c) for c in choices))
    return PlotInputs(observed=observed, predicted=predicted, data=data, choices=choices)


def draw_indices(n_total: int, n_draws: int | None, seed: int | None) -> np.ndarray | None:
    """Sorted indices of at most ``n_draws`` of ``n_total`` draws (``None``: take all)."""
    if n_draws is not None and (not isinstance(n_draws, (int, np.integer)) or n_draws < 1):
        raise ValueError(f"n_draws: expected a positive integer or None, got {n_draws!r}")
    if n_draws is None or n_draws >= n_total:
        return None
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_total, size=int(n_draws), replace=False))


def interval_bounds(ci: float) -> tuple[float, float]:
    """Lower and upper quantile levels of a central (equal-tailed) interval of mass ``ci``."""
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci: expected a probability in (0, 1), got {ci}")
    return (1.0 - ci) / 2.0, (1.0 + ci) / 2.0


def condition_masks(
    data: pd.DataFrame | None, column: str | None, arg: str, n_obs: int
) -> list[tuple[Any, np.ndarray]]:
    """``[(level, boolean mask over __obs__)]`` for each level of ``data[column]``.

    With ``column=None`` a single level ``None`` covering all ``n_obs`` trials is returned.
    """
    if column is None:
        return [(None, np.ones(n_obs, dtype=bool))]
    if data is None:
        raise ValueError(
            f"{arg}={column!r}: needs the model's data frame (pass `data=` or a model with `.data`)"
        )
    if column not in data.columns:
        raise ValueError(f"{arg}: column {column!r} not in data (columns: {list(data.columns)})")
    values = data[column]
    if values.isna().any():
        raise ValueError(f"{arg}: column {column!r} has {int(values.isna().sum())} missing values")
    if isinstance(values.dtype, pd.CategoricalDtype):
        levels = [c for c in values.cat.categories if (values == c).any()]
    else:
        levels = sorted(values.unique(), key=lambda x: (str(type(x)), x))
    col = values.to_numpy()
    return [(level, col == level) for level in levels]


def valid_rt(values: np.ndarray) -> np.ndarray:
    """Mask of entries with a usable RT: finite, non-negative and not the missing code."""
    rt = values[..., 0]
    return np.isfinite(rt) & (rt >= 0) & (rt != MISSING_RT)


def figure_of(ax: Axes) -> Figure:
    """The top-level figure holding ``ax`` (also when ``ax`` lives in a sub-figure)."""
    fig = ax.get_figure(root=True)
    if fig is None:
        raise ValueError("ax: the axes belongs to no figure")
    return cast(Figure, fig)
