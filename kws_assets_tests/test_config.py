"""The configuration model and its YAML loader."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from kws_assets.config import (
    card_settings,
    corpus_reading,
    curation_settings,
    landing_zone,
    load_config,
)
from kws_assets.core.audio.io import check_speech_fits, resample
from kws_assets.core.speech import tts
from kws_assets.settings import SILENCE_LABEL, UNKNOWN_LABEL, KwsConfig, parse_yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def test_project_kws_yaml_spells_out_the_embedded_default():
    from_file = load_config(PROJECT_ROOT / "kws.yaml")
    assert from_file.model_dump(exclude={"storage"}) == KwsConfig().model_dump(exclude={"storage"})
    assert Path(from_file.storage.root) == PROJECT_ROOT / ".kws_data"


def test_yes_no_on_off_stay_strings():
    assert parse_yaml("keywords: [yes, no, on, off]\nflag: true") == {
        "keywords": ["yes", "no", "on", "off"],
        "flag": True,
    }


def test_labels_put_silence_and_unknown_first():
    cfg = KwsConfig(keywords=["Marvin", " sheila "])
    assert cfg.labels == [SILENCE_LABEL, UNKNOWN_LABEL, "marvin", "sheila"]


@pytest.mark.parametrize("keywords", [[], ["yes", "yes"], ["_unknown_"], [""]])
def test_bad_keyword_lists_are_rejected(keywords):
    with pytest.raises(ValidationError):
        KwsConfig(keywords=keywords)


def test_unknown_fields_are_rejected_with_their_name(tmp_path):
    path = tmp_path / "kws.yaml"
    path.write_text("keywords: [yes]\ntrain: {epochz: 3}\n")
    with pytest.raises(ValidationError, match="epochz"):
        load_config(path)


def test_relative_paths_resolve_against_the_config_file(tmp_path):
    path = tmp_path / "sub" / "kws.yaml"
    path.parent.mkdir()
    path.write_text(
        "storage: {root: data}\nsources:\n  - {kind: manifest, name: mine, root: corpus}\n"
    )
    cfg = load_config(path)
    assert Path(cfg.storage.root) == path.parent / "data"
    assert Path(cfg.sources[0].root) == path.parent / "corpus"


def test_env_var_names_the_config(tmp_path, monkeypatch):
    path = tmp_path / "other.yaml"
    path.write_text("keywords: [alpha, beta]\n")
    monkeypatch.setenv("KWS_CONFIG", str(path))
    assert load_config().keywords == ["alpha", "beta"]
    monkeypatch.setenv("KWS_CONFIG", str(tmp_path / "missing.yaml"))
    with pytest.raises(FileNotFoundError, match=r"missing\.yaml"):
        load_config()


def test_mfcc_shape_settings_are_checked():
    with pytest.raises(ValidationError):
        KwsConfig(features={"n_mels": 8, "n_mfcc": 10})


def test_section_hash_changes_only_with_its_section():
    base = KwsConfig()
    assert base.section_hash("audio") == KwsConfig(keywords=["x"]).section_hash("audio")
    assert base.section_hash("audio") != KwsConfig(audio={"sample_rate": 8000}).section_hash(
        "audio"
    )


def test_the_core_bundles_carry_the_configs_own_sections(tmp_path):
    """Each bundle the core takes holds the config's values, not defaults: a section the builder
    mapped wrong (or left out) shows as a default here."""
    cfg = KwsConfig.model_validate(
        {
            "keywords": ["marvin", "sheila"],
            "language": "es",
            "sources": [{"kind": "manifest", "name": "office", "root": str(tmp_path)}],
            "audio": {"sample_rate": 8000},
            "quality": {"min_rms_dbfs": -33.0},
            "ingest": {"max_utterance_s": 12.0},
            "alignment": {"min_confidence": 0.42},
            "outliers": {"threshold": 4.5},
            "splits": {"val_percent": 20.0, "salt": "other"},
            "storage": {"root": str(tmp_path / "store"), "s3_retries": 1},
            "automation": {"landing_root": "drop", "landing_license": "CC0-1.0"},
            "evaluation": {"held_out_engine": "flite"},
        }
    )
    reading = corpus_reading(cfg)
    assert (reading.keywords, reading.language, reading.sample_rate) == (cfg.keywords, "es", 8000)
    assert (reading.ingest, reading.quality, reading.storage) == (
        cfg.ingest,
        cfg.quality,
        cfg.storage,
    )
    zone = landing_zone(cfg)
    assert (zone.root, zone.license, zone.s3.retries) == (
        str(tmp_path / "store" / "drop"),
        "CC0-1.0",
        1,
    )
    curation = curation_settings(cfg)
    assert curation.min_confidence == 0.42 and curation.labels == cfg.labels
    assert (curation.audio, curation.quality, curation.outliers, curation.splits) == (
        cfg.audio,
        cfg.quality,
        cfg.outliers,
        cfg.splits,
    )
    card = card_settings(cfg)
    assert (card.labels, card.sources, card.held_out_engine) == (cfg.labels, cfg.sources, "flite")
    assert (card.ingest, card.tts) == (cfg.ingest, cfg.tts)


def test_the_clip_fits_the_longest_phrase_and_single_words_keep_one_second():
    assert KwsConfig().audio.clip_seconds == 1.0
    assert KwsConfig(keywords=["alexa", "computer"]).audio.clip_seconds == 1.0
    jarvis = KwsConfig(keywords=["hey jarvis", "alexa"])
    assert jarvis.audio.clip_seconds == 1.5 and jarvis.audio.clip_samples == 24000
    assert KwsConfig(keywords=["bonjour maison"], language="fr").audio.clip_seconds == 1.6
    auto = KwsConfig.model_validate(
        {"keywords": ["hey jarvis"], "audio": {"clip_seconds": "auto", "sample_rate": 8000}}
    )
    assert (auto.audio.clip_seconds, auto.audio.sample_rate) == (1.5, 8000)
    # within the families' limit: the speech-embedding family reads embedding.context_seconds
    long = ["hey home assistant turn it off"]
    assert KwsConfig(keywords=long).audio.clip_seconds == 2.0
    assert KwsConfig(keywords=long, embedding={"context_seconds": 1.8}).audio.clip_seconds == 1.8
    # a number written in the file is kept (keywords longer than it are quarantined)
    written = KwsConfig.model_validate({"keywords": ["hey jarvis"], "audio": {"clip_seconds": 1}})
    assert written.audio.clip_seconds == 1.0
    with pytest.raises(ValidationError):
        KwsConfig.model_validate({"audio": {"clip_seconds": "long"}})


@pytest.mark.parametrize(
    ("phrase", "voice"),
    [
        ("hey jarvis", "en-us"),
        ("hey mycroft", "en-us"),
        ("okay nabu", "en-us"),
        ("bonjour maison", "fr"),
        ("hallo computer", "de"),
    ],
)
def test_the_automatic_clip_holds_the_slowest_default_render(phrase, voice):
    """The estimate behind ``clip_seconds: auto`` against espeak-ng's own renders: the phrase
    spoken by the language's voice at the slowest rate and the longest word gap the default
    settings draw fits the automatic clip clear of its fades."""
    cfg = KwsConfig(keywords=[phrase])
    spoken = tts.synthesize(
        phrase, voice=voice, rate=cfg.tts.rate_range[0], word_gap=cfg.tts.word_gap_range[1]
    )
    samples = resample(spoken.samples, spoken.sample_rate, cfg.audio.sample_rate)
    speech, _ = tts.trim_silence(samples, cfg.audio.sample_rate)
    assert len(speech) > cfg.audio.sample_rate  # longer than the 1-s clip of single words
    check_speech_fits(len(speech), cfg.audio.clip_samples, cfg.audio.sample_rate, cfg.audio.fade_ms)


def test_the_dscnn_budget_caps_train_and_leaves_the_head_alone() -> None:
    from kws_assets.settings import TrainSettings

    train = TrainSettings(max_epochs=40, patience=12, dscnn={"max_epochs": 30, "patience": 5})
    dscnn = train.for_dscnn()
    assert (dscnn.max_epochs, dscnn.patience) == (30, 5)
    assert (train.max_epochs, train.patience) == (40, 12)  # what the embedding head reads
    brief = TrainSettings(max_epochs=2, patience=1).for_dscnn()  # a test's config stays brief
    assert (brief.max_epochs, brief.patience) == (2, 1)
    assert dscnn.learning_rate == train.learning_rate and dscnn.seed == train.seed


def test_a_budget_only_shortens_training() -> None:
    from kws_assets.settings import TrainSettings

    train = TrainSettings(max_epochs=40, patience=12)
    assert (train.within(10).max_epochs, train.within(10).patience) == (10, 12)
    assert (train.within(10, 3).max_epochs, train.within(10, 3).patience) == (10, 3)
    brief = TrainSettings(max_epochs=4, patience=2)
    assert (brief.within(10, 5).max_epochs, brief.within(10, 5).patience) == (4, 2)


def test_the_head_trains_on_one_thread_within_its_own_budget() -> None:
    from kws_assets.settings import EmbeddingSettings, TrainSettings

    train = TrainSettings(max_epochs=40, patience=12, batch_size=64, learning_rate=4e-3)
    head = EmbeddingSettings().head_train(train)
    assert (head.max_epochs, head.patience, head.threads) == (25, 12, 1)
    assert (head.batch_size, head.learning_rate) == (64, 4e-3)  # train's, unless scaled
    assert (train.max_epochs, train.threads) == (40, 2)  # the DS-CNN's are untouched
    assert head.seed == train.seed and head.min_epochs == train.min_epochs
    scaled = EmbeddingSettings(batch_scale=4, lr_scale=2.0).head_train(train)
    assert (scaled.batch_size, scaled.learning_rate) == (256, pytest.approx(8e-3))
    brief = EmbeddingSettings().head_train(TrainSettings(max_epochs=4, patience=2, threads=1))
    assert (brief.max_epochs, brief.patience, brief.threads) == (4, 2, 1)  # a test stays brief
    same = EmbeddingSettings(train_threads=8, budget={"max_epochs": 40, "patience": 12}).head_train(
        train
    )
    assert same == train  # threads never above train's; train's budget: train as it says
    with pytest.raises(ValueError):
        EmbeddingSettings(batch_scale=0)


def test_families_default_to_the_head_and_the_streaming_network():
    assert KwsConfig().families == ["speech_embedding", "micro_wake_word"]
    every = KwsConfig(families=["mfcc", "speech_embedding", "micro_wake_word"])
    assert every.families == ["mfcc", "speech_embedding", "micro_wake_word"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"families": ["speech_embedding", "speech_embedding"]}, "lists a family twice"),
        ({"families": ["mfcc", "micro_wake_word"]}, "families must list speech_embedding"),
        (
            {"families": ["speech_embedding"], "model": {"family": "mfcc"}},
            "model.family 'mfcc' (the default family) must be one of families",
        ),
        ({"families": ["speech_embedding", "dscnn"]}, "families"),
        ({"families": []}, "families"),
    ],
)
def test_bad_family_lists_are_rejected_naming_the_fix(fields, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        KwsConfig(**fields)
