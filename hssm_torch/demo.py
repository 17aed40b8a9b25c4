"""The main job: a hierarchical DDM fit on data the package simulates itself.

``python -m hssm_torch.demo`` simulates several participants whose drift rate depends on a
trial covariate ``x`` (``v = 0.5 + 0.8 x + u_participant``), fits
``v ~ 1 + x + (1|participant_id)`` with Pyro NUTS, prints the ArviZ summary next to the
true values, and writes ``summary.csv``, ``trace.png`` and ``forest.png`` to a run folder
(``outputs/demo/<timestamp>/`` by default). A few minutes on a 2-core CPU.

Example
-------
    python -m hssm_torch.demo --participants 6 --trials 50 --draws 300 --out outputs/demo/run1
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

__all__ = ["TRUE_VALUES", "main", "simulate_hierarchical", "write_plots"]

logger = logging.getLogger(__name__)

#: Parameters used to simulate the demo data.
TRUE_VALUES = {
    "v_Intercept": 0.5,
    "v_x": 0.8,
    "v_1|participant_id_sigma": 0.4,
    "a": 1.0,
    "z": 0.5,
    "t": 0.3,
}


def simulate_hierarchical(
    n_participants: int = 8, n_trials: int = 60, seed: int = 0
) -> pd.DataFrame:
    """Simulate DDM trials with ``v = 0.5 + 0.8 x + u_p``, ``u_p ~ N(0, 0.4)``.

    Returns a DataFrame with ``rt``, ``response``, ``x`` and ``participant_id``.

    Examples
    --------
    >>> simulate_hierarchical(3, 5).shape
    (15, 4)
    """
    from simulators.simulate import simulate

    if n_participants < 2 or n_trials < 1:
        raise ValueError(
            f"n_participants must be >= 2 and n_trials >= 1, got {n_participants}, {n_trials}"
        )
    rng = np.random.default_rng(seed)
    tv = TRUE_VALUES
    u = rng.normal(0.0, tv["v_1|participant_id_sigma"], n_participants)
    pid = np.repeat(np.arange(n_participants), n_trials)
    x = rng.normal(0.0, 1.0, pid.size)
    v = tv["v_Intercept"] + tv["v_x"] * x + u[pid]
    theta = np.column_stack([v, *(np.full_like(v, tv[k]) for k in ("a", "z", "t"))])
    res = simulate(
        "ddm", torch.tensor(theta), 1, seed=seed, dtype=torch.float64, allow_out_of_bounds=True
    )
    return pd.DataFrame(
        {
            "rt": res.rt[:, 0].numpy(),
            "response": res.response[:, 0].numpy().astype(float),
            "x": x,
            "participant_id": pid,
        }
    )


def write_plots(idata, var_names: list[str], folder: Path) -> list[Path]:
    """Write ArviZ trace and forest plots (Agg backend) into ``folder``."""
    import matplotlib

    matplotlib.use("Agg")
    import arviz as az
    import matplotlib.pyplot as plt

    paths = []
    with warnings.catch_warnings():
        # ArviZ 0.23 calls a matplotlib helper deprecated in matplotlib 3.11 (not actionable)
        warnings.filterwarnings("ignore", message=".*alias_mapping.*", category=DeprecationWarning)
        axes = az.plot_trace(idata, var_names=var_names, compact=True)
        fig = np.asarray(axes).ravel()[0].figure
        fig.tight_layout()
        paths.append(folder / "trace.png")
        fig.savefig(paths[-1], dpi=80)
        plt.close(fig)
        axes = az.plot_forest(idata, var_names=var_names, combined=True, hdi_prob=0.95)
        fig = np.asarray(axes).ravel()[0].figure
        paths.append(folder / "forest.png")
        fig.savefig(paths[-1], dpi=80, bbox_inches="tight")
        plt.close(fig)
    return paths


def main(argv: list[str] | None = None) -> int:
    """Run the demo (see the module docstring)."""
    from hssm_torch.model import HSSM

    parser = argparse.ArgumentParser(
        prog="python -m hssm_torch.demo", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--participants", type=int, default=6)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    torch.set_num_threads(1)
    out = args.out or Path("outputs") / "demo" / time.strftime("%Y-%m-%d_%H-%M-%S")
    out.mkdir(parents=True, exist_ok=True)

    df = simulate_hierarchical(args.participants, args.trials, args.seed)
    print(
        f"simulated {len(df)} trials from {args.participants} participants "
        f"(v = 0.5 + 0.8 x + u_p, a = 1, z = 0.5, t = 0.3)"
    )
    model = HSSM(df, "ddm", include=[{"name": "v", "formula": "v ~ 1 + x + (1|participant_id)"}])
    print(model)
    t0 = time.perf_counter()
    idata = model.sample(
        chains=args.chains,
        draws=args.draws,
        tune=args.tune,
        seed=args.seed,
        progress=sys.stderr.isatty(),
    )
    elapsed = time.perf_counter() - t0
    summary = model.summary()
    summary.insert(0, "true", [TRUE_VALUES.get(n, np.nan) for n in summary.index])
    import pandas as _pd

    with _pd.option_context(
        "display.width", 200, "display.max_columns", 20, "display.max_rows", 100
    ):
        print(summary)
    print(
        f"sampling took {elapsed:.0f} s "
        f"({args.chains} chains x {args.tune} tune + {args.draws} draws)"
    )
    summary.to_csv(out / "summary.csv")
    model.save(out / "model")
    for p in write_plots(idata, [n for n in model.var_names if "|" not in n or "sigma" in n], out):
        print(f"wrote {p}")
    print(f"run folder: {out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
