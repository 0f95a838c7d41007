"""The ``micro_wake_word`` family: a streaming network on the TFLite-Micro front end, shipped in
microWakeWord's format for ESPHome voice satellites.

Its front end is :mod:`kws_assets.core.features.micro_frontend` (``pymicro-features``: the
features ESPHome computes on the device); the network is
:class:`~kws_assets.core.model.streaming_net.StreamingKws` (stride-3 stem, depthwise-separable
blocks, ring buffers when streaming), distilled from the speech-embedding head as the DS-CNN
student is (``distil_from``: the teacher's logits on its own table, matched by clip id, at
``distill.temperature`` / ``alpha``).  Its class scores are each class's margin over its
strongest rival through a logistic
(:func:`~kws_assets.core.model.streaming_net.margin_probabilities`): exactly what the ESPHome
model of a keyword outputs, so the threshold the evaluation selects on them is the
``probability_cutoff`` the device compares.

The artifact folder is the common one (int8 ONNX of the clip network, labels, metrics,
``front_end.json``) plus ``esphome/``: per keyword a streaming int8 ``.tflite`` and its v2 JSON
(:mod:`kws_assets.core.ship.micro_wake_word`); the release rewrites each JSON's cutoff and
sliding window from the selected operating point.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from torch import nn

from kws_assets.core.families.base import (
    AssetText,
    Family,
    FamilySettings,
    Log,
    Shipped,
    TeacherLogits,
    Trained,
    require_train_and_val,
)
from kws_assets.core.features.loader import split_clip_ids, training_data
from kws_assets.core.features.micro_frontend import (
    COLUMN,
    FAMILY,
    STEP_MS,
    MicroFeatures,
    MicroFrontEndSpec,
    config_hash,
    stream_features,
)
from kws_assets.core.features.speech_embedding import FAMILY as EMBEDDING_FAMILY
from kws_assets.core.features.table import TableFrontEnd, TableStats
from kws_assets.core.model.checkpoint import ModelCheckpoint
from kws_assets.core.model.detect import DetectorOperatingPoint
from kws_assets.core.model.streaming_net import StreamingKws, StreamingShape, margin_probabilities
from kws_assets.core.model.training import MfccAugment, align_teacher_logits, train_model
from kws_assets.core.model.warm_start import seeded_state, warm_signature
from kws_assets.core.onnx_session import cpu_session
from kws_assets.core.ship.cpu_latency import DEFAULT_PRECISION
from kws_assets.core.ship.export import (
    FRONT_END_FILE,
    LABELS_FILE,
    METRICS_FILE,
    MODEL_FILE,
    ArtifactFile,
    ClipClassifier,
    _run_logits,
    check_head,
    model_file,
    read_labels,
    recorded_family,
    require_files,
)
from kws_assets.core.ship.micro_wake_word import (
    ESPHOME_DIR,
    MicroManifestError,
    MicroSettings,
    StreamingTflite,
    export_keyword_tflite,
    manifest_dict,
    read_manifest,
    slug,
    write_manifest,
    write_readme,
)
from kws_assets.settings import ModelSettings, QuantizeSettings

NAME = FAMILY
"""``micro_wake_word``: the name checkpoints, artifact folders and ``model.family`` use."""
STREAM_CHUNK = 256
"""Windows scored per ONNX call when a recording is streamed."""
STEP_SECONDS = 0.03
"""Seconds between two inferences of the streaming model (stride 3 x 10 ms)."""

PathLike = str | os.PathLike[str]


def network_shape(settings: FamilySettings, n_classes: int) -> StreamingShape:
    spec = MicroFrontEndSpec(clip_samples=settings.audio.clip_samples)
    micro = settings.micro
    return StreamingShape(
        n_features=spec.n_features,
        n_frames=spec.n_frames,
        stem_kernel=micro.stem_kernel,
        channels=micro.channels,
        block_kernels=tuple(micro.block_kernels),
        dropout=micro.dropout,
        n_classes=n_classes,
    )


def _without_classes(shape: dict[str, Any]) -> dict[str, Any]:
    """A network shape without its class count (the output rows a warm start maps by label)
    and its dropout (no tensor depends on it)."""
    return {k: v for k, v in shape.items() if k not in ("n_classes", "dropout")}


def margin_scores(logits: np.ndarray) -> np.ndarray:
    """The family's class scores of logits ``[n, n_classes]`` (see the module docstring)."""
    return margin_probabilities(torch.from_numpy(np.asarray(logits, np.float32))).numpy()


class MicroClassifier(ClipClassifier):
    """Classifies 1-s clips with a ``micro_wake_word`` artifact folder alone: the TFLite-Micro
    front end, then the clip network's int8 ONNX graph, scored as margins."""

    def __init__(self, session: Any, labels: list[str], spec: MicroFrontEndSpec) -> None:
        check_head(session, labels, spec.shape)
        self.session = session
        self.labels = labels
        self.spec: MicroFrontEndSpec = spec
        self._features = MicroFeatures(spec)

    @classmethod
    def load(
        cls, folder: PathLike, threads: int | None = None, precision: str = DEFAULT_PRECISION
    ) -> MicroClassifier:
        folder = Path(folder)
        require_files(folder, (MODEL_FILE, LABELS_FILE, FRONT_END_FILE))
        spec = MicroFrontEndSpec.from_dict(json.loads((folder / FRONT_END_FILE).read_text()))
        return cls(cpu_session(model_file(folder, precision), threads), read_labels(folder), spec)

    def classify_clips(self, clips: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        if len(clips) == 0:
            return np.empty((0, len(self.labels)), dtype=np.float32)
        return self.classify_features(self.clip_features(clips))

    def feature_key(self) -> str:
        return "micro_wake_word:" + config_hash(self.spec)

    def clip_features(self, clips: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """The TFLite-Micro front end's frames of each clip (a fresh front end per clip)."""
        return self._features(np.stack([np.asarray(c, dtype=np.float32) for c in clips]))

    def classify_features(self, x: np.ndarray) -> np.ndarray:
        return margin_scores(_run_logits(self.session, x))

    def classify_stream(self, samples: np.ndarray, hop_samples: int) -> np.ndarray | None:
        """Scores of the 1-s windows every ``hop_samples`` of a recording (as
        ``detect.clip_windows`` cuts them), from one pass of the front end over the whole
        recording, as the device runs it (its noise and gain estimates carried along, where a
        clip starts them afresh); None when the hop is not a whole number of 10-ms steps."""
        step = self.spec.sample_rate * self.spec.step_ms // 1000
        if hop_samples % step:
            return None
        x = np.asarray(samples, dtype=np.float32)
        if x.size < self.spec.clip_samples:
            x = np.pad(x, (0, self.spec.clip_samples - x.size))
        n_windows = (x.size - self.spec.clip_samples) // hop_samples + 1
        frames = stream_features(x)
        view = np.lib.stride_tricks.sliding_window_view(frames, self.spec.n_frames, axis=0)
        view = view[:: hop_samples // step][:n_windows]
        return np.concatenate(
            [
                margin_scores(
                    _run_logits(self.session, np.ascontiguousarray(chunk.transpose(0, 2, 1)))
                )
                for chunk in (view[i : i + STREAM_CHUNK] for i in range(0, len(view), STREAM_CHUNK))
            ]
        )


NO_KEYWORD = "_unknown_"
"""The extra class of an ESPHome folder's classifier: 1 - the best keyword's probability."""


def esphome_manifests(path: Path) -> list[Path]:
    """The microWakeWord JSONs ``path`` holds (a folder of them, or one JSON file): any JSON
    whose ``type`` is ``micro``, whatever else is wrong with it (loading says what)."""
    candidates = [path] if path.is_file() else sorted(path.glob("*.json"))
    found = []
    for candidate in candidates:
        if candidate.suffix != ".json":
            continue
        try:
            body = json.loads(candidate.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(body, dict) and body.get("type") == "micro":
            found.append(candidate)
    return found


class EsphomeClassifier(ClipClassifier):
    """Runs an ESPHome folder (per keyword a streaming ``.tflite`` and its v2 JSON) as the
    device would: the TFLite-Micro front end, each keyword's model stride by stride from fresh
    state.  A clip's score for a keyword is its model's probability after the clip's last
    stride; :data:`NO_KEYWORD` scores 1 - the best of them (so a clip is labelled a keyword
    when that keyword's model is above 0.5).  Detection streams a recording once per model."""

    def __init__(
        self,
        models: Mapping[str, StreamingTflite],
        spec: MicroFrontEndSpec,
        operating_point: DetectorOperatingPoint | None = None,
    ) -> None:
        self.models = dict(models)
        self.labels = [*self.models, NO_KEYWORD]
        self.spec: MicroFrontEndSpec = spec
        self.operating_point = operating_point
        """What the device runs: the JSONs' cutoff and sliding window over 30-ms inferences
        (None when the JSONs disagree: one detector has one threshold)."""

    @classmethod
    def load(cls, path: PathLike) -> EsphomeClassifier:
        """Open a folder of microWakeWord JSONs (or one JSON): each manifest is validated
        (version, fields, the model file beside it) and each model checked as ESPHome checks it
        (input [1, stride, 40] int8, output [1, 1] uint8, registered ops)."""
        path = Path(path)
        manifests = esphome_manifests(path)
        if not manifests:
            raise MicroManifestError(f"{path}: no microWakeWord JSON (type: micro) here")
        models: dict[str, StreamingTflite] = {}
        points = set()
        for manifest in manifests:
            body = read_manifest(manifest)
            wake_word = str(body["wake_word"])
            if wake_word in models:
                raise MicroManifestError(f"{path}: two models for {wake_word!r}")
            models[wake_word] = StreamingTflite(manifest.parent / str(body["model"]))
            micro = body["micro"]
            assert isinstance(micro, dict)
            points.add((float(micro["probability_cutoff"]), int(micro["sliding_window_size"])))
        point = None
        if len(points) == 1:
            (cutoff, window), stride = points.pop(), next(iter(models.values())).stride
            point = DetectorOperatingPoint(
                threshold=cutoff, smoothing_windows=window, hop_ms=stride * STEP_MS
            )
        return cls(models, MicroFrontEndSpec(), point)

    def _scores(self, probs: list[np.ndarray]) -> np.ndarray:
        keywords = np.stack(probs, axis=-1)
        return np.concatenate([keywords, 1.0 - keywords.max(axis=-1, keepdims=True)], axis=-1)

    def classify_clips(self, clips: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        rows = []
        for clip in clips:
            frames = stream_features(np.asarray(clip, dtype=np.float32))
            rows.append(
                self._scores([m.probabilities(frames)[-1:] for m in self.models.values()])[0]
            )
        if not rows:
            return np.empty((0, len(self.labels)), dtype=np.float32)
        return np.stack(rows).astype(np.float32)

    def classify_stream(self, samples: np.ndarray, hop_samples: int) -> np.ndarray | None:
        """Each 1-s window's scores are the models' probabilities at the stride that ends the
        window, from one pass over the recording (None when the hop is not whole 10-ms steps)."""
        step = self.spec.sample_rate * self.spec.step_ms // 1000
        if hop_samples % step:
            return None
        x = np.asarray(samples, dtype=np.float32)
        if x.size < self.spec.clip_samples:
            x = np.pad(x, (0, self.spec.clip_samples - x.size))
        n_windows = (x.size - self.spec.clip_samples) // hop_samples + 1
        frames = stream_features(x)
        last_frame = np.arange(n_windows) * (hop_samples // step) + self.spec.n_frames - 1
        probs = []
        for model in self.models.values():
            steps = model.probabilities(frames)
            index = np.clip((last_frame + 1) // model.stride - 1, 0, len(steps) - 1)
            probs.append(steps[index])
        return self._scores(probs).astype(np.float32)


class MicroWakeWord(Family):
    name = NAME
    column = COLUMN
    input_name = COLUMN
    distil_from = EMBEDDING_FAMILY
    table = AssetText(
        key="micro_table",
        kinds=frozenset({"parquet"}),
        description="The TFLite-Micro audio front end (pymicro-features: ESPHome's 40 features "
        "every 10 ms from a 30-ms window, noise reduction and PCAN gain) over every validated "
        "and augmented clip, a fresh front end per clip: a fixed-shape [98 x 40] array column, "
        "unchanged clips from the feature cache.",
    )
    model = AssetText(
        key="micro_model",
        kinds=frozenset({"pytorch"}),
        description="The micro_wake_word family's streaming network (stride-3 stem, "
        "depthwise-separable blocks with ring buffers, a mean over the last steps) trained on "
        "micro_table's train split, distilled from embedding_model's posteriors "
        "(distill.temperature / alpha, matched by clip id) when distill.enabled, early-stopped "
        "on the validation hard labels; micro_wake_word.max_epochs epochs at most.",
    )
    artifact = AssetText(
        key="micro_artifact",
        kinds=frozenset({"tflite"}),
        description="The micro_wake_word family's artifact: the clip network as int8 ONNX "
        "(what kws classify/detect and the evaluation run), labels.json, front_end.json, "
        "metrics.json, and esphome/: per keyword a streaming full-integer .tflite (int8 in, "
        "uint8 out, state in resource variables, only ops ESPHome's micro_wake_word registers) "
        "with its microWakeWord v2 JSON (tensor arena planned on the host).",
    )

    def front_end(self, settings: FamilySettings) -> TableFrontEnd:
        spec = MicroFrontEndSpec(clip_samples=settings.audio.clip_samples)
        return TableFrontEnd(
            spec=spec,
            column=COLUMN,
            shape=spec.shape,
            features=MicroFeatures(spec),
            cache_key=config_hash(spec),
            cache_name=COLUMN,
            staging_prefix="micro_table-",
            holds_gil=True,
        )

    def table_metadata(self, front_end: TableFrontEnd, stats: TableStats) -> dict[str, Any]:
        spec = front_end.spec
        assert isinstance(spec, MicroFrontEndSpec)
        return {"feature_shape": f"{spec.n_frames}x{spec.n_features}", "front_end": spec.to_dict()}

    def network(self, checkpoint: ModelCheckpoint) -> nn.Module:
        model = StreamingKws(StreamingShape.from_dict(checkpoint.network["shape"]))
        model.load_state_dict(checkpoint.state_dict)
        return model.eval()

    def signature(self, settings: FamilySettings) -> dict[str, Any]:
        shape = network_shape(settings, len(settings.labels)).as_dict()
        spec = MicroFrontEndSpec(clip_samples=settings.audio.clip_samples)
        return warm_signature(NAME, _without_classes(shape), spec.to_dict())

    def checkpoint_signature(self, checkpoint: ModelCheckpoint) -> dict[str, Any]:
        shape = dict(checkpoint.network["shape"])
        return warm_signature(checkpoint.family, _without_classes(shape), checkpoint.front_end)

    def fresh_state(self, settings: FamilySettings) -> dict[str, torch.Tensor]:
        shape = network_shape(settings, len(settings.labels))
        return seeded_state(lambda: StreamingKws(shape), settings.train.seed)

    def train(
        self,
        settings: FamilySettings,
        table: pl.LazyFrame,
        log: Log,
        previous: ModelCheckpoint | None = None,
    ) -> Trained:
        return self._train(settings, table, log, None, previous)

    def train_distilled(
        self,
        settings: FamilySettings,
        table: pl.LazyFrame,
        teacher: TeacherLogits,
        log: Log,
        previous: ModelCheckpoint | None = None,
    ) -> Trained:
        return self._train(settings, table, log, teacher, previous)

    def _train(
        self,
        settings: FamilySettings,
        table: pl.LazyFrame,
        log: Log,
        teacher: TeacherLogits | None,
        previous: ModelCheckpoint | None = None,
    ) -> Trained:
        labels, micro = settings.labels, settings.micro
        train_settings = settings.train.model_copy(
            update={
                "max_epochs": min(micro.max_epochs, settings.train.max_epochs),
                "min_epochs": min(micro.min_epochs, micro.max_epochs, settings.train.max_epochs),
                "learning_rate": micro.learning_rate,
            }
        )
        warm = self.warm_start(settings, previous)
        log(f"{'warm start' if warm.warm else 'from scratch'}: {warm.reason}")
        if warm.warm:
            train_settings = train_settings.warm()
        data = training_data(table, labels, train_settings, column=COLUMN)
        require_train_and_val(data, self.model.key)
        shape = network_shape(settings, len(labels))
        soft = None
        if teacher is not None and settings.distill.enabled:
            soft = align_teacher_logits(split_clip_ids(table, "train"), teacher.ids, teacher.logits)
            if np.isnan(soft).all():
                log("micro_wake_word: no train clip has a teacher row; training on hard labels")
                soft = None
        result = train_model(
            **data.train_inputs(),
            labels=labels,
            model_settings=ModelSettings(),
            train_settings=train_settings,
            log=log,
            augment=MfccAugment(
                max_shift_frames=micro.max_shift_frames,
                time_masks=1,
                max_time_mask_frames=micro.max_time_mask_frames,
                coeff_masks=1,
                max_coeff_mask=micro.max_feature_mask,
            ),
            model_factory=lambda: StreamingKws(shape),
            teacher_logits=soft,
            distill=settings.distill if soft is not None else None,
            initial_state=warm.state,
            replay=warm.replay(labels, settings.train.warm_replay),
        )
        spec = MicroFrontEndSpec(clip_samples=settings.audio.clip_samples)

        def checkpoint(accuracy: dict[str, float]) -> ModelCheckpoint:
            return ModelCheckpoint(
                family=NAME,
                labels=labels,
                state_dict=result.model.state_dict(),
                network={
                    "shape": shape.as_dict(),
                    "distilled": soft is not None,
                    "esphome": micro.model_dump(
                        mode="json",
                        include={
                            "keywords",
                            "calibration_clips",
                            "sliding_window_size",
                            "probability_cutoff",
                            "trained_languages",
                            "author",
                            "website",
                        },
                    ),
                },
                front_end=spec.to_dict(),
                accuracy=accuracy,
                history=[dict(epoch.__dict__) for epoch in result.history],
                best_epoch=result.best_epoch,
            )

        return Trained.scored(result, data, checkpoint, {"warm_start": warm.as_dict()})

    def spec_shape(self, checkpoint: ModelCheckpoint) -> tuple[int, ...]:
        return MicroFrontEndSpec.from_dict(checkpoint.front_end).shape

    def artifact_files(
        self, checkpoint: ModelCheckpoint, int8_path: Path
    ) -> Mapping[str, ArtifactFile]:
        spec = MicroFrontEndSpec.from_dict(checkpoint.front_end)
        check_head(cpu_session(int8_path), checkpoint.labels, spec.shape)
        return {FRONT_END_FILE: json.dumps(spec.to_dict(), indent=2) + "\n"}

    def export(
        self,
        checkpoint: ModelCheckpoint,
        table: pl.LazyFrame,
        quantize: QuantizeSettings,
        directory: PathLike,
    ) -> Shipped:
        """The common artifact, then ``esphome/``: one streaming ``.tflite`` + JSON per keyword,
        calibrated on validation clips streamed stride by stride."""
        shipped = super().export(checkpoint, table, quantize, directory)
        esphome = checkpoint.network.get("esphome", {})
        calibration = self.held_out(checkpoint, table).x_val[: esphome.get("calibration_clips", 64)]
        sizes = write_esphome_folder(
            Path(directory) / ESPHOME_DIR, checkpoint, self.network(checkpoint), calibration
        )
        shipped.metrics["esphome"] = sizes
        metrics_path = Path(directory) / METRICS_FILE
        metrics_path.write_text(json.dumps(shipped.metrics, indent=2, sort_keys=True) + "\n")
        return shipped

    def load_classifier(
        self, folder: Path, threads: int | None = None, precision: str = DEFAULT_PRECISION
    ) -> ClipClassifier:
        return MicroClassifier.load(folder, threads, precision)

    def owns_folder(self, folder: Path) -> bool:
        return recorded_family(folder) == NAME

    def reads_shipped(self, folder: Path) -> bool:
        """An ESPHome folder (the artifact's or release's ``esphome/``), or one of its JSONs."""
        return folder.exists() and bool(esphome_manifests(folder))

    def load_shipped(self, folder: Path, threads: int | None = None) -> ClipClassifier:
        return EsphomeClassifier.load(folder)

    def release_files(self, release: Path, point: DetectorOperatingPoint) -> list[Path]:
        """Each ESPHome JSON with the selected point: ``probability_cutoff`` = its threshold
        (the same margin score), ``sliding_window_size`` = its smoothing span in 30-ms steps."""
        folder = release / ESPHOME_DIR
        written = []
        window = max(1, round(point.smoothing_windows * point.hop_ms / 1000 / STEP_SECONDS))
        for path in sorted(folder.glob("*.json")):
            body = read_manifest(path)
            micro = dict(body["micro"])  # type: ignore[call-overload]
            micro["probability_cutoff"] = round(min(max(point.threshold, 0.01), 0.99), 4)
            micro["sliding_window_size"] = window
            write_manifest(path, {**body, "micro": micro})
            written.append(path)
        if written:
            metrics = json.loads((release / METRICS_FILE).read_text())
            write_readme(folder, metrics.get("esphome", {}))
        return written


def esphome_keywords(checkpoint: ModelCheckpoint) -> list[str]:
    """The keywords that get an ESPHome model: the setting's, else every keyword label."""
    chosen = checkpoint.network.get("esphome", {}).get("keywords") or []
    keywords = [label for label in checkpoint.labels if not label.startswith("_")]
    unknown = sorted(set(chosen) - set(keywords))
    if unknown:
        raise ValueError(f"micro_wake_word.keywords {unknown} are not keywords of {keywords}")
    return [k for k in keywords if not chosen or k in chosen]


def write_esphome_folder(
    folder: Path, checkpoint: ModelCheckpoint, model: nn.Module, calibration: np.ndarray
) -> dict[str, dict[str, object]]:
    """Per keyword ``<slug>.tflite`` and ``<slug>.json`` (v2) in ``folder``; returns each one's
    sizes and ops (``metrics.json`` and the model card)."""
    assert isinstance(model, StreamingKws)
    esphome = checkpoint.network.get("esphome", {})
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    sizes: dict[str, dict[str, object]] = {}
    for keyword in esphome_keywords(checkpoint):
        stem = slug(keyword)
        done = export_keyword_tflite(
            model, checkpoint.labels.index(keyword), calibration, folder / f"{stem}.tflite"
        )
        micro = MicroSettings(
            probability_cutoff=float(esphome.get("probability_cutoff", 0.9)),
            sliding_window_size=int(esphome.get("sliding_window_size", 5)),
            tensor_arena_size=done.tensor_arena_bytes,
        )
        body = manifest_dict(
            keyword,
            done.path.name,
            micro,
            esphome.get("trained_languages", ["en"]),
            author=str(esphome.get("author", "kws_assets")),
            website=str(esphome.get("website", "")),
        )
        write_manifest(folder / f"{stem}.json", body)
        sizes[keyword] = {
            "model_bytes": done.model_bytes,
            "tensor_arena_bytes": done.tensor_arena_bytes,
            "planned_activation_bytes": done.planned_bytes,
            "variable_bytes": done.variable_bytes,
            "variables": done.variables,
            "ops": list(done.ops),
        }
    write_readme(folder, sizes)
    return sizes


MICRO_WAKE_WORD = MicroWakeWord()
