"""The Hydra app ``python -m simulators.generate``: configs, interruption + resume, multirun."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from simulators.generate import CONFIG_DIR, config_from_dict
from simulators.training_data import generate, read_manifest, read_shard, validate_dataset
from simulators.training_data.shards import shard_path, verify_shard

CONTRACT = (
    "model",
    "n_parameter_sets",
    "n_simulations",
    "n_training_rows",
    "n_shards",
    "seed",
    "output_dir",
    "device",
)
SMALL = [
    "model=ddm",
    "n_parameter_sets=6",
    "n_simulations=1000",
    "n_training_rows=20",
    "n_shards=3",
    "seed=3",
    "chunk_size=2",
    "bounds={a: [0.3, 0.5], t: [0.0, 0.2]}",
    "progress=false",
]


def _compose(overrides):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name="generate", overrides=overrides)


def test_config_has_the_contract_keys_and_maps_onto_the_generator_config(tmp_path):
    cfg = _compose([*SMALL, f"output_dir={tmp_path}"])
    for key in CONTRACT:
        assert key in cfg
    gen = config_from_dict(OmegaConf.to_container(cfg, resolve=True))
    assert gen.bounds == {"a": [0.3, 0.5], "t": [0.0, 0.2]} and gen.n_simulations == 1000
    assert _compose([])["output_dir"] == "data/ddm"
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['n_sims'\]"):
        config_from_dict({**OmegaConf.to_container(cfg), "n_sims": 3})


def test_launcher_presets():
    joblib = _compose(["+generate/launch=joblib_local"])
    assert joblib.n_jobs == 4
    slurm = OmegaConf.load(Path(CONFIG_DIR) / "generate" / "launch" / "slurm.yaml")
    assert {"override /hydra/launcher": "submitit_slurm"} in slurm.defaults
    assert "job_index" in slurm.hydra.sweeper.params


def _app(args, cwd, log):
    """Start the app with its output going to the file ``log``."""
    cmd = [sys.executable, "-m", "simulators.generate", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "1"}
    with open(log, "w") as fh:
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT)


def test_interrupted_generation_resumes_to_the_same_dataset(tmp_path):
    data = tmp_path / "data"
    args = [*SMALL, f"output_dir={data}", f"hydra.run.dir={tmp_path / 'run'}"]
    log = tmp_path / "first.log"
    proc = _app(args, tmp_path, log)
    deadline = time.monotonic() + 300
    while verify_shard(data, 0) is not None:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail(f"generator ended before writing shard 0:\n{log.read_text()}")
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = [verify_shard(data, i) is None for i in range(3)]
    assert done[0] and not all(done), "the kill came too late to interrupt the run"
    first = shard_path(data, 0).stat().st_mtime_ns

    log = tmp_path / "second.log"
    proc = _app(args, tmp_path, log)
    proc.wait(timeout=300)
    out = log.read_text()
    assert proc.returncode == 0, out
    assert "shard 0 is complete" in out
    assert shard_path(data, 0).stat().st_mtime_ns == first
    man = read_manifest(data)
    assert man["complete"] and validate_dataset(data).ok

    # the same config, uninterrupted (in process)
    ref = tmp_path / "ref"
    cfg = OmegaConf.to_container(_compose([*SMALL, f"output_dir={ref}"]), resolve=True)
    man_ref = generate(config_from_dict(cfg))
    assert man_ref["fingerprint"] == man["fingerprint"]
    for i in range(3):
        a, b = read_shard(shard_path(data, i)), read_shard(shard_path(ref, i))
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"shard {i} {k}")


@pytest.mark.slow
def test_joblib_multirun_writes_one_dataset(tmp_path):
    data = tmp_path / "data"
    args = [
        "-m",
        "+generate/launch=joblib_local",
        "n_jobs=2",
        *SMALL,
        f"output_dir={data}",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    ]
    log = tmp_path / "multirun.log"
    proc = _app(args, tmp_path, log)
    proc.wait(timeout=600)
    assert proc.returncode == 0, log.read_text()
    res = subprocess.run(
        [sys.executable, "-m", "simulators.training_data", "merge", str(data)],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "complete and valid" in res.stdout
    assert read_manifest(data)["totals"]["n_theta"] == 6
