"""The negative material: planned by hours and split voices, rendered deterministically, stored
once by content, a bad voice a failure row and not the end of the run."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from kws_assets.core.dataset import negative_material as nm
from kws_assets.core.storage.clip_store import ClipStore
from kws_assets.settings import AudioSettings, NegativeMaterialSettings, NegativeSettings

SR = 16000
WORDS = ["table", "window", "garden", "river", "paper", "morning", "yellow", "simple"]
TEXTS = ("table window garden river", "paper morning yellow simple table")
MATERIAL = nm.MaterialWords(
    tuple(WORDS), {"yes": ("yet", "mess"), "stop": ("top", "step")}, {"yes": ("c1",)}
)


def settings(**kw) -> NegativeMaterialSettings:
    base = {"hours": 0.02, "heldout_hours": 0.01, "segment_seconds": 12.0}
    return NegativeMaterialSettings(**{**base, **kw})


def test_the_plan_follows_the_hours_and_keeps_each_split_to_its_voices():
    voices = {"train": ["tts:en-us", "flite:awb"], "heldout": ["tts:en-us+f3"]}
    plan = nm.plan_segments(
        settings(hours=0.2, heldout_hours=0.05), "en", voices, ["tts:de"], MATERIAL
    )
    train = [r for r in plan if r.split == "train"]
    held = [r for r in plan if r.split == "heldout"]
    assert len(train) == 60 and len(held) == 15  # 0.2 h and 0.05 h of 12-s segments
    assert {r.speaker for r in train if r.kind == "speech"} <= set(voices["train"])
    assert {r.speaker for r in held if r.kind == "speech"} <= set(voices["heldout"])
    assert {r.kind for r in train} >= {"speech", "music"}
    assert all(r.language == "de" for r in plan if r.kind == "other_language")
    assert len({r.segment_id for r in plan}) == len(plan)
    more = nm.plan_segments(settings(hours=0.4, heldout_hours=0.05), "en", voices, [], MATERIAL)
    assert len([r for r in more if r.split == "train"]) == 120  # grows with its setting
    speech = [r for r in plan if r.kind == "speech"]
    assert {r.owner for r in speech} == {"yes", "stop"}  # each keyword's segments in turn
    assert all(r.texts for r in plan if r.kind != "music")
    other_words = nm.MaterialWords(tuple(w + "s" for w in WORDS), MATERIAL.neighbours)
    other = nm.plan_segments(
        settings(hours=0.2, heldout_hours=0.05), "en", voices, ["tts:de"], other_words
    )
    for before, after in zip(plan, other, strict=True):  # music, other languages: the same
        same = before.kind in ("music", "other_language")
        assert (before.segment_id == after.segment_id) == same, before.kind


def test_a_changed_keyword_changes_its_own_segments_and_those_that_drew_a_changed_word():
    """A segment belongs to one keyword: swapping another keyword, or one common word (the
    slot the new keyword frees or forbids), leaves the rest of the material as it was."""
    voices = {"train": ["tts:en-us"], "heldout": ["tts:en-us+f3"]}
    config = settings(hours=0.2, heldout_hours=0.05, music_share=0, noise_share=0)
    common = tuple(f"word{i}" for i in range(200))
    before = nm.MaterialWords(common, {"yes": ("yet",), "go": ("goat", "toe")}, {"go": ("g1",)})
    after = nm.MaterialWords(
        (*common[:-1], "home"), {"yes": ("yet",), "house": ("mouse", "hose")}, {"house": ("h1",)}
    )
    old = nm.plan_segments(config, "en", voices, [], before)
    new = nm.plan_segments(config, "en", voices, [], after)
    kept = [a for a, b in zip(old, new, strict=True) if a.segment_id == b.segment_id]
    for a, b in zip(old, new, strict=True):
        if a.owner == "go":
            assert b.owner == "house" and a.segment_id != b.segment_id
        elif a.segment_id != b.segment_id:
            assert any(common[-1] in t.split() for t in a.texts)  # it drew the changed word
    assert 0.3 * len(old) < len(kept) < len(old)
    assert any("yet" in t.split() for r in kept for t in r.texts)  # hard negatives kept


def test_a_split_without_voices_is_a_clear_error():
    with pytest.raises(nm.MaterialError, match="heldout"):
        nm.plan_segments(settings(), "en", {"train": ["tts:en-us"]}, [], MATERIAL)


def test_other_languages_skip_the_configs_own():
    voices = nm.other_language_voices(settings(other_languages=["en", "de", "xx"]), "en-us")
    assert voices == ["tts:de"]


@pytest.mark.parametrize("kind", ["speech", "other_language", "music", "noise"])
def test_each_kind_renders_its_length_deterministically(kind):
    recipe = nm.SegmentRecipe(
        "train",
        3,
        kind,
        "tts:en-us" if kind != "other_language" else "tts:de",
        "en" if kind != "other_language" else "de",
        6.0,
        7,
        "x",
        texts=() if kind == "music" else TEXTS,
    )
    a = nm.render_segment(recipe, [], settings(), SR)
    b = nm.render_segment(recipe, [], settings(), SR)
    assert a.shape == (6 * SR,) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert np.abs(a).max() <= 1.0
    assert float(np.sqrt(np.mean(a**2))) > 10 ** (-45 / 20)  # not just the noise floor


def test_keyword_fragments_are_cut_from_the_start_or_the_end_and_land_in_the_speech():
    rng = np.random.default_rng(0)
    clip = np.zeros(SR, np.float32)
    clip[4000:12000] = 0.5 * np.sin(np.arange(8000) * 0.3)
    lengths = [nm.keyword_fragment(clip, SR, rng).size for _ in range(50)]
    assert min(lengths) >= 0.25 * 8000 - 200 and max(lengths) <= 0.55 * 8000 + 200
    recipe = nm.SegmentRecipe("train", 0, "speech", "tts:en-us", "en", 8.0, 1, "x", texts=TEXTS)
    plain = nm.render_segment(recipe, [], settings(fragments_per_minute=0), SR)
    with_fragments = nm.render_segment(recipe, [clip], settings(fragments_per_minute=60), SR)
    assert not np.array_equal(plain, with_fragments)


def validated_rows(tmp_path, store: ClipStore) -> pl.DataFrame:
    rows = []
    for i, (speaker, split) in enumerate(
        [
            ("tts:en-us", "train"),
            ("tts:en-us+f2", "val"),
            ("tts:xx-nonexistent", "train"),
            ("alice", "train"),
        ]
    ):
        tone = (0.3 * np.sin(np.arange(SR) * 0.2)).astype(np.float32)
        uri = store.put(f"k/{i}.wav", tone, SR)
        rows.append(
            {"clip_id": f"c{i}", "uri": uri, "label": "yes", "split": split, "speaker": speaker}
        )
    return pl.DataFrame(rows)


def test_build_material_stores_each_segment_once_and_reports_a_bad_voice(tmp_path):
    store = ClipStore.at(tmp_path / "clips")
    validated = validated_rows(tmp_path, store)
    config = settings(
        hours=0.03, heldout_hours=0.01, music_share=0.0, noise_share=0.0, other_language_share=0.0
    )

    def build():
        return nm.build_material(
            config,
            AudioSettings(),
            NegativeSettings(other_words=20),
            ["yes"],
            "en",
            validated,
            store,
            lambda uri: store.read(uri, target_sr=SR).samples,
        )

    first = build()
    assert first.voices == {
        "train": ["tts:en-us", "tts:xx-nonexistent"],
        "heldout": ["tts:en-us+f2"],
    }
    bad = [f for f in first.failures if f.speaker == "tts:xx-nonexistent"]
    assert bad and all("spoke none" in f.reason for f in bad)
    table = first.table
    assert table.height == 12 - len(first.failures)  # 0.04 h of 12-s segments, less the failed
    assert set(table["split"]) == {"train", "heldout"}
    for uri in table["uri"]:
        assert store.read(uri, target_sr=SR).samples.size == 12 * SR
    again = build()
    assert again.table.equals(table)
    assert any("already stored" in note for note in again.notes)
