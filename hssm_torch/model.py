"""The :class:`HSSM` class: data + model + formulas -> a Pyro model, fitted with NUTS or SVI.

Example
-------
>>> import hssm_torch as hsm                                        # doctest: +SKIP
>>> model = hsm.HSSM(df, model="ddm",                              # doctest: +SKIP
...                  include=[{"name": "v", "formula": "v ~ 1 + x + (1|participant_id)"}])
>>> idata = model.sample(chains=2, draws=500, tune=500)             # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyro.distributions as pdist
import torch

from hssm_torch.builder import ModelBuilder
from hssm_torch.param import Param, ResolvedParam, _prior_json, _prior_unjson, resolve_param
from hssm_torch.priors import Prior, prior_from_user

__all__ = ["HSSM", "LOGLIK_KINDS", "ModelInfo"]

logger = logging.getLogger(__name__)

#: Accepted values of ``loglik_kind``.
LOGLIK_KINDS: tuple[str, ...] = ("analytical", "approx_differentiable", "blackbox")

#: Penalty log-likelihood for trials whose parameters leave a network's training box.
NETWORK_OUT_OF_BOX_LOGLIK = -66.1  # also returned where rt <= t (the analytical floor)


@dataclass(frozen=True)
class ModelInfo:
    """What the fitting code needs to know about a model."""

    name: str
    param_names: tuple[str, ...]
    support: dict[str, tuple[float, float]]
    box: dict[str, tuple[float, float]]
    defaults: dict[str, float]
    choices: tuple[int, ...]
    registered: bool

    @classmethod
    def build(cls, model: Any, model_config: Mapping[str, Any] | None) -> ModelInfo:
        """From a registry name / ModelSpec, optionally overridden by ``model_config``.

        ``model_config`` keys: ``list_params``, ``bounds`` ({name: [lo, hi]}), ``choices``,
        ``defaults``; a model absent from the registry needs ``list_params`` and ``bounds``.
        """
        from simulators import ModelSpec, get_model

        cfg = dict(model_config or {})
        allowed = {"list_params", "bounds", "choices", "defaults", "description"}
        unknown = sorted(set(cfg) - allowed)
        if unknown:
            raise ValueError(f"model_config: unknown key(s) {unknown}; expected {sorted(allowed)}")
        spec = None
        if isinstance(model, ModelSpec):
            spec = model
        elif not isinstance(model, str):
            raise TypeError(f"model: expected a registry name or ModelSpec, got {model!r}")
        else:
            try:
                spec = get_model(model)
            except ValueError:
                if "list_params" not in cfg or "bounds" not in cfg:
                    raise
        if spec is not None:
            names = tuple(cfg.get("list_params", spec.param_names))
            support = {p.name: tuple(map(float, p.support)) for p in spec.params}
            box = {p.name: (float(p.lower), float(p.upper)) for p in spec.params}
            defaults = dict(spec.defaults)
            choices = tuple(cfg.get("choices", spec.choices))
            name = spec.name
        else:
            names = tuple(cfg["list_params"])
            support, box, defaults, choices, name = (
                {},
                {},
                {},
                tuple(cfg.get("choices", (-1, 1))),
                model,
            )
        for n, b in dict(cfg.get("bounds", {})).items():
            if n not in names:
                raise ValueError(
                    f"model_config['bounds']: {n!r} is not in list_params {list(names)}"
                )
            support[n] = box[n] = (float(b[0]), float(b[1]))
        for n in names:
            if n not in support:
                raise ValueError(f"model_config: no bounds for parameter {n!r}")
            lo, hi = box[n]
            mid = 0.5 * (lo + hi) if math.isfinite(lo) and math.isfinite(hi) else max(lo, 0.0) + 0.5
            defaults.setdefault(n, mid)
        defaults.update({k: float(v) for k, v in dict(cfg.get("defaults", {})).items()})
        return cls(
            name, names, support, box, defaults, tuple(int(c) for c in choices), spec is not None
        )


def _validate_data(data: Any, choices: Sequence[int]) -> pd.DataFrame:
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
    missing = [c for c in ("rt", "response") if c not in data.columns]
    if missing:
        raise ValueError(
            f"data: missing column(s) {missing}; expected 'rt' (seconds) and 'response' "
            f"(found {list(data.columns)})"
        )
    if len(data) == 0:
        raise ValueError("data: no rows")
    rt = pd.to_numeric(data["rt"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(rt)
    if bad.any():
        raise ValueError(
            f"data: column 'rt' has {int(bad.sum())} missing/non-numeric value(s) "
            f"(first at row {int(np.argmax(bad))}); expected positive seconds"
        )
    if (rt <= 0).any():
        i = int(np.argmax(rt <= 0))
        raise ValueError(
            f"data: column 'rt' must be > 0; row {i} has {rt[i]} ({int((rt <= 0).sum())} such rows)"
        )
    resp = pd.to_numeric(data["response"], errors="coerce").to_numpy(dtype=float)
    outside = ~np.isin(resp, np.asarray(choices, dtype=float))
    if outside.any():
        vals = sorted(set(data["response"][outside].tolist()), key=str)[:5]
        raise ValueError(
            f"data: column 'response' has value(s) {vals} outside choices {list(choices)}"
        )
    return data.reset_index(drop=True)


def _resolve_loglik(
    info: ModelInfo, loglik_kind: str | None, loglik: Any, dtype, device
) -> tuple[str, Callable, Any]:
    """Return (kind, callable(rt, response, theta), network-or-None)."""
    if loglik_kind is not None and loglik_kind not in LOGLIK_KINDS:
        raise ValueError(f"loglik_kind: expected one of {list(LOGLIK_KINDS)}, got {loglik_kind!r}")
    is_net = isinstance(loglik, (torch.nn.Module, str, Path))
    if loglik_kind is None:
        if loglik is None:
            from hssm_torch.likelihoods import get_likelihood

            try:
                get_likelihood(info.name)
                loglik_kind = "analytical"
            except (ValueError, KeyError):
                loglik_kind = "approx_differentiable"
        else:
            loglik_kind = "approx_differentiable" if is_net else "analytical"
    if loglik_kind in ("analytical", "blackbox"):
        if loglik is None:
            if loglik_kind == "blackbox":
                raise ValueError("loglik: loglik_kind='blackbox' needs a loglik callable")
            from hssm_torch.likelihoods import get_likelihood

            fn = get_likelihood(info.name)
            return loglik_kind, fn, None
        if not callable(loglik) or isinstance(loglik, torch.nn.Module):
            raise TypeError(
                f"loglik: loglik_kind={loglik_kind!r} expects a callable (rt, response, theta), "
                f"got {type(loglik).__name__}"
            )
        return loglik_kind, loglik, None
    # approx_differentiable: a network
    width = len(info.param_names) + 2
    if loglik is None:
        from hssm_torch.network_registry import load_network

        net = load_network(info.name, "lan")
    elif isinstance(loglik, (str, Path)):
        from hssm_torch.onnx_loader import load_onnx

        net = load_onnx(loglik)
    elif isinstance(loglik, torch.nn.Module):
        net = loglik
    else:
        raise TypeError(
            f"loglik: approx_differentiable expects an ONNX path or torch module, got "
            f"{type(loglik).__name__}"
        )
    got = getattr(net, "input_width", None)
    if got is not None and got != width:
        raise ValueError(
            f"loglik: the network takes {got} input columns but model {info.name!r} needs "
            f"{width} ({list(info.param_names)} + rt, response)"
        )
    # The network runs in the floating dtype of its weights (float32 for ONNX exports, as
    # it was trained and as HSSM evaluates it), whatever the model's dtype: inputs are cast
    # to it and the log-likelihood back (float64 evaluation of float32 weights costs 2.2x
    # the time on the CPU for no accuracy). A module converted with ``.double()`` runs in
    # float64, a module without weights in the model's dtype. The censoring networks
    # (CPN/OPN) follow the same rule.
    net = net.to(device=device)
    from hssm_torch.onnx_loader import network_dtype

    net_dtype = network_dtype(net, default=dtype)
    lo = torch.tensor([info.box[n][0] for n in info.param_names], dtype=dtype, device=device)
    hi = torch.tensor([info.box[n][1] for n in info.param_names], dtype=dtype, device=device)

    t_col = info.param_names.index("t") if "t" in info.param_names else None

    def network_loglik(
        rt: torch.Tensor, response: torch.Tensor, theta: torch.Tensor
    ) -> torch.Tensor:
        batch = theta.shape[:-1]
        x = torch.cat(
            [theta, rt.expand(batch).unsqueeze(-1), response.expand(batch).unsqueeze(-1)], dim=-1
        )
        out = net(x.reshape(-1, x.shape[-1]).to(net_dtype)).reshape(batch).to(theta.dtype)
        inside = ((theta >= lo) & (theta <= hi)).all(-1)
        if t_col is not None:
            # as the analytical likelihoods (and the LAN's negative-rt training labels):
            # no density before the non-decision time, whatever the network extrapolates
            inside = inside & (rt > theta[..., t_col])
        return torch.where(inside, out, torch.full_like(out, NETWORK_OUT_OF_BOX_LOGLIK))

    return loglik_kind, network_loglik, net


class HSSM:
    """A hierarchical sequential sampling model, HSSM-style.

    Parameters
    ----------
    data : pandas.DataFrame
        Columns ``rt`` (seconds, > 0), ``response`` (in ``choices``) and any covariates.
    model : str or simulators.ModelSpec
        Registry name (``simulators.list_models()``) or a spec; a model outside the
        registry needs ``model_config`` and ``loglik``.
    include : list of dict or Param, optional
        Per-parameter specifications (``name``, ``formula``, ``prior``, ``link``, ``bounds``).
    loglik_kind : {"analytical", "approx_differentiable", "blackbox"}, optional
        Default: analytical when the package has one for the model, else the shipped LAN.
    loglik : callable, torch module or ONNX path, optional
        A likelihood ``(rt, response, theta) -> log p`` or a network ``[theta, rt, response]``.
    choices : sequence of int, optional
        Response codes (default: the model's).
    p_outlier : float, dict, Prior, Param, optional
        Lapse probability: a number (fixed), a prior, or a regression (``Param``/dict with
        a formula). ``None`` or 0: no lapse mixture.
    lapse : dict, Prior or pyro distribution, optional
        Lapse density over rt (default ``Uniform(0, 20)``, as HSSM).
    global_formula : str, optional
        Formula (``"y ~ 1 + (1|participant_id)"``) for every parameter not in ``include``.
    link_settings : {None, "log_logit", "gen_logit"}, optional
        Default links of regression parameters (see :func:`hssm_torch.links.default_link`);
        network likelihoods default to ``"gen_logit"`` so they never leave the training box.
    prior_settings : {"safe", None}
        ``"safe"``: bounded HSSM-like defaults for every variable without a user prior.
    noncentered : bool
        Group terms non-centred (``_offset * _sigma``).
    initval : dict, optional
        Initial values by variable name (e.g. ``{"v_Intercept": 0.5}``).
    device : str or torch.device, optional
        Where data, parameters and the likelihood live.
    model_config : dict, optional
        Overrides/defines ``list_params``, ``bounds``, ``choices``, ``defaults``.
    dtype : torch.dtype
        Floating type of the model (float64 by default: NUTS energies in double precision).
    """

    def __init__(
        self,
        data: pd.DataFrame,
        model: Any = "ddm",
        include: Sequence[Mapping[str, Any] | Param] | None = None,
        loglik_kind: str | None = None,
        loglik: Any = None,
        choices: Sequence[int] | None = None,
        p_outlier: Any = None,
        lapse: Any = None,
        global_formula: str | None = None,
        link_settings: str | None = None,
        prior_settings: str | None = "safe",
        noncentered: bool = True,
        initval: Mapping[str, Any] | None = None,
        device: str | torch.device | None = None,
        model_config: Mapping[str, Any] | None = None,
        dtype: torch.dtype = torch.float64,
        missing_data: bool | float = False,
        deadline: bool | str = False,
        loglik_missing_data: Any = None,
    ) -> None:
        if prior_settings not in ("safe", None):
            raise ValueError(f"prior_settings: expected 'safe' or None, got {prior_settings!r}")
        self.info = ModelInfo.build(model, model_config)
        self.model_name = self.info.name
        self.choices = tuple(
            int(c) for c in (choices if choices is not None else self.info.choices)
        )
        self.censored_data = None
        observed = None
        if missing_data is not False or deadline is not False:
            from hssm_torch.censoring import OBSERVED, prepare_censored_data

            if not isinstance(data, pd.DataFrame):
                raise TypeError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
            cd = prepare_censored_data(
                data, missing_data=missing_data, deadline=deadline, choices=self.choices
            )
            observed = cd.trial_class == OBSERVED
            if not observed.any():
                raise ValueError("data: every trial is missing or past its deadline")
            _validate_data(data.loc[observed], self.choices)
            self.data = data.reset_index(drop=True).assign(rt=cd.rt)
            self.censored_data = cd if cd.n_observed < cd.n_obs or cd.deadline is not None else None
        else:
            self.data = _validate_data(data, self.choices)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.dtype = dtype
        self.loglik_kind, self._loglik, self._network = _resolve_loglik(
            self.info, loglik_kind, loglik, dtype, self.device
        )
        if not self.info.registered and loglik is None:
            raise ValueError(f"loglik: model {self.model_name!r} is not registered; pass loglik")
        self.bounds = (
            self.info.box if self.loglik_kind == "approx_differentiable" else self.info.support
        )
        if link_settings is None and self.loglik_kind == "approx_differentiable":
            link_settings = "gen_logit"
        self.link_settings = link_settings
        self.prior_settings = prior_settings
        self.noncentered = bool(noncentered)
        self.global_formula = global_formula
        self.model_config = dict(model_config) if model_config else None
        self._init_kwargs = {
            "model": self.model_name if self.info.registered else model,
            "include": None,
            "loglik_kind": self.loglik_kind,
            "choices": list(self.choices),
            "global_formula": global_formula,
            "link_settings": link_settings,
            "prior_settings": prior_settings,
            "noncentered": self.noncentered,
            "initval": {k: np.asarray(v).tolist() for k, v in (initval or {}).items()},
            "model_config": self.model_config,
            "dtype": str(dtype).replace("torch.", ""),
            "loglik_user": loglik is not None and not isinstance(loglik, (str, Path)),
            "loglik_shipped": loglik is None,
            "missing_data": missing_data,
            "deadline": deadline,
        }
        self._loglik_source = loglik if isinstance(loglik, (str, Path)) else None
        self._loglik_missing_data = loglik_missing_data

        # ---- parameters
        user = [Param.from_user(p) for p in (include or [])]
        allowed = set(self.info.param_names) | {"p_outlier"}
        by_name: dict[str, Param] = {}
        for p in user:
            if p.name not in allowed:
                raise ValueError(
                    f"include: unknown parameter {p.name!r}; model {self.model_name!r} has "
                    f"{list(self.info.param_names)} (and 'p_outlier')"
                )
            if p.name in by_name:
                raise ValueError(f"include: parameter {p.name!r} given twice")
            by_name[p.name] = p
        if p_outlier is not None and "p_outlier" in by_name:
            raise ValueError("p_outlier: given both as an argument and in include")
        if p_outlier is not None:
            by_name["p_outlier"] = self._p_outlier_param(p_outlier)
        if global_formula is not None:
            rhs = global_formula.partition("~")[2] if "~" in global_formula else global_formula
            for n in self.info.param_names:
                by_name.setdefault(n, Param(n, formula=f"{n} ~ {rhs.strip()}"))
        self.include = [by_name[n] for n in [*self.info.param_names, "p_outlier"] if n in by_name]
        self._init_kwargs["include"] = [p.to_dict() for p in self.include]

        obs_rt = self.data["rt"] if observed is None else self.data.loc[observed, "rt"]
        min_rt = float(obs_rt.min())
        resolved: list[ResolvedParam] = []
        for n in self.info.param_names:
            p = by_name.get(n, Param(n))
            if prior_settings is None and p.prior is None and p.formula is None:
                raise ValueError(
                    f"prior_settings=None: parameter {n!r} needs a prior or a fixed value"
                )
            init = self.info.defaults[n]
            if n == "t":
                init = min(max(init, 0.05), 0.5 * min_rt)
            resolved.append(
                resolve_param(
                    p,
                    self.data,
                    bounds=self.bounds[n],
                    default=init,
                    link_setting=link_settings,
                    init=init,
                )
            )
        self.params = resolved
        self.p_outlier = None
        po = by_name.get("p_outlier")
        if po is not None and not (isinstance(po.prior, (int, float)) and po.prior == 0):
            self.p_outlier = resolve_param(
                po,
                self.data,
                bounds=(0.0, 1.0),
                default=0.05,
                link_setting="log_logit",
                init=0.05,
            )
        self.lapse = self._lapse(lapse)
        self._censored = None
        if self.censored_data is not None:
            from hssm_torch.censoring import CensoredLikelihood

            has_deadline = self.censored_data.deadline is not None
            self._censored = CensoredLikelihood(
                self.model_name,
                self._loglik,
                self.censored_data,
                cpn=None if has_deadline else loglik_missing_data,
                opn=loglik_missing_data if has_deadline else None,
                choices=self.choices,
                device=self.device,
                dtype=dtype,
            )
        self._init_kwargs["lapse"] = None if lapse is None else _prior_json(lapse)
        rt = torch.tensor(self.data["rt"].to_numpy(dtype=float), dtype=dtype, device=self.device)
        resp = torch.tensor(
            self.data["response"].to_numpy(dtype=float), dtype=dtype, device=self.device
        )
        self.builder = ModelBuilder(
            self.params,
            self.p_outlier,
            self._loglik,
            model_name=self.model_name,
            choices=self.choices,
            rt=rt,
            response=resp,
            lapse=self.lapse,
            noncentered=self.noncentered,
            initval=initval,
            censored=self._censored,
        )
        self.traces = None
        self.vi_idata = None
        self.vi_losses: list[float] | None = None

    # ------------------------------------------------------------------ setup helpers
    @staticmethod
    def _p_outlier_param(spec: Any) -> Param:
        if isinstance(spec, Param):
            return Param("p_outlier", spec.formula, spec.prior, spec.link, spec.bounds)
        if isinstance(spec, (int, float)) and not isinstance(spec, bool):
            if not 0.0 <= spec < 1.0:
                raise ValueError(f"p_outlier: expected a number in [0, 1), got {spec}")
            return Param("p_outlier", prior=float(spec))
        if isinstance(spec, Mapping) and ("formula" in spec or "prior" in spec):
            d = {k: v for k, v in spec.items() if k != "name"}
            return Param.from_user({"name": "p_outlier", **d})
        return Param("p_outlier", prior=prior_from_user(spec, "'p_outlier'"))

    def _lapse(self, lapse: Any) -> pdist.Distribution | None:
        if self.p_outlier is None:
            return None
        if lapse is None:
            lapse = {"name": "Uniform", "lower": 0.0, "upper": 20.0}
        lapse = _prior_unjson(lapse)
        d = prior_from_user(lapse, "lapse")
        return d.to_pyro(self.dtype, self.device) if isinstance(d, Prior) else d

    # ------------------------------------------------------------------ properties
    @property
    def pyro_model(self) -> Callable[[], None]:
        """The Pyro model function (takes no arguments)."""
        return self.builder.model

    @property
    def n_obs(self) -> int:
        return self.builder.n_obs

    @property
    def var_names(self) -> list[str]:
        """Posterior variable names (Bambi/HSSM style), in model order."""
        names = []
        for p in [*self.params, *([self.p_outlier] if self.p_outlier else [])]:
            names += p.variable_names()
        return names

    def __repr__(self) -> str:
        lines = [
            f"HSSM(model={self.model_name!r}, loglik_kind={self.loglik_kind!r}, "
            f"n_obs={self.n_obs}, choices={list(self.choices)})"
        ]
        for p in [*self.params, *([self.p_outlier] if self.p_outlier else [])]:
            if p.kind == "fixed":
                lines.append(f"  {p.name} = {p.value}")
            elif p.kind == "scalar":
                pr = p.prior.to_dict() if isinstance(p.prior, Prior) else p.prior
                lines.append(f"  {p.name} ~ {pr}")
            else:
                lines.append(f"  {p.design.formula.source}  (link: {p.link.name})")
                for k, v in p.term_priors.items():
                    lines.append(f"      {k} ~ {v.to_dict() if isinstance(v, Prior) else v}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ inference
    def sample(
        self,
        sampler: str = "nuts",
        chains: int = 4,
        draws: int = 1000,
        tune: int = 1000,
        target_accept: float = 0.8,
        seed: int | None = None,
        progress: bool = True,
        jit: bool = True,
        max_tree_depth: int = 10,
        log_likelihood: bool = True,
        compile: bool = False,
    ):
        """Sample the posterior with Pyro NUTS; returns (and stores in ``traces``) InferenceData.

        Parameters
        ----------
        sampler : {"nuts", "nuts_batched"}
            ``"nuts"``: Pyro NUTS, one chain after the other. ``"nuts_batched"``: our NUTS
            that advances all chains together with one batched likelihood call per
            leapfrog step (:func:`hssm_torch.samplers.run_batched_nuts`).
        chains, draws, tune : int
            ``"nuts"`` runs the chains one after the other (see docs/fitting.md for why);
            ``"nuts_batched"`` advances them together.
        target_accept : float
            Step-size adaptation target.
        seed : int, optional
            ``"nuts"``: chain ``c`` uses ``seed + c``; ``"nuts_batched"``: one generator
            seeded with ``seed`` drives all chains. Same seed, same draws.
        progress : bool
            tqdm progress bar (per chain for ``"nuts"``).
        jit : bool
            Compile the potential energy with the PyTorch JIT (``"nuts"`` only; the
            batched sampler runs eagerly).
        max_tree_depth : int
        log_likelihood : bool
            Store the pointwise log-likelihood group.
        compile : bool
            ``"nuts_batched"`` only: compile each leapfrog step (value, gradient and the
            sampler's leaf update, one graph) with ``torch.compile`` before sampling. On
            the 2-core test CPU: 1.63x HSSM's ESS/s on a 500-trial ddm (mean of 3 seeds)
            and 2.04x on a 10 x 100 hierarchical model, sampling time only; the one-off
            compile (10-15 s with a warm disk cache, about 40 s cold) is stored as
            ``attrs["compile_time"]`` and not counted in ``sampling_time`` (counting it:
            1.02x and 1.34x). Little gain for a network likelihood. Falls back to eager
            with a logged warning if compiling fails (e.g. censored models). Off by
            default: it pays for long runs only. See docs/fitting.md.
        """
        from hssm_torch.inference import build_idata, check_fit, check_nuts_arguments, run_nuts

        if sampler not in ("nuts", "nuts_batched"):
            raise ValueError(
                f"sampler: expected 'nuts' or 'nuts_batched' (use vi() for SVI), got {sampler!r}"
            )
        check_nuts_arguments(tune=tune, target_accept=target_accept, chains=chains, draws=draws)
        if not isinstance(compile, bool):
            raise TypeError(f"compile: expected True or False, got {compile!r}")
        extra = {}
        if sampler == "nuts_batched":
            from hssm_torch.samplers import run_batched_nuts

            run = run_batched_nuts
            extra["compile"] = compile
        elif compile:
            raise ValueError(
                "compile: only sampler='nuts_batched' compiles with torch.compile "
                "(Pyro NUTS uses jit=True)"
            )
        else:
            run = run_nuts
        samples, stats, timing = run(
            self.builder,
            chains=chains,
            draws=draws,
            tune=tune,
            target_accept=target_accept,
            seed=seed,
            progress=progress,
            jit=jit,
            max_tree_depth=max_tree_depth,
            **extra,
        )
        idata, near = build_idata(self, samples, stats, log_likelihood=log_likelihood)
        idata.attrs.update(
            {
                "sampler": "pyro NUTS" if sampler == "nuts" else "batched NUTS",
                "sampling_time": timing["sampling_time"],
                "n_leapfrog_total": timing["n_leapfrog_total"],
                "jit_gap": timing["jit_gap"],
                **{
                    k: timing[k]
                    for k in (
                        "n_potential_calls",
                        "n_batched_steps",
                        "init_time",
                        "compile_time",
                        "compiled",
                    )
                    if k in timing
                },
                "tuning_steps": tune,
                "seed": -1 if seed is None else seed,
            }
        )
        check_fit(self, idata, near)
        self.traces = idata
        return idata

    def vi(
        self,
        method: str = "svi",
        guide: str = "normal",
        steps: int = 2000,
        lr: float = 0.01,
        draws: int = 1000,
        seed: int | None = None,
        progress: bool = True,
        num_particles: int = 1,
    ):
        """Fit with Pyro SVI and an autoguide; returns draws from the guide as InferenceData.

        Parameters
        ----------
        method : {"svi"}
        guide : {"normal", "mvn", "lowrank"}
            ``AutoNormal``, ``AutoMultivariateNormal``, ``AutoLowRankMultivariateNormal``.
        steps, lr : int, float
            Adam steps and learning rate (ELBO losses kept in ``vi_losses``).
        draws : int
            Draws from the fitted guide (one chain).
        """
        from hssm_torch.inference import build_idata, run_svi

        if method != "svi":
            raise ValueError(f"method: expected 'svi', got {method!r}")
        samples, losses = run_svi(
            self.builder,
            guide=guide,
            steps=steps,
            lr=lr,
            draws=draws,
            seed=seed,
            progress=progress,
            num_particles=num_particles,
        )
        idata, _ = build_idata(self, samples, None)
        idata.attrs.update({"inference": f"pyro SVI ({guide})", "steps": steps})
        self.vi_idata, self.vi_losses = idata, losses
        return idata

    def find_map(
        self, steps: int = 2000, lr: float = 0.01, seed: int | None = None, progress: bool = False
    ) -> dict[str, np.ndarray]:
        """Maximum a posteriori values (Pyro ``AutoDelta`` + Adam), by variable name."""
        from hssm_torch.inference import run_map

        return run_map(self, steps=steps, lr=lr, seed=seed, progress=progress)

    def sample_posterior_predictive(
        self,
        idata=None,
        draws: int | None = None,
        chunk_draws: int = 100,
        seed: int | None = None,
        progress: bool = True,
        data: pd.DataFrame | None = None,
        kind: str = "response",
        inplace: bool = True,
    ):
        """Simulate one ``(rt, response)`` per posterior draw and trial, on this model's data
        or on new data.

        Draws are simulated in chunks of ``chunk_draws`` so memory stays flat as the number
        of draws grows; lapses and deadlines are applied as in the model. The result is
        stored as the ``posterior_predictive`` group (variable ``"rt,response"`` on
        ``(chain, draw, __obs__, rt,response_dim)``) of ``idata`` (default ``traces``),
        which is returned.

        Parameters
        ----------
        idata : arviz.InferenceData, optional
            With a ``posterior`` group (default ``traces``).
        draws : int, optional
            Draws per chain, evenly spread (default all).
        chunk_draws : int
            Draws simulated together (peak memory ~ ``chunk_draws * N`` trials).
        seed : int, optional
            Seeds the simulation and the effects of new group levels (``None``: drawn,
            logged).
        progress : bool
            tqdm bar over chunks.
        data : pandas.DataFrame, optional
            New trials: new covariate values and/or new levels of group factors (new
            participants). Encoded with the fitted formulas; an unseen level of a fixed-effect
            categorical raises ``ValueError``; unseen group levels get effects drawn per
            posterior draw from ``Normal(0, <group>_sigma)``. With a deadline model the
            deadline column is needed. ``__obs__`` then indexes the rows of ``data``.
        kind : {"response", "parameters"}
            ``"response"``: simulated ``"rt,response"``. ``"parameters"``: the per-trial
            parameter draws, one variable per parameter (``v``, ``a``, ... and ``p_outlier``
            with lapses) on ``(chain, draw, __obs__)``, nothing simulated.
        inplace : bool
            Add the group to ``idata`` (replacing an existing ``posterior_predictive``) and
            return it; ``False`` returns a new InferenceData holding only the group.

        Example
        -------
        >>> idata = model.sample(chains=2, draws=200, tune=200)      # doctest: +SKIP
        >>> model.sample_posterior_predictive(idata, draws=50)       # doctest: +SKIP
        >>> new = pd.DataFrame({"x": [0.0, 1.0], "participant_id": [99, 99]})
        >>> pred = model.sample_posterior_predictive(data=new, seed=1,  # doctest: +SKIP
        ...                                          inplace=False)
        """
        import arviz as az

        from hssm_torch.predictive import posterior_predictive

        idata = idata if idata is not None else self.traces
        if idata is None or "posterior" not in idata.groups():
            raise ValueError("idata: expected an InferenceData with a posterior group; fit first")
        ds = posterior_predictive(
            self,
            idata,
            draws=draws,
            data=data,
            kind=kind,
            chunk_draws=chunk_draws,
            seed=seed,
            progress=progress,
        )
        if not inplace:
            return az.InferenceData(posterior_predictive=ds)
        if "posterior_predictive" in idata.groups():
            del idata.posterior_predictive
        idata.add_groups(posterior_predictive=ds)
        return idata

    def sample_prior_predictive(
        self,
        draws: int = 500,
        seed: int | None = None,
        data: pd.DataFrame | None = None,
        chunk_draws: int = 100,
        kind: str = "response",
        progress: bool = True,
    ):
        """Draw from the priors and simulate through the simulators.

        Every latent variable (coefficients, group sigmas and offsets, ``p_outlier`` when not
        fixed) is drawn from its prior; per-trial θ follows the formulas and links; one
        ``(rt, response)`` per (draw, trial) is simulated, with lapses and deadline recoding,
        ``chunk_draws`` draws at a time.

        Parameters
        ----------
        draws : int
            Prior draws (stored as one chain).
        seed : int, optional
            Seeds prior draws and simulation (``None``: drawn, logged).
        data : pandas.DataFrame, optional
            Trials to predict (default: the model's data; see
            :meth:`sample_posterior_predictive` for new data).
        chunk_draws, kind, progress :
            As :meth:`sample_posterior_predictive`.

        Returns
        -------
        arviz.InferenceData
            Groups ``prior`` (variables and dims as the posterior), ``prior_predictive``
            (as ``posterior_predictive``) and ``observed_data`` (the model's data, when
            ``data`` is None). When ``data`` is None and the model has ``traces``, the
            ``prior`` and ``prior_predictive`` groups are also put into ``traces``
            (replacing earlier ones).

        Example
        -------
        >>> pri = model.sample_prior_predictive(draws=200, seed=1)   # doctest: +SKIP
        >>> hsm.plot_predictive(model, pri, group="prior_predictive")  # doctest: +SKIP
        """
        from hssm_torch.predictive import prior_predictive

        out = prior_predictive(
            self,
            draws=draws,
            data=data,
            kind=kind,
            chunk_draws=chunk_draws,
            seed=seed,
            progress=progress,
        )
        if data is None and self.traces is not None:
            new = {g: getattr(out, g) for g in ("prior", "prior_predictive") if g in out.groups()}
            for g in ("prior", "prior_predictive"):
                if g in self.traces.groups():
                    delattr(self.traces, g)
            self.traces.add_groups(**new)
        return out

    def log_likelihood(
        self,
        idata=None,
        data: pd.DataFrame | None = None,
        seed: int | None = None,
        chunk_draws: int = 64,
    ):
        """Pointwise log-likelihood under the posterior draws of ``idata`` (default ``traces``).

        Without ``data``: an :class:`xarray.DataArray` ``(chain, draw, __obs__)`` recomputed
        on the model's own data (what ``idata.log_likelihood`` holds).

        With ``data`` (held-out trials, columns ``rt``, ``response`` and the formulas'):
        an ``arviz.InferenceData`` with ``posterior``, ``log_likelihood`` (``"rt,response"``
        on the new rows' ``__obs__``) and ``observed_data``, ready for ``az.loo``,
        ``az.waic`` and ``az.compare``. Covariates are encoded with the fitted formulas;
        unseen group levels get one effect per posterior draw from
        ``Normal(0, <group>_sigma)``, seeded by ``seed``; missing-RT / deadline trials are
        scored with the censored likelihood as in the model.

        Example
        -------
        >>> held = model.log_likelihood(data=test_df, seed=1)        # doctest: +SKIP
        >>> az.compare({"m1": held, "m2": other.log_likelihood(data=test_df, seed=1)})
        ...                                                          # doctest: +SKIP
        """
        idata = idata if idata is not None else self.traces
        if idata is None:
            raise ValueError("idata: nothing fitted yet; pass an InferenceData or call sample()")
        if data is not None:
            from hssm_torch.newdata import held_out_log_likelihood

            return held_out_log_likelihood(self, idata, data, seed=seed, chunk_draws=chunk_draws)
        from hssm_torch.inference import pointwise_from_idata

        return pointwise_from_idata(self, idata)

    def summary(self, idata=None, **kwargs):
        """``az.summary`` of the posterior variables (``var_names`` by default)."""
        import arviz as az

        idata = idata if idata is not None else self.traces
        if idata is None:
            raise ValueError("idata: nothing fitted yet; call sample() or vi() first")
        kwargs.setdefault("var_names", self.var_names)
        return az.summary(idata, **kwargs)

    # ------------------------------------------------------------------ io
    def save(self, path: str | Path) -> Path:
        """Write the specification (JSON) and ``traces`` (netcdf) to folder ``path``."""
        from hssm_torch.io import save_model

        return save_model(self, path)

    @classmethod
    def load(cls, path: str | Path, data: pd.DataFrame | None = None) -> HSSM:
        """Rebuild a model saved with :meth:`save` (traces restored)."""
        from hssm_torch.io import load_model

        return load_model(path, data=data)
