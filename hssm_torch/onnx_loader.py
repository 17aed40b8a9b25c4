"""Convert an ONNX multilayer-perceptron graph into a batched, differentiable torch module.

The converter reads the graph with the ``onnx`` package only (no onnxruntime, no
onnx2torch) and evaluates its nodes with torch operations, so the resulting module runs
on any device torch supports and gradients flow from the output back to the input.

Supported operators (default ONNX domain, any opset the ``onnx`` package reads):

``Abs Add Cast Constant Div Elu Exp Flatten Gemm Identity LeakyRelu Log LogSoftmax MatMul
Mul Neg Pow Relu Reshape Sigmoid Softmax Softplus Sqrt Squeeze Sub Tanh Unsqueeze``

Batching: networks exported for HSSM declare a single-trial input of shape ``(1, D)``.
The module accepts any number of rows ``(N, D)``: the leading axis is treated as the batch
axis, and a ``Reshape`` whose constant target shape starts with the declared batch size
(usually 1) keeps the actual batch size in that position instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

__all__ = ["ONNXModule", "SUPPORTED_OPS", "load_onnx", "network_dtype"]

logger = logging.getLogger(__name__)

#: ONNX operator types the loader converts.
SUPPORTED_OPS: tuple[str, ...] = (
    "Abs",
    "Add",
    "Cast",
    "Constant",
    "Div",
    "Elu",
    "Exp",
    "Flatten",
    "Gemm",
    "Identity",
    "LeakyRelu",
    "Log",
    "LogSoftmax",
    "MatMul",
    "Mul",
    "Neg",
    "Pow",
    "Relu",
    "Reshape",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Tanh",
    "Unsqueeze",
)

_ONNX_FLOAT_TYPES = {
    onnx.TensorProto.FLOAT: torch.float32,
    onnx.TensorProto.DOUBLE: torch.float64,
    onnx.TensorProto.FLOAT16: torch.float16,
    onnx.TensorProto.BFLOAT16: torch.bfloat16,
}
_ONNX_INT_TYPES = {
    onnx.TensorProto.INT64: torch.int64,
    onnx.TensorProto.INT32: torch.int32,
}


@dataclass(frozen=True)
class _Step:
    """One converted node: a callable of the node's input tensors and its output names."""

    op_type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    fn: Callable[..., torch.Tensor]


def _node_label(node: onnx.NodeProto, index: int) -> str:
    return f"{node.op_type} node {node.name or '#' + str(index)!r}"


def _attrs(node: onnx.NodeProto) -> dict[str, object]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _identity(x: torch.Tensor, *_: object) -> torch.Tensor:
    return x


_UNARY: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "Abs": torch.abs,
    "Exp": torch.exp,
    "Identity": _identity,
    "Log": torch.log,
    "Neg": torch.neg,
    "Relu": torch.relu,
    "Sigmoid": torch.sigmoid,
    "Softplus": F.softplus,
    "Sqrt": torch.sqrt,
    "Tanh": torch.tanh,
}
_BINARY: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "Add": torch.add,
    "Div": torch.div,
    "MatMul": torch.matmul,
    "Mul": torch.mul,
    "Pow": torch.pow,
    "Sub": torch.sub,
}


def _gemm(
    a: torch.Tensor,
    b: torch.Tensor,
    c: torch.Tensor | None = None,
    *,
    alpha: float,
    beta: float,
    trans_a: int,
    trans_b: int,
) -> torch.Tensor:
    if trans_a:
        a = a.transpose(0, 1)
    if trans_b and alpha == 1.0 and (c is None or (beta == 1.0 and c.dim() <= 1)):
        return F.linear(a, b, c)  # the layout torch exports: y = a @ b.T + c
    y = a @ (b.transpose(0, 1) if trans_b else b)
    if alpha != 1.0:
        y = alpha * y
    if c is not None:
        y = y + (beta * c if beta != 1.0 else c)
    return y


def _softmax(x: torch.Tensor, *, dim: int, log: bool) -> torch.Tensor:
    return torch.log_softmax(x, dim=dim) if log else torch.softmax(x, dim=dim)


def _cast(x: torch.Tensor, *, dtype: torch.dtype) -> torch.Tensor:
    return x.to(dtype)


def _flatten(x: torch.Tensor, *, axis: int) -> torch.Tensor:
    ax = axis if axis >= 0 else axis + x.dim()
    lead = int(np.prod(x.shape[:ax])) if ax > 0 else 1
    return x.reshape(lead, -1)


def _reshape(
    x: torch.Tensor,
    *_: object,
    shape: tuple[int, ...],
    allowzero: int,
    declared_batch: int | None,
) -> torch.Tensor:
    target = list(shape)
    for i, s in enumerate(target):
        if s == 0 and not allowzero:
            target[i] = x.shape[i]
    # A graph exported for a fixed batch (1, D) bakes that batch size into its reshape
    # constants; keep the actual batch size in the leading position.
    if (
        declared_batch is not None
        and x.dim() >= 1
        and target
        and target[0] == declared_batch
        and x.shape[0] != declared_batch
        and -1 not in target[1:]
    ):
        target[0] = x.shape[0]
    return x.reshape(target)


def _squeeze(x: torch.Tensor, *_: object, axes: tuple[int, ...], where: str) -> torch.Tensor:
    dims = axes or tuple(i for i, s in enumerate(x.shape) if s == 1)
    dims = tuple(sorted((d if d >= 0 else d + x.dim()) for d in dims))
    for d in dims:
        if x.shape[d] != 1:
            raise ValueError(
                f"{where} squeezes axis {d} of size {x.shape[d]} (input shape "
                f"{tuple(x.shape)}); only size-1 axes can be squeezed (the graph may assume "
                "a batch of 1)"
            )
    for d in reversed(dims):
        x = x.squeeze(d)
    return x


def _unsqueeze(x: torch.Tensor, *_: object, axes: tuple[int, ...]) -> torch.Tensor:
    rank = x.dim() + len(axes)
    for d in sorted(a if a >= 0 else a + rank for a in axes):
        x = x.unsqueeze(d)
    return x


class ONNXModule(torch.nn.Module):
    """A torch module that evaluates a converted ONNX graph.

    Built by :func:`load_onnx`; not meant to be constructed directly. Floating-point
    initializers and constants are registered as buffers, so ``.to(device)``,
    ``.double()`` and ``.float()`` move and convert them. Gradients flow to the input.

    Attributes
    ----------
    input_width : int or None
        Number of input columns declared by the graph (or implied by its first layer).
    input_name, output_name : str
        Names of the graph's input and output.
    source : str
        The file the module was read from (or ``"<ModelProto>"``).
    chunk_size : int or None
        When set, inputs with more rows are evaluated in chunks of this many rows (same
        results; keeps the hidden activations in cache, about 2-3x faster on CPU for 10^5
        rows of a 3 x 100 network). ``None``: the whole batch at once.
    """

    def __init__(
        self,
        model: onnx.ModelProto,
        *,
        source: str = "<ModelProto>",
        chunk_size: int | None = None,
    ) -> None:
        super().__init__()
        if chunk_size is not None and (isinstance(chunk_size, bool) or chunk_size < 1):
            raise ValueError(f"chunk_size: expected a positive int or None, got {chunk_size!r}")
        graph = model.graph
        self.source = source
        self.chunk_size = chunk_size
        opset = {o.domain: o.version for o in model.opset_import}
        self.opset = int(opset.get("", opset.get("ai.onnx", 13)))

        init_names = {t.name for t in graph.initializer}
        real_inputs = [i for i in graph.input if i.name not in init_names]
        if len(real_inputs) != 1:
            raise ValueError(
                f"ONNX file {source}: expected exactly one graph input, found "
                f"{len(real_inputs)} ({[i.name for i in real_inputs]})"
            )
        if len(graph.output) != 1:
            raise ValueError(
                f"ONNX file {source}: expected exactly one graph output, found "
                f"{len(graph.output)} ({[o.name for o in graph.output]})"
            )
        inp = real_inputs[0]
        self.input_name = inp.name
        self.output_name = graph.output[0].name
        dims = [
            d.dim_value if d.HasField("dim_value") else None for d in inp.type.tensor_type.shape.dim
        ]
        if len(dims) != 2:
            raise ValueError(
                f"ONNX file {source}: expected a 2-D input (batch, features), got shape {dims}"
            )
        self.declared_batch: int | None = dims[0]
        self._declared_width: int | None = dims[1]

        # Registered tensors (float: buffers that follow .to()/.double(); others: plain).
        self._buffer_names: dict[str, str] = {}
        self._int_constants: dict[str, torch.Tensor] = {}
        for tensor in graph.initializer:
            self._register_constant(tensor.name, numpy_helper.to_array(tensor))

        self._steps: list[_Step] = []
        available = set(init_names) | {self.input_name}
        for index, node in enumerate(graph.node):
            label = _node_label(node, index)
            if node.domain not in ("", "ai.onnx"):
                raise ValueError(
                    f"ONNX file {source}: unsupported operator {node.domain}::"
                    f"{node.op_type} in {label}; supported: {', '.join(SUPPORTED_OPS)}"
                )
            for name in node.input:
                if name and name not in available:
                    raise ValueError(
                        f"ONNX file {source}: {label} uses {name!r} before it is defined "
                        "(graph not topologically sorted or input missing)"
                    )
            if node.op_type == "Constant":
                self._register_constant(node.output[0], self._constant_value(node, label))
                available.add(node.output[0])
                continue
            fn = self._convert(node, label)
            self._steps.append(
                _Step(node.op_type, label, tuple(node.input), tuple(node.output), fn)
            )
            available.update(node.output)
        if self.output_name not in available:
            raise ValueError(
                f"ONNX file {source}: graph output {self.output_name!r} is never produced"
            )
        self.input_width = self._declared_width or self._infer_width(graph)

    # ------------------------------------------------------------------ constants
    def _register_constant(self, name: str, array: np.ndarray) -> None:
        tensor = torch.from_numpy(np.array(array, copy=True))
        if tensor.is_floating_point():
            buffer_name = f"_c{len(self._buffer_names)}"
            self.register_buffer(buffer_name, tensor)
            self._buffer_names[name] = buffer_name
        else:
            self._int_constants[name] = tensor

    def _constant_value(self, node: onnx.NodeProto, label: str) -> np.ndarray:
        attrs = _attrs(node)
        if "value" in attrs:
            return numpy_helper.to_array(attrs["value"])  # type: ignore[arg-type]
        if "value_float" in attrs:
            return np.array(attrs["value_float"], dtype=np.float32)
        if "value_floats" in attrs:
            return np.array(attrs["value_floats"], dtype=np.float32)
        if "value_int" in attrs:
            return np.array(attrs["value_int"], dtype=np.int64)
        if "value_ints" in attrs:
            return np.array(attrs["value_ints"], dtype=np.int64)
        raise ValueError(
            f"ONNX file {self.source}: {label} has an unsupported constant attribute "
            f"{sorted(attrs)}; supported: value, value_float(s), value_int(s)"
        )

    def _static_ints(self, name: str, label: str, what: str) -> tuple[int, ...]:
        if name not in self._int_constants:
            raise ValueError(
                f"ONNX file {self.source}: {label} needs a constant integer {what} "
                f"(initializer or Constant), but {name!r} is computed at run time"
            )
        return tuple(int(v) for v in self._int_constants[name].reshape(-1).tolist())

    def _infer_width(self, graph: onnx.GraphProto) -> int | None:
        for step in self._steps:
            if step.op_type in ("Gemm", "MatMul") and step.inputs[0] == self.input_name:
                weight = self._buffer_names.get(step.inputs[1])
                if weight is None:
                    return None
                node = next(n for n in graph.node if tuple(n.output) == step.outputs)
                trans_b = int(_attrs(node).get("transB", 0)) if step.op_type == "Gemm" else 0
                shape = getattr(self, weight).shape
                return int(shape[1] if trans_b else shape[0])
        return None

    # ------------------------------------------------------------------ conversion
    def _convert(self, node: onnx.NodeProto, label: str) -> Callable[..., torch.Tensor]:
        """A picklable callable (torch function or ``functools.partial``) for one node."""
        op = node.op_type
        attrs = _attrs(node)
        if op in _UNARY:
            return _UNARY[op]
        if op in _BINARY:
            return _BINARY[op]
        if op == "Gemm":
            return partial(
                _gemm,
                alpha=float(attrs.get("alpha", 1.0)),  # type: ignore[arg-type]
                beta=float(attrs.get("beta", 1.0)),  # type: ignore[arg-type]
                trans_a=int(attrs.get("transA", 0)),  # type: ignore[arg-type]
                trans_b=int(attrs.get("transB", 0)),  # type: ignore[arg-type]
            )
        if op == "LeakyRelu":
            return partial(F.leaky_relu, negative_slope=float(attrs.get("alpha", 0.01)))  # type: ignore[arg-type]
        if op == "Elu":
            return partial(F.elu, alpha=float(attrs.get("alpha", 1.0)))  # type: ignore[arg-type]
        if op in ("Softmax", "LogSoftmax"):
            axis = int(attrs.get("axis", -1 if self.opset >= 13 else 1))  # type: ignore[arg-type]
            if self.opset < 13:
                # Before opset 13 the op flattened to 2-D at `axis`; for the 2-D tensors of
                # an MLP with axis 1 that is a softmax over the last axis.
                axis = -1
            return partial(_softmax, dim=axis, log=op == "LogSoftmax")
        if op == "Cast":
            to = int(attrs["to"])  # type: ignore[arg-type]
            dtype = _ONNX_FLOAT_TYPES.get(to) or _ONNX_INT_TYPES.get(to)
            if dtype is None:
                raise ValueError(
                    f"ONNX file {self.source}: {label} casts to unsupported ONNX type {to}"
                )
            return partial(_cast, dtype=dtype)
        if op == "Flatten":
            return partial(_flatten, axis=int(attrs.get("axis", 1)))  # type: ignore[arg-type]
        if op == "Reshape":
            return partial(
                _reshape,
                shape=self._static_ints(node.input[1], label, "target shape"),
                allowzero=int(attrs.get("allowzero", 0)),  # type: ignore[arg-type]
                declared_batch=self.declared_batch,
            )
        if op in ("Squeeze", "Unsqueeze"):
            if "axes" in attrs:
                axes = tuple(int(a) for a in attrs["axes"])  # type: ignore[union-attr]
            elif len(node.input) > 1 and node.input[1]:
                axes = self._static_ints(node.input[1], label, "axes")
            else:
                axes = ()
            if op == "Squeeze":
                return partial(_squeeze, axes=axes, where=f"ONNX file {self.source}: {label}")
            return partial(_unsqueeze, axes=axes)
        raise ValueError(
            f"ONNX file {self.source}: unsupported operator {op!r} in {label}; "
            f"supported: {', '.join(SUPPORTED_OPS)}"
        )

    # ------------------------------------------------------------------ evaluation
    @property
    def dtype(self) -> torch.dtype:
        """Floating-point dtype of the network's weights."""
        for buf in self.buffers():
            return buf.dtype
        return torch.get_default_dtype()

    def _lookup(self, env: dict[str, torch.Tensor], name: str) -> torch.Tensor:
        if name in env:
            return env[name]
        if name in self._buffer_names:
            return getattr(self, self._buffer_names[name])
        constant = self._int_constants[name]
        return constant

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Evaluate the network on a batch of rows.

        Parameters
        ----------
        x : torch.Tensor
            Input of shape ``(N, D)`` with the network's floating dtype.

        Returns
        -------
        torch.Tensor
            The graph's output, shape ``(N, 1)`` for the MLP networks of this project and HSSM.
        """
        if x.dim() != 2:
            raise ValueError(
                f"input x: expected a 2-D tensor (N, {self.input_width}), got shape "
                f"{tuple(x.shape)}"
            )
        if self.input_width is not None and x.shape[1] != self.input_width:
            raise ValueError(
                f"input x: expected {self.input_width} columns (network {self.source}), "
                f"got {x.shape[1]}"
            )
        if x.dtype != self.dtype:
            raise TypeError(
                f"input x: dtype {x.dtype} does not match the network's dtype "
                f"{self.dtype}; cast the input or convert the module (.double()/.float())"
            )
        if self.chunk_size is not None and x.shape[0] > self.chunk_size:
            return torch.cat([self._run(part) for part in x.split(self.chunk_size)])
        return self._run(x)

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        env: dict[str, torch.Tensor] = {self.input_name: x}
        for step in self._steps:
            args = [self._lookup(env, n) if n else None for n in step.inputs]
            result = step.fn(*args)
            env[step.outputs[0]] = result
        return self._lookup(env, self.output_name)

    def extra_repr(self) -> str:
        ops = ", ".join(s.op_type for s in self._steps)
        return f"source={self.source!r}, input_width={self.input_width}, ops=[{ops}]"


def load_onnx(
    path: str | Path | onnx.ModelProto,
    device: torch.device | str | None = None,
    *,
    expected_inputs: int | None = None,
    chunk_size: int | None = None,
) -> ONNXModule:
    """Load an ONNX network file as a batched, differentiable torch module.

    Parameters
    ----------
    path : str, Path or onnx.ModelProto
        The ``.onnx`` file (or an already loaded model).
    device : torch.device or str, optional
        Device for the weights (default: CPU). The module is float32 unless the file holds
        another float type; ``.double()`` converts it.
    expected_inputs : int, optional
        Expected number of input columns (e.g. ``P + 2`` for a LAN of a P-parameter model);
        a network of another width raises ``ValueError`` naming both widths.
    chunk_size : int, optional
        Evaluate large inputs in chunks of this many rows (see :class:`ONNXModule`);
        default: the whole batch at once.

    Returns
    -------
    ONNXModule
        Maps ``(N, D)`` inputs to the graph output, ``(N, 1)`` for MLP networks.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        For unsupported operators (naming the operator and node), graphs with more than one
        input or output, or a width other than ``expected_inputs``.

    Examples
    --------
    >>> net = load_onnx("ddm_lan.onnx", expected_inputs=6)  # doctest: +SKIP
    >>> net(torch.tensor([[0.5, 1.0, 0.5, 0.3, 1.2, 1.0]])).shape  # doctest: +SKIP
    torch.Size([1, 1])
    """
    if isinstance(path, onnx.ModelProto):
        model, source = path, "<ModelProto>"
    else:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"path: ONNX file {str(p)!r} does not exist")
        model, source = onnx.load(str(p)), str(p)
    module = ONNXModule(model, source=source, chunk_size=chunk_size)
    if expected_inputs is not None and module.input_width != expected_inputs:
        raise ValueError(
            f"ONNX file {source}: network input width is {module.input_width}, "
            f"expected_inputs is {expected_inputs}"
        )
    logger.debug("loaded %s", module.extra_repr())
    return module.to(device) if device is not None else module


def network_dtype(net: torch.nn.Module, default: torch.dtype = torch.float32) -> torch.dtype:
    """Floating dtype of a network's weights (``default`` when it has none).

    The fitting code evaluates a network in this dtype whatever the model's dtype, casting
    inputs to it and outputs back.

    Example
    -------
    >>> import torch
    >>> network_dtype(torch.nn.Linear(2, 1).double())
    torch.float64
    >>> network_dtype(torch.nn.Tanh(), default=torch.float64)
    torch.float64
    """
    for t in (*net.parameters(), *net.buffers()):
        if t.is_floating_point():
            return t.dtype
    return default
