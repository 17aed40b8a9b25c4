"""Hydra app: generate LAN / CPN / OPN training data as resumable shards.

Usage (see docs/training_data.md)::

    python -m simulators.generate model=angle n_parameter_sets=10000 output_dir=data/angle
    hssmt-generate model=ddm device=cuda                      # same, console script
    # four local jobs writing disjoint shards of one dataset (joblib launcher):
    python -m simulators.generate -m +generate/launch=joblib_local model=ddm
    # then merge and validate the manifest:
    python -m simulators.training_data merge data/ddm

Rerunning the same command resumes: complete shards are verified and skipped.

Example
-------
>>> from simulators.generate import config_from_dict
>>> config_from_dict({"model": "ddm", "n_parameter_sets": 4, "n_simulations": 1000,
...                   "n_training_rows": 10, "n_shards": 1, "seed": 0,
...                   "output_dir": "out"}).n_shards
1
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from simulators.training_data.generator import GeneratorConfig, generate

__all__ = ["config_from_dict", "main", "run"]

logger = logging.getLogger(__name__)

CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "configs")

_KEYS = {f for f in GeneratorConfig.__dataclass_fields__}


def config_from_dict(cfg: dict[str, Any]) -> GeneratorConfig:
    """A :class:`GeneratorConfig` from a plain dict (unknown keys raise ``ValueError``)."""
    unknown = sorted(set(cfg) - _KEYS)
    if unknown:
        raise ValueError(
            f"generate config: unknown key(s) {unknown}; expected keys from {sorted(_KEYS)}"
        )
    return GeneratorConfig(**cfg)


def run(cfg: DictConfig | dict[str, Any]) -> dict[str, Any]:
    """Run one generation job from a (Hydra) config; returns the manifest."""
    plain = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    plain = {k: v for k, v in plain.items() if k != "hydra"}  # type: ignore[union-attr]
    if plain.get("output_dir") is not None:
        out = Path(str(plain["output_dir"]))
        if not out.is_absolute():
            try:
                out = Path(hydra.utils.get_original_cwd()) / out
            except ValueError:  # not inside a Hydra run
                out = out.resolve()
        plain["output_dir"] = str(out)
    gen_cfg = config_from_dict(plain)  # type: ignore[arg-type]
    return generate(gen_cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="generate")
def _hydra_main(cfg: DictConfig) -> None:
    man = run(cfg)
    logger.info(
        "%s: %d of %d shards, %d parameter sets (%s)",
        man["model"],
        len(man["shards"]),
        man["n_shards"],
        man["totals"]["n_theta"],
        "complete" if man["complete"] else "incomplete",
    )


def main() -> None:
    """Console-script entry point (``hssmt-generate``)."""
    _hydra_main()


if __name__ == "__main__":
    main()
