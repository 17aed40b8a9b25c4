# %% [markdown]
# # Tutorial 1: quickstart
#
# Simulate drift diffusion model (DDM) data at known parameters, fit it with Pyro NUTS,
# check convergence, look at the posterior predictive, check that the true values are
# recovered, and save / reload the fit.
#
# Run it as a script (`python docs/tutorials/01_quickstart.py [--out DIR] [--docs-images]`)
# or cell by cell (the `# %%` markers are understood by VS Code, Spyder and jupytext).
# About 1-3 minutes on a 2-core CPU.

# %%
import time

import arviz as az
import pandas as pd
from tutorial_io import parse_args

import hssm_torch as hsm
from hssm_torch.plotting.recovery import recovery_table
from simulators import simulate_data

io = parse_args("quickstart", "Tutorial 1: quickstart")
t_start = time.perf_counter()

# %% [markdown]
# ## Simulate data
#
# `a` is *half* the boundary separation (HSSM / ssm-simulators convention), `z` the relative
# start point, `t` the non-decision time (seconds). Responses are -1 (lower boundary) and 1
# (upper boundary).

# %%
truth = {"v": 0.6, "a": 1.0, "z": 0.5, "t": 0.3}
df = simulate_data("ddm", truth, 400, seed=1)
print(df.head())
print(
    f"{len(df)} trials, P(response = 1) = {(df.response == 1).mean():.3f}, "
    f"mean rt = {df.rt.mean():.3f} s"
)
df.to_csv(io.path("data.csv"), index=False)

# %% [markdown]
# What the model does with these parameters: boundaries, start point, a few sample paths
# and the predicted RT distributions of both responses.

# %%
io.figure(hsm.plot_model_cartoon("ddm", truth, n_paths=10, seed=0), "model_cartoon.png")

# %% [markdown]
# ## Fit
#
# `HSSM(data, model="ddm")` uses the analytical DDM likelihood and bounded default priors.
# Chains run one after the other; 2 chains x (400 tune + 400 draws) keep this tutorial short
# (use the defaults, 4 x (1000 + 1000), for real work).

# %%
model = hsm.HSSM(df, model="ddm")
print(model)
t0 = time.perf_counter()
idata = model.sample(chains=2, draws=400, tune=400, seed=1, progress=False)
print(f"sampling took {time.perf_counter() - t0:.0f} s")

# %%
summary = model.summary()
with pd.option_context("display.width", 160, "display.max_columns", 20):
    print(summary)
print("divergences:", int(idata.sample_stats["diverging"].sum()))
summary.to_csv(io.path("summary.csv"))

# %% [markdown]
# Trace plot (left: posterior density per chain; right: draws in order) and a forest plot.

# %%
io.figure(az.plot_trace(idata, var_names=model.var_names, compact=True), "trace.png")
io.figure(
    az.plot_forest(idata, var_names=model.var_names, combined=True, hdi_prob=0.95), "forest.png"
)

# %% [markdown]
# ## Posterior predictive checks
#
# One simulated data set per posterior draw (100 draws), stored in
# `idata.posterior_predictive`. The predictive density of the signed RT (rt x response)
# against the data, and the quantile-probability plot (RT quantiles .1 .3 .5 .7 .9 of each
# response against that response's proportion).

# %%
model.sample_posterior_predictive(idata, draws=100, seed=2, progress=False)
io.figure(hsm.plot_predictive(model, idata), "predictive.png")
io.figure(hsm.plot_quantile_probability(model, idata), "quantile_probability.png")

# %% [markdown]
# ## Recovery
#
# The data were simulated, so we can check the posterior against the truth: posterior mean
# and central 94% interval per parameter.

# %%
table, mass = recovery_table(idata, truth, ci=0.94)
print(table.to_string(index=False))
table.to_csv(io.path("recovery.csv"), index=False)
print(
    f"{int(table.covered.sum())} of {len(table)} true values inside the central "
    f"{mass:.0%} intervals"
)
io.figure(hsm.plot_posterior_recovery(idata, truth), "posterior_recovery.png")

# %% [markdown]
# ## Save and load
#
# `save` writes a folder: `spec.json` (every argument, priors as JSON), `data.csv` and the
# traces as netcdf (no pickles). `HSSM.load` rebuilds the model and restores the traces.

# %%
folder = model.save(io.path("model"))
print("saved to", folder, sorted(p.name for p in folder.iterdir()))
same = hsm.HSSM.load(folder)
reloaded = same.summary()
assert (reloaded["mean"] - summary["mean"]).abs().max() < 1e-9
print("reloaded: same posterior means; model:", same.model_name, "n_obs:", same.n_obs)
print(f"tutorial wall time: {time.perf_counter() - t_start:.0f} s")
