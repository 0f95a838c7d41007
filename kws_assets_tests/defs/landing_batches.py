"""Corpus batches for tests: a folder of espeak-ng utterances with a manifest, written the way
a producer should land one (audio first, manifest last)."""

from __future__ import annotations

import csv
from pathlib import Path

from kws_assets.core.audio.io import resample, write_wav
from kws_assets.core.speech import tts

SAMPLE_RATE = 16000


def write_landing_batch(
    folder: Path,
    sentences: list[str],
    voice: str = "en-us+f3",
    speaker: str = "reader1",
    missing: list[str] = (),
) -> Path:
    """Write ``sentences`` as WAVs plus ``manifest.csv`` (written last) under ``folder``.

    ``missing`` adds manifest rows naming files that do not exist (each must be rejected alone).
    """
    audio = folder / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, sentence in enumerate(sentences):
        synthesis = tts.synthesize(sentence, voice=voice, rate=160)
        path = audio / f"{index:03d}.wav"
        write_wav(
            path, resample(synthesis.samples, synthesis.sample_rate, SAMPLE_RATE), SAMPLE_RATE
        )
        rows.append({"path": f"audio/{path.name}", "transcript": sentence, "speaker": speaker})
    rows += [
        {"path": name, "transcript": "a missing recording", "speaker": speaker} for name in missing
    ]
    staging = folder / ".manifest.csv.tmp"
    with staging.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["path", "transcript", "speaker"])
        writer.writeheader()
        writer.writerows(rows)
    staging.rename(folder / "manifest.csv")
    return folder
