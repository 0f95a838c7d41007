"""The speech_embedding family's head in openWakeWord's model format.

openWakeWord (and Home Assistant's wake-word stack built on it) runs one shared front end — the
same ``melspectrogram.onnx`` + ``embedding_model.onnx`` this family trains on — and, per wake
word, a small model that takes the last 16 embeddings ``[1, 16, 96]`` every 80 ms and returns one
score ``[1, 1]``.  ``openwakeword.model.Model`` reads the frame count from the input's second dim
and the number of scores from the output's second dim, and names the model after its file stem.

So the family's head *is* such a model, up to the output: :func:`openwakeword_graph` takes the
head's ONNX graph from the artifact (float, and the int8 QDQ graph), fixes the batch to 1,
appends the softmax over the head's classes and keeps the keyword's column.  Nothing is
retrained: the scores are the head's own posteriors.  One file per keyword
(``openwakeword/<keyword>.onnx``), since a single-output model is what every openWakeWord
runtime reads (its multi-class mapping needs an extra ``class_mapping_dicts`` argument).

Wyoming's openWakeWord server (the Home Assistant add-on) loads only ``*.tflite`` files from its
``--custom-model-dir``, so the float graph is also written as ``<keyword>.tflite``
(:func:`write_tflite`: the same nodes replayed as TensorFlow ops and converted by TensorFlow's
own converter, checked against the ONNX graph).  The int8 graph has no ``.tflite``: openWakeWord
runs its models in float, and the float head is a few hundred KiB at most.

Only heads over the 2-s context (16 embeddings) fit: another ``embedding.context_seconds`` gives
another frame count, which openWakeWord would feed 16 frames anyway, so it is refused.

How closely openWakeWord reproduces the project (``test_openwakeword_format``, a tiny tone head,
held-out clips in a stream with a noise floor): ``Model.predict`` on 1280-sample chunks gives the
project's front end + head scores on the same 80-ms grid to 4e-7 (ONNX, float and int8) and to
1.1e-6 (openWakeWord's TFLite front end with the ``.tflite`` head).  Next to digital silence its
per-chunk ``top_db`` floor gives other features: up to 0.29 apart (mean 0.055) there; not closed.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from kws_assets.core.features.speech_embedding import EMBEDDING_DIM, EmbeddingSpec
from kws_assets.core.model.detect import DetectorOperatingPoint, keyword_columns
from kws_assets.core.onnx_session import cpu_session
from kws_assets.core.ship.export import (
    FLOAT_MODEL_FILE,
    FRONT_END_FILE,
    MODEL_FILE,
    read_labels,
)

FOLDER = "openwakeword"
"""The sub-folder of a release that holds the openWakeWord models."""
INT8_FOLDER = "int8"
"""Under :data:`FOLDER`: the int8 (QDQ) graphs, same file names (openWakeWord names a model
after its file stem, so ``<keyword>.int8.onnx`` would rename the wake word)."""
README_FILE = "README.md"
TFLITE_SUFFIX = ".tflite"
N_FRAMES = 16
"""Embeddings openWakeWord feeds a model (its ``get_features(16)``): the 2-s context."""
HOP_MS = 80.0
"""openWakeWord scores once per 1280-sample chunk."""
SCORE_OUTPUT = "score"
TFLITE_TOLERANCE = 1e-5
"""Largest |TFLite - ONNX| score on random embeddings the ``.tflite`` may show (float32 maths in
another order: ~1e-7; a wrong weight layout: O(0.1))."""

_UNSAFE = re.compile(r"[^0-9a-z_]+")


def model_name(keyword: str) -> str:
    """The file stem (and so the openWakeWord model name) of a keyword: lower case, runs of
    anything but ``[0-9a-z_]`` as one ``_`` (``"hey kws!"`` -> ``hey_kws``)."""
    name = _UNSAFE.sub("_", keyword.lower()).strip("_")
    if not name:
        raise ValueError(f"keyword {keyword!r} leaves no file name")
    return name


def model_names(keywords: Sequence[str]) -> dict[str, str]:
    """Keyword -> file stem; two keywords that sanitise alike are refused, not overwritten."""
    names = {keyword: model_name(keyword) for keyword in keywords}
    if len(set(names.values())) != len(names):
        raise ValueError(f"keywords give clashing openWakeWord file names: {names}")
    return names


def check_frames(spec: EmbeddingSpec) -> None:
    """openWakeWord feeds 16 embeddings; a head over another context cannot run there."""
    if spec.n_frames != N_FRAMES or spec.dim != EMBEDDING_DIM:
        raise ValueError(
            f"openWakeWord feeds [1, {N_FRAMES}, {EMBEDDING_DIM}] embeddings; this head takes "
            f"[{spec.n_frames}, {spec.dim}] (embedding.context_seconds={spec.context_seconds}): "
            f"train it with context_seconds=2.0 to export it to openWakeWord"
        )


def _fix_dim(value_info: onnx.ValueInfoProto, dims: Sequence[int]) -> None:
    shape = value_info.type.tensor_type.shape
    del shape.dim[:]
    for size in dims:
        shape.dim.add().dim_value = size


def openwakeword_graph(head: onnx.ModelProto, column: int) -> onnx.ModelProto:
    """The head as an openWakeWord model: input ``[1, 16, 96]``, output ``score`` ``[1, 1]`` =
    ``softmax(logits)[:, column]`` (the keyword's posterior, the score the project's detector
    thresholds)."""
    model = onnx.ModelProto()
    model.CopyFrom(head)
    graph = model.graph
    if len(graph.input) != 1 or len(graph.output) != 1:
        raise ValueError("expected a head with one input and one output (the logits)")
    dims = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    if dims[1:] != [N_FRAMES, EMBEDDING_DIM]:
        raise ValueError(f"the head takes {dims[1:]}, not [{N_FRAMES}, {EMBEDDING_DIM}]")
    classes = graph.output[0].type.tensor_type.shape.dim[1].dim_value
    if not 0 <= column < classes:
        raise ValueError(f"column {column} outside the head's {classes} classes")
    _fix_dim(graph.input[0], [1, N_FRAMES, EMBEDDING_DIM])
    logits = graph.output[0].name
    del graph.value_info[:]  # shapes recorded with a symbolic batch; re-inferred below
    graph.initializer.extend(
        numpy_helper.from_array(np.array([value], dtype=np.int64), name)
        for name, value in (
            ("oww_start", column),
            ("oww_end", column + 1),
            ("oww_axis", 1),
        )
    )
    graph.node.extend(
        [
            helper.make_node("Softmax", [logits], ["oww_probs"], axis=1),
            helper.make_node(
                "Slice", ["oww_probs", "oww_start", "oww_end", "oww_axis"], [SCORE_OUTPUT]
            ),
        ]
    )
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(SCORE_OUTPUT, TensorProto.FLOAT, [1, 1]))
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model)
    return model


def _tf_value(tf: Any, node: onnx.NodeProto, args: list[Any], consts: dict[str, np.ndarray]) -> Any:
    """One ONNX node of a head as TensorFlow ops (the op set the heads export to)."""
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    op = node.op_type
    if op == "Identity":
        return args[0]
    if op == "Flatten" and attrs.get("axis", 1) == 1:
        return tf.reshape(args[0], [1, -1])
    if op == "LayerNormalization" and attrs.get("axis", -1) == -1:
        mean, var = tf.nn.moments(args[0], axes=[-1], keepdims=True)
        eps = float(attrs.get("epsilon", 1e-5))
        return (args[0] - mean) * tf.math.rsqrt(var + eps) * args[1] + args[2]
    if op == "Gemm" and attrs.get("transA", 0) == 0 and attrs.get("alpha", 1.0) == 1.0:
        if attrs.get("beta", 1.0) != 1.0:
            raise ValueError("Gemm with beta != 1 is not a head layer")
        return tf.matmul(args[0], args[1], transpose_b=bool(attrs.get("transB", 0))) + args[2]
    if op == "Relu":
        return tf.nn.relu(args[0])
    if op == "Transpose":
        return tf.transpose(args[0], attrs["perm"])
    if op == "Conv" and len(attrs.get("kernel_shape", [])) == 1:
        if attrs.get("group", 1) != 1 or attrs.get("strides", [1]) != [1]:
            raise ValueError("only stride-1, ungrouped 1-d convolutions are head layers")
        if attrs.get("dilations", [1]) != [1]:
            raise ValueError("only undilated 1-d convolutions are head layers")
        before, after = attrs.get("pads", [0, 0])
        x = tf.pad(tf.transpose(args[0], [0, 2, 1]), [[0, 0], [before, after], [0, 0]])
        kernel = np.ascontiguousarray(consts[node.input[1]].transpose(2, 1, 0))
        y = tf.nn.conv1d(x, kernel, stride=1, padding="VALID") + args[2]
        return tf.transpose(y, [0, 2, 1])
    if op == "ReduceMax":
        return tf.reduce_max(args[0], axis=attrs["axes"], keepdims=bool(attrs.get("keepdims", 1)))
    if op == "Softmax":
        return tf.nn.softmax(args[0], axis=attrs.get("axis", -1))
    if op == "Slice":
        (start,), (end,), (axis,) = (consts[name] for name in node.input[1:4])
        return tf.gather(args[0], list(range(int(start), int(end))), axis=int(axis))
    raise ValueError(f"no TensorFlow mapping for the head's {op} node {attrs}")


def write_tflite(model: onnx.ModelProto, path: Path) -> Path:
    """Write an openWakeWord graph (float, from :func:`openwakeword_graph`) as a float
    ``.tflite``: the ONNX nodes replayed as TensorFlow ops on the same weights, converted by
    TensorFlow's ``TFLiteConverter``, then checked against onnxruntime on random embeddings
    (refused beyond :data:`TFLITE_TOLERANCE`).  TensorFlow is imported only here."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    consts = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    graph_input = model.graph.input[0].name

    @tf.function(input_signature=[tf.TensorSpec([1, N_FRAMES, EMBEDDING_DIM], tf.float32)])
    def serve(x: Any) -> Any:
        values: dict[str, Any] = {graph_input: x}
        for node in model.graph.node:
            args = [
                values[name] if name in values else tf.constant(consts[name]) for name in node.input
            ]
            values[node.output[0]] = _tf_value(tf, node, args, consts)
        return values[model.graph.output[0].name]

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [serve.get_concrete_function()], tf.Module()
    )
    flatbuffer = converter.convert()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(flatbuffer)
    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    session = cpu_session(model)
    x = np.random.default_rng(0).standard_normal((8, 1, N_FRAMES, EMBEDDING_DIM))
    for row in x.astype(np.float32):
        interpreter.set_tensor(inp["index"], row)
        interpreter.invoke()
        got = interpreter.get_tensor(out["index"])
        want = session.run(None, {graph_input: row})[0]
        if got.shape != (1, 1) or float(np.abs(got - want).max()) > TFLITE_TOLERANCE:
            path.unlink()
            raise ValueError(
                f"the .tflite of {path.stem} gives {got.ravel()} where the ONNX graph gives "
                f"{want.ravel()}: not written"
            )
    return path


def threshold_text(point: DetectorOperatingPoint | None) -> list[str]:
    """The README's threshold section: the evaluated point, and how openWakeWord's
    post-processing differs from the detector that chose it."""
    if point is None:
        return [
            "No operating point was shipped with this folder: pick a threshold on your own audio",
            "(openWakeWord's default is 0.5).",
        ]
    t = f"{point.threshold:.6g}"
    return [
        f"Threshold: **{t}** — the operating point the evaluation selected "
        f"(`../operating_point.json`). The score is the same posterior the project's detector "
        "thresholds, so the number carries over; what differs is the post-processing:",
        "",
        f"- The project averages the posterior over the last {point.smoothing_windows} "
        f"window(s) (hop {point.hop_ms:g} ms, snapped to the 80-ms embedding step) and fires "
        "when the average reaches the threshold. openWakeWord does not average: "
        f"`Model.predict` returns the raw score every {HOP_MS:g} ms. `patience` "
        "(openWakeWord) / `--trigger-level` (Wyoming) = N asks N consecutive scores over the "
        "threshold, which is stricter than an average of N (it fires less); 1 fires at least "
        "whenever the average would (it may fire more: the measured false-accept rate is a "
        "lower bound then).",
        f"- Refractory: the project ignores triggers for {point.refractory_s:g} s after one; "
        "openWakeWord's `Model` has none (the caller debounces), and Wyoming's server exposes "
        "only `--threshold` and `--trigger-level`.",
        "- openWakeWord's front end floors each 80-ms chunk's mel frames at the chunk's loudest "
        "value minus 80 dB, the project at the loudest within 2 s: the same features on audio "
        "with a noise floor (the project's tests: scores equal to 1e-6), other features next "
        "to digital silence (zeros), where the scores differ (by up to 0.3 in those tests).",
    ]


def readme(names: dict[str, str], has_float: bool, point: DetectorOperatingPoint | None) -> str:
    """How to run the models in openWakeWord, and at which threshold."""
    first = next(iter(names.values()))
    if has_float:
        wyoming = [
            "Wyoming's openWakeWord server loads `*.tflite` files from `--custom-model-dir` (the "
            "Home Assistant add-on: copy them to `/share/openwakeword`):",
            "",
            "```sh",
            f"wyoming-openwakeword --custom-model-dir <this folder> --preload-model {first} "
            f"--threshold {point.threshold:.6g} --trigger-level 1"
            if point is not None
            else f"wyoming-openwakeword --custom-model-dir <this folder> --preload-model {first}",
            "```",
        ]
    else:
        wyoming = [
            "Wyoming's openWakeWord server (`--custom-model-dir`, the Home Assistant add-on) "
            "loads only `*.tflite` files, and this artifact shipped no float graph to convert: "
            "re-materialize it to get them.",
        ]
    suffixes = "`.onnx` and `.tflite`" if has_float else "`.onnx`"
    files = [f"- `{name}`: keyword `{kw}` ({suffixes})" for kw, name in names.items()]
    if has_float:
        where = "Float heads here; the int8 (QDQ) ones under `int8/` (same names)"
    else:
        where = "The artifact shipped no float graph: these are the int8 (QDQ) heads"
    lines = [
        "# openWakeWord models",
        "",
        "One model per keyword over openWakeWord's own front end (melspectrogram.onnx + "
        "embedding_model.onnx, the graphs this head was trained on): input `[1, 16, 96]` "
        "float32 embeddings (the last ~2 s of audio), output `[1, 1]`, the keyword's "
        f"posterior (softmax over the head's classes). {where}.",
        "",
        *files,
        "",
        "## openWakeWord (Python)",
        "",
        "```python",
        "from openwakeword.model import Model",
        f'model = Model(wakeword_models=["{first}.onnx"], inference_framework="onnx")',
        f'score = model.predict(chunk)["{first}"]  # chunk: 1280 int16 samples at 16 kHz',
        f"detected = score >= {point.threshold:.6g}  # the threshold below"
        if point is not None
        else "detected = score >= 0.5  # no evaluated threshold shipped: see below",
        "```",
        "",
        "## Home Assistant / Wyoming",
        "",
        *wyoming,
        "",
        "## Threshold",
        "",
        *threshold_text(point),
        "",
    ]
    return "\n".join(lines)


def write_openwakeword(folder: Path, point: DetectorOperatingPoint | None = None) -> list[Path]:
    """Write ``folder/openwakeword/`` from a speech-embedding artifact or release folder: one
    ``<keyword>.onnx`` and ``<keyword>.tflite`` per keyword from the float graph (the int8 graph
    under ``int8/``; an artifact without the float graph gets the int8 ``.onnx`` at the top and
    no ``.tflite``) and the README.  Returns the model files written (top level first)."""
    labels = read_labels(folder)
    spec = EmbeddingSpec.from_dict(json.loads((folder / FRONT_END_FILE).read_text()))
    check_frames(spec)
    columns = keyword_columns(labels)
    if not columns:
        raise ValueError(f"{folder}: no keyword among the labels {labels}")
    names = model_names([labels[c] for c in columns])
    out = folder / FOLDER
    has_float = (folder / FLOAT_MODEL_FILE).is_file()
    # sub-folder -> head graph; without the float graph the int8 one goes at the top
    heads = (
        {"": folder / FLOAT_MODEL_FILE, INT8_FOLDER: folder / MODEL_FILE}
        if has_float
        else {"": folder / MODEL_FILE}
    )
    written: list[Path] = []
    for sub, source in heads.items():
        head = onnx.load(source)
        target = out / sub if sub else out
        target.mkdir(parents=True, exist_ok=True)
        for column in columns:
            path = target / f"{names[labels[column]]}.onnx"
            graph = openwakeword_graph(head, column)
            onnx.save(graph, path)
            written.append(path)
            if not sub and has_float:  # Wyoming / Home Assistant load only .tflite files
                written.append(write_tflite(graph, path.with_suffix(TFLITE_SUFFIX)))
    (out / README_FILE).write_text(readme(names, has_float, point))
    return written
