"""Save and load fitted models: a folder with JSON specification, data CSV and netcdf traces.

Layout of a saved model folder::

    spec.json     HSSM arguments (include with priors, links, formulas; model; loglik ...)
    data.csv      the data the model was built on
    traces.nc     InferenceData of the last ``sample()`` (if any)
    vi.nc         InferenceData of the last ``vi()`` (if any)

No pickles: a user likelihood callable is stored as ``"module:qualname"`` and imported
again on load; a network as the path of its ONNX file (a torch module without a file
cannot be saved).

Example
-------
>>> model.save("fit_folder")              # doctest: +SKIP
>>> same = HSSM.load("fit_folder")        # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import arviz as az
import pandas as pd
import torch

if TYPE_CHECKING:  # pragma: no cover
    from hssm_torch.model import HSSM

__all__ = ["load_model", "save_model"]

FORMAT_VERSION = 1


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _loglik_ref(model: HSSM) -> Any:
    src = model._loglik_source
    if src is not None:
        return {"onnx": str(Path(src).resolve())}
    if model._network is not None:
        if model.loglik_kind == "approx_differentiable" and model._init_kwargs.get(
            "loglik_shipped"
        ):
            return None
        source = getattr(model._network, "source", None)
        if source and Path(source).is_file():
            return {"onnx": str(Path(source).resolve())}
        raise ValueError(
            "save: the model's network is a torch module without an ONNX file; pass the .onnx "
            "path as loglik to make the model saveable"
        )
    fn = model._loglik
    user = model._init_kwargs.get("loglik_user", False)
    if not user:
        return None
    mod, qual = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not mod or "<" in qual:
        raise ValueError(
            f"save: the loglik callable {fn!r} is not importable by name (a lambda or local "
            "function); define it at module level"
        )
    return {"callable": f"{mod}:{qual}"}


def save_model(model: HSSM, path: str | Path) -> Path:
    """Write ``model`` (specification, data, traces) into folder ``path``."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    spec = dict(model._init_kwargs)
    spec.pop("loglik_user", None)
    spec.pop("loglik_shipped", None)
    spec["loglik"] = _loglik_ref(model)
    spec["device"] = None
    spec["format_version"] = FORMAT_VERSION
    text = json.dumps(spec, indent=2, default=_json_default)
    _atomic_write(folder / "spec.json", lambda tmp: Path(tmp).write_text(text))
    _atomic_write(folder / "data.csv", lambda tmp: model.data.to_csv(tmp, index=False))
    for name, idata in (("traces.nc", model.traces), ("vi.nc", model.vi_idata)):
        target = folder / name
        if idata is not None:
            _atomic_write(target, lambda tmp, d=idata: d.to_netcdf(tmp, engine="h5netcdf"))
        elif target.exists():
            target.unlink()
    return folder


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"save: cannot write {type(obj).__name__} {obj!r} to JSON")


def load_model(path: str | Path, data: pd.DataFrame | None = None) -> HSSM:
    """Rebuild a model written by :func:`save_model` (``data`` overrides ``data.csv``)."""
    from hssm_torch.model import HSSM
    from hssm_torch.param import Param

    folder = Path(path)
    spec_file = folder / "spec.json"
    if not spec_file.is_file():
        raise FileNotFoundError(f"path: {str(folder)!r} has no spec.json (not a saved model)")
    spec = json.loads(spec_file.read_text())
    if spec.pop("format_version", None) != FORMAT_VERSION:
        raise ValueError(f"path: {spec_file} has an unknown format version")
    ref = spec.pop("loglik")
    loglik = None
    if isinstance(ref, dict) and "onnx" in ref:
        loglik = ref["onnx"]
    elif isinstance(ref, dict) and "callable" in ref:
        mod, _, qual = ref["callable"].partition(":")
        obj: Any = importlib.import_module(mod)
        for part in qual.split("."):
            obj = getattr(obj, part)
        loglik = obj
    include = [Param.from_dict(d) for d in spec.pop("include") or []]
    dtype = getattr(torch, spec.pop("dtype", "float64"))
    if data is None:
        data = pd.read_csv(folder / "data.csv")
    model = HSSM(data, include=include, loglik=loglik, dtype=dtype, **spec)
    if (folder / "traces.nc").is_file():
        model.traces = az.from_netcdf(folder / "traces.nc")
    if (folder / "vi.nc").is_file():
        model.vi_idata = az.from_netcdf(folder / "vi.nc")
    return model
