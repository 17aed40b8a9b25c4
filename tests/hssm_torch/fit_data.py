"""Data sets for the fitting tests, simulated with the package's own simulators."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import torch

from simulators.simulate import simulate


def assert_inside_hdi(idata, truth: dict, prob: float = 0.95) -> None:
    """Assert every true value lies inside its ``prob`` highest-density interval."""
    hdi = az.hdi(idata, hdi_prob=prob)
    for k, v in truth.items():
        lo, hi = hdi[k].values
        assert lo <= v <= hi, f"{k}: true {v} outside {prob:.0%} interval [{lo:.3f}, {hi:.3f}]"


DDM_TRUE = {"v": 0.8, "a": 1.0, "z": 0.45, "t": 0.3}


def ddm_data(n: int = 500, theta: dict | None = None, seed: int = 1) -> pd.DataFrame:
    """``n`` DDM trials at one parameter set."""
    th = dict(DDM_TRUE if theta is None else theta)
    row = torch.tensor([[th["v"], th["a"], th["z"], th["t"]]], dtype=torch.float64)
    res = simulate("ddm", row, n, seed=seed, dtype=torch.float64)
    return pd.DataFrame(
        {"rt": res.rt[0].numpy(), "response": res.response[0].numpy().astype(float)}
    )


def hierarchical_data(
    n_subjects: int = 10,
    n_trials: int = 100,
    intercept: float = 0.5,
    slope: float = 0.8,
    sigma: float = 0.5,
    a: float = 1.0,
    z: float = 0.5,
    t: float = 0.3,
    seed: int = 2,
) -> tuple[pd.DataFrame, np.ndarray]:
    """``v = intercept + slope * x + u[participant]``, u ~ N(0, sigma); returns (data, u)."""
    rng = np.random.default_rng(seed)
    u = rng.normal(0.0, sigma, n_subjects)
    pid = np.repeat(np.arange(n_subjects), n_trials)
    x = rng.normal(0.0, 1.0, n_subjects * n_trials)
    v = intercept + slope * x + u[pid]
    theta = np.column_stack([v, np.full_like(v, a), np.full_like(v, z), np.full_like(v, t)])
    res = simulate(
        "ddm", torch.tensor(theta), 1, seed=seed, dtype=torch.float64, allow_out_of_bounds=True
    )
    df = pd.DataFrame(
        {
            "rt": res.rt[:, 0].numpy(),
            "response": res.response[:, 0].numpy().astype(float),
            "x": x,
            "participant_id": pid,
        }
    )
    return df, u


def small_centred_regression():
    """A centred ``v ~ 1 + x + (1|participant_id)`` ddm on 3 participants x 20 trials
    (the small model the batched-sampler tests run eagerly and compiled)."""
    from hssm_torch.model import HSSM

    df, _ = hierarchical_data(3, 20, seed=5)
    return HSSM(
        df,
        "ddm",
        include=[{"name": "v", "formula": "v ~ 1 + x + (1|participant_id)"}],
        noncentered=False,
    )
