"""Shipped-network lookup: loading by (model, kind), sidecar width check, clear errors."""

from __future__ import annotations

import json

import pytest
import torch

from hssm_torch.network_registry import available_networks, load_network, network_path
from training.export import export_onnx
from training.mlp import build_mlp


def _ship(folder, model, kind, width, param_names):
    export_onnx(build_mlp(width, hidden=(8,)), folder / f"{model}_{kind}.onnx")
    (folder / f"{model}_{kind}.json").write_text(json.dumps({"param_names": param_names}))


def test_load_network_from_folder(tmp_path):
    _ship(tmp_path, "ddm", "lan", 6, ["v", "a", "z", "t"])
    _ship(tmp_path, "ddm", "cpn", 4, ["v", "a", "z", "t"])
    assert available_networks(tmp_path) == [("ddm", "cpn"), ("ddm", "lan")]
    net = load_network("ddm", "lan", directory=tmp_path)
    assert net(torch.zeros(3, 6)).shape == (3, 1)
    assert net.info["param_names"] == ["v", "a", "z", "t"]


def test_missing_network_lists_available(tmp_path):
    _ship(tmp_path, "ddm", "lan", 6, ["v", "a", "z", "t"])
    with pytest.raises(ValueError, match=r"'angle'/'lan'.*available: ddm/lan"):
        load_network("angle", "lan", directory=tmp_path)
    with pytest.raises(ValueError, match="kind: expected one of"):
        network_path("ddm", "lam", directory=tmp_path)


def test_sidecar_width_mismatch(tmp_path):
    _ship(tmp_path, "ddm", "opn", 6, ["v", "a", "z", "t"])  # an OPN of ddm takes 5 columns
    with pytest.raises(ValueError, match="input width is 6, expected_inputs is 5"):
        load_network("ddm", "opn", directory=tmp_path)


def test_onnx_without_sidecar_is_not_available(tmp_path):
    export_onnx(build_mlp(6, hidden=(4,)), tmp_path / "ddm_lan.onnx")
    assert available_networks(tmp_path) == []
    with pytest.raises(ValueError, match="ddm_lan.json not found"):
        load_network("ddm", "lan", directory=tmp_path)
