"""The dataset manifest (``manifest.json``): build, merge from shard records, validate.

A dataset folder holds ``manifest.json`` and shards ``shard-NNNNN.npz`` with their records
``shard-NNNNN.json``. The manifest carries the model, the generator config and its
fingerprint, the seed, array names/dtypes/shapes, the package version and one entry per
complete shard (file, sha256, counts, filter statistics). Jobs of a multirun update it
under a file lock; ``merge`` rebuilds it from the shard records whenever needed.

Command line (one command after a multirun, or at any time)::

    python -m simulators.training_data merge DIR     # rebuild from records, validate
    python -m simulators.training_data validate DIR  # validate only

Both exit with status 1 and list the problems when the dataset is incomplete or damaged.

Example
-------
>>> import tempfile
>>> validate_dataset(tempfile.mkdtemp()).ok
False
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from simulators.training_data.shards import (
    SHARD_ARRAYS,
    atomic_write_text,
    read_record,
    read_shard,
    shard_path,
    verify_shard,
)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "ValidationReport",
    "config_fingerprint",
    "main",
    "manifest_lock",
    "merge_manifest",
    "package_version",
    "read_manifest",
    "validate_dataset",
    "write_manifest",
]

logger = logging.getLogger(__name__)

FORMAT = "hssm-torch-training-data"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def package_version() -> str:
    """Installed version of ``hssm-torch`` (``"unknown"`` when not installed)."""
    try:
        return metadata.version("hssm-torch")
    except metadata.PackageNotFoundError:
        return "unknown"


def config_fingerprint(generator_config: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of the content-defining generator config."""
    text = json.dumps(generator_config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@contextlib.contextmanager
def manifest_lock(folder: str | Path) -> Iterator[None]:
    """Exclusive lock on ``folder/.manifest.lock`` (``fcntl.flock``; no-op where unavailable)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        yield
        return
    with open(Path(folder) / ".manifest.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_manifest(folder: str | Path) -> dict[str, Any] | None:
    """The manifest of ``folder`` or ``None`` when there is none.

    ``ValueError`` naming the file when it exists but is not a valid manifest.
    """
    p = Path(folder) / MANIFEST
    if not p.is_file():
        return None
    try:
        man = json.loads(p.read_text())
    except ValueError as err:
        raise ValueError(f"{p}: not valid JSON ({err})") from None
    if not isinstance(man, dict) or man.get("format") != FORMAT:
        raise ValueError(f"{p}: not a {FORMAT} manifest (key 'format' differs)")
    return man


def _array_layout(n_params: int, n_choices: int, n_rows: int) -> dict[str, dict[str, Any]]:
    m = "n_theta"
    return {
        "lan_inputs": {"dtype": "float32", "shape": [f"{m}*{n_rows}", n_params + 2]},
        "lan_targets": {"dtype": "float32", "shape": [f"{m}*{n_rows}"]},
        "cpn_inputs": {"dtype": "float32", "shape": [m, n_params]},
        "cpn_targets": {"dtype": "float32", "shape": [m, n_choices]},
        "opn_inputs": {"dtype": "float32", "shape": [m, n_params + 1]},
        "opn_targets": {"dtype": "float32", "shape": [m]},
        "theta": {"dtype": "float32", "shape": [m, n_params]},
    }


def write_manifest(
    folder: str | Path, header: dict[str, Any], records: list[dict[str, Any]]
) -> dict[str, Any]:
    """Write ``manifest.json`` from a header (model, config, ...) and shard records.

    ``header`` needs ``model``, ``param_names``, ``choices``, ``generator_config``,
    ``fingerprint``; ``n_shards``, ``n_training_rows`` and ``seed`` are read from the
    generator config. Returns the manifest written.
    """
    gc = header["generator_config"]
    records = sorted(records, key=lambda r: r["index"])
    done = {r["index"] for r in records}
    totals: dict[str, int] = {
        "n_theta": 0,
        "n_lan_rows": 0,
        "n_drawn": 0,
        "n_rejected": 0,
        "n_floored_labels": 0,
    }
    reasons: dict[str, int] = {}
    for r in records:
        totals["n_theta"] += int(r.get("n_theta", 0))
        totals["n_lan_rows"] += int(r.get("shapes", {}).get("lan_targets", [0])[0])
        flt = r.get("filters", {})
        totals["n_drawn"] += int(flt.get("n_drawn", 0))
        totals["n_rejected"] += int(flt.get("n_rejected", 0))
        totals["n_floored_labels"] += int(r.get("n_floored_labels", 0))
        for k, v in flt.get("rejected_by_reason", {}).items():
            reasons[k] = reasons.get(k, 0) + int(v)
    totals["rejected_by_reason"] = reasons  # type: ignore[assignment]
    man = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": package_version(),
        "model": header["model"],
        "param_names": list(header["param_names"]),
        "choices": list(header["choices"]),
        "seed": gc["seed"],
        "n_shards": gc["n_shards"],
        "generator_config": gc,
        "fingerprint": header["fingerprint"],
        "arrays": _array_layout(
            len(header["param_names"]), len(header["choices"]), gc["n_training_rows"]
        ),
        "complete": len(done) == gc["n_shards"],
        "missing_shards": [i for i in range(gc["n_shards"]) if i not in done],
        "totals": totals,
        "shards": records,
    }
    atomic_write_text(Path(folder) / MANIFEST, json.dumps(man, indent=1, sort_keys=False))
    return man


def _header(man: dict[str, Any]) -> dict[str, Any]:
    return {
        k: man[k] for k in ("model", "param_names", "choices", "generator_config", "fingerprint")
    }


def merge_manifest(folder: str | Path) -> dict[str, Any]:
    """Rebuild ``manifest.json`` from the intact shard records found in ``folder``.

    Shards whose file or checksum does not match their record are left out with a
    ``logging.warning`` (rerun the generator to regenerate them).
    """
    folder = Path(folder)
    man = read_manifest(folder)
    if man is None:
        raise ValueError(f"output_dir: {str(folder)!r} has no {MANIFEST} to merge into")
    records = []
    for i in range(int(man["n_shards"])):
        why = verify_shard(folder, i, man["fingerprint"])
        if why is None:
            records.append(read_record(folder, i))
        elif why != "missing":
            logger.warning("shard %d of %s left out: %s", i, folder, why)
    with manifest_lock(folder):
        return write_manifest(folder, _header(man), records)  # type: ignore[arg-type]


@dataclass
class ValidationReport:
    """Outcome of :func:`validate_dataset`: ``ok`` and a list of ``problems``."""

    folder: str
    problems: list[str] = field(default_factory=list)
    n_shards_ok: int = 0
    n_theta: int = 0

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def summary(self) -> str:
        """One paragraph for humans."""
        head = f"{self.folder}: {self.n_shards_ok} intact shard(s), {self.n_theta} parameter sets"
        if self.ok:
            return head + "; dataset is complete and valid"
        return head + "\n" + "\n".join(f"  - {p}" for p in self.problems)


def validate_dataset(folder: str | Path, *, check_arrays: bool = True) -> ValidationReport:
    """Check a dataset folder: manifest, every shard's checksum, completeness, array
    names/dtypes/shapes, finite values, θ inside the generator's box and no θ repeated
    across shards.

    Example
    -------
    >>> import tempfile
    >>> validate_dataset(tempfile.mkdtemp()).problems[0].endswith("has no manifest.json")
    True
    """
    folder = Path(folder)
    rep = ValidationReport(str(folder))
    try:
        man = read_manifest(folder)
    except ValueError as err:
        rep.problems.append(str(err))
        return rep
    if man is None:
        rep.problems.append(f"{folder} has no {MANIFEST}")
        return rep
    gc = man["generator_config"]
    P, C, R = len(man["param_names"]), len(man["choices"]), int(gc["n_training_rows"])
    lower = np.asarray(gc["bounds"]["lower"], np.float32)
    upper = np.asarray(gc["bounds"]["upper"], np.float32)
    listed = {int(r["index"]): r for r in man.get("shards", [])}
    seen: dict[bytes, int] = {}
    for i in range(int(man["n_shards"])):
        why = verify_shard(folder, i, man["fingerprint"])
        if why is not None:
            rep.problems.append(f"shard {i}: {why}")
            continue
        if i not in listed:
            rep.problems.append(f"shard {i}: intact but not in {MANIFEST} (run `merge`)")
        elif listed[i].get("sha256") != read_record(folder, i).get("sha256"):  # type: ignore[union-attr]
            rep.problems.append(f"shard {i}: {MANIFEST} lists another checksum (run `merge`)")
        rep.n_shards_ok += 1
        if not check_arrays:
            continue
        try:
            arr = read_shard(shard_path(folder, i))
        except ValueError as err:
            rep.problems.append(str(err))
            continue
        m = arr["theta"].shape[0]
        rep.n_theta += m
        want = {
            "lan_inputs": (m * R, P + 2),
            "lan_targets": (m * R,),
            "cpn_inputs": (m, P),
            "cpn_targets": (m, C),
            "opn_inputs": (m, P + 1),
            "opn_targets": (m,),
            "theta": (m, P),
        }
        for k in SHARD_ARRAYS:
            a = arr[k]
            if a.dtype != np.float32 or a.shape != want[k]:
                rep.problems.append(
                    f"shard {i}: {k} is {a.dtype}{list(a.shape)}, expected float32{list(want[k])}"
                )
            elif not np.isfinite(a).all():
                rep.problems.append(f"shard {i}: {k} holds non-finite values")
        th = arr["theta"]
        if th.shape[1:] == (P,) and ((th < lower) | (th > upper)).any():
            rep.problems.append(f"shard {i}: theta outside the generator's bounds")
        for row in th:
            key = row.tobytes()
            if key in seen:
                rep.problems.append(f"shard {i}: a theta row repeats one of shard {seen[key]}")
                break
            seen[key] = i
    return rep


def main(argv: list[str] | None = None) -> int:
    """Command line: ``merge DIR`` or ``validate DIR`` (exit status 1 on problems)."""
    ap = argparse.ArgumentParser(
        prog="python -m simulators.training_data",
        description="Merge shard records into manifest.json and/or validate a training dataset.",
    )
    ap.add_argument("command", choices=["merge", "validate"])
    ap.add_argument("folder", help="dataset folder (the generator's output_dir)")
    ap.add_argument("--no-arrays", action="store_true", help="skip reading the arrays")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        if args.command == "merge":
            man = merge_manifest(args.folder)
            print(
                f"merged {len(man['shards'])} of {man['n_shards']} shard(s) into "
                f"{Path(args.folder) / MANIFEST}"
            )
        rep = validate_dataset(args.folder, check_arrays=not args.no_arrays)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(rep.summary())
    return 0 if rep.ok else 1
