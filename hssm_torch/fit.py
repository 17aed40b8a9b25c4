"""Hydra app: data file + model + formulas + sampler -> a run folder with the fit.

    python -m hssm_torch.fit data.path=trials.csv model=ddm_regression sampler.draws=500
    python -m hssm_torch.fit -m data.path=trials.csv sampler=nuts,svi     # a sweep
    hssmt-fit ...                                                        # console script

The run folder holds ``model/`` (spec.json, data.csv, traces.nc or vi.nc: reload with
``HSSM.load``), ``summary.csv``, the plots and Hydra's ``.hydra/`` folder with the resolved
config. With ``plots.enabled`` (default) a posterior predictive of ``plots.predictive_draws``
draws per chain is simulated (and kept in the saved InferenceData) and four PNGs are written
(Agg backend): ``trace.png`` and ``forest.png`` (ArviZ, population-level variables and group
sigmas), ``predictive.png`` (:func:`hssm_torch.plotting.plot_predictive`) and
``quantile_probability.png`` (:func:`hssm_torch.plotting.plot_quantile_probability`).
``plots.enabled=false`` skips them. Configs live in ``configs/fit/`` (groups ``model/``,
``sampler/``, ``data/``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

__all__ = ["PLOT_FILES", "load_data", "main", "plot_settings", "run", "write_run_plots"]

#: The PNG files written by :func:`write_run_plots`, in order.
PLOT_FILES: tuple[str, ...] = (
    "trace.png",
    "forest.png",
    "predictive.png",
    "quantile_probability.png",
)

logger = logging.getLogger(__name__)

CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "configs" / "fit")


def load_data(cfg: DictConfig) -> pd.DataFrame:
    """Read the data described by the ``data`` config group."""
    source = cfg.get("source", "file")
    if source == "simulated":
        from hssm_torch.demo import simulate_hierarchical

        return simulate_hierarchical(int(cfg.n_participants), int(cfg.n_trials), int(cfg.seed))
    if source != "file":
        raise ValueError(f"data.source: expected 'file' or 'simulated', got {source!r}")
    path = Path(hydra.utils.to_absolute_path(str(cfg.path)))
    if not path.is_file():
        raise FileNotFoundError(f"data.path: file {str(path)!r} does not exist")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix in (".csv", ".txt"):
        return pd.read_csv(path)
    raise ValueError(f"data.path: expected a .csv or .parquet file, got {path.name!r}")


def _import_callable(ref: str):
    import importlib

    mod, _, qual = ref.partition(":")
    try:
        obj: Any = importlib.import_module(mod)
        for part in qual.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"model.loglik: cannot import {ref!r} ({err})") from None
    return obj


def run(cfg: DictConfig, out: Path) -> Any:
    """Build the model from ``cfg``, fit it and write the run folder ``out``."""
    from hssm_torch.model import HSSM

    torch.set_num_threads(int(cfg.threads))
    data = load_data(cfg.data)
    m = OmegaConf.to_container(cfg.model, resolve=True)
    loglik = m.get("loglik")
    if isinstance(loglik, str) and ":" in loglik and not Path(loglik).exists():
        loglik = _import_callable(loglik)  # "package.module:function" likelihood
    elif loglik is not None:
        loglik = hydra.utils.to_absolute_path(str(loglik))
    model = HSSM(
        data,
        m["name"],
        include=m.get("include") or None,
        loglik_kind=m.get("loglik_kind"),
        loglik=loglik,
        p_outlier=m.get("p_outlier"),
        global_formula=m.get("global_formula"),
        link_settings=m.get("link_settings"),
        device=cfg.device,
    )
    logger.info("%s", model)
    s = OmegaConf.to_container(cfg.sampler, resolve=True)
    method = s.pop("method")
    if method == "nuts":
        idata = model.sample(seed=int(cfg.seed), progress=bool(cfg.progress), **s)
    elif method == "svi":
        idata = model.vi(seed=int(cfg.seed), progress=bool(cfg.progress), **s)
    else:
        raise ValueError(f"sampler.method: expected 'nuts' or 'svi', got {method!r}")
    enabled, predictive_draws = plot_settings(cfg.get("plots", True))
    if enabled:
        draws = min(predictive_draws, int(idata.posterior.sizes["draw"]))
        model.sample_posterior_predictive(
            idata, draws=draws, seed=int(cfg.seed), progress=bool(cfg.progress)
        )
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "model")
    summary = model.summary(idata)
    summary.to_csv(out / "summary.csv")
    logger.info("\n%s", summary)
    if enabled:
        write_run_plots(model, idata, out)
    return idata


def plot_settings(plots: Any) -> tuple[bool, int]:
    """``(enabled, predictive_draws)`` from the ``plots`` config (a mapping or a bool).

    Example
    -------
    >>> plot_settings({"enabled": True, "predictive_draws": 50})
    (True, 50)
    >>> plot_settings(False)
    (False, 100)
    """
    if isinstance(plots, bool):
        return plots, 100
    if isinstance(plots, DictConfig):
        plots = OmegaConf.to_container(plots, resolve=True)
    if not isinstance(plots, dict):
        raise ValueError(
            f"plots: expected {{enabled: bool, predictive_draws: int}} or a bool, got {plots!r}"
        )
    unknown = sorted(set(plots) - {"enabled", "predictive_draws"})
    if unknown:
        raise ValueError(f"plots: unknown key(s) {unknown}; expected enabled, predictive_draws")
    enabled = plots.get("enabled", True)
    draws = plots.get("predictive_draws", 100)
    if not isinstance(enabled, bool):
        raise ValueError(f"plots.enabled: expected true or false, got {enabled!r}")
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise ValueError(f"plots.predictive_draws: expected an integer >= 1, got {draws!r}")
    return enabled, draws


def _save(fig: Any, path: Path, **kwargs: Any) -> Path:
    """Save ``fig`` as PNG under a temporary name, then rename it to ``path``."""
    import os

    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png", **kwargs)
    os.replace(tmp, path)
    return path


def write_run_plots(model: Any, idata: Any, folder: Path) -> list[Path]:
    """Write :data:`PLOT_FILES` into ``folder`` (Agg backend); returns their paths.

    ``trace.png`` / ``forest.png``: ArviZ plots of the population-level variables and group
    sigmas. ``predictive.png`` / ``quantile_probability.png``: observed against the
    ``posterior_predictive`` group of ``idata`` (which must exist), one panel / no
    conditions.

    Example
    -------
    >>> write_run_plots(model, idata, Path("run"))          # doctest: +SKIP
    """
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import arviz as az
    import matplotlib.pyplot as plt
    import numpy as np

    from hssm_torch.plotting import plot_predictive, plot_quantile_probability

    if "posterior_predictive" not in idata.groups():
        raise ValueError("idata: write_run_plots needs a posterior_predictive group")
    folder = Path(folder)
    names = [n for n in model.var_names if "|" not in n or n.endswith("_sigma")]
    paths = []
    with warnings.catch_warnings():
        # ArviZ 0.23 calls a matplotlib helper deprecated in matplotlib 3.11 (not actionable)
        warnings.filterwarnings("ignore", message=".*alias_mapping.*", category=DeprecationWarning)
        axes = az.plot_trace(idata, var_names=names, compact=True)
        fig = np.asarray(axes).ravel()[0].figure
        fig.tight_layout()
        paths.append(_save(fig, folder / PLOT_FILES[0], dpi=80))
        plt.close(fig)
        axes = az.plot_forest(idata, var_names=names, combined=True, hdi_prob=0.95)
        fig = np.asarray(axes).ravel()[0].figure
        paths.append(_save(fig, folder / PLOT_FILES[1], dpi=80, bbox_inches="tight"))
        plt.close(fig)
    fig = plot_predictive(model, idata)
    paths.append(_save(fig, folder / PLOT_FILES[2], dpi=80))
    plt.close(fig)
    fig = plot_quantile_probability(model, idata)
    paths.append(_save(fig, folder / PLOT_FILES[3], dpi=80))
    plt.close(fig)
    logger.info("plots: %s", ", ".join(p.name for p in paths))
    return paths


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="fit")
def main(cfg: DictConfig) -> None:
    """Entry point of ``python -m hssm_torch.fit`` / ``hssmt-fit``."""
    out = Path(hydra.core.hydra_config.HydraConfig.get().runtime.output_dir)
    run(cfg, out)
    logger.info("run folder: %s", out)


if __name__ == "__main__":  # pragma: no cover
    main()
