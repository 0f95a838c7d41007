"""The micro_wake_word family end to end on the tone task: its front end, a tiny distilled
streaming network, the artifact with its ESPHome files, and those files run in microWakeWord's
own host runtime (pymicro_wakeword) against the project's float network."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections import deque
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from kws_assets.cli import EXIT_OK, EXIT_USAGE, main
from kws_assets.core.audio.io import write_wav
from kws_assets.core.families import REGISTRY
from kws_assets.core.families.base import FamilySettings, TeacherLogits
from kws_assets.core.families.micro_wake_word import MICRO_WAKE_WORD, EsphomeClassifier
from kws_assets.core.features.micro_frontend import (
    COLUMN,
    MicroFeatures,
    MicroFrontEndSpec,
    pcm16,
    stream_features,
)
from kws_assets.core.model.detect import DetectorOperatingPoint, StreamingDetector
from kws_assets.core.model.streaming_net import keyword_margin_probability
from kws_assets.core.ship.micro_wake_word import (
    ESPHOME_DIR,
    MicroManifestError,
    check_esphome_model,
    heap_frozen,
    model_ops,
    read_manifest,
)
from kws_assets.settings import DistillSettings, MicroWakeWordSettings, QuantizeSettings
from kws_assets_tests.tone_task import FAST_TRAIN, TONE_LABELS, make_tone_clips, tone_clip

# ESPHome's registered streaming ops, pinned from esphome/esphome
# esphome/components/micro_wake_word/streaming_model.cpp, StreamingModel::register_streaming_ops_
# (a MicroMutableOpResolver<20>: AddCallOnce, AddVarHandle, AddReshape, AddReadVariable,
# AddStridedSlice, AddConcatenation, AddAssignVariable, AddConv2D, AddMul, AddAdd, AddMean,
# AddFullyConnected, AddLogistic, AddQuantize, AddDepthwiseConv2D, AddAveragePool2D,
# AddMaxPool2D, AddPad, AddPack, AddSplitV).
ESPHOME_REGISTERED_OPS = {
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
KEYWORD = "chirp"
LABELS = [*TONE_LABELS, "_silence_"]
"""The tone classes plus quiet clips: a stream is mostly quiet, so the network must know it."""
SETTINGS = FamilySettings(
    labels=LABELS,
    train=FAST_TRAIN,
    micro=MicroWakeWordSettings(
        channels=24, max_epochs=30, min_epochs=10, keywords=[KEYWORD], calibration_clips=24
    ),
    distill=DistillSettings(temperature=2.0, alpha=0.5),
)
MAX_MODEL_BYTES = 64 * 1024
MAX_ARENA_BYTES = 40 * 1024
AGREE_MAX, AGREE_MEAN = 0.12, 0.015
"""int8 runtime vs float network per inference over one 1.5-s stream (49 inferences): measured
max 0.085 (on the keyword's steepest rise) and mean 0.008 (keyword), 0.013 / 0.002 (another
class); the uint8 output's step is 0.004."""


def _clips(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    clips, y = make_tone_clips(n_per_class, seed)
    rng = np.random.default_rng(seed + 100)
    quiet = rng.standard_normal((n_per_class, clips.shape[1])) * rng.uniform(
        0.001, 0.02, (n_per_class, 1)
    )
    silence = np.full(n_per_class, len(TONE_LABELS))
    return np.concatenate([clips, quiet.astype(np.float32)]), np.concatenate([y, silence])


def _table(clips: np.ndarray, y: np.ndarray, split: str, offset: int) -> pl.DataFrame:
    features = MicroFeatures(MicroFrontEndSpec())(clips)
    return pl.DataFrame(
        {
            "clip_id": [f"c{offset + i}" for i in range(len(y))],
            "label": [LABELS[int(k)] for k in y],
            "split": [split] * len(y),
            "speaker": ["s"] * len(y),
            "source": ["tone"] * len(y),
            COLUMN: features,
        },
        schema_overrides={COLUMN: pl.Array(pl.Float32, features.shape[1:])},
    )


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object, pl.LazyFrame]:
    parts = [
        _table(*_clips(30, seed), split, 1000 * k)
        for k, (split, seed) in enumerate([("train", 1), ("val", 2), ("test", 3)])
    ]
    table = pl.concat(parts).lazy()
    ids = pl.concat(parts)["clip_id"].to_list()
    labels = pl.concat(parts)["label"].to_list()
    # a confident teacher that knows the labels (the distillation path, matched by clip id)
    logits = np.stack([np.eye(len(LABELS))[LABELS.index(lab)] * 6.0 for lab in labels])
    trained = MICRO_WAKE_WORD.train_distilled(
        SETTINGS, table, TeacherLogits(ids, logits.astype(np.float32)), lambda _m: None
    )
    folder = tmp_path_factory.mktemp("micro") / "artifact"
    MICRO_WAKE_WORD.export(trained.checkpoint, table, QuantizeSettings(calibration_rows=64), folder)
    return folder, trained, table


def test_front_end_is_what_the_runtime_streams() -> None:
    from pymicro_wakeword import MicroWakeWordFeatures

    clip = tone_clip(2, np.random.default_rng(0))
    streamed = np.concatenate(list(MicroWakeWordFeatures().process_streaming(pcm16(clip))), axis=1)
    assert np.array_equal(stream_features(clip), streamed[0].astype(np.float32))
    assert MicroFeatures(MicroFrontEndSpec())(clip[None]).shape == (1, 98, 40)


def test_trained_and_distilled(shipped: tuple[Path, object, pl.LazyFrame]) -> None:
    _, trained, _ = shipped
    checkpoint = trained.checkpoint  # type: ignore[attr-defined]
    assert checkpoint.family == "micro_wake_word"
    assert checkpoint.network["distilled"] is True
    assert checkpoint.accuracy["test"] >= 0.8


def test_a_streamed_train_split_is_distilled_too(
    shipped: tuple[Path, object, pl.LazyFrame],
) -> None:
    """A train split above ``train.stream_above_rows`` is streamed; the teacher's rows still
    follow it (each batch carries its rows' positions in the split)."""
    _, _, table = shipped
    frame = table.collect()
    labels = frame["label"].to_list()
    logits = np.stack([np.eye(len(LABELS))[LABELS.index(lab)] * 6.0 for lab in labels])
    streamed = dataclasses.replace(
        SETTINGS,
        train=FAST_TRAIN.model_copy(update={"stream_above_rows": 0, "shuffle_buffer": 64}),
        micro=SETTINGS.micro.model_copy(update={"max_epochs": 2, "min_epochs": 1}),
    )
    trained = MICRO_WAKE_WORD.train_distilled(
        streamed,
        table,
        TeacherLogits(frame["clip_id"].to_list(), logits.astype(np.float32)),
        lambda _m: None,
    )
    assert trained.data.streamed and trained.checkpoint.network["distilled"] is True
    assert trained.result.epochs_run == 2


def test_esphome_files(shipped: tuple[Path, object, pl.LazyFrame]) -> None:
    folder, _, _ = shipped
    esphome = folder / ESPHOME_DIR
    assert sorted(p.name for p in esphome.iterdir()) == ["README.md", "chirp.json", "chirp.tflite"]
    body = read_manifest(esphome / "chirp.json")
    assert {k: body[k] for k in ("type", "wake_word", "model", "version")} == {
        "type": "micro",
        "wake_word": KEYWORD,
        "model": "chirp.tflite",
        "version": 2,
    }
    micro = body["micro"]
    assert isinstance(micro, dict)
    assert set(micro) == {
        "probability_cutoff",
        "feature_step_size",
        "sliding_window_size",
        "tensor_arena_size",
        "minimum_esphome_version",
    }
    assert micro["feature_step_size"] == 10
    assert set(model_ops(esphome / "chirp.tflite")) <= ESPHOME_REGISTERED_OPS
    size = (esphome / "chirp.tflite").stat().st_size
    assert size <= MAX_MODEL_BYTES
    assert 0 < micro["tensor_arena_size"] <= MAX_ARENA_BYTES
    metrics = json.loads((folder / "metrics.json").read_text())["esphome"][KEYWORD]
    assert metrics["model_bytes"] == size
    assert metrics["tensor_arena_bytes"] == micro["tensor_arena_size"]
    readme = (esphome / "README.md").read_text()
    assert (
        f"| chirp | chirp.json | chirp.tflite | {size} | {micro['tensor_arena_size']} |" in readme
    )
    assert "    - model: chirp.json" in readme


def _runtime_probabilities(config: Path, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every inference's probability in pymicro_wakeword (window 1), and the features it saw."""
    from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures

    model = MicroWakeWord.from_config(config)
    model.sliding_window_size = 1
    model._probabilities = deque(maxlen=1)
    frames = list(MicroWakeWordFeatures().process_streaming(pcm16(audio)))
    probs = []
    for frame in frames:
        prob = model.process_streaming_prob(frame)
        if not model._features:  # an inference just ran
            probs.append(prob)
    return np.asarray(probs), np.concatenate(frames, axis=1)[0].astype(np.float32)


def _stream(rng: np.random.Generator, label: int) -> np.ndarray:
    """Half a second of quiet, then a held-out clip of the class."""
    quiet = rng.standard_normal(8000).astype(np.float32) * 0.005
    return np.concatenate([quiet, tone_clip(label, rng)])


def test_runtime_agrees_with_float_network(shipped: tuple[Path, object, pl.LazyFrame]) -> None:
    folder, trained, _ = shipped
    model = trained.result.model.eval()  # type: ignore[attr-defined]
    config = folder / ESPHOME_DIR / "chirp.json"
    rng = np.random.default_rng(99)  # held out: the splits used seeds 1-3
    for label in (KEYWORD, "low_tone"):
        got, features = _runtime_probabilities(config, _stream(rng, TONE_LABELS.index(label)))
        with torch.no_grad():
            logits = model.stream_logits(torch.from_numpy(features[None]))[0]
            expected = keyword_margin_probability(logits, LABELS.index(KEYWORD)).numpy()
        assert len(got) == len(expected) > 40
        # int8 network against float, uint8 output (steps of 1/256)
        assert np.abs(got - expected).max() < AGREE_MAX
        assert np.abs(got - expected).mean() < AGREE_MEAN


def test_released_model_fires_on_a_held_out_positive_only(
    shipped: tuple[Path, object, pl.LazyFrame], tmp_path: Path
) -> None:
    """The release writes the selected point into the JSON; pymicro_wakeword, with that cutoff
    and sliding window, fires on a held-out keyword and not on another class."""
    from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures

    folder, _, _ = shipped
    release = tmp_path / "release"
    shutil.copytree(folder, release)
    point = DetectorOperatingPoint(threshold=0.7, smoothing_windows=1, hop_ms=100.0)
    written = MICRO_WAKE_WORD.release_files(release, point)
    assert [p.name for p in written] == ["chirp.json"]
    micro = read_manifest(written[0])["micro"]
    assert micro == {**micro, "probability_cutoff": 0.7, "sliding_window_size": 3}  # type: ignore[dict-item]
    assert "| 0.7 | 3 |" in (release / ESPHOME_DIR / "README.md").read_text()
    rng = np.random.default_rng(123)
    fired = {}
    for label in (KEYWORD, "low_tone", "noise_burst"):
        model = MicroWakeWord.from_config(written[0])
        frames = MicroWakeWordFeatures().process_streaming(
            pcm16(_stream(rng, TONE_LABELS.index(label)))
        )
        fired[label] = any(model.process_streaming(frame) for frame in frames)
    assert fired == {KEYWORD: True, "low_tone": False, "noise_burst": False}


def test_registry_classifies_through_the_artifact(
    shipped: tuple[Path, object, pl.LazyFrame],
) -> None:
    folder, _, _ = shipped
    classifier = REGISTRY.load_classifier(folder)
    clips, y = make_tone_clips(5, seed=7)
    scores = classifier.classify_clips(clips)
    assert scores.shape == (len(y), len(LABELS))
    assert (scores.argmax(axis=1) == y).mean() >= 0.8


def test_malformed_manifest_and_model_are_refused(
    shipped: tuple[Path, object, pl.LazyFrame], tmp_path: Path
) -> None:
    folder, _, _ = shipped
    source = folder / ESPHOME_DIR / "chirp.json"
    body = json.loads(source.read_text())
    (tmp_path / "chirp.tflite").write_bytes((folder / ESPHOME_DIR / "chirp.tflite").read_bytes())
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**body, "version": 1}))
    with pytest.raises(MicroManifestError, match="version"):
        read_manifest(bad)
    bad.write_text(json.dumps({**body, "model": "missing.tflite"}))
    with pytest.raises(MicroManifestError, match="missing"):
        read_manifest(bad)
    bad.write_text(json.dumps({**body, "micro": {**body["micro"], "feature_step_size": 20}}))
    with pytest.raises(MicroManifestError, match="feature_step_size"):
        read_manifest(bad)
    with pytest.raises(MicroManifestError, match="stride"):
        check_esphome_model(tmp_path / "chirp.tflite", stride=4)


def test_the_detector_streams_the_front_end_once(
    shipped: tuple[Path, object, pl.LazyFrame],
) -> None:
    """``kws detect`` / the evaluation: one front-end pass over the recording gives the same
    windows as cutting it, and finds the keyword; an odd hop falls back to cutting windows."""
    folder, _, _ = shipped
    classifier = REGISTRY.load_classifier(folder)
    rng = np.random.default_rng(5)
    quiet = rng.standard_normal(16000).astype(np.float32) * 0.005
    audio = np.concatenate([quiet, tone_clip(LABELS.index(KEYWORD), rng), quiet])
    detector = StreamingDetector(
        classifier, threshold=0.7, hop_ms=100.0, smoothing_windows=1, refractory_s=1.0
    )
    posteriors = detector.posteriors(audio, 16000)
    assert posteriors.probs.shape == (31, len(LABELS))  # 3 s + 2 x 0.5 s padding, 100-ms hop
    # (the detector's zero padding, then noise: the front end hears a noise burst at the start)
    found = [d for d in detector.events(posteriors) if d.keyword == KEYWORD]
    assert len(found) == 1 and found[0].start_s <= 1.5 < found[0].end_s
    odd = StreamingDetector(classifier, threshold=0.7, hop_ms=105.0, smoothing_windows=1)
    assert odd.posteriors(audio, 16000).probs.shape[1] == len(LABELS)


def _wav(path: Path, audio: np.ndarray) -> str:
    write_wav(path, audio, 16000)
    return str(path)


def test_kws_runs_the_esphome_folder(
    shipped: tuple[Path, object, pl.LazyFrame], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``kws classify`` and ``kws detect`` take the ESPHome folder (or one of its JSONs) and run
    its streaming .tflite as the device does."""
    folder, _, _ = shipped
    esphome = folder / ESPHOME_DIR
    classifier = REGISTRY.load_classifier(esphome)
    assert isinstance(classifier, EsphomeClassifier)
    assert classifier.labels == [KEYWORD, "_unknown_"]
    # what the device runs: the JSON's cutoff and window over its 30-ms inferences
    assert classifier.operating_point == DetectorOperatingPoint(
        threshold=0.9, smoothing_windows=5, hop_ms=30.0
    )
    rng = np.random.default_rng(11)
    clips = [tone_clip(LABELS.index(KEYWORD), rng), tone_clip(LABELS.index("noise_burst"), rng)]
    paths = [_wav(tmp_path / f"{i}.wav", clip) for i, clip in enumerate(clips)]
    assert main(["classify", "--model", str(esphome / "chirp.json"), *paths]) == EXIT_OK
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["label"] for r in rows] == [KEYWORD, "_unknown_"]
    quiet = rng.standard_normal(16000).astype(np.float32) * 0.005
    stream = _wav(tmp_path / "long.wav", np.concatenate([quiet, clips[0], quiet, clips[1], quiet]))
    args = ["detect", "--model", str(esphome), "--threshold", "0.7", "--smooth", "1", stream]
    assert main(args) == EXIT_OK
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    print(found)
    assert [(r["keyword"], r["start"] <= 1.5 < r["end"]) for r in found] == [(KEYWORD, True)]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("version", "version is 1"),
        ("missing", "model file 'chirp.tflite' is missing"),
        ("not_tflite", "not a TFLite model"),
        ("shape", "output shape"),
    ],
)
def test_a_malformed_esphome_folder_is_a_clear_error(
    shipped: tuple[Path, object, pl.LazyFrame],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    damage: str,
    message: str,
) -> None:
    folder, trained, _ = shipped
    esphome = tmp_path / "esphome"
    shutil.copytree(folder / ESPHOME_DIR, esphome)
    body = json.loads((esphome / "chirp.json").read_text())
    if damage == "version":
        (esphome / "chirp.json").write_text(json.dumps({**body, "version": 1}))
    elif damage == "missing":
        (esphome / "chirp.tflite").unlink()
    elif damage == "not_tflite":
        (esphome / "chirp.tflite").write_bytes(b"not a flatbuffer")
    else:  # a model of another shape: the network's clip graph, whole clips in, logits out
        (esphome / "chirp.tflite").write_bytes(_clip_tflite(trained, tmp_path))
    with pytest.raises(MicroManifestError, match=message):
        REGISTRY.load_classifier(esphome)
    wav = _wav(tmp_path / "a.wav", np.zeros(16000, np.float32))
    assert main(["classify", "--model", str(esphome), wav]) == EXIT_USAGE
    assert message in capsys.readouterr().err


def _clip_tflite(trained: object, tmp_path: Path) -> bytes:
    """A float .tflite of another input shape ([1, 98, 40] -> [1, 5]), as a wrong model."""
    import tensorflow as tf

    model = trained.result.model.eval()  # type: ignore[attr-defined]

    class _Clip(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 98, 40], tf.float32)])
        def serve(self, x: tf.Tensor) -> tf.Tensor:
            return tf.reduce_mean(x, axis=1)[:, : model.shape.n_classes]

    clip = _Clip()
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [clip.serve.get_concrete_function()], clip
    )
    return bytes(converter.convert())


def test_the_table_is_featurized_on_worker_processes_the_same(tmp_path: Path) -> None:
    """The micro front end keeps the GIL: its table batches go to processes, same features."""
    from kws_assets.core.features.table import build_feature_table

    front_end = MICRO_WAKE_WORD.front_end(SETTINGS)
    assert front_end.holds_gil
    clips, y = _clips(3, 5)
    rows = []
    for i, (clip, k) in enumerate(zip(clips, y, strict=True)):
        write_wav(tmp_path / f"c{i}.wav", clip, 16_000)
        rows.append(
            {
                "clip_id": f"c{i}",
                "uri": str(tmp_path / f"c{i}.wav"),
                "label": LABELS[int(k)],
                "split": "train",
                "speaker": "s",
                "source": "tone",
            }
        )
    table = pl.DataFrame(rows)
    here = build_feature_table(table, front_end, workers=1, batch_size=4)
    pooled = build_feature_table(table, front_end, workers=2, batch_size=4)
    assert pooled["clip_id"].to_list() == table["clip_id"].to_list()
    np.testing.assert_array_equal(here[COLUMN].to_numpy(), pooled[COLUMN].to_numpy())
    assert here[COLUMN].to_numpy().shape == (len(rows), *MicroFrontEndSpec().shape)


def test_the_converter_runs_with_the_heap_frozen_and_leaves_it_as_it_was() -> None:
    import gc

    before = gc.get_freeze_count()
    with heap_frozen():
        assert gc.get_freeze_count() > before  # what existed is left out of collections
        garbage = [[]]
        garbage[0].append(garbage)  # a cycle made inside the block is still collected
        del garbage
        assert gc.collect() >= 1
    assert gc.get_freeze_count() == 0
