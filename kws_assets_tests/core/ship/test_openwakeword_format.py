"""The speech_embedding release in openWakeWord's format, run in openWakeWord's own runtime.

openWakeWord's ``Model.predict`` streams 1280-sample int16 chunks through its mel graph (state
carried between chunks, the ``top_db`` floor taken per chunk) and scores the last 16 embeddings.
Its embedding after chunk ``c`` covers the stream's mel frames ``8c - 71 .. 8c + 4``: one mel frame
(160 samples) after the project's 80-ms grid, so the project's streamer is run on the stream
without its first 160 samples, and openWakeWord's score at chunk ``c`` is the project's window
``c - 24`` (its first 41 embeddings come from the random audio it primes its buffer with, and 9
more from its all-ones mel prime).  On audio with a noise floor the two agree to float rounding;
next to digital silence they differ (the floor), which the last test pins.
"""

from __future__ import annotations

import json
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from openwakeword.model import Model

from kws_assets.core.families.speech_embedding import SPEECH_EMBEDDING
from kws_assets.core.features.speech_embedding import INT16_SCALE, EmbeddingSpec
from kws_assets.core.model.detect import (
    DetectorOperatingPoint,
    EmbeddingStreamer,
    StreamingDetector,
)
from kws_assets.core.model.embedding_head import HEAD_KINDS, build_head
from kws_assets.core.ship.export import (
    FRONT_END_FILE,
    EmbeddingClassifier,
    export_onnx,
    softmax,
    write_operating_point,
)
from kws_assets.core.ship.openwakeword_format import (
    FOLDER,
    INT8_FOLDER,
    README_FILE,
    TFLITE_SUFFIX,
    model_name,
    model_names,
    openwakeword_graph,
    write_openwakeword,
    write_tflite,
)
from kws_assets.core.ship.release import write_release
from kws_assets.demo import openwakeword_lines
from kws_assets_tests.tone_detector import (
    KEYWORDS,
    LABELS,
    SILENCE_NOISE,
    labelled_clip,
    tone_embedding_artifact,
)

CHUNK = 1280
LEAD_S, TAIL_S = 3, 2
OWW_PRIME_WINDOWS = 24
"""openWakeWord's score at chunk c is the project's 16-embedding window c - 24 (module doc)."""
POINT = DetectorOperatingPoint(0.35, 1, 1.0, 80.0)
"""A threshold the tiny tone head's keyword posteriors (0.5-0.7 on a burst) clear."""
SCORE_TOLERANCE = 1e-5
"""Same embeddings bit for bit, same graph: only onnxruntime's float rounding may differ."""
TFLITE_SCORE_TOLERANCE = 1e-4
"""The TFLite front end and head compute the same maths in another order (measured: ~1e-6)."""


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The release folder of the tiny tone head, with its openWakeWord models."""
    root = tmp_path_factory.mktemp("oww")
    chosen = write_operating_point(root / "evaluation", POINT, {"usable": True})
    folder = root / "release"
    point = write_release(tone_embedding_artifact(), chosen, folder)
    SPEECH_EMBEDDING.release_files(folder, point)
    return folder


def _stream(label: str, seed: int, noise: bool) -> np.ndarray:
    """A held-out clip (a seed the head never saw) padded into a stream, as int16."""
    rng = np.random.default_rng(seed)
    clip = labelled_clip(label, rng)
    n = (LEAD_S + TAIL_S) * 16000 + clip.size
    audio = (
        (rng.standard_normal(n) * SILENCE_NOISE).astype(np.float32)
        if noise
        else np.zeros(n, np.float32)
    )
    audio[LEAD_S * 16000 : LEAD_S * 16000 + clip.size] += clip
    return np.clip(np.rint(audio * INT16_SCALE), -32768, 32767).astype(np.int16)


@pytest.fixture
def tflite_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    """openWakeWord's tflite path imports ``tflite_runtime.interpreter``; LiteRT's interpreter
    (``ai-edge-litert``, installed) is that package's successor with the same API."""
    from ai_edge_litert import interpreter

    package = types.ModuleType("tflite_runtime")
    package.interpreter = interpreter  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tflite_runtime", package)
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", interpreter)


def _oww_scores(path: Path, pcm: np.ndarray) -> np.ndarray:
    framework = "tflite" if path.suffix == TFLITE_SUFFIX else "onnx"
    model = Model(wakeword_models=[str(path)], inference_framework=framework)
    return np.array(
        [
            model.predict(pcm[i : i + CHUNK])[path.stem]
            for i in range(0, pcm.size - CHUNK + 1, CHUNK)
        ]
    )


def _project_scores(
    classifier: EmbeddingClassifier, pcm: np.ndarray, column: int, n_chunks: int
) -> tuple[np.ndarray, np.ndarray]:
    """The project's front end + head on openWakeWord's grid: (scores, the chunks they match)."""
    audio = pcm.astype(np.float32) / np.float32(INT16_SCALE)
    frames = EmbeddingStreamer(classifier.front_end, threads=1)(audio[160:])
    windows = np.lib.stride_tricks.sliding_window_view(frames, 16, axis=0).transpose(0, 2, 1)
    chunks = np.arange(OWW_PRIME_WINDOWS, min(n_chunks, len(windows) + OWW_PRIME_WINDOWS))
    probs = classifier.classify_features(np.ascontiguousarray(windows[chunks - OWW_PRIME_WINDOWS]))
    return probs[:, column], chunks


def _agreement(
    release: Path, precision: str, noise: bool, suffix: str = ".onnx"
) -> dict[str, float]:
    folder = release / FOLDER / (INT8_FOLDER if precision == "int8" else "")
    classifier = EmbeddingClassifier.load(release, threads=1, precision=precision)
    diffs: list[np.ndarray] = []
    for seed, label in enumerate(KEYWORDS, start=500):
        pcm = _stream(label, seed, noise)
        for keyword in KEYWORDS:
            oww = _oww_scores(folder / f"{model_name(keyword)}{suffix}", pcm)
            ours, chunks = _project_scores(classifier, pcm, LABELS.index(keyword), len(oww))
            diffs.append(np.abs(oww[chunks] - ours))
            if keyword == label:  # both fire on the keyword they were given
                assert oww.max() >= POINT.threshold, (keyword, oww.max())
                assert ours.max() >= POINT.threshold, (keyword, ours.max())
    every = np.concatenate(diffs)
    return {"max": float(every.max()), "mean": float(every.mean())}


def test_the_release_ships_one_model_per_keyword_float_and_int8(release) -> None:
    models = release / FOLDER
    for suffix in (".onnx", TFLITE_SUFFIX):
        assert sorted(p.name for p in models.glob(f"*{suffix}")) == sorted(
            f"{model_name(k)}{suffix}" for k in KEYWORDS
        )
    assert sorted(p.name for p in (models / INT8_FOLDER).glob("*.onnx")) == sorted(
        f"{model_name(k)}.onnx" for k in KEYWORDS
    )
    artifact = tone_embedding_artifact()
    for item in artifact.iterdir():  # the artifact's own files untouched
        assert (release / item.name).read_bytes() == item.read_bytes(), item.name
    text = (models / README_FILE).read_text()
    assert "Threshold: **0.35**" in text
    assert 'Model(wakeword_models=["low_tone.onnx"], inference_framework="onnx")' in text
    assert "--custom-model-dir <this folder> --preload-model low_tone --threshold 0.35" in text


def test_the_graph_is_the_heads_keyword_posterior_with_openwakewords_shapes(release) -> None:
    head = onnx.load(release / "model.float.onnx")
    column = LABELS.index("high_tone")
    session = ort.InferenceSession(openwakeword_graph(head, column).SerializeToString())
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert inp.shape == [1, 16, 96] and out.shape == [1, 1]
    x = np.random.default_rng(0).standard_normal((1, 16, 96)).astype(np.float32)
    logits = ort.InferenceSession(head.SerializeToString()).run(None, {inp.name: x})[0]
    score = session.run(None, {inp.name: x})[0]
    np.testing.assert_allclose(score, softmax(logits)[:, [column]], atol=1e-6)


@pytest.mark.parametrize("precision", ["float", "int8"])
def test_openwakeword_scores_as_the_project_does_on_audio_with_a_noise_floor(
    release, precision
) -> None:
    found = _agreement(release, precision, noise=True)
    print(f"openWakeWord vs project ({precision}, noise floor): {found}")
    assert found["max"] <= SCORE_TOLERANCE


def test_openwakewords_tflite_path_scores_the_tflite_as_the_project_does(
    release, tflite_runtime
) -> None:
    """What Wyoming / Home Assistant run: the ``.tflite`` head over openWakeWord's TFLite front
    end (melspectrogram.tflite, embedding_model.tflite), not the ONNX graphs it was trained on."""
    found = _agreement(release, "float", noise=True, suffix=TFLITE_SUFFIX)
    print(f"openWakeWord tflite vs project (float, noise floor): {found}")
    assert found["max"] <= TFLITE_SCORE_TOLERANCE


def test_kws_detect_fires_on_the_keywords_openwakeword_fires_on(release) -> None:
    classifier = EmbeddingClassifier.load(release, threads=1, precision="float")
    detector = StreamingDetector.at(classifier, POINT)
    for seed, label in enumerate(KEYWORDS, start=500):
        pcm = _stream(label, seed, noise=True)
        detections = detector.detect(pcm.astype(np.float32) / np.float32(INT16_SCALE), 16000)
        assert label in {d.keyword for d in detections}, (label, detections)
        oww = _oww_scores(release / FOLDER / f"{model_name(label)}.onnx", pcm)
        assert oww.max() >= POINT.threshold


def test_next_to_digital_silence_the_chunkwise_floor_moves_the_scores(release) -> None:
    """The known gap (not closed yet): openWakeWord floors each 80-ms chunk at its own loudest
    frame - 80 dB, the project at the loudest within 2 s, so digital zeros around a word give
    other embeddings.  Measured on this head: max |diff| ~0.3, mean ~0.05."""
    found = _agreement(release, "float", noise=False)
    print(f"openWakeWord vs project (float, zero padding): {found}")
    assert found["max"] > 1e-3


@pytest.mark.parametrize("kind", HEAD_KINDS)
def test_both_head_kinds_convert_to_tflite_with_the_onnx_scores(kind, tmp_path) -> None:
    torch.manual_seed(0)
    head = build_head(kind, 16, 96, len(LABELS), 16, 0.0, 2).eval()
    graph = openwakeword_graph(
        onnx.load(export_onnx(head, EmbeddingSpec(), tmp_path / "h.onnx")), 3
    )
    path = write_tflite(graph, tmp_path / f"{kind}.tflite")  # refuses a mismatch itself
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert list(inp["shape"]) == [1, 16, 96] and list(out["shape"]) == [1, 1]
    x = np.random.default_rng(1).standard_normal((1, 16, 96)).astype(np.float32)
    interpreter.set_tensor(inp["index"], x)
    interpreter.invoke()
    with torch.no_grad():
        want = torch.softmax(head(torch.from_numpy(x)), dim=1)[:, 3:].numpy()
    np.testing.assert_allclose(interpreter.get_tensor(out["index"]), want, atol=1e-5)


def test_an_artifact_without_the_float_graph_ships_the_int8_onnx_only(release, tmp_path) -> None:
    folder = tmp_path / "int8_only"
    shutil.copytree(release, folder, ignore=shutil.ignore_patterns(FOLDER, "model.float.onnx"))
    written = write_openwakeword(folder)
    assert sorted(p.relative_to(folder).as_posix() for p in written) == sorted(
        f"{FOLDER}/{model_name(k)}.onnx" for k in KEYWORDS
    )
    text = (folder / FOLDER / README_FILE).read_text()
    assert "int8 (QDQ) heads" in text and "no float graph" in text


def test_a_head_over_another_context_is_refused(release, tmp_path) -> None:
    folder = tmp_path / "three_seconds"
    shutil.copytree(release, folder)
    spec = json.loads((folder / FRONT_END_FILE).read_text())
    spec.update(context_seconds=3.0, n_frames=None)
    del spec["n_frames"]
    (folder / FRONT_END_FILE).write_text(json.dumps(spec))
    with pytest.raises(ValueError, match=r"openWakeWord feeds \[1, 16, 96\].*context_seconds"):
        write_openwakeword(folder)


def test_keywords_become_safe_distinct_file_names() -> None:
    assert model_name("Hey KWS!") == "hey_kws"
    assert model_name("high_tone") == "high_tone"
    with pytest.raises(ValueError):
        model_name("!!")
    with pytest.raises(ValueError, match="clashing"):
        model_names(["hey kws", "hey-kws"])


def test_the_demo_prints_where_the_models_are_and_the_line_to_load_them(release) -> None:
    lines = openwakeword_lines(release)
    assert lines[0].startswith(f"  openWakeWord models: {release / FOLDER}")
    assert f'"{release / FOLDER / "low_tone.onnx"}"' in lines[1]
    assert 'inference_framework="onnx"' in lines[1]
    assert openwakeword_lines(tone_embedding_artifact()) == []
