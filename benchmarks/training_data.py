"""Benchmark: training-data generation (simulation + LAN/CPN/OPN labels) per parameter set.

For ddm and angle at 100,000 simulations and 1,000 LAN rows per θ (the LAN paper's
settings) it measures, each in a fresh process:

- hssm-torch on CPU (and CUDA when present): seconds per θ end to end
  (``generate_shard``), split into simulation and label construction, and the process's peak
  memory (peak RSS; on CUDA also ``torch.cuda.max_memory_allocated``) at two chunk sizes, to
  show that memory follows the chunk size, not the dataset size;
- ssm-simulators' own generator (``TrainingDataGenerator``, KDE targets, one process) via
  ``$PEER_PYTHON`` when set, and the ratio.

Usage::

    python benchmarks/training_data.py                  # 2 θ per measurement
    python benchmarks/training_data.py --n-theta 4 --models ddm
    python benchmarks/training_data.py --models angle --method euler   # like-for-like scheme
    python benchmarks/training_data.py --models angle --method bridge --dt 5e-3 \
        --out benchmarks/results/training_data_angle_bridge_dt5e-3.json   # coarser, not equal
    PEER_PYTHON=/root/peer-venv/bin/python python benchmarks/training_data.py
    python benchmarks/training_data.py --models angle --method euler --compile \
        --out benchmarks/results/training_data_compiled.json   # simulate(..., compile=True)

With ``--compile`` each worker first compiles on a tiny simulation (``compile_s``, excluded
from the per-θ figures, which are warm).

Writes benchmarks/results/training_data.json. Timings on a shared machine vary; the JSON
records the load average before each measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# `python benchmarks/training_data.py` puts benchmarks/ first on sys.path, where
# benchmarks/simulators.py would shadow the simulators package.
if sys.path and Path(sys.path[0] or ".").resolve() == ROOT / "benchmarks":
    sys.path.pop(0)
RESULTS = ROOT / "benchmarks" / "results" / "training_data.json"

PEER_SNIPPET = r"""
import json, resource, sys, time, tempfile
from ssms.config import get_default_generator_config
from ssms.dataset_generators.lan_mlp import TrainingDataGenerator
model, n_theta, n_sim, n_rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
cfg = get_default_generator_config("lan")
cfg["model"] = model
cfg["pipeline"]["n_parameter_sets"] = n_theta
cfg["pipeline"]["n_subruns"] = 1
cfg["pipeline"]["n_cpus"] = 1
cfg["pipeline"]["parameter_sampler_index_offset"] = 0
cfg["simulator"]["n_samples"] = n_sim
cfg["training"]["n_samples_per_param"] = n_rows
cfg["output"]["folder"] = tempfile.mkdtemp()
t0 = time.perf_counter()
data = TrainingDataGenerator(cfg).generate_data_training(save=False)
dt = time.perf_counter() - t0
print(json.dumps({"seconds": dt, "n_theta": n_theta, "rows": int(data["lan_data"].shape[0]),
                  "theta": data["theta"].tolist(),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def worker(spec: dict) -> dict:
    """One measurement in this process (called with --worker)."""
    import resource

    import torch

    torch.set_num_threads(int(spec.get("threads", 1)))
    import simulators.training_data.generator as gen_mod
    from simulators.training_data import GeneratorConfig, generate_shard

    sim_seconds = [0.0]
    original = gen_mod._simulate

    def timed(cfg, theta, seed):
        t = time.perf_counter()
        res = original(cfg, theta, seed)
        if theta.device.type == "cuda":
            torch.cuda.synchronize()
        sim_seconds[0] += time.perf_counter() - t
        return res

    gen_mod._simulate = timed
    if spec.get("compile"):
        from simulators import get_model
        from simulators.simulate import simulate

        t = time.perf_counter()
        simulate(
            spec["model"],
            get_model(spec["model"]).defaults,
            64,
            seed=0,
            dt=spec.get("dt", 1e-3),
            method=spec.get("method", "auto"),
            device=spec["device"],
            compile=True,
        )
        spec = {**spec, "compile_s": time.perf_counter() - t}
    if "theta" in spec:
        return _worker_given_theta(spec, timed)
    cfg = GeneratorConfig(
        model=spec["model"],
        n_parameter_sets=spec["n_theta"],
        n_simulations=spec["n_sim"],
        n_training_rows=spec["n_rows"],
        n_shards=1,
        seed=spec.get("seed", 0),
        output_dir="unused",
        device=spec["device"],
        chunk_size=spec["chunk_size"],
        progress=False,
        simulator_options={"method": spec.get("method", "auto")},
        dt=spec.get("dt", 1e-3),
        compile=bool(spec.get("compile", False)),
    )
    t0 = time.perf_counter()
    arrays, rec = generate_shard(cfg, 0)
    if spec["device"].startswith("cuda"):
        torch.cuda.synchronize()
    total = time.perf_counter() - t0
    n_drawn = rec["filters"]["n_drawn"]
    out = {
        **spec,
        "seconds": total,
        "seconds_per_theta": total / spec["n_theta"],
        "theta_per_second": spec["n_theta"] / total,
        "simulation_seconds": sim_seconds[0],
        "label_seconds": total - sim_seconds[0],
        "label_seconds_per_drawn_theta": (total - sim_seconds[0]) / n_drawn,
        "n_drawn": n_drawn,
        "n_rejected": rec["filters"]["n_rejected"],
        "lan_rows": int(arrays["lan_targets"].shape[0]),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if spec["device"].startswith("cuda"):
        out["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def _worker_given_theta(spec: dict, simulate_fn) -> dict:
    """The generator's per-chunk work (simulate, filter, LAN/CPN/OPN labels) on given θ."""
    import resource

    import torch

    from simulators.training_data import GeneratorConfig, cpn_targets, lan_rows, opn_targets

    theta = torch.tensor(spec["theta"], dtype=torch.float32)
    cfg = GeneratorConfig(
        model=spec["model"],
        n_parameter_sets=len(theta),
        n_simulations=spec["n_sim"],
        n_training_rows=spec["n_rows"],
        n_shards=1,
        seed=0,
        output_dir="unused",
        device=spec["device"],
        chunk_size=spec["chunk_size"],
        progress=False,
        simulator_options={"method": spec.get("method", "auto")},
        dt=spec.get("dt", 1e-3),
        compile=bool(spec.get("compile", False)),
    )
    device = torch.device(spec["device"])
    sim = 0.0
    t0 = time.perf_counter()
    for i in range(0, len(theta), cfg.chunk_size):
        th = theta[i : i + cfg.chunk_size].to(device)
        t = time.perf_counter()
        res = simulate_fn(cfg, th, 1234 + i)
        sim += time.perf_counter() - t
        rt, resp, om = res.rt, res.response, res.omitted
        cfg.filters.keep(cfg.filters.evaluate(rt, resp, om, cfg.spec.choices))
        g = torch.Generator(device=device).manual_seed(i)
        lan_rows(
            rt,
            resp,
            om,
            cfg.spec.choices,
            cfg.n_training_rows,
            max_t=cfg.max_t,
            recipe=cfg.lan,
            generator=g,
        )
        cpn_targets(resp, om, cfg.spec.choices)
        opn_targets(rt, om, cfg.opn.draw(th.shape[0], g, device))
    if device.type == "cuda":
        torch.cuda.synchronize()
    total = time.perf_counter() - t0
    spec = {k: v for k, v in spec.items() if k != "theta"}
    out = {
        **spec,
        "theta_source": "peer",
        "seconds": total,
        "seconds_per_theta": total / len(theta),
        "theta_per_second": len(theta) / total,
        "simulation_seconds": sim,
        "label_seconds": total - sim,
        "label_seconds_per_drawn_theta": (total - sim) / len(theta),
        "n_drawn": len(theta),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if device.type == "cuda":
        out["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def _run_worker(spec: dict, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--worker", json.dumps(spec)]
    env = {**os.environ, "OMP_NUM_THREADS": str(spec.get("threads", 1))}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    if res.returncode != 0:
        return {**spec, "error": res.stderr[-2000:]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def _run_peer(peer: str, model: str, n_theta: int, n_sim: int, n_rows: int, timeout: float) -> dict:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "OMP_NUM_THREADS": "1"}
    cmd = [peer, "-W", "ignore", "-c", PEER_SNIPPET, model, str(n_theta), str(n_sim), str(n_rows)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if res.returncode != 0:
        return {"model": model, "error": res.stderr[-2000:]}
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out.update(model=model, n_sim=n_sim, n_rows=n_rows, seconds_per_theta=out["seconds"] / n_theta)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--models", nargs="+", default=["ddm", "angle"])
    ap.add_argument("--n-theta", type=int, default=2)
    ap.add_argument("--n-sim", type=int, default=100_000)
    ap.add_argument("--n-rows", type=int, default=1000)
    ap.add_argument("--chunk-sizes", type=int, nargs="+", default=[1, 2])
    ap.add_argument(
        "--method", default="auto", help="simulators.simulate method (auto, euler, ...)"
    )
    ap.add_argument(
        "--dt",
        type=float,
        default=1e-3,
        help="simulation time step (ssm-simulators' generator always uses 1e-3)",
    )
    ap.add_argument(
        "--compile", action="store_true", help="simulate with torch.compile (compile=True)"
    )
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return

    import torch

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    peer = os.environ.get("PEER_PYTHON")
    results: dict = {"settings": vars(args) | {"worker": None}, "ours": [], "peer": [], "ratio": {}}

    def show(tag, r):
        if "error" in r:
            print(f"{tag}: FAILED\n{r['error']}")
            return
        print(
            f"{tag}: {r['seconds_per_theta']:.2f} s/θ ({r['theta_per_second']:.3f} θ/s; "
            f"simulation {r['simulation_seconds']:.1f} s, labels "
            f"{r['label_seconds_per_drawn_theta'] * 1e3:.0f} ms per θ drawn), peak RSS "
            f"{r['peak_rss_mb']:.0f} MB"
            + (f", CUDA peak {r['cuda_peak_mb']:.0f} MB" if "cuda_peak_mb" in r else "")
            + (f", compile {r['compile_s']:.1f} s (excluded)" if "compile_s" in r else "")
            + f" [load {r['load_avg_1min']:.1f}]"
        )

    for model in args.models:
        peer_theta = None
        if peer:
            load = os.getloadavg()[0]
            p = _run_peer(peer, model, args.n_theta, args.n_sim, args.n_rows, args.timeout)
            p["load_avg_1min"] = load
            peer_theta = p.pop("theta", None)
            results["peer"].append(p)
            if "error" in p:
                print(f"peer  {model}: FAILED\n{p['error']}")
            else:
                print(
                    f"peer  {model:6s} cpu  ssm-simulators (its own θ): "
                    f"{p['seconds_per_theta']:.2f} s/θ, peak RSS {p['peak_rss_mb']:.0f} MB "
                    f"[load {load:.1f}]"
                )
        else:
            print(f"peer  {model}: comparison skipped (PEER_PYTHON not set)")
        for device in devices:
            for chunk in args.chunk_sizes:
                spec = {
                    "model": model,
                    "device": device,
                    "n_theta": args.n_theta,
                    "n_sim": args.n_sim,
                    "n_rows": args.n_rows,
                    "chunk_size": chunk,
                    "method": args.method,
                    "dt": args.dt,
                    "compile": args.compile,
                    "load_avg_1min": os.getloadavg()[0],
                }
                r = _run_worker(spec, args.timeout)
                r.setdefault("theta_source", "own")
                results["ours"].append(r)
                show(f"ours  {model:6s} {device:4s} chunk={chunk} (own θ)", r)
            if peer_theta is not None:
                spec = {
                    "model": model,
                    "device": device,
                    "n_theta": len(peer_theta),
                    "n_sim": args.n_sim,
                    "n_rows": args.n_rows,
                    "chunk_size": max(args.chunk_sizes),
                    "theta": peer_theta,
                    "method": args.method,
                    "dt": args.dt,
                    "compile": args.compile,
                    "load_avg_1min": os.getloadavg()[0],
                }
                r = _run_worker(spec, args.timeout)
                results["ours"].append(r)
                show(f"ours  {model:6s} {device:4s} chunk={spec['chunk_size']} (peer's θ)", r)
                p = results["peer"][-1]
                if device == "cpu" and "error" not in r and "error" not in p:
                    ratio = p["seconds_per_theta"] / r["seconds_per_theta"]
                    results["ratio"][model] = ratio
                    print(
                        f"ratio {model}: ssm-simulators s/θ ÷ ours (CPU, same θ) s/θ = "
                        f"{ratio:.2f} (goal >= 3)"
                    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=1))
    os.replace(tmp, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
