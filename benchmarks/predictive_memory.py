"""Peak memory of predictive sampling vs number of draws x trials.

Each case runs in its own subprocess and reports peak RSS (``resource.getrusage``
``ru_maxrss``). The ``(S, N, 2)`` float32 output array is allocated and touched before the
baseline is taken, so ``working_mib = peak - baseline`` is the memory predictive sampling
itself needs; the output's size is reported separately (``output_mib``).

Cases: ``hssm_torch.predictive.simulate_predictive`` with θ produced per chunk by a callable
(as the fitting code does from posterior draws) and a fixed ``chunk_draws``, for S in
{100, 400, 1600} draws x N = 1000 trials; the same with ``chunk_draws = S`` (everything at
once, what an unchunked implementation does) for contrast. With ``PEER_PYTHON`` (a Python
with ssm-simulators 0.15), the peer's one-call approach (HSSM's: θ for all draws tiled into
one ``(S*N, P)`` array, ``simulator(theta, n_samples=1)``) is measured the same way, at
fewer draws (``--peer-draws``, default 10 40 160: its Euler scheme takes ~0.45 ms per trial
here); without it the comparison is skipped (printed).

Usage: ``python benchmarks/predictive_memory.py [--draws 100 400 1600] [--trials 1000]
[--chunk 100]``; writes ``benchmarks/results/predictive_memory.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "predictive_memory.json"

CHILD = r"""
import json, resource, sys, time
import numpy as np
S, N, CHUNK = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
import torch
torch.set_num_threads(1)
from hssm_torch.predictive import simulate_predictive
base_theta = torch.tensor([0.5, 1.0, 0.5, 0.3])
def theta(i, j):  # per-chunk parameters (varying drift), never all draws at once
    th = base_theta.repeat(j - i, N, 1)
    th[..., 0] = torch.linspace(-1.0, 1.0, N)
    return th
simulate_predictive("ddm", theta, n_draws=2, seed=0, chunk_draws=2)  # warm-up
out = np.zeros((S, N, 2), dtype=np.float32)
base = peak_mib()
t0 = time.perf_counter()
simulate_predictive("ddm", theta, n_draws=S, seed=1, chunk_draws=CHUNK, out=out)
wall = time.perf_counter() - t0
print(json.dumps({"baseline_mib": base, "peak_mib": peak_mib(), "wall_s": wall,
                  "output_mib": out.nbytes / 2**20}))
"""

PEER_CHILD = r"""
import json, resource, sys, time
import numpy as np
S, N = int(sys.argv[1]), int(sys.argv[2])
def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
from ssms.basic_simulators.simulator import simulator
simulator(np.array([[0.5, 1.0, 0.5, 0.3]]), model="ddm", n_samples=1, random_state=0)
out = np.zeros((S, N, 2), dtype=np.float32)
base = peak_mib()
t0 = time.perf_counter()
theta = np.tile(np.array([0.5, 1.0, 0.5, 0.3]), (S * N, 1))
theta[:, 0] = np.tile(np.linspace(-1.0, 1.0, N), S)
res = simulator(theta, model="ddm", n_samples=1, random_state=1)
out[:] = np.stack([res["rts"].reshape(S, N), res["choices"].reshape(S, N)], -1)
wall = time.perf_counter() - t0
print(json.dumps({"baseline_mib": base, "peak_mib": peak_mib(), "wall_s": wall,
                  "output_mib": out.nbytes / 2**20}))
"""


def _run(python: str, code: str, args: list[str], cwd: Path) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run(
        [python, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"case {args} failed:\n{proc.stderr[-2000:]}")
    rec = json.loads(proc.stdout.strip().splitlines()[-1])
    rec["working_mib"] = rec["peak_mib"] - rec["baseline_mib"]
    return rec


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, nargs="+", default=[100, 400, 1600])
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--chunk", type=int, default=100)
    ap.add_argument(
        "--peer-draws",
        type=int,
        nargs="+",
        default=[10, 40, 160],
        help="draws for the ssm-simulators cases (its Euler scheme runs ~0.4 ms/trial)",
    )
    ap.add_argument("--no-unchunked", action="store_true", help="skip the chunk_draws = S contrast")
    args = ap.parse_args(argv)
    cases = []
    print(
        f"{'impl':<22}{'draws':>7}{'trials':>8}{'chunk':>7}"
        f"{'working MiB':>13}{'output MiB':>12}{'wall s':>9}"
    )

    def report(impl, s, chunk, rec):
        rec.update(impl=impl, draws=s, trials=args.trials, chunk_draws=chunk)
        cases.append(rec)
        print(
            f"{impl:<22}{s:>7}{args.trials:>8}{str(chunk):>7}{rec['working_mib']:>13.1f}"
            f"{rec['output_mib']:>12.1f}{rec['wall_s']:>9.2f}",
            flush=True,
        )

    for s in args.draws:
        report(
            "hssm_torch chunked",
            s,
            args.chunk,
            _run(sys.executable, CHILD, [str(s), str(args.trials), str(args.chunk)], ROOT),
        )
    if not args.no_unchunked:
        for s in args.draws:
            report(
                "hssm_torch unchunked",
                s,
                s,
                _run(sys.executable, CHILD, [str(s), str(args.trials), str(s)], ROOT),
            )
    peer = os.environ.get("PEER_PYTHON")
    if peer:
        for s in args.peer_draws:
            report(
                "ssm-simulators 1 call",
                s,
                None,
                _run(peer, PEER_CHILD, [str(s), str(args.trials)], Path("/")),
            )
    else:
        print("PEER_PYTHON not set: ssm-simulators (HSSM's one-call approach) comparison skipped")
    chunked = [c for c in cases if c["impl"] == "hssm_torch chunked"]
    growth = chunked[-1]["working_mib"] - chunked[0]["working_mib"]
    print(
        f"chunked working memory growth from {chunked[0]['draws']} to "
        f"{chunked[-1]['draws']} draws: "
        f"{growth:+.1f} MiB (the output array grows by "
        f"{chunked[-1]['output_mib'] - chunked[0]['output_mib']:.1f} MiB, reported separately)"
    )
    result = {
        "benchmark": "predictive_memory",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "model": "ddm",
        "notes": (
            "working_mib = peak RSS - baseline RSS (baseline includes the touched output array)"
        ),
        "peer_compared": bool(peer),
        "cases": cases,
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULT.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(RESULT)
    print(f"wrote {RESULT.relative_to(ROOT)}")
    return result


if __name__ == "__main__":
    main()
