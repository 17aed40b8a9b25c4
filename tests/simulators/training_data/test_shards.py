"""Shard files, records, checksums and the manifest's merge / validate command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from simulators.training_data.manifest import main as manifest_main
from simulators.training_data.manifest import merge_manifest, validate_dataset, write_manifest
from simulators.training_data.shards import (
    SHARD_ARRAYS,
    read_shard,
    shard_path,
    verify_shard,
    write_shard,
)


def _arrays(m=3, P=4, R=2, C=2, offset=0.0):
    rng = np.random.default_rng(int(offset * 10))
    theta = rng.uniform(0.1, 0.9, (m, P)).astype(np.float32)
    return {
        "theta": theta,
        "lan_inputs": np.zeros((m * R, P + 2), np.float32),
        "lan_targets": np.zeros(m * R, np.float32),
        "cpn_inputs": theta,
        "cpn_targets": np.full((m, C), 0.5, np.float32),
        "opn_inputs": np.zeros((m, P + 1), np.float32),
        "opn_targets": np.zeros(m, np.float32),
    }


def _header(n_shards=2):
    gc = {
        "seed": 0,
        "n_shards": n_shards,
        "n_training_rows": 2,
        "bounds": {"lower": [0.0] * 4, "upper": [1.0] * 4},
    }
    return {
        "model": "ddm",
        "param_names": ["v", "a", "z", "t"],
        "choices": [-1, 1],
        "generator_config": gc,
        "fingerprint": "f" * 64,
    }


def test_write_read_verify_round_trip(tmp_path):
    arr = _arrays()
    rec = write_shard(tmp_path, 7, arr, {"n_theta": 3})
    assert rec["file"] == "shard-00007.npz" and len(rec["sha256"]) == 64
    assert verify_shard(tmp_path, 7) is None
    back = read_shard(shard_path(tmp_path, 7))
    assert sorted(back) == sorted(SHARD_ARRAYS)
    assert all(back[k].dtype == np.float32 for k in back)
    np.testing.assert_array_equal(back["theta"], arr["theta"])
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind


def test_verify_detects_damage(tmp_path):
    write_shard(tmp_path, 0, _arrays(), {"n_theta": 3, "fingerprint": "abc"})
    assert verify_shard(tmp_path, 1) == "missing"
    assert "fingerprint" in verify_shard(tmp_path, 0, fingerprint="xyz")
    p = shard_path(tmp_path, 0)
    data = bytearray(p.read_bytes())
    data[-10] ^= 0xFF
    p.write_bytes(bytes(data))
    assert "checksum" in verify_shard(tmp_path, 0)
    (tmp_path / "shard-00000.json").unlink()
    assert "no readable record" in verify_shard(tmp_path, 0)


def test_write_shard_rejects_wrong_arrays(tmp_path):
    arr = _arrays()
    del arr["theta"]
    with pytest.raises(ValueError, match="arrays: expected exactly"):
        write_shard(tmp_path, 0, arr, {})


def test_read_shard_names_a_bad_file(tmp_path):
    p = tmp_path / "shard-00000.npz"
    p.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="shard-00000.npz"):
        read_shard(p)


def test_merge_and_validate(tmp_path, capsys):
    h = _header()
    write_manifest(tmp_path, h, [])
    r0 = write_shard(
        tmp_path, 0, _arrays(offset=0.1), {"n_theta": 3, "fingerprint": h["fingerprint"]}
    )
    rep = validate_dataset(tmp_path)
    assert not rep.ok
    assert any("shard 0: intact but not in manifest.json" in p for p in rep.problems)
    assert any("shard 1: missing" in p for p in rep.problems)
    write_shard(tmp_path, 1, _arrays(offset=0.2), {"n_theta": 3, "fingerprint": h["fingerprint"]})
    assert manifest_main(["merge", str(tmp_path)]) == 0
    man = json.loads((tmp_path / "manifest.json").read_text())
    assert man["complete"] and [s["index"] for s in man["shards"]] == [0, 1]
    assert man["shards"][0]["sha256"] == r0["sha256"]
    assert man["arrays"]["lan_inputs"] == {"dtype": "float32", "shape": ["n_theta*2", 6]}
    assert "complete and valid" in capsys.readouterr().out
    # a θ repeated across shards is reported
    write_shard(tmp_path, 1, _arrays(offset=0.1), {"n_theta": 3, "fingerprint": h["fingerprint"]})
    merge_manifest(tmp_path)
    rep = validate_dataset(tmp_path)
    assert any("repeats one of shard 0" in p for p in rep.problems)
    assert manifest_main(["validate", str(tmp_path)]) == 1


def test_validate_reports_out_of_box_theta_and_bad_shapes(tmp_path):
    h = _header(n_shards=1)
    arr = _arrays()
    arr["theta"][0, 0] = 2.0
    arr["opn_targets"] = np.zeros(5, np.float32)
    write_shard(tmp_path, 0, arr, {"n_theta": 3, "fingerprint": h["fingerprint"]})
    write_manifest(tmp_path, h, [])
    merge_manifest(tmp_path)
    probs = validate_dataset(tmp_path).problems
    assert any("outside the generator's bounds" in p for p in probs)
    assert any("opn_targets is float32[5], expected float32[3]" in p for p in probs)


def test_validate_without_manifest(tmp_path):
    assert manifest_main(["validate", str(tmp_path)]) == 1
    assert manifest_main(["merge", str(tmp_path)]) == 1
