"""The demo corpus: carrier sentences that contain the configured keywords among other words,
spoken by several espeak-ng voices and written once as WAV files plus a ``manifest.jsonl``.

It is regenerated only when its recipe (keywords, voices, sentence count, rate, seed) changes, and
read back through the manifest connector like any user corpus.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
from collections.abc import Iterable
from pathlib import Path

from kws_assets.core.audio.io import resample, write_wav
from kws_assets.core.corpus.connectors.registry import register_connector
from kws_assets.core.speech import tts
from kws_assets.core.speech.engines.espeak import SPEAKER_PREFIX as ESPEAK_SPEAKER_PREFIX
from kws_assets.core.speech.fillers import filler_words
from kws_assets.settings import DemoCorpusSource, ManifestSource

# Words the demo corpus puts around each keyword: common English words that pocketsphinx's
# dictionary knows.  Any of them that is also a keyword is left out.
FILLER_WORDS = (
    "please",
    "say",
    "now",
    "the",
    "word",
    "is",
    "next",
    "i",
    "heard",
    "you",
    "that",
    "again",
    "we",
    "will",
    "then",
    "maybe",
    "after",
    "this",
    "said",
    "today",
    "before",
    "dinner",
    "house",
    "green",
    "water",
    "seven",
    "paper",
    "music",
    "little",
    "window",
    "morning",
    "garden",
    "never",
    "yellow",
    "table",
    "people",
    "number",
    "open",
    "close",
    "river",
    "coffee",
    "simple",
)
FILLERS_PER_SENTENCE = 3
DEMO_MANIFEST = "manifest.jsonl"
DEMO_LICENSE = "generated (espeak-ng, GPL-3.0 voices)"


def tts_speaker_id(voice: str) -> str:
    """Speaker identity of an espeak-ng voice (the same in every source, so splits stay
    disjoint)."""
    return f"{ESPEAK_SPEAKER_PREFIX}{voice}"


def language_fillers(language: str = "en") -> tuple[str, ...]:
    """Filler words of a language (``core.fillers``); English ones where it has none."""
    return filler_words(language) or FILLER_WORDS


def demo_sentences(
    keywords: list[str], per_keyword: int, seed: int, language: str = "en"
) -> list[tuple[str, str]]:
    """Deterministic carrier sentences: ``(keyword, sentence)`` with the keyword among fillers
    of its language that are not keywords.

    Each keyword's sentences come from a random stream of its own, and the fillers are drawn by
    shuffling the whole filler list (the same draws whatever the keywords are): a keyword's
    sentences change only where they drew a filler that became a keyword, so its recordings,
    their utterance ids (content hashes) and every clip cut from them stay the same when
    another keyword changes."""
    forbidden = set(keywords)
    sentences = []
    for keyword in keywords:
        rng = random.Random(f"{seed}|{keyword}")
        for _ in range(per_keyword):
            pool = list(language_fillers(language))
            rng.shuffle(pool)
            words = [w for w in pool if w not in forbidden][:FILLERS_PER_SENTENCE]
            words.insert(rng.randrange(1, len(words) + 1), keyword)
            sentences.append((keyword, " ".join(words)))
    return sentences


def demo_recipe_hash(
    source: DemoCorpusSource, keywords: list[str], sample_rate: int, language: str = "en"
) -> str:
    recipe = {
        "source": source.model_dump(mode="json"),
        "keywords": keywords,
        "sr": sample_rate,
        "fillers": language_fillers(language),
    }
    if language != "en":  # English corpora keep the hash (and folder) they always had
        recipe["language"] = language
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def generate_demo_corpus(
    source: DemoCorpusSource,
    keywords: list[str],
    language: str,
    sample_rate: int,
    corpora_root: Path,
) -> Path:
    """Write the demo corpus (WAVs + manifest) once; return its folder.

    The folder name carries the recipe hash, so changing the keywords makes a new corpus and an
    unchanged recipe reuses the files already written.  Each recording is spoken by a freshly
    started espeak-ng, so a sentence sounds the same whatever was spoken before it: the
    recordings of the keywords that did not change keep their utterance ids, and every clip
    cut from them stays cached downstream.
    """
    recipe = demo_recipe_hash(source, keywords, sample_rate, language)
    folder = Path(corpora_root) / f"{source.name}-{recipe}"
    manifest = folder / DEMO_MANIFEST
    if manifest.is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for voice in source.voices:
        for index, (keyword, sentence) in enumerate(
            demo_sentences(keywords, source.sentences_per_keyword, source.seed, language)
        ):
            # espeak-ng keeps state between syntheses: a fresh engine per recording makes its
            # audio (and so its utterance id, a content hash) a function of its sentence alone
            tts.reset_engine()
            synthesis = tts.synthesize(sentence, voice=voice, rate=source.rate)
            samples = resample(synthesis.samples, synthesis.sample_rate, sample_rate)
            rel = f"audio/{voice.replace('+', '_')}/{index:04d}_{keyword}.wav"
            write_wav(folder / rel, samples, sample_rate)
            rows.append(
                {
                    "path": rel,
                    "transcript": sentence,
                    "speaker": tts_speaker_id(voice),
                    "language": language,
                    "license": DEMO_LICENSE,
                }
            )
    write_jsonl_atomic(manifest, rows)
    return folder


def write_jsonl_atomic(path: Path, rows: Iterable[dict]) -> None:
    """Write dicts as JSON lines to ``path`` via a temporary file and a rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def demo_source_as_manifest(
    source: DemoCorpusSource, folder: Path, language: str
) -> ManifestSource:
    """The generated demo corpus is read back through the same manifest connector."""
    return ManifestSource(
        name=source.name,
        root=str(folder),
        manifest=DEMO_MANIFEST,
        language=language,
        license=DEMO_LICENSE,
    )


REGISTRATION = register_connector(DemoCorpusSource, lister=None, module=__name__)
"""Generated, not listed: ingest writes it with :func:`generate_demo_corpus` and reads it back
through :func:`demo_source_as_manifest`."""
