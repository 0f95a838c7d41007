"""The speech-embedding front end against openWakeWord's own ``AudioFeatures``."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from kws_assets.core.features.speech_embedding import (
    EMBEDDING_DIM,
    EMBEDDING_FILE,
    INSTALL_HINT,
    MELSPEC_FILE,
    EmbeddingSpec,
    FrontEndModelError,
    SpeechEmbeddingFrontEnd,
    embedding_frames,
    packaged_models_dir,
)
from kws_assets.core.speech.tts import synthesize_at

SR = 16000


@pytest.fixture(scope="module")
def front_end() -> SpeechEmbeddingFrontEnd:
    return SpeechEmbeddingFrontEnd(threads=1, batch_clips=5)


@pytest.fixture(scope="module")
def reference():
    utils = pytest.importorskip("openwakeword.utils")
    return utils.AudioFeatures(inference_framework="onnx", ncpu=1)


def _speech_clips() -> np.ndarray:
    """espeak-ng words and a speech-like noise burst, each placed in a 1-s clip."""
    clips = []
    for word, voice in (("seven", "en-us"), ("hello", "en-gb-x-rp"), ("stop", "en-us+f3")):
        speech = synthesize_at(word, SR, voice=voice).samples[:SR]
        clip = np.zeros(SR, np.float32)
        start = (SR - speech.size) // 2
        clip[start : start + speech.size] = speech
        clips.append(clip)
    rng = np.random.default_rng(1)
    envelope = np.sin(np.linspace(0, 6 * np.pi, SR)) ** 2
    clips.append((0.3 * envelope * rng.standard_normal(SR)).astype(np.float32))
    clips.append(np.zeros(SR, np.float32))  # silence: the top_db floor matters most here
    clips.append(np.full(SR, 0.999, np.float32))
    clips.append((0.05 * rng.standard_normal(SR)).astype(np.float32))
    return np.stack(clips)


def test_matches_openwakeword_embed_clips(front_end, reference) -> None:
    clips = _speech_clips()
    ours = front_end(clips)  # 7 clips in batches of 5: a full and a partial batch
    padded = front_end.padded(clips).astype(np.int16)
    theirs = reference.embed_clips(padded, batch_size=64, ncpu=1)
    assert ours.shape == theirs.shape == (len(clips), 16, EMBEDDING_DIM)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-3)
    # the embeddings differ between clips (a broken pipeline often gives constants)
    assert np.abs(ours[0] - ours[1]).max() > 1.0


def test_a_clip_does_not_depend_on_its_batch(front_end) -> None:
    clips = _speech_clips()
    alone = np.concatenate([front_end(clip[None]) for clip in clips])
    np.testing.assert_array_equal(front_end(clips), alone)


def test_padding_is_symmetric_on_the_int16_scale(front_end) -> None:
    clip = np.linspace(-1.0, 1.0, SR, dtype=np.float32)
    padded = front_end.padded(clip[None])[0]
    pad = (2 * SR - SR) // 2
    assert padded.shape == (2 * SR,)
    assert not padded[:pad].any() and not padded[pad + SR :].any()
    assert padded[pad] == -32768.0 and padded[pad + SR - 1] == 32767.0
    np.testing.assert_array_equal(padded, np.rint(padded))


@pytest.mark.parametrize(("context_seconds", "frames"), [(1.0, 3), (1.5, 9), (2.0, 16), (3.0, 28)])
def test_frame_count_follows_the_context(context_seconds, frames) -> None:
    spec = EmbeddingSpec(context_seconds=context_seconds)
    assert spec.n_frames == frames == embedding_frames(spec.context_samples)
    assert spec.shape == (frames, EMBEDDING_DIM)


def test_other_context_runs_and_shapes(reference) -> None:
    spec = EmbeddingSpec(context_seconds=1.5)
    front = SpeechEmbeddingFrontEnd(spec, threads=1)
    clips = _speech_clips()[:2]
    ours = front(clips)
    theirs = reference.embed_clips(front.padded(clips).astype(np.int16), batch_size=64, ncpu=1)
    assert ours.shape == (2, 9, EMBEDDING_DIM)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-3)


def test_spec_round_trips_and_rejects_bad_values() -> None:
    spec = EmbeddingSpec(context_seconds=1.5)
    data = spec.to_dict()
    assert data["family"] == "speech_embedding" and data["n_frames"] == 9
    assert EmbeddingSpec.from_dict(data) == spec
    with pytest.raises(ValueError, match="n_frames"):
        EmbeddingSpec.from_dict({**data, "n_frames": 16})
    with pytest.raises(ValueError, match="shorter than a clip"):
        EmbeddingSpec(context_seconds=0.5)
    with pytest.raises(ValueError, match="16000 Hz"):
        EmbeddingSpec(sample_rate=8000)
    with pytest.raises(ValueError, match="unknown"):
        EmbeddingSpec.from_dict({**data, "colour": "red"})


def test_altered_model_is_a_clear_error(tmp_path) -> None:
    source = packaged_models_dir()
    for name in (MELSPEC_FILE, EMBEDDING_FILE):
        shutil.copyfile(source / name, tmp_path / name)
    SpeechEmbeddingFrontEnd(models_dir=tmp_path, threads=1)  # intact copies load
    with open(tmp_path / EMBEDDING_FILE, "r+b") as fh:
        fh.seek(1000)
        byte = fh.read(1)
        fh.seek(1000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(FrontEndModelError, match="sha256") as err:
        SpeechEmbeddingFrontEnd(models_dir=tmp_path, threads=1)
    assert INSTALL_HINT in str(err.value)
    (tmp_path / MELSPEC_FILE).unlink()
    with pytest.raises(FrontEndModelError, match="missing") as err:
        SpeechEmbeddingFrontEnd(models_dir=tmp_path, threads=1)
    assert INSTALL_HINT in str(err.value)


def test_front_end_does_not_import_openwakeword() -> None:
    code = (
        "import sys; "
        "from kws_assets.core.features.speech_embedding import SpeechEmbeddingFrontEnd as F; "
        "import numpy as np; F(threads=1)(np.zeros((1, 16000), np.float32)); "
        "print('openwakeword' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
