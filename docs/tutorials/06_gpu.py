# %% [markdown]
# # Tutorial 6: running on a GPU
#
# The same code runs on CPU and CUDA: every entry point takes a `device=` argument and
# creates its tensors on it (simulators, analytical likelihoods, ONNX networks, the fitted
# model, predictive sampling). This tutorial picks `"cuda"` when
# `torch.cuda.is_available()`, otherwise it runs the identical code on the CPU and says so.
#
# Installing a CUDA build of torch: `make demo TORCH_SPEC="torch>=2.4"` (the Makefile
# installs the CPU build by default). Training networks on a GPU: `python -m
# training.train +experiment=ddm_lan trainer=gpu`; generating training data:
# `python -m simulators.generate ... device=cuda`.
#
# `python docs/tutorials/06_gpu.py [--out DIR] [--docs-images]`; about 1-3 minutes on a
# 2-core CPU.

# %%
import time

import arviz as az
import pandas as pd
import torch
from tutorial_io import parse_args

import hssm_torch as hsm
from hssm_torch.likelihoods import log_likelihood
from hssm_torch.plotting.recovery import recovery_table
from simulators import simulate, simulate_data

io = parse_args("gpu", "Tutorial 6: running on a GPU")
t_start = time.perf_counter()

device = "cuda" if torch.cuda.is_available() else "cpu"
if device == "cuda":
    print(f"GPU found: {torch.cuda.get_device_name(0)}; running on {device}")
else:
    print("No GPU found (torch.cuda.is_available() is False): running the same code on the CPU")
report = {"device": device, "torch": torch.__version__}


def sync() -> None:
    if device == "cuda":
        torch.cuda.synchronize()


# %% [markdown]
# ## Simulators on the device
#
# `simulate(..., device=device)` returns tensors on that device. Draws are keyed by
# (seed, parameter set, trial), so a seed gives the same draws whatever the chunking; CPU and
# CUDA use the same integer arithmetic but may round floating-point functions differently.

# %%
theta = torch.tensor([[0.5, 1.0, 0.5, 0.3]], device=device).repeat(200, 1)
sync()
t0 = time.perf_counter()
res = simulate("ddm", theta, 1000, seed=1, device=device)
sync()
report["simulate_2e5_ddm_s"] = time.perf_counter() - t0
print(
    f"simulated {res.rt.numel():,} DDM trials on {res.rt.device} in "
    f"{report['simulate_2e5_ddm_s']:.2f} s; P(upper) = {(res.response == 1).float().mean():.3f}"
)

# %% [markdown]
# ## Likelihoods on the device
#
# The analytical DDM likelihood and the shipped LAN (an ONNX file turned into a torch module
# with `load_network(..., device=device)`) evaluate 200,000 trials in one batched call.

# %%
rt, resp = res.rt.reshape(-1), res.response.reshape(-1).to(res.rt.dtype)
th = theta[:1].expand(rt.numel(), -1)
sync()
t0 = time.perf_counter()
ll = log_likelihood("ddm", rt, resp, th)
sync()
report["analytical_2e5_s"] = time.perf_counter() - t0
lan = hsm.load_network("ddm", "lan", device=device)
rows = torch.cat([th, rt[:, None], resp[:, None]], dim=1).float()
sync()
t0 = time.perf_counter()
with torch.no_grad():
    ll_net = lan(rows).squeeze(-1)
sync()
report["lan_2e5_s"] = time.perf_counter() - t0
mae = (ll_net.double() - ll.double()).abs().mean().item()
report["lan_vs_analytical_mae"] = mae
print(
    f"analytical log-likelihood on {ll.device}: {report['analytical_2e5_s']:.2f} s; "
    f"LAN on {ll_net.device}: {report['lan_2e5_s']:.2f} s; mean |LAN - analytical| = {mae:.3f}"
)

# %% [markdown]
# ## Fitting on the device
#
# `HSSM(..., device=device)` puts the data, parameters and likelihood there; NUTS, SVI and
# predictive sampling then run on it. (On a GPU the per-step cost of Pyro's NUTS is mostly
# Python and kernel-launch overhead for a few hundred trials; the GPU pays off with many
# trials, many participants, or networks.)

# %%
truth = {"v": 0.5, "a": 1.0, "z": 0.5, "t": 0.3}
df = simulate_data("ddm", truth, 300, seed=2, device=device)
model = hsm.HSSM(df, model="ddm", device=device)
t0 = time.perf_counter()
idata = model.sample(chains=2, draws=250, tune=250, seed=3, progress=False)
report["nuts_s"] = time.perf_counter() - t0
summary = model.summary()
print(summary)
summary.to_csv(io.path("summary.csv"))
table, _ = recovery_table(idata, truth, ci=0.94)
print(table.to_string(index=False))
table.to_csv(io.path("recovery.csv"), index=False)
model.sample_posterior_predictive(idata, draws=100, seed=4, progress=False)
io.figure(hsm.plot_predictive(model, idata, kind="kde"), "predictive_kde.png")
io.figure(az.plot_trace(idata, var_names=model.var_names, compact=True), "trace.png")

# %% [markdown]
# SVI on the same device: a fast approximation (a multivariate-normal guide, 800 Adam
# steps). Compare its means with NUTS': a short SVI run can be visibly off (here mostly in
# `t`, whose posterior is skewed against its bound min(rt)); NUTS is the reference.

# %%
t0 = time.perf_counter()
vi = model.vi(guide="mvn", steps=800, lr=0.02, draws=500, seed=5, progress=False)
report["svi_s"] = time.perf_counter() - t0
vi_means = az.summary(vi, var_names=model.var_names, kind="stats")["mean"]
print(pd.DataFrame({"true": pd.Series(truth), "NUTS": summary["mean"], "SVI": vi_means}).round(3))
io.json(report, "device_report.json")
print(f"tutorial wall time: {time.perf_counter() - t_start:.0f} s")
