"""Simulator throughput: hssm-torch ``simulate`` vs ssm-simulators, trials per second.

Cases: ddm, angle, weibull, levy, ornstein, full_ddm, race_no_bias_3, lba2, each at
(a) one parameter set x 100,000 trials and (b) 1,000 parameter sets x 1,000 trials, dt = 1e-3,
max_t = 20, on CPU (and CUDA when present), with torch set to 1 thread (``--threads 1,2`` adds
2 threads).  Every case
runs in its own subprocess so its peak memory (``ru_maxrss``; ``torch.cuda.max_memory_allocated``
on GPU) is its own.  When ``PEER_PYTHON`` points at an interpreter with ssm-simulators, the same
cases run there (``n_threads=1``, ``return_option="minimal"``) and the ratio is printed.

Parameter sets: (a) the reference sets of ``ssm_simulators_stats.csv`` where the model is there,
else the registry defaults; (b) 1,000 sets uniform in the middle half of the registry box
(seed 0), the same sets for both libraries.

Usage::

    PEER_PYTHON=/root/peer-venv/bin/python python benchmarks/simulators.py   # full run
    python benchmarks/simulators.py --batched-trials 200   # 1,000 sets x 200 trials (quicker)
    python benchmarks/simulators.py --models ddm,lba2 --settings single

The full run (both libraries, 1,000 x 1,000 for every model) takes about 25-40 minutes on
the shared 2-core machine: ssm-simulators needs 1-6 minutes per Euler-type model for the
batched case, and so do we.  Results are merged into the JSON after every case (rows of
cases not re-run are kept), with the load average before each measurement.

Compiled path (``simulate(..., compile=True)``): ``--variants eager,compiled`` (default both)
times ours without and with ``torch.compile``; the compiled case first compiles on a tiny
problem (reported as ``compile_s``, with the on-disk inductor cache as found, or cold with
``--cold-cache``) and then times the measured call (``wall_s``: warm, compile excluded).
``--compile-threads 1,2`` sets the torch thread counts of the compiled runs (the goal is
stated against ssm-simulators single-threaded: compare the 1-thread figure).

Workers (``simulate(..., workers=n)``: chunks in a pool of n Python threads, each with
``max(1, threads // n)`` torch threads): ``--workers 1,2`` times each of our runs at each
count; ``--method auto,euler`` times each method (``euler`` is like for like with
ssm-simulators; a model whose ``auto`` is Euler runs once).  ssm-simulators runs once per
model and setting, before ours.  The run behind ``benchmarks/results/simulators_workers.json``::

    PEER_PYTHON=/root/peer-venv/bin/python python benchmarks/simulators.py \
        --models angle,weibull,levy,ornstein,race_no_bias_3 --variants compiled \
        --compile-threads 1 --workers 1,2 --method auto,euler \
        --output benchmarks/results/simulators_workers.json --fresh
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "simulators.json"
MODELS = ("ddm", "angle", "weibull", "levy", "ornstein", "full_ddm", "race_no_bias_3", "lba2")
REFERENCE_THETA = {
    "ddm": {"v": 0.5, "a": 1.5, "z": 0.5, "t": 0.3},
    "angle": {"v": 0.5, "a": 1.5, "z": 0.5, "t": 0.3, "theta": 0.3},
    "levy": {"v": 0.5, "a": 1.5, "z": 0.5, "t": 0.3, "alpha": 1.5},
    "race_no_bias_3": {"v0": 1.0, "v1": 0.6, "v2": 0.3, "a": 2.0, "z": 0.5, "t": 0.3},
}


def _theta_matrix(model: str, n_sets: int):
    """(n_sets, P) float32 numpy parameters in registry order (see module docstring)."""
    import numpy as np

    from simulators import get_model

    spec = get_model(model)
    if n_sets == 1:
        vals = {**spec.defaults, **REFERENCE_THETA.get(model, {})}
        return np.array([[vals[n] for n in spec.param_names]], dtype=np.float32)
    rng = np.random.default_rng(0)
    lo = np.array([p.lower for p in spec.params])
    hi = np.array([p.upper for p in spec.params])
    u = rng.uniform(0.25, 0.75, size=(n_sets, len(lo)))
    return (lo + (hi - lo) * u).astype(np.float32)


def _child_ours(case: dict) -> dict:
    import resource

    import torch

    from simulators.simulate import simulate

    torch.set_num_threads(case["threads"])
    workers = int(case.get("workers", 1))
    device = torch.device(case["device"])
    compile_ = bool(case.get("compile", False))
    theta = torch.as_tensor(_theta_matrix(case["model"], case["n_sets"]), device=device)
    # warm-up (allocator, first-call overheads; compilation) on a tiny problem
    t0 = time.perf_counter()
    simulate(
        case["model"],
        theta[:1],
        64,
        seed=0,
        device=device,
        compile=compile_,
        method=case.get("method", "auto"),
        workers=workers,
    )
    if device.type == "cuda":
        torch.cuda.synchronize()
    compile_s = time.perf_counter() - t0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    method = case.get("method", "auto")
    res = simulate(
        case["model"],
        theta,
        case["n_trials"],
        seed=1,
        device=device,
        compile=compile_,
        method=method,
        workers=workers,
    )
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    out = {
        "wall_s": wall,
        "method": res.method,
        "n_omitted": res.n_omitted,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "compile": compile_,
        "workers": workers,
        "torch_threads_after": torch.get_num_threads(),
    }
    if compile_:
        out["compile_s"] = compile_s
    if device.type == "cuda":
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


PEER_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys, time
    import numpy as np
    from ssms.basic_simulators.simulator import simulator
    case = json.loads(sys.argv[1])
    theta = np.load(case["theta_file"])
    model = case["model"]
    if model == "lba2":
        theta = theta[:, :4]  # ssm-simulators' lba2 has no non-decision time
    # return_option="minimal" raises KeyError('max_t') in ssm-simulators 0.15: use the default
    simulator(theta[:1], model=model, n_samples=16, random_state=0)
    t0 = time.perf_counter()
    simulator(theta, model=model, n_samples=case["n_trials"], delta_t=1e-3, max_t=20.0,
              random_state=1, n_threads=1)
    wall = time.perf_counter() - t0
    print(json.dumps({"wall_s": wall,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    """
)


def _run_child(args: list[str], env=None) -> dict:
    proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        return {
            "error": proc.stderr.strip().splitlines()[-1]
            if proc.stderr
            else f"rc={proc.returncode}"
        }
    return json.loads(proc.stdout.strip().splitlines()[-1])


SCHEME_CASES = {
    "angle": [
        {"v": 0.5, "a": 1.5, "z": 0.5, "t": 0.3, "theta": 0.3},
        {"v": 1.5, "a": 1.0, "z": 0.4, "t": 0.3, "theta": 0.6},
    ],
    "weibull": [
        {"v": 0.5, "a": 1.5, "z": 0.5, "t": 0.3, "alpha": 2.0, "beta": 1.5},
        {"v": 1.5, "a": 1.0, "z": 0.4, "t": 0.3, "alpha": 3.0, "beta": 0.8},
    ],
}
SCHEMES = [("bridge", 1e-4), ("euler", 1e-3), ("bridge", 1e-3), ("bridge", 5e-3), ("bridge", 1e-2)]
QUANTILES = (0.1, 0.3, 0.5, 0.7, 0.9)


def _summary(rt, resp) -> dict:
    import torch

    ok = resp != -999
    rt, resp = rt[ok].double(), resp[ok]
    up = resp == 1
    q = torch.tensor(QUANTILES, dtype=torch.float64)
    out = {"n": int(ok.sum()), "p_up": float(up.double().mean()), "signed": None}
    for name, sel in (("up", up), ("low", ~up)):
        r = rt[sel]
        out[f"mean_{name}"] = float(r.mean())
        out[f"sd_{name}"] = float(r.std())
        out[f"q_{name}"] = torch.quantile(r, q).tolist()
    out["signed"] = torch.where(up, rt, -rt)
    return out


def _schemes(n: int) -> None:
    """Bias of Euler (dt = 1e-3) and the bridge scheme (1e-3, 5e-3, 1e-2) against the bridge
    scheme at dt = 1e-4, for angle and weibull: choice probability, mean rt and rt quantiles
    per response, Kolmogorov-Smirnov distance of the signed rt; JSON to
    benchmarks/results/simulator_schemes.json."""
    import torch

    from simulators.simulate import simulate

    torch.set_num_threads(1)
    rows = []
    for model, thetas in SCHEME_CASES.items():
        for ti, theta in enumerate(thetas):
            ref = None
            for si, (method, dt) in enumerate(SCHEMES):
                t0 = time.perf_counter()
                res = simulate(model, theta, n, dt=dt, method=method, seed=100 + 10 * ti + si)
                wall = time.perf_counter() - t0
                s = _summary(res.rt[0], res.response[0])
                signed = s.pop("signed")
                row = {"model": model, "theta": theta, "method": method, "dt": dt, **s}
                row["wall_s"] = wall
                if ref is None:
                    ref = (s, torch.sort(signed).values)
                else:
                    r0, ref_sorted = ref
                    grid = torch.cat([ref_sorted, torch.sort(signed).values])
                    f_ref = torch.searchsorted(ref_sorted, grid, right=True) / len(ref_sorted)
                    mine = torch.sort(signed).values
                    f_me = torch.searchsorted(mine, grid, right=True) / len(mine)
                    row["ks"] = float((f_ref - f_me).abs().max())
                    # KS 1% critical value for two samples of these sizes
                    row["ks_crit_1pct"] = 1.63 * math.sqrt(
                        (len(ref_sorted) + len(mine)) / (len(ref_sorted) * len(mine))
                    )
                    row["d_p_up"] = row["p_up"] - r0["p_up"]
                    for name in ("up", "low"):
                        row[f"d_mean_{name}"] = row[f"mean_{name}"] - r0[f"mean_{name}"]
                        row[f"d_q_{name}"] = [
                            a - b for a, b in zip(row[f"q_{name}"], r0[f"q_{name}"])
                        ]
                    se = math.sqrt(
                        r0["sd_up"] ** 2 / (r0["n"] * r0["p_up"])
                        + row["sd_up"] ** 2 / (row["n"] * row["p_up"])
                    )
                    row["se_d_mean_up"] = se
                rows.append(row)
                extra = ""
                if "ks" in row:
                    extra = (
                        f" dP(up) {row['d_p_up']:+.4f} dmean(up) {row['d_mean_up']:+.4f} "
                        f"(SE {row['se_d_mean_up']:.4f}) dq50(up) {row['d_q_up'][2]:+.4f} "
                        f"dq90(up) {row['d_q_up'][4]:+.4f} KS {row['ks']:.4f} "
                        f"(1% crit {row['ks_crit_1pct']:.4f})"
                    )
                print(
                    f"{model:8s} θ{ti} {method:6s} dt={dt:g}: P(up) {row['p_up']:.4f} "
                    f"mean(up) {row['mean_up']:.4f} [{wall:.1f} s]{extra}",
                    flush=True,
                )
    out = ROOT / "benchmarks" / "results" / "simulator_schemes.json"
    meta = {"n_trials": n, "reference": "bridge dt=1e-4", "load_avg_at_end": os.getloadavg()}
    tmp_out = out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps({"meta": meta, "results": rows}, indent=1))
    tmp_out.replace(out)
    print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--threads", default="1", help="torch threads of the eager runs")
    ap.add_argument("--variants", default="eager,compiled", help="eager, compiled or both")
    ap.add_argument(
        "--method", default="auto", help="our simulate(method=...), comma list (ssm: Euler)"
    )
    ap.add_argument("--workers", default="1", help="simulate(workers=...) counts, comma list")
    ap.add_argument("--compile-threads", default="1,2", help="torch threads of compiled runs")
    ap.add_argument(
        "--cold-cache",
        action="store_true",
        help="compiled runs start from an empty inductor cache (cold compile_s)",
    )
    ap.add_argument("--single-trials", type=int, default=100_000)
    ap.add_argument("--batched-sets", type=int, default=1000)
    ap.add_argument("--batched-trials", type=int, default=1000)
    ap.add_argument("--settings", default="single,batched")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--output", default=str(RESULTS))
    ap.add_argument("--fresh", action="store_true", help="overwrite instead of merging rows")
    ap.add_argument(
        "--schemes",
        action="store_true",
        help="instead: accuracy of euler/bridge at several dt vs a dt=1e-4 bridge reference",
    )
    ap.add_argument("--schemes-trials", type=int, default=50_000)
    args = ap.parse_args()
    # running this file puts benchmarks/ first on sys.path, where this very module would
    # shadow the ``simulators`` package: put the repository root first instead
    here = Path(__file__).resolve().parent
    sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != here]
    if args.child:
        print(json.dumps(_child_ours(json.loads(args.child))))
        return
    if args.schemes:
        _schemes(args.schemes_trials)
        return
    import numpy as np
    import torch

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    settings = {
        "single": (1, args.single_trials),
        "batched": (args.batched_sets, args.batched_trials),
    }
    peer = os.environ.get("PEER_PYTHON")
    if not peer:
        print("PEER_PYTHON not set: ssm-simulators comparison skipped")
    results = []
    tmp = Path(tempfile.mkdtemp(prefix="bench_sim_"))
    for model in args.models.split(","):
        for setting in args.settings.split(","):
            n_sets, n_trials = settings[setting]
            total = n_sets * n_trials
            row = {"model": model, "setting": setting, "n_sets": n_sets, "n_trials": n_trials}
            if peer:
                theta_file = tmp / f"{model}_{n_sets}.npy"
                np.save(theta_file, _theta_matrix(model, n_sets))
                case = {"model": model, "n_trials": n_trials, "theta_file": str(theta_file)}
                env = {**os.environ, "OMP_NUM_THREADS": "1", "JAX_PLATFORMS": "cpu"}
                load = os.getloadavg()[0]
                print(f"  (load average 1 min: {load:.2f})", flush=True)
                r = _run_child([peer, "-c", PEER_SCRIPT, json.dumps(case)], env=env)
                r["load_avg_1min_before"] = load
                row["ssm"] = r
                if "wall_s" in r:
                    print(
                        f"{model:15s} {setting:8s} ssm-simulators (1 thread): {r['wall_s']:8.2f} s "
                        f"{total / r['wall_s']:12,.0f} trials/s  peak {r['peak_rss_mb']:.0f} MB"
                    )
                else:
                    print(f"{model:15s} {setting:8s} ssm-simulators failed: {r['error']}")
            row["ours"] = []
            runs = []
            for variant in args.variants.split(","):
                if variant not in ("eager", "compiled"):
                    raise SystemExit(f"--variants: expected eager and/or compiled, got {variant!r}")
                thr = args.threads if variant == "eager" else args.compile_threads
                runs += [
                    (variant == "compiled", int(t), meth, int(w))
                    for t in thr.split(",")
                    for meth in _methods(model, args.method)
                    for w in args.workers.split(",")
                ]
            for device in devices:
                for compiled, threads, method, workers in runs:
                    case = {
                        "model": model,
                        "n_sets": n_sets,
                        "n_trials": n_trials,
                        "threads": threads,
                        "device": device,
                        "compile": compiled,
                        "method": method,
                        "workers": workers,
                    }
                    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
                    if compiled and args.cold_cache:
                        env["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor_")
                    load = os.getloadavg()[0]
                    print(f"  (load average 1 min: {load:.2f})", flush=True)
                    r = _run_child([sys.executable, __file__, "--child", json.dumps(case)], env=env)
                    r.update(device=device, threads=threads, load_avg_1min_before=load)
                    row["ours"].append(r)
                    if "wall_s" not in r:
                        print(
                            f"{model:15s} {setting:8s} hssm-torch {device} "
                            f"{'compiled' if compiled else 'eager'} failed: {r['error']}"
                        )
                        continue
                    ratio = ""
                    if peer and "wall_s" in row["ssm"]:
                        r["speedup_vs_ssm"] = row["ssm"]["wall_s"] / r["wall_s"]
                        ratio = f"  x{r['speedup_vs_ssm']:.2f} vs ssm"
                    mem = f"peak {r['peak_rss_mb']:.0f} MB" + (
                        f", cuda {r['peak_cuda_mb']:.0f} MB" if "peak_cuda_mb" in r else ""
                    )
                    comp = f" compiled (compile {r['compile_s']:.1f} s)" if compiled else " eager"
                    print(
                        f"{model:15s} {setting:8s} hssm-torch {device} {threads} thr{comp} "
                        f"({r['method']}, {workers} worker{'s' if workers > 1 else ''}): "
                        f"{r['wall_s']:8.2f} s {total / r['wall_s']:12,.0f} trials/s  {mem}{ratio}",
                        flush=True,
                    )
            results.append(row)
            _write(Path(args.output), results, settings, fresh=args.fresh)
    print(f"wrote {args.output}")


def _methods(model: str, methods: str) -> list[str]:
    """Our methods to time for ``model`` (``auto`` dropped when it is another listed one,
    methods the model lacks dropped)."""
    from simulators import get_model
    from simulators.kinds import methods_for

    wanted = methods.split(",")
    available = methods_for(get_model(model))
    if "auto" in wanted and available[0] in wanted:
        wanted.remove("auto")
    # a method the model does not have (e.g. euler for lba2) is left out
    return [m for m in wanted if m == "auto" or m in available]


def _write(out: Path, results: list, settings: dict, *, fresh: bool) -> None:
    """Merge this run's rows into the JSON (temp file + rename)."""
    import torch

    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "settings": {k: list(v) for k, v in settings.items()},
        "dt": 1e-3,
        "max_t": 20.0,
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "load_avg_at_end": os.getloadavg(),
    }
    rows = list(results)
    if out.exists() and not fresh:
        # keep earlier rows for (model, setting) pairs this run did not measure
        done = {(r["model"], r["setting"]) for r in rows}
        old = json.loads(out.read_text())
        rows = [r for r in old.get("results", []) if (r["model"], r["setting"]) not in done] + rows
        meta = {**old.get("meta", {}), **meta}
    tmp_out = out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps({"meta": meta, "results": rows}, indent=1))
    tmp_out.replace(out)


if __name__ == "__main__":
    main()
