"""score_real_source on fake classifiers whose answers are known."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kws_assets.core.corpus.real_sources import RealClips
from kws_assets.core.evaluation.real_speech import score_real_source
from kws_assets.settings import SILENCE_LABEL, UNKNOWN_LABEL

LABELS = [SILENCE_LABEL, UNKNOWN_LABEL, "ball", "hat"]
N_SAMPLES = 160


def _clips(labels: list[str], speakers: list[str]) -> RealClips:
    """Clip i carries its true class index in sample 0 so a fake classifier can read it."""
    samples = np.zeros((len(labels), N_SAMPLES), np.float32)
    samples[:, 0] = [LABELS.index(lab) if lab in LABELS else -1 for lab in labels]
    return RealClips(
        "fake",
        16000,
        samples,
        labels,
        speakers,
        [f"c{i}.wav" for i in range(len(labels))],
        list(labels),
    )


def _from_table(table: dict[int, int]):
    """A classifier answering table[true index] with probability 0.9."""

    def classify(x: np.ndarray) -> np.ndarray:
        probs = np.full((len(x), len(LABELS)), 0.1 / (len(LABELS) - 1))
        probs[np.arange(len(x)), [table[int(v)] for v in x[:, 0]]] = 0.9
        return probs

    return classify


TRUE = ["ball", "ball", "hat", UNKNOWN_LABEL, UNKNOWN_LABEL, UNKNOWN_LABEL, SILENCE_LABEL]
SPEAKERS = ["ann", "bo", "ann", "ann", "bo", "bo", "ann"]


def test_oracle_scores_one() -> None:
    report = score_real_source(
        _from_table({i: i for i in range(4)}), _clips(TRUE, SPEAKERS), LABELS, batch_size=3
    )
    assert report.accuracy == 1.0 and report.keyword_accuracy == 1.0
    assert report.unknown_false_accept_rate == 0.0 and report.errors == []
    assert report.per_speaker["ann"].n == 4 and report.per_speaker["bo"].accuracy == 1.0


def test_always_unknown_equals_the_baseline() -> None:
    report = score_real_source(
        _from_table(dict.fromkeys(range(4), 1)), _clips(TRUE, SPEAKERS), LABELS
    )
    assert report.accuracy == pytest.approx(report.unknown_baseline) == pytest.approx(3 / 7)
    assert report.keyword_accuracy == 0.0 and report.n_keyword == 3


def test_confusion_matrix_by_hand() -> None:
    # ball -> hat, hat -> hat, unknown -> ball, silence -> silence
    report = score_real_source(
        _from_table({0: 0, 1: 2, 2: 3, 3: 3}), _clips(TRUE, SPEAKERS), LABELS
    )
    assert report.report.confusion == [[1, 0, 0, 0], [0, 0, 3, 0], [0, 0, 0, 2], [0, 0, 0, 1]]
    assert report.accuracy == pytest.approx(2 / 7)
    assert report.keyword_accuracy == pytest.approx(1 / 3)
    assert report.unknown_false_accept_rate == 1.0
    hat = report.report.per_class["hat"]
    assert (hat.precision, hat.recall, hat.support) == (pytest.approx(1 / 3), 1.0, 1)
    assert report.per_speaker["ann"].accuracy == pytest.approx(2 / 4)  # hat and silence right
    assert report.per_speaker["bo"].accuracy == 0.0
    assert [(e.name, e.label, e.predicted) for e in report.errors][:2] == [
        ("c0.wav", "ball", "hat"),
        ("c1.wav", "ball", "hat"),
    ]
    as_json = json.loads(json.dumps(report.as_dict()))
    assert as_json["confusion"][1] == [0, 0, 3, 0] and as_json["per_speaker"]["bo"]["n"] == 3


def test_bad_inputs_are_named() -> None:
    clips = _clips(["ball", "cup"], ["a", "a"])
    with pytest.raises(ValueError, match="cup"):
        score_real_source(_from_table({i: i for i in range(4)}), clips, LABELS)
    with pytest.raises(ValueError, match="shape"):
        score_real_source(lambda x: np.zeros((len(x), 2)), _clips(["ball"], ["a"]), LABELS)


def test_shipped_artifact_on_a_real_source_end_to_end(tmp_path) -> None:
    """The int8 tone artifact through waveform_classifier on files of other lengths and rates:
    loading centres each burst again, so the model sees clips like its training clips."""
    from kws_assets.core.audio.io import resample, write_wav
    from kws_assets.core.corpus.real_sources import load_real_source
    from kws_assets.core.evaluation.real_speech import waveform_classifier
    from kws_assets.core.families import load_classifier
    from kws_assets.settings import AudioSettings, RealSourceSettings
    from kws_assets_tests.tone_detector import LABELS as TONE_LABELS
    from kws_assets_tests.tone_detector import labelled_clip, tone_artifact

    rng = np.random.default_rng(5)
    lines = ["path,label,speaker"]
    for i in range(24):
        label = TONE_LABELS[1 + i % 3]  # _unknown_, low_tone, high_tone
        clip = labelled_clip(label, rng)
        lead = np.zeros(int(rng.integers(0, 16000)), np.float32)  # burst anywhere in a longer file
        write_wav(
            tmp_path / f"{i}.wav",
            resample(np.concatenate([lead, clip, lead[:4000]]), 16000, 44100),
            44100,
        )
        lines.append(f"{i}.wav,{label},{'ab'[i % 2]}")
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    clips = load_real_source(
        RealSourceSettings(name="tones", manifest=str(tmp_path / "m.csv")),
        TONE_LABELS[2:],
        AudioSettings(),
    )
    assert len(clips) == 24 and clips.rejections == []
    classifier = load_classifier(tone_artifact().folder)
    report = score_real_source(waveform_classifier(classifier), clips, classifier.labels)
    assert report.unknown_baseline == pytest.approx(1 / 3)
    assert report.accuracy >= 0.9 and report.keyword_accuracy >= 0.9
    assert set(report.per_speaker) == {"a", "b"}
