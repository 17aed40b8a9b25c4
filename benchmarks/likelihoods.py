"""Throughput of the analytical likelihoods: log-likelihood (+ gradient) evaluations per second.

For ddm, ddm_sdv, full_ddm and lba2 at 10^3, 10^5 and 10^6 trials: one parameter set shared by
all trials (the gradient is taken with respect to it, as in HSSM's per-parameter graphs), on
CPU (and CUDA when present). full_ddm is evaluated in chunks of 2,000 trials (its quadrature
uses 240 density evaluations per trial). When the environment variable ``PEER_PYTHON`` names an
interpreter with HSSM 0.5 installed, HSSM's own PyTensor implementation (``logp_ddm``,
``logp_ddm_sdv``, ``logp_lba2``; HSSM has no differentiable full_ddm) is timed on the same
inputs in a subprocess and the ratio is printed. Results go to
``benchmarks/results/likelihoods.json``.

Usage::

    python benchmarks/likelihoods.py [--sizes 1000 100000 1000000] [--repeats 5] [--threads 1]
    PEER_PYTHON=/root/peer-venv/bin/python python benchmarks/likelihoods.py
"""

from __future__ import annotations

import argparse
import json
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
    for key, f in (("loglik", f_lp), ("loglik_grad", f_grad)):
        f(*theta)
        ts = []
        for _ in range(job["repeats"]):
            t0 = time.perf_counter(); f(*theta); ts.append(time.perf_counter() - t0)
        res["seconds_" + key] = statistics.median(ts)
        res["trials_per_s_" + key] = job["n"] / statistics.median(ts)
    res["loglik_sum"] = float(f_lp(*theta))
    out[job["model"] + ":" + str(job["n"])] = res
json.dump(out, open(sys.argv[2], "w"))
"""


def time_peer(sizes: list[int], repeats: int) -> dict | None:
    peer = os.environ.get("PEER_PYTHON")
    if not peer:
        print("PEER_PYTHON not set: comparison with HSSM skipped")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        jobs = []
        for model in PEER_MODELS:
            for n in sizes:
                rt, resp = make_data(model, n)
                path = Path(tmp) / f"{model}_{n}.npz"
                np.savez(path, rt=rt, response=resp)
                reps = max(1, repeats if n <= 100_000 else min(repeats, 3))
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
        spec.write_text(json.dumps({"jobs": jobs}))
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
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
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
