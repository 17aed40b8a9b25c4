"""Networks that ship with the package (``hssm_torch/networks/<model>_<kind>.onnx``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from hssm_torch.onnx_loader import ONNXModule, load_onnx

__all__ = ["NETWORK_KINDS", "available_networks", "load_network", "network_path"]

#: Network kinds: likelihood (LAN), choice probability (CPN), omission probability (OPN).
NETWORK_KINDS: tuple[str, ...] = ("cpn", "lan", "opn")

NETWORKS_DIR = Path(__file__).resolve().parent / "networks"


def available_networks(directory: str | Path | None = None) -> list[tuple[str, str]]:
    """``(model, kind)`` pairs of the networks present (ONNX file and JSON sidecar).

    Examples
    --------
    >>> ("ddm", "lan") in available_networks()  # doctest: +SKIP
    True
    """
    folder = Path(directory) if directory is not None else NETWORKS_DIR
    found = []
    for onnx_file in sorted(folder.glob("*.onnx")):
        model, sep, kind = onnx_file.stem.rpartition("_")
        if sep and kind in NETWORK_KINDS and onnx_file.with_suffix(".json").is_file():
            found.append((model, kind))
    return found


def network_path(model: str, kind: str = "lan", directory: str | Path | None = None) -> Path:
    """Path of the shipped network file; raises ``ValueError`` listing what exists.

    Examples
    --------
    >>> network_path("ddm", "lan").name  # doctest: +SKIP
    'ddm_lan.onnx'
    """
    if kind not in NETWORK_KINDS:
        raise ValueError(f"kind: expected one of {list(NETWORK_KINDS)}, got {kind!r}")
    folder = Path(directory) if directory is not None else NETWORKS_DIR
    path = folder / f"{model}_{kind}.onnx"
    if not path.is_file() or not path.with_suffix(".json").is_file():
        have = ", ".join(f"{m}/{k}" for m, k in available_networks(folder)) or "none"
        missing = path.name if not path.is_file() else path.with_suffix(".json").name
        raise ValueError(
            f"model/kind: no shipped network {model!r}/{kind!r} ({missing} not found in "
            f"{folder}); available: {have}"
        )
    return path


def load_network(
    model: str,
    kind: str = "lan",
    device: torch.device | str | None = None,
    *,
    directory: str | Path | None = None,
) -> ONNXModule:
    """Load a network that ships with the package as a torch module.

    Parameters
    ----------
    model : str
        Registry model name, e.g. ``"ddm"``.
    kind : str
        ``"lan"`` (input ``[θ..., rt, response]`` -> log-likelihood), ``"cpn"``
        (``[θ...]`` -> log P(choice)) or ``"opn"`` (``[θ..., deadline]`` -> log P(omission)).
    device : torch.device or str, optional
        Where to put the weights.
    directory : str or Path, optional
        Another folder laid out the same way (default: ``hssm_torch/networks``).

    Returns
    -------
    ONNXModule
        The network, with its sidecar (a dict) as the attribute ``info``. When the sidecar
        lists ``param_names``, the input width is checked against it.

    Raises
    ------
    ValueError
        If the network is missing (the message lists the available ones) or its width
        does not match its sidecar.

    Examples
    --------
    >>> net = load_network("ddm", "lan")  # doctest: +SKIP
    >>> net(torch.tensor([[0.5, 1.0, 0.5, 0.3, 1.2, 1.0]])).shape  # doctest: +SKIP
    torch.Size([1, 1])
    """
    path = network_path(model, kind, directory)
    info: dict[str, Any] = json.loads(path.with_suffix(".json").read_text())
    expected = None
    names = info.get("param_names")
    if isinstance(names, list):
        expected = len(names) + {"lan": 2, "cpn": 0, "opn": 1}[kind]
    net = load_onnx(path, device=device, expected_inputs=expected)
    net.info = info
    return net
