"""The families write the same artifact folders, byte for byte, as the writers before the family
refactor did: the hashes below were recorded from ``write_artifact`` / ``write_embedding_artifact``
of commit 531b4e0 on the same seeded, untrained networks and calibration rows, and the new code
was checked to give them too.  A change of the pinned torch / onnx / onnxruntime versions may move
the ONNX hashes: re-record them then, from the code before your change, never from after it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from kws_assets.core.families.mfcc_dscnn import write_artifact as write_mfcc_artifact
from kws_assets.core.families.speech_embedding import write_artifact as write_embedding_artifact
from kws_assets.core.features.mfcc import FeatureSpec
from kws_assets.core.features.speech_embedding import EmbeddingSpec
from kws_assets.core.model.embedding_head import build_head
from kws_assets.core.model.networks import DSCNN
from kws_assets.core.ship.export import export_onnx, quantize_int8
from kws_assets.settings import AudioSettings, FeatureSettings, ModelSettings

LABELS = ["_silence_", "_unknown_", "yes", "no"]
METRICS = {"float_accuracy": 0.5, "int8_accuracy": 0.5}
BEFORE = {  # sha256[:16] of each file, from the writers of commit 531b4e0
    "emb/embedding_model.onnx": "70d164290c1d095d",
    "emb/front_end.json": "9294ce76bb8a5cfe",
    "emb/labels.json": "fdef57d1f45b66c2",
    "emb/melspectrogram.onnx": "ba2b0e0f8b7b8753",
    "emb/metrics.json": "e3b9098683b9ec65",
    "emb/model.float.onnx": "c002ec6678e3b424",
    "emb/model.int8.onnx": "b69576de4a3310a3",
    "mfcc/feature_config.json": "0f3a3968aaab7160",
    "mfcc/labels.json": "fdef57d1f45b66c2",
    "mfcc/metrics.json": "e3b9098683b9ec65",
    "mfcc/model.float.onnx": "d6af1ec7fdb577a9",
    "mfcc/model.int8.onnx": "542286396f64b89c",
    "mfcc/model_data.c": "424e28d9c36d742e",
    "mfcc/model_data.h": "696c0d460ac54696",
}


def _hashes(root: Path) -> dict[str, str]:
    return {
        f"{folder.name}/{f.name}": hashlib.sha256(f.read_bytes()).hexdigest()[:16]
        for folder in sorted(root.iterdir())
        for f in sorted(folder.iterdir())
    }


@pytest.mark.slow
def test_both_families_write_the_bytes_the_writers_before_the_refactor_wrote(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    spec = FeatureSpec.from_settings(FeatureSettings(), AudioSettings())
    spec = spec.with_stats(
        rng.standard_normal(spec.n_mfcc).astype(np.float32),
        (1 + rng.random(spec.n_mfcc)).astype(np.float32),
    )
    model = DSCNN(len(LABELS), ModelSettings(n_filters=16, n_blocks=1)).eval()
    calibration = rng.standard_normal((32, *spec.shape)).astype(np.float32)
    work = tmp_path / "work"
    export_onnx(model, spec, work / "f.onnx")
    quantize_int8(work / "f.onnx", work / "q.onnx", calibration)
    out = tmp_path / "out"
    write_mfcc_artifact(out / "mfcc", work / "q.onnx", LABELS, spec, METRICS, work / "f.onnx")

    torch.manual_seed(1)
    espec = EmbeddingSpec()
    head = build_head("dnn", espec.n_frames, espec.dim, len(LABELS), 32, 0.0, 1).eval()
    calibration = rng.standard_normal((32, *espec.shape)).astype(np.float32)
    export_onnx(head, espec, work / "ef.onnx")
    quantize_int8(work / "ef.onnx", work / "eq.onnx", calibration)
    write_embedding_artifact(
        out / "emb", work / "eq.onnx", LABELS, espec, METRICS, float_onnx_path=work / "ef.onnx"
    )
    assert _hashes(out) == BEFORE
