"""FLOPs of an ONNX graph at a concrete input shape, counted node by node from the file.

The bench prices a front end against this machine's float32 matmul rate (the FLOP bound); for
the speech-embedding front end the work is whatever its two ONNX graphs contain, so it is read
from them rather than written down by hand.

What is counted (FLOPs, a multiply-add being 2):

- **dense** (the work a matmul-speed bound is about): ``Conv`` (grouped and depthwise too) as
  ``2 x output elements x (input channels / group) x kernel elements``, read off the weight
  ``[M, C/group, k...]``; ``MatMul`` as ``2 x output elements x K`` (batch and broadcast dims
  included, K the shared dimension); ``Gemm`` likewise (``transA`` honoured). The mel graph's
  STFT is two such ``Conv`` nodes (real and imaginary, 257 filters of 512 taps, stride 160) and
  its mel filterbank a ``MatMul``: a dense DFT, counted as the graph runs it, not as an FFT's
  ``5 N log2 N``.
- **elementwise** (reported separately): one FLOP per output element of arithmetic and
  activation ops (``Add``, ``Mul``, ``Pow``, ``Log``, ``LeakyRelu``, ``Clip``, ``Max``...; a
  transcendental counts 1 like an add, a variadic ``Max``/``Min``/``Sum`` ``inputs - 1``),
  pooling as kernel elements per output element, reductions as one per input element, and the
  bias add of ``Conv``/``Gemm`` as one per output element (under ``Conv bias``/``Gemm bias``).

Not counted: data movement (``Reshape``, ``Transpose``, ``Unsqueeze``, ``Cast``, ``Identity``,
``Constant``...: zero FLOPs, though not zero time) and any op type this module does not know,
which lands in :attr:`GraphFlops.uncounted` by name so a caller sees what was left out. A dense
op whose shapes shape inference cannot resolve raises rather than being counted as zero.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import onnx
from onnx import shape_inference

DENSE_OPS = frozenset({"Conv", "MatMul", "Gemm"})
ELEMENTWISE_OPS = frozenset(
    {
        "Add",
        "Sub",
        "Mul",
        "Div",
        "Pow",
        "Sqrt",
        "Reciprocal",
        "Neg",
        "Abs",
        "Exp",
        "Log",
        "Erf",
        "Tanh",
        "Sigmoid",
        "Relu",
        "LeakyRelu",
        "PRelu",
        "Elu",
        "Selu",
        "HardSigmoid",
        "Softplus",
        "Clip",
        "Floor",
        "Ceil",
        "Round",
        "Where",
        "Less",
        "Greater",
        "Equal",
    }
)
VARIADIC_OPS = frozenset({"Max", "Min", "Sum", "Mean"})
POOL_OPS = frozenset({"MaxPool", "AveragePool", "LpPool"})
REDUCE_OPS = frozenset(
    {"ReduceMax", "ReduceMin", "ReduceSum", "ReduceMean", "ReduceProd", "ReduceL2", "ReduceL1"}
)
MOVE_OPS = frozenset(
    {
        "Reshape",
        "Transpose",
        "Unsqueeze",
        "Squeeze",
        "Flatten",
        "Cast",
        "Identity",
        "Constant",
        "Shape",
        "Concat",
        "Slice",
        "Gather",
        "Split",
        "Expand",
        "Pad",
    }
)
"""Zero FLOPs: they move or relabel data."""

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class GraphFlops:
    """FLOPs of one run of a graph, per op type, split into dense and elementwise work."""

    dense: dict[str, float] = field(default_factory=dict)
    elementwise: dict[str, float] = field(default_factory=dict)
    uncounted: dict[str, int] = field(default_factory=dict)
    """Op type -> nodes of it that no FLOPs were counted for (unknown op types)."""

    @property
    def dense_total(self) -> float:
        return sum(self.dense.values())

    @property
    def elementwise_total(self) -> float:
        return sum(self.elementwise.values())

    @property
    def total(self) -> float:
        return self.dense_total + self.elementwise_total

    def scaled(self, factor: float) -> GraphFlops:
        """The counts of ``factor`` runs (e.g. per window -> per clip)."""
        return GraphFlops(
            {k: v * factor for k, v in self.dense.items()},
            {k: v * factor for k, v in self.elementwise.items()},
            dict(self.uncounted),
        )

    def __add__(self, other: GraphFlops) -> GraphFlops:
        def merged(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, float]:
            return {k: a.get(k, 0) + b.get(k, 0) for k in {**a, **b}}

        return GraphFlops(
            merged(self.dense, other.dense),
            merged(self.elementwise, other.elementwise),
            {k: int(v) for k, v in merged(self.uncounted, other.uncounted).items()},
        )

    def as_dict(self) -> dict:
        return {
            "dense": dict(sorted(self.dense.items())),
            "elementwise": dict(sorted(self.elementwise.items())),
            "uncounted": dict(sorted(self.uncounted.items())),
            "dense_total": self.dense_total,
            "elementwise_total": self.elementwise_total,
            "total": self.total,
        }


def _with_input_shapes(
    model: onnx.ModelProto, input_shapes: Mapping[str, Sequence[int]]
) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    inputs = {i.name: i for i in out.graph.input}
    unknown = set(input_shapes) - set(inputs)
    if unknown:
        raise ValueError(f"no graph input named {sorted(unknown)} (inputs: {sorted(inputs)})")
    for name, shape in input_shapes.items():
        dims = inputs[name].type.tensor_type.shape.dim
        if len(dims) != len(shape):
            raise ValueError(f"input {name!r} has rank {len(dims)}, got shape {tuple(shape)}")
        for dim, size in zip(dims, shape, strict=True):
            dim.Clear()
            dim.dim_value = int(size)
    del out.graph.value_info[:]  # stale shapes of the symbolic run must not survive
    return out


def _shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...] | None]:
    """Every tensor's shape after inference; ``None`` where a dim stayed unknown."""
    graph = model.graph
    shapes: dict[str, tuple[int, ...] | None] = {
        init.name: tuple(init.dims) for init in graph.initializer
    }
    for value in [*graph.input, *graph.value_info, *graph.output]:
        tensor = value.type.tensor_type
        if not tensor.HasField("shape"):
            continue
        dims = tensor.shape.dim
        known = all(d.HasField("dim_value") for d in dims)
        shapes[value.name] = tuple(d.dim_value for d in dims) if known else None
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    shapes[node.output[0]] = tuple(attr.t.dims)
    return shapes


def _attr(node: onnx.NodeProto, name: str, default: object) -> object:
    for attr in node.attribute:
        if attr.name == name:
            return onnx.helper.get_attribute_value(attr)
    return default


def count_flops(
    model: onnx.ModelProto | PathLike, input_shapes: Mapping[str, Sequence[int]]
) -> GraphFlops:
    """FLOPs of one run of ``model`` (a proto or a path) on inputs of ``input_shapes``
    (``name -> shape``, every symbolic dim made concrete), per op type; see the module
    docstring for what is and is not counted."""
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(os.fspath(model))
    inferred = shape_inference.infer_shapes(
        _with_input_shapes(model, input_shapes), strict_mode=True, data_prop=True
    )
    shapes = _shapes(inferred)

    def shape(name: str, node: onnx.NodeProto) -> tuple[int, ...]:
        found = shapes.get(name)
        if found is None:
            raise ValueError(
                f"shape of {name!r} ({node.op_type} node {node.name!r}) is unknown after shape "
                "inference: give every input a concrete shape"
            )
        return found

    dense: dict[str, float] = {}
    elementwise: dict[str, float] = {}
    uncounted: dict[str, int] = {}

    def add(bucket: dict[str, float], key: str, flops: float) -> None:
        bucket[key] = bucket.get(key, 0.0) + float(flops)

    for node in inferred.graph.node:
        op = node.op_type
        if op in MOVE_OPS:
            continue
        counted = op in DENSE_OPS | ELEMENTWISE_OPS | VARIADIC_OPS | POOL_OPS
        out_elems = math.prod(shape(node.output[0], node)) if counted else 0
        if op == "Conv":
            weight = shape(node.input[1], node)  # [M, C/group, k...]
            add(dense, op, 2 * out_elems * math.prod(weight[1:]))
            if len(node.input) > 2 and node.input[2]:
                add(elementwise, "Conv bias", out_elems)
        elif op == "MatMul":
            k = shape(node.input[0], node)[-1]
            add(dense, op, 2 * out_elems * k)
        elif op == "Gemm":
            a = shape(node.input[0], node)
            k = a[0] if _attr(node, "transA", 0) else a[1]
            add(dense, op, 2 * out_elems * k)
            if len(node.input) > 2 and node.input[2]:
                add(elementwise, "Gemm bias", out_elems)
        elif op in ELEMENTWISE_OPS:
            add(elementwise, op, out_elems)
        elif op in VARIADIC_OPS:
            add(elementwise, op, out_elems * max(1, len(node.input) - 1))
        elif op in POOL_OPS:
            kernel = _attr(node, "kernel_shape", None)
            if not isinstance(kernel, list):
                raise ValueError(f"{op} node {node.name!r} has no kernel_shape")
            add(elementwise, op, out_elems * math.prod(kernel))
        elif op in REDUCE_OPS:
            add(elementwise, op, math.prod(shape(node.input[0], node)))
        else:
            uncounted[op] = uncounted.get(op, 0) + 1
    return GraphFlops(dense, elementwise, uncounted)
