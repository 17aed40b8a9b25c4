"""The one multilayer-perceptron builder used by every network (LAN, CPN, OPN)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["ACTIVATIONS", "build_mlp"]

#: Activation names accepted by :func:`build_mlp` (all exportable as a single ONNX op).
ACTIVATIONS: dict[str, type[torch.nn.Module]] = {
    "relu": torch.nn.ReLU,
    "sigmoid": torch.nn.Sigmoid,
    "softplus": torch.nn.Softplus,
    "tanh": torch.nn.Tanh,
}


def build_mlp(
    in_features: int,
    hidden: Sequence[int] = (100, 100, 100),
    activation: str = "tanh",
    out_features: int = 1,
) -> torch.nn.Sequential:
    """Build ``Linear -> activation -> ... -> Linear`` as an ``nn.Sequential``.

    The output layer is linear (no activation): LANs regress a log-likelihood, CPNs and
    OPNs output logits. Layer indices follow the HSSM networks' layout
    (``0: Linear, 1: act, 2: Linear, ...``).

    Parameters
    ----------
    in_features : int
        Input width (``P + 2`` for a LAN, ``P`` for a CPN, ``P + 1`` for an OPN).
    hidden : sequence of int
        Hidden layer widths; may be empty (a single linear layer).
    activation : str
        One of ``"relu"``, ``"sigmoid"``, ``"softplus"``, ``"tanh"``.
    out_features : int
        Output width (1 for every network of this project).

    Returns
    -------
    torch.nn.Sequential

    Examples
    --------
    >>> net = build_mlp(6)
    >>> net(torch.zeros(4, 6)).shape
    torch.Size([4, 1])
    """
    if isinstance(in_features, bool) or not isinstance(in_features, int) or in_features < 1:
        raise ValueError(f"in_features: expected a positive int, got {in_features!r}")
    if isinstance(out_features, bool) or not isinstance(out_features, int) or out_features < 1:
        raise ValueError(f"out_features: expected a positive int, got {out_features!r}")
    widths = list(hidden)
    for w in widths:
        if isinstance(w, bool) or not isinstance(w, int) or w < 1:
            raise ValueError(f"hidden: expected positive ints, got {list(hidden)!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)}, got {activation!r}")
    layers: list[torch.nn.Module] = []
    width = in_features
    for w in widths:
        layers.append(torch.nn.Linear(width, w))
        layers.append(ACTIVATIONS[activation]())
        width = w
    layers.append(torch.nn.Linear(width, out_features))
    return torch.nn.Sequential(*layers)
