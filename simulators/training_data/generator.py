"""Generate a training dataset (LAN, CPN and OPN targets) as resumable shards.

:class:`GeneratorConfig` holds the settings (the Hydra app's config maps onto it one to
one), :func:`generate_shard` builds the arrays of one shard and :func:`generate` runs the
shards assigned to one job, skipping complete ones, regenerating damaged ones and updating
the manifest.

Per shard ``i`` (of ``n_shards``; shard ``i`` holds ``n_parameter_sets // n_shards`` θ, one
more for the first ``n_parameter_sets % n_shards`` shards):

1. θ are drawn ``chunk_size`` at a time from the shard's own stream (``sampling.shard_seed``)
   and rounded to float32 (the stored values are the simulated ones);
2. each chunk is simulated (``simulators.simulate``, ``n_simulations`` trials per θ, seed
   derived from ``(seed, i, chunk number)``);
3. degenerate θ are rejected (``filters``) and counted; replacements come from the same
   stream until the shard holds its quota (at most ``max_draws_per_theta`` draws per θ);
4. LAN rows, CPN and OPN targets are computed batched on ``device`` (``labels``).

Example
-------
>>> cfg = GeneratorConfig(model="ddm", n_parameter_sets=4, n_simulations=2000,
...                       n_training_rows=10, n_shards=2, seed=0, output_dir="unused")
>>> cfg.shard_sizes()
[2, 2]
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from simulators.registry import get_model, import_model_modules
from simulators.training_data.filters import FILTER_REASONS, FilterPolicy
from simulators.training_data.labels import LANRecipe, OPNRecipe, cpn_targets, lan_rows, opn_targets
from simulators.training_data.manifest import (
    config_fingerprint,
    manifest_lock,
    read_manifest,
    write_manifest,
)
from simulators.training_data.sampling import SAMPLERS, ParameterSampler, resolve_bounds, shard_seed
from simulators.training_data.shards import (
    read_record,
    record_path,
    shard_path,
    verify_shard,
    write_shard,
)

__all__ = ["MIN_SIMULATIONS", "GeneratorConfig", "generate", "generate_shard", "job_shards"]

logger = logging.getLogger(__name__)

#: Fewest simulations per θ accepted for a KDE.
MIN_SIMULATIONS = 100


def _tqdm(**kwargs: Any):
    from tqdm.auto import tqdm

    return tqdm(**kwargs)


@dataclass
class GeneratorConfig:
    """Settings of a training-data generation (keys of ``configs/generate.yaml``).

    Parameters
    ----------
    model:
        Registry name (built-in or registered by a module in ``import_modules``).
    n_parameter_sets, n_simulations, n_training_rows, n_shards, seed, output_dir, device:
        The contract keys: θ in total, simulated trials per θ, LAN rows per θ, shards, root
        seed, dataset folder, torch device.
    bounds:
        ``{name: [lower, upper]}`` narrowing the registry's training box.
    sampler:
        ``"uniform"`` or ``"sobol"`` (scrambled, one sequence per shard).
    dt, max_t:
        Simulator step and time limit (trials without a response by ``max_t`` are omitted).
    chunk_size:
        θ simulated and labelled together (memory is proportional to
        ``chunk_size * n_simulations``). Part of the dataset's identity.
    n_jobs, job_index:
        This job handles shards ``i`` with ``i % n_jobs == job_index``.
    overwrite:
        Replace a dataset of another config found in ``output_dir`` (otherwise refused).
    lan, opn, filters:
        :class:`LANRecipe`, :class:`OPNRecipe`, :class:`FilterPolicy` (or their dicts).
    simulator_options:
        Extra keyword arguments for ``simulators.simulate`` (e.g. ``{"chunk_size": 20000}``);
        part of the dataset's identity.
    compile:
        Simulate with ``simulators.simulate(..., compile=True)``: the Euler engines' block work
        through ``torch.compile`` (1.2-2.1x faster on CPU for angle, weibull, levy, ornstein,
        race; about 5-20 s of compilation per job and model).  Part of the
        dataset's identity when true (compiled and eager noise may differ in the last ulp).
    workers:
        Threads that simulate chunks of a θ chunk concurrently
        (``simulators.simulate(..., workers=n)``); pays mostly with ``compile=True`` on
        CPU.  Not part of the dataset's identity: it changes no draw.
    import_modules:
        Modules imported before the model is looked up (they may ``register_model``).
    max_draws_per_theta:
        Give up on a shard when more than this many draws per accepted θ are needed.
    progress:
        Show a tqdm progress bar (θ/s).

    Example
    -------
    >>> GeneratorConfig(model="angle", n_parameter_sets=10, n_simulations=1000,
    ...                 n_training_rows=100, n_shards=1, seed=1, output_dir="x").sampler
    'uniform'
    """

    model: str
    n_parameter_sets: int
    n_simulations: int
    n_training_rows: int
    n_shards: int
    seed: int
    output_dir: str
    device: str = "cpu"
    bounds: dict[str, list[float]] = field(default_factory=dict)
    sampler: str = "uniform"
    dt: float = 1e-3
    max_t: float = 20.0
    chunk_size: int = 16
    n_jobs: int = 1
    job_index: int = 0
    overwrite: bool = False
    lan: LANRecipe = field(default_factory=LANRecipe)
    opn: OPNRecipe = field(default_factory=OPNRecipe)
    filters: FilterPolicy = field(default_factory=FilterPolicy)
    simulator_options: dict[str, Any] = field(default_factory=dict)
    import_modules: list[str] = field(default_factory=list)
    max_draws_per_theta: int = 20
    progress: bool = True
    compile: bool = False
    workers: int = 1

    def __post_init__(self) -> None:
        self.bounds = dict(self.bounds or {})
        self.simulator_options = dict(self.simulator_options or {})
        if not isinstance(self.compile, bool):
            raise ValueError(f"compile: expected true or false, got {self.compile!r}")
        if "workers" in self.simulator_options:
            raise ValueError(
                "simulator_options: 'workers' is a top-level key of the generate config "
                "(workers=2), not a simulator option"
            )
        if "compile" in self.simulator_options:
            raise ValueError(
                "simulator_options: 'compile' is a top-level key of the generate config "
                "(compile=true), not a simulator option"
            )
        self.import_modules = import_model_modules(self.import_modules or [])
        self.spec = get_model(self.model)
        if self.spec.simulator == "softmax":
            raise ValueError(
                f"model: {self.model!r} is a choice-only (softmax) model without response "
                "times; LAN targets are undefined for it"
            )
        if isinstance(self.lan, Mapping):
            lan_kw: dict[str, Any] = dict(self.lan)
            if "mixture" in lan_kw:
                lan_kw["mixture"] = tuple(lan_kw["mixture"])
            self.lan = LANRecipe(**lan_kw)
        if isinstance(self.opn, Mapping):
            self.opn = OPNRecipe(**self.opn)
        if isinstance(self.filters, Mapping):
            self.filters = FilterPolicy(**self.filters)
        ints = {
            "n_parameter_sets": 1,
            "n_simulations": MIN_SIMULATIONS,
            "n_training_rows": 1,
            "n_shards": 1,
            "chunk_size": 1,
            "n_jobs": 1,
            "max_draws_per_theta": 1,
            "workers": 1,
        }
        for name, least in ints.items():
            val = getattr(self, name)
            if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < least:
                hint = (
                    " (a kernel density estimate needs at least that many trials per θ)"
                    if name == "n_simulations"
                    else ""
                )
                raise ValueError(f"{name}: expected an integer >= {least}, got {val!r}{hint}")
        if self.n_shards > self.n_parameter_sets:
            raise ValueError(
                f"n_shards: {self.n_shards} shards for {self.n_parameter_sets} parameter sets "
                "would leave empty shards; expected n_shards <= n_parameter_sets"
            )
        if not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed: expected a non-negative integer, got {self.seed!r}")
        if not 0 <= self.job_index < self.n_jobs:
            raise ValueError(
                f"job_index: expected 0 <= job_index < n_jobs={self.n_jobs}, got {self.job_index}"
            )
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler: expected one of {list(SAMPLERS)}, got {self.sampler!r}")
        if not (self.dt > 0 and self.max_t > self.dt):
            raise ValueError(
                f"dt, max_t: expected 0 < dt < max_t, got dt={self.dt}, max_t={self.max_t}"
            )
        if not self.output_dir:
            raise ValueError("output_dir: expected a folder path, got an empty value")
        self.lower, self.upper = resolve_bounds(self.spec, self.bounds)
        try:
            torch.empty(0, device=self.device)
        except (RuntimeError, AssertionError) as err:
            raise ValueError(f"device: {self.device!r} is not usable here ({err})") from None

    # ------------------------------------------------------------------ identity
    def content_config(self) -> dict[str, Any]:
        """The settings that determine the data (stored in the manifest, fingerprinted).

        Excludes ``output_dir``, ``device``, ``n_jobs``, ``job_index``, ``overwrite``,
        ``progress``, ``workers`` and ``import_modules``: they change where and how fast,
        not what.
        """
        return {
            "model": self.spec.name,
            "param_names": list(self.spec.param_names),
            "bounds": {"lower": self.lower.tolist(), "upper": self.upper.tolist()},
            "n_parameter_sets": int(self.n_parameter_sets),
            "n_simulations": int(self.n_simulations),
            "n_training_rows": int(self.n_training_rows),
            "n_shards": int(self.n_shards),
            "seed": int(self.seed),
            "sampler": self.sampler,
            "dt": float(self.dt),
            "max_t": float(self.max_t),
            "chunk_size": int(self.chunk_size),
            "max_draws_per_theta": int(self.max_draws_per_theta),
            "lan": dataclasses.asdict(self.lan),
            "opn": dataclasses.asdict(self.opn),
            "filters": dataclasses.asdict(self.filters),
            "simulator_options": dict(self.simulator_options),
            # only when set: datasets made before the option keep their fingerprint
            **({"compile": True} if self.compile else {}),
        }

    def shard_sizes(self) -> list[int]:
        """Parameter sets per shard (they add up to ``n_parameter_sets``)."""
        q, r = divmod(self.n_parameter_sets, self.n_shards)
        return [q + (1 if i < r else 0) for i in range(self.n_shards)]


def job_shards(n_shards: int, n_jobs: int, job_index: int) -> list[int]:
    """Shards handled by job ``job_index`` of ``n_jobs``: ``i % n_jobs == job_index``.

    Example
    -------
    >>> job_shards(5, 2, 1)
    [1, 3]
    """
    return [i for i in range(n_shards) if i % n_jobs == job_index]


def _to_float32_in_box(
    theta: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor
) -> torch.Tensor:
    """Round θ to float32 (the stored and simulated values) without leaving the box."""
    t32 = theta.to(torch.float32)
    inf = torch.full_like(t32, float("inf"))
    t32 = torch.where(t32.double() > upper, torch.nextafter(t32, -inf), t32)
    return torch.where(t32.double() < lower, torch.nextafter(t32, inf), t32)


def _simulate(cfg: GeneratorConfig, theta: torch.Tensor, seed: int):
    from simulators.simulate import simulate

    return simulate(
        cfg.spec,
        theta,
        cfg.n_simulations,
        dt=cfg.dt,
        max_t=cfg.max_t,
        seed=seed,
        device=cfg.device,
        compile=cfg.compile,
        workers=cfg.workers,
        **cfg.simulator_options,
    )


def generate_shard(
    cfg: GeneratorConfig, index: int, progress=None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays and record (seeds, filter counts) of shard ``index``; writes nothing.

    Example
    -------
    >>> cfg = GeneratorConfig(model="ddm", n_parameter_sets=2, n_simulations=500,
    ...                       n_training_rows=10, n_shards=1, seed=0, output_dir="x",
    ...                       progress=False)
    >>> arrays, rec = generate_shard(cfg, 0)  # doctest: +SKIP
    """
    if not 0 <= index < cfg.n_shards:
        raise ValueError(f"index: expected 0 <= index < n_shards={cfg.n_shards}, got {index}")
    quota = cfg.shard_sizes()[index]
    device = torch.device(cfg.device)
    sseed = shard_seed(cfg.seed, index)
    sampler = ParameterSampler(cfg.lower, cfg.upper, sseed, cfg.sampler)
    choices = cfg.spec.choices
    parts: dict[str, list[torch.Tensor]] = {
        k: [] for k in ("theta", "rt", "resp", "lab", "cpn", "dl", "opn")
    }
    n_acc = n_drawn = n_floored = chunk_no = 0
    rejected = dict.fromkeys(FILTER_REASONS, 0)
    n_rej = 0
    budget = cfg.max_draws_per_theta * quota
    t0 = time.perf_counter()
    while n_acc < quota:
        k = min(cfg.chunk_size, quota - n_acc)
        if n_drawn + k > budget:
            raise ValueError(
                f"shard {index}: only {n_acc} of {quota} parameter sets passed the degenerate-θ "
                f"filters after {n_drawn} draws (rejected by reason: {rejected}); narrow `bounds`"
                " or relax `filters`"
            )
        theta = _to_float32_in_box(sampler.draw(k), cfg.lower, cfg.upper)
        n_drawn += k
        chunk_no += 1
        sim_seed = shard_seed(cfg.seed, index, stream=chunk_no)
        res = _simulate(cfg, theta.to(device), sim_seed)
        rt, resp = res.rt, res.response.to(torch.int64)
        omitted = res.omitted.to(torch.bool)
        reasons = cfg.filters.evaluate(rt, resp, omitted, choices)
        keep = cfg.filters.keep(reasons)
        for name, failed in reasons.items():
            rejected[name] += int(failed.sum())
        n_rej += int((~keep).sum())
        if not bool(keep.any()):
            continue
        keep_idx = keep.nonzero().squeeze(1)
        rt, resp, omitted = rt[keep_idx], resp[keep_idx], omitted[keep_idx]
        th = theta.to(device)[keep_idx]
        gen = torch.Generator(device=device).manual_seed(
            shard_seed(cfg.seed, index, stream=10**6 + chunk_no)
        )
        pts, codes, lab, nf = lan_rows(
            rt,
            resp,
            omitted,
            choices,
            cfg.n_training_rows,
            max_t=cfg.max_t,
            recipe=cfg.lan,
            generator=gen,
        )
        dl = cfg.opn.draw(th.shape[0], gen, device)
        parts["theta"].append(th)
        parts["rt"].append(pts)
        parts["resp"].append(codes)
        parts["lab"].append(lab)
        parts["cpn"].append(cpn_targets(resp, omitted, choices))
        parts["dl"].append(dl)
        parts["opn"].append(opn_targets(rt, omitted, dl))
        n_floored += nf
        n_acc += th.shape[0]
        if progress is not None:
            progress.update(th.shape[0])
    cat = {k: torch.cat(v).cpu() for k, v in parts.items()}
    theta = cat["theta"].to(torch.float32)
    m, R = theta.shape[0], cfg.n_training_rows
    th_rows = theta.repeat_interleave(R, 0)
    lan_in = torch.cat(
        [th_rows, cat["rt"].reshape(-1, 1).float(), cat["resp"].reshape(-1, 1).float()], 1
    )
    arrays = {
        "theta": theta.numpy(),
        "lan_inputs": lan_in.numpy(),
        "lan_targets": cat["lab"].reshape(-1).float().numpy(),
        "cpn_inputs": theta.numpy().copy(),
        "cpn_targets": cat["cpn"].float().numpy(),
        "opn_inputs": torch.cat([theta, cat["dl"].float().unsqueeze(1)], 1).numpy(),
        "opn_targets": cat["opn"].float().numpy(),
    }
    record = {
        "n_theta": m,
        "seed": sseed,
        "device": str(device),
        "seconds": round(time.perf_counter() - t0, 3),
        "n_floored_labels": n_floored,
        "filters": {"n_drawn": n_drawn, "n_rejected": n_rej, "rejected_by_reason": rejected},
    }
    return arrays, record


def _prepare_folder(cfg: GeneratorConfig, out: Path, header: dict[str, Any]) -> None:
    """Create / check the dataset folder under the manifest lock."""
    out.mkdir(parents=True, exist_ok=True)
    with manifest_lock(out):
        man = read_manifest(out)
        ours = header["fingerprint"]
        stray = sorted(p.name for p in out.glob("shard-*.npz"))
        if man is not None and man.get("fingerprint") == ours:
            return
        if man is not None or stray:
            if man is None:
                what = f"shard files without a manifest ({stray[:3]}...)"
            else:
                theirs = man.get("generator_config", {})
                diff = sorted(
                    k
                    for k in set(theirs) | set(header["generator_config"])
                    if theirs.get(k) != header["generator_config"].get(k)
                )
                what = f"a dataset of model {man.get('model')!r} whose config differs in {diff}"
            if not cfg.overwrite:
                raise ValueError(
                    f"output_dir: {str(out)!r} holds {what}; choose another output_dir or pass "
                    "overwrite=true to replace it"
                )
            logger.warning("output_dir %s: replacing %s (overwrite=true)", out, what)
            for p in [*out.glob("shard-*.npz"), *out.glob("shard-*.json"), out / "manifest.json"]:
                p.unlink(missing_ok=True)
        write_manifest(out, header, [])


def generate(cfg: GeneratorConfig) -> dict[str, Any]:
    """Generate (or resume) this job's shards of the dataset in ``cfg.output_dir``.

    Complete shards (file + record + matching checksum) are skipped; partial or corrupted
    ones are reported with ``logging.warning`` and regenerated. Returns the manifest after
    this job's shards are merged into it.

    Example
    -------
    >>> cfg = GeneratorConfig(model="ddm", n_parameter_sets=4, n_simulations=1000,
    ...                       n_training_rows=20, n_shards=2, seed=0, output_dir="/tmp/x")
    >>> manifest = generate(cfg)  # doctest: +SKIP
    """
    out = Path(cfg.output_dir)
    content = json.loads(json.dumps(cfg.content_config()))  # as stored (tuples -> lists)
    header = {
        "model": cfg.spec.name,
        "param_names": list(cfg.spec.param_names),
        "choices": list(cfg.spec.choices),
        "generator_config": content,
        "fingerprint": config_fingerprint(content),
    }
    _prepare_folder(cfg, out, header)
    mine = job_shards(cfg.n_shards, cfg.n_jobs, cfg.job_index)
    todo = []
    for i in mine:
        for tmp in out.glob(f".shard-{i:05d}.*.tmp-*"):
            logger.warning("removing leftover temporary file %s (interrupted run)", tmp.name)
            tmp.unlink(missing_ok=True)
        why = verify_shard(out, i, header["fingerprint"])
        if why is None:
            logger.info("shard %d is complete (checksum verified); skipping", i)
            continue
        if why != "missing":
            logger.warning("shard %d is damaged or partial: %s; regenerating it", i, why)
            shard_path(out, i).unlink(missing_ok=True)
            record_path(out, i).unlink(missing_ok=True)
        todo.append(i)
    sizes = cfg.shard_sizes()
    bar = None
    if cfg.progress and todo:
        bar = _tqdm(
            total=sum(sizes[i] for i in todo), unit="θ", desc=f"{cfg.spec.name} job {cfg.job_index}"
        )
    try:
        for i in todo:
            if bar is not None:
                bar.set_postfix(shard=i)
            arrays, rec = generate_shard(cfg, i, progress=bar)
            rec["fingerprint"] = header["fingerprint"]
            write_shard(out, i, arrays, rec)
            logger.info(
                "wrote %s (%d θ, %d rejected)",
                shard_path(out, i).name,
                rec["n_theta"],
                rec["filters"]["n_rejected"],
            )
    finally:
        if bar is not None:
            bar.close()
    with manifest_lock(out):
        records = [
            read_record(out, i)
            for i in range(cfg.n_shards)
            if verify_shard(out, i, header["fingerprint"]) is None
        ]
        man = write_manifest(out, header, records)  # type: ignore[arg-type]
    if man["complete"]:
        logger.info(
            "dataset %s complete: %d shards, %d θ", out, man["n_shards"], man["totals"]["n_theta"]
        )
    else:
        logger.info(
            "dataset %s: %d of %d shards present (other jobs may still be running)",
            out,
            len(man["shards"]),
            man["n_shards"],
        )
    return man
