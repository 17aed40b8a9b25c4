"""Lightning data module over training-data shards (``manifest.json`` + ``shard-NNNNN.npz``).

Loading. ``np.load(..., mmap_mode="r")`` memory-maps ``.npy`` files only; inside an ``.npz``
it reads every member into memory. :func:`open_npz_member` therefore memory-maps a member
directly when the archive stores it uncompressed (``np.savez``: the member's ``.npy`` bytes
lie contiguously in the zip file, after its local header), and reads it into memory only when
it is compressed (``np.savez_compressed``), saying so in the log. Rows are gathered from the
maps batch by batch, so a dataset larger than memory trains from the page cache.

Shuffling. Every training epoch draws a new permutation of all training rows (without
replacement) from ``(seed, epoch)``; batches are contiguous slices of it (within a batch the
indices are sorted per shard to read the maps in order, the batch content is unchanged).
The loaders are resumable: a Lightning checkpoint taken mid-epoch records the epoch and the
batches delivered, and a resumed run continues that epoch's permutation after them.

Split. Validation holds whole shards, chosen with a seeded generator
(``round(val_fraction * n_shards)``, at least one when ``val_fraction > 0``).
"""

from __future__ import annotations

import json
import logging
import struct
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

__all__ = [
    "EpochShuffleBatchSampler",
    "KIND_ARRAYS",
    "ResumableLoader",
    "ShardDataModule",
    "ShardDataset",
    "open_npz_member",
]

logger = logging.getLogger(__name__)

#: Shard arrays (inputs, targets) used by each network kind.
KIND_ARRAYS: dict[str, tuple[str, str]] = {
    "cpn": ("cpn_inputs", "cpn_targets"),
    "lan": ("lan_inputs", "lan_targets"),
    "opn": ("opn_inputs", "opn_targets"),
}

_LOCAL_HEADER = struct.Struct("<4s5H3I2H")  # zip local file header (30 bytes)


def open_npz_member(path: str | Path, name: str) -> np.ndarray:
    """Return member ``name`` of an ``.npz`` file, memory-mapped when stored uncompressed.

    Parameters
    ----------
    path : str or Path
        The ``.npz`` archive.
    name : str
        Array name (without ``.npy``).

    Returns
    -------
    numpy.ndarray
        A read-only ``np.memmap`` (uncompressed member) or an in-memory array (compressed).

    Examples
    --------
    >>> x = open_npz_member("shard-00000.npz", "lan_inputs")  # doctest: +SKIP
    """
    path = Path(path)
    member = f"{name}.npy"
    with zipfile.ZipFile(path) as zf:
        try:
            info = zf.getinfo(member)
        except KeyError:
            raise ValueError(
                f"shard {path}: array {name!r} not found; it holds {sorted(zf.namelist())}"
            ) from None
        if info.compress_type != zipfile.ZIP_STORED:
            logger.info("shard %s: %s is compressed; reading it into memory", path, name)
            with zf.open(member) as fh:
                return np.lib.format.read_array(fh, allow_pickle=False)
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        fields = _LOCAL_HEADER.unpack(fh.read(_LOCAL_HEADER.size))
        if fields[0] != b"PK\x03\x04":
            raise ValueError(f"shard {path}: corrupt zip header for member {member!r}")
        name_len, extra_len = fields[-2], fields[-1]
        fh.seek(info.header_offset + _LOCAL_HEADER.size + name_len + extra_len)
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        offset = fh.tell()
    if dtype.hasobject:
        raise ValueError(f"shard {path}: array {name!r} holds Python objects")
    return np.memmap(
        path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C"
    )


class ShardDataset(Dataset):
    """Rows of one network kind over several shards, indexed by global row number.

    ``dataset[indices]`` (a sequence of ints) returns the batch ``(inputs, targets)`` as
    float32 tensors; ``dataset[i]`` one row.

    Parameters
    ----------
    shard_paths : sequence of Path
        Shard files, in order.
    kind : str
        ``"lan"``, ``"cpn"`` or ``"opn"``.
    """

    def __init__(self, shard_paths: Sequence[Path], kind: str) -> None:
        if kind not in KIND_ARRAYS:
            raise ValueError(f"kind: expected one of {sorted(KIND_ARRAYS)}, got {kind!r}")
        self.kind = kind
        self.shard_paths = [Path(p) for p in shard_paths]
        in_name, target_name = KIND_ARRAYS[kind]
        self._inputs: list[np.ndarray] = []
        self._targets: list[np.ndarray] = []
        width = None
        for p in self.shard_paths:
            x, y = open_npz_member(p, in_name), open_npz_member(p, target_name)
            if x.ndim != 2 or len(y) != len(x):
                raise ValueError(
                    f"shard {p}: {in_name} {x.shape} and {target_name} {y.shape} do not match "
                    "(expected (n, D) inputs and n targets)"
                )
            if width is not None and x.shape[1] != width:
                raise ValueError(f"shard {p}: {in_name} has {x.shape[1]} columns, others {width}")
            width = x.shape[1]
            self._inputs.append(x)
            self._targets.append(y)
        sizes = np.array([len(x) for x in self._inputs], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(sizes)])
        self.input_width = width

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, index: int | Sequence[int] | np.ndarray) -> tuple[torch.Tensor, ...]:
        single = np.ndim(index) == 0
        idx = np.atleast_1d(np.asarray(index, dtype=np.int64))
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(
                f"index: rows must lie in [0, {len(self)}), got {idx.min()}..{idx.max()}"
            )
        shard = np.searchsorted(self.offsets, idx, side="right") - 1
        order = np.lexsort((idx, shard))  # read each map in increasing row order
        xs, ys = [], []
        for s in np.unique(shard):
            rows = idx[order][shard[order] == s] - self.offsets[s]
            xs.append(np.asarray(self._inputs[s][rows], dtype=np.float32))
            ys.append(np.asarray(self._targets[s][rows], dtype=np.float32))
        x = torch.from_numpy(np.concatenate(xs)) if xs else torch.empty(0)
        y = torch.from_numpy(np.concatenate(ys)) if ys else torch.empty(0)
        if single:
            return x[0], y[0]
        inverse = torch.from_numpy(np.argsort(order))
        return x[inverse], y[inverse]


class EpochShuffleBatchSampler(Sampler[np.ndarray]):
    """Batches of a fresh permutation of ``range(n)`` each epoch, seeded by ``(seed, epoch)``.

    A true shuffle: every row appears once per epoch (no resampling with replacement).
    Lightning calls :meth:`set_epoch` before each epoch; without it the epoch counter
    advances after each pass. :meth:`resume_at` makes the next pass start at a given batch
    of a given epoch (used to resume mid-epoch from a checkpoint).

    Examples
    --------
    >>> s = EpochShuffleBatchSampler(5, batch_size=2, seed=0)
    >>> sorted(np.concatenate(list(s)).tolist())
    [0, 1, 2, 3, 4]
    """

    def __init__(
        self, n: int, batch_size: int, seed: int = 0, shuffle: bool = True, drop_last: bool = False
    ) -> None:
        self.n, self.batch_size, self.seed = int(n), int(batch_size), int(seed)
        self.shuffle, self.drop_last = shuffle, drop_last
        self.epoch = 0
        self.current_epoch = 0  # the epoch of the pass in progress (or last started)
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def resume_at(self, epoch: int, batches_done: int) -> None:
        """Make the next pass be epoch ``epoch`` without its first ``batches_done`` batches."""
        self.epoch, self._skip = int(epoch), int(batches_done)

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    def __iter__(self) -> Iterator[np.ndarray]:
        self.current_epoch = self.epoch
        if self.shuffle:
            perm = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        else:
            perm = np.arange(self.n)
        skip, self._skip = self._skip, 0
        self.epoch += 1
        for i in range(skip, len(self)):
            yield perm[i * self.batch_size : (i + 1) * self.batch_size]


class ResumableLoader(DataLoader):
    """A DataLoader over an :class:`EpochShuffleBatchSampler` that Lightning can resume.

    ``state_dict()`` records the epoch and the number of batches delivered in it;
    ``load_state_dict()`` makes the next pass continue that epoch's permutation after those
    batches, so a run resumed mid-epoch sees each row of the epoch once.
    """

    def __init__(
        self, dataset: Dataset, sampler: EpochShuffleBatchSampler, num_workers: int = 0
    ) -> None:
        super().__init__(
            dataset,
            sampler=sampler,
            batch_size=None,
            num_workers=num_workers,
            persistent_workers=num_workers > 0,
        )
        self._delivered = 0

    def __iter__(self) -> Iterator:  # type: ignore[override]
        self._delivered = self.sampler._skip  # type: ignore[attr-defined]
        for batch in super().__iter__():
            self._delivered += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {
            "epoch": self.sampler.current_epoch,  # type: ignore[attr-defined]
            "batches_done": self._delivered,
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.sampler.resume_at(state["epoch"], state["batches_done"])  # type: ignore[attr-defined]


class ShardDataModule(L.LightningDataModule):
    """Training and validation data for one network kind, from a folder of shards.

    Parameters
    ----------
    data_dir : str or Path
        Folder with ``manifest.json`` and ``shard-NNNNN.npz`` files.
    kind : str
        ``"lan"`` (``lan_inputs`` -> ``lan_targets``), ``"cpn"`` (``cpn_inputs`` ->
        ``cpn_targets``, all choices; :class:`training.modules.CPNModule` picks its column)
        or ``"opn"`` (``opn_inputs`` -> ``opn_targets``).
    batch_size : int
        Rows per batch.
    val_fraction : float
        Fraction of the shards held out for validation, in [0, 1).
    seed : int
        Seeds the shard split and the per-epoch permutations.
    num_workers : int
        DataLoader worker processes.

    Examples
    --------
    >>> dm = ShardDataModule("data/ddm", kind="lan", batch_size=4096)  # doctest: +SKIP
    >>> dm.setup("fit"); dm.input_width  # doctest: +SKIP
    6
    """

    def __init__(
        self,
        data_dir: str | Path,
        kind: str = "lan",
        batch_size: int = 4096,
        val_fraction: float = 0.1,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if kind not in KIND_ARRAYS:
            raise ValueError(f"kind: expected one of {sorted(KIND_ARRAYS)}, got {kind!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction: expected a value in [0, 1), got {val_fraction!r}")
        if num_workers < 0:
            raise ValueError(f"num_workers: expected >= 0, got {num_workers!r}")
        self.data_dir = Path(data_dir)
        self.kind = kind
        self.batch_size = batch_size
        self.val_fraction = float(val_fraction)
        self.seed = int(seed)
        self.num_workers = int(num_workers)
        self.manifest: dict | None = None
        self.train_shards: list[Path] = []
        self.val_shards: list[Path] = []
        self.train_dataset: ShardDataset | None = None
        self.val_dataset: ShardDataset | None = None

    def _shard_files(self) -> list[Path]:
        manifest_path = self.data_dir / "manifest.json"
        if not manifest_path.is_file():
            raise ValueError(f"data_dir: {str(self.data_dir)!r} has no manifest.json")
        self.manifest = json.loads(manifest_path.read_text())
        if not isinstance(self.manifest, dict):
            raise ValueError(f"data_dir: {str(manifest_path)!r} does not hold a JSON object")
        listed = self.manifest.get("shards")
        if isinstance(listed, list) and listed:
            names = []
            for entry in listed:  # a file name, or a shard record ({"file": ..., "index": ...})
                if isinstance(entry, str):
                    names.append(entry)
                elif entry.get("file"):
                    names.append(str(entry["file"]))
                else:
                    names.append(f"shard-{int(entry['index']):05d}.npz")
            files = [self.data_dir / n for n in names]
            missing = [f.name for f in files if not f.is_file()]
            if missing:
                raise ValueError(f"data_dir: shards listed in the manifest are missing: {missing}")
        else:
            files = sorted(self.data_dir.glob("shard-*.npz"))
        if self.manifest.get("complete") is False:
            logger.warning(
                "data_dir %s: the manifest marks the dataset incomplete (missing shards %s); "
                "training on the %d shard(s) present",
                self.data_dir,
                self.manifest.get("missing_shards"),
                len(files),
            )
        if not files:
            raise ValueError(f"data_dir: {str(self.data_dir)!r} holds no shard-*.npz files")
        return files

    def prepare_data(self) -> None:
        """Check that the folder holds a manifest and shards (nothing is downloaded)."""
        self._shard_files()

    def setup(self, stage: str | None = None) -> None:
        """Split the shards (seeded) and open them memory-mapped."""
        if self.train_dataset is not None:
            return
        files = self._shard_files()
        n_val = int(round(self.val_fraction * len(files)))
        if self.val_fraction > 0:
            n_val = max(n_val, 1)
            if n_val >= len(files):
                raise ValueError(
                    f"val_fraction: {self.val_fraction} of {len(files)} shard(s) leaves no "
                    "training shard (the split is by shard; write more shards or use 0)"
                )
        order = np.random.default_rng(self.seed).permutation(len(files))
        val_idx = set(order[:n_val].tolist())
        self.val_shards = [f for i, f in enumerate(files) if i in val_idx]
        self.train_shards = [f for i, f in enumerate(files) if i not in val_idx]
        self.train_dataset = ShardDataset(self.train_shards, self.kind)
        self.val_dataset = ShardDataset(self.val_shards, self.kind) if self.val_shards else None
        logger.info(
            "shards: %d train (%d rows), %d validation (%d rows)",
            len(self.train_shards),
            len(self.train_dataset),
            len(self.val_shards),
            len(self.val_dataset) if self.val_dataset else 0,
        )

    @property
    def input_width(self) -> int:
        """Number of input columns (after :meth:`setup`)."""
        if self.train_dataset is None:
            raise RuntimeError("ShardDataModule: call setup() before reading input_width")
        return int(self.train_dataset.input_width)

    def _loader(self, dataset: ShardDataset, shuffle: bool) -> ResumableLoader:
        sampler = EpochShuffleBatchSampler(len(dataset), self.batch_size, self.seed, shuffle)
        return ResumableLoader(dataset, sampler, num_workers=self.num_workers)

    def train_dataloader(self) -> ResumableLoader:
        if self.train_dataset is None:
            self.setup("fit")
        assert self.train_dataset is not None
        return self._loader(self.train_dataset, shuffle=True)

    def val_dataloader(self) -> ResumableLoader | list:
        if self.train_dataset is None:
            self.setup("fit")
        if self.val_dataset is None:
            return []
        return self._loader(self.val_dataset, shuffle=False)
