"""Write trained networks as ONNX files that HSSM and :func:`hssm_torch.load_onnx` read.

The graph is written node by node with ``onnx.helper`` from the module's layers (no
``torch.onnx`` tracing), so its content is fixed and documented:

- one input ``"input"`` of shape ``(1, D)`` (HSSM's single-trial contract; ``(batch, D)``
  with ``dynamic_batch=True``) and one output ``"output"`` of shape ``(1, 1)``/``(batch, 1)``;
- ``Gemm`` (``transB=1``, initializers ``layers.<i>.weight``/``layers.<i>.bias`` as in
  HSSM's files) and elementwise activations (``Tanh``, ``Relu``, ``Sigmoid``, ``Softplus``);
- for CPN/OPN heads (:class:`training.modules.LogSigmoidHead`) the bounded logit
  ``b * tanh(x / b)`` (``Gemm``, ``Tanh``, ``Gemm`` with 1x1 weights) and the log-sigmoid
  ``-log(1 + exp(-x))`` (``Neg``, ``Exp``, ``Add``, ``Log`` and one ``Constant``), the ops of
  HSSM's own CPN/OPN files.

Exportable modules: an ``nn.Sequential`` of ``Linear`` and those activations (what
:func:`training.mlp.build_mlp` returns), a ``LogSigmoidHead`` around one, or a LAN/CPN/OPN
Lightning module (its ``export_head()`` is written).
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from training.modules import LogSigmoidHead

__all__ = ["DEFAULT_OPSET", "check_onnx", "export_onnx"]

logger = logging.getLogger(__name__)

#: Opset of the exported graphs (the same as HSSM's published networks).
DEFAULT_OPSET = 17
#: IR version of the exported files (the same as HSSM's published networks; readable by
#: onnxruntime >= 1.10).
IR_VERSION = 8

_ACTIVATION_OPS: dict[type[torch.nn.Module], str] = {
    torch.nn.ReLU: "Relu",
    torch.nn.Sigmoid: "Sigmoid",
    torch.nn.Tanh: "Tanh",
}


def _resolve(module: torch.nn.Module) -> torch.nn.Module:
    head = getattr(module, "export_head", None)
    return head() if callable(head) else module


def _sequential_nodes(
    seq: torch.nn.Sequential, x: str, nodes: list, inits: list
) -> tuple[str, int, int]:
    """Append nodes for ``seq``; return (output name, input width, output width)."""
    if not isinstance(seq, torch.nn.Sequential):
        raise TypeError(
            f"module: expected an nn.Sequential of Linear and activation layers, got "
            f"{type(seq).__name__}"
        )
    in_width = out_width = None
    for i, layer in enumerate(seq):
        y = f"/layers.{i}/output"
        if isinstance(layer, torch.nn.Linear):
            w = layer.weight.detach().cpu().to(torch.float32).numpy()
            inits.append(numpy_helper.from_array(w, f"layers.{i}.weight"))
            inputs = [x, f"layers.{i}.weight"]
            if layer.bias is not None:
                b = layer.bias.detach().cpu().to(torch.float32).numpy()
                inits.append(numpy_helper.from_array(b, f"layers.{i}.bias"))
                inputs.append(f"layers.{i}.bias")
            nodes.append(
                helper.make_node(
                    "Gemm", inputs, [y], name=f"/layers.{i}/Gemm", alpha=1.0, beta=1.0, transB=1
                )
            )
            in_width = layer.in_features if in_width is None else in_width
            out_width = layer.out_features
        elif type(layer) in _ACTIVATION_OPS:
            op = _ACTIVATION_OPS[type(layer)]
            nodes.append(helper.make_node(op, [x], [y], name=f"/layers.{i}/{op}"))
        elif isinstance(layer, torch.nn.Softplus):
            if layer.beta != 1.0:
                raise TypeError(f"module: Softplus layer {i} has beta={layer.beta}; only 1 exports")
            nodes.append(helper.make_node("Softplus", [x], [y], name=f"/layers.{i}/Softplus"))
        elif isinstance(layer, torch.nn.Identity):
            continue
        else:
            raise TypeError(
                f"module: layer {i} ({type(layer).__name__}) cannot be exported; supported: "
                "Linear, Tanh, ReLU, Sigmoid, Softplus(beta=1), Identity"
            )
        x = y
    if in_width is None or out_width is None:
        raise TypeError("module: the network has no Linear layer")
    return x, in_width, out_width


def _log_sigmoid_nodes(x: str, bound: float, nodes: list, inits: list) -> str:
    """-log(1 + exp(-b * tanh(x / b))): Gemm, Tanh, Gemm, Neg, Exp, Add, Log, Neg."""

    def node(op: str, inputs: list[str], name: str, **attrs: float) -> str:
        out = f"/head/{name}"
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    inv = np.array([[1.0 / bound]], dtype=np.float32)
    scale = np.array([[bound]], dtype=np.float32)
    inits.append(numpy_helper.from_array(inv, "head.inverse_bound"))
    inits.append(numpy_helper.from_array(scale, "head.bound"))
    nodes.append(
        helper.make_node(
            "Constant",
            [],
            ["/head/one"],
            name="/head/one",
            value=numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one"),
        )
    )
    scaled = node("Gemm", [x, "head.inverse_bound"], "scale_down", alpha=1.0, beta=1.0)
    squashed = node("Tanh", [scaled], "tanh")
    logit = node("Gemm", [squashed, "head.bound"], "bounded_logit", alpha=1.0, beta=1.0)
    neg = node("Neg", [logit], "neg_logit")
    e = node("Exp", [neg], "exp")
    one_plus = node("Add", [e, "/head/one"], "one_plus_exp")
    log = node("Log", [one_plus], "log")
    return node("Neg", [log], "log_sigmoid")


def _build_model(module: torch.nn.Module, dynamic_batch: bool, opset: int) -> onnx.ModelProto:
    nodes: list = []
    inits: list = []
    if isinstance(module, LogSigmoidHead):
        logits, width, out_width = _sequential_nodes(module.net, "input", nodes, inits)
        out = _log_sigmoid_nodes(logits, module.bound, nodes, inits)
    else:
        out, width, out_width = _sequential_nodes(module, "input", nodes, inits)
    assert out == nodes[-1].output[0]  # the last node computes the result; rename it
    nodes[-1].output[0] = "output"
    batch: int | str = "batch" if dynamic_batch else 1
    graph = helper.make_graph(
        nodes,
        "hssm_torch_network",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, width])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch, out_width])],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name="hssm-torch",
    )
    model.ir_version = IR_VERSION
    return model


def _outputs(
    module: torch.nn.Module,
    path: str | Path,
    inputs: torch.Tensor | None,
    n_rows: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(onnxruntime output, torch output) on the check inputs."""
    import onnxruntime as ort

    net = _resolve(module)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    width = int(inp.shape[1])
    if inputs is None:
        gen = torch.Generator().manual_seed(seed)
        inputs = torch.randn(n_rows, width, generator=gen)
    x = inputs.detach().cpu().to(torch.float32)
    if x.dim() != 2 or x.shape[1] != width:
        raise ValueError(f"inputs: expected shape (N, {width}), got {tuple(x.shape)}")
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            params = list(net.parameters())
            device = params[0].device if params else torch.device("cpu")
            dtype = params[0].dtype if params else torch.float32
            expected = net(x.to(device=device, dtype=dtype)).cpu().to(torch.float32).numpy()
    finally:
        net.train(was_training)
    xs = x.numpy()
    if inp.shape[0] == 1:  # single-trial graph: one row at a time
        got = np.concatenate(
            [session.run(None, {inp.name: xs[i : i + 1]})[0] for i in range(len(xs))]
        )
    else:
        got = session.run(None, {inp.name: xs})[0]
    return got, expected


def check_onnx(
    module: torch.nn.Module,
    path: str | Path,
    inputs: torch.Tensor | None = None,
    *,
    n_rows: int = 256,
    seed: int = 0,
) -> float:
    """Maximum absolute difference between a torch module and its ONNX file (onnxruntime).

    Parameters
    ----------
    module : torch.nn.Module
        The module (or LAN/CPN/OPN Lightning module, whose ``export_head()`` is used).
    path : str or Path
        The ONNX file.
    inputs : torch.Tensor, optional
        Rows ``(N, D)`` to compare on; default ``n_rows`` standard-normal rows (seeded).
    n_rows, seed : int
        Size and seed of the default inputs.

    Returns
    -------
    float
        ``max |torch - onnxruntime|`` over all rows (float32 evaluation on CPU).

    Examples
    --------
    >>> check_onnx(net, "ddm_lan.onnx")  # doctest: +SKIP
    2.4e-07
    """
    got, expected = _outputs(module, path, inputs, n_rows, seed)
    return float(np.max(np.abs(got - expected)))


def export_onnx(
    module: torch.nn.Module,
    path: str | Path,
    *,
    dynamic_batch: bool = False,
    opset: int = DEFAULT_OPSET,
    check: bool = True,
    atol: float = 1e-5,
    rtol: float = 1e-5,
    check_inputs: torch.Tensor | None = None,
) -> Path:
    """Export a network as an ONNX file, checked with ``onnx.checker`` and onnxruntime.

    Parameters
    ----------
    module : torch.nn.Module
        A LAN/CPN/OPN Lightning module (its ``export_head()`` is written), an
        ``nn.Sequential`` from :func:`training.mlp.build_mlp`, or a ``LogSigmoidHead``.
    path : str or Path
        Destination ``.onnx`` file. It is written to a temporary name in the same folder and
        renamed once every check has passed; on failure nothing is left behind.
    dynamic_batch : bool
        ``False`` (default): HSSM's single-trial input ``(1, D)``. ``True``: ``(batch, D)``.
    opset : int
        ONNX opset (default 17, as HSSM's networks).
    check : bool
        Run ``onnx.checker.check_model`` and compare torch with onnxruntime.
    atol, rtol : float
        Every output must satisfy ``|onnxruntime - torch| <= atol + rtol * |torch|`` (float32
        sums in another order differ by a few ulps, ~2e-6 at |value| = 16); the maximum
        absolute difference is logged.
    check_inputs : torch.Tensor, optional
        Rows to compare on (e.g. points of the training box); default 256 standard-normal rows.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    TypeError
        If the module holds a layer that cannot be exported.
    ValueError
        If the onnxruntime output differs from torch by more than ``atol``.

    Examples
    --------
    >>> from training.mlp import build_mlp
    >>> export_onnx(build_mlp(6, hidden=(8,)), "net.onnx")  # doctest: +SKIP
    PosixPath('net.onnx')
    """
    if not isinstance(opset, int) or opset < 13:
        raise ValueError(f"opset: expected an int >= 13, got {opset!r}")
    if not atol >= 0:
        raise ValueError(f"atol: expected >= 0, got {atol!r}")
    if not rtol >= 0:
        raise ValueError(f"rtol: expected >= 0, got {rtol!r}")
    path = Path(path)
    if not path.parent.is_dir():
        raise ValueError(f"path: folder {str(path.parent)!r} does not exist")
    net = _resolve(module)
    model = _build_model(net, dynamic_batch, opset)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        onnx.save(model, str(tmp))
        if check:
            onnx.checker.check_model(str(tmp), full_check=True)
            got, expected = _outputs(net, tmp, check_inputs, 256, 0)
            err = np.abs(got - expected)
            diff = float(err.max())
            logger.info("ONNX export %s: max |torch - onnxruntime| = %.3g", path, diff)
            if not np.all(err <= atol + rtol * np.abs(expected)):
                raise ValueError(
                    f"ONNX export {path}: onnxruntime differs from torch by up to {diff:.3g} "
                    f"(tolerance atol={atol} + rtol={rtol} * |value|)"
                )
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
