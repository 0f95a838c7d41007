"""Corpus settings: the configured sources (one model per layout) and the ingest limits."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from kws_assets.settings.base import StrictSettings


class DemoCorpusSource(StrictSettings):
    """A corpus generated once with TTS: carrier sentences containing the keywords."""

    kind: Literal["demo_tts"] = "demo_tts"
    name: str = "demo"
    voices: list[str] = Field(
        default_factory=lambda: [
            "en-us+m2",
            "en-us+f1",
            "en+m3",
            "en+f4",
            "en-gb-x-rp+m1",
            "en-us-nyc+f3",
        ],
        min_length=1,
    )
    sentences_per_keyword: int = Field(
        3, ge=1, description="Carrier sentences per keyword and voice."
    )
    rate: int = 160
    seed: int = 7


class ManifestSource(StrictSettings):
    """A user corpus: a folder with a CSV or JSONL manifest (path, transcript, speaker columns)."""

    kind: Literal["manifest"] = "manifest"
    name: str
    root: str = Field(
        description="Folder (or s3:// prefix) holding the manifest and the audio files."
    )
    manifest: str = Field(
        "manifest.csv", description="Manifest file name inside root (.csv or .jsonl)."
    )
    language: str = "en"
    license: str = "unknown"
    only_with_keywords: bool = Field(
        False, description="Ingest only utterances whose transcript contains a keyword."
    )


class CommonVoiceSource(StrictSettings):
    """A Mozilla Common Voice release folder: ``validated.tsv`` (or another TSV) plus
    ``clips/*.mp3``."""

    kind: Literal["common_voice"] = "common_voice"
    name: str
    root: str = Field(
        description="Folder (or s3:// prefix) of one language, e.g. cv-corpus-17.0/en."
    )
    tsv: str = Field("validated.tsv", description="Which TSV of the release to read.")
    clips_folder: str = "clips"
    language: str | None = Field(None, description="Language code; None = the TSV's locale column.")
    license: str = "CC0-1.0"
    only_with_keywords: bool = Field(
        False, description="Ingest only utterances whose transcript contains a keyword."
    )


class LibriSpeechSource(StrictSettings):
    """A LibriSpeech subset: ``<reader>/<chapter>/<reader>-<chapter>.trans.txt`` plus FLAC files."""

    kind: Literal["librispeech"] = "librispeech"
    name: str
    root: str = Field(
        description="Folder (or s3:// prefix) above the reader folders, e.g. dev-clean."
    )
    audio_extension: str = ".flac"
    language: str = "en"
    license: str = "CC-BY-4.0"
    only_with_keywords: bool = Field(
        False, description="Ingest only utterances whose transcript contains a keyword."
    )


class SpeechCommandsSource(StrictSettings):
    """The Speech Commands layout: one folder per word of ``<speaker>_nohash_<n>.wav`` clips, plus
    ``_background_noise_/``.  Its clips are labelled by folder and need no alignment."""

    kind: Literal["speech_commands"] = "speech_commands"
    name: str
    root: str = Field(description="Folder (or s3:// prefix) holding the word folders.")
    language: str = "en"
    license: str = "CC-BY-4.0"
    unknown_percent: float = Field(
        100.0,
        ge=0,
        le=100,
        description="Share of the non-keyword word folders' clips kept as _unknown_ (chosen by a "
        "stable hash of the file path).",
    )
    background_folder: str = "_background_noise_"
    silence_clips_per_file: int = Field(
        60, ge=0, description="Most 1-s _silence_ windows cut from each background-noise file."
    )


CorpusSource = Annotated[
    DemoCorpusSource
    | ManifestSource
    | CommonVoiceSource
    | LibriSpeechSource
    | SpeechCommandsSource,
    Field(discriminator="kind"),
]


class IngestSettings(StrictSettings):
    """Limits and checks applied to every corpus file before it is used."""

    max_file_mb: float = Field(512.0, gt=0, description="Larger files are rejected as too_large.")
    max_utterance_s: float = Field(
        600.0, gt=0, description="Longer recordings are rejected as too_long."
    )
    min_utterance_s: float = Field(
        0.1, ge=0, description="Shorter recordings are rejected as too_short."
    )
    silence_peak_dbfs: float = Field(
        -60.0, description="A recording whose peak stays below this is rejected as silent."
    )
    hash_cache: bool = Field(
        True,
        description="Remember each file's sha256 and audio facts by (path, size, mtime) under "
        "the storage root, so an unchanged corpus is not read again.",
    )
    max_field_bytes: int = Field(
        65_536,
        gt=0,
        description="A manifest field (transcript, speaker, path...) longer than this "
        "many UTF-8 bytes makes its row a field_too_large problem. 600 s "
        "of speech is ~2000 words (~12 KB); 64 KiB leaves room for any "
        "real transcript and stops a pasted blob from reaching the tables.",
    )
    max_line_bytes: int = Field(
        131_072,
        gt=0,
        description="A manifest line longer than this is skipped unread as one "
        "line_too_long problem (the rest of the manifest goes on). Also "
        "bounds the memory one row can take while a manifest is streamed; "
        "128 KiB is Python csv's own default field limit.",
    )
    max_manifest_rows: int = Field(
        2_000_000,
        gt=0,
        description="Rows after this many in one manifest are not read (one "
        "too_many_rows problem says from which line): a runaway or "
        "hostile manifest cannot fill memory with entries.",
    )
    max_channels: int = Field(
        8,
        ge=1,
        description="Recordings whose header declares more channels are rejected as "
        "too_many_channels before any sample is decoded (7.1 audio has 8).",
    )
    max_decoded_mb: float = Field(
        1024.0,
        gt=0,
        description="Recordings whose header declares more float32 samples than this "
        "many MB (frames x channels x 4) are rejected as too_large before "
        "decoding: a compressed file cannot make the reader allocate "
        "gigabytes. 600 s of 48 kHz stereo is ~230 MB.",
    )
