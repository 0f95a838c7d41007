"""ONNX export, int8 quantisation, the artifact folder and the file classifier."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from kws_assets.core.audio.io import AudioReadError, resample, write_wav
from kws_assets.core.families import load_classifier
from kws_assets.core.families.mfcc_dscnn import ARTIFACT_FILES, write_artifact
from kws_assets.core.features.mfcc import FeatureSpec, features_for_files
from kws_assets.core.model.detect import DetectorOperatingPoint
from kws_assets.core.model.networks import DSCNN
from kws_assets.core.model.training import evaluate, predict_logits
from kws_assets.core.ship.export import (
    INPUT_NAME,
    OPERATING_POINT_FILE,
    OUTPUT_NAME,
    classify_with_cache,
    export_onnx,
    onnx_accuracy,
    onnx_logits,
    operating_point_warning,
    quantize_int8,
    read_operating_point,
    softmax,
    write_operating_point,
)
from kws_assets.core.storage.render_cache import RenderCache
from kws_assets.settings import ModelSettings
from kws_assets_tests.tone_detector import (
    labelled_clips,
    tone_artifact,
    tone_embedding_artifact,
    tone_micro_artifact,
)
from kws_assets_tests.tone_task import SR, TONE_LABELS, trained_tone_model

KIB = 1024


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    """The trained tone model as float ONNX, int8 ONNX and an artifact folder."""
    task, result, _ = trained_tone_model()
    out = tmp_path_factory.mktemp("export")
    float_path = export_onnx(result.model, task.spec, out / "model.onnx")
    int8_path = quantize_int8(float_path, out / "model.int8.onnx", task.x_val)
    float_acc = onnx_accuracy(float_path, task.x_test, task.y_test)
    int8_acc = onnx_accuracy(int8_path, task.x_test, task.y_test)
    metrics = {
        "float_accuracy": float_acc,
        "int8_accuracy": int8_acc,
        "test": evaluate(result.model, task.x_test, task.y_test, TONE_LABELS).as_dict(),
        "int8_bytes": np.int64(int8_path.stat().st_size),
    }
    artifact = write_artifact(out / "artifact", int8_path, TONE_LABELS, task.spec, metrics)
    return {
        "task": task,
        "result": result,
        "float": float_path,
        "int8": int8_path,
        "artifact": artifact,
        "float_acc": float_acc,
        "int8_acc": int8_acc,
        "out": out,
    }


def test_float_onnx_matches_torch_with_dynamic_batch(exported) -> None:
    task, result = exported["task"], exported["result"]
    model = onnx.load(str(exported["float"]))
    assert [i.name for i in model.graph.input] == [INPUT_NAME]
    assert [o.name for o in model.graph.output] == [OUTPUT_NAME]
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) == 17
    for n in (1, 37):
        x = task.x_test[:n]
        np.testing.assert_allclose(
            onnx_logits(exported["float"], x), predict_logits(result.model, x), rtol=1e-4, atol=1e-4
        )


def test_export_leaves_the_model_untouched(exported, tmp_path) -> None:
    model = DSCNN(4, ModelSettings(n_filters=8, n_blocks=1))
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    export_onnx(model, exported["task"].spec, tmp_path / "m.onnx")
    assert model.training
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k])


def test_int8_model_is_quantised_and_as_accurate_as_float(exported) -> None:
    task = exported["task"]
    model = onnx.load(str(exported["int8"]))
    ops = {node.op_type for node in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    int8_weights = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert sum(int(np.prod(t.dims)) for t in int8_weights) > 0.9 * sum(
        p.numel()
        for n, p in exported["result"].model.named_parameters()
        if "weight" in n and p.dim() > 1
    )
    assert exported["float_acc"] >= 0.85
    assert exported["int8_acc"] >= exported["float_acc"] - 0.05
    agree = (
        onnx_logits(exported["int8"], task.x_test).argmax(1)
        == onnx_logits(exported["float"], task.x_test).argmax(1)
    ).mean()
    assert agree >= 0.95


def test_reference_ds_cnn_s_int8_size(exported, tmp_path) -> None:
    torch.manual_seed(0)
    model = DSCNN(12, ModelSettings()).eval()
    spec = exported["task"].spec
    float_path = export_onnx(model, spec, tmp_path / "s.onnx")
    calibration = np.random.default_rng(0).standard_normal((64, *spec.shape)).astype(np.float32)
    int8_path = quantize_int8(float_path, tmp_path / "s.int8.onnx", calibration)
    float_size, int8_size = float_path.stat().st_size, int8_path.stat().st_size
    assert 20 * KIB <= int8_size <= 80 * KIB
    assert int8_size < 0.7 * float_size


def test_artifact_folder_contents(exported) -> None:
    artifact: Path = exported["artifact"]
    assert sorted(p.name for p in artifact.iterdir()) == sorted(ARTIFACT_FILES)
    assert json.loads((artifact / "labels.json").read_text()) == TONE_LABELS
    spec = FeatureSpec.model_validate_json((artifact / "feature_config.json").read_text())
    assert spec == exported["task"].spec and spec.has_stats
    metrics = json.loads((artifact / "metrics.json").read_text())
    assert metrics["int8_accuracy"] == exported["int8_acc"]
    assert metrics["int8_bytes"] == exported["int8"].stat().st_size
    assert (artifact / "model.int8.onnx").read_bytes() == exported["int8"].read_bytes()


def test_write_artifact_replaces_whole_folder_and_leaves_no_temp(exported, tmp_path) -> None:
    task = exported["task"]
    target = tmp_path / "art"
    write_artifact(target, exported["int8"], TONE_LABELS, task.spec, {"run": 1})
    (target / "stale.txt").write_text("from an older run")
    write_artifact(target, exported["int8"], TONE_LABELS, task.spec, {"run": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art"]
    assert not (target / "stale.txt").exists()
    assert json.loads((target / "metrics.json").read_text()) == {"run": 2}
    no_stats = FeatureSpec(**{**task.spec.model_dump(), "mean": None, "std": None})
    with pytest.raises(ValueError):
        write_artifact(tmp_path / "bad", exported["int8"], TONE_LABELS, no_stats, {})
    assert not (tmp_path / "bad").exists()


def _tone_wavs(folder: Path, clips: np.ndarray) -> list[str]:
    """Write clips as WAVs in assorted formats: 16 kHz, 8 kHz, 44.1 kHz, 16 kHz float."""
    paths = []
    for i, clip in enumerate(clips):
        path = folder / f"clip{i}.wav"
        kind = i % 4
        if kind == 1:
            write_wav(path, resample(clip, SR, 8000), 8000)
        elif kind == 2:
            write_wav(path, resample(clip, SR, 44100), 44100)
        else:
            write_wav(path, clip, SR, subtype="FLOAT" if kind == 3 else "PCM_16")
        paths.append(str(path))
    return paths


def test_classifier_from_artifact_classifies_wav_files(exported, tmp_path) -> None:
    task = exported["task"]
    classifier = load_classifier(exported["artifact"], threads=1)
    assert classifier.labels == TONE_LABELS
    clips, y = task.clips_test[:16], task.y_test[:16]
    paths = _tone_wavs(tmp_path, clips)
    results = classifier.classify_files(paths)
    assert [r["path"] for r in results] == paths
    predicted = np.array([TONE_LABELS.index(r["label"]) for r in results])
    assert (predicted == y).mean() >= 0.8
    for r in results:
        assert set(r["scores"]) == set(TONE_LABELS)
        assert sum(r["scores"].values()) == pytest.approx(1.0, abs=1e-4)
        assert r["score"] == max(r["scores"].values())
    # same numbers as the feature path + int8 model directly
    probs = softmax(onnx_logits(exported["int8"], features_for_files(paths, classifier.spec)))
    np.testing.assert_allclose(
        [[r["scores"][lab] for lab in TONE_LABELS] for r in results], probs, atol=1e-5
    )
    np.testing.assert_allclose(
        classifier.classify_features(task.x_test[:4]),
        softmax(onnx_logits(exported["int8"], task.x_test[:4])),
        atol=1e-6,
    )


def test_classifier_reports_or_raises_for_bad_files(exported, tmp_path) -> None:
    task = exported["task"]
    classifier = load_classifier(exported["artifact"])
    good = _tone_wavs(tmp_path, task.clips_test[:2])
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not a wav file at all")
    missing = str(tmp_path / "missing.wav")
    with pytest.raises(AudioReadError):
        classifier.classify_files([good[0], str(broken)])
    results = classifier.classify_files([good[0], str(broken), missing, good[1]], skip_errors=True)
    assert [("error" in r) for r in results] == [False, True, True, False]
    assert results[1]["path"] == str(broken)
    assert results[3] == classifier.classify_files([good[1]])[0]


def test_load_rejects_incomplete_or_mismatched_artifacts(exported, tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        load_classifier(tmp_path)
    task = exported["task"]
    wrong = write_artifact(
        tmp_path / "wrong", exported["int8"], [*TONE_LABELS, "extra"], task.spec, {}
    )
    with pytest.raises(ValueError):
        load_classifier(wrong)


def test_artifact_ships_the_int8_model_as_a_c_array_that_compiles(exported, tmp_path) -> None:
    """The generated C files compile, and the array holds exactly the bytes of model.int8.onnx."""
    import shutil
    import subprocess

    from kws_assets.core.ship.export import C_HEADER_FILE, C_SOURCE_FILE

    artifact = exported["artifact"]
    model = (artifact / "model.int8.onnx").read_bytes()
    header = (artifact / C_HEADER_FILE).read_text()
    assert f"#define KWS_MODEL_N_FRAMES {exported['task'].spec.n_frames}" in header
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler on this machine (.ci/system-deps installs gcc)")
    main_c = tmp_path / "main.c"
    main_c.write_text(
        '#include <stdio.h>\n#include <stdint.h>\n#include "model_data.h"\n'
        "int main(void) {\n"
        "  unsigned long sum = 0; unsigned int i;\n"
        "  for (i = 0; i < kws_model_len; ++i) sum = (sum * 31u + kws_model[i]) % 4294967291u;\n"
        '  printf("%u %lu %d %s %s %.6f %lu\\n", kws_model_len, sum, KWS_MODEL_NUM_LABELS,\n'
        "         kws_model_labels[0], kws_model_labels[KWS_MODEL_NUM_LABELS - 1],\n"
        "         kws_model_mfcc_std[0], (unsigned long)((uintptr_t)kws_model % 16u));\n"
        "  return 0;\n}\n"
    )
    binary = tmp_path / "model_check"
    subprocess.run(
        [
            compiler,
            "-std=c99",
            "-Wall",
            "-Werror",
            "-I",
            str(artifact),
            str(main_c),
            str(artifact / C_SOURCE_FILE),
            "-o",
            str(binary),
        ],
        check=True,
    )
    out = subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout.split()
    checksum = 0
    for byte in model:
        checksum = (checksum * 31 + byte) % 4294967291
    spec = exported["task"].spec
    assert out[:5] == [
        str(len(model)),
        str(checksum),
        str(len(TONE_LABELS)),
        TONE_LABELS[0],
        TONE_LABELS[-1],
    ]
    assert float(out[5]) == pytest.approx(spec.std[0], rel=1e-6)
    assert out[6] == "0"  # 16-byte aligned


def test_quantization_gates(exported) -> None:
    from kws_assets.core.ship.export import MODEL_FILE, accuracy_drop_gate, read_metrics, size_gate

    ok = accuracy_drop_gate({"float_test_accuracy": 0.90, "int8_test_accuracy": 0.895}, 1.0)
    assert ok.passed and ok.value == pytest.approx(0.5)
    bad = accuracy_drop_gate({"float_test_accuracy": 0.90, "int8_test_accuracy": 0.88}, 1.0)
    assert not bad.passed and bad.value == pytest.approx(2.0)
    assert accuracy_drop_gate({"float_test_accuracy": 0.9, "int8_test_accuracy": 0.95}, 0.0).passed
    assert not accuracy_drop_gate({"float_test_accuracy": None}, 1.0).passed  # nothing measured
    model = exported["artifact"] / MODEL_FILE
    size_kib = model.stat().st_size / KIB
    assert size_gate(model, size_kib + 1).passed and not size_gate(model, size_kib - 1).passed
    assert read_metrics(exported["artifact"])["int8_accuracy"] == pytest.approx(
        exported["int8_acc"]
    )


def test_operating_point_file_round_trips_and_bad_files_are_clear(tmp_path) -> None:
    point = DetectorOperatingPoint(0.93, 5, 0.5, 80.0)
    path = write_operating_point(tmp_path, point, {"family": "mfcc", "target_fa_per_hour": 1.0})
    assert path == tmp_path / OPERATING_POINT_FILE
    assert read_operating_point(tmp_path) == point == read_operating_point(path)
    assert json.loads(path.read_text())["selected"]["family"] == "mfcc"
    (tmp_path / "bare").mkdir()
    assert read_operating_point(tmp_path / "bare") is None  # a folder without one
    path.write_text(json.dumps({"threshold": 1.5}))
    with pytest.raises(ValueError, match="threshold must lie"):
        read_operating_point(tmp_path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not JSON"):
        read_operating_point(tmp_path)


def test_operating_point_files_with_and_without_bounds_read_alike(tmp_path) -> None:
    point = DetectorOperatingPoint(0.93, 5, 0.5, 80.0)
    old = tmp_path / "old"  # written before intervals and the usable flag
    old.mkdir()
    (old / OPERATING_POINT_FILE).write_text(
        json.dumps({**point.as_dict(), "selected": {"meets_target_on_validation": True}})
    )
    assert read_operating_point(old) == point and operating_point_warning(old) is None
    bounds = {"fa_per_hour_upper": 7.378, "frr_lower": 0.9, "frr_upper": 0.99, "level": 0.95}
    flagged = {"test_bounds": bounds, "usable": False, "usable_message": "NOT USABLE: misses 98%"}
    new = write_operating_point(tmp_path / "new", point, flagged)
    assert read_operating_point(new) == point
    assert operating_point_warning(new.parent) == "NOT USABLE: misses 98%"
    assert json.loads(new.read_text())["selected"]["test_bounds"] == bounds
    fine = write_operating_point(tmp_path / "fine", point, {**flagged, "usable": True})
    assert operating_point_warning(fine) is None
    assert operating_point_warning(tmp_path / "nowhere") is None


@pytest.mark.parametrize("which", ["mfcc", "speech_embedding", "micro_wake_word"])
def test_cached_clip_features_classify_as_the_clips_do(tmp_path: Path, which: str) -> None:
    """Every family's front end splits off: its features, cached by front end and audio, give
    the probabilities ``classify_clips`` gives; a second pass runs no front end."""
    folder = {
        "mfcc": lambda: tone_artifact().folder,
        "speech_embedding": tone_embedding_artifact,
        "micro_wake_word": tone_micro_artifact,
    }[which]()
    classifier = load_classifier(folder)
    clips, _ = labelled_clips(3, seed=9)
    clips = clips.astype(np.float32)
    cache = RenderCache(tmp_path / "features")
    expected = classifier.classify_clips(clips)
    np.testing.assert_allclose(classify_with_cache(classifier, clips, cache), expected, atol=1e-5)
    assert cache.misses == len(clips) and cache.hits == 0
    np.testing.assert_allclose(classify_with_cache(classifier, clips, cache), expected, atol=1e-5)
    assert cache.hits == len(clips) and cache.misses == len(clips)
    assert classifier.feature_key().startswith(which)
