"""Shard files: ``shard-NNNNN.npz`` (float32 arrays) plus a ``shard-NNNNN.json`` record.

A shard is written under a temporary name in the dataset folder, flushed to disk and renamed
(``os.replace``) when complete; its record (checksum, counts, seeds) is written the same way
afterwards. A shard counts as complete only when both files exist and the checksum in the
record matches the ``.npz`` bytes, so an interrupted run leaves nothing that looks complete.
Arrays are stored uncompressed (``numpy.savez``) so readers can memory-map them.

Example
-------
>>> import tempfile, numpy as np
>>> from pathlib import Path
>>> d = Path(tempfile.mkdtemp())
>>> arrays = {k: np.zeros((1, 2), np.float32) for k in SHARD_ARRAYS}
>>> rec = write_shard(d, 0, arrays, {"n_theta": 1})
>>> verify_shard(d, 0) is None
True
>>> sorted(read_shard(d / "shard-00000.npz"))[:2]
['cpn_inputs', 'cpn_targets']
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "SHARD_ARRAYS",
    "atomic_write_text",
    "read_record",
    "read_shard",
    "record_path",
    "shard_path",
    "sha256_file",
    "verify_shard",
    "write_shard",
]

#: Arrays every shard holds (all float32), see DESIGN.md.
SHARD_ARRAYS = (
    "cpn_inputs",
    "cpn_targets",
    "lan_inputs",
    "lan_targets",
    "opn_inputs",
    "opn_targets",
    "theta",
)


def shard_path(folder: str | Path, index: int) -> Path:
    """``folder/shard-NNNNN.npz``."""
    return Path(folder) / f"shard-{int(index):05d}.npz"


def record_path(folder: str | Path, index: int) -> Path:
    """``folder/shard-NNNNN.json`` (the shard's record)."""
    return Path(folder) / f"shard-{int(index):05d}.json"


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder and a rename."""
    path = Path(path)
    tmp = _tmp_name(path)
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_shard(
    folder: str | Path, index: int, arrays: dict[str, np.ndarray], record: dict[str, Any]
) -> dict[str, Any]:
    """Write shard ``index`` atomically and return its completed record.

    ``arrays`` must hold exactly :data:`SHARD_ARRAYS`; they are stored as float32. The
    record gets ``file``, ``index``, ``sha256``, ``bytes`` and ``shapes`` added.
    """
    missing = set(SHARD_ARRAYS) ^ set(arrays)
    if missing:
        raise ValueError(
            f"arrays: expected exactly {list(SHARD_ARRAYS)}, differing in {sorted(missing)}"
        )
    path = shard_path(folder, index)
    tmp = _tmp_name(path)
    with open(tmp, "wb") as fh:
        payload: dict[str, Any] = {
            k: np.ascontiguousarray(arrays[k], dtype=np.float32) for k in SHARD_ARRAYS
        }
        np.savez(fh, **payload)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    rec = dict(record)
    rec.update(
        file=path.name,
        index=int(index),
        sha256=sha256_file(path),
        bytes=path.stat().st_size,
        shapes={k: list(np.shape(arrays[k])) for k in SHARD_ARRAYS},
    )
    atomic_write_text(record_path(folder, index), json.dumps(rec, indent=1, sort_keys=True))
    return rec


def read_record(folder: str | Path, index: int) -> dict[str, Any] | None:
    """The record of shard ``index``, or ``None`` when absent or unreadable."""
    p = record_path(folder, index)
    try:
        rec = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def verify_shard(folder: str | Path, index: int, fingerprint: str | None = None) -> str | None:
    """``None`` when shard ``index`` is complete and intact, else why not (one line).

    Checks: the ``.npz`` and its record exist, the record's checksum matches the file, and
    (when given) the record's dataset ``fingerprint`` matches.
    """
    path = shard_path(folder, index)
    if not path.is_file():
        return "missing"
    rec = read_record(folder, index)
    if rec is None:
        return (
            f"{path.name} has no readable record {record_path(folder, index).name} (partial write?)"
        )
    if fingerprint is not None and rec.get("fingerprint") != fingerprint:
        return f"{path.name} belongs to another generator config (fingerprint differs)"
    digest = sha256_file(path)
    if digest != rec.get("sha256"):
        want = str(rec.get("sha256"))[:12]
        return f"{path.name}: checksum {digest[:12]}... does not match its record ({want}...)"
    return None


def read_shard(path: str | Path) -> dict[str, np.ndarray]:
    """All arrays of a shard file, loaded into memory.

    ``ValueError`` naming the file when it is not a readable shard.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f"shard {str(path)!r}: not a readable .npz file ({err})") from None
    missing = set(SHARD_ARRAYS) - set(out)
    if missing:
        raise ValueError(f"shard {str(path)!r}: arrays {sorted(missing)} are missing")
    return out
