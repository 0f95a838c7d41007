"""The real dev set end to end in the core: a speech_embedding head trained on TTS alone (three
ktuberling words as keywords) is scored on the recordings of people in Debian's ktuberling-data,
through an int8 artifact loaded from its folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kws_assets.core.audio.io import cut_centered, resample
from kws_assets.core.corpus.ktuberling import ktuberling_sounds, write_dev_manifest
from kws_assets.core.corpus.real_sources import load_real_source
from kws_assets.core.evaluation.real_speech import score_real_source, waveform_classifier
from kws_assets.core.families import load_classifier
from kws_assets.core.families.speech_embedding import write_artifact as write_embedding_artifact
from kws_assets.core.features.speech_embedding import SpeechEmbeddingFrontEnd
from kws_assets.core.model.embedding_head import train_head
from kws_assets.core.ship.export import (
    export_onnx,
    quantize_int8,
)
from kws_assets.core.speech import tts
from kws_assets.settings import (
    SILENCE_LABEL,
    UNKNOWN_LABEL,
    AudioSettings,
    RealSourceSettings,
    TrainSettings,
)

KEYWORDS = ["ball", "hat", "nose"]
LABELS = [SILENCE_LABEL, UNKNOWN_LABEL, *KEYWORDS]
OTHER_WORDS = ["bow", "coat", "cat", "house", "nice", "bat", "hut", "knows", "tall", "shoes"]
VOICES = [
    "en-us+m1",
    "en-us+f2",
    "en+m3",
    "en+f4",
    "en-gb-x-rp+m1",
    "en-us-nyc+f3",
    "en-029+m6",
    "en-gb-scotland+f5",
]
AUDIO = AudioSettings()

pytestmark = pytest.mark.skipif(
    not Path("/usr/share/ktuberling/sounds/en.soundtheme").is_file(),
    reason="Debian package ktuberling-data is not installed",
)


def _clip(word: str, voice: str, rate: int) -> np.ndarray:
    spoken = tts.synthesize(word, voice=voice, rate=rate)
    samples = resample(spoken.samples, spoken.sample_rate, AUDIO.sample_rate)
    sound, offset = tts.trim_silence(samples, AUDIO.sample_rate)
    return cut_centered(
        samples,
        AUDIO.sample_rate,
        (offset + len(sound) / 2) / AUDIO.sample_rate,
        AUDIO.clip_samples,
        AUDIO.fade_ms,
    )


def _training_set(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    clips, labels = [], []
    for voice in VOICES:
        for rate in (130, 170):
            for keyword in KEYWORDS:
                clips.append(_clip(keyword, voice, rate))
                labels.append(LABELS.index(keyword))
            for word in rng.choice(OTHER_WORDS, size=3, replace=False):
                clips.append(_clip(str(word), voice, rate))
                labels.append(LABELS.index(UNKNOWN_LABEL))
        for _ in range(2):
            clips.append(
                (rng.standard_normal(AUDIO.clip_samples) * 10 ** rng.uniform(-3, -1.5)).astype(
                    np.float32
                )
            )
            labels.append(0)
    return np.stack(clips), np.array(labels)


def test_a_tts_trained_head_is_scored_on_real_recordings(tmp_path):
    assert set(KEYWORDS) <= {e.word for e in ktuberling_sounds("en").entries}
    rng = np.random.default_rng(0)
    front_end = SpeechEmbeddingFrontEnd()
    clips, y = _training_set(rng)
    x = front_end(clips)
    order = rng.permutation(len(y))
    x, y = x[order], y[order]
    split = int(0.8 * len(y))
    result = train_head(
        x[:split],
        y[:split],
        x[split:],
        y[split:],
        LABELS,
        TrainSettings(max_epochs=30, min_epochs=10, patience=10, batch_size=16, threads=1),
        kind="dnn",
        width=64,
    )
    float_path, int8_path = tmp_path / "head.onnx", tmp_path / "head.int8.onnx"
    export_onnx(result.model, front_end.spec, float_path)
    quantize_int8(float_path, int8_path, x[:64])
    artifact = write_embedding_artifact(
        tmp_path / "artifact", int8_path, LABELS, front_end.spec, {}
    )

    manifest = write_dev_manifest("en", KEYWORDS, tmp_path / "real")
    real = load_real_source(
        RealSourceSettings(name="ktuberling_en", manifest=str(manifest.path)), KEYWORDS, AUDIO
    )
    assert real.label_counts()[UNKNOWN_LABEL] > 50 and all(
        real.label_counts()[k] >= 1 for k in KEYWORDS
    )
    report = score_real_source(waveform_classifier(load_classifier(artifact)), real, LABELS)
    assert report.n == len(real) and report.n_keyword == sum(
        real.label_counts()[k] for k in KEYWORDS
    )
    assert report.report.confusion and len(report.report.confusion) == len(LABELS)
    # Real speech is mostly other words: a model that fires on everything scores near 0 here,
    # one that learnt the keywords from TTS alone keeps most other words as _unknown_.
    assert report.accuracy > 0.5, report.as_dict()["accuracy"]
