"""Single-word recordings by people from Debian's KDE games, as real-speech dev sets.

``ktuberling-data`` ships, per language, a ``<lang>.soundtheme`` XML (``<language code="..">``
holding ``<sound name="ID" file="lang/file.ogg"/>``) and the recordings it names (one speaker
per language as far as the package tells; Ogg Vorbis or WAV, 0.3-2.8 s).  ``ID`` is an English
object id, often with a scene prefix (``egypt_camel``, ``tux-apple``); what is *spoken* is that
object's name in the theme's language.  In English the id is the word; other themes (fr, ca, da,
es, it, nl) name their files after the spoken word (``patate_ballon.wav``), while de, ru, uk, el,
sl, gl and wa reuse the English ids as file names, so their spoken words are not written anywhere
in the package and a keyword there must be given as ``{native spelling: object id}``.

``klettres-data`` has the same ``<sound name file>`` shape (``/usr/share/klettres/<lang>/
sounds.xml``, under ``<alphabet>`` and ``<syllables>``): spoken letters and short syllables or
words (en and en_GB are two different English speakers).  They are real speech but not object
words, so they serve as extra ``_unknown_`` clips (or as keywords if one is, e.g. ``no``).

The XML comes from a package but is still input: documents over ``MAX_XML_BYTES``, with a DTD
or entities, or that do not parse raise :class:`SoundListError`; a ``<sound>`` without name or
file, whose file leaves the package folder, is missing, or is listed twice is a
:class:`SoundProblem` and the rest is kept.
"""

from __future__ import annotations

import csv
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kws_assets.settings import UNKNOWN_LABEL

KTUBERLING_SOUNDS_DIR = Path("/usr/share/ktuberling/sounds")
KLETTRES_DIR = Path("/usr/share/klettres")
SOUND_THEME_SUFFIX = ".soundtheme"
KLETTRES_SOUND_LIST = "sounds.xml"
MAX_XML_BYTES = 1 << 20
# Scene prefixes/suffixes of ktuberling ids and localised file names (the word follows them).
SCENE_PREFIX = re.compile(
    r"^(?:egypt|egypte|tv|moon|lune|pizzeria|butterflies|papillons|robot_workshop|xmas|noel|"
    r"patate|patata|pizza|robin|robot|tux)[_-]",
    re.IGNORECASE,
)
TUX_SUFFIX = re.compile(r"[_-]tux$", re.IGNORECASE)
MISSING_NAME = "missing_name"
MISSING_FILE = "missing_file"
OUTSIDE_FOLDER = "path_outside_folder"
FILE_ABSENT = "file_absent"
DUPLICATE_FILE = "duplicate_file"
DEV_MANIFEST_COLUMNS = ("path", "label", "speaker", "word")


class SoundListError(ValueError):
    """A sound list (soundtheme / sounds.xml) that cannot be used at all."""


@dataclass(frozen=True)
class SoundEntry:
    """One recording named by a sound list."""

    name: str  # the id in the XML (ktuberling: English object id; klettres: the letters)
    word: str  # the object / letters as an English word: the id without its scene prefix
    file_word: str  # the file's stem without its scene prefix (the spoken word in fr, ca, da...)
    path: Path
    group: str = ""  # klettres: alphabet or syllables


@dataclass(frozen=True)
class SoundProblem:
    name: str
    file: str
    reason: str
    detail: str


@dataclass(frozen=True)
class SoundList:
    language: str
    entries: list[SoundEntry]
    problems: list[SoundProblem] = field(default_factory=list)


def id_word(name: str) -> str:
    """``egypt_camel`` -> ``camel``, ``kid-tux`` -> ``kid``, ``tux-apple`` -> ``apple``;
    underscores and hyphens inside become spaces (``breakdown lorry``)."""
    word = TUX_SUFFIX.sub("", SCENE_PREFIX.sub("", name.strip()))
    return " ".join(re.split(r"[_-]+", word)).strip().lower()


def _safe_xml(data: bytes, name: str) -> ET.Element:
    if len(data) > MAX_XML_BYTES:
        raise SoundListError(
            f"{name}: {len(data)} bytes, more than {MAX_XML_BYTES} for a sound list"
        )
    if b"<!DOCTYPE" in data.upper() or b"<!ENTITY" in data.upper():
        raise SoundListError(f"{name}: has a DTD or entities, which a sound list never needs")
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise SoundListError(f"{name}: not well-formed XML ({exc})") from exc


def _sounds(element: ET.Element, group: str = "") -> Iterator[tuple[ET.Element, str]]:
    for child in element:
        if child.tag == "sound":
            yield child, group
        else:
            yield from _sounds(child, group if child.tag == "language" else child.tag)


def parse_sound_list(
    data: bytes, base_dir: str | Path, name: str = "<sound list>", check_files: bool = True
) -> SoundList:
    """Entries of a ktuberling soundtheme or klettres sounds.xml whose ``file`` attributes are
    relative to ``base_dir`` (see the module docstring for what is rejected)."""
    root = _safe_xml(data, name)
    language_element = root if root.tag == "language" else root.find(".//language")
    language = (language_element.get("code", "") if language_element is not None else "").strip()
    base = Path(base_dir).resolve()
    entries: list[SoundEntry] = []
    problems: list[SoundProblem] = []
    seen: set[Path] = set()
    for element, group in _sounds(root):
        sound_name = " ".join((element.get("name") or "").split())
        file = (element.get("file") or "").strip()
        if not sound_name:
            problems.append(SoundProblem("", file, MISSING_NAME, "<sound> without a name"))
            continue
        if not file:
            problems.append(SoundProblem(sound_name, "", MISSING_FILE, "<sound> without a file"))
            continue
        path = (base / file).resolve()
        if os.path.isabs(file) or not path.is_relative_to(base):
            problems.append(
                SoundProblem(sound_name, file, OUTSIDE_FOLDER, f"{file} is not inside {base}")
            )
            continue
        if check_files and not path.is_file():
            problems.append(SoundProblem(sound_name, file, FILE_ABSENT, f"{path} does not exist"))
            continue
        if path in seen:
            problems.append(
                SoundProblem(
                    sound_name,
                    file,
                    DUPLICATE_FILE,
                    f"{file} is named by an earlier <sound> already",
                )
            )
            continue
        seen.add(path)
        entries.append(
            SoundEntry(sound_name, id_word(sound_name), id_word(Path(file).stem), path, group)
        )
    return SoundList(language, entries, problems)


def ktuberling_languages(sounds_dir: str | Path = KTUBERLING_SOUNDS_DIR) -> list[str]:
    """Languages with a soundtheme (``en``, ``fr``, ``sr@latin``...)."""
    return sorted(
        p.name[: -len(SOUND_THEME_SUFFIX)] for p in Path(sounds_dir).glob(f"*{SOUND_THEME_SUFFIX}")
    )


def ktuberling_sounds(language: str, sounds_dir: str | Path = KTUBERLING_SOUNDS_DIR) -> SoundList:
    """The recordings of one ktuberling language; raises :class:`SoundListError` when the theme
    is absent (install Debian's ``ktuberling-data``)."""
    theme = Path(sounds_dir) / f"{language}{SOUND_THEME_SUFFIX}"
    if not theme.is_file():
        raise SoundListError(
            f"{theme} not found: install ktuberling-data (apt-get install "
            f"ktuberling-data) or pick one of {ktuberling_languages(sounds_dir)}"
        )
    return parse_sound_list(theme.read_bytes(), sounds_dir, theme.name)


def klettres_sounds(language: str, klettres_dir: str | Path = KLETTRES_DIR) -> SoundList:
    """The letters and syllables of one klettres language (``en``, ``en_GB``, ``fr``...)."""
    listing = Path(klettres_dir) / language / KLETTRES_SOUND_LIST
    if not listing.is_file():
        raise SoundListError(
            f"{listing} not found: install klettres-data (apt-get install klettres-data)"
        )
    return parse_sound_list(listing.read_bytes(), klettres_dir, f"{language}/{KLETTRES_SOUND_LIST}")


def _keyword_of(entry: SoundEntry, keywords: Mapping[str, str], by_id: bool) -> str:
    """The keyword an entry is a recording of: by its exact id (``by_id``: the same word in
    another scene may be another object, ru ``xmas_ball`` is not ``ball``), else by its id's or
    file's word (fr ``patate_ballon`` and ``robot_ballon`` both say "ballon")."""
    names = (entry.name,) if by_id else (entry.name, entry.file_word, entry.word)
    for name in names:  # the most specific first: the file's word before the id's English word
        for keyword, target in keywords.items():
            if target.casefold() == name.casefold():
                return keyword
    return UNKNOWN_LABEL


@dataclass(frozen=True)
class DevManifest:
    path: Path
    label_counts: dict[str, int]
    problems: list[SoundProblem]


def write_dev_manifest(
    language: str,
    keywords: Sequence[str] | Mapping[str, str],
    out_dir: str | Path,
    *,
    sounds_dir: str | Path = KTUBERLING_SOUNDS_DIR,
    klettres_languages: Sequence[str] = (),
    klettres_dir: str | Path = KLETTRES_DIR,
) -> DevManifest:
    """Write ``<out_dir>/ktuberling_<language>.csv``, a labelled-clips manifest (path,label,
    speaker,word) of the language's recordings: a recording of a keyword is labelled with the
    keyword, every other one ``_unknown_``.

    ``keywords`` is a list of words (matched against the id, the id's word and the file's word:
    ``camel`` finds ``egypt_camel``) or ``{keyword: exact ktuberling id}`` for languages whose
    file names do not spell the spoken word (de ``{"Nase": "nose"}``); klettres entries are
    matched by word either way.
    ``klettres_languages`` (e.g. ``["en", "en_GB"]``) adds those klettres recordings, labelled
    the same way.  Raises ValueError when a keyword matches no recording.
    """
    by_id = isinstance(keywords, Mapping)
    wanted = dict(keywords) if isinstance(keywords, Mapping) else {k: k for k in keywords}
    lists = [(f"ktuberling-{language}", ktuberling_sounds(language, sounds_dir))]
    lists += [
        (f"klettres-{lang}", klettres_sounds(lang, klettres_dir)) for lang in klettres_languages
    ]
    rows: list[dict[str, str]] = []
    problems: list[SoundProblem] = []
    found: set[str] = set()
    for speaker, sounds in lists:
        problems += sounds.problems
        for entry in sounds.entries:
            label = _keyword_of(entry, wanted, by_id and speaker.startswith("ktuberling"))
            found.add(label)
            rows.append(
                {"path": str(entry.path), "label": label, "speaker": speaker, "word": entry.name}
            )
    missing = [k for k in wanted if k not in found]
    if missing:
        known = sorted({e.name if by_id else e.word for e in lists[0][1].entries})
        raise ValueError(
            f"keywords {missing} name no {language} ktuberling recording; known "
            f"{'ids' if by_id else 'words'}: {known}"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"ktuberling_{language}.csv"
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=DEV_MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["label"]] = counts.get(row["label"], 0) + 1
    return DevManifest(path, counts, problems)
