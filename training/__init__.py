"""Training of likelihood approximation networks (LAN, CPN, OPN) with Lightning.

>>> from training import LANModule
>>> LANModule(6, hidden=(8,)).hparams.in_features
6
"""

from training.datamodule import ShardDataModule
from training.export import export_onnx
from training.mlp import build_mlp
from training.modules import CPNModule, LANModule, OPNModule
from training.sidecar import read_sidecar, write_sidecar

__all__ = [
    "CPNModule",
    "LANModule",
    "OPNModule",
    "ShardDataModule",
    "build_mlp",
    "export_onnx",
    "read_sidecar",
    "write_sidecar",
]
