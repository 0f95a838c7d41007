"""Clips from recordings whose label is already known (the Speech Commands layout): no alignment.

A word recording becomes one clip centred on the recording (shorter ones are zero-padded on both
sides, longer ones keep their middle).  A background-noise recording becomes ``_silence_`` clips:
consecutive non-overlapping windows from its start, at most ``max_silence_windows`` per file (a
recording shorter than one clip gives one padded clip).  Clip ids derive from the recording's
content id, so an unchanged recording is not cut again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kws_assets.core.audio.io import AudioReadError, cut_centered, read_audio
from kws_assets.core.storage.clip_store import ClipStore, clip_id_for
from kws_assets.settings import SILENCE_LABEL, AudioSettings


@dataclass(frozen=True)
class CutFailure:
    """A labelled recording that could not be read when its clips were cut."""

    utterance_id: str
    uri: str
    reason: str
    detail: str


def clip_starts(n_samples: int, clip_samples: int, max_windows: int) -> list[int]:
    """Start samples of the silence windows of a recording (at least one, at most max_windows)."""
    count = max(1, min(max_windows, n_samples // clip_samples))
    return [i * clip_samples for i in range(count)]


def cut_labeled_recording(
    samples: np.ndarray,
    sample_rate: int,
    label: str,
    audio: AudioSettings,
    max_silence_windows: int,
) -> list[tuple[float, np.ndarray]]:
    """``(start_s, clip)`` pairs for one labelled recording (see the module docstring)."""
    n = audio.clip_samples
    if label == SILENCE_LABEL:
        return [
            (
                start / sample_rate,
                cut_centered(samples, sample_rate, (start + n / 2) / sample_rate, n, audio.fade_ms),
            )
            for start in clip_starts(len(samples), n, max_silence_windows)
        ]
    centre_s = len(samples) / sample_rate / 2
    return [
        (
            max(0.0, centre_s - audio.clip_seconds / 2),
            cut_centered(samples, sample_rate, centre_s, n, audio.fade_ms),
        )
    ]


def cut_labeled_clips(
    recordings: list[dict],
    store: ClipStore,
    audio: AudioSettings,
    max_silence_windows: dict[str, int],
) -> tuple[list[dict], list[CutFailure]]:
    """Clip rows for labelled recordings (``raw_corpus`` rows with a ``clip_label``).

    ``max_silence_windows`` maps a source name to its windows-per-noise-file limit.  A recording
    that cannot be read any more (changed since ingest) becomes a CutFailure naming it.
    """
    rows: list[dict] = []
    failures: list[CutFailure] = []
    for rec in recordings:
        label = rec["clip_label"]
        try:
            info = read_audio(rec["uri"], target_sr=audio.sample_rate)
        except AudioReadError as exc:
            failures.append(CutFailure(rec["utterance_id"], rec["uri"], exc.reason, str(exc)))
            continue
        windows = max_silence_windows.get(rec["source"], 1)
        for start_s, clip in cut_labeled_recording(
            info.samples, info.sample_rate, label, audio, windows
        ):
            clip_id = clip_id_for(
                rec["source"],
                rec["utterance_id"],
                label,
                f"{start_s:.3f}",
                audio.sample_rate,
                audio.clip_samples,
            )
            key = store.key_for(rec["source"], label, clip_id)
            uri = (
                store.uri_for(key) if store.exists(key) else store.put(key, clip, info.sample_rate)
            )
            rows.append(
                {
                    "clip_id": clip_id,
                    "uri": uri,
                    "label": label,
                    "source": rec["source"],
                    "speaker": rec["speaker"],
                    "language": rec["language"],
                    "origin_id": rec["utterance_id"],
                    "start_s": float(start_s),
                    "sample_rate": info.sample_rate,
                    "num_samples": len(clip),
                    "word": rec["transcript"] or None,
                    "confidence": None,
                    "field_tag": rec.get("field_tag"),
                }
            )
    return rows, failures
