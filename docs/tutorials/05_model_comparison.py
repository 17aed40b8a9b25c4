# %% [markdown]
# # Tutorial 5: model comparison with LOO and WAIC
#
# Every `HSSM.sample()` stores the pointwise log-likelihood (`idata.log_likelihood`,
# variable `"rt,response"` on `__obs__`), so ArviZ's `az.loo` (PSIS leave-one-out),
# `az.waic` and `az.compare` work directly on the fits.
#
# Data: 300 DDM trials whose drift depends on a trial covariate `x`
# (`v = 0.4 + 0.6 x`). Three candidate models on the same trials:
#
# - `constant`: `v` one number (misses the covariate);
# - `covariate`: `v ~ 1 + x` (the generating model);
# - `extra`: `v ~ 1 + x + noise` with an irrelevant covariate `noise`.
#
# Also: a prior predictive check before fitting (`sample_prior_predictive`), and the same
# comparison on 200 held-out trials (`log_likelihood(idata, data=test_df)`).
#
# `python docs/tutorials/05_model_comparison.py [--out DIR] [--docs-images]`; about 3-5
# minutes on a 2-core CPU.

# %%
import time

import arviz as az
import numpy as np
import pandas as pd
import torch
from tutorial_io import parse_args

import hssm_torch as hsm
from simulators import simulate_data

io = parse_args("model_comparison", "Tutorial 5: model comparison")
t_start = time.perf_counter()


# %%
def simulate_trials(n: int, seed: int) -> pd.DataFrame:
    """n DDM trials with v = 0.4 + 0.6 x (a = 1, z = 0.5, t = 0.3) and a useless covariate."""
    rng = np.random.default_rng(seed)
    x, noise = rng.normal(size=n), rng.normal(size=n)
    theta = {
        "v": torch.tensor(0.4 + 0.6 * x),
        "a": torch.full((n,), 1.0),
        "z": torch.full((n,), 0.5),
        "t": torch.full((n,), 0.3),
    }
    sim = simulate_data("ddm", theta, n, seed=seed, allow_out_of_bounds=True)
    return pd.DataFrame({"rt": sim.rt, "response": sim.response, "x": x, "noise": noise})


df = simulate_trials(300, seed=5)
test_df = simulate_trials(200, seed=6)  # held out: never seen by the fits
print(df.describe().round(3))

# %% [markdown]
# ## A prior predictive check first
#
# Before fitting: what data do the (default) priors of the covariate model imply? One
# simulated data set per prior draw (`sample_prior_predictive`), against the observed data.
# The prior predictive should cover the data without being absurdly wide.

# %%
prior_model = hsm.HSSM(df, model="ddm", include=[{"name": "v", "formula": "v ~ 1 + x"}])
prior = prior_model.sample_prior_predictive(draws=200, seed=1, progress=False)
pp_rt = prior.prior_predictive["rt,response"].values[..., 0]
print(
    f"prior predictive: median rt {np.median(pp_rt[pp_rt > 0]):.2f} s "
    f"(observed {df.rt.median():.2f} s); "
    f"share of simulated rts above 5 s {np.mean(pp_rt > 5):.3f} (observed {np.mean(df.rt > 5):.3f})"
)
io.figure(hsm.plot_predictive(prior_model, prior, group="prior_predictive"), "prior_predictive.png")

# %% [markdown]
# ## Three fits
#
# Same data, same sampler settings (2 chains x (300 tune + 300 draws): enough for LOO on a
# few hundred trials; use more for final results).

# %%
specs = {
    "constant": None,
    "covariate": [{"name": "v", "formula": "v ~ 1 + x"}],
    "extra": [{"name": "v", "formula": "v ~ 1 + x + noise"}],
}
fits, models = {}, {}
for name, include in specs.items():
    model = models[name] = hsm.HSSM(df, model="ddm", include=include)
    t0 = time.perf_counter()
    fits[name] = model.sample(chains=2, draws=300, tune=300, seed=7, progress=False)
    print(f"--- {name}: sampling {time.perf_counter() - t0:.0f} s")
    print(model.summary().round(3))

# %% [markdown]
# ## LOO and WAIC of each model
#
# `elpd_loo` is the expected log predictive density for a new trial, summed over trials
# (higher is better); `p_loo` the effective number of parameters. Pareto k above 0.7 would
# flag trials where the PSIS approximation is unreliable.

# %%
for name, idata in fits.items():
    loo = az.loo(idata, pointwise=True)
    waic = az.waic(idata)
    k = np.asarray(loo.pareto_k)
    print(
        f"{name:>9}: elpd_loo {loo.elpd_loo:9.2f} (se {loo.se:5.2f}), p_loo {loo.p_loo:5.2f}; "
        f"elpd_waic {waic.elpd_waic:9.2f}; max Pareto k {k.max():.2f}"
    )

# %% [markdown]
# ## Compare
#
# `az.compare` ranks the models by elpd_loo; `elpd_diff` and `dse` are the difference to the
# best model and its standard error, `weight` the stacking weights.

# %%
comparison = az.compare(fits, ic="loo")
with pd.option_context("display.width", 160, "display.max_columns", 20):
    print(comparison)
comparison.to_csv(io.path("compare.csv"))
io.figure(az.plot_compare(comparison, insample_dev=False), "compare.png")

# %% [markdown]
# The constant-drift model is far behind (several standard errors of the difference); the
# model with the irrelevant covariate is indistinguishable from the generating one (its
# `elpd_diff` is within about one `dse`), so the simpler `covariate` model is preferred.
#
# Where the models differ, trial by trial: the pointwise elpd difference between the
# covariate and constant models against `x`. Trials with large |x| are where knowing the
# covariate pays.

# %%
import matplotlib.pyplot as plt  # noqa: E402

loo_c = az.loo(fits["covariate"], pointwise=True).loo_i.values
loo_0 = az.loo(fits["constant"], pointwise=True).loo_i.values
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.scatter(df.x, loo_c - loo_0, s=8, alpha=0.6)
ax.axhline(0, color="k", lw=0.5)
ax.set_xlabel("covariate x")
ax.set_ylabel("elpd_loo,i (covariate) - elpd_loo,i (constant)")
ax.set_title("Pointwise LOO difference", fontsize=9)
io.figure(fig, "pointwise_elpd.png")
io.figure(
    az.plot_forest(
        list(fits.values()),
        model_names=list(fits),
        var_names=["a", "z", "t"],
        combined=True,
        hdi_prob=0.94,
    ),
    "forest_models.png",
)

# %% [markdown]
# ## Held-out trials
#
# LOO estimates out-of-sample fit from the training trials. With fresh data we can measure
# it directly: `model.log_likelihood(idata, data=test_df)` scores 200 new trials (new values
# of `x` and `noise`) under every posterior draw. The log pointwise predictive density of
# trial i is log(mean over draws of p(trial i | draw)); summed over the test trials it is the
# held-out elpd (higher is better), and the standard error of a difference between two
# models comes from the trial-wise differences.

# %%
from scipy.special import logsumexp  # noqa: E402

lppd = {}
for name, model in models.items():
    held = model.log_likelihood(fits[name], data=test_df, seed=1)
    ll = held.log_likelihood["rt,response"].values  # (chain, draw, trial)
    ll = ll.reshape(-1, ll.shape[-1])
    lppd[name] = logsumexp(ll, axis=0) - np.log(ll.shape[0])
best = max(lppd, key=lambda k: lppd[k].sum())
held_table = pd.DataFrame(
    {
        "elpd_heldout": {k: v.sum() for k, v in lppd.items()},
        "diff_to_best": {k: lppd[best].sum() - v.sum() for k, v in lppd.items()},
        "se_diff": {k: np.sqrt(len(v)) * np.std(lppd[best] - v) for k, v in lppd.items()},
    }
).sort_values("elpd_heldout", ascending=False)
print(held_table.round(2))
held_table.to_csv(io.path("heldout.csv"))

print(f"tutorial wall time: {time.perf_counter() - t_start:.0f} s")
