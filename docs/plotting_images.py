"""Make the images shown in docs/plotting.md (run: ``python docs/plotting_images.py``).

Data are simulated with ``simulators.simulate`` from known DDM parameters; the "posterior
predictive" draws are simulations at parameters jittered around the truth (standing in for
posterior draws), and the recovery plot uses synthetic normal posterior draws. This keeps the
script independent of the fitting code; the tutorials draw the same plots from real fits.
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hssm_torch.plotting import (  # noqa: E402
    plot_model_cartoon,
    plot_posterior_recovery,
    plot_predictive,
    plot_quantile_probability,
)
from simulators.simulate import simulate  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    import arviz as az  # noqa: E402

OUT = Path(__file__).resolve().parent / "images"
DRIFTS = {"easy": 1.5, "medium": 0.8, "hard": 0.2}
TRIALS = 300  # per condition
CHAINS, DRAWS = 2, 25


def _save(fig, name: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=OUT)
    os.close(fd)
    fig.savefig(tmp, dpi=110)
    os.chmod(tmp, 0o644)
    os.replace(tmp, OUT / name)
    print("wrote", OUT / name)


def _ddm(v: np.ndarray, a: np.ndarray, z: np.ndarray, t: np.ndarray, seed: int) -> np.ndarray:
    params = {"v": v, "a": a, "z": z, "t": t}
    theta = {k: torch.as_tensor(x, dtype=torch.float32) for k, x in params.items()}
    res = simulate("ddm", theta, 1, seed=seed)
    return np.stack([res.rt[:, 0].numpy(), res.response[:, 0].numpy()], axis=-1).astype(float)


def predictive_data():
    cond = np.repeat(list(DRIFTS), TRIALS)
    v = np.array([DRIFTS[c] for c in cond])
    n = v.size
    observed = _ddm(v, np.full(n, 1.0), np.full(n, 0.5), np.full(n, 0.3), seed=1)
    rng = np.random.default_rng(0)
    s = CHAINS * DRAWS
    jitter = {k: rng.normal(0, sd, (s, 1)) for k, sd in {"v": 0.08, "a": 0.03, "t": 0.01}.items()}
    pred = _ddm(
        (v[None] + jitter["v"]).ravel(),
        np.broadcast_to(1.0 + jitter["a"], (s, n)).ravel(),
        np.full(s * n, 0.5),
        np.broadcast_to(0.3 + jitter["t"], (s, n)).ravel(),
        seed=2,
    ).reshape(CHAINS, DRAWS, n, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        idata = az.from_dict(
            posterior_predictive={"rt,response": pred},
            observed_data={"rt,response": observed},
            dims={"rt,response": ["__obs__", "rt,response_dim"]},
        )
    data = pd.DataFrame(
        {
            "rt": observed[:, 0],
            "response": observed[:, 1],
            "difficulty": pd.Categorical(cond, categories=list(DRIFTS)),
        }
    )
    return idata, data


def n_choice_data():
    """Three-choice LBA data (responses 0, 1, 2) and jittered predictive draws."""
    base = {"A": 0.3, "b": 0.5, "v0": 0.15, "v1": 0.3, "v2": 0.45, "t": 0.2}
    n, s = 600, CHAINS * DRAWS
    res = simulate("lba3", base, n, seed=4)
    observed = np.stack([res.rt[0].numpy(), res.response[0].numpy()], -1).astype(float)
    rng = np.random.default_rng(5)
    theta = {
        k: torch.as_tensor(v + rng.normal(0, 0.01, s), dtype=torch.float32) for k, v in base.items()
    }
    pred = simulate("lba3", theta, n, seed=6)
    predicted = np.stack([pred.rt.numpy(), pred.response.numpy()], -1).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return az.from_dict(
            posterior_predictive={"rt,response": predicted.reshape(CHAINS, DRAWS, n, 2)},
            observed_data={"rt,response": observed},
            dims={"rt,response": ["__obs__", "rt,response_dim"]},
        )


def main() -> None:
    torch.set_num_threads(1)
    idata, data = predictive_data()
    _save(plot_predictive(idata=idata, data=data, col="difficulty"), "plotting_predictive.png")
    _save(plot_predictive(idata=idata, kind="kde"), "plotting_predictive_kde.png")
    _save(plot_predictive(idata=n_choice_data()), "plotting_predictive_lba3.png")
    _save(
        plot_quantile_probability(idata=idata, data=data, cond="difficulty"),
        "plotting_quantile_probability.png",
    )
    _save(
        plot_model_cartoon("angle", {"v": 0.8, "a": 1.2, "z": 0.45, "t": 0.3, "theta": 0.6}),
        "plotting_cartoon_angle.png",
    )
    _save(
        plot_model_cartoon("ddm", {"v": 1.0, "a": 1.0, "z": 0.5, "t": 0.3}),
        "plotting_cartoon_ddm.png",
    )

    rng = np.random.default_rng(3)
    true_u = np.linspace(-0.6, 0.6, 8)
    est_u = true_u + rng.normal(0, 0.08, 8)
    posterior = {
        "v_Intercept": rng.normal(0.93, 0.07, (2, 500)),
        "a": rng.normal(1.02, 0.03, (2, 500)),
        "z": rng.normal(0.49, 0.02, (2, 500)),
        "t": rng.normal(0.305, 0.01, (2, 500)),
        "v_1|participant_id": rng.normal(est_u, 0.12, (2, 500, 8)),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        post = az.from_dict(posterior=posterior)
    truth = {"v_Intercept": 0.9, "a": 1.0, "z": 0.5, "t": 0.3, "v_1|participant_id": true_u}
    _save(plot_posterior_recovery(post, truth), "plotting_recovery.png")


if __name__ == "__main__":
    main()
