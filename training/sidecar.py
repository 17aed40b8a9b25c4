"""JSON sidecar files that describe a network file (model, inputs, box, config, figures)."""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["read_sidecar", "sidecar_path", "write_sidecar"]


def sidecar_path(network_path: str | Path) -> Path:
    """The sidecar of ``<name>.onnx`` is ``<name>.json`` in the same folder.

    Examples
    --------
    >>> sidecar_path("nets/ddm_lan.onnx").name
    'ddm_lan.json'
    """
    return Path(network_path).with_suffix(".json")


def _plain(value: Any, key: str) -> Any:
    """Convert numpy/torch scalars and arrays, tuples and Paths to JSON types."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{key}[{i}]") for i, v in enumerate(value)]
    if hasattr(value, "detach") and hasattr(value, "tolist"):  # torch tensor
        return _plain(value.detach().cpu().tolist(), key)
    if isinstance(value, np.ndarray):
        return _plain(value.tolist(), key)
    if isinstance(value, np.generic):
        return _plain(value.item(), key)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{key}: sidecar values must be finite numbers, got {value!r}")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{key}: cannot write a {type(value).__name__} to a JSON sidecar")


def write_sidecar(path: str | Path, **info: Any) -> Path:
    """Write ``info`` as a JSON sidecar (temporary name, then rename).

    Parameters
    ----------
    path : str or Path
        The sidecar file, or the network file (``.onnx``) whose sidecar (``.json``) to write.
    **info
        What to record; conventional keys: ``model``, ``kind`` (lan/cpn/opn),
        ``param_names`` (input order), ``training_box`` (``{name: [lower, upper]}``),
        ``data_config``, ``training_config``, ``validation`` (figures). Values may be numpy
        or torch scalars/arrays, tuples and Paths; non-finite floats are refused.

    Returns
    -------
    Path
        The sidecar written.

    Examples
    --------
    >>> write_sidecar("ddm_lan.onnx", model="ddm", kind="lan",
    ...               param_names=["v", "a", "z", "t"])  # doctest: +SKIP
    PosixPath('ddm_lan.json')
    """
    target = Path(path)
    if target.suffix == ".onnx":
        target = sidecar_path(target)
    if not info:
        raise ValueError("info: nothing to write (pass keyword arguments such as model=...)")
    payload = {k: _plain(v, k) for k, v in info.items()}
    text = json.dumps(payload, indent=2, sort_keys=True, allow_nan=False) + "\n"
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return target


def read_sidecar(path: str | Path) -> dict[str, Any]:
    """Read a sidecar (``.json``, or the ``.onnx`` it belongs to).

    Examples
    --------
    >>> read_sidecar("ddm_lan.onnx")["model"]  # doctest: +SKIP
    'ddm'
    """
    target = Path(path)
    if target.suffix == ".onnx":
        target = sidecar_path(target)
    if not target.is_file():
        raise FileNotFoundError(f"path: sidecar {str(target)!r} does not exist")
    return json.loads(target.read_text())
