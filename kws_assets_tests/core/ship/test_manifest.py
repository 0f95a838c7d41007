"""manifest.json: written from a real export, loaded back, and every kind of mismatch refused."""

from __future__ import annotations

import json
import shutil

import pytest

from kws_assets.core.ship.c_array import (
    TFLITE_C_HEADER_FILE,
    TFLITE_C_SOURCE_FILE,
    write_tflite_c_files,
)
from kws_assets.core.ship.manifest import (
    MANIFEST_FILE,
    SCHEMA,
    ManifestError,
    OperatingPoint,
    load_manifest,
    sha256_file,
    write_manifest,
)
from kws_assets.core.ship.tflite import arena_plan, int8_weight_bytes
from kws_assets_tests.tone_detector import LABELS

POINT = OperatingPoint(
    threshold=0.72,
    smoothing_windows=3,
    refractory_seconds=1.0,
    target_fa_per_hour=0.5,
    frr_at_target=0.04,
)


@pytest.fixture
def folder(ship_model, tmp_path):
    out = tmp_path / "device"
    out.mkdir()
    shutil.copyfile(ship_model.tflite, out / "model.int8.tflite")
    write_tflite_c_files(out, out / "model.int8.tflite", LABELS, ship_model.spec)
    plan = arena_plan(out / "model.int8.tflite")
    write_manifest(
        out,
        family="mfcc",
        model_file="model.int8.tflite",
        labels=LABELS,
        front_end=ship_model.spec,
        operating_point=POINT,
        int8_weight_bytes=int8_weight_bytes(out / "model.int8.tflite"),
        tensor_arena_bytes=plan.recommended_bytes,
        planned_activation_bytes=plan.planned_bytes,
        window_seconds=1.0,
        hop_seconds=0.1,
        c_header=TFLITE_C_HEADER_FILE,
        c_source=TFLITE_C_SOURCE_FILE,
    )
    return out


def _edit(folder, change) -> None:
    data = json.loads((folder / MANIFEST_FILE).read_text())
    change(data)
    (folder / MANIFEST_FILE).write_text(json.dumps(data))


def test_roundtrip(folder, ship_model) -> None:
    manifest = load_manifest(folder)
    raw = json.loads((folder / MANIFEST_FILE).read_text())
    assert raw["schema"] == SCHEMA
    assert manifest.labels == LABELS
    assert json.loads((folder / "labels.json").read_text()) == LABELS
    assert manifest.model.format == "tflite"
    assert manifest.model.file.sha256 == sha256_file(ship_model.tflite)
    assert manifest.sizes.model_file_bytes == ship_model.tflite.stat().st_size
    assert manifest.front_end.features == ship_model.spec
    assert manifest.operating_point == POINT
    assert manifest.audio.sample_rate == 16000 and manifest.audio.hop_seconds == 0.1
    assert {e.path for e in manifest.files()} == {
        "model.int8.tflite",
        "labels.json",
        TFLITE_C_HEADER_FILE,
        TFLITE_C_SOURCE_FILE,
    }


BOUNDED = POINT.model_copy(
    update={
        "fa_per_hour_at_target": 0.0,
        "fa_per_hour_lower": 0.0,
        "fa_per_hour_upper": 7.3778,
        "frr_lower": 0.0049,
        "frr_upper": 0.2036,
        "confidence": 0.95,
        "negative_hours": 0.5,
        "keywords": 25,
        "target_met_on_validation": False,
        "usable": True,
        "usable_message": "",
    }
)


def test_the_operating_point_carries_its_intervals(folder) -> None:
    _edit(folder, lambda d: d["operating_point"].update(BOUNDED.model_dump()))
    point = load_manifest(folder).operating_point
    assert point == BOUNDED and point.fa_per_hour_upper == 7.3778 and point.keywords == 25
    # a manifest written before the intervals (no such keys at all) still loads
    old_keys = {"threshold", "smoothing_windows", "refractory_seconds", "target_fa_per_hour"}
    _edit(
        folder,
        lambda d: d.update(
            operating_point={k: v for k, v in d["operating_point"].items() if k in old_keys}
        ),
    )
    assert load_manifest(folder).operating_point.fa_per_hour_upper is None


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda d: d.update(schema="kws-manifest-v0"), "schema is 'kws-manifest-v0'"),
        (lambda d: d.pop("schema"), "schema is None"),
        (lambda d: d.update(surprise=1), "surprise"),
        (lambda d: d["operating_point"].update(threshold=1.5), "threshold"),
        (lambda d: d["operating_point"].update(frr_lower=0.5), "frr: need lower <= estimate"),
        (lambda d: d["operating_point"].update(confidence=95), "confidence"),
        (lambda d: d["model"]["file"].update(path="../model.int8.tflite"), "relative names"),
        (lambda d: d["model"]["file"].update(path="gone.tflite"), "gone.tflite, which is missing"),
        (
            lambda d: d.update(labels=["_silence_", "_unknown_", "high_tone", "low_tone"]),
            "differ from labels.json",
        ),
        (lambda d: d["front_end"]["features"].update(mean=None, std=None), "normalisation stats"),
    ],
)
def test_bad_manifest_is_refused(folder, change, message) -> None:
    _edit(folder, change)
    with pytest.raises(ManifestError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load_manifest(folder)


def test_changed_files_are_refused(folder) -> None:
    load_manifest(folder)
    with open(folder / "model.int8.tflite", "r+b") as handle:
        first = handle.read(1)
        handle.seek(0)
        handle.write(bytes([first[0] ^ 1]))
    with pytest.raises(ManifestError, match=r"model\.int8\.tflite does not match its sha256"):
        load_manifest(folder)


def test_missing_and_unreadable(folder, tmp_path) -> None:
    (folder / TFLITE_C_SOURCE_FILE).unlink()
    with pytest.raises(ManifestError, match=r"model_tflite\.c, which is missing"):
        load_manifest(folder)
    with pytest.raises(ManifestError, match="no manifest"):
        load_manifest(tmp_path)
    (folder / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(ManifestError, match="not JSON"):
        load_manifest(folder)


def test_write_refuses_missing_model(ship_model, tmp_path) -> None:
    with pytest.raises(ManifestError, match="missing; write it before the manifest"):
        write_manifest(
            tmp_path,
            family="mfcc",
            model_file="model.int8.tflite",
            labels=LABELS,
            front_end=ship_model.spec,
            operating_point=POINT,
            int8_weight_bytes=1,
            tensor_arena_bytes=1,
            window_seconds=1.0,
            hop_seconds=0.1,
        )
    shutil.copyfile(ship_model.tflite, tmp_path / "model.int8.tflite")
    with pytest.raises(ManifestError, match="family"):
        write_manifest(
            tmp_path,
            family="resnet",
            model_file="model.int8.tflite",
            labels=LABELS,
            front_end=ship_model.spec,
            operating_point=POINT,
            int8_weight_bytes=1,
            tensor_arena_bytes=1,
            window_seconds=1.0,
            hop_seconds=0.1,
        )
    assert not (tmp_path / MANIFEST_FILE).exists()


def test_embedding_family_manifest(ship_model, tmp_path) -> None:
    import hashlib

    from kws_assets.core.features.speech_embedding import (
        EMBEDDING_FILE,
        MELSPEC_FILE,
        EmbeddingSpec,
    )

    (tmp_path / MELSPEC_FILE).write_bytes(b"mel graph")
    (tmp_path / EMBEDDING_FILE).write_bytes(b"embedding graph")
    shutil.copyfile(ship_model.onnx_int8, tmp_path / "model.int8.onnx")
    spec = EmbeddingSpec(
        melspec_sha256=hashlib.sha256(b"mel graph").hexdigest(),
        embedding_sha256=hashlib.sha256(b"embedding graph").hexdigest(),
    )
    kwargs = {
        "family": "speech_embedding",
        "model_file": "model.int8.onnx",
        "labels": LABELS,
        "operating_point": POINT,
        "int8_weight_bytes": 1000,
        "tensor_arena_bytes": 0,
        "window_seconds": 1.0,
        "hop_seconds": 0.08,
    }
    write_manifest(tmp_path, front_end=(spec.to_dict(), [MELSPEC_FILE, EMBEDDING_FILE]), **kwargs)
    manifest = load_manifest(tmp_path)
    assert manifest.model.format == "onnx" and manifest.audio.sample_rate == spec.sample_rate
    assert {e.path for e in manifest.front_end.files} == {MELSPEC_FILE, EMBEDDING_FILE}
    other = EmbeddingSpec(melspec_sha256="0" * 64, embedding_sha256=spec.embedding_sha256)
    with pytest.raises(ManifestError, match=f"{MELSPEC_FILE} is not listed with the sha256"):
        write_manifest(
            tmp_path, front_end=(other.to_dict(), [MELSPEC_FILE, EMBEDDING_FILE]), **kwargs
        )
    assert not (tmp_path / MANIFEST_FILE).exists()
