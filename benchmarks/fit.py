"""Fitting benchmark: wall time and ESS per second, hssm-torch (Pyro NUTS / batched NUTS) vs HSSM.

Cases (2 chains, 1000 tune, 1000 draws by default):
  (i)   ddm, analytical likelihood, 500 trials, one value per parameter
  (ii)  ddm, analytical, 10 participants x 100 trials, v ~ 1 + x + (1|participant_id)
  (iii) angle with a LAN (HSSM's published angle_lan.onnx), 1,000 trials

For each: model build time, sampling time (all chains, warm-up included), minimum bulk ESS
over every posterior element (group effects included), ESS/s = min ESS / sampling time,
and total (build + sampling). Where the time goes: the cost of one gradient of the log
density (Pyro trace + likelihood, JIT) and of the likelihood alone, times the number of
leapfrog steps, against the sampling time; the rest is Pyro's per-step NUTS overhead.

``--sampler nuts_batched`` (or ``both``) runs our batched NUTS (all chains advance with one
likelihood call per leapfrog step): its cost split is one batched potential-and-gradient
call (and the likelihood alone, forward and backward, on the same batch) times the number
of calls, the rest being the sampler's own per-step work; leapfrog steps per iteration
are the mean of ``n_steps``. The machine's load average is recorded with each case.

``--sampler nuts_batched_compiled`` (or ``all``) runs the batched NUTS with the potential
compiled by ``torch.compile`` (``HSSM.sample(sampler="nuts_batched", compile=True)``). The
compile happens before sampling: it is reported as ``compile_s``, left out of
``sampling_s`` and ``ess_per_s``, and included in ``ess_per_s_incl_compile`` and in
``total_s`` / ``ess_per_s_total``. HSSM's ``sample()`` time includes its own PyTensor/JAX
compilation, so ``ratio_ess_per_s_incl_compile*`` is the like-for-like ratio of sampling
calls. ``inductor_cache`` records whether TorchInductor's on-disk cache held files at the
start (warm: compiled kernels may be reused; run with TORCHINDUCTOR_CACHE_DIR set to an
empty folder for a cold compile).

HSSM runs in the same process tree through $PEER_PYTHON (HSSM 0.5 venv) on the same data
(PyMC NUTS for (i), numpyro for (ii) and (iii), p_outlier=None); its ESS is computed here
with the same ArviZ estimator. Without PEER_PYTHON the comparison is skipped (printed).

    python benchmarks/fit.py                 # all cases, full settings
    python benchmarks/fit.py --cases i --draws 300 --tune 300
    python benchmarks/fit.py --cases i,ii --sampler both
    python benchmarks/fit.py --cases i,ii,iii --sampler nuts_batched,nuts_batched_compiled
    python benchmarks/fit.py --cases i --seeds 1,2,3 --sampler nuts_batched_compiled
    TORCHINDUCTOR_CACHE_DIR=$(mktemp -d) python benchmarks/fit.py --compile-only \
        --out benchmarks/results/fit_compile_cold.json      # cold compile seconds
Results: benchmarks/results/fit.json (written to a temporary name, then renamed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ANGLE_LAN = Path(os.environ.get("HSSMT_REFERENCE_DIR", ROOT.parent / "shared" / "reference")) / (
    "hssm_networks/angle_lan.onnx"
)
COMMON = [
    "v_Intercept",
    "v_x",
    "v_1|participant_id",
    "v_1|participant_id_sigma",
    "v",
    "a",
    "z",
    "t",
    "theta",
]

PEER_SCRIPT = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np, pandas as pd
t0 = time.perf_counter()
import hssm
args = json.loads(sys.argv[1])
df = pd.read_csv(args["csv"])
kw = dict(model=args["model"], p_outlier=None)
if args.get("formula"):
    kw["include"] = [{"name": "v", "formula": args["formula"]}]
if args.get("onnx"):
    kw.update(loglik_kind="approx_differentiable", loglik=args["onnx"])
t1 = time.perf_counter()
model = hssm.HSSM(data=df, **kw)
t2 = time.perf_counter()
c2 = time.process_time()
idata = model.sample(sampler=args["sampler"], chains=args["chains"], draws=args["draws"],
                     tune=args["tune"], cores=1, random_seed=args["seed"], progressbar=False)
t3 = time.perf_counter()
c3 = time.process_time()
post = idata["posterior"]
arrays = {k: np.asarray(post[k].values) for k in post.data_vars if k in args["keep"]}
np.savez(args["out"], **arrays)
stats = idata["sample_stats"]
div = int(np.asarray(stats["diverging"].values).sum())
res = {"import_s": t1 - t0, "build_s": t2 - t1, "sample_s": t3 - t2, "sample_cpu_s": c3 - c2,
       "divergences": div, "seed": args["seed"]}
for name, key in (("step_size", "step_size"), ("acceptance_rate", "acceptance_rate"),
                  ("n_steps", "leapfrog_per_iteration_draws"), ("tree_depth", "tree_depth")):
    if name in stats:
        vals = np.asarray(stats[name].values, dtype=float)
        res[key] = [float(v) for v in vals[:, -1]] if name == "step_size" else float(vals.mean())
print(json.dumps(res))
"""


#: ``--sampler`` value -> key of its results in the JSON
SAMPLER_KEYS = {
    "nuts": "hssm_torch",
    "nuts_batched": "hssm_torch_batched",
    "nuts_batched_compiled": "hssm_torch_batched_compiled",
}


def inductor_cache_state() -> dict:
    """TorchInductor's on-disk cache folder and how many files it held at the start (0: the
    first compile of each graph is cold; otherwise compiled graphs may be reused)."""
    try:
        from torch._inductor.runtime.cache_dir_utils import cache_dir

        path = Path(cache_dir())
    except Exception as err:  # noqa: BLE001 - only reported
        return {"error": repr(err)}
    n = sum(1 for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0
    return {"dir": str(path), "files_before": n}


def simulate(model: str, theta: np.ndarray, seed: int) -> pd.DataFrame:
    from simulators.simulate import simulate as sim

    res = sim(
        model,
        torch.tensor(theta, dtype=torch.float64),
        1,
        seed=seed,
        dtype=torch.float64,
        allow_out_of_bounds=True,  # v = 0.5 + 0.8 x + u can leave the [-3, 3] box
    )
    return pd.DataFrame(
        {"rt": res.rt[:, 0].numpy(), "response": res.response[:, 0].numpy().astype(float)}
    )


def make_case(case: str) -> tuple[pd.DataFrame, dict]:
    rng = np.random.default_rng(0)
    if case == "i":
        df = simulate("ddm", np.tile([0.8, 1.0, 0.45, 0.3], (500, 1)), 1)
        return df, {"model": "ddm"}
    if case == "ii":
        pid = np.repeat(np.arange(10), 100)
        x = rng.normal(size=1000)
        u = rng.normal(0, 0.5, 10)
        v = 0.5 + 0.8 * x + u[pid]
        theta = np.column_stack([v, np.full(1000, 1.0), np.full(1000, 0.5), np.full(1000, 0.3)])
        df = simulate("ddm", theta, 2).assign(x=x, participant_id=pid)
        return df, {"model": "ddm", "formula": "v ~ 1 + x + (1|participant_id)"}
    if case == "iii":
        df = simulate("angle", np.tile([0.6, 1.2, 0.5, 0.3, 0.3], (1000, 1)), 3)
        return df, {"model": "angle", "onnx": str(ANGLE_LAN)}
    raise ValueError(f"--cases: unknown case {case!r}; expected i, ii, iii")


def min_bulk_ess(post_arrays: dict[str, np.ndarray]) -> float:
    ds = az.convert_to_dataset({k: v for k, v in post_arrays.items()})
    ess = az.ess(ds, method="bulk")
    return float(min(np.nanmin(ess[k].values) for k in ess.data_vars))


def gradient_costs(model, reps: int = 20) -> dict[str, float]:
    """Seconds per gradient of the full log density (JIT) and of the likelihood alone."""
    from pyro.infer.mcmc.util import initialize_model
    from pyro.ops.integrator import potential_grad

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        init, pot, _, _ = initialize_model(
            model.pyro_model, jit_compile=True, skip_jit_warnings=True
        )
        for _ in range(3):
            potential_grad(pot, init)
        t0 = time.perf_counter()
        for _ in range(reps):
            potential_grad(pot, init)
        t_grad = (time.perf_counter() - t0) / reps
    b = model.builder
    vals = {k: v.clone().requires_grad_(True) for k, v in b.init_values().items()}
    theta = b.theta(vals).detach().requires_grad_(True)
    rt, resp = b.obs[:, 0], b.obs[:, 1]
    for _ in range(3):
        model._loglik(rt, resp, theta).sum().backward()
    t0 = time.perf_counter()
    for _ in range(reps):
        model._loglik(rt, resp, theta).sum().backward()
    t_lik = (time.perf_counter() - t0) / reps
    return {"grad_s": t_grad, "likelihood_grad_s": t_lik}


def _per_call(fn, args: tuple, reps: int) -> float:
    """Seconds per call of ``fn(*args)``: the fastest of 5 batches of ``reps // 5`` calls
    (after 5 warm-up calls), which keeps other processes' bursts out of the figure."""
    for _ in range(5):
        fn(*args)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(max(reps // 5, 1)):
            fn(*args)
        best = min(best, (time.perf_counter() - t0) / max(reps // 5, 1))
    return best


def compiled_leaf(pot, x: torch.Tensor):
    """The compiled trajectory leaf of ``nuts_sample(compile=True)`` (value, gradient and
    leaf update in one call), its example arguments, compile seconds and success."""
    from hssm_torch.samplers.batched_nuts import _Checkpoints, _fused_leaf, _leaf_example
    from hssm_torch.samplers.compiled import (
        compile_checked,
        eager_value_and_grad,
        fused_value_and_grad,
    )

    u, g = eager_value_and_grad(pot)(x)
    k = _Checkpoints(10, x.device).k
    example = (x + 0.0, *_leaf_example(x, u, g, k))
    fn, secs, ok = compile_checked(
        _fused_leaf(fused_value_and_grad(pot)),
        example,
        what="potential and NUTS leaf",
        reference=_fused_leaf(eager_value_and_grad(pot)),
    )
    return fn, example, secs, ok


def batched_costs(model, chains: int, reps: int = 200, compile: bool = False) -> dict[str, float]:
    """Seconds per batched potential-and-gradient call over ``chains`` chains (compiled
    with ``compile``: value and gradient as one graph, compiled again here outside the
    timed run; then also one compiled leaf -- value, gradient and NUTS leaf update -- with
    Dynamo's guards evaluated and skipped, as the sampler calls it), and of the likelihood
    alone (forward + backward, eager) on the same ``(chains, N, P)`` batch. Each figure is
    the fastest of 5 batches of calls."""
    from hssm_torch.samplers import BatchedPotential
    from hssm_torch.samplers.compiled import value_and_grad_fn

    pot = BatchedPotential(model.builder)
    x = pot.initial_point().expand(chains, -1).clone()
    vg, _ = value_and_grad_fn(pot, x, compile=compile)
    out = {"batched_grad_s": _per_call(vg, (x,), reps)}
    if compile:
        leaf, example, _, ok = compiled_leaf(pot, x)
        if ok:
            out["leaf_call_guarded_s"] = _per_call(leaf, example, reps)
            with torch.compiler.set_stance("default", skip_guard_eval_unsafe=True):
                out["leaf_call_s"] = _per_call(leaf, example, reps)
    b = model.builder
    vals = {k: v.detach() for k, v in pot.constrain(x).items()}
    theta = b.theta(vals).detach().requires_grad_(True)
    rt, resp = b.obs[:, 0], b.obs[:, 1]

    def lik():
        model._loglik(rt, resp, theta).sum().backward()

    out["batched_likelihood_grad_s"] = _per_call(lik, (), max(reps // 4, 5))
    return out


def run_ours(case: str, df: pd.DataFrame, meta: dict, args, sampler: str = "nuts") -> dict:
    from hssm_torch.model import HSSM

    t0 = time.perf_counter()
    kw = {}
    if meta.get("formula"):
        kw["include"] = [{"name": "v", "formula": meta["formula"]}]
    if meta.get("onnx"):
        kw.update(loglik_kind="approx_differentiable", loglik=meta["onnx"])
    model = HSSM(df, meta["model"], **kw)
    build = time.perf_counter() - t0
    c0 = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if sampler.startswith("nuts_batched"):
            # called directly (not through model.sample) to keep its extra timing keys
            from hssm_torch.inference import build_idata
            from hssm_torch.samplers import run_batched_nuts

            samples, stats, timing = run_batched_nuts(
                model.builder,
                chains=args.chains,
                draws=args.draws,
                tune=args.tune,
                seed=args.seed,
                progress=False,
                compile=sampler == "nuts_batched_compiled",
            )
            idata, _ = build_idata(model, samples, stats)
            idata.attrs.update(timing)
        else:
            idata = model.sample(
                chains=args.chains,
                draws=args.draws,
                tune=args.tune,
                seed=args.seed,
                progress=False,
            )
    sampling_cpu = time.process_time() - c0  # includes building the InferenceData
    load_after = os.getloadavg()
    sampling = float(idata.attrs["sampling_time"])
    compile_s = float(idata.attrs.get("compile_time", 0.0))  # not in sampling_time
    n_lf = int(idata.attrs["n_leapfrog_total"])
    post = {k: idata.posterior[k].values for k in model.var_names}
    ess = min_bulk_ess(post)
    n_steps = idata.sample_stats["n_steps"].values
    common = {
        "sampler": sampler,
        "load_average_after": load_after,
        "leapfrog_per_iteration_draws": float(n_steps.mean()),
        "step_size": [float(v) for v in idata.sample_stats["step_size"].values[:, -1]],
        "acceptance_rate": float(idata.sample_stats["acceptance_rate"].mean()),
        "build_s": build,
        "compile_s": compile_s,
        "compiled": bool(idata.attrs.get("compiled", 0.0)),
        "sampling_s": sampling,
        "total_s": build + compile_s + sampling,
        "seed": args.seed,
        "min_bulk_ess": ess,
        "ess_per_draw": ess / (args.chains * args.draws),
        "ess_per_s": ess / sampling,
        "ess_per_s_incl_compile": ess / (compile_s + sampling),
        "ess_per_s_total": ess / (build + compile_s + sampling),
        "sampling_cpu_s": sampling_cpu,
        "ess_per_cpu_s": ess / sampling_cpu,
        "divergences": int(idata.sample_stats["diverging"].sum()),
        "max_rhat": float(az.rhat(idata, var_names=model.var_names).to_array().max()),
        "n_leapfrog_total": n_lf,
    }
    if sampler.startswith("nuts_batched"):
        costs = batched_costs(model, args.chains, compile=sampler == "nuts_batched_compiled")
        n_calls = int(idata.attrs.get("n_potential_calls", 0)) or n_lf
        # compiled: a trajectory leaf is one call of the compiled leaf (value, gradient and
        # leaf update); eager: a potential call plus the eager leaf update
        per_call = costs.get("leaf_call_s", costs["batched_grad_s"])
        in_grad = per_call * n_calls
        init_s = float(idata.attrs.get("init_time", 0.0))  # mode search + Hessian diagonal
        loop_s = sampling - init_s
        return {
            **common,
            "n_potential_calls": n_calls,
            "ms_per_call": 1e3 * loop_s / max(n_calls, 1),
            "ms_per_iteration": 1e3 * loop_s / (args.tune + args.draws),
            **costs,
            "time_in_potential_s": in_grad,
            "time_in_likelihood_s": costs["batched_likelihood_grad_s"] * n_calls,
            "init_s": init_s,
            "sampler_overhead_per_call_ms": 1e3
            * max(sampling - init_s - in_grad, 0.0)
            / max(n_calls, 1),
            "potential_overhead_per_call_ms": 1e3
            * (costs["batched_grad_s"] - costs["batched_likelihood_grad_s"]),
        }
    costs = gradient_costs(model)
    grad_total = costs["grad_s"] * n_lf
    return {
        **common,
        **costs,
        "time_in_gradients_s": grad_total,
        "time_in_likelihood_s": costs["likelihood_grad_s"] * n_lf,
        "pyro_overhead_per_step_ms": 1e3 * max(sampling - grad_total, 0.0) / max(n_lf, 1),
        "grad_overhead_per_step_ms": 1e3 * (costs["grad_s"] - costs["likelihood_grad_s"]),
    }


def compile_times(case: str, df: pd.DataFrame, meta: dict, chains: int) -> dict:
    """Seconds to compile (and check) the trajectory leaf -- potential, gradient and NUTS
    leaf update in one graph -- as ``nuts_sample(compile=True)`` does before sampling,
    without sampling."""
    from hssm_torch.model import HSSM
    from hssm_torch.samplers import BatchedPotential

    kw = {}
    if meta.get("formula"):
        kw["include"] = [{"name": "v", "formula": meta["formula"]}]
    if meta.get("onnx"):
        kw.update(loglik_kind="approx_differentiable", loglik=meta["onnx"])
    pot = BatchedPotential(HSSM(df, meta["model"], **kw).builder)
    x = pot.initial_point().expand(chains, -1).clone()
    t0 = time.perf_counter()
    _, _, leaf_s, ok = compiled_leaf(pot, x)
    return {
        "leaf_s": leaf_s,
        "total_s": time.perf_counter() - t0,
        "compiled": ok,
        "load_average_after": os.getloadavg(),
    }


def run_peer(case: str, df: pd.DataFrame, meta: dict, args) -> dict | None:
    peer = os.environ.get("PEER_PYTHON")
    if not peer:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "data.csv"
        df.to_csv(csv, index=False)
        out = Path(tmp) / "post.npz"
        cfg = {
            "csv": str(csv),
            "out": str(out),
            "model": meta["model"],
            "formula": meta.get("formula"),
            "onnx": meta.get("onnx"),
            "sampler": "pymc" if case == "i" else "numpyro",
            "chains": args.chains,
            "draws": args.draws,
            "tune": args.tune,
            "keep": COMMON,
            "seed": args.seed,
        }
        env = dict(os.environ, JAX_PLATFORMS="cpu", OMP_NUM_THREADS="1")
        proc = subprocess.run(
            [peer, "-W", "ignore", "-c", PEER_SCRIPT, json.dumps(cfg)],
            capture_output=True,
            text=True,
            env=env,
            timeout=3600,
        )
        if proc.returncode != 0:
            return {"error": proc.stderr[-2000:]}
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        with np.load(out) as npz:
            post = {k: npz[k] for k in npz.files}
    res["min_bulk_ess"] = min_bulk_ess(post)
    res["ess_per_draw"] = res["min_bulk_ess"] / (args.chains * args.draws)
    res["ess_per_s"] = res["min_bulk_ess"] / res["sample_s"]
    res["ess_per_cpu_s"] = res["min_bulk_ess"] / res["sample_cpu_s"]
    res["total_s"] = res["build_s"] + res["sample_s"]
    res["ess_per_s_total"] = res["min_bulk_ess"] / res["total_s"]
    res["sampler"] = cfg["sampler"]
    return res


def run_case(case: str, args, samplers: list[str]) -> dict:
    """One case at ``args.seed``: ours (each sampler) then HSSM, with the ratios."""
    df, meta = make_case(case)
    entry = {"n_trials": len(df), **meta, "load_average_before": os.getloadavg()}
    for sampler in samplers:
        key = SAMPLER_KEYS[sampler]
        ours = run_ours(case, df, meta, args, sampler)
        entry[key] = ours
        if sampler == "nuts":
            detail = (
                f"grad {1e3 * ours['grad_s']:.2f} ms "
                f"(likelihood {1e3 * ours['likelihood_grad_s']:.2f} ms), Pyro overhead "
                f"{ours['pyro_overhead_per_step_ms']:.2f} ms/step"
            )
        else:
            detail = (
                f"batched grad ({args.chains} chains) {1e3 * ours['batched_grad_s']:.2f} ms "
                f"(likelihood {1e3 * ours['batched_likelihood_grad_s']:.2f} ms), "
                f"{ours['n_potential_calls']} calls, sampler overhead "
                f"{ours['sampler_overhead_per_call_ms']:.2f} ms/call"
            )
            if ours["compile_s"] or sampler == "nuts_batched_compiled":
                detail += (
                    f"; compiled {ours['compiled']} in {ours['compile_s']:.1f} s "
                    f"(not in sampling; {ours['ess_per_s_incl_compile']:.2f} ESS/s with it)"
                )
        print(
            f"({case}) hssm-torch {sampler}: sampling {ours['sampling_s']:.1f} s, "
            f"total {ours['total_s']:.1f} s, min ESS {ours['min_bulk_ess']:.0f}, "
            f"{ours['ess_per_s']:.2f} ESS/s, max r_hat {ours['max_rhat']:.3f}; {detail}; "
            f"{ours['n_leapfrog_total']} leapfrog steps (all chains), "
            f"{ours['leapfrog_per_iteration_draws']:.1f} per iteration; "
            f"load {ours['load_average_after'][0]:.1f}"
        )
    peer = run_peer(case, df, meta, args)
    entry["hssm"] = peer
    if peer and "error" not in peer:
        peer["load_average_after"] = os.getloadavg()
        for key in SAMPLER_KEYS.values():
            if key not in entry:
                continue
            ours = entry[key]
            suffix = key[len("hssm_torch") :]
            entry[f"ratio_ess_per_s{suffix}"] = ours["ess_per_s"] / peer["ess_per_s"]
            entry[f"ratio_ess_per_cpu_s{suffix}"] = ours["ess_per_cpu_s"] / peer["ess_per_cpu_s"]
            entry[f"ratio_ess_per_s_total{suffix}"] = (
                ours["ess_per_s_total"] / peer["ess_per_s_total"]
            )
            # HSSM's sample() includes its own (PyTensor/JAX) compilation
            entry[f"ratio_ess_per_s_incl_compile{suffix}"] = (
                ours["ess_per_s_incl_compile"] / peer["ess_per_s"]
            )
            print(
                f"({case}) HSSM ({peer['sampler']}): sample() {peer['sample_s']:.1f} s, "
                f"min ESS {peer['min_bulk_ess']:.0f}, {peer['ess_per_s']:.2f} ESS/s -> "
                f"{key} ratio {entry[f'ratio_ess_per_s{suffix}']:.2f} "
                f"(incl. compile vs sample(): "
                f"{entry[f'ratio_ess_per_s_incl_compile{suffix}']:.2f}; "
                f"total incl. build: {entry[f'ratio_ess_per_s_total{suffix}']:.2f}; "
                f"per CPU second: {entry[f'ratio_ess_per_cpu_s{suffix}']:.2f}); "
                f"load {peer['load_average_after'][0]:.1f}"
            )
    elif peer:
        print(f"({case}) HSSM failed: {peer['error'][-500:]}")
    return entry


def seed_summary(runs: list[dict]) -> dict:
    """Means over seeds of min bulk ESS, ESS per draw, sampling seconds (HSSM: its
    ``sample()`` call) and ESS/s for each sampler present, and the ratio of the mean ESS/s
    (ours / HSSM)."""
    out: dict = {}
    for name in [*SAMPLER_KEYS.values(), "hssm"]:
        got = [r[name] for r in runs if isinstance(r.get(name), dict) and "error" not in r[name]]
        if not got:
            continue
        fields = {
            "min_bulk_ess": "min_bulk_ess",
            "ess_per_draw": "ess_per_draw",
            "sampling_s": "sample_s" if name == "hssm" else "sampling_s",
            "ess_per_s": "ess_per_s",
        }
        out[name] = {f"mean_{k}": float(np.mean([g[v] for g in got])) for k, v in fields.items()}
        out[name]["n_runs"] = len(got)
    for name in SAMPLER_KEYS.values():
        if name in out and "hssm" in out:
            suffix = name[len("hssm_torch") :]
            out[f"ratio_mean_ess_per_s{suffix}"] = (
                out[name]["mean_ess_per_s"] / out["hssm"]["mean_ess_per_s"]
            )
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default="i,ii,iii")
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1, help="sampler seed (ours and HSSM)")
    parser.add_argument(
        "--seeds",
        default="",
        help="comma-separated sampler seeds: each case runs once per seed (same data), "
        "with means over seeds and the ratio of mean ESS/s in 'summary'",
    )
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument(
        "--sampler",
        default="nuts",
        help="ours, comma-separated: nuts (Pyro NUTS), nuts_batched, nuts_batched_compiled "
        "(torch.compile), both (= nuts,nuts_batched), all (the three)",
    )
    parser.add_argument(
        "--compile-only",
        action="store_true",
        help="only time the compile of each case (no sampling, no HSSM); run it with "
        "TORCHINDUCTOR_CACHE_DIR set to an empty folder for cold figures",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "fit.json")
    args = parser.parse_args(argv)
    aliases = {"both": "nuts,nuts_batched", "all": ",".join(SAMPLER_KEYS)}
    samplers = aliases.get(args.sampler, args.sampler).split(",")
    unknown = [s for s in samplers if s not in SAMPLER_KEYS]
    if unknown:
        parser.error(f"--sampler: unknown {unknown}; expected {sorted(SAMPLER_KEYS)}, both, all")
    torch.set_num_threads(1)
    results = {
        "settings": vars(args) | {"out": str(args.out)},
        "load_average": os.getloadavg(),
        "inductor_cache": inductor_cache_state(),
        "cases": {},
    }
    if args.compile_only:
        for case in args.cases.split(","):
            if case == "iii" and not ANGLE_LAN.is_file():
                print(f"case iii skipped: {ANGLE_LAN} not found")
                continue
            df, meta = make_case(case)
            entry = compile_times(case, df, meta, args.chains)
            results["cases"][case] = {"n_trials": len(df), **meta, "compile": entry}
            print(
                f"({case}) compile of the leaf (potential, gradient, leaf update): "
                f"{entry['leaf_s']:.1f} s, compiled {entry['compiled']}"
            )
        write_json(results, args.out)
        return 0
    if not os.environ.get("PEER_PYTHON"):
        print("PEER_PYTHON not set: HSSM comparison skipped")
    seeds = [int(v) for v in args.seeds.split(",")] if args.seeds else [args.seed]
    for case in args.cases.split(","):
        if case == "iii" and not ANGLE_LAN.is_file():
            print(f"case iii skipped: {ANGLE_LAN} not found")
            continue
        runs = []
        for seed in seeds:
            args.seed = seed
            runs.append(run_case(case, args, samplers))
        if len(runs) == 1:
            results["cases"][case] = runs[0]
        else:
            results["cases"][case] = {"runs": runs, "summary": seed_summary(runs)}
            print(f"({case}) over seeds {seeds}: {json.dumps(seed_summary(runs))}")
    write_json(results, args.out)
    return 0


def write_json(results: dict, out: Path) -> None:
    """Write ``results`` to ``out`` through a temporary file in the same folder."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(results, fh, indent=2, default=float)
    os.replace(tmp, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    raise SystemExit(main())
