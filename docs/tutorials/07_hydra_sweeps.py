# %% [markdown]
# # Tutorial 7: sweeping with Hydra
#
# The three apps are Hydra apps: `python -m simulators.generate` (training data),
# `python -m training.train` (networks) and `python -m hssm_torch.fit` (fits). Any config
# key can be overridden on the command line; `-m` (multirun) runs one job per combination
# of comma-separated values, each in its own run folder with its resolved config.
#
# This tutorial calls the apps as a shell would (via `subprocess`), prints the commands,
# and shows the run folders they write. Sampler settings are tiny (the point is the sweep,
# not the posterior): expect convergence warnings.
#
# `python docs/tutorials/07_hydra_sweeps.py [--out DIR] [--docs-images]`; about 2-3
# minutes on a 2-core CPU (each job starts a fresh Python process).

# %%
import shutil
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import pandas as pd
from tutorial_io import ROOT, parse_args

from hssm_torch.demo import simulate_hierarchical

io = parse_args("hydra", "Tutorial 7: sweeping with Hydra")
t_start = time.perf_counter()


def run(args: list[str]) -> str:
    """Run a command from the repository root, echo it, fail loudly, return its output."""
    print("$", " ".join(["python", *args[1:]]))
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
        raise SystemExit(f"command failed with exit code {proc.returncode}")
    return proc.stdout + proc.stderr


def tree(folder: Path, depth: int = 2, prefix: str = "") -> None:
    for p in sorted(folder.iterdir()):
        print(f"{prefix}{p.name}{'/' if p.is_dir() else ''}")
        if p.is_dir() and depth > 1:
            tree(p, depth - 1, prefix + "    ")


# %% [markdown]
# ## Data
#
# 6 participants x 40 trials with `v = 0.5 + 0.8 x + u_p` (the demo's simulator), as a CSV.

# %%
csv = io.path("trials.csv")
simulate_hierarchical(6, 40, seed=0).to_csv(csv, index=False)
print(f"wrote {csv}")

# %% [markdown]
# ## A two-point sweep over models
#
# `model=ddm,ddm_regression` fits the plain DDM and the regression
# `v ~ 1 + x + (1|participant_id)` (configs in `configs/fit/model/`) to the same file.
# Sweeps over sampler settings work the same way (`sampler.target_accept=0.8,0.9`), and a
# launcher plugin fans jobs out to processes or a SLURM cluster
# (`hydra/launcher=joblib`, `hydra/launcher=submitit_slurm`).

# %%
sweep_dir = io.path("multirun")
if sweep_dir.exists():
    shutil.rmtree(sweep_dir)
t0 = time.perf_counter()
log = run(
    [
        sys.executable,
        "-m",
        "hssm_torch.fit",
        "-m",
        f"data.path={csv}",
        "model=ddm,ddm_regression",
        "sampler.chains=2",
        "sampler.tune=150",
        "sampler.draws=150",
        "progress=false",
        f"hydra.sweep.dir={sweep_dir}",
    ]
)
print(f"sweep took {time.perf_counter() - t0:.0f} s")
print("\n".join(line for line in log.splitlines() if "Launching" in line or "#" in line))
tree(sweep_dir)

# %% [markdown]
# Each job folder holds `summary.csv`, `trace.png`, `forest.png`, the saved model
# (`model/`, reload with `hssm_torch.HSSM.load`) and `.hydra/` (the resolved config and the
# overrides of that job). Collect the summaries:

# %%
rows = []
for job in sorted(p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()):
    overrides = (job / ".hydra" / "overrides.yaml").read_text().split("\n")
    model_name = next(o.split("=")[1] for o in overrides if "model=" in o and "data" not in o)
    summary = pd.read_csv(job / "summary.csv", index_col=0)
    for var, r in summary.iterrows():
        rows.append(
            {
                "job": job.name,
                "model": model_name,
                "variable": var,
                "mean": r["mean"],
                "sd": r["sd"],
                "r_hat": r["r_hat"],
            }
        )
collected = pd.DataFrame(rows)
print(collected.round(3).to_string(index=False))
collected.to_csv(io.path("sweep_summaries.csv"), index=False)

fig, axes = plt.subplots(1, 2, figsize=(12, 5))
for ax, job in zip(axes, ("0", "1")):
    ax.imshow(mpimg.imread(sweep_dir / job / "forest.png"))
    ax.set_title(f"job {job}: " + collected[collected.job == job].model.iloc[0], fontsize=9)
    ax.axis("off")
io.figure(fig, "sweep_forest.png")

# %% [markdown]
# ## Training data with overrides
#
# The generator takes the same kind of overrides; here a tiny DDM dataset (the contract keys
# `model`, `n_parameter_sets`, `n_simulations`, `n_training_rows`, `n_shards`, `seed`,
# `output_dir`, `device`), then the dataset check.

# %%
data_dir = io.path("ddm_data")
if data_dir.exists():
    shutil.rmtree(data_dir)
run(
    [
        sys.executable,
        "-m",
        "simulators.generate",
        "model=ddm",
        "n_parameter_sets=20",
        "n_simulations=2000",
        "n_training_rows=100",
        "n_shards=2",
        f"output_dir={data_dir}",
        "progress=false",
        f"hydra.run.dir={io.path('generate_run')}",
    ]
)
print(run([sys.executable, "-m", "simulators.training_data", "validate", str(data_dir)]).strip())
tree(data_dir, depth=1)
print(f"tutorial wall time: {time.perf_counter() - t_start:.0f} s")
