"""The ``kws classify`` command: one JSON line per file, error lines and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kws_assets.cli import EXIT_FILE_ERRORS, EXIT_OK, EXIT_USAGE, main
from kws_assets.core.audio.io import write_wav
from kws_assets.core.families.mfcc_dscnn import write_artifact
from kws_assets.core.ship.export import export_onnx, quantize_int8
from kws_assets_tests.tone_task import SR, TONE_LABELS, trained_tone_model

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    task, result, _ = trained_tone_model()
    out = tmp_path_factory.mktemp("cli_model")
    float_path = export_onnx(result.model, task.spec, out / "model.onnx")
    int8_path = quantize_int8(float_path, out / "model.int8.onnx", task.x_val)
    return write_artifact(out / "artifact", int8_path, TONE_LABELS, task.spec, {})


@pytest.fixture(scope="module")
def wavs(tmp_path_factory) -> tuple[list[str], list[str]]:
    """Test clips of the tone task as WAVs, with their true labels."""
    task, _, _ = trained_tone_model()
    folder = tmp_path_factory.mktemp("cli_wavs")
    paths, labels = [], []
    for i, (clip, y) in enumerate(zip(task.clips_test[:8], task.y_test[:8], strict=True)):
        path = folder / f"{TONE_LABELS[y]}_{i}.wav"
        write_wav(path, clip, SR)
        paths.append(str(path))
        labels.append(TONE_LABELS[y])
    return paths, labels


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_classify_prints_one_json_line_per_file(artifact, wavs, capsys) -> None:
    paths, labels = wavs
    assert main(["classify", "--model", str(artifact), *paths]) == EXIT_OK
    rows = _lines(capsys.readouterr().out)
    assert [r["path"] for r in rows] == paths
    assert np.mean([r["label"] == truth for r, truth in zip(rows, labels, strict=True)]) >= 0.75
    for r in rows:
        assert set(r) == {"path", "label", "score", "scores"}
        assert r["score"] == max(r["scores"].values())
        assert sum(r["scores"].values()) == pytest.approx(1.0, abs=1e-4)


def test_module_entry_point_with_a_broken_file(artifact, wavs, tmp_path) -> None:
    paths, _ = wavs
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])
        ),
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "kws_assets.cli",
            "classify",
            "--model",
            str(artifact),
            paths[0],
            str(broken),
            paths[1],
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == EXIT_FILE_ERRORS, proc.stderr
    rows = _lines(proc.stdout)
    assert [r["path"] for r in rows] == [paths[0], str(broken), paths[1]]
    assert "error" in rows[1] and "label" not in rows[1]
    assert "label" in rows[0] and "label" in rows[2]


def test_unusable_model_folder_is_a_usage_error(tmp_path, wavs, capsys) -> None:
    paths, _ = wavs
    assert main(["classify", "--model", str(tmp_path / "nothing"), paths[0]]) == EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.out == "" and "cannot load model" in captured.err


def test_missing_arguments_exit_with_usage() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["classify"])
    assert exc.value.code == EXIT_USAGE


def test_detect_prints_one_json_line_per_detection(tmp_path, capsys) -> None:
    from kws_assets_tests.tone_detector import tone_artifact, tone_stream

    model = tone_artifact().folder
    truth = [(1.5, "low_tone"), (4.0, "_unknown_"), (6.5, "high_tone")]
    long_wav = tmp_path / "long.wav"
    write_wav(long_wav, tone_stream(truth, 9.0, seed=5), SR)
    quiet_wav = tmp_path / "quiet.wav"
    write_wav(quiet_wav, tone_stream([], 3.0, seed=6), SR)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF0000WAVEjunk")
    code = main(
        [
            "detect",
            "--model",
            str(model),
            "--threshold",
            "0.45",
            str(long_wav),
            str(broken),
            str(quiet_wav),
        ]
    )
    rows = _lines(capsys.readouterr().out)
    assert code == EXIT_FILE_ERRORS
    detections = [r for r in rows if "keyword" in r]
    assert [(r["path"], r["keyword"]) for r in detections] == [
        (str(long_wav), "low_tone"),
        (str(long_wav), "high_tone"),
    ]
    for row, (start, _) in zip(detections, [truth[0], truth[2]], strict=True):
        assert set(row) == {"path", "start", "end", "keyword", "score"}
        assert row["start"] <= start < row["end"]
    errors = [r for r in rows if "error" in r]
    assert [r["path"] for r in errors] == [str(broken)]
    assert main(["detect", "--model", str(tmp_path / "nothing"), str(long_wav)]) == EXIT_USAGE


def test_detect_defaults_match_the_detector() -> None:
    from kws_assets import cli
    from kws_assets.core.model import detect

    for name in (
        "DEFAULT_THRESHOLD",
        "DEFAULT_HOP_MS",
        "DEFAULT_SMOOTHING_WINDOWS",
        "DEFAULT_REFRACTORY_S",
    ):
        assert getattr(cli, name) == getattr(detect, name)


def test_detect_uses_the_shipped_operating_point_by_default(tmp_path, capsys) -> None:
    import shutil

    from kws_assets.core.families import load_classifier
    from kws_assets.core.model.detect import DetectorOperatingPoint, StreamingDetector
    from kws_assets.core.ship.export import write_operating_point
    from kws_assets_tests.tone_detector import tone_artifact, tone_stream

    model = tmp_path / "model"
    shutil.copytree(tone_artifact().folder, model)  # the cached artifact stays without a point
    long_wav = tmp_path / "long.wav"
    write_wav(
        long_wav,
        tone_stream([(1.5, "low_tone"), (4.0, "_unknown_"), (6.5, "high_tone")], 9.0, seed=5),
        SR,
    )
    classifier = load_classifier(model)

    def expected(point: DetectorOperatingPoint) -> list[tuple[str, float]]:
        found = StreamingDetector.at(classifier, point).detect_file(long_wav)
        return [(d.keyword, round(d.start_s, 3)) for d in found]

    def run(*extra: str) -> tuple[list[tuple[str, float]], str]:
        assert main(["detect", "--model", str(model), *extra, str(long_wav)]) == EXIT_OK
        captured = capsys.readouterr()
        return [(r["keyword"], r["start"]) for r in _lines(captured.out)], captured.err

    found, err = run()  # no shipped point: today's defaults, and stderr says so
    assert "ships no operating_point.json" in err and found == expected(
        DetectorOperatingPoint(0.8, 3, 1.0, 100.0)
    )
    # a shipped point so strict that nothing fires, then one that fires on every burst
    write_operating_point(model, DetectorOperatingPoint(0.99999, 5, 0.5, 100.0))
    found, err = run()
    assert found == [] and err == ""
    # a point the evaluation flagged not usable still runs, with its warning on stderr
    write_operating_point(
        model,
        DetectorOperatingPoint(0.99999, 5, 0.5, 100.0),
        {"usable": False, "usable_message": "NOT USABLE: misses 98% of the keywords"},
    )
    found, err = run()
    assert found == [] and err == "kws: NOT USABLE: misses 98% of the keywords\n"
    shipped = DetectorOperatingPoint(0.3, 1, 0.5, 100.0)
    write_operating_point(model, shipped)
    found, _ = run()
    assert found == expected(shipped) and len(found) >= 2
    assert found != expected(DetectorOperatingPoint(0.3, 5, 2.0, 100.0))  # the point matters
    # a command-line option overrides that one setting; --operating-point names another file
    assert run("--threshold", "0.99999")[0] == []
    other = write_operating_point(
        tmp_path / "elsewhere" / "operating_point.json",
        DetectorOperatingPoint(0.99999, 1, 0.5, 100.0),
    )
    assert run("--operating-point", str(other))[0] == []


def test_review_without_a_materialized_queue_says_what_to_do(tiny_config_file, capsys) -> None:
    assert main(["review", "--config", str(tiny_config_file)]) == EXIT_USAGE
    assert "materialize it first (the review_clips job)" in capsys.readouterr().err
