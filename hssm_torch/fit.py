"""Hydra app: data file + model + formulas + sampler -> a run folder with the fit.

    python -m hssm_torch.fit data.path=trials.csv model=ddm_regression sampler.draws=500
    python -m hssm_torch.fit -m data.path=trials.csv sampler=nuts,svi     # a sweep
    hssmt-fit ...                                                        # console script

The run folder holds ``model/`` (spec.json, data.csv, traces.nc or vi.nc: reload with
``HSSM.load``), ``summary.csv``, ``trace.png``/``forest.png`` (``plots=true``) and Hydra's
``.hydra/`` folder with the resolved config. Configs live in ``configs/fit/``
(groups ``model/``, ``sampler/``, ``data/``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

__all__ = ["load_data", "main", "run"]

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
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "model")
    summary = model.summary(idata)
    summary.to_csv(out / "summary.csv")
    logger.info("\n%s", summary)
    if cfg.plots:
        from hssm_torch.demo import write_plots

        names = [n for n in model.var_names if "|" not in n or n.endswith("_sigma")]
        write_plots(idata, names, out)
    return idata


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="fit")
def main(cfg: DictConfig) -> None:
    """Entry point of ``python -m hssm_torch.fit`` / ``hssmt-fit``."""
    out = Path(hydra.core.hydra_config.HydraConfig.get().runtime.output_dir)
    run(cfg, out)
    logger.info("run folder: %s", out)


if __name__ == "__main__":  # pragma: no cover
    main()
