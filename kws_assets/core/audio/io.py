"""Audio I/O and small DSP helpers shared by every stage of the pipeline.

Convention: audio is a mono ``numpy.ndarray`` of dtype float32 (nominally in [-1, 1]) plus an int
sample rate.  Files are read and written with ``soundfile``; resampling uses
``torchaudio.functional.resample``.
"""

from __future__ import annotations

import functools
import io
import math
import os
import re
import struct
import uuid
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import torch
import torchaudio

from kws_assets.settings import NoiseKind

AudioSource = str | os.PathLike | bytes | bytearray | BinaryIO

# Reason codes carried by AudioReadError.reason.
REASON_MISSING = "missing"
REASON_UNREADABLE = "unreadable"
REASON_TRUNCATED = "truncated"
REASON_EMPTY = "empty"
REASON_NON_FINITE = "non_finite"
REASON_BAD_SAMPLE_RATE = "bad_sample_rate"
REASON_TOO_LONG = "too_long"  # header declares more than the caller's max_seconds
REASON_TOO_LARGE = "too_large"  # header declares more decoded bytes than the caller allows
REASON_TOO_MANY_CHANNELS = "too_many_channels"  # header declares more than max_channels
REASON_SPEECH_OVER_WINDOW = "speech_over_window"  # a keyword's speech longer than its clip
READ_ERROR_REASONS = (
    REASON_TOO_LONG,
    REASON_TOO_LARGE,
    REASON_TOO_MANY_CHANNELS,
    REASON_MISSING,
    REASON_UNREADABLE,
    REASON_TRUNCATED,
    REASON_EMPTY,
    REASON_NON_FINITE,
    REASON_BAD_SAMPLE_RATE,
)

# Sample rates outside this range are treated as a corrupt header rather than real audio.
MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 768_000

# Amplitude floor of dbfs(): 1e-10 -> -200 dBFS, so silence gives a finite number.
DBFS_FLOOR = 1e-10

# mix_at_snr scales the whole mix down when its peak would exceed this.
MIX_PEAK_LIMIT = 0.99

# torchaudio's resampler builds a (new, 1, orig + 2*width) kernel from the reduced rate ratio;
# beyond this many elements the ratio is approximated by a nearby simpler fraction first.
MAX_RESAMPLE_KERNEL_ELEMENTS = 1 << 24
RESAMPLE_LOWPASS_WIDTH = 6  # torchaudio's default lowpass_filter_width

FLOAT_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})
DEFAULT_SUBTYPE = "PCM_16"


class AudioReadError(ValueError):
    """An audio source could not be turned into usable samples; ``reason`` is a short code."""

    def __init__(self, path: object, reason: str, detail: str = "") -> None:
        self.path = str(path)
        self.reason = reason
        self.detail = detail
        message = f"{self.path}: {reason}"
        if detail:
            message += f" ({detail})"
        super().__init__(message)

    def __reduce__(
        self,
    ) -> tuple[
        type[AudioReadError], tuple[str, str, str]
    ]:  # keep it picklable across process pools
        return (type(self), (self.path, self.reason, self.detail))


@dataclass(frozen=True, eq=False)
class AudioInfo:
    """Decoded audio plus what the file originally was.

    ``samples`` is float32 mono at ``sample_rate`` (the target rate when one was asked for);
    ``original_sample_rate``, ``original_channels``, ``subtype`` and ``frames`` describe the file
    as stored (``frames`` counts frames before any resampling).
    """

    samples: np.ndarray
    sample_rate: int
    original_sample_rate: int
    original_channels: int
    subtype: str
    frames: int

    @property
    def duration_s(self) -> float:
        """Duration of ``samples`` in seconds."""
        return len(self.samples) / self.sample_rate


def dbfs(x: float) -> float:
    """Amplitude ``x`` (full scale = 1.0) in dBFS, floored at -200 dBFS so silence stays finite."""
    return 20.0 * math.log10(max(float(x), DBFS_FLOOR))


# --------------------------------------------------------------------------------------- reading


def _source_name(source: AudioSource) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, (bytes, bytearray)):
        return "<bytes>"
    return str(getattr(source, "name", "<stream>"))


def _load_bytes(source: AudioSource, name: str) -> bytes:
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    try:
        if isinstance(source, (str, os.PathLike)):
            return Path(source).read_bytes()
        data = source.read()
    except FileNotFoundError as exc:
        raise AudioReadError(name, REASON_MISSING, str(exc)) from exc
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise AudioReadError(name, REASON_UNREADABLE, f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(data, (bytes, bytearray)):
        raise AudioReadError(name, REASON_UNREADABLE, "stream did not return bytes")
    return bytes(data)


def _riff_truncation(data: bytes) -> str | None:
    """For RIFF/WAVE bytes: a description if the data chunk is shorter than its header says.

    Streaming writers that leave the size as 0 or 0xFFFFFFFF (unknown length) are not flagged.
    Non-RIFF data returns None (libsndfile judges it).
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        body = pos + 8
        if chunk_id == b"data":
            available = len(data) - body
            if size not in (0, 0xFFFFFFFF) and size > available:
                return f"data chunk declares {size} bytes, file holds {available}"
            return None
        pos = body + size + (size & 1)
    return None


# Bytes per sample of libsndfile's uncompressed subtypes: their declared frames must fit the file
# (except in containers that compress them: FLAC reports PCM_16/PCM_24 too).
PCM_SUBTYPE_BYTES = {
    "PCM_S8": 1,
    "PCM_U8": 1,
    "PCM_16": 2,
    "PCM_24": 3,
    "PCM_32": 4,
    "FLOAT": 4,
    "DOUBLE": 8,
    "ULAW": 1,
    "ALAW": 1,
}
COMPRESSING_FORMATS = frozenset({"FLAC"})
FLOAT32_BYTES = 4


def _check_header(
    name: str,
    file_bytes: int,
    sample_rate: int,
    channels: int,
    frames: int,
    subtype: str,
    container: str,
    max_seconds: float | None,
    max_channels: int | None,
    max_decoded_bytes: int | None,
) -> None:
    """Refuse, from the header alone, what cannot be decoded safely (see :func:`read_audio`)."""
    if channels < 1:
        raise AudioReadError(name, REASON_EMPTY, f"header declares {channels} channels")
    if max_channels is not None and channels > max_channels:
        raise AudioReadError(
            name,
            REASON_TOO_MANY_CHANNELS,
            f"header declares {channels} channels > max_channels {max_channels}",
        )
    if not (MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE):
        raise AudioReadError(name, REASON_BAD_SAMPLE_RATE, f"{sample_rate} Hz")
    width = None if container in COMPRESSING_FORMATS else PCM_SUBTYPE_BYTES.get(subtype)
    if width is not None and frames * channels * width > file_bytes:
        raise AudioReadError(
            name,
            REASON_TRUNCATED,
            f"header declares {frames} frames x {channels} ch of {subtype} "
            f"({frames * channels * width} bytes), the file holds {file_bytes}",
        )
    if max_seconds is not None and frames / sample_rate > max_seconds:
        raise AudioReadError(
            name,
            REASON_TOO_LONG,
            f"header declares {frames / sample_rate:.1f} s > {max_seconds:g} s",
        )
    if max_decoded_bytes is not None and frames * channels * FLOAT32_BYTES > max_decoded_bytes:
        raise AudioReadError(
            name,
            REASON_TOO_LARGE,
            f"decoding needs {frames * channels * FLOAT32_BYTES} bytes > {max_decoded_bytes}",
        )


class SeekSafeBytes(io.BytesIO):
    """In-memory bytes for libsndfile's virtual I/O that refuse a seek before the start quietly.

    A damaged header makes libsndfile seek to a negative offset; BytesIO raises ValueError inside
    soundfile's cffi callback, where it cannot propagate and is printed as an "exception ignored"
    on every such file.  Staying put makes libsndfile see a failed seek and report the file as
    unreadable, which is what it is."""

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        try:
            return super().seek(offset, whence)
        except ValueError:
            return self.tell()


_OBJECT_REPR = re.compile(r"<[^<>]* object at 0x[0-9a-fA-F]+>")


def _stable(exc: BaseException) -> str:
    """An exception's message without object addresses (libsndfile names the BytesIO it was
    given), so the same bad file gets the same reject detail on every run."""
    return _OBJECT_REPR.sub("<bytes>", str(exc))


def read_audio(
    path_or_file: AudioSource,
    target_sr: int | None = None,
    *,
    max_seconds: float | None = None,
    max_channels: int | None = None,
    max_decoded_bytes: int | None = None,
) -> AudioInfo:
    """Decode an audio file (path, bytes or binary stream) to float32 mono.

    Multi-channel audio is downmixed by averaging the channels; with ``target_sr`` the audio is
    resampled.  Every decoding problem raises :class:`AudioReadError` whose ``reason`` is one of
    ``READ_ERROR_REASONS``: ``missing`` (no such file), ``unreadable`` (not decodable audio),
    ``truncated`` (WAV data chunk cut short, or a header declaring more PCM samples than the file
    holds), ``empty`` (zero frames), ``non_finite`` (NaN/inf samples in a float file),
    ``bad_sample_rate`` (rate outside MIN/MAX_SAMPLE_RATE), and — judged from the header before
    any sample array is allocated — ``too_long`` (over ``max_seconds``), ``too_many_channels``
    (over ``max_channels``), ``too_large`` (frames x channels x 4 over ``max_decoded_bytes``).
    Float files may hold samples beyond +-1; they are kept so the quality gate can see them.
    """
    name = _source_name(path_or_file)
    if target_sr is not None and not (MIN_SAMPLE_RATE <= int(target_sr) <= MAX_SAMPLE_RATE):
        raise ValueError(f"target_sr {target_sr} outside [{MIN_SAMPLE_RATE}, {MAX_SAMPLE_RATE}]")
    data = _load_bytes(path_or_file, name)
    if not data:
        raise AudioReadError(name, REASON_EMPTY, "zero bytes")
    truncation = _riff_truncation(data)
    if truncation:
        raise AudioReadError(name, REASON_TRUNCATED, truncation)
    try:
        with sf.SoundFile(SeekSafeBytes(data)) as handle:
            original_sr = int(handle.samplerate)
            channels = int(handle.channels)
            subtype = str(handle.subtype)
            _check_header(
                name,
                len(data),
                original_sr,
                channels,
                int(handle.frames),
                subtype,
                str(handle.format),
                max_seconds,
                max_channels,
                max_decoded_bytes,
            )
            decoded = handle.read(dtype="float32", always_2d=True)
    except AudioReadError:
        raise
    except Exception as exc:  # libsndfile reports corrupt input through several exception types
        raise AudioReadError(
            name, REASON_UNREADABLE, f"{type(exc).__name__}: {_stable(exc)}"
        ) from exc
    if decoded.shape[0] == 0:
        raise AudioReadError(name, REASON_EMPTY, "no audio frames")
    if not np.isfinite(decoded).all():
        bad = int((~np.isfinite(decoded)).sum())
        raise AudioReadError(name, REASON_NON_FINITE, f"{bad} non-finite samples")
    mono = decoded[:, 0] if channels == 1 else decoded.mean(axis=1, dtype=np.float64)
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    sample_rate = original_sr
    if target_sr is not None and int(target_sr) != original_sr:
        mono = resample(mono, original_sr, int(target_sr))
        sample_rate = int(target_sr)
    return AudioInfo(
        samples=mono,
        sample_rate=sample_rate,
        original_sample_rate=original_sr,
        original_channels=channels,
        subtype=subtype,
        frames=int(decoded.shape[0]),
    )


# --------------------------------------------------------------------------------------- writing


def _prepare_for_write(samples: np.ndarray, sample_rate: int, subtype: str) -> np.ndarray:
    x = np.asarray(samples)
    if x.ndim != 1:
        raise ValueError(f"expected mono 1-D samples, got shape {x.shape}")
    if int(sample_rate) <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if not sf.check_format("WAV", subtype):
        raise ValueError(f"subtype {subtype!r} is not valid for WAV")
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        raise ValueError("refusing to write non-finite samples")
    if subtype not in FLOAT_SUBTYPES:
        x = np.clip(x, -1.0, 1.0)
    return x


def write_wav(
    path: str | os.PathLike, samples: np.ndarray, sample_rate: int, subtype: str = DEFAULT_SUBTYPE
) -> None:
    """Write a mono WAV atomically: a temp file in the target folder, then ``os.replace``.

    Parent folders are created.  On any failure the temp file is removed and an existing target
    is left untouched.  PCM subtypes clip to [-1, 1]; non-finite samples raise ValueError.
    """
    target = Path(path)
    x = _prepare_for_write(samples, sample_rate, subtype)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        sf.write(tmp, x, int(sample_rate), subtype=subtype, format="WAV")
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def wav_bytes(samples: np.ndarray, sample_rate: int, subtype: str = DEFAULT_SUBTYPE) -> bytes:
    """A complete mono WAV file in memory (for object stores)."""
    x = _prepare_for_write(samples, sample_rate, subtype)
    buffer = io.BytesIO()
    sf.write(buffer, x, int(sample_rate), subtype=subtype, format="WAV")
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------- DSP


def _resample_ratio(orig_sr: int, target_sr: int) -> tuple[int, int]:
    """(orig, new) integers with the rate ratio, simplified if torchaudio's kernel would be huge."""
    ratio = Fraction(target_sr, orig_sr)
    new, orig = ratio.numerator, ratio.denominator

    def kernel_elements(o: int, n: int) -> int:
        width = math.ceil(RESAMPLE_LOWPASS_WIDTH * o / min(o, n))
        return n * (o + 2 * width)

    max_denominator = orig
    while kernel_elements(orig, new) > MAX_RESAMPLE_KERNEL_ELEMENTS and max_denominator > 1:
        max_denominator //= 2
        approx = ratio.limit_denominator(max_denominator)
        new, orig = approx.numerator, approx.denominator
    return orig, new


def resample(samples: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Band-limited resampling with ``torchaudio.functional.resample``; returns float32.

    The output has ``ceil(len * target_sr / orig_sr)`` samples.  Rate pairs whose reduced ratio
    would need an enormous filter kernel (e.g. a prime rate) are resampled with the closest simpler
    ratio (relative error well under 1e-3, i.e. a pitch shift under two cents) and fitted to
    that length.
    """
    orig_sr, target_sr = int(orig_sr), int(target_sr)
    if orig_sr <= 0 or target_sr <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_sr} -> {target_sr}")
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"expected mono 1-D samples, got shape {x.shape}")
    if orig_sr == target_sr or x.size == 0:
        return x.copy()
    expected = math.ceil(x.size * target_sr / orig_sr)
    with torch.inference_mode():
        y = _resampler(*_resample_ratio(orig_sr, target_sr))(
            torch.from_numpy(np.ascontiguousarray(x))
        )
    return fit_to_length(y.numpy(), expected)


@functools.lru_cache(maxsize=16)
def _resampler(kernel_orig: int, kernel_new: int) -> torchaudio.transforms.Resample:
    """One Resample transform per rate pair: building the sinc kernel dominates a single call."""
    return torchaudio.transforms.Resample(kernel_orig, kernel_new)


def fit_to_length(samples: np.ndarray, n: int) -> np.ndarray:
    """A float32 copy of exactly ``n`` samples: zero-padded at the end or truncated."""
    if n < 0:
        raise ValueError(f"length must be >= 0, got {n}")
    x = np.asarray(samples, dtype=np.float32)
    out = np.zeros(n, dtype=np.float32)
    keep = min(n, x.size)
    out[:keep] = x[:keep]
    return out


def apply_fades(samples: np.ndarray, sr: int, fade_ms: float) -> np.ndarray:
    """A float32 copy with a linear fade-in (from 0) and fade-out (to 0) of ``fade_ms`` each.

    Fades are shortened to half the signal when the signal is too short for two full fades.
    """
    x = np.array(samples, dtype=np.float32, copy=True)
    n_fade = min(round(fade_ms * sr / 1000.0), x.size // 2)
    if n_fade <= 0:
        return x
    ramp = (np.arange(n_fade, dtype=np.float32) / n_fade).astype(np.float32)
    x[:n_fade] *= ramp
    x[-n_fade:] *= ramp[::-1]
    return x


class SpeechOverWindow(ValueError):
    """A keyword's speech is longer than the clip it would be cut into.  Centring it would keep
    only its middle ("hey jarvis" heard as "y jarv") under the keyword's label, so the clip is
    quarantined (reason :data:`REASON_SPEECH_OVER_WINDOW`) instead of cut."""

    reason = REASON_SPEECH_OVER_WINDOW


def check_speech_fits(
    speech_samples: int, clip_samples: int, sr: int, fade_ms: float, what: str = "speech"
) -> None:
    """Raise :class:`SpeechOverWindow` unless ``speech_samples`` fit inside a clip of
    ``clip_samples`` clear of the fades at both ends (which :func:`cut_centered` applies)."""
    room = clip_samples - 2 * round(sr * fade_ms / 1000.0)
    if speech_samples > room:
        raise SpeechOverWindow(
            f"{what} lasts {speech_samples / sr:.2f} s, longer than the "
            f"{clip_samples / sr:.2f} s clip (audio.clip_seconds; fades "
            f"{fade_ms:g} ms): not cut to its middle"
        )


def cut_centered(
    samples: np.ndarray, sr: int, center_s: float, length: int, fade_ms: float
) -> np.ndarray:
    """A clip of ``length`` samples whose middle sample is at time ``center_s``.

    Sample ``length // 2`` of the clip is source sample ``round(center_s * sr)``.  Where the clip
    runs off either end of the source it is zero-padded; the copied stretch gets linear fades of
    ``fade_ms`` at both its edges so the cut makes no click.
    """
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    x = np.asarray(samples, dtype=np.float32)
    start = round(center_s * sr) - length // 2
    src_lo, src_hi = max(start, 0), min(start + length, x.size)
    out = np.zeros(length, dtype=np.float32)
    if src_hi > src_lo:
        out[src_lo - start : src_hi - start] = apply_fades(x[src_lo:src_hi], sr, fade_ms)
    return out


def colored_noise(kind: NoiseKind, n: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with a 1/f^alpha power spectrum, zero mean and unit RMS, float32.

    ``white``: flat (alpha 0); ``pink``: power ~ 1/f (alpha 1); ``brown``: power ~ 1/f^2 (alpha 2).
    """
    exponents = {"white": 0.0, "pink": 1.0, "brown": 2.0}
    if kind not in exponents:
        raise ValueError(f"unknown noise kind {kind!r}; expected one of {sorted(exponents)}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    white = rng.standard_normal(n)
    if exponents[kind] == 0.0:
        noise = white
    else:
        spectrum = np.fft.rfft(white)
        freqs = np.arange(spectrum.size, dtype=np.float64)
        gain = np.zeros_like(freqs)
        gain[1:] = freqs[1:] ** (-exponents[kind] / 2.0)  # amplitude ~ f^(-alpha/2)
        noise = np.fft.irfft(spectrum * gain, n=n)
    noise = noise - noise.mean()
    rms = math.sqrt(float(np.mean(noise**2)))
    if rms > 0:
        noise = noise / rms
    return noise.astype(np.float32)


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64))) if x.size else 0.0


def mix_at_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``signal`` plus ``noise`` scaled so that 10*log10(P_signal / P_noise) == ``snr_db``.

    Powers are whole-array mean squares; the noise is tiled or cropped to the signal's length.
    If the mix would peak above MIX_PEAK_LIMIT, the whole mix is scaled down (the SNR is kept).
    Raises ValueError when either input has zero power (the SNR would be undefined).
    """
    s = np.asarray(signal, dtype=np.float64)
    v = np.asarray(noise, dtype=np.float64)
    if s.ndim != 1 or v.ndim != 1:
        raise ValueError("signal and noise must be 1-D")
    if s.size == 0 or v.size == 0:
        raise ValueError("signal and noise must be non-empty")
    if v.size < s.size:
        v = np.tile(v, math.ceil(s.size / v.size))
    v = v[: s.size]
    p_signal, p_noise = _power(s), _power(v)
    if p_signal <= 0 or p_noise <= 0:
        raise ValueError("signal and noise must both have non-zero power")
    gain = math.sqrt(p_signal / (p_noise * 10.0 ** (snr_db / 10.0)))
    mix = s + gain * v
    peak = float(np.max(np.abs(mix)))
    if peak > MIX_PEAK_LIMIT:
        mix *= MIX_PEAK_LIMIT / peak
    return mix.astype(np.float32)


def scale_to_dbfs(samples: np.ndarray, rms_dbfs: float) -> np.ndarray:
    """A float32 copy scaled to an RMS of ``rms_dbfs`` dBFS.

    Digital silence cannot be scaled and comes back unchanged.  No clipping is applied, so a loud
    target can give peaks beyond +-1; choose levels with headroom.
    """
    x = np.asarray(samples, dtype=np.float64)
    rms = math.sqrt(_power(x))
    if rms <= 0:
        return x.astype(np.float32)
    return (x * (10.0 ** (rms_dbfs / 20.0) / rms)).astype(np.float32)
