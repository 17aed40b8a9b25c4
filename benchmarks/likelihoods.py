"""Throughput of the analytical likelihoods: log-likelihood (+ gradient) evaluations per second.

For ddm, ddm_sdv, full_ddm and lba2 at 10^3, 10^5 and 10^6 trials: one parameter set shared by
all trials (the gradient is taken with respect to it, as in HSSM's per-parameter graphs), on
CPU (and CUDA when present). full_ddm is evaluated in chunks of 2,000 trials (its quadrature
uses 240 density evaluations per trial). When the environment variable ``PEER_PYTHON`` names an
interpreter with HSSM 0.5 installed, HSSM's own PyTensor implementation (``logp_ddm``,
``logp_ddm_sdv``, ``logp_lba2``; HSSM has no differentiable full_ddm) is timed on the same
inputs in a subprocess and the ratio is printed. Results go to
``benchmarks/results/likelihoods.json``.

``--wfpt`` instead times only ddm and ddm_sdv the way a sampler calls them: per-trial
parameters ``theta (N, P)`` (and ``(2, 500, P)``: two parameter sets in one call, as the batched
multi-chain NUTS does) with the gradient taken with respect to ``theta``, for the fixed-term
implementation in the package ("new") and the adaptive one it replaced ("old",
``benchmarks/_wfpt_adaptive.py``) in the same run, at N = 500, 2x500, 1000 and 100,000, and
HSSM at 500, 1000 and 100,000 (2x500 against twice HSSM's 500). Times are the minimum over
repeats (old and new interleaved) of the calling thread's CPU time (``time.thread_time``; less
sensitive to other processes on shared cores), in milliseconds; the load average is printed
beside them. Results go under the
key ``wfpt`` of the same JSON file (other keys kept).

Usage::

    python benchmarks/likelihoods.py [--sizes 1000 100000 1000000] [--repeats 5] [--threads 1]
    PEER_PYTHON=/root/peer-venv/bin/python python benchmarks/likelihoods.py
    PEER_PYTHON=/root/peer-venv/bin/python python benchmarks/likelihoods.py --wfpt
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hssm_torch.likelihoods import log_likelihood  # noqa: E402

THETA = {
    "ddm": [0.5, 1.5, 0.5, 0.3],
    "ddm_sdv": [0.5, 1.5, 0.5, 0.3, 0.8],
    "full_ddm": [0.5, 1.5, 0.5, 0.3, 0.1, 0.8, 0.1],
    "lba2": [0.3, 0.5, 0.5, 0.4],
}
PEER_MODELS = ("ddm", "ddm_sdv", "lba2")


def make_data(model: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic trials: decision times log-normal (median ~0.6 s) after t; random responses."""
    rng = np.random.default_rng(seed)
    dec = np.exp(rng.normal(np.log(0.6), 0.6, n))
    if model == "lba2":
        return dec, rng.integers(0, 2, n).astype(np.float64)
    t = THETA[model][3]
    return t + dec, rng.choice([-1.0, 1.0], n)


def _median_time(fn, repeats: int, sync, warm: bool = True) -> float:
    if warm:
        fn()
        sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_ours(model: str, n: int, device: str, repeats: int) -> dict:
    rt_np, resp_np = make_data(model, n)
    rt = torch.tensor(rt_np, dtype=torch.float64, device=device)
    resp = torch.tensor(resp_np, device=device).long()
    theta = torch.tensor(THETA[model], dtype=torch.float64, device=device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    # full_ddm evaluates 10 x 24 quadrature nodes per trial: process it in chunks so the
    # autograd graph fits in memory (gradients accumulate across chunks).
    chunk = 2_000 if model == "full_ddm" else n

    def fwd():
        with torch.no_grad():
            return sum(
                log_likelihood(model, rt[i : i + chunk], resp[i : i + chunk], theta).sum()
                for i in range(0, n, chunk)
            )

    def fwd_bwd():
        th = theta.clone().requires_grad_(True)
        for i in range(0, n, chunk):
            log_likelihood(model, rt[i : i + chunk], resp[i : i + chunk], th).sum().backward()
        return th.grad

    reps = max(1, repeats if n <= 100_000 else min(repeats, 3))
    warm = True
    if model == "full_ddm" and n >= 100_000:  # minutes per call on a loaded 2-core machine
        reps, warm = 1, n < 1_000_000
    t_f = _median_time(fwd, reps, sync, warm)
    t_fb = _median_time(fwd_bwd, reps, sync, warm)
    return {
        "loglik_sum": float(fwd()) if n <= 100_000 or model != "full_ddm" else None,
        "trials_per_s_loglik": n / t_f,
        "trials_per_s_loglik_grad": n / t_fb,
        "seconds_loglik": t_f,
        "seconds_loglik_grad": t_fb,
    }


PEER_SCRIPT = r"""
import json, statistics, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np, pytensor, pytensor.tensor as pt
from hssm.likelihoods.analytical import logp_ddm, logp_ddm_sdv, logp_lba2
spec = json.load(open(sys.argv[1]))
out = {}
for job in spec["jobs"]:
    d = np.load(job["data"])
    data = np.column_stack([d["rt"], d["response"]])
    theta = job["theta"]
    names = {"ddm": "vazt", "ddm_sdv": ["v", "a", "z", "t", "sv"], "lba2": ["A", "b", "v0", "v1"]}
    syms = [pt.dscalar(n) for n in names[job["model"]]]
    fn = {"ddm": logp_ddm, "ddm_sdv": logp_ddm_sdv, "lba2": logp_lba2}[job["model"]]
    lp = fn(data, *syms).sum()
    f_lp = pytensor.function(syms, lp)
    f_grad = pytensor.function(syms, [lp, *pytensor.grad(lp, syms)])
    res = {}
    clock = time.thread_time if spec.get("cpu_clock") else time.perf_counter
    pick = min if spec.get("cpu_clock") else statistics.median
    for key, f in (("loglik", f_lp), ("loglik_grad", f_grad)):
        f(*theta)
        ts = []
        for _ in range(job["repeats"]):
            t0 = clock(); f(*theta); ts.append(clock() - t0)
        res["seconds_" + key] = pick(ts)
        res["trials_per_s_" + key] = job["n"] / pick(ts)
    res["loglik_sum"] = float(f_lp(*theta))
    out[job["model"] + ":" + str(job["n"])] = res
json.dump(out, open(sys.argv[2], "w"))
"""


def time_peer(
    sizes: list[int], repeats: int, models=PEER_MODELS, cpu_clock: bool = False
) -> dict | None:
    peer = os.environ.get("PEER_PYTHON")
    if not peer:
        print("PEER_PYTHON not set: comparison with HSSM skipped")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        jobs = []
        for model in models:
            for n in sizes:
                rt, resp = make_data(model, n)
                path = Path(tmp) / f"{model}_{n}.npz"
                np.savez(path, rt=rt, response=resp)
                reps = max(1, repeats if n <= 100_000 else min(repeats, 3))
                if cpu_clock and n > 1000:  # --wfpt: many repeats for the small sizes only
                    reps = min(reps, 10)
                jobs.append(
                    {
                        "model": model,
                        "n": n,
                        "data": str(path),
                        "theta": THETA[model],
                        "repeats": reps,
                    }
                )
        spec, result, script = (Path(tmp) / x for x in ("spec.json", "out.json", "peer.py"))
        spec.write_text(json.dumps({"jobs": jobs, "cpu_clock": cpu_clock}))
        script.write_text(PEER_SCRIPT)
        env = dict(os.environ, JAX_PLATFORMS="cpu", OMP_NUM_THREADS="1")
        proc = subprocess.run(
            [peer, "-W", "ignore", str(script), str(spec), str(result)],
            env=env,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            print("HSSM comparison failed:\n" + proc.stderr[-2000:])
            return None
        return json.loads(result.read_text())


WFPT_CASES = (("500", 1, 500), ("2x500", 2, 500), ("1000", 1, 1000), ("100000", 1, 100_000))


def time_wfpt(repeats: int) -> dict:
    """Old (adaptive) vs new (fixed-term) ddm / ddm_sdv, per-trial theta, CPU ms."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import _wfpt_adaptive as old  # noqa: PLC0415

    from hssm_torch.likelihoods import wfpt as new  # noqa: PLC0415

    out: dict = {}
    print(f"load average before: {os.getloadavg()}")
    print(f"{'model':8s} {'case':>7s} {'impl':4s} {'loglik ms':>10s} {'loglik+grad ms':>15s}")
    for model in ("ddm", "ddm_sdv"):
        for case, chains, n in WFPT_CASES:
            rt_np, resp_np = make_data(model, n)
            rt = torch.tensor(rt_np, dtype=torch.float64)
            resp = torch.tensor(resp_np).long()
            base = torch.tensor(THETA[model], dtype=torch.float64)
            gen = torch.Generator().manual_seed(1)
            theta = base + 0.02 * torch.randn(
                chains, n, base.numel(), generator=gen, dtype=torch.float64
            )
            theta = theta.squeeze(0) if chains == 1 else theta
            reps = repeats if n <= 1000 else max(3, repeats // 20)
            fns = {}
            for label, mod in (("old", old), ("new", new)):
                fn = getattr(mod, f"{model}_log_likelihood")

                def fwd(fn=fn, rt=rt, resp=resp, theta=theta):
                    with torch.no_grad():
                        return fn(rt, resp, theta).sum()

                def fwd_bwd(fn=fn, rt=rt, resp=resp, theta=theta):
                    th = theta.clone().requires_grad_(True)
                    fn(rt, resp, th).sum().backward()
                    return th.grad

                fns[label] = {"ms_loglik": fwd, "ms_loglik_grad": fwd_bwd}
            # old and new interleaved, so that both see the same load on shared cores
            best = {(lab, key): math.inf for lab in fns for key in fns[lab]}
            for _ in range(reps + 1):
                for lab, pair in fns.items():
                    for key, f in pair.items():
                        t0 = time.thread_time()
                        f()
                        best[lab, key] = min(best[lab, key], time.thread_time() - t0)
            row = {}
            for lab, pair in fns.items():
                row[lab] = {key: 1e3 * best[lab, key] for key in pair}
                row[lab]["loglik_sum"] = float(pair["ms_loglik"]())
                print(
                    f"{model:8s} {case:>7s} {lab:4s} {row[lab]['ms_loglik']:10.3f} "
                    f"{row[lab]['ms_loglik_grad']:15.3f}",
                    flush=True,
                )
            row["speedup_loglik_grad"] = row["old"]["ms_loglik_grad"] / row["new"]["ms_loglik_grad"]
            row["max_abs_loglik_sum_diff"] = abs(
                row["old"]["loglik_sum"] - row["new"]["loglik_sum"]
            )
            out[f"{model}:{case}"] = row
    print(f"load average after: {os.getloadavg()}")
    return out


def run_wfpt(args) -> None:
    results: dict = {}
    if args.output.exists():
        results = json.loads(args.output.read_text())
    section: dict = {
        "machine": {
            "platform": platform.platform(),
            "torch": torch.__version__,
            "threads": args.threads,
            "clock": "min over repeats of time.thread_time (CPU time of the calling thread)",
            "load_average_start": os.getloadavg(),
        }
    }
    section["ours"] = time_wfpt(args.repeats)
    peer = time_peer([500, 1000, 100_000], args.repeats, models=("ddm", "ddm_sdv"), cpu_clock=True)
    if peer is not None:
        section["hssm"] = peer
        head = f"{'model':8s} {'case':>7s} {'HSSM ll+g ms':>13s} {'new ll+g ms':>12s}"
        print(f"\n{head} {'HSSM/new':>9s}")
        ratios = {}
        for key, row in section["ours"].items():
            model, case = key.split(":")
            n = 500 if case == "2x500" else int(case)
            h = peer.get(f"{model}:{n}")
            if h is None:
                continue
            h_ms = 1e3 * h["seconds_loglik_grad"] * (2 if case == "2x500" else 1)
            ratios[key] = h_ms / row["new"]["ms_loglik_grad"]
            new_ms = row["new"]["ms_loglik_grad"]
            print(f"{model:8s} {case:>7s} {h_ms:13.3f} {new_ms:12.3f} {ratios[key]:9.2f}")
        section["ratio_hssm_time_over_new_loglik_grad"] = ratios
    section["machine"]["load_average_end"] = os.getloadavg()
    results["wfpt"] = section
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2))
    tmp.replace(args.output)
    print(f"\nwrote {args.output} (key 'wfpt')")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", nargs="+", default=list(THETA))
    parser.add_argument(
        "--skip", nargs="*", default=[], help="model:n pairs to leave out, e.g. full_ddm:1000000"
    )
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks/results/likelihoods.json")
    parser.add_argument(
        "--wfpt", action="store_true", help="only the ddm/ddm_sdv old-vs-new comparison (see above)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.wfpt:
        run_wfpt(args)
        return
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    results: dict = {
        "machine": {
            "platform": platform.platform(),
            "torch": torch.__version__,
            "threads": args.threads,
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        },
        "ours": {},
    }

    def save() -> None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.output.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(results, indent=2))
        tmp.replace(args.output)

    peer = time_peer(args.sizes, args.repeats)
    if peer is not None:
        results["hssm"] = peer
        save()
    print(f"{'model':10s} {'n':>8s} {'device':6s} {'loglik/s':>12s} {'loglik+grad/s':>14s}")
    for device in devices:
        for model in args.models:
            for n in args.sizes:
                if f"{model}:{n}" in args.skip:
                    print(f"{model:10s} {n:8d} {device:6s} skipped (--skip)")
                    continue
                r = time_ours(model, n, device, args.repeats)
                results["ours"][f"{model}:{n}:{device}"] = r
                print(
                    f"{model:10s} {n:8d} {device:6s} {r['trials_per_s_loglik']:12.3e} "
                    f"{r['trials_per_s_loglik_grad']:14.3e}",
                    flush=True,
                )
                save()
    if peer is not None:
        results["ratio_ours_over_hssm_cpu"] = {}
        print(
            f"\n{'model':10s} {'n':>8s} {'HSSM ll/s':>12s} {'HSSM ll+g/s':>12s} "
            f"{'ratio ll':>9s} {'ratio ll+g':>10s} {'|sum diff|':>10s}"
        )
        for key, h in peer.items():
            model, n = key.split(":")
            o = results["ours"].get(f"{model}:{n}:cpu")
            if o is None:
                continue
            ratio = {
                "loglik": o["trials_per_s_loglik"] / h["trials_per_s_loglik"],
                "loglik_grad": o["trials_per_s_loglik_grad"] / h["trials_per_s_loglik_grad"],
            }
            results["ratio_ours_over_hssm_cpu"][key] = ratio
            print(
                f"{model:10s} {int(n):8d} {h['trials_per_s_loglik']:12.3e} "
                f"{h['trials_per_s_loglik_grad']:12.3e} {ratio['loglik']:9.2f} "
                f"{ratio['loglik_grad']:10.2f} {abs(o['loglik_sum'] - h['loglik_sum']):10.2e}"
            )
    results["machine"]["load_average_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    save()
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
