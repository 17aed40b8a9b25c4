"""The Hydra fit app (python -m hssm_torch.fit) on a tiny CSV, single run and sweep."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import hssm_torch.likelihoods as likelihoods
from tests.hssm_torch.fit_data import hierarchical_data

ROOT = Path(__file__).resolve().parents[2]
# until the package-level analytical dispatcher exists, name the DDM likelihood explicitly
LOGLIK = (
    []
    if hasattr(likelihoods, "get_likelihood")
    else ["model.loglik=hssm_torch.likelihoods.wfpt:ddm_log_likelihood"]
)


def _run(args, cwd):
    proc = subprocess.run(
        [sys.executable, "-m", "hssm_torch.fit", *args, *LOGLIK, "progress=false"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture
def csv(tmp_path):
    path = tmp_path / "trials.csv"
    hierarchical_data(3, 10, seed=1)[0].to_csv(path, index=False)
    return path


@pytest.mark.mcmc
def test_single_run_writes_the_run_folder(tmp_path, csv):
    run_dir = tmp_path / "run"
    _run(
        [
            f"data.path={csv}",
            "model=ddm_regression",
            "sampler.chains=1",
            "sampler.draws=8",
            "sampler.tune=8",
            "sampler.max_tree_depth=4",
            f"hydra.run.dir={run_dir}",
        ],
        tmp_path,
    )
    summary = pd.read_csv(run_dir / "summary.csv", index_col=0)
    assert {"v_Intercept", "v_x", "v_1|participant_id_sigma", "a", "z", "t"} <= set(summary.index)
    assert (run_dir / "model" / "traces.nc").is_file() and (run_dir / "trace.png").is_file()
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    spec = json.loads((run_dir / "model" / "spec.json").read_text())
    assert spec["include"][0]["formula"] == "v ~ 1 + x + (1|participant_id)"


def test_sweep_runs_one_job_per_value(tmp_path, csv):
    sweep = tmp_path / "sweep"
    _run(
        [
            "-m",
            f"data.path={csv}",
            "sampler=svi",
            "sampler.steps=5,10",
            "sampler.draws=5",
            "plots.enabled=false",
            f"hydra.sweep.dir={sweep}",
        ],
        tmp_path,
    )
    for job in ("0", "1"):
        assert (sweep / job / "model" / "vi.nc").is_file()
        assert (sweep / job / "summary.csv").is_file()


def test_run_folder_plots_are_valid_pngs(tmp_path, csv):
    """SVI fit (fast) with plots: trace, forest, predictive and quantile-probability PNGs,
    read back as images of a real size with more than one colour; the saved InferenceData
    holds the posterior predictive behind them (5 draws x 30 trials)."""
    import arviz as az
    import matplotlib.image as mpimg

    from hssm_torch.fit import PLOT_FILES

    run_dir = tmp_path / "run"
    _run(
        [
            f"data.path={csv}",
            "model=ddm_regression",
            "sampler=svi",
            "sampler.steps=20",
            "sampler.draws=10",
            "plots.predictive_draws=5",
            f"hydra.run.dir={run_dir}",
        ],
        tmp_path,
    )
    for name in PLOT_FILES:
        path = run_dir / name
        assert path.is_file(), name
        assert path.stat().st_size > 5000, (name, path.stat().st_size)
        img = mpimg.imread(path)
        assert img.ndim == 3 and img.shape[0] >= 200 and img.shape[1] >= 200, (name, img.shape)
        assert img.shape[2] in (3, 4)
        assert float(img[..., :3].std()) > 0.01, name  # not a blank canvas
    assert not list(run_dir.glob(".*.tmp"))
    saved = az.from_netcdf(run_dir / "model" / "vi.nc")
    assert saved.posterior_predictive["rt,response"].shape == (1, 5, 30, 2)


def test_plot_settings_are_checked():
    from hssm_torch.fit import plot_settings

    assert plot_settings({"enabled": True, "predictive_draws": 7}) == (True, 7)
    assert plot_settings(False) == (False, 100)
    with pytest.raises(ValueError, match="plots.predictive_draws"):
        plot_settings({"enabled": True, "predictive_draws": 0})
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['draws'\]"):
        plot_settings({"draws": 3})


def test_missing_data_file_is_named(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hssm_torch.fit",
            "data.path=nope.csv",
            "progress=false",
            f"hydra.run.dir={tmp_path / 'r'}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0 and "data.path: file" in proc.stderr


def test_demo_data_and_plots(tmp_path):
    import arviz as az
    import numpy as np

    from hssm_torch.demo import simulate_hierarchical, write_plots

    df = simulate_hierarchical(3, 40, seed=1)
    assert df.shape == (120, 4) and set(df["response"].unique()) <= {-1.0, 1.0}
    assert (df["rt"] > 0.3).all()  # t = 0.3
    # drift increases with x: more upper responses for large x
    hi = df[df.x > 0.5]["response"].eq(1).mean()
    lo = df[df.x < -0.5]["response"].eq(1).mean()
    assert hi > lo
    idata = az.from_dict(posterior={"v": np.random.default_rng(0).normal(size=(2, 20))})
    paths = write_plots(idata, ["v"], tmp_path)
    assert [p.name for p in paths] == ["trace.png", "forest.png"]
    assert all(p.stat().st_size > 1000 for p in paths)
