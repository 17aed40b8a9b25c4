"""ONNX -> torch loader: agreement with onnxruntime, batching, gradients, errors."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from hssm_torch.onnx_loader import SUPPORTED_OPS, load_onnx

HSSM_NETWORKS = {
    # file: (input width, single-trial graph)
    "ddm_lan.onnx": (6, True),
    "angle_lan.onnx": (7, True),
    "ddm_cpn.onnx": (4, True),
    "ddm_opn.onnx": (5, True),
    "race_no_bias_3_lan.onnx": (8, True),
    "race_no_bias_3_lan_batch.onnx": (8, False),
}
# float32 agreement: 1e-5 absolute, and 1e-5 relative for |values| > 1 (outputs reach ~20
# log units, where one float32 ulp is ~2e-6 and the two libraries sum in different orders).
ATOL = RTOL = 1e-5


def _ort(path, x: np.ndarray, single_trial: bool) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    if single_trial:
        return np.concatenate([session.run(None, {name: x[i : i + 1]})[0] for i in range(len(x))])
    return session.run(None, {name: x})[0]


def _box_rows(model_file: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Points inside the networks' training boxes (ddm box; extras uniform)."""
    v = rng.uniform(-3, 3, n)
    a = rng.uniform(0.3, 2.5, n)
    z = rng.uniform(0.1, 0.9, n)
    t = rng.uniform(0.0, 2.0, n)
    rt = t + rng.uniform(0.0, 5.0, n)
    resp = rng.choice([-1.0, 1.0], n)
    if model_file.startswith("ddm_lan"):
        cols = [v, a, z, t, rt, resp]
    elif model_file.startswith("angle"):
        cols = [v, a, z, t, rng.uniform(-0.1, 1.3, n), rt, resp]
    elif model_file.startswith("ddm_cpn"):
        cols = [v, a, z, t]
    elif model_file.startswith("ddm_opn"):
        cols = [v, a, z, t, t + rng.uniform(0.0, 5.0, n)]
    else:  # race_no_bias_3: v0 v1 v2 a z t rt response(0..2)
        cols = [
            rng.uniform(0, 2.5, n),
            rng.uniform(0, 2.5, n),
            rng.uniform(0, 2.5, n),
            rng.uniform(1.0, 3.0, n),
            rng.uniform(0.1, 0.9, n),
            t,
            rt,
            rng.choice([0.0, 1.0, 2.0], n),
        ]
    return np.column_stack(cols).astype(np.float32)


@pytest.mark.reference
@pytest.mark.parametrize("name", sorted(HSSM_NETWORKS))
def test_hssm_networks_match_onnxruntime(reference_dir, name):
    width, single = HSSM_NETWORKS[name]
    path = reference_dir / "hssm_networks" / name
    net = load_onnx(path, expected_inputs=width)
    x = _box_rows(name, 500, np.random.default_rng(1))
    expected = _ort(path, x, single)
    got = net(torch.from_numpy(x)).detach().numpy()
    assert got.shape == (500, 1)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, expected, atol=ATOL, rtol=RTOL)


@pytest.mark.reference
def test_cpn_reference_outputs_log_probability_of_lower_response(reference_dir):
    # Pins the meaning our CPNModule copies: HSSM's ddm_cpn gives log P(response = -1).
    net = load_onnx(reference_dir / "hssm_networks" / "ddm_cpn.onnx")
    x = torch.tensor([[2.0, 1.0, 0.5, 0.3], [-2.0, 1.0, 0.5, 0.3]])
    p = net(x).exp().squeeze(-1)
    # analytical P(lower) = 0.018 and 0.982 for these two parameter sets
    assert p[0] < 0.1 and p[1] > 0.9


@pytest.mark.reference
def test_gradients_flow_to_inputs(reference_dir):
    net = load_onnx(reference_dir / "hssm_networks" / "ddm_lan.onnx")
    x = torch.from_numpy(_box_rows("ddm_lan", 64, np.random.default_rng(2))).requires_grad_()
    net(x).sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape
    assert torch.isfinite(x.grad).all() and (x.grad.abs().sum(0) > 0).all()
    # the autograd gradient matches a central finite difference in float64
    net64 = net.double()
    x64 = x.detach().double()[:4].requires_grad_()
    net64(x64).sum().backward()
    eps = 1e-6
    fd = torch.empty(4, 6, dtype=torch.float64)
    for j in range(6):
        step = torch.zeros_like(x64)
        step[:, j] = eps
        fd[:, j] = ((net64(x64 + step) - net64(x64 - step)) / (2 * eps)).squeeze(-1)
    torch.testing.assert_close(x64.grad, fd.detach(), atol=1e-5, rtol=1e-5)


@pytest.mark.reference
def test_double_and_dtype_checks(reference_dir):
    net = load_onnx(reference_dir / "hssm_networks" / "ddm_lan.onnx")
    x = torch.from_numpy(_box_rows("ddm_lan", 16, np.random.default_rng(3)))
    y32 = net(x)
    with pytest.raises(TypeError, match="dtype"):
        net(x.double())
    y64 = net.double()(x.double())
    assert y64.dtype == torch.float64
    torch.testing.assert_close(y64.float(), y32, atol=1e-4, rtol=1e-5)


@pytest.mark.reference
def test_width_mismatch_errors(reference_dir):
    path = reference_dir / "hssm_networks" / "ddm_lan.onnx"
    with pytest.raises(ValueError, match=r"input width is 6, expected_inputs is 7"):
        load_onnx(path, expected_inputs=7)
    net = load_onnx(path)
    with pytest.raises(ValueError, match=r"expected 6 columns.*got 5"):
        net(torch.zeros(3, 5))


def test_missing_file_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_onnx(tmp_path / "nope.onnx")


def _model(nodes, inits, in_shape, out_shape, opset=17, in_type=TensorProto.FLOAT):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", in_type, in_shape)],
        [helper.make_tensor_value_info("y", in_type, out_shape)],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def test_unsupported_op_error_names_op_and_node():
    w = numpy_helper.from_array(np.ones((3, 2), np.float32), "w")
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
        helper.make_node("Erf", ["h"], ["y"], name="my_erf"),
    ]
    model = _model(nodes, [w], [1, 3], [1, 2])
    with pytest.raises(ValueError, match=r"unsupported operator 'Erf' in Erf node 'my_erf'"):
        load_onnx(model)


def _random_graph(rng, batch):
    """A graph using every elementwise/structural op the loader supports."""
    d, h = 5, 7
    f = np.float32
    inits = [
        numpy_helper.from_array(rng.normal(size=(h, d)).astype(f), "w1"),  # Gemm transB=1
        numpy_helper.from_array(rng.normal(size=(h,)).astype(f), "b1"),
        numpy_helper.from_array(rng.normal(size=(d, h)).astype(f), "w1t"),  # Gemm transA/B=0
        numpy_helper.from_array(rng.normal(size=(h, 3)).astype(f), "w2"),  # MatMul
        numpy_helper.from_array(np.array([batch if batch else -1, 3], np.int64), "shape"),
        numpy_helper.from_array(np.array([1], np.int64), "axes"),
        numpy_helper.from_array(rng.normal(size=(1, 3)).astype(f), "w3"),
        numpy_helper.from_array(rng.normal(size=(1,)).astype(f), "b3"),
    ]
    n = helper.make_node
    nodes = [
        n("Gemm", ["x", "w1", "b1"], ["g1"], alpha=0.7, beta=1.3, transB=1),
        n("Gemm", ["x", "w1t"], ["g2"], alpha=1.1),
        n("Add", ["g1", "g2"], ["a1"]),
        n("Tanh", ["a1"], ["t1"]),
        n("Constant", [], ["c"], value=numpy_helper.from_array(np.array(0.5, f), "c")),
        n("Mul", ["t1", "c"], ["m1"]),
        n("Sigmoid", ["a1"], ["s1"]),
        n("Sub", ["m1", "s1"], ["s2"]),
        n("Relu", ["s2"], ["r1"]),
        n("Softplus", ["a1"], ["sp"]),
        n("Div", ["r1", "sp"], ["d1"]),
        n("Exp", ["d1"], ["e1"]),
        n("Log", ["sp"], ["l1"]),
        n("Neg", ["l1"], ["n1"]),
        n("Add", ["e1", "n1"], ["a2"]),
        n("Identity", ["a2"], ["i1"]),
        n("MatMul", ["i1", "w2"], ["mm"]),
        n("Reshape", ["mm", "shape"], ["rs"]),
        n("Unsqueeze", ["rs", "axes"], ["us"]),
        n("Squeeze", ["us", "axes"], ["sq"]),
        n("Flatten", ["sq"], ["fl"], axis=1),
        n("Gemm", ["fl", "w3", "b3"], ["y"], transB=1),
    ]
    return _model(nodes, inits, [batch if batch else "N", d], [batch if batch else "N", 1])


@pytest.mark.parametrize("static", [True, False])
def test_all_core_ops_match_onnxruntime(tmp_path, static):
    rng = np.random.default_rng(4)
    model = _random_graph(rng, 1 if static else None)
    path = tmp_path / "g.onnx"
    onnx.save(model, str(path))
    x = rng.normal(size=(40, 5)).astype(np.float32)
    expected = _ort(path, x, single_trial=static)
    net = load_onnx(path)
    got = net(torch.from_numpy(x)).detach().numpy()
    assert got.shape == (40, 1)
    np.testing.assert_allclose(got, expected, atol=ATOL, rtol=RTOL)
    used = {node.op_type for node in model.graph.node}
    assert used <= set(SUPPORTED_OPS)


def test_squeeze_of_batch_axis_is_refused_for_several_rows():
    n = helper.make_node
    axes = numpy_helper.from_array(np.array([0], np.int64), "axes")
    model = _model(
        [n("Squeeze", ["x", "axes"], ["s"]), n("Unsqueeze", ["s", "axes"], ["y"])],
        [axes],
        [1, 3],
        [1, 3],
    )
    net = load_onnx(model)
    assert net(torch.ones(1, 3)).shape == (1, 3)
    with pytest.raises(ValueError, match="squeezes axis 0 of size 4"):
        net(torch.ones(4, 3))


@pytest.mark.gpu
@pytest.mark.reference
def test_runs_on_cuda(reference_dir):
    path = reference_dir / "hssm_networks" / "ddm_lan.onnx"
    x = torch.from_numpy(_box_rows("ddm_lan", 256, np.random.default_rng(5)))
    cpu = load_onnx(path)(x)
    gpu = load_onnx(path, device="cuda")(x.cuda())
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=1e-5)


@pytest.mark.reference
def test_chunked_evaluation_matches_whole_batch(reference_dir):
    path = reference_dir / "hssm_networks" / "ddm_lan.onnx"
    x = torch.from_numpy(_box_rows("ddm_lan", 1000, np.random.default_rng(6))).requires_grad_()
    whole = load_onnx(path)(x)
    chunked = load_onnx(path, chunk_size=128)(x)
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=1e-5)
    (g,) = torch.autograd.grad(chunked.sum(), x)
    (g_whole,) = torch.autograd.grad(whole.sum(), x)
    torch.testing.assert_close(g, g_whole, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="chunk_size"):
        load_onnx(path, chunk_size=0)


@pytest.mark.reference
def test_module_pickles_and_deep_copies(reference_dir):
    # Multi-process samplers pickle the model; the converted network must survive that.
    import copy
    import pickle

    net = load_onnx(reference_dir / "hssm_networks" / "ddm_lan.onnx", chunk_size=64)
    x = torch.from_numpy(_box_rows("ddm_lan", 100, np.random.default_rng(7)))
    for clone in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):
        torch.testing.assert_close(clone(x), net(x), atol=0, rtol=0)
