"""The Speech Commands layout: one folder per word holding ``<speaker>_nohash_<n>.wav`` clips,
plus ``_background_noise_/`` with long noise recordings.

These recordings already are labelled clips, so they skip alignment: a word folder that is a
configured keyword gives that label, any other word folder gives ``_unknown_`` (optionally only a
stable-hash share of it), and each background-noise file gives ``_silence_`` windows.  The speaker
is the hash before ``_nohash_``, so one person's clips stay in one split.
"""

from __future__ import annotations

import hashlib

from upath import UPath

from kws_assets.core.corpus.connectors.base import CorpusEntry, EntryProblem, relative_to_root
from kws_assets.core.corpus.connectors.manifest import ManifestError
from kws_assets.core.corpus.connectors.registry import Listing, ListRequest, register_connector
from kws_assets.core.license_terms import LicenseTerms
from kws_assets.settings import SILENCE_LABEL, UNKNOWN_LABEL, SpeechCommandsSource

NOHASH_MARKER = "_nohash_"
AUDIO_SUFFIX = ".wav"
BACKGROUND_SPEAKER_PREFIX = "background_noise/"  # one speaker per noise file


def speaker_from_name(file_name: str) -> str:
    """The speaker id Speech Commands encodes in a clip name (``3cfc6b3a_nohash_1.wav`` ->
    ``3cfc6b3a``); a name without the marker is its own speaker."""
    stem = file_name.rsplit(".", 1)[0]
    return stem.split(NOHASH_MARKER, 1)[0] if NOHASH_MARKER in stem else stem


def keep_unknown(relative_path: str, percent: float) -> bool:
    """A stable choice of ``percent`` % of non-keyword clips (sha1 of the path, like the split)."""
    if percent >= 100:
        return True
    bucket = int(hashlib.sha1(relative_path.encode("utf-8")).hexdigest()[:8], 16) % 10_000
    return bucket < percent * 100


def list_speech_commands(
    source: SpeechCommandsSource, root: UPath, keywords: list[str]
) -> tuple[list[CorpusEntry], list[EntryProblem]]:
    """Entries for every word-folder clip (labelled) and every background-noise file (_silence_)."""
    if not root.is_dir():
        raise ManifestError(f"corpus source {source.name!r}: {root} is not a folder")
    keyword_set = set(keywords)
    entries: list[CorpusEntry] = []
    folders = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.name)
    for folder in folders:
        name = folder.name
        if name == source.background_folder:
            if source.silence_clips_per_file == 0:
                continue
            for path in _audio_files(folder):
                entries.append(
                    CorpusEntry(
                        source=source.name,
                        original_path=relative_to_root(root, path),
                        transcript="",
                        speaker=BACKGROUND_SPEAKER_PREFIX + path.name.rsplit(".", 1)[0],
                        language=source.language,
                        license=source.license,
                        clip_label=SILENCE_LABEL,
                    )
                )
            continue
        if name.startswith(("_", ".")):
            continue  # other reserved folders are not word folders
        word = name.lower()
        label = word if word in keyword_set else UNKNOWN_LABEL
        for path in _audio_files(folder):
            rel = relative_to_root(root, path)
            if label == UNKNOWN_LABEL and not keep_unknown(rel, source.unknown_percent):
                continue
            entries.append(
                CorpusEntry(
                    source=source.name,
                    original_path=rel,
                    transcript=word,
                    speaker=speaker_from_name(path.name),
                    language=source.language,
                    license=source.license,
                    clip_label=label,
                )
            )
    return entries, []


def _audio_files(folder: UPath) -> list[UPath]:
    return sorted(
        (
            p
            for p in folder.iterdir()
            if p.name.lower().endswith(AUDIO_SUFFIX) and not p.name.startswith(".")
        ),
        key=lambda p: p.name,
    )


def _list(source: SpeechCommandsSource, root: UPath, request: ListRequest) -> Listing:
    return list_speech_commands(source, root, request.keywords)


REGISTRATION = register_connector(
    SpeechCommandsSource,
    lister=_list,
    module=__name__,
    license=LicenseTerms(
        "CC-BY-4.0",
        "Google Speech Commands (user-supplied; https://www.tensorflow.org/datasets/catalog/"
        "speech_commands)",
        "Default licence of a speech_commands source; attribution required for derived data.",
    ),
)
