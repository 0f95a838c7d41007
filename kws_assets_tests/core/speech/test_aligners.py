"""The aligner interface: which aligner serves which language, keyword matching in each
aligner's spelling, clips cut per utterance language, and the confidence gate."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from kws_assets.config import curation_settings
from kws_assets.core.audio import quality
from kws_assets.core.audio.io import read_audio, resample, write_wav
from kws_assets.core.corpus.segment import align_utterances
from kws_assets.core.dataset import curation
from kws_assets.core.speech import tts
from kws_assets.core.speech.aligners import (
    AlignerChoice,
    NoAlignerError,
    PocketsphinxAligner,
    WordAligner,
    aligner_kind,
    as_word_aligner,
    build_aligner,
)
from kws_assets.core.speech.alignment import Aligner
from kws_assets.core.speech.dtw_aligner import DtwAligner
from kws_assets.core.storage.clip_store import ClipStore
from kws_assets.settings import AlignmentSettings, AudioSettings, KwsConfig

SR = 16000


def test_english_uses_pocketsphinx_and_other_languages_tts_dtw():
    settings = AlignmentSettings()
    assert aligner_kind("en", settings) == "pocketsphinx"
    assert aligner_kind("en_US", settings) == "pocketsphinx"
    for language in ("es", "fr-BE", "de", "cmn", "sw"):
        assert aligner_kind(language, settings) == "tts_dtw"


def test_config_overrides_the_choice_per_language():
    settings = AlignmentSettings(aligners={"en": "tts_dtw", "es": "tts_dtw"})
    assert aligner_kind("en-GB", settings) == "tts_dtw"
    with pytest.raises(ValueError, match="English model only"):
        AlignmentSettings(aligners={"fr": "pocketsphinx"})
    with pytest.raises(NoAlignerError):
        PocketsphinxAligner("fr")


def test_choice_builds_each_aligner_once_and_shares_pocketsphinx():
    choice = AlignerChoice(AlignmentSettings(dtw={"voices": {"es": "es-419"}}), sample_rate=SR)
    english, american = choice.for_language("en"), choice("en-US")
    assert isinstance(english, PocketsphinxAligner) and isinstance(english, WordAligner)
    assert english.aligner is american.aligner  # one pocketsphinx model
    spanish = choice.for_language("es-MX")
    assert isinstance(spanish, DtwAligner) and isinstance(spanish, WordAligner)
    assert spanish.voice == "es-419"
    assert choice.for_language("es-MX") is spanish
    assert choice.for_language("fr").voice == "fr"
    with pytest.raises(NoAlignerError):
        choice.for_language("xx")
    with pytest.raises(NoAlignerError):
        build_aligner("tts_dtw", "xx", AlignmentSettings())


def test_keyword_forms_follow_each_aligners_spelling():
    assert PocketsphinxAligner("en", aligner=Aligner()).keyword_form("Café") == "cafe"
    assert DtwAligner("es").keyword_form("Sí") == "sí"
    assert DtwAligner("de").keyword_form("Straße") == "strasse"
    bare = Aligner()
    wrapped = as_word_aligner(bare, "en")
    assert isinstance(wrapped, PocketsphinxAligner) and wrapped.aligner is bare
    dtw = DtwAligner("es")
    assert as_word_aligner(dtw, "fr") is dtw
    with pytest.raises(TypeError):
        as_word_aligner(object(), "en")


def _utterance(tmp_path, utterance_id: str, text: str, voice: str, language: str) -> dict:
    spoken = tts.synthesize(text, voice=voice, rate=160)
    path = tmp_path / f"{utterance_id}.wav"
    write_wav(path, resample(spoken.samples, spoken.sample_rate, SR), SR)
    return {
        "utterance_id": utterance_id,
        "uri": str(path),
        "transcript": text,
        "speaker": f"tts:{voice}",
        "language": language,
        "source": "test",
    }


def test_the_utterance_language_picks_the_aligner(tmp_path):
    utterances = [
        _utterance(tmp_path, "es-1", "Dime SÍ, por favor.", "es+m2", "es"),
        _utterance(tmp_path, "es-2", "la palabra arriba es verde", "es-419+f3", "es-MX"),
        _utterance(tmp_path, "en-1", "please say 2 now", "en-us+f1", "en"),
        _utterance(tmp_path, "xx-1", "something", "en-us+f1", "xx"),
    ]
    store = ClipStore.at(tmp_path / "clips")
    settings = AlignmentSettings(unknown_per_utterance=1)
    rows, failures, _ = align_utterances(
        utterances,
        ["sí", "arriba", "two"],
        AlignerChoice(settings, SR),
        store,
        AudioSettings(),
        settings,
    )
    assert [f.utterance_id for f in failures] == ["xx-1"]
    assert "no aligner for language 'xx'" in failures[0].reason
    keyword_rows = {r["label"]: r for r in rows if r["label"] != "_unknown_"}
    assert set(keyword_rows) == {"sí", "arriba", "two"}
    assert keyword_rows["sí"]["aligner"] == keyword_rows["arriba"]["aligner"] == "tts_dtw"
    assert keyword_rows["two"]["aligner"] == "pocketsphinx"  # "2" was read as "two"
    assert keyword_rows["arriba"]["language"] == "es-MX"
    assert {r["origin_id"] for r in rows if r["label"] == "_unknown_"} == {"es-1", "es-2", "en-1"}
    for row in rows:
        assert 0.0 <= row["confidence"] <= 1.0
        assert len(read_audio(row["uri"]).samples) == SR


def _clip_rows(tmp_path, confidences: list[float | None]) -> pl.DataFrame:
    spoken = tts.synthesize("arriba", voice="es+m1")
    samples = resample(spoken.samples, spoken.sample_rate, SR)
    clip = np.zeros(SR, np.float32)
    clip[SR // 4 : SR // 4 + len(samples)] = samples[: 3 * SR // 4]
    rows = []
    for i, confidence in enumerate(confidences):
        path = tmp_path / f"clip{i}.wav"
        write_wav(path, clip, SR)
        rows.append(
            {
                "clip_id": f"c{i}",
                "uri": str(path),
                "label": "arriba",
                "source": "test",
                "speaker": f"s{i}",
                "language": "es",
                "origin_id": f"u{i}",
                "start_s": 0.5,
                "sample_rate": SR,
                "num_samples": SR,
                "word": "arriba",
                "confidence": confidence,
            }
        )
    return curation.clip_table(rows)


def test_low_alignment_confidence_is_quarantined_with_its_reason(tmp_path):
    assert quality.alignment_reasons(0.1, 0.3) == [quality.LOW_ALIGNMENT_CONFIDENCE]
    assert quality.alignment_reasons(0.3, 0.3) == []
    assert (
        quality.alignment_reasons(None, 0.3) == quality.alignment_reasons(float("nan"), 0.3) == []
    )
    assert quality.LOW_ALIGNMENT_CONFIDENCE in quality.ALL_REASONS
    cfg = KwsConfig(
        language="es",
        keywords=["arriba"],
        outliers={"enabled": False},
        alignment={"min_confidence": 0.3},
    )
    confidences = [0.9, 0.1, None, 0.8, 0.05, 0.7]
    result = curation.curate(
        _clip_rows(tmp_path, confidences),
        curation_settings(cfg),
        lambda uri: read_audio(uri, target_sr=SR),
    )
    quarantined = result.quarantined
    low = quarantined.filter(pl.col("reason") == quality.LOW_ALIGNMENT_CONFIDENCE)
    assert sorted(low["clip_id"].to_list()) == ["c1", "c4"]
    assert sorted(low["confidence"].to_list()) == [0.05, 0.1]
    assert sorted(result.validated["clip_id"].to_list()) == ["c0", "c2", "c3", "c5"]
    assert quarantined.height == 2


def test_alignment_is_identical_with_one_and_two_worker_processes(tmp_path):
    # pocketsphinx for English; TTS+DTW (an espeak-ng reference per utterance) for Spanish
    utterances = [
        _utterance(tmp_path, "en-1", "please say yes to the plan", "en-us+f1", "en"),
        _utterance(tmp_path, "es-1", "la palabra arriba es verde", "es-419+f3", "es"),
        _utterance(tmp_path, "en-2", "we should go up the hill now", "en-us+m2", "en"),
        _utterance(tmp_path, "es-2", "dime arriba por favor", "es+m2", "es"),
        _utterance(tmp_path, "xx-1", "something", "en-us+f1", "xx"),
    ]
    (tmp_path / "broken.wav").write_bytes(b"RIFF....not audio")
    utterances.insert(
        2, {**utterances[0], "utterance_id": "bad", "uri": str(tmp_path / "broken.wav")}
    )
    settings = AlignmentSettings(unknown_per_utterance=1)
    results = {}
    for workers in (1, 2):
        store = ClipStore.at(tmp_path / f"clips{workers}")
        rows, failures, g2p = align_utterances(
            utterances,
            ["yes", "up", "arriba"],
            AlignerChoice(settings, SR),
            store,
            AudioSettings(),
            settings,
            workers=workers,
            batch_size=1,
        )
        audio = [store.read_bytes(r["uri"]) for r in rows]
        results[workers] = (
            [{k: v for k, v in r.items() if k != "uri"} for r in rows],
            failures,
            g2p,
            audio,
        )
    one, two = results[1], results[2]
    assert {r["label"] for r in one[0]} == {"yes", "up", "arriba", "_unknown_"}
    assert {r["aligner"] for r in one[0]} == {"pocketsphinx", "tts_dtw"}
    assert [f.utterance_id for f in one[1]] == ["bad", "xx-1"]  # failures in input order
    assert one == two  # same rows, failures, pronunciations and audio bytes
