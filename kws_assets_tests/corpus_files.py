"""Corpus files for connector and bad-input tests: speech (espeak-ng), unusual-but-good formats,
and more than twenty kinds of broken file, each with the reason codes it must be rejected with.

Everything is generated here; nothing is downloaded.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from kws_assets.core.audio.io import resample
from kws_assets.core.speech import tts
from kws_assets.settings import KwsConfig

SR = 16000


def speech(
    text: str, voice: str = "en-us+m2", sample_rate: int = SR, rate: int = 160
) -> np.ndarray:
    """``text`` spoken by espeak-ng, float32 mono at ``sample_rate``, with a little silence
    around."""
    synthesis = tts.synthesize(text, voice=voice, rate=rate)
    x = resample(synthesis.samples, synthesis.sample_rate, sample_rate)
    pad = np.zeros(int(0.2 * sample_rate), dtype=np.float32)
    return np.concatenate([pad, 0.8 * x / max(1e-6, float(np.max(np.abs(x)))), pad]).astype(
        np.float32
    )


def noise(seconds: float, level: float = 0.05, sample_rate: int = SR, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (level * rng.standard_normal(int(seconds * sample_rate))).astype(np.float32)


def write_audio(
    path: Path,
    samples: np.ndarray,
    sample_rate: int = SR,
    subtype: str = "PCM_16",
    fmt: str = "WAV",
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples, sample_rate, subtype=subtype, format=fmt)
    return path


def wav_bytes(samples: np.ndarray, sample_rate: int = SR, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, sample_rate, subtype=subtype, format="WAV")
    return buffer.getvalue()


def riff_with_format_tag(tag: int, payload: bytes = b"\x00" * 4000) -> bytes:
    """A RIFF/WAVE file whose fmt chunk names codec ``tag`` (an encoding libsndfile lacks)."""
    fmt = struct.pack("<HHIIHH", tag, 1, SR, SR * 2, 2, 16)
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(payload))
        + payload
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


@dataclass(frozen=True)
class Row:
    """One manifest row as raw bytes per field (so a field can hold invalid UTF-8)."""

    path: bytes
    transcript: bytes
    speaker: bytes

    def csv_line(self) -> bytes:
        def quote(value: bytes) -> bytes:
            return b'"' + value.replace(b'"', b'""') + b'"'

        return b",".join([quote(self.path), quote(self.transcript), quote(self.speaker)]) + b"\n"


@dataclass(frozen=True)
class Expectation:
    """A file of the test corpus and what must happen to it."""

    kind: str
    name: str  # how the quarantine table / raw_corpus names it (original path or manifest ref)
    reasons: frozenset[str] = frozenset()  # empty: a good file, every clip of it must be kept
    transcript: str = ""


@dataclass
class TestCorpus:
    root: Path
    manifest: str
    expectations: list[Expectation] = field(default_factory=list)

    @property
    def broken(self) -> list[Expectation]:
        return [e for e in self.expectations if e.reasons]

    @property
    def good(self) -> list[Expectation]:
        return [e for e in self.expectations if not e.reasons]


GOOD_SENTENCES = [
    ("please say yes now", "en-us+m2", "alice"),
    ("the word no is next", "en-us+f1", "bob"),
    ("i heard yes today", "en+m3", "carol"),
    ("maybe no again", "en-gb-x-rp+m1", "dave"),
    ("we said yes before dinner", "en-us+f3", "erin"),
    ("that was no surprise", "en+f4", "frank"),
]


def build_bad_input_corpus(base: Path, manifest_name: str = "manifest.csv") -> TestCorpus:
    """A manifest corpus under ``base/corpus`` mixing good recordings, unusual-but-good formats and
    broken files of more than twenty kinds (see the expectations)."""
    root = base / "corpus"
    root.mkdir(parents=True)
    outside = base / "outside"
    outside.mkdir()
    write_audio(outside / "secret.wav", speech("yes please"))
    corpus = TestCorpus(root, manifest_name)
    rows: list[Row] = []

    def add(
        kind: str,
        rel: str,
        transcript: str | bytes,
        speaker: str | bytes,
        reasons: set[str] | None = None,
        name: str | None = None,
    ) -> None:
        t = transcript if isinstance(transcript, bytes) else transcript.encode()
        s = speaker if isinstance(speaker, bytes) else speaker.encode()
        rows.append(Row(rel.encode(), t, s))
        text = transcript if isinstance(transcript, str) else ""
        corpus.expectations.append(Expectation(kind, name or rel, frozenset(reasons or ()), text))

    # Good recordings: keyword sentences by several voices.
    for i, (text, voice, speaker) in enumerate(GOOD_SENTENCES):
        write_audio(root / f"good/{i:02d}_{speaker}.wav", speech(text, voice))
        add("good", f"good/{i:02d}_{speaker}.wav", text, speaker)
    # Unusual but good: kept, resampled / downmixed, with the original format recorded.
    stereo = speech("please say yes now", "en-us+m3", 44100)
    write_audio(root / "odd/stereo_44k.wav", np.stack([stereo, 0.5 * stereo], axis=1), 44100)
    add("good_stereo_44100", "odd/stereo_44k.wav", "please say yes now", "gina")
    write_audio(
        root / "odd/rate_11025.wav", speech("the word no is next", "en-us+f2", 11025), 11025
    )
    add("good_rate_11025", "odd/rate_11025.wav", "the word no is next", "hank")
    write_audio(root / "odd/pcm24.wav", speech("i heard yes today", "en+m2"), subtype="PCM_24")
    add("good_pcm24", "odd/pcm24.wav", "i heard yes today", "ivy")
    write_audio(
        root / "odd/flac_named.wav", speech("maybe no again", "en+f2"), subtype="PCM_16", fmt="FLAC"
    )
    add("good_flac_bytes_named_wav", "odd/flac_named.wav", "maybe no again", "jack")
    write_audio(root / "odd/float32.wav", speech("say yes now", "en-us+m1"), subtype="FLOAT")
    add("good_float32", "odd/float32.wav", "say yes now", "kate")

    # Broken files, one per kind.
    good_wav = wav_bytes(speech("yes", "en-us+m2"))
    (root / "bad").mkdir()
    (root / "bad/truncated.wav").write_bytes(good_wav[: len(good_wav) // 3])
    add("truncated_wav", "bad/truncated.wav", "yes", "bad1", {"truncated", "unreadable"})
    (root / "bad/not_audio.wav").write_bytes(b"this is a text file, not audio\n" * 40)
    add("non_audio_bytes", "bad/not_audio.wav", "yes", "bad2", {"unreadable"})
    (root / "bad/zero.wav").write_bytes(b"")
    add("zero_length", "bad/zero.wav", "yes", "bad3", {"empty"})
    nan = speech("yes", "en-us+m2")
    nan[1000:1010] = np.nan
    (root / "bad/nan.wav").write_bytes(wav_bytes(nan, subtype="FLOAT"))
    add("nan_float_wav", "bad/nan.wav", "yes", "bad4", {"non_finite"})
    inf = speech("no", "en-us+m2")
    inf[500] = np.inf
    (root / "bad/inf.wav").write_bytes(wav_bytes(inf, subtype="FLOAT"))
    add("inf_float_wav", "bad/inf.wav", "no", "bad5", {"non_finite"})
    (root / "bad/aac_in_wav.wav").write_bytes(riff_with_format_tag(0x00FF))
    add("unsupported_encoding", "bad/aac_in_wav.wav", "yes", "bad6", {"unsupported_encoding"})
    with open(root / "bad/enormous.wav", "wb") as fh:  # sparse: 64 MiB of holes
        fh.write(good_wav[:44])
        fh.truncate(64 * 1024 * 1024)
    add("enormous_file", "bad/enormous.wav", "yes", "bad7", {"too_large"})
    write_audio(root / "bad/binary_transcript.wav", speech("yes", "en+m3"))
    add(
        "binary_transcript",
        "bad/binary_transcript.wav",
        b"ye\xff\xfes \x80\x81",
        "bad8",
        {"bad_transcript"},
    )
    write_audio(root / "bad/control_transcript.wav", speech("no", "en+m3"))
    add(
        "control_char_transcript",
        "bad/control_transcript.wav",
        b"no\x07 bell",
        "bad9",
        {"bad_transcript"},
    )
    write_audio(root / "bad/no_transcript.wav", speech("yes", "en+f1"))
    add("missing_transcript", "bad/no_transcript.wav", "   ", "bad10", {"missing_transcript"})
    add("path_escapes_root", "../outside/secret.wav", "yes please", "bad11", {"path_outside_root"})
    add(
        "absolute_path_outside",
        str(outside / "secret.wav"),
        "yes please",
        "bad12",
        {"path_outside_root"},
    )
    os.symlink(outside / "secret.wav", root / "bad/link_out.wav")
    add("symlink_escapes_root", "bad/link_out.wav", "yes please", "bad13", {"path_outside_root"})
    add("missing_file", "bad/does_not_exist.wav", "yes", "bad14", {"missing"})
    add("duplicate_row", "good/00_alice.wav", "please say yes now", "alice", {"duplicate_row"})
    write_audio(root / "bad/no_speaker.wav", speech("no", "en+f4"))
    add("empty_speaker", "bad/no_speaker.wav", "no", "", {"missing_speaker"})
    write_audio(root / "bad/silent.wav", np.zeros(2 * SR, dtype=np.float32))
    add("silent_audio", "bad/silent.wav", "yes", "bad16", {"silent"})
    write_audio(root / "bad/clipped.wav", np.clip(8.0 * speech("yes please", "en-us+f1"), -1, 1))
    add("clipped_audio", "bad/clipped.wav", "yes please", "bad17", {"clipped"})
    write_audio(root / "bad/dc_offset.wav", 0.5 * speech("no thanks", "en-us+f1") + 0.3)
    add("dc_offset", "bad/dc_offset.wav", "no thanks", "bad18", {"dc_offset"})
    write_audio(root / "bad/rate_500.wav", noise(1.0, sample_rate=500), 500)
    add("absurd_sample_rate", "bad/rate_500.wav", "yes", "bad19", {"bad_sample_rate"})
    (root / "bad/a_folder.wav").mkdir()
    add("folder_not_file", "bad/a_folder.wav", "yes", "bad20", {"not_a_file"})
    write_audio(root / "bad/too_short.wav", speech("yes", "en+m3")[4000:4400])
    add("too_short", "bad/too_short.wav", "yes", "bad21", {"too_short"})
    (root / "bad/copy_of_good.wav").write_bytes((root / "good/01_bob.wav").read_bytes())
    add(
        "duplicate_audio", "bad/copy_of_good.wav", "the word no is next", "bob", {"duplicate_audio"}
    )
    write_audio(root / "bad/punctuation.wav", speech("hello there", "en+m3"))
    add(
        "unalignable_transcript",
        "bad/punctuation.wav",
        "!!! ???",
        "bad23",
        {"alignment_failed", "out_of_dictionary"},
    )

    lines = [b"path,transcript,speaker\n", *[r.csv_line() for r in rows]]
    broken_line_number = len(lines) + 1  # a row with more fields than the header
    lines.append(b'"bad/extra.wav","yes","bad24","surplus"\n')
    corpus.expectations.append(
        Expectation(
            "malformed_manifest_row",
            f"{manifest_name}:{broken_line_number}",
            frozenset({"bad_manifest_row"}),
        )
    )
    (root / manifest_name).write_bytes(b"".join(lines))
    return corpus


# ----------------------------------------------------------------------- clips for curation tests

KEYWORD_VOICES = [
    "en-us+m1",
    "en-us+m3",
    "en-us+f2",
    "en-us+f4",
    "en+m2",
    "en+f1",
    "en+m5",
    "en+f3",
    "en-gb-scotland+m4",
    "en-gb-x-rp+f5",
    "en-029+m6",
    "en-us-nyc+m7",
]


def keyword_clip(
    word: str, voice: str, rate: int, rng: np.random.Generator, noise_level: float = 0.003
) -> np.ndarray:
    """A 1-s clip of ``word`` centred on its spoken part, with a little noise and a random gain."""
    from kws_assets.core.audio.io import cut_centered

    synthesis = tts.synthesize(word, voice=voice, rate=rate)
    x = resample(synthesis.samples, synthesis.sample_rate, SR)
    spoken, offset = tts.trim_silence(x, SR)
    clip = cut_centered(x, SR, (offset + len(spoken) / 2) / SR, SR, 10.0)
    clip = clip + noise_level * rng.uniform(0.2, 3.0) * rng.standard_normal(SR).astype(np.float32)
    return (clip * rng.uniform(0.3, 1.0)).astype(np.float32)


def beep(freq_hz: float = 1000.0, level: float = 0.3) -> np.ndarray:
    """A 375 ms tone in the middle of a 1-s clip: not a keyword."""
    t = np.arange(SR) / SR
    x = np.zeros(SR, dtype=np.float32)
    x[5000:11000] = level * np.sin(2 * np.pi * freq_hz * t[5000:11000])
    return x


def tone(
    seconds: float = 1.0, freq: float = 440.0, sr: int = SR, amplitude: float = 0.3, seed: int = 0
) -> np.ndarray:
    """A harmonic tone with a little noise: not silent, not clipped, no DC."""
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(seed)
    x = amplitude * (np.sin(2 * np.pi * freq * t) + 0.3 * np.sin(2 * np.pi * 2 * freq * t))
    return (x + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def make_config(tmp_path: Path, sources: list[dict], keywords=("yes", "no"), **extra) -> KwsConfig:
    """A config over ``sources`` with its storage under ``tmp_path``."""
    return KwsConfig.model_validate(
        {
            "keywords": list(keywords),
            "sources": sources,
            "storage": {"root": str(tmp_path / "data")},
            **extra,
        }
    )
