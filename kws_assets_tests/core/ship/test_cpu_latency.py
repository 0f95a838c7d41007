"""The artifact says which precision to run on a CPU: both graphs timed, the advice followed."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from kws_assets.cli import PRECISION_CHOICES
from kws_assets.core.audio.io import write_wav
from kws_assets.core.families import load_classifier
from kws_assets.core.families.mfcc_dscnn import write_artifact
from kws_assets.core.ship.cpu_latency import (
    AUTO_PRECISION,
    CPU_LATENCY_FILE,
    FLOAT_MARGIN,
    PRECISIONS,
    PrecisionLatency,
    measure_precision_latency,
    read_cpu_latency,
    recommend_precision,
    resolve_precision,
    write_cpu_latency,
)
from kws_assets.core.ship.export import (
    FLOAT_MODEL_FILE,
    MODEL_FILE,
    export_onnx,
    model_file,
)
from kws_assets_tests.tone_detector import LABELS


def _latency(int8_us: float, float_us: float) -> PrecisionLatency:
    median = {"int8": {1: int8_us, 16: int8_us / 2}, "float": {1: float_us, 16: float_us / 2}}
    return PrecisionLatency(median, recommend_precision(median), 1, 10, "test")


@pytest.fixture(scope="module")
def measured(ship_model) -> tuple[PrecisionLatency, object]:
    float_path = export_onnx(ship_model.model, ship_model.spec, ship_model.folder / "m.float.onnx")
    latency = measure_precision_latency(
        {"float": float_path, "int8": ship_model.onnx_int8},
        ship_model.x_test[:8],
        batch_sizes=(1, 4),
        calls=5,
        rounds=2,
    )
    return latency, float_path


def test_both_graphs_are_timed_at_every_batch_size(measured) -> None:
    latency, _ = measured
    assert set(latency.median_us) == set(PRECISIONS)
    for by_batch in latency.median_us.values():
        assert set(by_batch) == {1, 4}
        assert all(us > 0 for us in by_batch.values())
    assert latency.recommended == recommend_precision(latency.median_us)
    assert latency.speedup(4) == pytest.approx(
        latency.median_us["float"][4] / latency.median_us["int8"][4]
    )
    assert latency.calls_per_batch == 10


def test_a_batch_larger_than_the_windows_given_is_tiled(ship_model, measured) -> None:
    _, float_path = measured
    latency = measure_precision_latency(
        {"float": float_path, "int8": ship_model.onnx_int8},
        ship_model.x_test[:3],
        batch_sizes=(8,),
        calls=2,
        rounds=1,
    )
    assert set(latency.median_us["int8"]) == {8}


def test_float_is_advised_only_when_clearly_faster() -> None:
    assert _latency(100.0, 100.0).recommended == "int8"
    assert _latency(100.0, 100.0 / (1 + FLOAT_MARGIN) + 0.5).recommended == "int8"
    assert _latency(100.0, 80.0).recommended == "float"
    assert _latency(80.0, 100.0).recommended == "int8"


def test_bad_measurement_requests_are_refused(ship_model, measured) -> None:
    _, float_path = measured
    with pytest.raises(ValueError, match="exactly"):
        measure_precision_latency({"float": float_path}, ship_model.x_test[:2])
    with pytest.raises(ValueError, match="non-empty"):
        measure_precision_latency(
            {"float": float_path, "int8": ship_model.onnx_int8}, ship_model.x_test[:0]
        )


def test_the_timing_file_round_trips_and_a_broken_one_is_named(tmp_path) -> None:
    latency = _latency(120.0, 90.0)
    write_cpu_latency(tmp_path, latency)
    again = read_cpu_latency(tmp_path)
    assert again is not None
    assert again.recommended == "float"
    assert again.median_us["int8"][16] == pytest.approx(60.0)
    (tmp_path / CPU_LATENCY_FILE).write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match=CPU_LATENCY_FILE):
        read_cpu_latency(tmp_path)
    assert read_cpu_latency(tmp_path / "nowhere") is None


def test_auto_follows_the_folder_and_falls_back_to_int8(tmp_path) -> None:
    assert resolve_precision(tmp_path, AUTO_PRECISION) == "int8"
    write_cpu_latency(tmp_path, _latency(120.0, 90.0))
    assert resolve_precision(tmp_path, AUTO_PRECISION) == "float"
    assert resolve_precision(tmp_path, "int8") == "int8"
    with pytest.raises(ValueError, match="precision"):
        resolve_precision(tmp_path, "fp16")


@pytest.fixture(scope="module")
def both_graphs(ship_model, measured, tmp_path_factory):
    """An artifact folder with the int8 and the float graph and their timing."""
    latency, float_path = measured
    folder = tmp_path_factory.mktemp("both") / "artifact"
    args = (ship_model.onnx_int8, LABELS, ship_model.spec, {}, float_path, latency)
    return write_artifact(folder, *args), latency


def test_artifact_ships_both_graphs_and_runs_either(ship_model, both_graphs) -> None:
    folder, latency = both_graphs
    assert {MODEL_FILE, FLOAT_MODEL_FILE, CPU_LATENCY_FILE} <= {p.name for p in folder.iterdir()}
    assert (
        model_file(folder, AUTO_PRECISION).name
        == {
            "int8": MODEL_FILE,
            "float": FLOAT_MODEL_FILE,
        }[latency.recommended]
    )
    clips = ship_model.clips_test[:40]
    int8_probs = load_classifier(folder, precision="int8").classify_clips(clips)
    float_probs = load_classifier(folder, precision="float").classify_clips(clips)
    assert not np.array_equal(int8_probs, float_probs)  # two different graphs ran
    assert np.mean(int8_probs.argmax(1) == float_probs.argmax(1)) >= 0.95


def test_an_int8_only_artifact_says_how_to_get_the_float_graph(ship_model, tmp_path) -> None:
    folder = write_artifact(tmp_path / "old", ship_model.onnx_int8, LABELS, ship_model.spec, {})
    assert model_file(folder, AUTO_PRECISION).name == MODEL_FILE
    with pytest.raises(FileNotFoundError, match="re-materialize"):
        load_classifier(folder, precision="float")


def test_cli_precision_choices_match_the_core(ship_model, both_graphs, tmp_path) -> None:
    assert set(PRECISION_CHOICES) == {*PRECISIONS, AUTO_PRECISION}
    folder, _ = both_graphs
    wav = tmp_path / "clip.wav"
    write_wav(wav, ship_model.clips_test[0], ship_model.spec.sample_rate)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "kws_assets.cli",
            "classify",
            "--model",
            str(folder),
            "--precision",
            "float",
            str(wav),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["label"] in LABELS
