# %% [markdown]
# # Tutorial 4: missing RTs and response deadlines
#
# Real experiments lose trials: a response deadline cuts off slow responses, and some RTs
# are not recorded. Dropping those trials biases the fit whenever the loss depends on the RT
# or on the response. `HSSM(..., missing_data=True, deadline=True)` uses the censored-data
# likelihood instead (see docs/workflow.md):
#
# | trial | contributes |
# |---|---|
# | RT observed before the deadline | log f(rt, response given theta) |
# | RT missing (sentinel -999), no deadline | log P(response given theta) |
# | omitted: no response before the deadline | log P(rt > deadline given theta) |
#
# For the DDM all three pieces are analytical (the Navarro-Fuss density, the closed-form
# choice probability and the first-passage survival function); other models use CPN/OPN
# networks.
#
# `python docs/tutorials/04_missing_data_deadlines.py [--out DIR] [--docs-images]`; about
# 2-4 minutes on a 2-core CPU.

# %%
import time

import numpy as np
import pandas as pd
from tutorial_io import parse_args

import hssm_torch as hsm
from hssm_torch.plotting.recovery import recovery_table
from simulators import simulate_data

io = parse_args("missing_data", "Tutorial 4: missing data and deadlines")
t_start = time.perf_counter()
truth = {"v": 0.6, "a": 1.0, "z": 0.5, "t": 0.3}

# %% [markdown]
# ## Part 1: a response deadline
#
# 600 trials with a 1.0 s deadline. In the recorded data a trial without a response before
# the deadline has `rt = -999` (its response is meaningless); the `deadline` column holds
# each trial's deadline.

# %%
full = simulate_data("ddm", truth, 600, seed=11)
data = full.assign(deadline=1.0)
late = data.rt >= data.deadline
data.loc[late, "rt"] = -999.0
print(f"{int(late.sum())} of {len(data)} trials omitted by the 1.0 s deadline")
data.to_csv(io.path("deadline_data.csv"), index=False)

# %% [markdown]
# Two fits of the same DDM: deadline-aware (every trial used), and the common shortcut of
# dropping the omitted trials (the fit then sees only fast trials).

# %%
fits = {}
censored = hsm.HSSM(data, model="ddm", missing_data=True, deadline=True)
dropped = hsm.HSSM(data[~late].drop(columns="deadline").reset_index(drop=True), model="ddm")
for name, m in (("deadline-aware", censored), ("omitted dropped", dropped)):
    t0 = time.perf_counter()
    fits[name] = m.sample(chains=2, draws=300, tune=300, seed=4, progress=False)
    print(f"{name}: {m.n_obs} trials, sampling {time.perf_counter() - t0:.0f} s")
    print(m.summary().round(3))

# %% [markdown]
# Recovery: posterior mean and central 94% interval against the truth.

# %%
tables = []
for name, idata in fits.items():
    table, _ = recovery_table(idata, truth, ci=0.94)
    tables.append(table.assign(fit=name, data="deadline 1.0 s"))
rec = pd.concat(tables, ignore_index=True)
print(rec[["fit", "name", "true", "estimate", "lower", "upper", "covered"]].to_string(index=False))

# %% [markdown]
# The deadline-aware fit covers the truth; dropping the late trials makes the remaining
# trials look like fast, decisive responses: a much larger drift and a smaller boundary.

# %%
import matplotlib.pyplot as plt  # noqa: E402

fig, axes = plt.subplots(1, 2, figsize=(9, 4), sharex=True, sharey=True)
for ax, (name, idata) in zip(axes, fits.items()):
    hsm.plot_posterior_recovery(idata, truth, ax=ax)
    ax.set_title(f"{name}\n" + ax.get_title(), fontsize=9)
io.figure(fig, "recovery_deadline.png")

# %% [markdown]
# Posterior predictive of the deadline-aware fit: simulated trials past their deadline
# become omissions, exactly as in the data, so the predicted densities of the responses
# before the deadline are comparable with the observed ones.

# %%
censored.sample_posterior_predictive(fits["deadline-aware"], draws=100, seed=5, progress=False)
pp = fits["deadline-aware"].posterior_predictive["rt,response"].values
print(f"omitted: observed {late.mean():.3f}, predicted {(pp[..., 0] == -999.0).mean():.3f}")
io.figure(hsm.plot_predictive(censored, fits["deadline-aware"]), "predictive_deadline.png")

# %% [markdown]
# ## Part 2: missing RTs that depend on the response
#
# Now no deadline, but 70% of the error (lower-boundary) RTs were lost (`rt = -999`, the
# response is known). `missing_data=True` makes each such trial contribute
# log P(response given theta). To keep the tutorial short this part compares maximum a
# posteriori (MAP) estimates (`find_map`) instead of full posteriors.

# %%
data2 = simulate_data("ddm", truth, 600, seed=12)
rng = np.random.default_rng(0)
lost = (data2.response == -1) & (rng.uniform(size=len(data2)) < 0.7)
data2.loc[lost, "rt"] = -999.0
print(f"{int(lost.sum())} RTs missing (all of them errors)")
maps = {
    "missing-aware": hsm.HSSM(data2, model="ddm", missing_data=True).find_map(
        steps=600, lr=0.03, seed=0
    ),
    "missing dropped": hsm.HSSM(data2[~lost].reset_index(drop=True), model="ddm").find_map(
        steps=600, lr=0.03, seed=0
    ),
}
map_table = pd.DataFrame({k: {p: float(v[p]) for p in truth} for k, v in maps.items()})
map_table.insert(0, "true", pd.Series(truth))
print(map_table.round(3))
map_table.to_csv(io.path("missing_rt_map.csv"))

# %% [markdown]
# Dropping the lost error trials makes errors look rare, so the drift is overestimated;
# the missing-aware MAP stays near the truth.

# %%
rec.to_csv(io.path("recovery.csv"), index=False)
print(f"tutorial wall time: {time.perf_counter() - t_start:.0f} s")
