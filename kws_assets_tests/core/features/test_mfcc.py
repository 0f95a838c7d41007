"""MFCC features: shape, batching invariance, normalisation and file reading at odd formats."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from pydantic import ValidationError

from kws_assets.core.audio.io import AudioReadError
from kws_assets.core.features.mfcc import (
    FeatureSpec,
    MfccExtractor,
    compute_norm_stats,
    features_for_clips,
    features_for_files,
    normalize,
)
from kws_assets.settings import AudioSettings, FeatureSettings

SR = 16000
CLIP = 16000


@pytest.fixture(scope="module")
def spec() -> FeatureSpec:
    return FeatureSpec.from_settings(FeatureSettings(), AudioSettings())


@pytest.fixture(scope="module")
def extractor(spec: FeatureSpec) -> MfccExtractor:
    return MfccExtractor(spec)


def sine(
    freq_hz: float, sr: int = SR, seconds: float = 1.0, amp: float = 0.3, phase: float = 0.0
) -> np.ndarray:
    t = np.arange(round(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * freq_hz * t + phase)).astype(np.float32)


def noise_clips(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    levels = rng.uniform(0.01, 0.5, size=(n, 1))
    return (rng.standard_normal((n, CLIP)) * levels).astype(np.float32)


def test_default_spec_is_the_mlperf_49_by_10(spec: FeatureSpec) -> None:
    assert (spec.win_length, spec.hop_length) == (640, 320)
    assert spec.n_frames == 49
    assert spec.shape == (49, 10)


def test_mfcc_shape_dtype_and_finite_including_digital_silence(extractor: MfccExtractor) -> None:
    batch = np.concatenate([noise_clips(5), np.zeros((2, CLIP), np.float32)])
    mfcc = extractor(batch)
    assert mfcc.shape == (7, 49, 10)
    assert mfcc.dtype == np.float32
    assert np.isfinite(mfcc).all()


def test_empty_batch_and_wrong_length_input(extractor: MfccExtractor) -> None:
    assert extractor(np.zeros((0, CLIP), np.float32)).shape == (0, 49, 10)
    with pytest.raises(ValueError):
        extractor(np.zeros((2, CLIP - 1), np.float32))


def test_chunked_extraction_equals_one_shot_and_single_clips(spec: FeatureSpec) -> None:
    clips = noise_clips(23, seed=1)
    clips[3] *= 0.001  # a very quiet clip next to loud ones must not change its neighbours
    one_shot = MfccExtractor(spec, chunk_clips=1000)(clips)
    chunked = MfccExtractor(spec, chunk_clips=5)(clips)
    singles = np.concatenate([MfccExtractor(spec, chunk_clips=1)(c[None]) for c in clips[:4]])
    np.testing.assert_allclose(chunked, one_shot, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(singles, one_shot[:4], rtol=1e-4, atol=1e-4)


def test_norm_stats_standardise_the_train_data(extractor: MfccExtractor, spec: FeatureSpec) -> None:
    mfcc = extractor(noise_clips(40, seed=2) + sine(700)[None])
    mean, std = compute_norm_stats(mfcc)
    assert len(mean) == len(std) == spec.n_mfcc
    normed = normalize(mfcc, spec.with_stats(mean, std))
    flat = normed.reshape(-1, spec.n_mfcc)
    np.testing.assert_allclose(flat.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(flat.std(axis=0), 1.0, atol=1e-3)
    # no stats: normalize is the identity
    np.testing.assert_array_equal(normalize(mfcc, spec), mfcc)


def test_constant_coefficient_gets_a_floor_std_not_a_division_by_zero(spec: FeatureSpec) -> None:
    mfcc = np.ones((3, 49, 10), np.float32)
    mean, std = compute_norm_stats(mfcc)
    assert min(std) > 0
    assert np.isfinite(normalize(mfcc, spec.with_stats(mean, std))).all()


def test_different_tones_give_different_mfcc(extractor: MfccExtractor) -> None:
    mfcc = extractor(np.stack([sine(1000), sine(1000, phase=1.3), sine(3000)]))
    same_tone_distance = np.abs(mfcc[0] - mfcc[1]).mean()
    other_tone_distance = np.abs(mfcc[0] - mfcc[2]).mean()
    assert other_tone_distance > 10 * same_tone_distance


def test_spec_validation_and_json_round_trip(spec: FeatureSpec) -> None:
    with_stats = spec.with_stats([0.5] * 10, [2.0] * 10)
    again = FeatureSpec.model_validate_json(with_stats.model_dump_json())
    assert again == with_stats and again.n_frames == 49
    with pytest.raises(ValidationError):
        spec.with_stats([0.0] * 9, [1.0] * 9)
    with pytest.raises(ValidationError):
        spec.with_stats([0.0] * 10, [0.0] * 10)
    with pytest.raises(ValidationError):
        FeatureSpec(**{**spec.model_dump(), "f_max": 9000.0})


def _write(path, samples: np.ndarray, sr: int) -> str:
    sf.write(path, samples, sr, subtype="PCM_16")
    return str(path)


def test_features_for_files_handles_rates_channels_and_short_files(
    tmp_path, spec: FeatureSpec
) -> None:
    ref_1k = _write(tmp_path / "ref_1k.wav", sine(1000), SR)
    ref_3k = _write(tmp_path / "ref_3k.wav", sine(3000), SR)
    at_8k = _write(tmp_path / "at_8k.wav", sine(1000, sr=8000), 8000)
    at_44k = _write(tmp_path / "at_44k.wav", sine(1000, sr=44100), 44100)
    stereo_samples = np.stack([sine(1000), sine(1000)], axis=1)
    stereo = _write(tmp_path / "stereo.wav", stereo_samples, SR)
    short = _write(tmp_path / "short.wav", sine(1000, seconds=0.3), SR)
    long = _write(tmp_path / "long.wav", sine(1000, seconds=1.7), SR)

    normed_spec = spec.with_stats([1.0] * 10, [3.0] * 10)
    feats = features_for_files([ref_1k, ref_3k, at_8k, at_44k, stereo, short, long], normed_spec)
    assert feats.shape == (7, 49, 10)
    assert np.isfinite(feats).all()

    def dist(a: int, b: int) -> float:
        return float(np.abs(feats[a] - feats[b]).mean())

    # resampled 1 kHz tones look like the 16 kHz 1 kHz tone, not like the 3 kHz one
    for i in (2, 3, 4, 6):
        assert dist(i, 0) < 0.2 * dist(1, 0), i
    # the short file is padded with silence: its trailing frames are all the same
    tail = feats[5, 20:]
    assert np.abs(tail - tail[0]).max() < 1e-4
    assert np.abs(feats[5, :10] - feats[0, :10]).mean() < 0.2 * dist(1, 0)


def test_features_for_files_is_normalize_of_extractor(tmp_path, spec: FeatureSpec) -> None:
    clips = noise_clips(3, seed=5) * 0.5
    paths = [_write(tmp_path / f"n{i}.wav", c, SR) for i, c in enumerate(clips)]
    normed_spec = spec.with_stats([2.0] * 10, [4.0] * 10)
    from_files = features_for_files(paths, normed_spec)
    pcm = np.stack([sf.read(p, dtype="float32")[0] for p in paths])
    expected = normalize(MfccExtractor(spec)(pcm), normed_spec)
    np.testing.assert_allclose(from_files, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        features_for_clips(list(pcm), normed_spec), expected, rtol=1e-5, atol=1e-5
    )


def test_unreadable_file_raises_audio_read_error(tmp_path, spec: FeatureSpec) -> None:
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF....WAVEfmt garbage")
    with pytest.raises(AudioReadError):
        features_for_files([str(broken)], spec)


# ------------------------------------------------------------------ the batched fast path


@pytest.mark.parametrize(
    "settings",
    [
        FeatureSettings(),
        FeatureSettings(n_mels=64, n_mfcc=13, f_min=0.0, f_max=8000.0),  # every FFT bin in use
        FeatureSettings(window_ms=25.0, hop_ms=10.0, n_mels=32, f_max=6000.0),
    ],
)
def test_fast_path_equals_the_torchaudio_transform(settings: FeatureSettings) -> None:
    spec = FeatureSpec.from_settings(settings, AudioSettings())
    clips = np.concatenate(
        [
            noise_clips(9, seed=7),
            np.zeros((1, CLIP), np.float32),
            np.stack([sine(440), sine(3500, amp=0.9)]),
        ]
    )
    extractor = MfccExtractor(spec)
    fast, reference = extractor(clips), extractor.reference(clips)
    assert fast.shape == reference.shape == (12, *spec.shape)
    scale = np.abs(reference).max()
    np.testing.assert_allclose(fast, reference, rtol=0, atol=1e-5 * scale)


def test_threads_do_not_change_the_result(spec: FeatureSpec) -> None:
    clips = noise_clips(37, seed=8)
    one = MfccExtractor(spec, chunk_clips=4, workers=1)(clips)
    np.testing.assert_array_equal(MfccExtractor(spec, chunk_clips=4, workers=3)(clips), one)
    np.testing.assert_array_equal(MfccExtractor(spec, chunk_clips=5, workers=2)(clips), one)


def test_single_threaded_torch_restores_the_thread_count() -> None:
    import torch

    from kws_assets.core.features.mfcc import single_threaded_torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with single_threaded_torch():
            assert torch.get_num_threads() == 1
            with single_threaded_torch():
                assert torch.get_num_threads() == 1
            assert torch.get_num_threads() == 1  # the outer block still holds it
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError), single_threaded_torch():
            raise RuntimeError("boom")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_workers_must_be_positive(spec: FeatureSpec) -> None:
    with pytest.raises(ValueError):
        MfccExtractor(spec, workers=0)
