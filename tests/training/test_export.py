"""ONNX export: HSSM contract, round trip export -> onnxruntime -> load_onnx -> torch."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from hssm_torch.onnx_loader import load_onnx
from training.export import check_onnx, export_onnx
from training.mlp import build_mlp
from training.modules import CPNModule, LANModule, OPNModule
from training.sidecar import read_sidecar, sidecar_path, write_sidecar

# The ops of HSSM's published CPN/OPN files, all in every HSSM 0.5 ONNX backend's table.
HSSM_OPS = {"Gemm", "Tanh", "Neg", "Exp", "Add", "Log", "Constant"}


def _ort(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    if inp.shape[0] == 1:
        return np.concatenate(
            [session.run(None, {inp.name: x[i : i + 1]})[0] for i in range(len(x))]
        )
    return session.run(None, {inp.name: x})[0]


@pytest.mark.parametrize("dynamic", [False, True])
@pytest.mark.parametrize("cls,width", [(LANModule, 6), (CPNModule, 4), (OPNModule, 5)])
def test_round_trip(tmp_path, cls, width, dynamic):
    module = cls(width, hidden=(32, 32, 32))
    path = export_onnx(module, tmp_path / "net.onnx", dynamic_batch=dynamic)
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    # HSSM contract: one input, one output, (1, D) unless dynamic, Gemm + elementwise ops
    assert len(model.graph.input) == 1 and len(model.graph.output) == 1
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert (dims[0].dim_param == "batch") if dynamic else (dims[0].dim_value == 1)
    assert dims[1].dim_value == width
    assert {n.op_type for n in model.graph.node} <= HSSM_OPS
    assert model.opset_import[0].version == 17

    x = (3 * torch.randn(200, width)).numpy()
    expected = module.export_head()(torch.from_numpy(x)).detach().numpy()
    via_ort = _ort(path, x)
    np.testing.assert_allclose(via_ort, expected, atol=1e-5, rtol=1e-5)
    loaded = load_onnx(path, expected_inputs=width)
    via_loader = loaded(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(via_loader, via_ort, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(via_loader, expected, atol=1e-5, rtol=1e-5)
    assert [p.name for p in tmp_path.iterdir()] == ["net.onnx"]  # nothing else written


def test_cpn_export_is_log_probability_and_finite_for_extreme_logits(tmp_path):
    cpn = CPNModule(4, hidden=(4,))
    with torch.no_grad():  # make the logit huge and negative for large first inputs
        cpn.net[2].weight.fill_(0.0)
        cpn.net[2].bias.fill_(-500.0)
    path = export_onnx(cpn, tmp_path / "cpn.onnx")
    out = _ort(path, np.zeros((2, 4), np.float32))
    # the bounded logit is -80 * tanh(500 / 80) = -79.9995...; unbounded, -log(1 + exp(500))
    # would be -inf in float32
    np.testing.assert_allclose(out, -80.0 * np.tanh(500.0 / 80.0), rtol=1e-6)


def test_check_onnx_detects_a_different_network(tmp_path):
    torch.manual_seed(1)
    net = build_mlp(6, hidden=(8,))
    path = export_onnx(net, tmp_path / "a.onnx")
    assert check_onnx(net, path) < 1e-5
    other = build_mlp(6, hidden=(8,))
    assert check_onnx(other, path) > 1e-3


def test_export_failure_leaves_nothing(tmp_path, monkeypatch):
    import training.export as export_mod

    # Simulate onnxruntime disagreeing with torch: the export must refuse and clean up.
    monkeypatch.setattr(
        export_mod, "_outputs", lambda *a, **k: (np.array([[1.5]]), np.array([[1.0]]))
    )
    with pytest.raises(ValueError, match=r"differs from torch by up to 0.5 \(tolerance"):
        export_onnx(build_mlp(6, hidden=(8,)), tmp_path / "net.onnx")
    assert list(tmp_path.iterdir()) == []


def test_unexportable_layer(tmp_path):
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.GELU(), torch.nn.Linear(4, 1))
    with pytest.raises(TypeError, match=r"layer 1 \(GELU\) cannot be exported"):
        export_onnx(net, tmp_path / "net.onnx")
    with pytest.raises(ValueError, match="folder"):
        export_onnx(build_mlp(3), tmp_path / "missing" / "net.onnx")


def test_sidecar_round_trip(tmp_path):
    onnx_path = tmp_path / "ddm_lan.onnx"
    written = write_sidecar(
        onnx_path,
        model="ddm",
        kind="lan",
        param_names=("v", "a", "z", "t"),
        training_box={"v": (-3.0, 3.0), "a": np.array([0.3, 2.5])},
        validation={"mae": np.float32(0.05), "n": np.int64(1000), "data": tmp_path},
    )
    assert written == sidecar_path(onnx_path) == tmp_path / "ddm_lan.json"
    info = read_sidecar(onnx_path)
    assert info["param_names"] == ["v", "a", "z", "t"]
    assert info["training_box"]["a"] == [0.3, 2.5]
    assert info["validation"]["n"] == 1000
    assert json.loads(written.read_text())["model"] == "ddm"
    with pytest.raises(ValueError, match="validation.mae"):
        write_sidecar(onnx_path, validation={"mae": float("nan")})
    with pytest.raises(TypeError, match="model"):
        write_sidecar(onnx_path, model=object())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddm_lan.json"]


PEER_CHECK = r"""
import sys, numpy as np, onnx, jax.numpy as jnp, pytensor, pytensor.tensor as pt
from hssm.distribution_utils.onnx_utils.onnx2jax import make_jax_func
from hssm.distribution_utils.onnx_utils.onnx2pt import pt_interpret_onnx
m = onnx.load(sys.argv[1]); x = np.load(sys.argv[2])
f = make_jax_func(m)
yj = [float(f(jnp.asarray(r))) for r in x]
X = pt.matrix("X", dtype="float32")
yp = np.asarray(pytensor.function([X], pt_interpret_onnx(m.graph, X)[0])(x)).reshape(-1)
np.save(sys.argv[3], np.stack([np.array(yj), yp]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("cls,width", [(LANModule, 6), (CPNModule, 4)])
def test_hssm_loaders_accept_exported_networks(tmp_path, cls, width):
    """HSSM 0.5's own ONNX backends (JAX via jaxonnxruntime, PyTensor) read our files."""
    import os
    import subprocess

    peer = os.environ.get("PEER_PYTHON")
    if not peer:
        pytest.skip("PEER_PYTHON (a venv with HSSM 0.5) is not set")
    module = cls(width)
    path = export_onnx(module, tmp_path / "net.onnx")
    x = (3 * torch.randn(20, width)).numpy()
    np.save(tmp_path / "x.npy", x)
    subprocess.run(
        [peer, "-c", PEER_CHECK, str(path), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
        check=True,
        capture_output=True,
        timeout=600,
        env=dict(os.environ, JAX_PLATFORMS="cpu"),
    )
    y_jax, y_pytensor = np.load(tmp_path / "y.npy")
    expected = module.export_head()(torch.from_numpy(x)).detach().numpy()[:, 0]
    np.testing.assert_allclose(y_jax, expected, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(y_pytensor, expected, atol=1e-5, rtol=1e-5)
