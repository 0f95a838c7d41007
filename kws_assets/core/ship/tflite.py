"""Full-integer int8 TensorFlow Lite export of the DS-CNN, its interpreter and its arena size.

Why this path.  The maintained PyTorch -> TFLite converters on PyPI do not install beside this
project: ``litert-torch`` 0.10 pulls ``xdsl==0.28`` (``typing-extensions<4.13``), which forces
pydantic down to 2.11, and its older releases pull a TensorFlow nightly and a second torch;
``onnx2tf`` 1.29 pins numpy 1.26, onnx 1.19, onnxruntime 1.23 and protobuf 4.25.  TensorFlow 2.21
itself installs without moving any pinned package, and its ``TFLiteConverter`` is the reference
int8 quantiser that TensorFlow Lite Micro kernels are written against.  So the DS-CNN is rebuilt
as a TensorFlow graph from the trained weights (batch norm folded into the convolutions, exactly
as the ONNX export folds it), checked against the torch model in float, and converted with a
representative dataset to a graph whose input and output are int8 and every op is a TFLite int8
builtin (PAD, CONV_2D, DEPTHWISE_CONV_2D, MEAN, FULLY_CONNECTED, RESHAPE: all in TFLM).
TensorFlow is imported only inside :func:`export_int8_tflite`; running a ``.tflite`` needs only
the small ``ai-edge-litert`` interpreter.

The graph takes ``[1, n_frames, n_mfcc]`` int8 (normalised MFCC quantised with the input scale
and zero point) and returns ``[1, n_classes]`` int8 logits (dequantise, then softmax).
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from kws_assets.core.features.mfcc import FeatureSpec
from kws_assets.core.model.networks import DSCNN
from kws_assets.core.ship.export import softmax
from kws_assets.core.tables import MFCC_COLUMN

if TYPE_CHECKING:  # LiteRT loads only when a .tflite is run
    from ai_edge_litert.interpreter import Interpreter

PathLike = str | os.PathLike[str]

FLOAT_MIRROR_TOLERANCE = 1e-3
"""Largest |TF float - torch float| logit difference, relative to the largest |logit|, that the
rebuilt graph may show before export refuses (a wrong weight layout shows up as O(1))."""
MIRROR_CHECK_ROWS = 64
ARENA_ALIGNMENT = 16
"""TFLM aligns every arena buffer to 16 bytes (``MicroArenaBufferAlignment``)."""
ARENA_HEADROOM = 1.25
TENSOR_OVERHEAD_BYTES = 64
"""Persistent bytes per tensor TFLM keeps (TfLiteEvalTensor + quantisation structs), rounded up."""
PER_CHANNEL_QUANT_BYTES = 8
"""Per output channel of a quantised conv / FC: an int32 multiplier and an int32 shift."""
ARENA_ROUND = 1024
_CHANNEL_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


class TfliteExportError(RuntimeError):
    """The TFLite export could not produce a faithful int8 model."""


@dataclass(frozen=True)
class _Layer:
    kind: str  # "conv", "depthwise" or "dense"
    weight: (
        np.ndarray
    )  # TF layout: conv [kh, kw, in, out], depthwise [kh, kw, c, 1], dense [in, out]
    bias: np.ndarray
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    relu: bool = True


TF_LOG_LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"


def _quiet_tensorflow() -> None:
    """TensorFlow's C++ runtime prints CUDA probes and converter chatter to stderr on import; the
    converter's own errors still raise.  A level the user set is kept."""
    os.environ.setdefault(TF_LOG_LEVEL_ENV, "3")


def _fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[np.ndarray, np.ndarray]:
    """Torch conv weight ``[out, in/groups, kh, kw]`` with eval batch norm folded in, + bias."""
    if bn.running_var is None or bn.running_mean is None:
        raise TfliteExportError("a batch norm without running statistics cannot be folded")
    scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().double()
    weight = conv.weight.detach().double() * scale[:, None, None, None]
    bias = bn.bias.detach().double() - bn.running_mean.detach().double() * scale
    if conv.bias is not None:
        bias = bias + conv.bias.detach().double() * scale
    return weight.numpy(), bias.numpy()


def _conv_layer(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> _Layer:
    weight, bias = _fold_conv_bn(conv, bn)
    if isinstance(conv.padding, str) or len(conv.padding) != 2 or len(conv.stride) != 2:
        raise TfliteExportError(f"conv padding {conv.padding!r} / stride {conv.stride!r}: need 2-D")
    stride = (int(conv.stride[0]), int(conv.stride[1]))
    padding = (int(conv.padding[0]), int(conv.padding[1]))
    if conv.groups == 1:
        return _Layer("conv", weight.transpose(2, 3, 1, 0), bias, stride, padding)
    if conv.groups == conv.in_channels == conv.out_channels:
        return _Layer("depthwise", weight.transpose(2, 3, 0, 1), bias, stride, padding)
    raise TfliteExportError(f"grouped convolution with groups={conv.groups} has no TFLite builtin")


def _conv_bn(stage: nn.Module) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
    """The (conv, batch norm) that open a DS-CNN stage (an ``nn.Sequential``)."""
    if not isinstance(stage, nn.Sequential) or len(stage) < 2:
        raise TfliteExportError(f"a DS-CNN stage is {type(stage).__name__}, not a Sequential")
    conv, bn = stage[0], stage[1]
    if not isinstance(conv, nn.Conv2d) or not isinstance(bn, nn.BatchNorm2d):
        raise TfliteExportError(f"a DS-CNN stage starts {type(conv).__name__}, {type(bn).__name__}")
    return conv, bn


def dscnn_layers(model: nn.Module) -> list[_Layer]:
    """The DS-CNN as folded layers in TensorFlow weight layout (stem, blocks, classifier)."""
    if not isinstance(model, DSCNN):
        raise TypeError(f"export_int8_tflite exports a DSCNN, got {type(model).__name__}")
    model = model.to("cpu").eval()
    pairs = [_conv_bn(model.stem)] + [_conv_bn(block) for block in model.blocks]
    layers = [_conv_layer(conv, bn) for conv, bn in pairs]
    dense = model.classifier
    layers.append(
        _Layer(
            "dense",
            dense.weight.detach().double().numpy().T,
            dense.bias.detach().double().numpy(),
            relu=False,
        )
    )
    return layers


def _tf_graph(layers: Sequence[_Layer], spec: FeatureSpec) -> Any:  # a tf.Module (lazy import)
    """A ``tf.Module`` whose ``serve`` runs the folded layers on ``[1, n_frames, n_mfcc]``."""
    _quiet_tensorflow()
    import tensorflow as tf

    consts = [
        (tf.constant(layer.weight, tf.float32), tf.constant(layer.bias, tf.float32))
        for layer in layers
    ]

    class _Graph(tf.Module):
        @tf.function(
            input_signature=[tf.TensorSpec([1, *spec.shape], tf.float32, name=MFCC_COLUMN)]
        )
        def serve(self, x: Any) -> Any:  # tf tensors in and out
            h = tf.reshape(x, [1, *spec.shape, 1])
            for layer, (weight, bias) in zip(layers, consts, strict=True):
                if layer.kind == "dense":
                    h = tf.reduce_mean(h, axis=[1, 2])
                    h = tf.matmul(h, weight) + bias
                    continue
                ph, pw = layer.padding
                if ph or pw:
                    h = tf.pad(h, [[0, 0], [ph, ph], [pw, pw], [0, 0]])
                strides = [1, layer.stride[0], layer.stride[1], 1]
                if layer.kind == "conv":
                    h = tf.nn.conv2d(h, weight, strides, "VALID")
                else:
                    h = tf.nn.depthwise_conv2d(h, weight, strides, "VALID")
                h = tf.nn.relu(tf.nn.bias_add(h, bias))
            return {"logits": h}

    return _Graph()


def _check_calibration(calibration: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    x = np.ascontiguousarray(calibration, dtype=np.float32)
    if x.ndim != 3 or x.shape[0] == 0 or tuple(x.shape[1:]) != tuple(spec.shape):
        raise ValueError(
            f"calibration must be normalised features [n>0, {spec.shape[0]}, "
            f"{spec.shape[1]}], got {x.shape}"
        )
    if not np.isfinite(x).all():
        raise ValueError("calibration features contain NaN or inf")
    return x


def export_int8_tflite(
    model: nn.Module, spec: FeatureSpec, calibration: np.ndarray, path: PathLike
) -> Path:
    """Write the DS-CNN as a full-integer int8 ``.tflite`` (int8 input and output), calibrated on
    the given rows of normalised MFCC ``[n, n_frames, n_mfcc]``; the file is replaced atomically.

    Raises :class:`TfliteExportError` when the rebuilt float graph disagrees with the torch model
    or the converter leaves a float input/output.
    """
    _quiet_tensorflow()
    import tensorflow as tf

    x = _check_calibration(calibration, spec)
    layers = dscnn_layers(model)
    graph = _tf_graph(layers, spec)
    serve = graph.serve.get_concrete_function()

    check = x[:MIRROR_CHECK_ROWS]
    with torch.no_grad():
        expected = model.to("cpu").eval()(torch.from_numpy(check)).numpy()
    got = np.concatenate([serve(tf.constant(row[None]))["logits"].numpy() for row in check])
    error = float(np.abs(got - expected).max() / max(float(np.abs(expected).max()), 1e-6))
    if error > FLOAT_MIRROR_TOLERANCE:
        raise TfliteExportError(
            f"the TensorFlow rebuild of the DS-CNN differs from the torch model "
            f"by {error:.2e} (relative); the layer mapping is wrong"
        )

    def representative() -> Iterator[list[np.ndarray]]:
        for row in x:
            yield [row[None]]

    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve], graph)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    flatbuffer = converter.convert()

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, staged = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(flatbuffer)
        _require_int8_io(Path(staged))
        os.replace(staged, path)
    except BaseException:
        Path(staged).unlink(missing_ok=True)
        raise
    return path


def _interpreter(path: PathLike, threads: int | None = None) -> Interpreter:
    """The LiteRT interpreter with the reference kernels (no XNNPACK delegate): the same integer
    arithmetic as TFLM's reference kernels, so host scores predict the device's."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such .tflite file")
    interpreter = Interpreter(
        model_path=str(path),
        num_threads=threads or 1,
        experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
    )
    interpreter.allocate_tensors()
    return interpreter


def _require_int8_io(path: Path) -> None:
    interpreter = _interpreter(path)
    for role, details in (
        ("input", interpreter.get_input_details()),
        ("output", interpreter.get_output_details()),
    ):
        dtypes = {np.dtype(d["dtype"]).name for d in details}
        if dtypes != {"int8"}:
            raise TfliteExportError(f"{path.name}: {role} is {sorted(dtypes)}, not int8")


class TfliteClassifier:
    """Runs an int8 ``.tflite`` DS-CNN as a device would: one window at a time, int8 in and out."""

    def __init__(self, path: PathLike, threads: int | None = None) -> None:
        self.path = Path(path)
        self._interpreter = _interpreter(self.path, threads)
        inputs, outputs = (
            self._interpreter.get_input_details(),
            self._interpreter.get_output_details(),
        )
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(f"{self.path.name}: expected one input and one output")
        self._input, self._output = inputs[0], outputs[0]
        self.input_shape = tuple(int(d) for d in self._input["shape"][1:])
        self.n_classes = int(self._output["shape"][-1])
        self.input_scale, self.input_zero_point = self._input["quantization"]
        self.output_scale, self.output_zero_point = self._output["quantization"]

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """Normalised features as the int8 the model reads (the device front end does the same)."""
        q = np.round(np.asarray(x, dtype=np.float32) / self.input_scale) + self.input_zero_point
        return np.clip(q, -128, 127).astype(np.int8)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Dequantised logits ``[n, n_classes]`` for normalised features
        ``[n, n_frames, n_mfcc]``."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 3 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"features must be [n, {self.input_shape[0]}, {self.input_shape[1]}], got {x.shape}"
            )
        out = np.empty((len(x), self.n_classes), dtype=np.float32)
        for i, row in enumerate(self.quantize_input(x)):
            self._interpreter.set_tensor(self._input["index"], row[None])
            self._interpreter.invoke()
            q = self._interpreter.get_tensor(self._output["index"])[0].astype(np.float32)
            out[i] = (q - self.output_zero_point) * self.output_scale
        return out

    def classify_features(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities ``[n, n_classes]`` (softmax of the dequantised int8 logits)."""
        return softmax(self.logits(x))


@dataclass(frozen=True)
class ArenaPlan:
    """Activation memory of a ``.tflite`` graph, planned as TFLM's greedy planner plans it.

    ``planned_bytes``: peak of the activation buffers (non-constant tensors) placed by lifetime,
    largest first, each at the lowest 16-byte-aligned offset free during its lifetime.
    ``activation_bytes``: their plain sum (an upper bound: no reuse).  ``recommended_bytes``:
    what to give ``MicroInterpreter`` as a first arena: planned + TFLM's persistent data
    (per-tensor structs, per-channel quantisation multipliers) times 1.25 for kernel scratch
    buffers (CMSIS-NN / ESP-NN), rounded up to 1 KiB.  The real figure comes from the device's
    ``MicroInterpreter::arena_used_bytes()``; shrink to it plus a little once measured.
    """

    planned_bytes: int
    activation_bytes: int
    n_tensors: int
    recommended_bytes: int


def _aligned(n: int) -> int:
    return -(-n // ARENA_ALIGNMENT) * ARENA_ALIGNMENT


def arena_plan(path: PathLike) -> ArenaPlan:
    """Plan the activation arena of a ``.tflite`` from the interpreter's ops and tensors."""
    interpreter = _interpreter(path)
    ops = interpreter._get_ops_details()
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    inputs = {d["index"] for d in interpreter.get_input_details()}
    outputs = {d["index"] for d in interpreter.get_output_details()}
    first: dict[int, int] = dict.fromkeys(inputs, 0)
    last: dict[int, int] = {}
    for step, op in enumerate(ops):
        for t in op["outputs"]:
            first.setdefault(int(t), step)
        for t in op["inputs"]:
            if int(t) in first:
                last[int(t)] = step
    for t in outputs:
        last[t] = len(ops)
    sizes = {
        t: _aligned(int(np.prod(tensors[t]["shape"])) * np.dtype(tensors[t]["dtype"]).itemsize)
        for t in first
    }
    placed: list[tuple[int, int, int, int]] = []  # offset, size, first, last
    peak = 0
    for t in sorted(first, key=lambda t: (-sizes[t], t)):
        live = sorted(
            (o, s) for o, s, a, b in placed if not (b < first[t] or last.get(t, first[t]) < a)
        )
        offset = 0
        for o, s in live:
            if offset + sizes[t] <= o:
                break
            offset = max(offset, o + s)
        placed.append((offset, sizes[t], first[t], last.get(t, first[t])))
        peak = max(peak, offset + sizes[t])
    channels = sum(
        int(tensors[int(op["outputs"][0])]["shape"][-1])
        for op in ops
        if op["op_name"] in _CHANNEL_OPS
    )
    persistent = TENSOR_OVERHEAD_BYTES * len(tensors) + PER_CHANNEL_QUANT_BYTES * channels
    recommended = math.ceil(ARENA_HEADROOM * (peak + persistent) / ARENA_ROUND) * ARENA_ROUND
    return ArenaPlan(peak, sum(sizes.values()), len(tensors), recommended)


def tensor_arena_bytes(path: PathLike) -> int:
    """Planned activation arena bytes of a ``.tflite`` (see :class:`ArenaPlan`; give TFLM
    ``arena_plan(path).recommended_bytes`` until the device has measured its own)."""
    return arena_plan(path).planned_bytes


def int8_weight_bytes(path: PathLike) -> int:
    """Bytes of the weights and biases of a ``.tflite``'s conv, depthwise and fully connected ops
    (int8 weights, int32 biases): what the model costs in flash, without the flatbuffer framing."""
    interpreter = _interpreter(path)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    constants = {
        int(t)
        for op in interpreter._get_ops_details()
        if op["op_name"] in _CHANNEL_OPS
        for t in op["inputs"][1:]
        if int(t) >= 0
    }
    return sum(
        int(np.prod(tensors[t]["shape"])) * np.dtype(tensors[t]["dtype"]).itemsize
        for t in constants
    )
