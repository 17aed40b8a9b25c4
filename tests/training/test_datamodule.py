"""ShardDataModule: memory-mapped shards, true per-epoch shuffle, seeded split by shard."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from training.datamodule import (
    EpochShuffleBatchSampler,
    ShardDataModule,
    ShardDataset,
    open_npz_member,
)

P = 4


def _write_shards(folder, sizes, compressed=False, m=3, n_choices=2):
    """Shards whose LAN inputs carry (shard, row) in the first two columns for tracing."""
    folder.mkdir(parents=True, exist_ok=True)
    save = np.savez_compressed if compressed else np.savez
    names = []
    for s, n in enumerate(sizes):
        lan_inputs = np.zeros((n, P + 2), np.float32)
        lan_inputs[:, 0] = s
        lan_inputs[:, 1] = np.arange(n)
        lan_targets = (1000 * s + np.arange(n)).astype(np.float32)
        probs = np.full((m, n_choices), 1.0 / n_choices, np.float32)
        name = f"shard-{s:05d}.npz"
        save(
            folder / name,
            lan_inputs=lan_inputs,
            lan_targets=lan_targets,
            cpn_inputs=np.full((m, P), s, np.float32),
            cpn_targets=probs,
            opn_inputs=np.full((m, P + 1), s, np.float32),
            opn_targets=np.full((m,), 0.25, np.float32),
            theta=np.full((m, P), s, np.float32),
        )
        names.append(name)
    (folder / "manifest.json").write_text(json.dumps({"model": "ddm", "shards": names}))
    return folder


@pytest.mark.parametrize("compressed", [False, True])
def test_open_npz_member(tmp_path, compressed):
    _write_shards(tmp_path, [7], compressed=compressed)
    x = open_npz_member(tmp_path / "shard-00000.npz", "lan_inputs")
    assert isinstance(x, np.memmap) != compressed  # memory-mapped only when stored
    np.testing.assert_array_equal(x[:, 1], np.arange(7))
    with pytest.raises(ValueError, match="array 'nope' not found"):
        open_npz_member(tmp_path / "shard-00000.npz", "nope")


def test_dataset_gathers_batches_in_requested_order(tmp_path):
    _write_shards(tmp_path, [5, 3, 4])
    ds = ShardDataset(sorted(tmp_path.glob("shard-*.npz")), "lan")
    assert len(ds) == 12
    idx = [11, 0, 6, 5, 2]
    x, y = ds[idx]
    expected = [1000 * 2 + 3, 0, 1000 + 1, 1000, 2]
    assert y.tolist() == expected
    assert x.dtype == torch.float32 and x.shape == (5, P + 2)
    x1, y1 = ds[6]
    assert y1.item() == 1001 and x1.shape == (P + 2,)
    with pytest.raises(IndexError):
        ds[[12]]


def test_sampler_is_a_permutation_each_epoch_and_changes(tmp_path):
    s = EpochShuffleBatchSampler(103, batch_size=10, seed=3)
    epochs = []
    for e in range(3):
        s.set_epoch(e)
        batches = list(s)
        assert len(batches) == len(s) == 11
        flat = np.concatenate(batches)
        assert sorted(flat.tolist()) == list(range(103))  # without replacement
        epochs.append(flat)
    assert not np.array_equal(epochs[0], epochs[1])
    assert not np.array_equal(epochs[1], epochs[2])
    s.set_epoch(1)
    np.testing.assert_array_equal(np.concatenate(list(s)), epochs[1])  # seeded
    s2 = EpochShuffleBatchSampler(103, batch_size=10, seed=4)
    s2.set_epoch(0)
    assert not np.array_equal(np.concatenate(list(s2)), epochs[0])


def test_split_by_shard_seeded_and_loaders(tmp_path):
    _write_shards(tmp_path, [6, 6, 6, 6, 6])
    dm = ShardDataModule(tmp_path, kind="lan", batch_size=4, val_fraction=0.4, seed=1)
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.val_shards) == 2 and len(dm.train_shards) == 3
    assert not set(dm.val_shards) & set(dm.train_shards)
    assert dm.input_width == P + 2
    again = ShardDataModule(tmp_path, kind="lan", batch_size=4, val_fraction=0.4, seed=1)
    again.setup("fit")
    assert again.val_shards == dm.val_shards
    other = [
        ShardDataModule(tmp_path, kind="lan", batch_size=4, val_fraction=0.4, seed=s)
        for s in range(2, 8)
    ]
    for o in other:
        o.setup("fit")
    assert any(o.val_shards != dm.val_shards for o in other)

    train_ids = {int(p.stem.split("-")[1]) for p in dm.train_shards}
    loader = dm.train_dataloader()
    seen = []
    for x, _y in loader:
        assert x.shape[1] == P + 2 and x.shape[0] <= 4
        seen.extend(zip(x[:, 0].int().tolist(), x[:, 1].int().tolist()))
    assert len(seen) == 18 and len(set(seen)) == 18  # each training row exactly once
    assert {s for s, _ in seen} == train_ids
    val = [y for _, y in dm.val_dataloader()]
    assert sum(len(v) for v in val) == 12


@pytest.mark.parametrize("kind,width,target_shape", [("cpn", P, (2,)), ("opn", P + 1, ())])
def test_cpn_and_opn_arrays(tmp_path, kind, width, target_shape):
    _write_shards(tmp_path, [5, 5])
    dm = ShardDataModule(tmp_path, kind=kind, batch_size=8, val_fraction=0.5, seed=0)
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (3, width) and tuple(y.shape[1:]) == target_shape


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="kind"):
        ShardDataModule(tmp_path, kind="ddm")
    with pytest.raises(ValueError, match="val_fraction"):
        ShardDataModule(tmp_path, val_fraction=1.0)
    with pytest.raises(ValueError, match="batch_size"):
        ShardDataModule(tmp_path, batch_size=0)
    with pytest.raises(ValueError, match="no manifest.json"):
        ShardDataModule(tmp_path).setup("fit")
    _write_shards(tmp_path / "one", [5])
    with pytest.raises(ValueError, match="leaves no training shard"):
        ShardDataModule(tmp_path / "one", val_fraction=0.2).setup("fit")
    dm = ShardDataModule(tmp_path / "one", val_fraction=0.0)
    dm.setup("fit")
    assert dm.val_dataset is None and len(dm.train_dataset) == 5
    (tmp_path / "one" / "shard-00000.npz").unlink()
    with pytest.raises(ValueError, match="missing"):
        ShardDataModule(tmp_path / "one").setup("fit")
