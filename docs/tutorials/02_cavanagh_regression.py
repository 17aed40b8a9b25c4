# %% [markdown]
# # Tutorial 2: hierarchical regression on the Cavanagh et al. (2011) data
#
# Does trial-wise midfrontal theta power change the drift rate? We fit
# `v ~ 1 + theta + (1|participant_id)`: a population intercept, a slope on the z-scored
# theta power of each trial, and one intercept offset per participant (non-centred, with a
# fitted group standard deviation). `a`, `z` and `t` are shared by all participants.
#
# Data: `cavanagh_theta.csv` (3,988 trials, 14 participants; as distributed with HSSM), read
# from `$HSSMT_REFERENCE_DIR/datasets/` or `../shared/reference/datasets/` next to the repository.
# When neither exists the tutorial simulates a stand-in of the same shape and says so.
#
# `python docs/tutorials/02_cavanagh_regression.py [--out DIR] [--docs-images]`; about 2-4
# minutes on a 2-core CPU.

# %%
import os
import time
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import torch
from tutorial_io import ROOT, parse_args

import hssm_torch as hsm
from simulators import simulate

io = parse_args("cavanagh", "Tutorial 2: hierarchical regression on the Cavanagh data")
t_start = time.perf_counter()

# %% [markdown]
# ## Data
#
# To keep the tutorial within a few minutes on a laptop CPU we fit a subset: all 14
# participants, 50 trials each drawn at random (seeded). Drop the subsetting for the full
# analysis (same code; expect ~5x the sampling time).

# %%
N_PER_PARTICIPANT = 50


def find_cavanagh() -> Path | None:
    candidates = []
    if os.environ.get("HSSMT_REFERENCE_DIR"):
        candidates.append(Path(os.environ["HSSMT_REFERENCE_DIR"]) / "datasets")
    candidates.append(ROOT.parent / "shared" / "reference" / "datasets")
    for folder in candidates:
        if (folder / "cavanagh_theta.csv").is_file():
            return folder / "cavanagh_theta.csv"
    return None


def simulated_stand_in(seed: int = 0) -> pd.DataFrame:
    """14 participants x 285 trials, v = 0.35 + 0.1 theta + u_p (u_p ~ N(0, 0.3))."""
    rng = np.random.default_rng(seed)
    pid = np.repeat(np.arange(14), 285)
    theta = rng.normal(0.0, 1.0, pid.size)
    v = 0.35 + 0.1 * theta + rng.normal(0.0, 0.3, 14)[pid]
    par = torch.tensor(
        np.column_stack([v, np.full_like(v, 0.7), np.full_like(v, 0.5), np.full_like(v, 0.3)])
    )
    res = simulate("ddm", par, 1, seed=seed, dtype=torch.float64)
    return pd.DataFrame(
        {
            "participant_id": pid,
            "rt": res.rt[:, 0].numpy(),
            "response": res.response[:, 0].numpy().astype(float),
            "theta": theta,
        }
    )


path = find_cavanagh()
if path is not None:
    full = pd.read_csv(path)
    source = f"Cavanagh et al. (2011) data from {path}"
else:
    full = simulated_stand_in()
    source = (
        "SIMULATED stand-in (cavanagh_theta.csv not found): v = 0.35 + 0.1 theta + u_p, "
        "a = 0.7, z = 0.5, t = 0.3"
    )
print("data:", source)
print(f"full data: {len(full)} trials, {full.participant_id.nunique()} participants")
df = full.groupby("participant_id").sample(n=N_PER_PARTICIPANT, random_state=1)
df = df.sort_values(["participant_id"], kind="stable").reset_index(drop=True)
df = df[["participant_id", "rt", "response", "theta"]]
print(f"fitted subset: {len(df)} trials ({N_PER_PARTICIPANT} per participant, seeded)")
per_participant = df.assign(upper=df.response == 1).groupby("participant_id")
with pd.option_context("display.width", 160, "display.max_columns", 20):
    print(
        per_participant.agg(
            n=("rt", "size"), p_upper=("upper", "mean"), median_rt=("rt", "median")
        ).T.round(2)
    )

# %% [markdown]
# ## Model and fit

# %%
model = hsm.HSSM(
    data=df,
    model="ddm",
    include=[{"name": "v", "formula": "v ~ 1 + theta + (1|participant_id)"}],
)
print(model)
t0 = time.perf_counter()
idata = model.sample(chains=2, draws=400, tune=400, seed=2, progress=False)
print(f"sampling took {time.perf_counter() - t0:.0f} s (2 chains x (400 tune + 400 draws))")

# %% [markdown]
# ## Convergence diagnostics
#
# r_hat close to 1 (`HSSM` warns when any r_hat > 1.01), bulk/tail effective sample sizes,
# and divergent transitions. With only 2 x 400 draws expect ESS in the low hundreds for the
# population intercept and r_hat up to about 1.02 (a `ConvergenceWarning`): enough to read
# the picture, not for a publication. Use 4 chains x 1000+ draws for that.

# %%
summary = model.summary()
with pd.option_context("display.width", 160, "display.max_columns", 20, "display.max_rows", 60):
    print(summary)
summary.to_csv(io.path("summary.csv"))
n_div = int(idata.sample_stats["diverging"].sum())
diag = {
    "max_r_hat": float(summary["r_hat"].max()),
    "min_ess_bulk": float(summary["ess_bulk"].min()),
    "min_ess_tail": float(summary["ess_tail"].min()),
    "divergences": n_div,
    "n_trials": len(df),
    "source": source,
}
print("diagnostics:", diag)
io.json(diag, "diagnostics.json")

# %% [markdown]
# Is the theta slope credibly different from zero?

# %%
slope = idata.posterior["v_theta"].values.ravel()
lo, hi = np.quantile(slope, [0.03, 0.97])
print(
    f"v_theta: mean {slope.mean():.3f}, 94% interval [{lo:.3f}, {hi:.3f}], "
    f"P(v_theta > 0) = {(slope > 0).mean():.3f}"
)

# %% [markdown]
# ## Plots
#
# Trace plots of the population-level variables, a forest plot of the participant
# intercept offsets, and the posterior predictive check per participant.

# %%
pop = [n for n in model.var_names if "|" not in n or n.endswith("_sigma")]
io.figure(az.plot_trace(idata, var_names=pop, compact=True), "trace.png")
io.figure(
    az.plot_forest(idata, var_names=["v_1|participant_id"], combined=True, hdi_prob=0.94),
    "forest_participants.png",
)

model.sample_posterior_predictive(idata, draws=100, seed=3, progress=False)
df_plot = df.assign(
    theta_bin=pd.cut(
        df.theta, [-np.inf, -0.5, 0.5, np.inf], labels=["low theta", "mid theta", "high theta"]
    )
)
io.figure(hsm.plot_predictive(idata=idata, data=df_plot, col="theta_bin"), "predictive_theta.png")
io.figure(
    hsm.plot_quantile_probability(idata=idata, data=df_plot, cond="theta_bin"),
    "quantile_probability_theta.png",
)
print(f"tutorial wall time: {time.perf_counter() - t_start:.0f} s")
