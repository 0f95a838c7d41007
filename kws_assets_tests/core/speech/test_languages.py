"""Language codes, the espeak-ng voices that speak them, per-language defaults and fillers."""

from __future__ import annotations

import pytest

from kws_assets.config import with_language_voices
from kws_assets.core.corpus.connectors.demo import FILLER_WORDS, demo_recipe_hash, demo_sentences
from kws_assets.core.speech import tts
from kws_assets.core.speech.fillers import CARRIER_PHRASES, carrier_phrases, filler_words
from kws_assets.core.speech.fillers import FILLER_WORDS as FILLERS_BY_LANGUAGE
from kws_assets.core.speech.languages import (
    LanguageNotSpokenError,
    alignment_voice,
    default_voices,
    is_english,
    lookup,
    normalize_language,
    primary_subtag,
    voices_for,
)
from kws_assets.settings import KwsConfig, TtsSettings


def test_codes_are_normalised():
    assert normalize_language(" es_MX ") == "es-mx"
    assert normalize_language("zh-CN") == "cmn"
    assert primary_subtag("fr_BE") == "fr"
    assert is_english("en-US") and is_english("en") and not is_english("es")
    assert lookup({"es": 1, "es-MX": 2}, "es_mx") == 2
    assert lookup({"es": 1}, "es-AR") == 1
    assert lookup({"es": 1}, "fr") is None


def test_voices_of_a_language_exact_tag_first():
    assert voices_for("es")[0] == "es"
    assert voices_for("es-419")[0] == "es-419"
    assert set(voices_for("fr")) >= {"fr", "fr-be", "fr-ch"}
    assert "kok" not in voices_for("ko")  # Konkani is not a Korean voice
    assert not any("latn" in v for v in voices_for("cmn"))
    assert voices_for("xx") == []


def test_alignment_voice_and_overrides():
    assert alignment_voice("es") == "es"
    assert alignment_voice("es-MX", {"es": "es-419"}) == "es-419"
    assert alignment_voice("pt-BR") == "pt-br"
    with pytest.raises(LanguageNotSpokenError):
        alignment_voice("xx")


def test_default_voices_are_distinct_speakers_of_the_language():
    voices = default_voices("de", 12)
    assert len(voices) == len(set(voices)) == 12
    assert all(v.split("+")[0] in voices_for("de") for v in voices)
    for voice in voices[:3]:
        assert tts.synthesize("hallo", voice=voice).words


def test_a_non_english_config_gets_its_languages_voices():
    cfg = with_language_voices(KwsConfig(language="es", keywords=["Sí", "arriba"]))
    assert cfg.keywords == ["sí", "arriba"]
    assert all(v.split("+")[0] in {"es", "es-419"} for v in cfg.tts.voices)
    assert cfg.tts.accents == []  # = every Spanish voice
    assert cfg.tts.carrier_phrases == list(CARRIER_PHRASES["es"])
    demo = cfg.sources[0].voices
    held_out = cfg.evaluation.held_out_voices
    assert all(v.split("+")[0] in {"es", "es-419"} for v in demo + held_out)
    assert not (set(demo) & set(cfg.tts.voices)) and not (
        set(held_out) & set(demo + cfg.tts.voices)
    )


def test_explicit_voice_lists_are_kept():
    cfg = with_language_voices(
        KwsConfig(
            language="fr",
            tts={"voices": ["fr+m1"], "carrier_phrases": []},
            sources=[{"kind": "demo_tts", "name": "d", "voices": ["fr-be+f2"]}],
        )
    )
    assert cfg.tts.voices == ["fr+m1"] and cfg.tts.carrier_phrases == []
    assert cfg.sources[0].voices == ["fr-be+f2"]
    kept = with_language_voices(
        KwsConfig(language="de", tts=TtsSettings(voices=["de+m1"], rates=[150]))
    )
    assert kept.tts.voices == ["de+m1"] and kept.tts.rates == [150]
    english = with_language_voices(KwsConfig())
    assert english.tts.voices == TtsSettings().voices  # English defaults untouched


def test_a_language_without_voices_is_a_config_error():
    with pytest.raises(ValueError, match="no voice for language 'xx'"):
        with_language_voices(KwsConfig(language="xx"))


def test_filler_words_and_carriers_are_spoken_word_by_word():
    for language, words in FILLERS_BY_LANGUAGE.items():
        assert len(set(words)) == len(words) >= 30
        spoken = tts.synthesize(" ".join(words), voice=voices_for(language)[0])
        assert len(spoken.words) == len(words), language  # one word event per filler
        for phrase in carrier_phrases(language):
            assert phrase.count("{}") == 1
    assert filler_words("es-MX") == FILLERS_BY_LANGUAGE["es"]
    assert filler_words("sw") is None and carrier_phrases("sw") == ()


def test_demo_corpus_sentences_use_the_languages_fillers():
    spanish = demo_sentences(["sí", "no"], 3, seed=7, language="es")
    for keyword, sentence in spanish:
        others = [w for w in sentence.split() if w != keyword]
        assert keyword in sentence.split() and set(others) <= set(FILLERS_BY_LANGUAGE["es"])
    english = demo_sentences(["yes"], 2, seed=7)
    assert all(set(s.split()) - {"yes"} <= set(FILLER_WORDS) for _, s in english)
    # another keyword changed: the others' sentences stay (their recordings, their clips), but
    # for those that drew the new keyword as a filler
    before = demo_sentences(["yes", "no", "go"], 3, seed=7)
    after = demo_sentences(["yes", "no", "house"], 3, seed=7)
    kept = 0
    for (keyword, old), (_, new) in zip(before[:6], after[:6], strict=True):
        assert "house" not in new.split()
        assert new == old or "house" in old.split(), keyword
        kept += new == old
    assert kept >= 4
    source = KwsConfig().sources[0]
    assert demo_recipe_hash(source, ["sí"], 16000, "es") != demo_recipe_hash(source, ["sí"], 16000)


def test_the_shipped_spanish_config_loads_with_spanish_voices():
    from pathlib import Path

    from kws_assets.config import load_config

    cfg = load_config(Path(__file__).resolve().parents[3] / "configs" / "spanish.yaml")
    assert cfg.language == "es" and "sí" in cfg.keywords
    voices = cfg.tts.voices + cfg.sources[0].voices + cfg.evaluation.held_out_voices
    assert all(v.split("+")[0] in voices_for("es") for v in voices)
