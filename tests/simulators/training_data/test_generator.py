"""The generator: shards, resume, disjoint jobs, filters, manifest contents, bad input."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from simulators import ModelSpec, ParamSpec, register_model, unregister_model
from simulators.training_data import (
    GeneratorConfig,
    generate,
    job_shards,
    read_shard,
    validate_dataset,
)
from simulators.training_data.manifest import package_version
from simulators.training_data.shards import shard_path

# a fast corner of the ddm box (short RTs) keeps these tests quick
FAST = {"a": [0.3, 0.5], "t": [0.0, 0.2]}


def _cfg(out, **kw):
    base = dict(
        model="ddm",
        n_parameter_sets=6,
        n_simulations=200,
        n_training_rows=20,
        n_shards=3,
        seed=5,
        output_dir=str(out),
        bounds=FAST,
        chunk_size=4,
        progress=False,
    )
    base.update(kw)
    return GeneratorConfig(**base)


def _load(folder, n):
    return [read_shard(shard_path(folder, i)) for i in range(n)]


def _assert_same(a, b):
    for x, y in zip(a, b):
        for k in x:
            np.testing.assert_array_equal(x[k], y[k], err_msg=k)


def test_dataset_layout_and_manifest(tmp_path):
    man = generate(_cfg(tmp_path))
    assert man["complete"] and man["model"] == "ddm" and man["seed"] == 5
    assert man["param_names"] == ["v", "a", "z", "t"] and man["choices"] == [-1, 1]
    assert man["package_version"] == package_version()
    assert man["generator_config"]["n_simulations"] == 200
    assert len(man["fingerprint"]) == 64
    assert [s["file"] for s in man["shards"]] == [f"shard-{i:05d}.npz" for i in range(3)]
    assert all(len(s["sha256"]) == 64 and s["seed"] for s in man["shards"])
    t = man["totals"]
    assert t["n_theta"] == 6 and t["n_lan_rows"] == 120
    assert t["n_drawn"] == t["n_theta"] + t["n_rejected"]
    assert set(t["rejected_by_reason"]) == {"omitted", "few_trials", "point_mass"}
    shards = _load(tmp_path, 3)
    for sh in shards:
        m = sh["theta"].shape[0]
        assert m == 2
        assert sh["lan_inputs"].shape == (m * 20, 6) and sh["lan_targets"].shape == (m * 20,)
        assert sh["cpn_targets"].shape == (m, 2) and sh["opn_inputs"].shape == (m, 5)
        np.testing.assert_array_equal(sh["lan_inputs"][::20, :4], sh["theta"])
        np.testing.assert_array_equal(sh["cpn_inputs"], sh["theta"])
        np.testing.assert_array_equal(sh["opn_inputs"][:, :4], sh["theta"])
        np.testing.assert_allclose(sh["cpn_targets"].sum(1), 1.0, rtol=1e-6)
        assert set(np.unique(sh["lan_inputs"][:, 5])) <= {-1.0, 1.0}
        assert ((sh["opn_targets"] >= 0) & (sh["opn_targets"] <= 1)).all()
        d = sh["opn_inputs"][:, 4]
        assert ((d >= 0.1) & (d <= 10.0)).all()
    theta = np.concatenate([s["theta"] for s in shards])
    assert (theta[:, 1] >= 0.3).all() and (theta[:, 1] <= 0.5).all()
    assert validate_dataset(tmp_path).ok


def test_jobs_write_disjoint_shards_that_equal_a_single_run(tmp_path):
    single = tmp_path / "single"
    generate(_cfg(single, n_shards=4, n_parameter_sets=8))
    multi = tmp_path / "multi"
    man0 = generate(_cfg(multi, n_shards=4, n_parameter_sets=8, n_jobs=2, job_index=0))
    assert not man0["complete"] and man0["missing_shards"] == [1, 3]
    man1 = generate(_cfg(multi, n_shards=4, n_parameter_sets=8, n_jobs=2, job_index=1))
    assert man1["complete"]
    _assert_same(_load(single, 4), _load(multi, 4))
    theta = np.concatenate([s["theta"] for s in _load(multi, 4)])
    assert len({row.tobytes() for row in theta}) == len(theta)  # no θ repeats across shards
    assert job_shards(4, 2, 0) == [0, 2]


def test_other_seeds_and_sobol_give_other_theta(tmp_path):
    for name, kw in {"a": {}, "b": {"seed": 6}, "c": {"sampler": "sobol"}}.items():
        generate(_cfg(tmp_path / name, n_shards=2, n_parameter_sets=4, **kw))
    th = {k: np.concatenate([s["theta"] for s in _load(tmp_path / k, 2)]) for k in "abc"}
    rows = [r.tobytes() for k in "abc" for r in th[k]]
    assert len(set(rows)) == len(rows) == 12


def test_resume_skips_complete_shards_and_regenerates_damaged_ones(tmp_path, caplog):
    cfg = _cfg(tmp_path)
    generate(cfg)
    before = _load(tmp_path, 3)
    mtime0 = shard_path(tmp_path, 0).stat().st_mtime_ns
    # damage shard 1, delete shard 2's record (a write interrupted between the renames)
    p = shard_path(tmp_path, 1)
    data = bytearray(p.read_bytes())
    data[200] ^= 0xFF
    p.write_bytes(bytes(data))
    (tmp_path / "shard-00002.json").unlink()
    (tmp_path / ".shard-00001.npz.tmp-123").write_bytes(b"partial")
    with caplog.at_level(logging.WARNING):
        man = generate(cfg)
    msgs = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "shard 1 is damaged or partial" in msgs and "checksum" in msgs
    assert "shard 2 is damaged or partial" in msgs
    assert "leftover temporary file" in msgs
    assert shard_path(tmp_path, 0).stat().st_mtime_ns == mtime0  # untouched
    assert man["complete"]
    _assert_same(before, _load(tmp_path, 3))


def test_filters_reject_replace_and_count(tmp_path):
    # at least 30% of trials per response: strongly biased θ are rejected and replaced
    cfg = _cfg(
        tmp_path,
        bounds={**FAST, "v": [0.5, 3.0]},
        n_shards=1,
        n_parameter_sets=3,
        filters={"min_trials_per_choice": 60},
    )
    man = generate(cfg)
    t = man["totals"]
    assert t["n_theta"] == 3 and t["n_rejected"] > 0
    assert t["rejected_by_reason"]["few_trials"] == t["n_rejected"]
    assert t["n_drawn"] == 3 + t["n_rejected"]
    sh = _load(tmp_path, 1)[0]
    assert (sh["cpn_targets"] * 200 >= 60 - 1e-3).all()


def test_gives_up_when_filters_reject_everything(tmp_path):
    cfg = _cfg(
        tmp_path,
        n_shards=1,
        n_parameter_sets=2,
        max_draws_per_theta=2,
        filters={"min_trials_per_choice": 10**6},
    )
    with pytest.raises(ValueError, match=r"shard 0: only 0 of 2 parameter sets passed"):
        generate(cfg)


def test_refuses_a_folder_with_another_dataset_unless_overwrite(tmp_path):
    generate(_cfg(tmp_path))
    with pytest.raises(
        ValueError, match=r"output_dir: .* differs in \['n_simulations'\].*overwrite=true"
    ):
        generate(_cfg(tmp_path, n_simulations=300))
    man = generate(_cfg(tmp_path, n_simulations=300, overwrite=True))
    assert man["complete"] and man["generator_config"]["n_simulations"] == 300
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "shard-00000.npz").write_bytes(b"x")
    with pytest.raises(ValueError, match="shard files without a manifest"):
        generate(_cfg(stray))


def test_user_registered_model(tmp_path):
    spec = ModelSpec(
        name="narrow_ddm_td",
        simulator="ddm",
        choices=(-1, 1),
        params=(
            ParamSpec("v", -1, 1, 0),
            ParamSpec("a", 0.3, 0.5, 0.4),
            ParamSpec("z", 0.4, 0.6, 0.5),
            ParamSpec("t", 0.0, 0.1, 0.05),
        ),
        description="test model",
        reference="none",
    )
    register_model(spec)
    try:
        man = generate(_cfg(tmp_path, model="narrow_ddm_td", bounds={}))
        assert man["complete"] and man["model"] == "narrow_ddm_td"
    finally:
        unregister_model("narrow_ddm_td")


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"model": "dddm"}, "unknown model 'dddm'"),
        ({"bounds": {"v": [-5.0, 1.0]}}, r"bounds\['v'\].*outside"),
        ({"n_simulations": 50}, "n_simulations: expected an integer >= 100.*kernel density"),
        ({"n_shards": 20}, "n_shards: 20 shards for 6"),
        ({"n_training_rows": 0}, "n_training_rows"),
        ({"seed": -1}, "seed"),
        ({"sampler": "grid"}, "sampler"),
        ({"job_index": 2, "n_jobs": 2}, "job_index"),
        ({"model": "softmax_inv_temperature_2", "bounds": {}}, "choice-only"),
        ({"lan": {"mixture": [0.5, 0.5, 0.5]}}, "lan.mixture"),
        ({"filters": {"max_omitted_fraction": 2}}, "max_omitted_fraction"),
        ({"device": "nonsense"}, "device"),
        ({"import_modules": ["no_such_module_xyz"]}, "import_modules"),
    ],
)
def test_bad_inputs(tmp_path, kw, match):
    with pytest.raises(ValueError, match=match):
        _cfg(tmp_path, **kw)


def test_manifest_records_filter_policy_and_recipes(tmp_path):
    man = generate(_cfg(tmp_path, n_shards=1, n_parameter_sets=2))
    gc = man["generator_config"]
    assert gc["lan"]["mixture"] == [0.8, 0.1, 0.1]
    assert gc["filters"] == {
        "max_omitted_fraction": 0.05,
        "min_trials_per_choice": 1,
        "min_rt_std": 0.0,
    }
    assert gc["opn"]["distribution"] == "log_uniform"
    rec = json.loads((tmp_path / "shard-00000.json").read_text())
    assert rec["fingerprint"] == man["fingerprint"]


@pytest.mark.gpu
def test_cuda_dataset_matches_cpu_in_distribution(tmp_path):
    # Same θ (the θ stream is drawn on the CPU); simulations differ by device, so compare
    # CPN labels within Monte-Carlo error and check the LAN labels are finite and comparable.
    kw = dict(n_shards=1, n_parameter_sets=4, n_simulations=4000)
    generate(_cfg(tmp_path / "cpu", **kw))
    man = generate(_cfg(tmp_path / "gpu", device="cuda", **kw))
    assert man["complete"] and man["shards"][0]["device"].startswith("cuda")
    cpu, gpu = _load(tmp_path / "cpu", 1)[0], _load(tmp_path / "gpu", 1)[0]
    np.testing.assert_array_equal(cpu["theta"], gpu["theta"])
    assert np.abs(cpu["cpn_targets"] - gpu["cpn_targets"]).max() < 4 * (0.25 / 4000) ** 0.5 * 2
    assert np.isfinite(gpu["lan_targets"]).all()
    assert validate_dataset(tmp_path / "gpu").ok


@pytest.mark.parametrize("model", ["race_3", "lba2"])
def test_other_simulator_kinds_and_choice_sets(tmp_path, model):
    man = generate(_cfg(tmp_path, model=model, bounds={}, n_shards=1, n_parameter_sets=2))
    sh = _load(tmp_path, 1)[0]
    n_choices = len(man["choices"])
    assert sh["cpn_targets"].shape == (2, n_choices)
    assert set(np.unique(sh["lan_inputs"][:, -1])) <= set(map(float, man["choices"]))
    assert validate_dataset(tmp_path).ok
