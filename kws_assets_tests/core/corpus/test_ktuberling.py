"""Sound lists of ktuberling / klettres: parsing generated XML, and the real English files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kws_assets.core.audio.io import write_wav
from kws_assets.core.corpus.ktuberling import (
    KLETTRES_DIR,
    KTUBERLING_SOUNDS_DIR,
    SoundListError,
    id_word,
    ktuberling_sounds,
    parse_sound_list,
    write_dev_manifest,
)
from kws_assets.core.corpus.real_sources import load_real_source
from kws_assets.settings import UNKNOWN_LABEL, AudioSettings, RealSourceSettings

THEME = b"""<?xml version="1.0" encoding="utf-8"?>
<language code="xx">
    <sound name="ball" file="xx/patate_ballon.wav" />
    <sound name="egypt_camel" file="xx/egypt_camel.wav" />
    <sound name="kid-tux" file="xx/kid.wav" />
    <sound name="tv_breakdown_lorry" file="xx/lorry.wav" />
    <sound name="xmas_ball" file="xx/xmas_boule.wav" />
    <sound name="again" file="xx/patate_ballon.wav" />
    <sound name="" file="xx/x.wav" />
    <sound name="nofile" />
    <sound name="escape" file="../../etc/passwd" />
    <sound name="gone" file="xx/gone.wav" />
</language>
"""


def _theme_dir(tmp_path: Path) -> Path:
    for stem in ("patate_ballon", "egypt_camel", "kid", "lorry", "xmas_boule"):
        write_wav(tmp_path / "xx" / f"{stem}.wav", np.zeros(800, np.float32), 16000)
    (tmp_path / "xx.soundtheme").write_bytes(THEME)
    return tmp_path


def test_generated_soundtheme(tmp_path: Path) -> None:
    sounds = parse_sound_list(THEME, _theme_dir(tmp_path), "xx.soundtheme")
    assert sounds.language == "xx"
    assert [(e.name, e.word, e.file_word) for e in sounds.entries] == [
        ("ball", "ball", "ballon"),
        ("egypt_camel", "camel", "camel"),
        ("kid-tux", "kid", "kid"),
        ("tv_breakdown_lorry", "breakdown lorry", "lorry"),
        ("xmas_ball", "ball", "boule"),
    ]
    assert [p.reason for p in sounds.problems] == [
        "duplicate_file",
        "missing_name",
        "missing_file",
        "path_outside_folder",
        "file_absent",
    ]
    assert id_word("pizzeria_brocolli") == "brocolli" and id_word("tux-apple") == "apple"


@pytest.mark.parametrize(
    "data, message",
    [
        (b"<language code='x'><sound name='a' file='a.wav'>", "well-formed"),
        (b"<!DOCTYPE x [<!ENTITY a 'aaaa'>]><language>&a;</language>", "DTD"),
        (b"<language>" + b" " * (1 << 20) + b"</language>", "bytes"),
    ],
)
def test_bad_xml_is_refused(tmp_path: Path, data: bytes, message: str) -> None:
    with pytest.raises(SoundListError, match=message):
        parse_sound_list(data, tmp_path)


def test_dev_manifest_with_a_keyword_map(tmp_path: Path) -> None:
    root = _theme_dir(tmp_path)
    dev = write_dev_manifest(
        "xx", {"ballon": "ball", "kamel": "egypt_camel"}, tmp_path / "out", sounds_dir=root
    )
    # by id: the Christmas ball is another object, spoken with another word
    assert dev.label_counts == {"ballon": 1, "kamel": 1, UNKNOWN_LABEL: 3}
    by_word = write_dev_manifest("xx", ["ball", "boule"], tmp_path / "out", sounds_dir=root)
    assert by_word.label_counts == {"ball": 1, "boule": 1, UNKNOWN_LABEL: 3}
    assert dev.path.read_text().splitlines()[0] == "path,label,speaker,word"
    with pytest.raises(ValueError, match="zebra"):
        write_dev_manifest("xx", ["zebra"], tmp_path / "out", sounds_dir=root)
    with pytest.raises(SoundListError, match="ktuberling-data"):
        ktuberling_sounds("yy", root)


EN_KEYWORDS = [
    "ball",
    "hat",
    "nose",
    "train",
    "cheese",
    "rocket",
    "camel",
    "donkey",
    "monster",
    "hotel",
]


@pytest.mark.skipif(
    not (KTUBERLING_SOUNDS_DIR / "en.soundtheme").is_file(),
    reason="Debian ktuberling-data is not installed",
)
def test_real_english_ktuberling(tmp_path: Path) -> None:
    klettres = ["en", "en_GB"] if (KLETTRES_DIR / "en_GB" / "sounds.xml").is_file() else []
    dev = write_dev_manifest("en", EN_KEYWORDS, tmp_path, klettres_languages=klettres)
    source = RealSourceSettings(name="ktuberling_en", manifest=str(dev.path), kind="clips")
    clips = load_real_source(source, EN_KEYWORDS, AudioSettings())
    assert clips.rejections == []
    assert len(clips) >= 60
    ktuberling = [
        lab for lab, who in zip(clips.labels, clips.speakers, strict=True) if who == "ktuberling-en"
    ]
    assert len(ktuberling) == 71
    assert all(ktuberling.count(k) == 1 for k in EN_KEYWORDS)  # its speaker says each once
    assert ktuberling.count(UNKNOWN_LABEL) == 71 - len(EN_KEYWORDS)
    if klettres:  # the en_GB klettres speaker says "BALL" among its syllables
        extra = [
            (w, lab)
            for w, lab, who in zip(clips.words, clips.labels, clips.speakers, strict=True)
            if who == "klettres-en_GB" and lab != UNKNOWN_LABEL
        ]
        assert extra == [("BALL", "ball")]
    labelled = dict(zip(clips.words, clips.labels, strict=True))
    assert labelled["egypt_camel"] == "camel" and labelled["moon_rocket"] == "rocket"
    assert labelled["umbrella"] == UNKNOWN_LABEL
    peaks = np.abs(clips.samples).max(axis=1)
    assert peaks.min() > 0.01  # a word in every clip, not padding


CONFIG = Path(__file__).resolve().parents[3] / "configs" / "ktuberling_en.yaml"


@pytest.mark.skipif(
    not (KTUBERLING_SOUNDS_DIR / "en.soundtheme").is_file()
    or not (KLETTRES_DIR / "en_GB" / "sounds.xml").is_file(),
    reason="Debian ktuberling-data / klettres-data is not installed",
)
def test_committed_english_dev_manifest_is_current(tmp_path: Path) -> None:
    """configs/real/ktuberling_en.csv is what write_dev_manifest writes for the config's
    keywords."""
    import yaml

    raw = yaml.safe_load(CONFIG.read_text())
    (entry,) = raw["evaluation"]["real_sources"]
    source = RealSourceSettings(**entry)
    committed = CONFIG.parent / source.manifest
    fresh = write_dev_manifest("en", raw["keywords"], tmp_path, klettres_languages=["en", "en_GB"])
    assert committed.read_text() == fresh.path.read_text()
