"""microWakeWord / ESPHome format: a streaming int8 ``.tflite`` per keyword and its v2 JSON.

What ESPHome's ``micro_wake_word`` component accepts (read in its ``streaming_model.cpp``,
esphome/esphome ``esphome/components/micro_wake_word``): a model whose input is ``[1, stride,
40]`` int8 (stride = the first layer's, read from the shape), whose output is ``[1, 1]`` uint8
(probability * 255), built only from the 20 ops its ``register_streaming_ops_`` adds
(:data:`ESPHOME_OPS`), state kept in at most 20 resource variables; the features are the
TFLite-Micro front end's, quantised on the device with a fixed scale (the front end's 0..26
range over int8: microWakeWord's converter pins the calibration to exactly that range, and so
does this one).  pymicro_wakeword (the host runtime used to test it) reads the same files.

The network is :class:`~kws_assets.core.model.streaming_net.StreamingKws`; for keyword ``k`` the
export appends the keyword's margin over its strongest rival (a fully connected layer whose
rows are ``W_j - W_k``, a max pool, a negation and a logistic: see
:func:`~kws_assets.core.model.streaming_net.keyword_margin_probability`).  The rings of the
streaming network become resource variables (VAR_HANDLE / READ_VARIABLE / ASSIGN_VARIABLE,
initialised by CALL_ONCE), as microWakeWord's converted models keep them.  TensorFlow is
imported only inside :func:`export_keyword_tflite`.
"""

from __future__ import annotations

import gc
import json
import math
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from kws_assets.core.model.streaming_net import (
    Block,
    StreamingKws,
    keyword_margin_probability,
)
from kws_assets.core.ship.tflite import (
    PER_CHANNEL_QUANT_BYTES,
    TENSOR_OVERHEAD_BYTES,
    TfliteExportError,
    _interpreter,
    _quiet_tensorflow,
)
from kws_assets.core.storage.atomic_files import write_file_atomic

PathLike = str | os.PathLike[str]

ESPHOME_OPS = frozenset(
    {
        "CALL_ONCE",
        "VAR_HANDLE",
        "RESHAPE",
        "READ_VARIABLE",
        "STRIDED_SLICE",
        "CONCATENATION",
        "ASSIGN_VARIABLE",
        "CONV_2D",
        "MUL",
        "ADD",
        "MEAN",
        "FULLY_CONNECTED",
        "LOGISTIC",
        "QUANTIZE",
        "DEPTHWISE_CONV_2D",
        "AVERAGE_POOL_2D",
        "MAX_POOL_2D",
        "PAD",
        "PACK",
        "SPLIT_V",
    }
)
"""The ops ESPHome's ``micro_wake_word`` registers for a streaming model
(``StreamingModel::register_streaming_ops_`` in esphome/esphome
``esphome/components/micro_wake_word/streaming_model.cpp``, a ``MicroMutableOpResolver<20>``:
AddCallOnce ... AddSplitV), as TFLite builtin names."""
ESPHOME_MAX_VARIABLES = 20
"""``MicroResourceVariables::Create(ma_, 20)`` in the same file: at most 20 state variables."""
FEATURE_MIN, FEATURE_MAX = 0.0, 26.0
"""The TFLite-Micro front end's feature range as ESPHome quantises it (int8 = -128 at 0)."""
FEATURE_STEP_MS = 10
MINIMUM_ESPHOME_VERSION = "2024.7.0"
"""The first ESPHome release that reads v2 manifests and strided (stride > 1) models."""
MANIFEST_VERSION = 2
ESPHOME_DIR = "esphome"
"""The sub-folder of an artifact (and its release) holding the ESPHome files."""
ARENA_HEADROOM = 1.25
"""As the DS-CNN's planner (``ship/tflite.py``): x1.25 for kernel scratch buffers, 1-KiB steps."""
ARENA_ROUND = 1024
FLOAT_MIRROR_TOLERANCE = 1e-3
MIRROR_STEPS = 40


class MicroManifestError(ValueError):
    """A microWakeWord JSON that ESPHome or pymicro_wakeword would refuse or misread."""


@dataclass(frozen=True)
class _Folded:
    stem_w: np.ndarray  # [k, 1, in, out]
    stem_b: np.ndarray
    blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]  # dw [k,1,c,1], b, pw, b
    fc_w: np.ndarray  # [channels, n_rivals]: W_j - W_k
    fc_b: np.ndarray


def _bn_scale(bn: nn.BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
    assert bn.running_var is not None and bn.running_mean is not None
    scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().double()
    return scale, bn.bias.detach().double() - bn.running_mean.detach().double() * scale


def _fold(model: StreamingKws, keyword: int) -> _Folded:
    """The network's weights in TensorFlow layout, batch norm folded, for keyword ``keyword``."""
    model = model.to("cpu").eval()
    scale, shift = _bn_scale(model.stem_bn)
    stem = model.stem.weight.detach().double() * scale[:, None, None]  # [out, in, k]
    blocks = []
    for block in model.blocks:
        assert isinstance(block, Block)
        dw = block.depthwise.weight.detach().double()  # [c, 1, k]
        assert block.depthwise.bias is not None
        dw_b = block.depthwise.bias.detach().double()
        s, t = _bn_scale(block.bn)
        pw = block.pointwise.weight.detach().double()[:, :, 0] * s[:, None]  # [out, in]
        blocks.append(
            (
                dw.permute(2, 0, 1).numpy()[:, None, :, :],  # [k, 1, c, 1]
                dw_b.numpy(),
                pw.T.numpy()[None, None],  # [1, 1, in, out]
                t.numpy(),
            )
        )
    w = model.classifier.weight.detach().double()
    b = model.classifier.bias.detach().double()
    rivals = [j for j in range(w.shape[0]) if j != keyword]
    return _Folded(
        stem_w=stem.permute(2, 1, 0).numpy()[:, None, :, :],
        stem_b=shift.numpy(),
        blocks=blocks,
        fc_w=(w[rivals] - w[keyword]).T.numpy(),
        fc_b=(b[rivals] - b[keyword]).numpy(),
    )


def _tf_module(model: StreamingKws, keyword: int) -> Any:  # a tf.Module (lazy import)
    """A ``tf.Module`` whose ``serve`` runs one stride ``[1, stride, n_features]`` with the rings
    in variables and returns the keyword's margin probability ``[1, 1]``."""
    _quiet_tensorflow()
    import tensorflow as tf

    shape = model.shape
    folded = _fold(model, keyword)
    const = lambda a: tf.constant(np.asarray(a), tf.float32)  # noqa: E731

    class _Streaming(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            c = shape.channels
            self.rings = [
                tf.Variable(
                    tf.zeros([1, shape.stem_kernel - shape.stride, 1, shape.n_features]),
                    trainable=False,
                    name="ring_stem",
                )
            ]
            self.rings += [
                tf.Variable(tf.zeros([1, k - 1, 1, c]), trainable=False, name=f"ring_block{i}")
                for i, k in enumerate(shape.block_kernels)
                if k > 1
            ]
            if shape.pool_steps > 1:
                self.rings.append(
                    tf.Variable(
                        tf.zeros([1, shape.pool_steps - 1, 1, c]), trainable=False, name="ring_pool"
                    )
                )
            self.stem_w, self.stem_b = const(folded.stem_w), const(folded.stem_b)
            self.blocks = [tuple(const(a) for a in block) for block in folded.blocks]
            self.fc_w, self.fc_b = const(folded.fc_w), const(folded.fc_b)

        @staticmethod
        def _push(ring: Any, x: Any) -> Any:
            window = tf.concat([ring, x], axis=1)
            ring.assign(window[:, -ring.shape[1] :])
            return window

        @tf.function(
            input_signature=[
                tf.TensorSpec([1, shape.stride, shape.n_features], tf.float32, name="input_audio")
            ],
            autograph=False,  # plain Python loops over the layers, unrolled while tracing
        )
        def serve(self, x: Any) -> Any:
            rings = iter(self.rings)
            h = self._push(next(rings), tf.reshape(x, [1, shape.stride, 1, shape.n_features]))
            h = tf.nn.conv2d(h, self.stem_w, [1, shape.stride, 1, 1], "VALID")
            h = tf.nn.relu(tf.nn.bias_add(h, self.stem_b))
            for kernel, (dw, dw_b, pw, pw_b) in zip(shape.block_kernels, self.blocks, strict=True):
                if kernel > 1:
                    h = self._push(next(rings), h)
                h = tf.nn.bias_add(tf.nn.depthwise_conv2d(h, dw, [1, 1, 1, 1], "VALID"), dw_b)
                h = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(h, pw, [1, 1, 1, 1], "VALID"), pw_b))
            if shape.pool_steps > 1:
                h = self._push(next(rings), h)
            h = tf.reduce_mean(h, axis=[1, 2])  # [1, channels]
            rivals = tf.matmul(h, self.fc_w) + self.fc_b  # z_j - z_k
            n_rivals = int(folded.fc_b.shape[0])
            worst = tf.nn.max_pool2d(
                tf.reshape(rivals, [1, 1, n_rivals, 1]), [1, n_rivals], [1, 1], "VALID"
            )
            return {"probability": tf.sigmoid(tf.reshape(worst, [1, 1]) * -1.0)}

    return _Streaming()


@dataclass(frozen=True)
class MicroExport:
    """What exporting one keyword measured."""

    path: Path
    ops: tuple[str, ...]
    variables: int
    model_bytes: int
    tensor_arena_bytes: int
    planned_bytes: int
    variable_bytes: int


def calibration_strides(features: np.ndarray, stride: int) -> Iterator[np.ndarray]:
    """The representative dataset: each clip's frames, one stride at a time in order (the
    variables carry the state across strides as on the device), clipped to the front end's
    range; the first stride holds the range's ends, so the input scale is ESPHome's."""
    first = True
    for clip in np.asarray(features, dtype=np.float32):
        clip = np.clip(clip, FEATURE_MIN, FEATURE_MAX)
        for start in range(0, len(clip) - stride + 1, stride):
            window = clip[start : start + stride].copy()
            if first:
                window[0, 0], window[0, 1] = FEATURE_MIN, FEATURE_MAX
                first = False
            yield window[None]


def export_keyword_tflite(
    model: StreamingKws, keyword: int, calibration: np.ndarray, path: PathLike
) -> MicroExport:
    """Write keyword ``keyword``'s streaming model as a full-integer ``.tflite`` (int8 input,
    uint8 output) calibrated on ``calibration`` (raw front-end features ``[n, frames, 40]``),
    checked before it is written: the TensorFlow rebuild against the torch network in float, the
    op set against :data:`ESPHOME_OPS`, the variable count, the input scale."""
    _quiet_tensorflow()
    import tensorflow as tf

    x = np.asarray(calibration, dtype=np.float32)
    shape = model.shape
    if x.ndim != 3 or x.shape[0] == 0 or x.shape[2] != shape.n_features:
        raise ValueError(f"calibration must be [n>0, frames, {shape.n_features}], got {x.shape}")
    module = _tf_module(model, keyword)
    _check_mirror(model, keyword, module, x[0])
    module = _tf_module(model, keyword)  # fresh rings for the converter
    with tempfile.TemporaryDirectory(prefix="kws-micro-") as tmp:
        tf.saved_model.save(
            module, tmp, signatures={"serving_default": module.serve.get_concrete_function()}
        )
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.uint8
        converter._experimental_variable_quantization = True  # int8 rings, as microWakeWord's
        converter.representative_dataset = lambda: (
            [w] for w in calibration_strides(x, shape.stride)
        )
        with heap_frozen():
            flatbuffer = converter.convert()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, staged = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(flatbuffer)
        result = check_esphome_model(Path(staged), shape.stride, shape.n_features)
        os.replace(staged, path)
    except BaseException:
        Path(staged).unlink(missing_ok=True)
        raise
    return MicroExport(path=path, **{k: v for k, v in result.items() if k != "path"})


@contextmanager
def heap_frozen() -> Iterator[None]:
    """The objects that exist now left out of garbage collections for the block
    (:func:`gc.freeze`): TensorFlow's saved-model converter runs a full ``gc.collect()`` per
    conversion, which in a long-lived process (a run's steps in one process: the demo's
    features, tables, models, Dagster's event records) took 0.5 s of each keyword's 1.1 s.
    The block's own garbage is still collected; the rest is collected again after it."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _check_mirror(model: StreamingKws, keyword: int, module: Any, clip: np.ndarray) -> None:
    """The TensorFlow rebuild, stepped stride by stride, must give the torch network's streaming
    margin probabilities (a wrong weight layout shows up as O(1))."""
    import tensorflow as tf

    frames = clip[: MIRROR_STEPS * model.shape.stride]
    with torch.no_grad():
        logits = model.eval().stream_logits(torch.from_numpy(frames[None]))[0]
        expected = keyword_margin_probability(logits, keyword).numpy()
    got = np.array(
        [
            module.serve(tf.constant(frames[None, s : s + model.shape.stride]))["probability"]
            .numpy()
            .item()
            for s in range(0, len(expected) * model.shape.stride, model.shape.stride)
        ]
    )
    error = float(np.abs(got - expected).max()) if len(got) else 0.0
    if error > FLOAT_MIRROR_TOLERANCE:
        raise TfliteExportError(
            f"the TensorFlow streaming rebuild differs from the torch network by {error:.2e}"
        )


class StreamingTflite:
    """One ESPHome streaming model run on the host as the device runs it: int8 features in, one
    stride at a time, state kept between calls, a uint8 probability out (LiteRT's reference
    kernels, the integer arithmetic of TFLite Micro's)."""

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        check_esphome_model(self.path)
        probe = _interpreter(self.path)
        details = probe.get_input_details()[0]
        self.stride = int(details["shape"][1])
        self.scale, self.zero_point = details["quantization"]

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """The probability after every whole stride of ``features`` ``[frames, 40]``, from
        fresh state (the rings start at zero, as after the device loads the model)."""
        interpreter = _interpreter(self.path)
        inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        out_scale, out_zero = out["quantization"]
        x = np.asarray(features, dtype=np.float32)
        steps = len(x) // self.stride
        q = np.clip(np.round(x / self.scale + self.zero_point), -128, 127).astype(np.int8)
        probs = np.empty(steps, dtype=np.float32)
        for step in range(steps):
            chunk = q[step * self.stride : (step + 1) * self.stride]
            interpreter.set_tensor(inp["index"], chunk[None])
            interpreter.invoke()
            value = interpreter.get_tensor(out["index"]).reshape(-1)[0]
            probs[step] = (float(value) - out_zero) * out_scale
        return probs


def model_ops(path: PathLike) -> tuple[str, ...]:
    """The builtin op names a ``.tflite`` uses (sorted, each once)."""
    interpreter = _interpreter(path)
    return tuple(sorted({op["op_name"] for op in interpreter._get_ops_details()}))


def check_esphome_model(path: Path, stride: int | None = None, n_features: int = 40) -> dict:
    """What ESPHome checks when it loads a model, checked on the host (raises
    :class:`MicroManifestError` naming what is wrong), plus the sizes it needs: ops, variables,
    model bytes and the tensor arena (planned)."""
    try:
        interpreter = _interpreter(path)
    except (ValueError, RuntimeError) as err:
        raise MicroManifestError(f"{path.name}: not a TFLite model ({err})") from err
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    if len(inputs) != 1 or len(outputs) != 1:
        raise MicroManifestError(f"{path.name}: expected one input and one output")
    inp, out = inputs[0], outputs[0]
    in_shape, out_shape = [int(d) for d in inp["shape"]], [int(d) for d in out["shape"]]
    if len(in_shape) != 3 or in_shape[0] != 1 or in_shape[2] != n_features:
        raise MicroManifestError(f"{path.name}: input shape {in_shape}, need [1, stride, 40]")
    if stride is not None and in_shape[1] != stride:
        raise MicroManifestError(f"{path.name}: input stride {in_shape[1]}, expected {stride}")
    if out_shape != [1, 1]:
        raise MicroManifestError(f"{path.name}: output shape {out_shape}, need [1, 1]")
    if np.dtype(inp["dtype"]) != np.int8 or np.dtype(out["dtype"]) != np.uint8:
        raise MicroManifestError(
            f"{path.name}: input {np.dtype(inp['dtype'])} / output {np.dtype(out['dtype'])}, "
            "need int8 / uint8"
        )
    scale, zero = inp["quantization"]
    if zero != -128 or not math.isclose(scale, (FEATURE_MAX - FEATURE_MIN) / 255, rel_tol=1e-3):
        raise MicroManifestError(
            f"{path.name}: input quantisation (scale {scale}, zero point {zero}) is not the "
            f"front end's 0..26 over int8 that ESPHome feeds"
        )
    ops = model_ops(path)
    foreign = sorted(set(ops) - ESPHOME_OPS)
    if foreign:
        raise MicroManifestError(f"{path.name}: ops ESPHome does not register: {foreign}")
    details = interpreter._get_ops_details()
    variables = sum(1 for op in details if op["op_name"] == "VAR_HANDLE")
    if variables > ESPHOME_MAX_VARIABLES:
        raise MicroManifestError(f"{path.name}: {variables} variables, ESPHome allows 20")
    planned, variable_bytes = _arena(interpreter)
    channels = sum(
        int(interpreter.get_tensor_details()[int(op["outputs"][0])]["shape"][-1])
        for op in details
        if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
    )
    persistent = (
        TENSOR_OVERHEAD_BYTES * len(interpreter.get_tensor_details())
        + PER_CHANNEL_QUANT_BYTES * channels
    )
    arena = ARENA_HEADROOM * (planned + variable_bytes + persistent)
    return {
        "ops": ops,
        "variables": variables,
        "model_bytes": path.stat().st_size,
        "planned_bytes": planned,
        "variable_bytes": variable_bytes,
        "tensor_arena_bytes": math.ceil(arena / ARENA_ROUND) * ARENA_ROUND,
    }


def _arena(interpreter: Any) -> tuple[int, int]:
    """``(planned activation bytes, variable bytes)``: activations placed by lifetime (largest
    first, lowest free 16-byte-aligned offset), and the rings, which TFLM keeps in the tensor
    arena as persistent buffers for the life of the interpreter.  The arena then adds TFLM's
    per-tensor and per-channel persistent data, as the DS-CNN's planner does."""
    ops = interpreter._get_ops_details()
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    nbytes = {
        i: -(-int(np.prod(t["shape"])) * np.dtype(t["dtype"]).itemsize // 16) * 16
        for i, t in tensors.items()
    }
    first: dict[int, int] = {int(d["index"]): 0 for d in interpreter.get_input_details()}
    last: dict[int, int] = {}
    variable_bytes = 0
    for step, op in enumerate(ops):
        if op["op_name"] == "READ_VARIABLE":
            variable_bytes += nbytes[int(op["outputs"][0])]
        for t in op["outputs"]:
            first.setdefault(int(t), step)
        for t in op["inputs"]:
            if int(t) in first:
                last[int(t)] = step
    for d in interpreter.get_output_details():
        last[int(d["index"])] = len(ops)
    placed: list[tuple[int, int, int, int]] = []
    peak = 0
    for t in sorted(first, key=lambda t: (-nbytes[t], t)):
        start, end = first[t], last.get(t, first[t])
        offset = 0
        for o, s in sorted((o, s) for o, s, a, b in placed if not (b < start or end < a)):
            if offset + nbytes[t] <= o:
                break
            offset = max(offset, o + s)
        placed.append((offset, nbytes[t], start, end))
        peak = max(peak, offset + nbytes[t])
    return peak, variable_bytes


# -- the v2 manifest ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MicroSettings:
    """The ``micro`` block: what ESPHome reads beside the model."""

    probability_cutoff: float
    sliding_window_size: int
    tensor_arena_size: int
    feature_step_size: int = FEATURE_STEP_MS
    minimum_esphome_version: str = MINIMUM_ESPHOME_VERSION


def manifest_dict(
    wake_word: str,
    model_file: str,
    micro: MicroSettings,
    trained_languages: Sequence[str],
    author: str = "kws_assets",
    website: str = "",
) -> dict[str, object]:
    """The v2 JSON body (key order as microWakeWord's own manifests)."""
    body: dict[str, object] = {
        "type": "micro",
        "wake_word": wake_word,
        "author": author,
        "website": website,
        "model": model_file,
        "trained_languages": list(trained_languages),
        "version": MANIFEST_VERSION,
        "micro": {
            "probability_cutoff": round(float(micro.probability_cutoff), 4),
            "feature_step_size": micro.feature_step_size,
            "sliding_window_size": micro.sliding_window_size,
            "tensor_arena_size": micro.tensor_arena_size,
            "minimum_esphome_version": micro.minimum_esphome_version,
        },
    }
    validate_manifest(body)
    return body


def write_manifest(path: PathLike, body: Mapping[str, object]) -> Path:
    """Write a v2 JSON (validated first), atomically."""
    validate_manifest(body)
    return write_file_atomic(Path(path), json.dumps(body, indent=2) + "\n")


_VERSION = re.compile(r"^\d{4}\.\d{1,2}\.\d+$")


def validate_manifest(body: Mapping[str, object], folder: Path | None = None) -> None:
    """Raise :class:`MicroManifestError` unless ``body`` is a v2 microWakeWord manifest that
    ESPHome's ``micro_wake_word`` and pymicro_wakeword read as meant (and, with ``folder``, its
    model file exists there)."""
    where = f"{folder}: " if folder is not None else ""

    def fail(why: str) -> MicroManifestError:
        return MicroManifestError(f"{where}microWakeWord manifest: {why}")

    if body.get("type") != "micro":
        raise fail(f"type is {body.get('type')!r}, need 'micro'")
    if body.get("version") != MANIFEST_VERSION:
        raise fail(f"version is {body.get('version')!r}; this writer and reader speak version 2")
    for key in ("wake_word", "model"):
        if not isinstance(body.get(key), str) or not body.get(key):
            raise fail(f"{key!r} must be a non-empty string")
    languages = body.get("trained_languages")
    if not isinstance(languages, list) or not all(isinstance(s, str) for s in languages):
        raise fail("'trained_languages' must be a list of language codes")
    micro = body.get("micro")
    if not isinstance(micro, dict):
        raise fail("no 'micro' object")
    missing = {
        "probability_cutoff",
        "feature_step_size",
        "sliding_window_size",
        "tensor_arena_size",
        "minimum_esphome_version",
    } - set(micro)
    if missing:
        raise fail(f"'micro' lacks {sorted(missing)}")
    cutoff = micro["probability_cutoff"]
    if not isinstance(cutoff, (int, float)) or not 0 < cutoff < 1:
        raise fail(f"probability_cutoff {cutoff!r} is not in (0, 1)")
    if micro["feature_step_size"] != FEATURE_STEP_MS:
        raise fail(f"feature_step_size {micro['feature_step_size']!r}: the front end steps 10 ms")
    for key in ("sliding_window_size", "tensor_arena_size"):
        if not isinstance(micro[key], int) or isinstance(micro[key], bool) or micro[key] < 1:
            raise fail(f"{key} {micro[key]!r} must be a positive integer")
    if not isinstance(micro["minimum_esphome_version"], str) or not _VERSION.match(
        micro["minimum_esphome_version"]
    ):
        raise fail(f"minimum_esphome_version {micro['minimum_esphome_version']!r}")
    if folder is not None and not (folder / str(body["model"])).is_file():
        raise fail(f"model file {body['model']!r} is missing")


def read_manifest(path: PathLike) -> dict[str, object]:
    """A v2 manifest from disk, validated (its model file must sit beside it)."""
    path = Path(path)
    try:
        body = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise MicroManifestError(f"{path}: not a readable JSON file ({err})") from err
    if not isinstance(body, dict):
        raise MicroManifestError(f"{path}: not a JSON object")
    validate_manifest(body, path.parent)
    return body


def slug(keyword: str) -> str:
    """A file-name stem for a keyword (``hey computer`` -> ``hey_computer``)."""
    return re.sub(r"[^0-9a-z]+", "_", keyword.lower()).strip("_") or "keyword"


README_FILE = "README.md"


def write_readme(folder: Path, sizes: Mapping[str, Mapping[str, object]]) -> Path:
    """``README.md`` of an ESPHome folder: per wake word its files, int8 model bytes, tensor
    arena, state and operating point (read from the JSONs beside it, so a release that rewrote
    the cutoff says so), the ops used, and the YAML that loads the models.  ``sizes``: per wake
    word what :func:`export_keyword_tflite` measured (``metrics.json``'s ``esphome``)."""
    rows, ops, manifests = [], set(), sorted(folder.glob("*.json"))
    for path in manifests:
        body = read_manifest(path)
        micro = body["micro"]
        assert isinstance(micro, dict)
        measured = sizes.get(str(body["wake_word"]), {})
        ops |= set(measured.get("ops", []))  # type: ignore[call-overload]
        rows.append(
            f"| {body['wake_word']} | {path.name} | {body['model']} | "
            f"{measured.get('model_bytes', '?')} | {micro['tensor_arena_size']} | "
            f"{measured.get('variable_bytes', '?')} in {measured.get('variables', '?')} | "
            f"{micro['probability_cutoff']} | {micro['sliding_window_size']} |"
        )
    text = "\n".join(
        [
            "# ESPHome micro_wake_word models",
            "",
            "Streaming full-integer int8 TFLite models for ESPHome's `micro_wake_word` component,",
            "one per wake word, each beside its microWakeWord v2 JSON.  They read the TFLite-Micro",
            "audio front end ESPHome computes (40 features every 10 ms), three frames per",
            "inference, and keep their state in resource variables.  Each outputs the wake word's",
            "margin over its strongest rival class through a logistic (the score the evaluation",
            "selected `probability_cutoff` on).",
            "",
            "| wake word | JSON | model | int8 model bytes | tensor arena bytes | state bytes in "
            "variables | probability_cutoff | sliding_window_size |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"Ops: {', '.join(sorted(ops)) or '?'} (all registered by ESPHome's micro_wake_word).",
            "The tensor arena is planned on the host (activation buffers placed by lifetime, plus",
            "the state, x1.25, rounded up to 1 KiB), not measured on a device: if ESPHome logs an",
            "allocation failure, raise `tensor_arena_size` in the JSON.",
            "",
            "In your ESPHome YAML:",
            "",
            "```yaml",
            "micro_wake_word:",
            "  models:",
            *[f"    - model: {path.name}" for path in manifests],
            "```",
            "",
        ]
    )
    return write_file_atomic(folder / README_FILE, text)
