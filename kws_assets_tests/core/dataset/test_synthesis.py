"""Synthetic clips: voice diversity, carrier phrases, negatives, speaker-disjoint splits."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from kws_assets.config import curation_settings, with_language_voices
from kws_assets.core.audio import quality
from kws_assets.core.audio.io import resample
from kws_assets.core.dataset import curation
from kws_assets.core.dataset import synthesis as S
from kws_assets.core.dataset.splits import assign_splits
from kws_assets.core.speech import lexicon, tts
from kws_assets.core.speech.alignment import Aligner
from kws_assets.core.storage.clip_store import ClipStore
from kws_assets.settings import (
    UNKNOWN_LABEL,
    AudioSettings,
    KwsConfig,
    NegativeSettings,
    NoiseSettings,
    SplitSettings,
    TtsSettings,
    parse_yaml,
)

AUDIO = AudioSettings()
KEYWORDS = ["yes", "no", "stop"]
GRID = TtsSettings(
    voices=["en-us+m1", "en+f2"],
    rates=[150],
    pitches=[50],
    sampled_speakers=10,
    renders_per_speaker=2,
    carrier_probability=0.5,
    accents=["en-us", "en-gb-scotland", "en-029"],
    variants=["f1", "m3", "Annie", "klatt", "no-such-variant"],
)
NOISE = NoiseSettings(noisy_copies_per_clip=1)
NEGATIVES = NegativeSettings(
    neighbours_per_keyword=3, other_words=6, unknown_ratio=0.5, speech_windows=4
)
HELD_OUT = ["en-us+Annie"]


def recipes_for(keywords: list[str], grid: TtsSettings = GRID) -> list[S.ClipRecipe]:
    return S.keyword_recipes(
        keywords,
        grid,
        NOISE,
        seed=1,
        salt="s",
        negatives=NEGATIVES,
        all_keywords=KEYWORDS,
        exclude_voices=HELD_OUT,
    )


def test_sampled_speakers_span_accents_and_variants_and_skip_held_out_voices() -> None:
    speakers = S.sampled_speakers(GRID, "en", exclude=HELD_OUT)
    assert len(speakers) == 10 == len(set(speakers))
    assert speakers == S.sampled_speakers(GRID, "en", exclude=HELD_OUT)  # seeded by tts.seed only
    accents = {s.split("+")[0] for s in speakers}
    variants = {s.split("+")[1] for s in speakers}
    assert accents <= set(GRID.accents) and len(accents) == 3
    assert variants <= {"f1", "m3", "Annie", "klatt"}  # variants espeak-ng lacks are never drawn
    assert "en-us+Annie" not in speakers
    # more speakers than pairs: every pair once
    everyone = S.sampled_speakers(GRID.model_copy(update={"sampled_speakers": 100}), "en")
    assert len(everyone) == 3 * 4


def test_grid_counts_and_render_diversity() -> None:
    recipes = recipes_for(["yes"])
    by_label = collections.Counter(r.label for r in recipes)
    per_keyword = 2 * 1 * 1 * (1 + NOISE.noisy_copies_per_clip) + 10 * 2
    assert by_label["yes"] == per_keyword
    clean_renders = 2 + 10 * 2
    assert (
        by_label["_unknown_"]
        == round(NEGATIVES.unknown_ratio * clean_renders) + NEGATIVES.speech_windows
    )
    sampled = [r for r in recipes if r.label == "yes" and r.voice not in GRID.voices]
    assert len({(r.rate, r.pitch, r.word_gap) for r in sampled}) > len(sampled) // 2
    for r in sampled:
        assert GRID.rate_range[0] <= r.rate <= GRID.rate_range[1]
        assert GRID.pitch_range[0] <= r.pitch <= GRID.pitch_range[1]
        assert GRID.word_gap_range[0] <= r.word_gap <= GRID.word_gap_range[1]
    carriers = [r for r in sampled if r.carrier]
    assert 0.2 < len(carriers) / len(sampled) < 0.8
    assert all(r.carrier in GRID.carrier_phrases for r in carriers)
    assert len({r.clip_id for r in recipes}) == len(recipes)


def test_unknown_words_are_close_but_never_keywords_or_homophones() -> None:
    lex = lexicon.load_lexicon()
    forbidden = set(KEYWORDS) | lexicon.homophones("no", lex)
    words_by_partition = {k: S.negative_words(k, KEYWORDS, NEGATIVES) for k in KEYWORDS}
    for keyword, words in words_by_partition.items():
        assert not set(words) & forbidden, words
        neighbours = words[: NEGATIVES.neighbours_per_keyword]
        for word in neighbours:  # phoneme neighbours that are not mere extensions ("stops")
            distance = min(
                lexicon.edit_distance(a, b) for a in lex.get(keyword) for b in lex.get(word)
            )
            assert 1 <= distance <= NEGATIVES.max_phoneme_distance
            assert not any(p[: len(k)] == k for p in lex.get(word) for k in lex.get(keyword))
    # the other words are shared out: each is rendered in exactly one keyword partition
    others = [
        w for k, ws in words_by_partition.items() for w in ws[NEGATIVES.neighbours_per_keyword :]
    ]
    assert len(others) == len(set(others))
    union = set(others) | {w for ws in words_by_partition.values() for w in ws}
    spoken = {r.text for r in recipes_for(KEYWORDS) if r.label == "_unknown_" and r.crop_at is None}
    assert spoken == union


def test_every_synthetic_speaker_stays_in_one_split() -> None:
    rows = [{"speaker": r.speaker, "label": r.label} for r in recipes_for(KEYWORDS)]
    table = pl.DataFrame(rows).with_columns(
        pl.Series("split", assign_splits([r["speaker"] for r in rows], SplitSettings()))
    )
    assert table.group_by("speaker").agg(pl.col("split").n_unique())["split"].max() == 1
    assert set(table["split"]) == {"train", "val", "test"}
    # a sampled voice says every keyword, so its identity carries across keyword partitions
    partitions = [{r.speaker for r in recipes_for([k]) if r.label == k} for k in KEYWORDS]
    assert partitions[0] == partitions[1] == partitions[2]


def test_word_span_covers_the_word_from_its_event_to_the_next() -> None:
    events = [
        tts.WordEvent("please", 0.0, 0, 6),
        tts.WordEvent("say", 0.4, 7, 3),
        tts.WordEvent("yes", 0.62, 11, 3),
        tts.WordEvent("again", 0.9, 15, 5),
    ]
    assert S.word_span(events, 11, 3, 1.4) == (0.62, 0.9)
    assert S.word_span(events, 15, 5, 1.4) == (0.9, 1.4)
    with pytest.raises(tts.TtsError):
        S.word_span(events, 30, 3, 1.4)


def test_a_keyword_cut_from_a_carrier_phrase_is_centred_on_the_spoken_word() -> None:
    voice, sentence = "en-us+m3", "please say yes again"
    recipe = S.ClipRecipe("yes", "yes", voice, 150, 50, 2, carrier="please say {} again")
    clip = S.render_keyword_clip(recipe, AUDIO)
    assert clip.shape == (AUDIO.clip_samples,)
    spoken = tts.synthesize(sentence, voice=voice, rate=150, pitch=50, word_gap=2)
    audio = resample(spoken.samples, spoken.sample_rate, AUDIO.sample_rate)
    aligned = Aligner(sample_rate=AUDIO.sample_rate).align(audio, AUDIO.sample_rate, sentence)
    assert aligned.ok, aligned.error
    yes = next(w for w in aligned.words if w.word == "yes")
    # where the clip sits in the sentence: cross-correlate its middle with the sentence audio
    middle = clip[AUDIO.clip_samples // 4 : 3 * AUDIO.clip_samples // 4]
    lag = int(np.argmax(np.correlate(audio, middle, mode="valid")))
    centre_s = (lag + middle.size / 2) / AUDIO.sample_rate
    assert yes.start_s - 0.05 <= centre_s <= yes.end_s + 0.05, (centre_s, yes)
    # neighbouring words stay in the clip, as in a cut from running speech
    assert np.abs(clip[: AUDIO.clip_samples // 5]).max() > 0.01


def test_keywords_of_another_language_use_that_languages_voices(tmp_path) -> None:
    grid = GRID.model_copy(update={"keyword_languages": {"hola": "es"}, "sampled_speakers": 3})
    recipes = S.keyword_recipes(
        ["hola"], grid, NOISE, seed=1, negatives=NEGATIVES, all_keywords=["hola", "yes"]
    )
    assert recipes and all(r.label == "hola" for r in recipes)  # no English negatives for it
    assert all(r.voice.split("+")[0] in tts.list_voices("es") for r in recipes)
    assert all(r.carrier is None and r.language == "es" for r in recipes)
    rows, failures = S.render_to_store(recipes[:1], AUDIO, ClipStore.at(tmp_path), "en")
    assert not failures and rows[0]["language"] == "es"


def test_a_voice_espeak_lacks_is_a_failure_row_not_an_exception(tmp_path) -> None:
    bad = S.ClipRecipe("yes", "yes", "xx-nowhere+m1", 150, 50, 0)
    good = S.ClipRecipe("yes", "yes", "en-us+m1", 150, 50, 0, carrier="the word is {}")
    rows, failures = S.render_to_store([bad, good], AUDIO, ClipStore.at(tmp_path), "en")
    assert [r["clip_id"] for r in rows] == [good.clip_id]
    assert [f.clip_id for f in failures] == [bad.clip_id]
    assert "xx-nowhere" in failures[0].reason


def test_running_speech_windows_hold_no_keyword_and_sit_where_drawn() -> None:
    lex = lexicon.load_lexicon()
    forbidden = set(KEYWORDS) | {h for k in KEYWORDS for h in lexicon.homophones(k, lex)}
    windows = [r for r in recipes_for(["stop"]) if r.crop_at is not None]
    assert len(windows) == NEGATIVES.speech_windows
    neighbours = set(
        S.negative_words("stop", KEYWORDS, NEGATIVES)[: NEGATIVES.neighbours_per_keyword]
    )
    for recipe in windows:
        words = recipe.text.split()
        low, high = NEGATIVES.window_sentence_words
        assert recipe.label == "_unknown_" and low <= len(words) <= high
        assert not set(words) & forbidden
        assert set(words) & neighbours  # a hard negative inside running speech
    # crop_at 0 centres the window on the first sound: its first half is only the noise floor
    early = S.ClipRecipe(
        "_unknown_", "water table garden", "en-us+m2", 160, 50, 0, crop_at=0.0, floor_dbfs=-70.0
    )
    late = S.ClipRecipe(
        "_unknown_", "water table garden", "en-us+m2", 160, 50, 0, crop_at=1.0, floor_dbfs=-70.0
    )
    half = AUDIO.clip_samples // 2
    a, b = S.render_keyword_clip(early, AUDIO), S.render_keyword_clip(late, AUDIO)
    rms = lambda x: float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))  # noqa: E731 - a one-line local helper
    assert rms(a[: half - 400]) < 0.01 * rms(a[half:])
    assert rms(b[half + 400 :]) < 0.01 * rms(b[:half])


def test_rendered_clips_are_identical_with_one_and_two_worker_processes(tmp_path) -> None:
    recipes = [
        S.ClipRecipe("yes", "yes", voice, rate, 50, 0)
        for voice in ("en-us+m1", "en-us+f2", "es+m2")
        for rate in (140, 170, 200)
    ] + [S.ClipRecipe("yes", "yes", "xx-nowhere+m1", 150, 50, 0)]  # a failure row
    outputs = {}
    for workers in (1, 2):
        store = ClipStore.at(tmp_path / f"clips{workers}")
        tts.synthesize("something else first", voice="en-us+f4")  # history must not matter
        rows, failures = S.render_to_store(
            recipes, AUDIO, store, "en", workers=workers, batch_size=3
        )
        audio = [store.read_bytes(r["uri"]) for r in rows]
        outputs[workers] = ([{**r, "uri": None} for r in rows], failures, audio)
    assert len(outputs[1][0]) == 9 and len(outputs[1][1]) == 1
    assert outputs[1] == outputs[2]  # same rows, failures and audio bytes


TINY = Path(__file__).resolve().parents[2] / "fixtures" / "tiny.yaml"


def phrase_config(phrase: str, language: str) -> KwsConfig:
    """The tiny test config with one keyword phrase (in French: French espeak-ng voices)."""
    data = parse_yaml(TINY.read_text())
    data.update(keywords=[phrase], language=language)
    if language != "en":
        data["tts"] = {k: v for k, v in data["tts"].items() if k not in ("voices", "engines")}
        data["sources"] = [{k: v for k, v in data["sources"][0].items() if k != "voices"}]
        data["evaluation"] = {k: v for k, v in data["evaluation"].items() if k != "held_out_voices"}
    return with_language_voices(KwsConfig.model_validate(data))


def _isolated_and_clean(recipe: S.ClipRecipe) -> bool:
    return recipe.carrier is None and recipe.noise_kind is None and recipe.crop_at is None


def _edge_level_db(clip: np.ndarray, sample_rate: int) -> float:
    """The louder of a clip's first and last 10 ms, in dB below its loudest 10 ms: speech that
    runs off the clip's ends (a phrase cut to its middle) is loud there, a clip that holds the
    whole phrase has only its noise floor there."""
    frame = sample_rate // 100
    frames = clip[: len(clip) // frame * frame].astype(np.float64).reshape(-1, frame)
    rms = np.sqrt(np.mean(frames**2, axis=1)) + 1e-12
    return float(20 * np.log10(max(rms[0], rms[-1]) / rms.max()))


@pytest.mark.parametrize(("phrase", "language"), [("hey jarvis", "en"), ("bonjour maison", "fr")])
def test_a_phrase_config_keeps_whole_phrases_and_its_part_phrase_negatives(
    tmp_path, phrase: str, language: str
) -> None:
    """The window fits the phrase: every kept phrase clip holds all of its render (none is cut
    to its middle), a render longer than the window is quarantined with its reason, and the
    validated set has the phrase's words alone and with one word swapped as ``_unknown_``."""
    cfg = phrase_config(phrase, language)
    assert cfg.audio.clip_seconds > 1.0
    recipes = S.keyword_recipes(
        [phrase],
        cfg.tts,
        cfg.noise,
        seed=0,
        salt="phrase",
        **S.recipe_options(language, cfg.negatives, [phrase], cfg.evaluation.held_out_voices),
    )
    by_id = {r.clip_id: r for r in recipes}
    store = ClipStore.at(tmp_path / "clips")
    rows, failures = S.render_to_store(recipes, cfg.audio, store, language)

    # at one second, the phrase does not fit every render: those are quarantined, never cut
    second = cfg.audio.model_copy(update={"clip_seconds": 1.0})
    phrase_recipes = [r for r in recipes if r.label == phrase]
    _, at_one_second = S.render_to_store(phrase_recipes, second, ClipStore.at(tmp_path / "1s"), "x")
    too_long = [f for f in at_one_second if f.code == quality.SPEECH_OVER_WINDOW]
    assert too_long and all("not cut to its middle" in f.reason for f in too_long)
    assert len([f for f in failures if f.code == quality.SPEECH_OVER_WINDOW]) < len(too_long)

    kept = [row for row in rows if row["label"] == phrase]
    assert len(kept) >= len(phrase_recipes) * 3 // 4
    for row in kept:
        recipe = by_id[row["clip_id"]]
        if _isolated_and_clean(recipe):
            clip = store.read(row["uri"]).samples
            assert _edge_level_db(clip, cfg.audio.sample_rate) < -30.0, recipe

    candidates = curation.clip_table(
        rows + curation.render_dead_letters(failures, S.SYNTHETIC_SOURCE, language)
    )
    result = curation.curate(candidates, curation_settings(cfg), store.read)
    quarantined = result.quarantined.filter(pl.col("reason") == quality.SPEECH_OVER_WINDOW)
    assert quarantined.height == len([f for f in failures if f.code == quality.SPEECH_OVER_WINDOW])
    assert set(quarantined["stage"]) <= {"synthesis"}
    texts = {
        by_id[clip_id].text
        for clip_id in result.validated.filter(pl.col("label") == UNKNOWN_LABEL)["clip_id"]
        if clip_id in by_id
    }
    first, second_word = phrase.split()
    assert {first, second_word} <= texts  # each word alone
    assert any(t.startswith(f"{first} ") and t != phrase for t in texts)  # second word swapped
    assert any(t.endswith(f" {second_word}") and t != phrase for t in texts)  # first swapped
    assert f"{second_word} {first}" in texts  # another order


def test_a_keywords_recipes_stay_the_same_when_another_keyword_is_swapped() -> None:
    """Changing one keyword of the list leaves every other keyword's clips (its renders, its
    _unknown_ words and its windows of running speech) as they were: their renders stay cached
    and a re-run renders only the new keyword's partition."""
    cfg = with_language_voices(KwsConfig())

    def recipes(keywords: list[str]) -> list[S.ClipRecipe]:
        return S.keyword_recipes(
            ["yes"],
            cfg.tts,
            cfg.noise,
            seed=0,
            salt="swap",
            **S.recipe_options("en", cfg.negatives, keywords, cfg.evaluation.held_out_voices),
        )

    before = recipes(["yes", "no", "up", "down", "stop", "go"])
    after = recipes(["yes", "no", "up", "down", "stop", "house"])
    assert any(r.label == UNKNOWN_LABEL and r.text.count(" ") >= 4 for r in before)
    assert after == before
