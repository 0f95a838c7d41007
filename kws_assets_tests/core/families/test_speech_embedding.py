"""The speech_embedding family end to end on espeak-ng words: table, head, int8 artifact, CLI
(the family module and the code it wires: front end, table, head, artifact, classifier)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import torch

from kws_assets.cli import EXIT_OK, main
from kws_assets.core.audio.io import read_audio, write_wav
from kws_assets.core.families import family_of_folder, load_classifier
from kws_assets.core.families import speech_embedding as embedding_family
from kws_assets.core.families.base import FamilySettings
from kws_assets.core.families.mfcc_dscnn import MFCC_DSCNN
from kws_assets.core.families.speech_embedding import SPEECH_EMBEDDING, table_front_end
from kws_assets.core.families.speech_embedding import write_artifact as write_embedding_artifact
from kws_assets.core.features import speech_embedding as embedding_module
from kws_assets.core.features.speech_embedding import COLUMN as EMBEDDING_COLUMN
from kws_assets.core.features.speech_embedding import (
    EmbeddingSpec,
    FrontEndModelError,
    SpeechEmbeddingFrontEnd,
    embedding_config_hash,
)
from kws_assets.core.features.table import (
    FeatureCache,
    build_feature_table,
    split_arrays,
    stage_feature_table,
)
from kws_assets.core.model.checkpoint import ModelCheckpoint
from kws_assets.core.model.detect import StreamingDetector, window_latency_ms
from kws_assets.core.model.embedding_head import (
    EmbeddingDNN,
    EmbeddingTemporalConv,
    build_head,
    train_head,
)
from kws_assets.core.model.negative_windows import FEATURES
from kws_assets.core.model.training import EmbeddingAugment, TrainResult
from kws_assets.core.ship.export import (
    FRONT_END_FILE,
    EmbeddingClassifier,
    export_onnx,
    file_size_kib,
    quantize_int8,
)
from kws_assets.core.speech.tts import synthesize_at
from kws_assets.core.storage.render_cache import RenderCache
from kws_assets.settings import EmbeddingSettings, HeadNegativeSettings, TrainSettings

SR = 16000
KEYWORDS = ("yes", "stop", "seven")
LABELS = ["_silence_", *KEYWORDS]
TRAIN_VOICES = ("en-us", "en-gb-x-rp", "en-us+m3", "en-029", "en-us+f2")
HELD_OUT_VOICES = ("en-gb-scotland", "en-us+f4")
PROSODY = ((150, 40), (175, 55), (200, 70))  # (words per minute, pitch)


def _clip(word: str, voice: str, rate: int, pitch: int, rng: np.random.Generator) -> np.ndarray:
    speech = synthesize_at(word, SR, voice=voice, rate=rate, pitch=pitch).samples[: SR - 1600]
    clip = (0.003 * rng.standard_normal(SR)).astype(np.float32)
    start = (SR - speech.size) // 2 + int(rng.integers(-800, 801))
    start = int(np.clip(start, 0, SR - speech.size))
    clip[start : start + speech.size] += speech
    return clip


def _noise(rng: np.random.Generator) -> np.ndarray:
    return (rng.uniform(0.001, 0.02) * rng.standard_normal(SR)).astype(np.float32)


@dataclass
class WordSet:
    clips: np.ndarray
    y: np.ndarray
    split: list[str]


@pytest.fixture(scope="module")
def words() -> WordSet:
    """3 keywords x 5 training voices x 3 prosodies (+ held-out voices), plus silence."""
    rng = np.random.default_rng(0)
    clips, y, split = [], [], []
    for voices, name in ((TRAIN_VOICES, "train"), (HELD_OUT_VOICES, "test")):
        for voice in voices:
            for i, (rate, pitch) in enumerate(PROSODY):
                part = (
                    name
                    if name == "test"
                    else ("val" if i == 1 and voice in TRAIN_VOICES[:2] else "train")
                )
                for k, word in enumerate(KEYWORDS):
                    clips.append(_clip(word, voice, rate, pitch, rng))
                    y.append(k + 1)
                    split.append(part)
                clips.append(_noise(rng))
                y.append(0)
                split.append(part)
    return WordSet(np.stack(clips), np.array(y, dtype=np.int64), split)


@pytest.fixture(scope="module")
def front_end() -> SpeechEmbeddingFrontEnd:
    return SpeechEmbeddingFrontEnd(threads=1)


@pytest.fixture(scope="module")
def clip_table(words, tmp_path_factory) -> pl.DataFrame:
    folder = tmp_path_factory.mktemp("embedding_clips")
    rows = []
    for i, (clip, y, split) in enumerate(zip(words.clips, words.y, words.split, strict=True)):
        path = folder / f"{i:03d}.wav"
        write_wav(path, clip, SR)
        rows.append(
            {
                "clip_id": f"c{i:03d}",
                "uri": str(path),
                "label": LABELS[y],
                "split": split,
                "speaker": "espeak",
                "source": "tts",
            }
        )
    return pl.DataFrame(rows)


@pytest.fixture(scope="module")
def table(clip_table, front_end) -> pl.DataFrame:
    return build_feature_table(clip_table, table_front_end(front_end), batch_size=16)


@pytest.fixture(scope="module")
def artifact(table, front_end, tmp_path_factory) -> Path:
    x_train, y_train = split_arrays(table, LABELS, "train", column=EMBEDDING_COLUMN)
    x_val, y_val = split_arrays(table, LABELS, "val", column=EMBEDDING_COLUMN)
    settings = TrainSettings(
        max_epochs=30, batch_size=16, learning_rate=2e-3, patience=10, min_epochs=8, threads=1
    )
    result = train_head(x_train, y_train, x_val, y_val, LABELS, settings, kind="dnn", width=64)
    out = tmp_path_factory.mktemp("embedding_model")
    float_path = export_onnx(result.model, front_end.spec, out / "head.onnx")
    int8_path = quantize_int8(float_path, out / "head.int8.onnx", np.concatenate([x_train, x_val]))
    metrics = {
        "best_val_accuracy": result.best_val_accuracy,
        "int8_head_kib": file_size_kib(int8_path),
    }
    return write_embedding_artifact(out / "artifact", int8_path, LABELS, front_end.spec, metrics)


def _hide_packaged_models(monkeypatch) -> None:
    """Make the installed openwakeword graphs unreachable: only the artifact's copies remain."""

    def unavailable():
        raise FrontEndModelError("packaged models hidden by the test")

    monkeypatch.setattr(embedding_module, "packaged_models_dir", unavailable)


# --- table --------------------------------------------------------------------------------------


def test_table_equals_the_front_end_in_order(table, clip_table, words, front_end) -> None:
    assert table.schema[EMBEDDING_COLUMN] == pl.Array(pl.Float32, (16, 96))
    assert table["clip_id"].to_list() == clip_table["clip_id"].to_list()
    decoded = np.stack([read_audio(uri).samples for uri in clip_table["uri"]])  # the 16-bit WAVs
    np.testing.assert_allclose(
        table[EMBEDDING_COLUMN].to_numpy(), front_end(decoded), rtol=1e-6, atol=1e-5
    )
    x, y = split_arrays(table, LABELS, "test", column=EMBEDDING_COLUMN)
    test_mask = np.array(words.split) == "test"
    assert x.shape == (int(test_mask.sum()), 16, 96) and x.dtype == np.float32
    np.testing.assert_array_equal(y, words.y[test_mask])


def test_staged_table_round_trips_and_the_cache_serves_a_rebuild(
    clip_table, table, front_end, tmp_path
) -> None:
    cache = FeatureCache.for_front_end(tmp_path / "cache", table_front_end(front_end))
    staged, stats = stage_feature_table(
        clip_table, table_front_end(front_end), tmp_path, cache=cache, batch_size=16
    )
    assert (stats.rows, stats.featurized, stats.from_cache) == (
        clip_table.height,
        clip_table.height,
        0,
    )
    read = pl.read_parquet(staged.path)
    assert read.schema == table.schema
    np.testing.assert_array_equal(
        read[EMBEDDING_COLUMN].to_numpy(), table[EMBEDDING_COLUMN].to_numpy()
    )
    assert cache.path.is_file()
    again, stats2 = stage_feature_table(
        clip_table, table_front_end(front_end), tmp_path, cache=cache, batch_size=7
    )
    assert stats2.from_cache == clip_table.height and stats2.featurized == 0
    np.testing.assert_array_equal(
        pl.read_parquet(again.path)[EMBEDDING_COLUMN].to_numpy(), table[EMBEDDING_COLUMN].to_numpy()
    )
    # another context is another cache file
    assert embedding_config_hash(EmbeddingSpec(context_seconds=1.5)) not in cache.path.name
    assert embedding_config_hash(front_end.spec) in cache.path.name


# --- heads --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "cls"), [("dnn", EmbeddingDNN), ("conv", EmbeddingTemporalConv)])
def test_heads_map_sequences_to_logits(kind, cls) -> None:
    head = build_head(kind, n_frames=16, dim=96, n_classes=4, width=32, dropout=0.1)
    assert isinstance(head, cls)
    assert head(torch.zeros(3, 16, 96)).shape == (3, 4)
    with pytest.raises(ValueError, match="unknown head kind"):
        build_head("transformer", 16, 96, 4)


def test_embedding_augment_masks_frames_and_dimensions() -> None:
    x = torch.ones(64, 16, 96)
    gen = torch.Generator().manual_seed(0)
    out = EmbeddingAugment(
        max_shift_frames=0,
        time_masks=1,
        max_time_mask_frames=3,
        feature_masks=1,
        max_feature_mask=10,
    ).apply(x, gen)
    zero_frames = (out == 0).all(dim=2).sum(dim=1)
    zero_dims = (out == 0).all(dim=1).sum(dim=1)
    assert zero_frames.max() <= 3 and zero_frames.max() > 0
    assert zero_dims.max() <= 10 and zero_dims.max() > 0
    assert not EmbeddingAugment(0, 0, 0, 0, 0).active


def test_conv_head_trains_above_chance(table) -> None:
    x_train, y_train = split_arrays(table, LABELS, "train", column=EMBEDDING_COLUMN)
    x_test, y_test = split_arrays(table, LABELS, "test", column=EMBEDDING_COLUMN)
    settings = TrainSettings(
        max_epochs=10, batch_size=16, learning_rate=3e-3, patience=8, min_epochs=5, threads=1
    )
    result = train_head(x_train, y_train, x_test, y_test, LABELS, settings, kind="conv", width=32)
    assert result.best_val_accuracy > 2.0 / len(LABELS)


def test_the_head_stops_early_on_its_own_patience(table) -> None:
    """The head's budget (embedding.budget), not train.patience, stops it."""
    settings = FamilySettings(
        labels=LABELS,
        train=TrainSettings(max_epochs=40, min_epochs=2, patience=12, batch_size=16, threads=1),
        embedding=EmbeddingSettings(budget={"max_epochs": 40, "patience": 2}),
    )
    result = SPEECH_EMBEDDING.train(settings, table.lazy(), lambda _m: None).result
    assert result.stopped_early and result.epochs_run < 40
    accuracies = [h.val_accuracy for h in result.history]
    last_gain = max(
        i for i, acc in enumerate(accuracies) if acc > max(accuracies[:i], default=-1.0)
    )
    assert result.epochs_run == max(last_gain + 1 + 2, 2)


# --- artifact -----------------------------------------------------------------------------------


def test_artifact_classifies_held_out_voices_from_its_folder_alone(
    artifact, words, tmp_path, monkeypatch
) -> None:
    moved = tmp_path / "moved"
    shutil.copytree(artifact, moved)
    _hide_packaged_models(monkeypatch)
    assert family_of_folder(moved) is SPEECH_EMBEDDING
    classifier = load_classifier(moved, threads=1)
    assert isinstance(classifier, EmbeddingClassifier)
    test = [i for i, s in enumerate(words.split) if s == "test"]
    paths = []
    for i in test:
        paths.append(tmp_path / f"held_out_{i}.wav")
        write_wav(paths[-1], words.clips[i], SR)
    results = classifier.classify_files(paths)
    predicted = [LABELS.index(r["label"]) for r in results]
    accuracy = float(np.mean(np.array(predicted) == words.y[test]))
    chance = 1.0 / len(LABELS)
    assert accuracy >= 2.5 * chance, results
    for k in range(1, len(LABELS)):  # every keyword is recognised at least once
        assert any(p == k and t == k for p, t in zip(predicted, words.y[test], strict=True))
    probs = classifier.classify_clips(words.clips[test])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert window_latency_ms(classifier, repeats=3) > 0


def test_altered_graph_in_the_folder_is_refused(artifact, tmp_path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(artifact, broken)
    with open(broken / "melspectrogram.onnx", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(FrontEndModelError, match="sha256"):
        load_classifier(broken)


def test_a_folder_without_front_end_json_is_the_mfcc_family(tmp_path) -> None:
    assert family_of_folder(tmp_path) is MFCC_DSCNN  # every folder written before families existed


def test_unknown_family_is_a_clear_error(artifact, tmp_path) -> None:
    other = tmp_path / "other"
    shutil.copytree(artifact, other)
    spec = json.loads((other / FRONT_END_FILE).read_text())
    (other / FRONT_END_FILE).write_text(json.dumps({**spec, "family": "wav2vec"}))
    with pytest.raises(ValueError, match="unknown model family 'wav2vec'"):
        load_classifier(other)


def test_detector_finds_a_keyword_in_a_stream(artifact, words) -> None:
    classifier = load_classifier(artifact, threads=1)
    k = words.split.index("test")  # the first held-out "yes"
    stream = np.concatenate([np.zeros(SR, np.float32), words.clips[k], np.zeros(SR, np.float32)])
    detector = StreamingDetector(classifier, threshold=0.5, hop_ms=100.0)
    posteriors = detector.posteriors(stream, SR)
    assert posteriors.probs.shape == (len(posteriors.start_s), len(LABELS))
    assert detector.hop_s == pytest.approx(0.08)  # whole-stream front end: a multiple of 80 ms
    centre = int(np.argmin(np.abs(posteriors.start_s - 1.0)))
    assert LABELS[int(posteriors.probs[centre].argmax())] == LABELS[words.y[k]]
    assert posteriors.probs[0].argmax() == 0  # leading silence


def test_cli_classify_with_an_embedding_artifact(artifact, words, tmp_path, capsys) -> None:
    test = [i for i, s in enumerate(words.split) if s == "test"][:8]
    paths = []
    for i in test:
        paths.append(str(tmp_path / f"{LABELS[words.y[i]]}_{i}.wav"))
        write_wav(paths[-1], words.clips[i], SR)
    assert main(["classify", "--model", str(artifact), "--threads", "1", *paths]) == EXIT_OK
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert [line["path"] for line in lines] == paths
    assert all(set(line["scores"]) == set(LABELS) for line in lines)
    hits = sum(line["label"] == LABELS[words.y[i]] for line, i in zip(lines, test, strict=True))
    assert hits > len(test) / len(LABELS)


def test_network_rebuilds_the_trained_head() -> None:
    torch.manual_seed(0)
    trained = build_head("conv", 4, 96, len(LABELS), 8, 0.1, 1).eval()
    checkpoint = ModelCheckpoint(
        family=SPEECH_EMBEDDING.name,
        labels=LABELS,
        state_dict=trained.state_dict(),
        network={
            "head": "conv",
            "width": 8,
            "dropout": 0.1,
            "n_blocks": 1,
            "n_frames": 4,
            "dim": 96,
        },
        front_end=EmbeddingSpec().to_dict(),
    )
    rebuilt = SPEECH_EMBEDDING.network(checkpoint)
    assert isinstance(rebuilt, EmbeddingTemporalConv) and not rebuilt.training
    x = torch.randn(2, 4, 96)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), trained(x))
    assert SPEECH_EMBEDDING.spec_shape(checkpoint) == EmbeddingSpec().shape


# --- negative material --------------------------------------------------------------------------


def test_the_negative_material_streams_into_frames_and_trains_in_rounds(
    table, clip_table, tmp_path, monkeypatch
) -> None:
    """The family's negatives table holds each recording as the streaming front end sees it (an
    embedding every 80 ms); training with it runs a mining round and measures held-out FA/h."""
    rng = np.random.default_rng(1)
    rows = []
    for i, (split, voice) in enumerate((("train", "en-us+m3"), ("heldout", "en-us+f4"))):
        speech = [
            synthesize_at(text, SR, voice=voice).samples
            for text in ("a river of paper", "seventy yellow gardens", "stopping by the window")
        ]
        audio = np.concatenate([np.concatenate([s, np.zeros(SR // 4, np.float32)]) for s in speech])
        audio = audio + (0.003 * rng.standard_normal(audio.size)).astype(np.float32)
        path = tmp_path / f"m{i}.wav"
        write_wav(path, audio, SR)
        rows.append(
            {
                "segment_id": f"m{i}",
                "uri": str(path),
                "split": split,
                "kind": "speech",
                "seconds": audio.size / SR,
            }
        )
    material = pl.DataFrame(rows)
    labels = [*LABELS, "_unknown_"]
    settings = FamilySettings(
        labels=labels,
        train=TrainSettings(max_epochs=6, min_epochs=6, batch_size=16, threads=1),
        embedding=EmbeddingSettings(
            negatives=HeadNegativeSettings(window_ratio=1.0, mining_rounds=1, mining_threshold=0.05)
        ),
    )
    keywords = clip_table.filter(
        (pl.col("split") == "train") & pl.col("label").is_in(list(KEYWORDS))
    ).select("uri", "label", "clip_id")
    staged = SPEECH_EMBEDDING.stage_negatives(
        settings, material, lambda uri: read_audio(uri).samples, tmp_path / "staging", keywords
    )
    table_rows = pl.read_parquet(staged.path)
    in_context = table_rows.filter(pl.col("split") == "context")
    assert in_context.height == keywords.height  # every train keyword, one window each
    assert set(in_context["label"]) == set(KEYWORDS) and set(in_context["frames"]) == {16}
    negatives = table_rows.filter(pl.col("split") != "context")
    assert negatives["segment_id"].to_list() == ["m0", "m1"]
    for row in negatives.iter_rows(named=True):
        assert abs(row["frames"] - row["seconds"] / 0.08) <= 12  # one embedding every 80 ms
        assert len(row["features"]) == row["frames"] * 96
    rounds_trained: list[TrainSettings] = []
    real_train_head = embedding_family.train_head

    def recording_train_head(**kwargs: Any) -> TrainResult:
        rounds_trained.append(kwargs["train_settings"])
        return real_train_head(**kwargs)

    monkeypatch.setattr(embedding_family, "train_head", recording_train_head)
    trained = SPEECH_EMBEDDING.train_on_material(
        settings, table.lazy(), table_rows.lazy(), lambda _m: None
    )
    # both rounds on the head's batches (train.batch_size x batch_scale, the learning rate
    # scaled); the mining round on its own short budget
    head = settings.embedding
    assert [t.batch_size for t in rounds_trained] == [16 * head.batch_scale] * 2
    assert [t.learning_rate for t in rounds_trained] == pytest.approx(
        [settings.train.learning_rate * head.lr_scale] * 2
    )
    assert [t.max_epochs for t in rounds_trained] == [6, min(6, head.negatives.mining_epochs)]
    assert {t.threads for t in rounds_trained} == {1}
    assert trained.notes["keywords_in_context"] == keywords.height
    rounds = trained.notes["negative_rounds"]
    assert [r["round"] for r in rounds] == [1, 2]
    assert rounds[0]["random_windows"] == trained.data.rows("train")
    assert rounds[0]["heldout"]["hours"] == pytest.approx(negatives["seconds"][1] / 3600, abs=1e-4)
    assert "hard_windows_found" in rounds[0]
    assert rounds[1]["mined_windows"] == 3 * min(rounds[0]["hard_windows_found"], 3000)
    # a re-run warm-starts from that head: both of its rounds keep to the warm budget
    rounds_trained.clear()
    again = SPEECH_EMBEDDING.train_on_material(
        settings, table.lazy(), table_rows.lazy(), lambda _m: None, trained.checkpoint
    )
    assert again.notes["warm_start"]["warm"] is True
    warm = settings.train.warm_epochs
    assert [t.max_epochs for t in rounds_trained] == [
        min(6, warm.max_epochs),
        min(6, warm.max_epochs, head.negatives.mining_epochs),
    ]
    assert {(t.patience, t.min_epochs) for t in rounds_trained} == {
        (min(settings.train.patience, warm.patience), 1)
    }
    # a config without _unknown_ trains on the clips alone
    plain = SPEECH_EMBEDDING.train_on_material(
        FamilySettings(labels=LABELS, train=settings.train),
        table.lazy(),
        negatives.lazy(),
        lambda _m: None,
    )
    assert "negative_rounds" not in plain.notes


def test_a_keyword_in_context_is_the_clip_between_its_surroundings(words, front_end) -> None:
    """Silence around it: the clip table's own embedding; speech around it: another view."""
    clips = words.clips[:3]
    silent = front_end.in_context(clips, np.zeros((3, front_end.spec.context_samples)))
    np.testing.assert_allclose(silent, front_end(clips), atol=1e-5)
    rng = np.random.default_rng(0)
    around = (0.05 * rng.standard_normal((3, front_end.spec.context_samples))).astype(np.float32)
    noisy = front_end.in_context(clips, around)
    assert noisy.shape == silent.shape and not np.allclose(noisy, silent, atol=1e-2)


def test_a_recording_s_streamed_frames_come_from_the_cache_the_second_time(tmp_path) -> None:
    """The material's frames are kept by segment id and front end: a second staging reads no
    recording again and writes the same table; another segment id is embedded afresh."""
    rng = np.random.default_rng(2)
    audio = (0.05 * rng.standard_normal(3 * SR)).astype(np.float32)
    write_wav(tmp_path / "m.wav", audio, SR)
    material = pl.DataFrame(
        {
            "segment_id": ["s0"],
            "uri": [str(tmp_path / "m.wav")],
            "split": ["train"],
            "kind": ["noise"],
            "seconds": [3.0],
        }
    )
    settings = FamilySettings(labels=[*LABELS, "_unknown_"])
    reads: list[str] = []

    def read(uri: str) -> np.ndarray:
        reads.append(uri)
        return read_audio(uri).samples

    cache = RenderCache(tmp_path / "streams")
    tables = []
    for run in range(2):
        staged = SPEECH_EMBEDDING.stage_negatives(
            settings, material, read, tmp_path / f"staging{run}", cache=cache
        )
        tables.append(pl.read_parquet(staged.path))
    assert reads == [str(tmp_path / "m.wav")] and (cache.hits, cache.misses) == (1, 1)
    assert tables[0].equals(tables[1])
    renamed = material.with_columns(pl.lit("s1").alias("segment_id"))
    SPEECH_EMBEDDING.stage_negatives(settings, renamed, read, tmp_path / "staging2", cache=cache)
    assert len(reads) == 2 and cache.misses == 2


def test_keywords_in_context_are_cached_per_clip(tmp_path, monkeypatch) -> None:
    """Each train keyword clip's surroundings are drawn from its own id and its embeddings kept
    by it: a re-run with one clip more embeds that clip alone and writes the others' rows as
    before; two workers write the rows one process writes."""
    rng = np.random.default_rng(4)
    for m in range(3):
        write_wav(
            tmp_path / f"m{m}.wav", (0.05 * rng.standard_normal(4 * SR)).astype(np.float32), SR
        )
    material = pl.DataFrame(
        {
            "segment_id": ["s0", "s1", "s2"],
            "uri": [str(tmp_path / f"m{m}.wav") for m in range(3)],
            "split": ["train"] * 3,
            "kind": ["speech"] * 3,
            "seconds": [4.0] * 3,
        }
    )
    clip_rows = []
    for i in range(12):
        path = tmp_path / f"k{i}.wav"
        write_wav(path, (0.2 * rng.standard_normal(SR)).astype(np.float32), SR)
        clip_rows.append({"uri": str(path), "label": LABELS[i % 2], "clip_id": f"c{i:02d}"})
    keywords = pl.DataFrame(clip_rows)
    settings = FamilySettings(labels=[*LABELS, "_unknown_"])

    def read(uri: str) -> np.ndarray:
        return read_audio(uri).samples

    def context_rows(staged: Any) -> pl.DataFrame:
        return pl.read_parquet(staged.path).filter(pl.col("split") == "context")

    cache = RenderCache(tmp_path / "cache")
    first = context_rows(
        SPEECH_EMBEDDING.stage_negatives(
            settings, material, read, tmp_path / "a", keywords.head(11), cache=cache
        )
    )
    misses = cache.misses
    more = context_rows(
        SPEECH_EMBEDDING.stage_negatives(settings, material, read, tmp_path / "b", keywords, cache)
    )
    assert cache.misses == misses + 1  # the new clip alone
    assert more.head(11).equals(first) and more.height == 12
    # a recording of the material changes: the clips placed in it, and those alone, again
    changed = material.with_columns(
        pl.when(pl.col("segment_id") == "s1")
        .then(pl.lit("s9"))
        .otherwise(pl.col("segment_id"))
        .alias("segment_id")
    )
    moved = [
        c
        for c in keywords["clip_id"]
        if embedding_family.surroundings_for(c, ["s0", "s1", "s2"])
        != embedding_family.surroundings_for(c, ["s0", "s9", "s2"])
    ]
    assert 0 < len(moved) < keywords.height
    misses = cache.misses
    SPEECH_EMBEDDING.stage_negatives(settings, changed, read, tmp_path / "d", keywords, cache)
    assert cache.misses == misses + len(moved) + 1  # and the new recording's own frames
    monkeypatch.setattr(embedding_family, "DEFAULT_BATCH_CLIPS", 4)  # batches on 2 workers
    pooled = context_rows(
        SPEECH_EMBEDDING.stage_negatives(
            settings, material, read, tmp_path / "c", keywords, workers=2
        )
    )
    assert pooled["segment_id"].to_list() == more["segment_id"].to_list()
    for x, y in zip(pooled[FEATURES].to_list(), more[FEATURES].to_list(), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=1e-5)


def test_recordings_streamed_on_two_workers_give_the_table_streamed_here(tmp_path) -> None:
    rng = np.random.default_rng(3)
    rows = []
    for i in range(3):
        write_wav(
            tmp_path / f"m{i}.wav", (0.05 * rng.standard_normal(2 * SR)).astype(np.float32), SR
        )
        rows.append(
            {
                "segment_id": f"s{i}",
                "uri": str(tmp_path / f"m{i}.wav"),
                "split": "train",
                "kind": "noise",
                "seconds": 2.0,
            }
        )
    material = pl.DataFrame(rows)
    settings = FamilySettings(labels=[*LABELS, "_unknown_"])

    def read(uri: str) -> np.ndarray:
        return read_audio(uri).samples

    here = SPEECH_EMBEDDING.stage_negatives(settings, material, read, tmp_path / "one")
    pooled = SPEECH_EMBEDDING.stage_negatives(settings, material, read, tmp_path / "two", workers=2)
    a, b = pl.read_parquet(here.path), pl.read_parquet(pooled.path)
    assert a.height == b.height == 3 and a["segment_id"].to_list() == b["segment_id"].to_list()
    assert a["frames"].to_list() == b["frames"].to_list()
    for x, y in zip(a[FEATURES].to_list(), b[FEATURES].to_list(), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=1e-5)
