"""Missing RTs and response deadlines: a censored-data likelihood.

HSSM's ``missing_data`` / ``deadline`` arguments, as building blocks for the fitting API.

Every trial belongs to one of three classes:

- **observed** (:data:`OBSERVED`): ``rt`` and ``response`` known; contributes the joint density
  ``f(rt, response | θ)``. Under a deadline this is the density on ``rt < deadline``, so the
  whole data likelihood is a censored-data likelihood (densities of the observed trials times
  the probabilities of the censored ones), not a truncated one: no renormalisation by
  ``P(rt < deadline)``.
- **missing** (:data:`MISSING`, only without a deadline): the RT was lost (coded by the
  sentinel, ``-999.0`` by default) but the response is known; contributes
  ``log P(response | θ)`` (all response times integrated out).
- **omitted** (:data:`OMITTED`, only with a deadline): no response before the trial's deadline;
  contributes ``log P(rt > deadline | θ)`` (the survival function at the deadline).

Conventions pinned to HSSM 0.5 (``hssm.HSSM(missing_data=..., deadline=...)``):

- ``missing_data``: ``False`` (default; sentinel rows are an error), ``True`` (the sentinel is
  ``-999.0``) or a float (that value is the sentinel).
- ``deadline``: ``False`` (default), ``True`` (the column ``"deadline"``) or a column name.
  With a deadline, every sentinel row *and every row with rt >= its deadline* is an omission
  (HSSM recodes ``rt >= deadline`` to ``-999.0``; we do the same, and log how many rows it
  recoded). Unlike HSSM, ``deadline`` does not also require ``missing_data=True``.
- HSSM's CPN ignores the response of a missing trial; here a missing trial's response is used
  (``log P(response)``), so the response of a missing row must be a valid choice.

Likelihood pieces (:func:`choice_log_prob_fn`, :func:`log_survival_fn`): analytical for
``ddm`` and ``ddm_sdv`` (:mod:`hssm_torch.likelihoods.ddm_extras`), else a CPN / OPN network
(shipped with the package via :func:`hssm_torch.load_network`, or a user ONNX file / torch
module). A CPN maps ``[θ]`` to ``log P(response = choices[0])`` (two-choice models; the other
choice is ``log(1 - p)``), or to ``(N, n_choices)`` log-probabilities; an OPN maps
``[θ, deadline]`` to ``log P(omission)``.

Lapses (:class:`CensoredLikelihood` with ``p_outlier``): a lapse trial has ``rt ~ lapse``
(default ``Uniform(0, 20)``, as HSSM) and a uniformly chosen response, so per class

- observed: ``(1 - p) f(rt, r | θ) + p * lapse(rt) / n_choices``
- missing:  ``(1 - p) P(r | θ) + p / n_choices``
- omitted:  ``(1 - p) S(deadline | θ) + p * (1 - lapse_cdf(deadline))``

which is a proper distribution over (class, rt, response). HSSM (and
:class:`hssm_torch.distribution.SSMDistribution`) use ``p * lapse(rt)`` without the
``1 / n_choices``: a lapse mixture that integrates to ``1 + p (n_choices - 1)``; pass
``lapse_response="hssm"`` to reproduce that.

Example
-------
>>> import pandas as pd, torch
>>> from hssm_torch.censoring import prepare_censored_data, CensoredLikelihood
>>> from hssm_torch.likelihoods.wfpt import ddm_log_likelihood
>>> df = pd.DataFrame({"rt": [0.8, -999.0, 1.1], "response": [1, -1, 1]})
>>> data = prepare_censored_data(df, missing_data=True)
>>> data.n_missing
1
>>> lik = CensoredLikelihood("ddm", ddm_log_likelihood, data)
>>> theta = torch.tensor([0.5, 1.0, 0.5, 0.3], dtype=torch.float64).expand(3, 4)
>>> lik(theta).shape
torch.Size([3])
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

__all__ = [
    "CensoredData",
    "CensoredLikelihood",
    "CensoredSSMDistribution",
    "MISSING",
    "MISSING_DATA_VALUE",
    "OBSERVED",
    "OMITTED",
    "analytical_censoring_models",
    "censored_log_likelihood",
    "choice_log_prob_fn",
    "log1mexp",
    "log_survival_fn",
    "prepare_censored_data",
    "resolve_censoring_args",
]

log = logging.getLogger(__name__)

#: Trial classes.
OBSERVED, MISSING, OMITTED = 0, 1, 2

#: HSSM's sentinel for a missing / omitted RT.
MISSING_DATA_VALUE: float = -999.0

#: Models with analytical choice probability and survival functions.
_ANALYTICAL = {"ddm": 4, "ddm_sdv": 5}

LogLik = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
ChoiceFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
SurvivalFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def analytical_censoring_models() -> list[str]:
    """Models whose choice probability and survival are computed in closed form.

    Example
    -------
    >>> analytical_censoring_models()
    ['ddm', 'ddm_sdv']
    """
    return sorted(_ANALYTICAL)


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """``log(1 - exp(x))`` for ``x <= 0``, accurate near 0 and for very negative ``x``.

    Example
    -------
    >>> import torch
    >>> round(float(log1mexp(torch.tensor(-0.6931471805599453)).exp()), 6)
    0.5
    """
    cut = -math.log(2.0)
    near = x > cut
    xa = torch.where(near, x, torch.full_like(x, cut))
    xb = torch.where(near, torch.full_like(x, cut), x)
    return torch.where(near, torch.log(-torch.expm1(xa)), torch.log1p(-torch.exp(xb)))


# ----------------------------------------------------------------------------- arguments/data
@dataclass(frozen=True)
class _Args:
    missing_data: bool
    missing_data_value: float
    deadline: bool
    deadline_name: str


def resolve_censoring_args(
    missing_data: bool | float = False, deadline: bool | str = False
) -> _Args:
    """Resolve HSSM's ``missing_data`` / ``deadline`` arguments.

    Returns an object with ``missing_data`` (bool), ``missing_data_value`` (float),
    ``deadline`` (bool) and ``deadline_name`` (str).

    Example
    -------
    >>> a = resolve_censoring_args(missing_data=-1.0, deadline="dl")
    >>> a.missing_data, a.missing_data_value, a.deadline, a.deadline_name
    (True, -1.0, True, 'dl')
    """
    if isinstance(missing_data, (bool, np.bool_)):
        md, value = bool(missing_data), MISSING_DATA_VALUE
    elif isinstance(missing_data, (int, float, np.integer, np.floating)):
        value = float(missing_data)
        if not math.isfinite(value):
            raise ValueError(
                "missing_data: expected True/False or a finite sentinel value, got "
                f"{missing_data!r} "
                "(code missing RTs with a number such as -999.0, not NaN)"
            )
        md = True
    else:
        raise TypeError(
            f"missing_data: expected a bool or a float sentinel, got {type(missing_data).__name__}"
        )
    if isinstance(deadline, (bool, np.bool_)):
        dl, name = bool(deadline), "deadline"
    elif isinstance(deadline, str):
        if not deadline:
            raise ValueError("deadline: expected True/False or a non-empty column name, got ''")
        dl, name = True, deadline
    else:
        raise TypeError(
            f"deadline: expected a bool or a column name, got {type(deadline).__name__}"
        )
    return _Args(md, value, dl, name)


@dataclass(frozen=True)
class CensoredData:
    """Data with each trial's class (:data:`OBSERVED`, :data:`MISSING` or :data:`OMITTED`).

    Attributes
    ----------
    rt, response : numpy.ndarray
        ``(N,)`` float64; censored rows have ``rt = -999.0`` (whatever sentinel the user had);
        responses are kept as given (an omitted row's response is never used).
    trial_class : numpy.ndarray
        ``(N,)`` int8 class codes.
    deadline : numpy.ndarray or None
        ``(N,)`` per-trial deadline (seconds), ``None`` without deadline handling.
    missing_data_value : float
        The user's sentinel.
    deadline_name : str or None
        The deadline column.
    n_recoded : int
        Rows with ``rt >= deadline`` recoded as omissions.
    """

    rt: np.ndarray
    response: np.ndarray
    trial_class: np.ndarray
    deadline: np.ndarray | None = None
    missing_data_value: float = MISSING_DATA_VALUE
    deadline_name: str | None = None
    n_recoded: int = 0
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_obs(self) -> int:
        """Number of trials."""
        return int(self.rt.shape[0])

    @property
    def n_observed(self) -> int:
        """Trials with an observed RT."""
        return int((self.trial_class == OBSERVED).sum())

    @property
    def n_missing(self) -> int:
        """Trials with a missing RT (response known)."""
        return int((self.trial_class == MISSING).sum())

    @property
    def n_omitted(self) -> int:
        """Trials without a response before the deadline."""
        return int((self.trial_class == OMITTED).sum())

    def indices(self, device: torch.device | str | None = None) -> dict[int, torch.Tensor]:
        """Row indices (int64 tensors) of each non-empty class."""
        key = ("idx", str(torch.device(device) if device is not None else torch.device("cpu")))
        if key not in self._cache:
            self._cache[key] = {
                c: torch.as_tensor(np.flatnonzero(self.trial_class == c), device=device)
                for c in (OBSERVED, MISSING, OMITTED)
                if (self.trial_class == c).any()
            }
        return self._cache[key]


def _to_float(data: pd.DataFrame, col: str) -> np.ndarray:
    try:
        return np.array(pd.to_numeric(data[col], errors="raise"), dtype=np.float64, copy=True)
    except (TypeError, ValueError) as e:
        raise ValueError(f"data: column {col!r} must be numeric ({e})") from None


def prepare_censored_data(
    data: pd.DataFrame,
    *,
    missing_data: bool | float = False,
    deadline: bool | str = False,
    choices: Sequence[int] = (-1, 1),
) -> CensoredData:
    """Classify the trials of ``data`` (columns ``rt``, ``response``, optionally a deadline).

    Parameters
    ----------
    data : pandas.DataFrame
        Trials; ``rt`` in seconds, missing RTs coded by the sentinel.
    missing_data : bool or float
        As HSSM: ``False`` (sentinel rows raise), ``True`` (sentinel ``-999.0``) or the
        sentinel value.
    deadline : bool or str
        As HSSM: ``False``, ``True`` (column ``"deadline"``) or the column name.
    choices : sequence of int
        Valid responses.

    Returns
    -------
    CensoredData

    Raises
    ------
    ValueError
        Sentinel rows with ``missing_data=False`` and ``deadline=False``; a missing deadline
        column or non-positive / non-finite deadlines; NaN RTs; non-positive observed RTs;
        responses outside ``choices`` on observed or missing rows.

    Example
    -------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"rt": [0.5, 2.5, -999.0], "response": [1, 1, -1], "deadline": 2.0})
    >>> d = prepare_censored_data(df, deadline=True)
    >>> d.trial_class.tolist(), d.n_recoded
    ([0, 2, 2], 1)
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
    for col in ("rt", "response"):
        if col not in data.columns:
            raise ValueError(f"data: missing column {col!r} (found {list(data.columns)})")
    args = resolve_censoring_args(missing_data, deadline)
    rt = _to_float(data, "rt")
    resp = _to_float(data, "response")
    if np.isnan(rt).any():
        i = int(np.argmax(np.isnan(rt)))
        raise ValueError(
            f"data: column 'rt' has {int(np.isnan(rt).sum())} NaN value(s) (first at row {i}); "
            f"code missing RTs with the sentinel ({args.missing_data_value}) and pass missing_data"
        )
    sentinel = rt == args.missing_data_value
    trial_class = np.zeros(len(rt), dtype=np.int8)
    dl = None
    n_recoded = 0
    if args.deadline:
        if args.deadline_name not in data.columns:
            raise ValueError(
                f"deadline: column {args.deadline_name!r} not found in data (columns: "
                f"{list(data.columns)}); pass deadline=<column name> or add the column"
            )
        dl = _to_float(data, args.deadline_name)
        bad = ~np.isfinite(dl) | (dl <= 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"data: column {args.deadline_name!r} must be finite and > 0; row {i} has {dl[i]}"
            )
        late = ~sentinel & (rt >= dl)
        n_recoded = int(late.sum())
        if n_recoded:
            log.info(
                "deadline: %d row(s) with rt >= %s recoded as omissions",
                n_recoded,
                args.deadline_name,
            )
        trial_class[sentinel | late] = OMITTED
    elif sentinel.any():
        if not args.missing_data:
            raise ValueError(
                f"data: column 'rt' has {int(sentinel.sum())} row(s) equal to "
                f"{args.missing_data_value} (missing RTs) but missing_data=False and "
                "deadline=False; "
                "pass missing_data=True (or the sentinel value) to model them, deadline=<column> "
                "if they are omissions past a deadline, or drop them"
            )
        trial_class[sentinel] = MISSING
    observed = trial_class == OBSERVED
    if (rt[observed] <= 0).any():
        i = int(np.flatnonzero(observed & (rt <= 0))[0])
        raise ValueError(
            f"data: column 'rt' must be > 0 on observed rows; row {i} has {rt[i]} "
            f"(the missing-data sentinel is {args.missing_data_value})"
        )
    needs_resp = trial_class != OMITTED
    outside = needs_resp & ~np.isin(resp, np.asarray(choices, dtype=np.float64))
    if outside.any():
        vals = sorted(set(resp[outside].tolist()))[:5]
        raise ValueError(
            f"data: column 'response' has value(s) {vals} outside choices {list(choices)} on "
            f"observed or missing-RT rows (first row {int(np.argmax(outside))})"
        )
    rt = np.where(trial_class == OBSERVED, rt, MISSING_DATA_VALUE)
    return CensoredData(
        rt=rt,
        response=resp,
        trial_class=trial_class,
        deadline=dl,
        missing_data_value=args.missing_data_value,
        deadline_name=args.deadline_name if args.deadline else None,
        n_recoded=n_recoded,
    )


# ----------------------------------------------------------------------------- pieces
def _load(net: Any, what: str, device) -> torch.nn.Module:
    if isinstance(net, torch.nn.Module):
        return net
    if isinstance(net, (str, Path)):
        from hssm_torch.onnx_loader import load_onnx

        return load_onnx(net, device=device)
    raise TypeError(f"{what}: expected an ONNX path or a torch module, got {type(net).__name__}")


def _shipped(model: str, kind: str, device):
    from hssm_torch.network_registry import available_networks, load_network

    if (model, kind) in available_networks():
        return load_network(model, kind, device=device)
    return None


def _n_params(model: str) -> int | None:
    try:
        from simulators import get_model

        return len(get_model(model).param_names)
    except ValueError:
        return None


def choice_log_prob_fn(
    model: str,
    cpn: str | Path | torch.nn.Module | None = None,
    *,
    choices: Sequence[int] = (-1, 1),
    device: torch.device | str | None = None,
) -> ChoiceFn:
    """``f(theta, response) -> log P(response | θ)`` (all response times integrated out).

    Parameters
    ----------
    model : str
        Registry model name.
    cpn : "analytical", ONNX path, torch module or None
        ``None``: the closed form where one exists (``ddm``, ``ddm_sdv``), else the shipped
        CPN, else ``ValueError`` naming what is needed. A network maps ``(M, P)`` θ rows to
        ``(M, 1)`` ``log P(response = choices[0])`` (two-choice models) or ``(M, n_choices)``
        log-probabilities in ``choices`` order.
    choices : sequence of int
        The model's responses.
    device : optional
        Where to load a network.

    Example
    -------
    >>> import torch
    >>> f = choice_log_prob_fn("ddm")
    >>> th = torch.tensor([[0.0, 1.0, 0.5, 0.3]], dtype=torch.float64)
    >>> round(float(f(th, torch.tensor([1.0])).exp()), 6)
    0.5
    """
    choices = tuple(int(c) for c in choices)
    if cpn is None or cpn == "analytical":
        if model in _ANALYTICAL:
            from hssm_torch.likelihoods.ddm_extras import ddm_log_choice_probability

            def analytical(theta: torch.Tensor, response: torch.Tensor) -> torch.Tensor:
                return ddm_log_choice_probability(theta, response)

            return analytical
        net = _shipped(model, "cpn", device) if cpn is None else None
        if net is None:
            raise ValueError(
                f"cpn: model {model!r} has no analytical choice probability (available for "
                f"{analytical_censoring_models()}) and no shipped CPN ({model}_cpn.onnx); pass "
                f"cpn=<path to an ONNX CPN with input [{', '.join(_param_names(model))}] -> "
                f"log P(response={choices[0]})> to model missing RTs"
            )
    else:
        net = _load(cpn, "cpn", device)
    from hssm_torch.onnx_loader import network_dtype

    dtype = network_dtype(net)

    def network(theta: torch.Tensor, response: torch.Tensor) -> torch.Tensor:
        batch = theta.shape[:-1]
        out = net(theta.reshape(-1, theta.shape[-1]).to(dtype)).to(theta.dtype)
        resp = response.expand(batch).reshape(-1)
        if out.shape[-1] == 1:
            if len(choices) != 2:
                raise ValueError(
                    f"cpn: a one-output CPN gives log P(response={choices[0]}) and only covers "
                    f"two-choice models; model {model!r} has choices {list(choices)} (needs a CPN "
                    f"with {len(choices)} outputs)"
                )
            lp0 = out[:, 0].clamp(max=0.0)
            lp = torch.where(resp == choices[0], lp0, log1mexp(lp0))
        elif out.shape[-1] == len(choices):
            codes = torch.tensor(choices, dtype=resp.dtype, device=resp.device)
            col = (resp[:, None] == codes).to(torch.int64).argmax(-1)
            lp = out.gather(-1, col[:, None])[:, 0]
        else:
            raise ValueError(
                f"cpn: network output has {out.shape[-1]} columns; expected 1 or {len(choices)}"
            )
        return lp.reshape(batch)

    return network


def _param_names(model: str) -> list[str]:
    try:
        from simulators import get_model

        return list(get_model(model).param_names)
    except ValueError:
        return ["θ..."]


def log_survival_fn(
    model: str,
    opn: str | Path | torch.nn.Module | None = None,
    *,
    device: torch.device | str | None = None,
) -> SurvivalFn:
    """``f(theta, deadline) -> log P(rt > deadline | θ)``.

    Parameters
    ----------
    model : str
        Registry model name.
    opn : "analytical", ONNX path, torch module or None
        ``None``: closed form for ``ddm`` / ``ddm_sdv``, else the shipped OPN, else
        ``ValueError`` naming what is needed. A network maps ``[θ, deadline]`` rows to
        ``log P(omission)``.
    device : optional
        Where to load a network.

    Example
    -------
    >>> import torch
    >>> f = log_survival_fn("ddm")
    >>> th = torch.tensor([[0.0, 1.0, 0.5, 0.3]], dtype=torch.float64)
    >>> float(f(th, torch.tensor([0.2])))   # deadline before t: nothing can respond
    0.0
    """
    if opn is None or opn == "analytical":
        if model in _ANALYTICAL:
            from hssm_torch.likelihoods.ddm_extras import ddm_log_survival

            def analytical(theta: torch.Tensor, deadline: torch.Tensor) -> torch.Tensor:
                return ddm_log_survival(deadline, theta)

            return analytical
        net = _shipped(model, "opn", device) if opn is None else None
        if net is None:
            raise ValueError(
                f"opn: model {model!r} has no analytical survival function (available for "
                f"{analytical_censoring_models()}) and no shipped OPN ({model}_opn.onnx); pass "
                f"opn=<path to an ONNX OPN with input [{', '.join(_param_names(model))}, deadline] "
                "-> log P(omission)> to model deadlines"
            )
    else:
        net = _load(opn, "opn", device)
    from hssm_torch.onnx_loader import network_dtype

    dtype = network_dtype(net)

    def network(theta: torch.Tensor, deadline: torch.Tensor) -> torch.Tensor:
        batch = theta.shape[:-1]
        x = torch.cat([theta, deadline.to(theta.dtype).expand(batch).unsqueeze(-1)], -1)
        out = net(x.reshape(-1, x.shape[-1]).to(dtype)).to(theta.dtype)
        return out[:, 0].clamp(max=0.0).reshape(batch)

    return network


# ----------------------------------------------------------------------------- likelihood
def _lapse_log_survival(lapse: Any, x: torch.Tensor) -> torch.Tensor:
    if not hasattr(lapse, "cdf"):
        raise ValueError(
            f"lapse: {type(lapse).__name__} has no cdf; omitted trials need P(lapse rt > deadline)"
        )
    try:
        c = lapse.cdf(x)
    except (NotImplementedError, ValueError):
        # Uniform.cdf validates its argument against the support: clamp into it.
        lo, hi = getattr(lapse, "low", None), getattr(lapse, "high", None)
        if lo is None or hi is None:
            raise ValueError(f"lapse: {type(lapse).__name__}.cdf is not implemented") from None
        c = lapse.cdf(torch.minimum(torch.maximum(x, lo), hi))
    return torch.log1p(-c.clamp(0.0, 1.0))


def _lapse_log_density(lapse: Any, rt: torch.Tensor) -> torch.Tensor:
    lo, hi = getattr(lapse, "low", None), getattr(lapse, "high", None)
    if lo is not None and hi is not None:
        inside = (rt >= lo) & (rt <= hi)
        safe = torch.where(inside, rt, (lo + hi) / 2 * torch.ones_like(rt))
        lp = lapse.log_prob(safe)
        return torch.where(inside, lp, torch.full_like(lp, -math.inf))
    return lapse.log_prob(rt)


def censored_log_likelihood(
    theta: torch.Tensor,
    rt: torch.Tensor,
    response: torch.Tensor,
    trial_class: torch.Tensor | dict[int, torch.Tensor],
    *,
    loglik: LogLik,
    choice_log_prob: ChoiceFn | None = None,
    log_survival: SurvivalFn | None = None,
    deadline: torch.Tensor | None = None,
    p_outlier: torch.Tensor | float | None = None,
    lapse: Any = None,
    n_choices: int = 2,
    lapse_response: str = "uniform",
) -> torch.Tensor:
    """Pointwise log-likelihood of a censored data set, one vectorized call per trial class.

    Parameters
    ----------
    theta : torch.Tensor
        ``(..., N, P)`` per-trial parameters (leading dims: draws, chains...).
    rt, response : torch.Tensor
        ``(N,)``; ``rt`` of censored rows is ignored.
    trial_class : torch.Tensor or dict
        ``(N,)`` class codes, or ``{class: row indices}`` (precomputed, e.g.
        :meth:`CensoredData.indices`).
    loglik : callable
        ``loglik(rt, response, theta) -> log f`` for observed rows.
    choice_log_prob, log_survival : callable, optional
        See :func:`choice_log_prob_fn`, :func:`log_survival_fn`; required when missing /
        omitted rows exist.
    deadline : torch.Tensor, optional
        ``(N,)`` deadlines; required with omitted rows.
    p_outlier : float or torch.Tensor, optional
        Lapse probability broadcastable to ``(..., N)``.
    lapse : torch distribution, optional
        Lapse rt distribution (``log_prob``, and ``cdf`` for omitted rows); default
        ``Uniform(0, 20)``.
    n_choices : int
        Number of responses (a lapse response is uniform over them).
    lapse_response : {"uniform", "hssm"}
        ``"uniform"``: lapse density ``lapse(rt) / n_choices`` (a proper mixture);
        ``"hssm"``: ``lapse(rt)`` as HSSM (and the lapse probability of a missing-RT
        response is then 1).

    Returns
    -------
    torch.Tensor
        ``(..., N)`` log-likelihood; differentiable in ``theta`` and ``p_outlier``.

    Example
    -------
    >>> import torch
    >>> from hssm_torch.likelihoods.wfpt import ddm_log_likelihood
    >>> th = torch.tensor([0.5, 1.0, 0.5, 0.3], dtype=torch.float64).expand(2, 4)
    >>> out = censored_log_likelihood(
    ...     th, torch.tensor([0.9, -999.0]), torch.tensor([1.0, 1.0]), torch.tensor([0, 1]),
    ...     loglik=ddm_log_likelihood, choice_log_prob=choice_log_prob_fn("ddm"))
    >>> out.shape
    torch.Size([2])
    """
    if theta.dim() < 2:
        raise ValueError(f"theta: expected shape (..., N, P), got {tuple(theta.shape)}")
    n = theta.shape[-2]
    if rt.shape[-1] != n or response.shape[-1] != n:
        raise ValueError(
            f"rt/response: expected {n} trials (theta's second-to-last dim), got "
            f"{tuple(rt.shape)} and {tuple(response.shape)}"
        )
    if lapse_response not in ("uniform", "hssm"):
        raise ValueError(f"lapse_response: expected 'uniform' or 'hssm', got {lapse_response!r}")
    if isinstance(trial_class, dict):
        idx_by_class = trial_class
    else:
        tc = torch.as_tensor(trial_class, device=theta.device)
        if tc.shape != (n,):
            raise ValueError(f"trial_class: expected shape ({n},), got {tuple(tc.shape)}")
        idx_by_class = {c: (tc == c).nonzero().squeeze(-1) for c in (OBSERVED, MISSING, OMITTED)}
    batch = theta.shape[:-1]
    lead = batch[:-1]
    p = None
    if p_outlier is not None:
        p = torch.as_tensor(p_outlier, dtype=theta.dtype, device=theta.device).expand(batch)
        if lapse is None:
            lapse = torch.distributions.Uniform(
                torch.zeros((), dtype=theta.dtype, device=theta.device),
                torch.full((), 20.0, dtype=theta.dtype, device=theta.device),
            )
    log_resp_mass = -math.log(n_choices) if lapse_response == "uniform" else 0.0
    out = theta.new_zeros(batch)
    for c, idx in idx_by_class.items():
        if idx.numel() == 0:
            continue
        idx = idx.to(theta.device)
        th = theta.index_select(-2, idx)
        r = response.index_select(-1, idx).to(theta.dtype)
        if c == OBSERVED:
            x = rt.index_select(-1, idx).to(theta.dtype)
            lp = loglik(x, r, th).expand(lead + idx.shape)
            lapse_lp = None if p is None else _lapse_log_density(lapse, x) + log_resp_mass
        elif c == MISSING:
            if choice_log_prob is None:
                raise ValueError(
                    f"choice_log_prob: {idx.numel()} missing-RT row(s) need log P(response | θ) "
                    "(see choice_log_prob_fn)"
                )
            lp = choice_log_prob(th, r).expand(lead + idx.shape)
            lapse_lp = None if p is None else torch.full_like(lp, log_resp_mass)
        elif c == OMITTED:
            if deadline is None or log_survival is None:
                raise ValueError(
                    f"deadline/log_survival: {idx.numel()} omitted row(s) need per-trial deadlines "
                    "and log P(rt > deadline | θ) (see log_survival_fn)"
                )
            d = deadline.index_select(-1, idx).to(theta.dtype)
            lp = log_survival(th, d).expand(lead + idx.shape)
            lapse_lp = None if p is None else _lapse_log_survival(lapse, d)
        else:
            raise ValueError(f"trial_class: unknown class {c!r}; expected 0, 1 or 2")
        if p is not None and lapse_lp is not None:
            pc = p.index_select(-1, idx)
            lp = torch.logaddexp(torch.log1p(-pc) + lp, torch.log(pc) + lapse_lp)
        out = out.index_copy(-1, idx, lp)
    return out


class CensoredLikelihood:
    """The censored-data likelihood of one data set, bound to its trial classes.

    Parameters
    ----------
    model : str
        Registry model name.
    loglik : callable
        ``loglik(rt, response, theta)`` for observed rows (analytical, network or user).
    data : CensoredData
        From :func:`prepare_censored_data`.
    cpn, opn : optional
        Passed to :func:`choice_log_prob_fn` / :func:`log_survival_fn` (only resolved when
        the data have missing / omitted rows).
    choices : sequence of int
    lapse_response : {"uniform", "hssm"}
        See :func:`censored_log_likelihood`.
    device, dtype : optional
        Where the data tensors live.

    Example
    -------
    >>> import pandas as pd, torch
    >>> from hssm_torch.likelihoods.wfpt import ddm_log_likelihood
    >>> df = pd.DataFrame({"rt": [0.6, 3.0], "response": [1, 1], "deadline": [2.0, 2.0]})
    >>> data = prepare_censored_data(df, deadline=True)
    >>> lik = CensoredLikelihood("ddm", ddm_log_likelihood, data)
    >>> lik(torch.tensor([[1.0, 1.0, 0.5, 0.3]] * 2, dtype=torch.float64)).shape
    torch.Size([2])
    """

    def __init__(
        self,
        model: str,
        loglik: LogLik,
        data: CensoredData,
        *,
        cpn: Any = None,
        opn: Any = None,
        choices: Sequence[int] = (-1, 1),
        lapse_response: str = "uniform",
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        self.model = model
        self.loglik = loglik
        self.data = data
        self.choices = tuple(int(c) for c in choices)
        self.lapse_response = lapse_response
        self.rt = torch.as_tensor(data.rt, dtype=dtype, device=device)
        self.response = torch.as_tensor(data.response, dtype=dtype, device=device)
        self.deadline = (
            None
            if data.deadline is None
            else torch.as_tensor(data.deadline, dtype=dtype, device=device)
        )
        self.idx = data.indices(device)
        self.choice_log_prob = (
            choice_log_prob_fn(model, cpn, choices=self.choices, device=device)
            if data.n_missing
            else None
        )
        self.log_survival = log_survival_fn(model, opn, device=device) if data.n_omitted else None

    def __call__(
        self,
        theta: torch.Tensor,
        *,
        p_outlier: torch.Tensor | float | None = None,
        lapse: Any = None,
    ) -> torch.Tensor:
        """``(..., N)`` pointwise log-likelihood for ``theta`` of shape ``(..., N, P)``."""
        return censored_log_likelihood(
            theta,
            self.rt.to(theta.device),
            self.response.to(theta.device),
            self.idx,
            loglik=self.loglik,
            choice_log_prob=self.choice_log_prob,
            log_survival=self.log_survival,
            deadline=None if self.deadline is None else self.deadline.to(theta.device),
            p_outlier=p_outlier,
            lapse=lapse,
            n_choices=len(self.choices),
            lapse_response=self.lapse_response,
        )

    def as_loglik(self) -> LogLik:
        """An ``(rt, response, theta) -> log p`` callable (no lapse) for
        :class:`~hssm_torch.distribution.SSMDistribution`; ``rt`` / ``response`` must be the
        bound data (they are checked by shape only)."""

        def loglik(rt: torch.Tensor, response: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
            if rt.shape[-1] != self.data.n_obs:
                raise ValueError(
                    f"rt: this likelihood is bound to {self.data.n_obs} trials, "
                    f"got {tuple(rt.shape)}"
                )
            return self(theta)

        return loglik


def _ssm_distribution_base():
    from hssm_torch.distribution import SSMDistribution

    return SSMDistribution


class CensoredSSMDistribution(_ssm_distribution_base()):  # type: ignore[misc]
    """:class:`~hssm_torch.distribution.SSMDistribution` whose ``log_prob`` is censoring-aware.

    ``log_prob(value)`` evaluates ``censored(theta, p_outlier=..., lapse=...)`` (the bound data
    set: ``value`` must be its ``(N, 2)`` observations, checked by shape), with the lapse
    mixture of :func:`censored_log_likelihood`. ``sample`` simulates as the parent and, with
    deadlines, marks draws with ``rt >= deadline`` as omitted (``rt = -999.0``), as the
    observed data are coded.

    Parameters
    ----------
    theta : torch.Tensor
        ``(..., N, P)``.
    censored : CensoredLikelihood
        The bound likelihood.
    model, choices, p_outlier, lapse :
        As :class:`~hssm_torch.distribution.SSMDistribution`.

    Example
    -------
    >>> import pandas as pd, torch
    >>> from hssm_torch.likelihoods.wfpt import ddm_log_likelihood
    >>> df = pd.DataFrame({"rt": [0.6, -999.0], "response": [1, -1]})
    >>> data = prepare_censored_data(df, missing_data=True)
    >>> lik = CensoredLikelihood("ddm", ddm_log_likelihood, data)
    >>> th = torch.tensor([[1.0, 1.0, 0.5, 0.3]] * 2, dtype=torch.float64)
    >>> d = CensoredSSMDistribution(th, lik, model="ddm")
    >>> d.log_prob(lik.rt.new_zeros(2, 2)).shape
    torch.Size([2])
    """

    def __init__(
        self,
        theta: torch.Tensor,
        censored: CensoredLikelihood,
        *,
        model: str = "ddm",
        choices: Sequence[int] = (-1, 1),
        p_outlier: torch.Tensor | None = None,
        lapse: Any = None,
        validate_args: bool | None = None,
    ) -> None:
        self.censored = censored
        super().__init__(
            theta,
            censored.as_loglik(),
            model=model,
            choices=choices,
            p_outlier=p_outlier,
            lapse=lapse,
            validate_args=validate_args,
        )

    def expand(self, batch_shape, _instance=None):
        shape = torch.Size(batch_shape)
        theta = self.theta.expand(shape + self.theta.shape[-1:])
        p = None if self.p_outlier is None else self.p_outlier.expand(shape)
        return CensoredSSMDistribution(
            theta,
            self.censored,
            model=self.model,
            choices=self.choices,
            p_outlier=p,
            lapse=self.lapse,
        )

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Censoring-aware pointwise log-likelihood ``(..., N)``."""
        n = self.censored.data.n_obs
        if value.shape[-2:] != (n, 2):
            raise ValueError(
                f"value: this distribution is bound to {n} observed rows (shape ({n}, 2)), "
                f"got {tuple(value.shape)}"
            )
        return self.censored(self.theta, p_outlier=self.p_outlier, lapse=self.lapse)

    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:  # noqa: B008 (parent's API)
        """Simulated ``(rt, response)`` rows; ``rt >= deadline`` recoded to ``-999.0``."""
        out = super().sample(sample_shape)
        dl = self.censored.deadline
        if dl is None:
            return out
        rt = out[..., 0]
        late = rt >= dl.to(rt)
        rt = torch.where(late, torch.full_like(rt, MISSING_DATA_VALUE), rt)
        return torch.stack([rt, out[..., 1]], dim=-1)
