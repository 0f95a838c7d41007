"""A release folder: the artifact's files untouched beside the operating point the evaluation
chose, so ``kws detect --model <release>`` runs that point; a release never ships a point it did
not read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kws_assets.cli import main
from kws_assets.core.audio.io import write_wav
from kws_assets.core.model.detect import DetectorOperatingPoint
from kws_assets.core.ship.export import OPERATING_POINT_FILE, write_operating_point
from kws_assets.core.ship.release import write_release
from kws_assets_tests.tone_detector import LABELS, SR, tone_artifact, tone_stream

POINT = DetectorOperatingPoint(0.61, 2, 0.5, 100.0)


@pytest.fixture
def chosen(tmp_path: Path) -> Path:
    return write_operating_point(tmp_path / "evaluation" / "mfcc", POINT, {"usable": True})


def test_the_release_holds_the_artifact_files_and_the_chosen_point(tmp_path, chosen) -> None:
    artifact = Path(tone_artifact().folder)
    release = tmp_path / "release"
    assert write_release(artifact, chosen, release) == POINT
    for item in artifact.iterdir():
        assert (release / item.name).read_bytes() == item.read_bytes(), item.name
    assert (release / OPERATING_POINT_FILE).read_bytes() == chosen.read_bytes()


def test_kws_detect_runs_the_released_point_without_falling_back(tmp_path, chosen, capsys) -> None:
    release = tmp_path / "release"
    write_release(Path(tone_artifact().folder), chosen, release)
    audio = tone_stream([(2.0, LABELS[2]), (6.0, LABELS[3])], 9.0, seed=5)
    wav = tmp_path / "long.wav"
    write_wav(wav, audio, SR)
    assert main(["detect", "--model", str(release), str(wav)]) == 0
    captured = capsys.readouterr()
    assert "ships no" not in captured.err  # the defaults were not used
    detections = [json.loads(line) for line in captured.out.splitlines()]
    assert detections, "the tone keywords in the stream are found"
    assert all(d["score"] >= POINT.threshold for d in detections)


def test_no_point_no_release(tmp_path) -> None:
    with pytest.raises(ValueError, match="run the evaluation"):
        write_release(Path(tone_artifact().folder), tmp_path / "missing.json", tmp_path / "r")
    bad = tmp_path / OPERATING_POINT_FILE
    bad.write_text("{not json")
    with pytest.raises(ValueError):
        write_release(Path(tone_artifact().folder), bad, tmp_path / "r")


def test_an_artifact_with_another_point_is_refused(tmp_path, chosen) -> None:
    artifact = tmp_path / "artifact"
    artifact.mkdir()
    write_operating_point(artifact, DetectorOperatingPoint(0.9, 1, 1.0, 100.0))
    with pytest.raises(ValueError, match="already ships another"):
        write_release(artifact, chosen, tmp_path / "release")
