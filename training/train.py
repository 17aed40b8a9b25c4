"""The training app: shards → trained network → ONNX + JSON sidecar → accuracy report.

Run ``python -m training.train data_dir=PATH`` (console script ``hssmt-train``) with Hydra
overrides, or an experiment preset: ``hssmt-train +experiment=ddm_lan``. A preset may carry
a ``generate`` block: when ``data_dir`` holds no dataset yet it is generated first with those
settings (the same code as ``hssmt-generate``), so one command reproduces a network.

The run folder (``output_dir``, stable by default so that a rerun resumes) receives
``checkpoints/`` (``last.ckpt`` and the best one), ``metrics.csv`` logs,
``<model>_<kind>.onnx`` with its ``.json`` sidecar, ``report.json`` and the resolved config.
Re-running the same command after an interruption resumes from ``checkpoints/last.ckpt``
(step count, optimizer and scheduler state) unless ``resume=false``.

Example
-------
>>> from training.train import train_network
>>> from omegaconf import OmegaConf
>>> cfg = OmegaConf.load("configs/train.yaml")                     # doctest: +SKIP
>>> train_network(cfg)["onnx"]                                     # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from omegaconf import DictConfig, OmegaConf

from simulators import get_model
from simulators.registry import import_model_modules
from training.analytical_labels import LABEL_SOURCES, AnalyticalLabelDataModule, analytical_models
from training.datamodule import ShardDataModule
from training.evaluate import evaluate_network
from training.export import export_onnx
from training.modules import CPNModule, LANModule, OPNModule
from training.sidecar import write_sidecar

__all__ = ["main", "train_network"]

logger = logging.getLogger(__name__)

MODULES = {"lan": LANModule, "cpn": CPNModule, "opn": OPNModule}

#: What each kind's output means (written into the sidecar).
OUTPUTS = {
    "lan": "log p(rt, response | theta)",
    "cpn": "log P(response = {choice} | theta)",
    "opn": "log P(no response before deadline | theta)",
}


def _manifest(data_dir: Path) -> dict[str, Any]:
    path = data_dir / "manifest.json"
    if not path.is_file():
        raise ValueError(
            f"data_dir: {str(data_dir)!r} holds no manifest.json (generate data first)"
        )
    return json.loads(path.read_text())


def _maybe_generate(cfg: DictConfig, data_dir: Path) -> None:
    """Generate the dataset of ``cfg.generate`` into ``data_dir`` unless it holds one already.

    An interrupted generation (manifest present, shards missing) is resumed by the generator
    itself, so the check is on completeness, not on the manifest's presence.
    """
    if cfg.get("generate") is None:
        return
    manifest = data_dir / "manifest.json"
    if manifest.is_file() and json.loads(manifest.read_text()).get("complete", False):
        return
    from simulators.generate import run as run_generate

    gen = OmegaConf.to_container(cfg.generate, resolve=True)
    if not isinstance(gen, dict):
        raise ValueError(f"generate: expected a mapping of generator settings, got {gen!r}")
    gen["output_dir"] = str(data_dir.resolve())
    gen.setdefault("model", cfg.model)
    gen.setdefault("progress", bool(cfg.progress))
    gen.setdefault("import_modules", list(cfg.get("import_modules") or []))
    if gen["model"] != cfg.model:
        raise ValueError(f"generate.model: {gen['model']!r} differs from model {cfg.model!r}")
    logger.info("data_dir %s holds no complete dataset: generating training data first", data_dir)
    run_generate(gen)


def _datamodule(cfg: DictConfig, kind: str, data_dir: Path) -> ShardDataModule:
    source = cfg.get("label_source", "kde")
    kwargs = dict(
        kind=kind,
        batch_size=int(cfg.batch_size),
        val_fraction=float(cfg.val_fraction),
        seed=int(cfg.seed),
        num_workers=int(cfg.num_workers),
    )
    if source == "analytical":
        return AnalyticalLabelDataModule(data_dir, model=cfg.model, **kwargs)
    return ShardDataModule(data_dir, **kwargs)


def _input_names(param_names: list[str], kind: str) -> list[str]:
    return param_names + {"lan": ["rt", "response"], "opn": ["deadline"], "cpn": []}[kind]


def _training_box(spec: Any, manifest: dict[str, Any]) -> dict[str, list[float]]:
    box = {p.name: [float(p.lower), float(p.upper)] for p in spec.params}
    resolved = manifest.get("generator_config", {}).get("bounds") or {}
    if "lower" in resolved and "upper" in resolved:  # the generator's resolved box, registry order
        names = manifest.get("param_names") or list(spec.param_names)
        for name, lo, hi in zip(names, resolved["lower"], resolved["upper"]):
            box[name] = [float(lo), float(hi)]
    return box


def _evaluate(
    cfg: DictConfig,
    kind: str,
    onnx_path: Path,
    model: str,
    box: dict[str, list[float]],
    heldout: list[Path],
) -> dict[str, Any]:
    from hssm_torch.onnx_loader import load_onnx

    net = load_onnx(onnx_path)
    kwargs = OmegaConf.to_container(cfg.evaluate.get(kind) or {}, resolve=True)
    assert isinstance(kwargs, dict)
    kwargs["box"] = box
    if kind == "lan":
        kwargs["heldout_shards"] = heldout
        compare = kwargs.pop("compare", None) or {}
        kwargs["compare"] = {
            name: load_onnx(path)
            for name, path in compare.items()
            if Path(path).is_file() or _missing(name, path)
        }
    if kind == "cpn":
        kwargs["choice_index"] = int(cfg.network.module.get("choice_index", 0))
    return evaluate_network(net, model, kind, seed=int(cfg.seed), **kwargs)


def _missing(name: str, path: str) -> bool:
    logger.warning("evaluate.lan.compare: %s network %s not found; comparison skipped", name, path)
    return False


def _init_weights(module: L.LightningModule, path: Path) -> None:
    """Warm start: copy the weights of the checkpoint ``path`` into ``module`` (same layout).

    Only the weights are taken (optimizer, scheduler and epoch start afresh); a checkpoint of
    another architecture raises ``ValueError`` naming both.
    """
    if not path.is_file():
        raise ValueError(f"init_from: {str(path)!r} is not a file (expected a .ckpt checkpoint)")
    state = torch.load(path, map_location="cpu", weights_only=False)
    weights = state.get("state_dict") if isinstance(state, dict) else None
    if not isinstance(weights, dict):
        raise ValueError(f"init_from: {str(path)!r} holds no Lightning 'state_dict'")
    own = module.state_dict()
    shapes = {k: tuple(v.shape) for k, v in weights.items()}
    expected = {k: tuple(v.shape) for k, v in own.items()}
    if shapes != expected:
        raise ValueError(
            f"init_from: {str(path)!r} has weights {shapes}, the configured network {expected}"
        )
    module.load_state_dict(weights)
    logger.info("initialised the weights from %s", path)


def train_network(cfg: DictConfig) -> dict[str, Any]:
    """Train, export and evaluate one network as described by ``cfg`` (see configs/train.yaml).

    Parameters
    ----------
    cfg : DictConfig
        The composed train config (``model``, ``data_dir``, ``output_dir``, ``network``,
        ``trainer``, ``evaluate``, ...).

    Returns
    -------
    dict
        ``onnx`` (Path of the exported network), ``report`` (accuracy figures),
        ``output_dir`` and ``global_step``.

    Example
    -------
    >>> from omegaconf import OmegaConf
    >>> result = train_network(cfg)          # doctest: +SKIP
    >>> result["onnx"].name                  # doctest: +SKIP
    'ddm_lan.onnx'
    """
    kind = cfg.network.kind
    if kind not in MODULES:
        raise ValueError(f"network.kind: expected one of {sorted(MODULES)}, got {kind!r}")
    import_model_modules(cfg.get("import_modules"))
    spec = get_model(cfg.model)
    source = cfg.get("label_source", "kde")
    if source not in LABEL_SOURCES:
        raise ValueError(f"label_source: expected one of {list(LABEL_SOURCES)}, got {source!r}")
    if source == "analytical" and spec.name not in analytical_models(kind):
        raise ValueError(
            f"label_source: 'analytical' is not available for {spec.name!r} {kind.upper()}s; "
            f"available: {analytical_models(kind)} (use label_source=kde)"
        )
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    data_dir = Path(cfg.data_dir)
    _maybe_generate(cfg, data_dir)
    manifest = _manifest(data_dir)
    if manifest.get("model") != spec.name:
        raise ValueError(
            f"data_dir: dataset {str(data_dir)!r} is for model {manifest.get('model')!r}, "
            f"not {spec.name!r}"
        )
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    dm = _datamodule(cfg, kind, data_dir)
    dm.setup("fit")
    module_kwargs = OmegaConf.to_container(cfg.network.module, resolve=True)
    assert isinstance(module_kwargs, dict)
    module = MODULES[kind](in_features=dm.input_width, **module_kwargs)

    ckpt_dir = out / "checkpoints"
    monitor = "val_loss" if dm.val_dataset is not None else "train_loss_epoch"
    checkpoint = ModelCheckpoint(
        dirpath=ckpt_dir,
        monitor=monitor,
        save_last=True,
        save_top_k=1,
        filename="best",
        enable_version_counter=False,
    )
    callbacks: list[Any] = [checkpoint, LearningRateMonitor(logging_interval="epoch")]
    if cfg.trainer.early_stopping_patience:
        callbacks.append(
            EarlyStopping(monitor=monitor, patience=int(cfg.trainer.early_stopping_patience))
        )
    trainer = L.Trainer(
        max_epochs=int(cfg.trainer.max_epochs),
        max_time=cfg.trainer.get("max_time"),
        accelerator=cfg.trainer.accelerator,
        devices=cfg.trainer.devices,
        strategy=cfg.trainer.strategy,
        precision=cfg.trainer.precision,
        callbacks=callbacks,
        logger=CSVLogger(out, name="logs"),  # version_N per (re)run: a resume keeps old logs
        enable_progress_bar=bool(cfg.progress),
        enable_model_summary=False,
        log_every_n_steps=int(cfg.trainer.log_every_n_steps),
        deterministic=bool(cfg.trainer.deterministic),
        default_root_dir=out,
    )
    last = ckpt_dir / "last.ckpt"
    resume = last if (cfg.resume and last.is_file()) else None
    if resume:
        logger.info("resuming from %s", resume)
    elif cfg.get("init_from"):
        _init_weights(module, Path(cfg.init_from))
    with warnings.catch_warnings():
        if resume:  # resuming into its own checkpoint folder is the point, not a mistake
            warnings.filterwarnings(
                "ignore", message=r".*Checkpoint directory .* exists and is not empty"
            )
        trainer.fit(module, datamodule=dm, ckpt_path=resume)
    result: dict[str, Any] = {
        "output_dir": out,
        "global_step": int(trainer.global_step),
        "onnx": out / f"{spec.name}_{kind}.onnx",
        "report": {},
    }
    if not trainer.is_global_zero:  # DDP: rank 0 exports and evaluates
        return result

    best = checkpoint.best_model_path
    if best and Path(best).is_file():
        module = MODULES[kind].load_from_checkpoint(best, map_location="cpu")
    module = module.to("cpu").eval()
    onnx_path = result["onnx"]
    export_onnx(module, onnx_path, dynamic_batch=bool(cfg.export.dynamic_batch))
    box = _training_box(spec, manifest)
    report: dict[str, Any] = {}
    if cfg.evaluate.enabled:
        report = _evaluate(cfg, kind, onnx_path, spec.name, box, list(dm.val_shards))
        logger.info("accuracy report: %s", json.dumps(report))
    tmp = out / ".report.json.tmp"
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, out / "report.json")
    plain_cfg = OmegaConf.to_container(cfg, resolve=True)
    write_sidecar(
        onnx_path,
        model=spec.name,
        kind=kind,
        param_names=list(spec.param_names),
        input_names=_input_names(list(spec.param_names), kind),
        choices=list(spec.choices),
        output=OUTPUTS[kind]
        if kind != "cpn"
        else OUTPUTS[kind].format(
            choice=spec.choices[int(cfg.network.module.get("choice_index", 0))]
        ),
        training_box=box,
        data_config={
            "label_source": cfg.get("label_source", "kde"),
            "data_dir": str(data_dir),
            "n_train_rows": len(dm.train_dataset) if dm.train_dataset is not None else 0,
            "n_val_rows": len(dm.val_dataset) if dm.val_dataset is not None else 0,
            **{k: manifest.get(k) for k in ("generator_config", "fingerprint", "totals")},
        },
        training_config=plain_cfg,
        reproduce=cfg.get("reproduce") or None,
        validation=report,
        epochs_trained=int(trainer.current_epoch),
        global_step=int(trainer.global_step),
        best_checkpoint_score=(
            float(checkpoint.best_model_score) if checkpoint.best_model_score is not None else None
        ),
    )
    OmegaConf.save(cfg, out / "config.yaml", resolve=True)
    if cfg.install_dir:
        dest = Path(cfg.install_dir)
        dest.mkdir(parents=True, exist_ok=True)
        for src in (onnx_path, onnx_path.with_suffix(".json")):
            tmp = dest / f".{src.name}.tmp"
            shutil.copyfile(src, tmp)
            os.replace(tmp, dest / src.name)
        logger.info("installed %s and its sidecar in %s", onnx_path.name, dest)
    result["report"] = report
    return result


@hydra.main(version_base="1.3", config_path="../configs", config_name="train")
def main(cfg: DictConfig) -> None:
    """Entry point of ``python -m training.train`` / ``hssmt-train``."""
    if cfg.num_threads:
        torch.set_num_threads(int(cfg.num_threads))
    result = train_network(cfg)
    logger.info("network written to %s", result["onnx"])


if __name__ == "__main__":
    main()
