"""Tests of kws_assets.core.audio.io on generated files and signals."""

from __future__ import annotations

import io
import itertools
import math
import pickle

import numpy as np
import pytest
import soundfile as sf

from kws_assets.core.audio import io as audio
from kws_assets.core.audio.io import (
    REASON_SPEECH_OVER_WINDOW,
    AudioReadError,
    SpeechOverWindow,
    apply_fades,
    check_speech_fits,
    colored_noise,
    cut_centered,
    dbfs,
    fit_to_length,
    mix_at_snr,
    read_audio,
    resample,
    scale_to_dbfs,
    wav_bytes,
    write_wav,
)

SR = 16000


def sine(freq_hz: float, seconds: float, sr: int = SR, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def dominant_frequency(x: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.argmax(spectrum) * sr / x.size)


# ----------------------------------------------------------------------------------- read_audio


@pytest.mark.parametrize(
    ("subtype", "tolerance"),
    [
        ("PCM_U8", 1 / 64),
        ("PCM_16", 1e-4),
        ("PCM_24", 1e-6),
        ("PCM_32", 1e-6),
        ("FLOAT", 1e-7),
        ("DOUBLE", 1e-7),
    ],
)
def test_read_audio_decodes_each_wav_subtype(tmp_path, subtype, tolerance):
    x = sine(440.0, 0.25)
    path = tmp_path / f"tone_{subtype}.wav"
    sf.write(path, x, SR, subtype=subtype)
    info = read_audio(path)
    assert info.subtype == subtype
    assert info.samples.dtype == np.float32 and info.samples.ndim == 1
    assert info.sample_rate == info.original_sample_rate == SR
    assert info.original_channels == 1
    assert info.frames == x.size == info.samples.size
    assert np.max(np.abs(info.samples - x)) < tolerance


def test_read_audio_downmixes_stereo_and_records_channels(tmp_path):
    left, right = sine(300.0, 0.5, amplitude=0.6), sine(1200.0, 0.5, amplitude=0.2)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), SR, subtype="FLOAT")
    info = read_audio(path)
    assert info.original_channels == 2
    assert info.samples.shape == left.shape
    np.testing.assert_allclose(info.samples, (left + right) / 2, atol=1e-6)


def test_read_audio_downmixes_more_channels(tmp_path):
    channels = np.stack([sine(f, 0.1, amplitude=0.3) for f in (200, 400, 800)], axis=1)
    path = tmp_path / "three.wav"
    sf.write(path, channels, SR, subtype="PCM_24")
    info = read_audio(path)
    assert info.original_channels == 3
    np.testing.assert_allclose(info.samples, channels.mean(axis=1), atol=1e-5)


@pytest.mark.parametrize("file_sr", [8000, 11025, 22050, 44100, 48000, 12345])
def test_read_audio_resamples_unusual_rates(tmp_path, file_sr):
    tone_hz, seconds = 440.0, 0.5
    path = tmp_path / f"tone_{file_sr}.wav"
    sf.write(path, sine(tone_hz, seconds, sr=file_sr), file_sr, subtype="PCM_16")
    info = read_audio(path, target_sr=SR)
    assert info.sample_rate == SR
    assert info.original_sample_rate == file_sr
    assert info.frames == round(seconds * file_sr)
    assert info.samples.size == math.ceil(info.frames * SR / file_sr)
    assert abs(dominant_frequency(info.samples, SR) - tone_hz) <= SR / info.samples.size
    # In-band tone keeps its level (edges excluded: the resampler's filter ramps there).
    core = info.samples[SR // 20 : -SR // 20]
    assert abs(dbfs(rms(core)) - dbfs(0.5 / math.sqrt(2))) < 0.1


def test_read_audio_without_target_keeps_rate(tmp_path):
    path = tmp_path / "tone.wav"
    sf.write(path, sine(440.0, 0.2, sr=22050), 22050)
    info = read_audio(path)
    assert info.sample_rate == info.original_sample_rate == 22050
    assert info.samples.size == info.frames


def test_read_audio_accepts_bytes_and_streams(tmp_path):
    x = sine(500.0, 0.1)
    data = wav_bytes(x, SR)
    from_bytes = read_audio(data)
    from_stream = read_audio(io.BytesIO(data))
    np.testing.assert_array_equal(from_bytes.samples, from_stream.samples)
    assert np.max(np.abs(from_bytes.samples - x)) < 1e-4


def test_read_audio_keeps_float_overs_for_the_quality_gate(tmp_path):
    path = tmp_path / "hot.wav"
    sf.write(path, sine(440.0, 0.1, amplitude=1.5), SR, subtype="FLOAT")
    assert np.max(np.abs(read_audio(path).samples)) > 1.4


def _pcm16_bytes(n: int = SR) -> bytes:
    return wav_bytes(sine(440.0, n / SR), SR)


@pytest.mark.parametrize("keep_bytes", [44 + 1, 44 + 5000, 44 + 2 * SR - 2])
def test_truncated_wav_is_reported(tmp_path, keep_bytes):
    data = _pcm16_bytes()
    assert len(data) == 44 + 2 * SR
    path = tmp_path / "cut.wav"
    path.write_bytes(data[:keep_bytes])
    with pytest.raises(AudioReadError) as err:
        read_audio(path)
    assert err.value.reason == audio.REASON_TRUNCATED


def test_header_only_wav_is_truncated_and_broken_header_unreadable(tmp_path):
    data = _pcm16_bytes()
    header_only = tmp_path / "header.wav"
    header_only.write_bytes(data[:44])
    with pytest.raises(AudioReadError) as err:
        read_audio(header_only)
    assert err.value.reason == audio.REASON_TRUNCATED
    half_header = tmp_path / "half.wav"
    half_header.write_bytes(data[:30])
    with pytest.raises(AudioReadError) as err:
        read_audio(half_header)
    assert err.value.reason == audio.REASON_UNREADABLE


@pytest.mark.parametrize(
    "payload",
    [
        b"this is plain text, not audio\n" * 20,
        bytes(range(256)) * 8,
        b"RIFF\x00\x00\x00\x00WAVEjunk",
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 100,
    ],
)
def test_non_audio_bytes_named_wav_are_unreadable(tmp_path, payload):
    path = tmp_path / "fake.wav"
    path.write_bytes(payload)
    with pytest.raises(AudioReadError) as err:
        read_audio(path)
    assert err.value.reason == audio.REASON_UNREADABLE
    assert isinstance(err.value, ValueError)
    assert str(path) in str(err.value)


def test_zero_byte_file_and_zero_frame_wav_are_empty(tmp_path):
    zero_bytes = tmp_path / "zero.wav"
    zero_bytes.write_bytes(b"")
    zero_frames = tmp_path / "frames.wav"
    sf.write(zero_frames, np.zeros(0, dtype=np.float32), SR)
    for path in (zero_bytes, zero_frames):
        with pytest.raises(AudioReadError) as err:
            read_audio(path)
        assert err.value.reason == audio.REASON_EMPTY


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("subtype", ["FLOAT", "DOUBLE"])
def test_non_finite_float_wav_is_reported(tmp_path, bad_value, subtype):
    x = sine(440.0, 0.1)
    x[123] = bad_value
    path = tmp_path / "nan.wav"
    sf.write(path, x, SR, subtype=subtype)
    assert not np.isfinite(sf.read(path)[0]).all()  # the file really holds the bad value
    with pytest.raises(AudioReadError) as err:
        read_audio(path)
    assert err.value.reason == audio.REASON_NON_FINITE


def test_missing_file_directory_and_implausible_rate(tmp_path):
    with pytest.raises(AudioReadError) as err:
        read_audio(tmp_path / "absent.wav")
    assert err.value.reason == audio.REASON_MISSING
    with pytest.raises(AudioReadError) as err:
        read_audio(tmp_path)
    assert err.value.reason == audio.REASON_UNREADABLE
    low_rate = tmp_path / "low.wav"
    sf.write(low_rate, np.zeros(50, dtype=np.float32), 100)
    with pytest.raises(AudioReadError) as err:
        read_audio(low_rate, target_sr=SR)
    assert err.value.reason == audio.REASON_BAD_SAMPLE_RATE


def test_audio_read_error_survives_pickling():
    err = AudioReadError("/x.wav", audio.REASON_TRUNCATED, "detail")
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.path, copy.reason, copy.detail) == ("/x.wav", "truncated", "detail")


# ------------------------------------------------------------------------------------- writing


def test_write_wav_creates_parents_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "a" / "b" / "clip.wav"
    x = sine(440.0, 1.0)
    write_wav(target, x, SR)
    write_wav(target, x * 0.5, SR)  # overwrite in place
    assert sorted(p.name for p in target.parent.iterdir()) == ["clip.wav"]
    info = read_audio(target)
    assert info.subtype == "PCM_16" and info.samples.size == SR
    assert np.max(np.abs(info.samples - x * 0.5)) < 1e-4


def test_failed_write_leaves_target_untouched_and_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "clip.wav"
    write_wav(target, sine(440.0, 0.1), SR)
    original = target.read_bytes()

    def write_half_then_fail(file, data, samplerate, **kwargs):
        with open(file, "wb") as handle:
            handle.write(b"RIFF partial")
        raise OSError("disk full")

    monkeypatch.setattr(audio.sf, "write", write_half_then_fail)
    with pytest.raises(OSError):
        write_wav(target, sine(880.0, 0.1), SR)
    with pytest.raises(OSError):
        write_wav(tmp_path / "new.wav", sine(880.0, 0.1), SR)
    assert target.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.wav"]


def test_write_wav_rejects_bad_input_without_creating_files(tmp_path):
    bad = sine(440.0, 0.1)
    bad[5] = np.nan
    with pytest.raises(ValueError):
        write_wav(tmp_path / "nan.wav", bad, SR)
    with pytest.raises(ValueError):
        write_wav(tmp_path / "stereo.wav", np.zeros((10, 2), dtype=np.float32), SR)
    with pytest.raises(ValueError):
        write_wav(tmp_path / "odd.wav", sine(440.0, 0.1), SR, subtype="NOT_A_SUBTYPE")
    assert list(tmp_path.iterdir()) == []


def test_write_wav_pcm_clips_out_of_range_and_float_keeps_it(tmp_path):
    loud = sine(440.0, 0.1, amplitude=1.5)
    write_wav(tmp_path / "pcm.wav", loud, SR)
    write_wav(tmp_path / "float.wav", loud, SR, subtype="FLOAT")
    assert np.max(np.abs(read_audio(tmp_path / "pcm.wav").samples)) <= 1.0
    np.testing.assert_allclose(read_audio(tmp_path / "float.wav").samples, loud, atol=1e-7)


def test_wav_bytes_matches_file_written_by_write_wav(tmp_path):
    x = sine(440.0, 0.2)
    write_wav(tmp_path / "clip.wav", x, SR, subtype="PCM_24")
    assert wav_bytes(x, SR, subtype="PCM_24") == (tmp_path / "clip.wav").read_bytes()


# ----------------------------------------------------------------------------------------- DSP


def test_dbfs_values():
    assert dbfs(1.0) == 0.0
    assert abs(dbfs(0.5) - (-6.0206)) < 1e-3
    assert dbfs(0.0) == -200.0 and math.isfinite(dbfs(-1.0))


def test_resample_length_frequency_and_identity():
    x = sine(1000.0, 1.0, sr=48000)
    y = resample(x, 48000, SR)
    assert y.dtype == np.float32 and y.size == SR
    assert abs(dominant_frequency(y, SR) - 1000.0) <= 1.0
    same = resample(x, 48000, 48000)
    np.testing.assert_array_equal(same, x)
    assert same is not x


def test_resample_removes_content_above_new_nyquist():
    x = sine(7000.0, 1.0, sr=48000)  # above 4 kHz: must vanish when going to 8 kHz
    y = resample(x, 48000, 8000)
    assert dbfs(rms(y[800:-800])) < dbfs(rms(x)) - 40


def test_resample_prime_rate_uses_bounded_kernel():
    x = sine(440.0, 0.5, sr=44101)
    y = resample(x, 44101, SR)
    assert y.size == math.ceil(x.size * SR / 44101)
    assert abs(dominant_frequency(y, SR) - 440.0) <= 2.0


def test_fit_to_length_pads_and_truncates():
    x = np.arange(1, 6, dtype=np.float32)
    np.testing.assert_array_equal(fit_to_length(x, 8), [1, 2, 3, 4, 5, 0, 0, 0])
    np.testing.assert_array_equal(fit_to_length(x, 3), [1, 2, 3])
    assert fit_to_length(x, 0).size == 0 and fit_to_length(x, 5).dtype == np.float32


def test_apply_fades_is_linear_at_both_ends():
    x = np.ones(1000, dtype=np.float32)
    faded = apply_fades(x, 1000, fade_ms=100.0)  # 100 samples each side
    np.testing.assert_allclose(faded[:100], np.arange(100) / 100, atol=1e-6)
    np.testing.assert_allclose(faded[-100:], np.arange(100)[::-1] / 100, atol=1e-6)
    np.testing.assert_array_equal(faded[100:-100], 1.0)
    np.testing.assert_array_equal(x, 1.0)  # input untouched
    np.testing.assert_array_equal(apply_fades(x, 1000, 0.0), x)
    short = apply_fades(np.ones(10, dtype=np.float32), 1000, fade_ms=100.0)
    assert short[0] == 0.0 and short[-1] == 0.0


def _energy_centroid(x: np.ndarray) -> float:
    energy = np.square(x, dtype=np.float64)
    return float(np.sum(np.arange(x.size) * energy) / np.sum(energy))


@pytest.mark.parametrize("burst_center_s", [0.3, 1.5, 2.8])
def test_cut_centered_puts_burst_at_clip_centre(burst_center_s):
    total = np.zeros(3 * SR, dtype=np.float32)
    burst = apply_fades(sine(700.0, 0.2), SR, 5.0)
    start = round(burst_center_s * SR) - burst.size // 2
    total[start : start + burst.size] = burst
    clip = cut_centered(total, SR, burst_center_s, SR, fade_ms=10.0)
    assert clip.size == SR and clip.dtype == np.float32
    assert abs(_energy_centroid(clip) - SR / 2) < 2.0


def test_speech_fits_a_clip_only_clear_of_its_fades():
    check_speech_fits(SR - 320, SR, SR, fade_ms=10.0)  # 0.98 s: 10 ms of fade room each side
    check_speech_fits(SR, SR, SR, fade_ms=0.0)
    with pytest.raises(SpeechOverWindow, match=r"'hey jarvis' lasts 0\.98 s.*1\.00 s clip") as e:
        check_speech_fits(SR - 319, SR, SR, fade_ms=10.0, what="'hey jarvis'")
    assert e.value.reason == REASON_SPEECH_OVER_WINDOW == "speech_over_window"
    assert isinstance(e.value, ValueError)


def test_cut_centered_zero_pads_where_it_runs_off_the_ends():
    source = np.ones(SR, dtype=np.float32)  # 1 s of constant signal
    early = cut_centered(source, SR, center_s=0.2, length=SR, fade_ms=10.0)
    pad = SR // 2 - int(0.2 * SR)  # 0.3 s before the source starts
    assert np.all(early[:pad] == 0.0) and early[pad + 160 : pad + 170].min() == 1.0
    late = cut_centered(source, SR, center_s=0.9, length=SR, fade_ms=10.0)
    tail = int(0.9 * SR) + SR // 2 - SR  # 0.4 s past the end
    assert np.all(late[-tail:] == 0.0) and late[-tail - 1] == 0.0
    assert late[-tail - 170 : -tail - 160].min() == 1.0
    assert np.all(cut_centered(source, SR, center_s=5.0, length=100, fade_ms=10.0) == 0.0)


def test_cut_centered_fades_the_cut_edges():
    source = np.ones(3 * SR, dtype=np.float32)
    clip = cut_centered(source, SR, center_s=1.5, length=SR, fade_ms=10.0)
    fade = int(0.01 * SR)
    assert clip[0] == 0.0 and clip[-1] < 1.0 / fade + 1e-6
    assert np.all(np.diff(clip[:fade]) > 0) and np.all(clip[fade:-fade] == 1.0)


def _band_slope(x: np.ndarray, sr: int) -> float:
    """Log-log slope of the power spectrum, fitted over 50 Hz..5 kHz in octave bands."""
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / sr)
    edges = 50.0 * 2.0 ** np.arange(0, 7)
    centres, levels = [], []
    for lo, hi in itertools.pairwise(edges):
        band = (freqs >= lo) & (freqs < hi)
        centres.append(math.log10(math.sqrt(lo * hi)))
        levels.append(math.log10(power[band].mean()))
    return float(np.polyfit(centres, levels, 1)[0])


def test_colored_noise_unit_rms_and_spectral_slopes():
    rng = np.random.default_rng(0)
    n = 1 << 17
    slopes, low_to_high = {}, {}
    freqs = np.fft.rfftfreq(n, 1 / SR)
    for kind in ("white", "pink", "brown"):
        noise = colored_noise(kind, n, rng)
        assert noise.dtype == np.float32 and noise.size == n
        assert abs(rms(noise) - 1.0) < 1e-4 and abs(float(noise.mean())) < 1e-4
        slopes[kind] = _band_slope(noise, SR)
        power = np.abs(np.fft.rfft(noise)) ** 2
        low = power[(freqs >= 50) & (freqs < 500)].mean()
        high = power[(freqs >= 2000) & (freqs < 5000)].mean()
        low_to_high[kind] = 10 * math.log10(low / high)
    assert abs(slopes["white"]) < 0.15
    assert abs(slopes["pink"] + 1.0) < 0.15
    assert abs(slopes["brown"] + 2.0) < 0.15
    assert abs(low_to_high["white"]) < 1.0
    assert low_to_high["white"] + 8 < low_to_high["pink"] < low_to_high["brown"] - 8


def test_colored_noise_is_seeded_and_validates_kind():
    a = colored_noise("pink", 1000, np.random.default_rng(5))
    b = colored_noise("pink", 1000, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError):
        colored_noise("blue", 10, np.random.default_rng(0))  # type: ignore[arg-type]
    assert colored_noise("brown", 0, np.random.default_rng(0)).size == 0


def _measured_snr_db(mix: np.ndarray, signal: np.ndarray, noise: np.ndarray) -> float:
    """Fit mix = a*signal + b*noise (exact: the mix is such a combination) and return the SNR."""
    design = np.stack([signal, noise], axis=1).astype(np.float64)
    (a, b), *_ = np.linalg.lstsq(design, mix.astype(np.float64), rcond=None)
    return 10 * math.log10(np.mean((a * signal) ** 2) / np.mean((b * noise) ** 2))


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 7.5, 20.0, 40.0])
def test_mix_at_snr_hits_requested_snr(snr_db):
    rng = np.random.default_rng(1)
    signal = apply_fades(sine(300.0, 1.0, amplitude=0.1), SR, 10.0)
    noise = colored_noise("pink", SR, rng)
    mix = mix_at_snr(signal, noise, snr_db)
    assert mix.dtype == np.float32 and mix.size == signal.size
    assert np.max(np.abs(mix)) <= audio.MIX_PEAK_LIMIT + 1e-6
    assert abs(_measured_snr_db(mix, signal, noise) - snr_db) < 0.1


def test_mix_at_snr_tiles_short_noise_and_limits_peak():
    rng = np.random.default_rng(2)
    signal = sine(300.0, 1.0, amplitude=0.9)
    short_noise = colored_noise("white", 4000, rng)
    mix = mix_at_snr(signal, short_noise, 3.0)
    tiled = np.tile(short_noise, 4)
    assert abs(float(np.max(np.abs(mix))) - audio.MIX_PEAK_LIMIT) < 1e-6  # was scaled down
    assert abs(_measured_snr_db(mix, signal, tiled) - 3.0) < 0.1
    long_noise = colored_noise("white", 3 * SR, rng)
    mix = mix_at_snr(signal, long_noise, 10.0)
    assert abs(_measured_snr_db(mix, signal, long_noise[:SR]) - 10.0) < 0.1


def test_mix_at_snr_rejects_zero_power():
    with pytest.raises(ValueError):
        mix_at_snr(sine(300.0, 0.1), np.zeros(100, dtype=np.float32), 10.0)
    with pytest.raises(ValueError):
        mix_at_snr(np.zeros(100, dtype=np.float32), np.ones(100, dtype=np.float32), 10.0)


@pytest.mark.parametrize("target_dbfs", [-60.0, -30.0, -12.5])
def test_scale_to_dbfs_hits_level(target_dbfs):
    x = colored_noise("brown", SR, np.random.default_rng(3))
    y = scale_to_dbfs(x, target_dbfs)
    assert y.dtype == np.float32
    assert abs(dbfs(rms(y)) - target_dbfs) < 0.01
    silence = np.zeros(10, dtype=np.float32)
    np.testing.assert_array_equal(scale_to_dbfs(silence, -20.0), silence)
