"""Corpus connectors: paired audio + transcripts in, one row per utterance out.

Two sources exist today:

* the **demo corpus**: carrier sentences that contain the configured keywords among other words,
  spoken by several espeak-ng voices and written once as WAV files plus a ``manifest.jsonl``.  It
  is regenerated only when its recipe (keywords, voices, sentence count, rate, seed) changes.
* a **user manifest**: a folder with a CSV or JSONL manifest whose rows name an audio file
  (``path``, relative to the folder), its ``transcript`` and its ``speaker``.

Every utterance row carries its provenance: source, original path, license, speaker.  A row that
cannot be used becomes a :class:`CorpusProblem` naming the file and the reason; it never stops the
other rows.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

import polars as pl
import soundfile as sf

from kws_assets.config import DemoCorpusSource, KwsConfig, ManifestSource
from kws_assets.core import tts
from kws_assets.core.audio import resample, write_wav

# Words the demo corpus puts around each keyword: common English words that pocketsphinx's
# dictionary knows.  Any of them that is also a keyword is left out.
FILLER_WORDS = (
    "please", "say", "now", "the", "word", "is", "next", "i", "heard", "you", "that", "again",
    "we", "will", "then", "maybe", "after", "this", "said", "today", "before", "dinner", "house",
    "green", "water", "seven", "paper", "music", "little", "window", "morning", "garden", "never",
    "yellow", "table", "people", "number", "open", "close", "river", "coffee", "simple",
)
FILLERS_PER_SENTENCE = 3
DEMO_MANIFEST = "manifest.jsonl"
UTTERANCE_COLUMNS = (
    "utterance_id", "uri", "transcript", "speaker", "language", "source", "license",
    "original_path", "sample_rate", "channels", "duration_s", "sha256",
)


@dataclass(frozen=True)
class Utterance:
    utterance_id: str
    uri: str
    transcript: str
    speaker: str
    language: str
    source: str
    license: str
    original_path: str
    sample_rate: int
    channels: int
    duration_s: float
    sha256: str

    def as_row(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CorpusProblem:
    source: str
    path: str
    reason: str
    detail: str


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tts_speaker_id(voice: str) -> str:
    """Speaker identity of an espeak-ng voice (the same in every source, so splits stay disjoint)."""
    return f"tts:{voice}"


def namespaced_speaker(source_name: str, speaker: str) -> str:
    """Prefix a corpus-local speaker id with its source, unless it already names a namespace.

    Speaker ids of TTS voices (``tts:en-us+m1``) are global on purpose: the same voice in the demo
    corpus and in the synthetic clips is one speaker, so the hash split keeps it in one split.
    """
    return speaker if ":" in speaker else f"{source_name}:{speaker}"


def demo_sentences(keywords: list[str], per_keyword: int, seed: int) -> list[tuple[str, str]]:
    """Deterministic carrier sentences: ``(keyword, sentence)`` with the keyword among fillers."""
    rng = random.Random(seed)
    fillers = [w for w in FILLER_WORDS if w not in set(keywords)]
    sentences = []
    for keyword in keywords:
        for _ in range(per_keyword):
            words = rng.sample(fillers, FILLERS_PER_SENTENCE)
            words.insert(rng.randrange(1, FILLERS_PER_SENTENCE + 1), keyword)
            sentences.append((keyword, " ".join(words)))
    return sentences


def demo_recipe_hash(source: DemoCorpusSource, keywords: list[str], sample_rate: int) -> str:
    recipe = {"source": source.model_dump(mode="json"), "keywords": keywords, "sr": sample_rate,
              "fillers": FILLER_WORDS}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def generate_demo_corpus(source: DemoCorpusSource, keywords: list[str], language: str,
                         sample_rate: int, corpora_root: Path) -> Path:
    """Write the demo corpus (WAVs + manifest) once; return its folder.

    The folder name carries the recipe hash, so changing the keywords makes a new corpus and an
    unchanged recipe reuses the files already written.
    """
    folder = Path(corpora_root) / f"{source.name}-{demo_recipe_hash(source, keywords, sample_rate)}"
    manifest = folder / DEMO_MANIFEST
    if manifest.is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for voice in source.voices:
        for index, (keyword, sentence) in enumerate(demo_sentences(keywords, source.sentences_per_keyword, source.seed)):
            synthesis = tts.synthesize(sentence, voice=voice, rate=source.rate)
            samples = resample(synthesis.samples, synthesis.sample_rate, sample_rate)
            rel = f"audio/{voice.replace('+', '_')}/{index:04d}_{keyword}.wav"
            write_wav(folder / rel, samples, sample_rate)
            rows.append({"path": rel, "transcript": sentence, "speaker": tts_speaker_id(voice),
                         "language": language, "license": "generated (espeak-ng, GPL-3.0 voices)"})
    _write_jsonl_atomic(manifest, rows)
    return folder


def _write_jsonl_atomic(path: Path, rows: Iterable[dict]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


REQUIRED_MANIFEST_COLUMNS = ("path", "transcript", "speaker")


def read_manifest_rows(manifest_path: Path) -> list[dict]:
    """Rows of a CSV (header line) or JSONL manifest, as dicts of strings."""
    suffix = manifest_path.suffix.lower()
    text = manifest_path.read_text(encoding="utf-8")
    if suffix == ".jsonl":
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{manifest_path}:{number}: not JSON ({exc.msg})") from exc
            if not isinstance(value, dict):
                raise ValueError(f"{manifest_path}:{number}: each line must be a JSON object")
            rows.append(value)
        return rows
    if suffix in {".csv", ".tsv"}:
        dialect = "excel-tab" if suffix == ".tsv" else "excel"
        return list(csv.DictReader(text.splitlines(), dialect=dialect))
    raise ValueError(f"{manifest_path}: unsupported manifest type {suffix!r} (use .csv, .tsv or .jsonl)")


def load_manifest_corpus(root: Path, manifest_name: str, source_name: str, language: str,
                         license: str) -> tuple[list[Utterance], list[CorpusProblem]]:
    """Read a manifest folder into utterances; unusable rows become problems, not exceptions."""
    root = Path(root).expanduser().resolve()
    manifest_path = root / manifest_name
    if not manifest_path.is_file():
        raise FileNotFoundError(f"corpus source {source_name!r}: manifest {manifest_path} not found")
    rows = read_manifest_rows(manifest_path)
    if rows:
        missing = [c for c in REQUIRED_MANIFEST_COLUMNS if c not in rows[0]]
        if missing:
            raise ValueError(f"{manifest_path}: missing columns {missing}; "
                             f"a manifest needs {list(REQUIRED_MANIFEST_COLUMNS)}")
    utterances: list[Utterance] = []
    problems: list[CorpusProblem] = []
    for row in rows:
        rel = str(row.get("path") or "").strip()
        transcript = " ".join(str(row.get("transcript") or "").split())
        speaker = str(row.get("speaker") or "").strip()
        problem = _check_manifest_row(root, rel, transcript, speaker)
        if problem:
            problems.append(CorpusProblem(source_name, rel, *problem))
            continue
        path = (root / rel).resolve()
        try:
            info = sf.info(str(path))
        except Exception as exc:  # soundfile raises several types for undecodable files
            problems.append(CorpusProblem(source_name, rel, "unreadable", str(exc)[:200]))
            continue
        if info.frames <= 0:
            problems.append(CorpusProblem(source_name, rel, "empty", "no audio frames"))
            continue
        sha = file_sha256(path)
        utterances.append(Utterance(
            utterance_id=f"{source_name}:{sha[:16]}",
            uri=str(path),
            transcript=transcript,
            speaker=namespaced_speaker(source_name, speaker),
            language=str(row.get("language") or language),
            source=source_name,
            license=str(row.get("license") or license),
            original_path=rel,
            sample_rate=int(info.samplerate),
            channels=int(info.channels),
            duration_s=float(info.frames) / float(info.samplerate),
            sha256=sha,
        ))
    return utterances, problems


def _check_manifest_row(root: Path, rel: str, transcript: str, speaker: str) -> tuple[str, str] | None:
    if not rel:
        return "missing_path", "manifest row has no path"
    candidate = (root / rel).resolve()
    if root not in candidate.parents:
        return "path_outside_root", f"{rel!r} resolves outside the corpus root {root}"
    if not candidate.is_file():
        return "missing_file", f"{candidate} does not exist"
    if not transcript:
        return "missing_transcript", "manifest row has an empty transcript"
    if not speaker:
        return "missing_speaker", "manifest row has no speaker"
    return None


def demo_source_as_manifest(source: DemoCorpusSource, folder: Path, language: str) -> ManifestSource:
    """The generated demo corpus is read back through the same manifest connector."""
    return ManifestSource(name=source.name, root=str(folder), manifest=DEMO_MANIFEST,
                          language=language, license="generated (espeak-ng)")


def load_corpus(cfg: KwsConfig) -> tuple[list[Utterance], list[CorpusProblem]]:
    """Every configured source, read through its connector (the demo corpus is generated once)."""
    utterances: list[Utterance] = []
    problems: list[CorpusProblem] = []
    for source in cfg.sources:
        if isinstance(source, DemoCorpusSource):
            folder = generate_demo_corpus(source, cfg.keywords, cfg.language, cfg.audio.sample_rate,
                                          cfg.storage_path("corpora"))
            source = demo_source_as_manifest(source, folder, cfg.language)
        found, bad = load_manifest_corpus(Path(source.root), source.manifest, source.name,
                                          source.language, source.license)
        utterances += found
        problems += bad
    return utterances, problems


def corpus_table(utterances: list[Utterance]) -> pl.DataFrame:
    schema = {c: pl.String for c in UTTERANCE_COLUMNS}
    schema.update(sample_rate=pl.Int64, channels=pl.Int64, duration_s=pl.Float64)
    if not utterances:
        return pl.DataFrame(schema=schema)
    return pl.DataFrame([u.as_row() for u in utterances], schema=schema).sort("utterance_id")


def content_version(table: pl.DataFrame) -> str:
    """A data version from content alone: file hashes, transcripts and speakers, order-free."""
    digest = hashlib.sha256()
    for row in table.select("sha256", "transcript", "speaker", "language").sort("sha256").iter_rows():
        digest.update("\x1f".join(row).encode("utf-8"))
        digest.update(b"\x1e")
    return digest.hexdigest()[:16]
