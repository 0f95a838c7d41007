"""Waveform augmentation of keyword clips with torchaudio: what makes TTS clips sound like a
microphone in a room.

Each transform is a pure function on mono float32 samples:

* :func:`add_noise_at_snr` — background noise at an exact SNR (whole-array mean powers, as
  ``torchaudio.functional.add_noise`` defines it); the noise is generated coloured noise
  (:func:`kws_assets.core.audio.io.colored_noise`), :func:`babble` summed from other clips, or a
  crop of a recording from a user's noise folder (:class:`NoiseFolder`);
* :func:`synthetic_rir` + :func:`apply_rir` — a synthetic room impulse response (direct path,
  sparse early reflections, an exponentially decaying diffuse tail with the drawn RT60);
* :func:`time_shift`, :func:`apply_gain`;
* :func:`change_speed` (resampling: tempo and pitch together) and :func:`shift_pitch`
  (``torchaudio.functional.pitch_shift``: pitch only);
* :func:`telephone_band` (300-3400 Hz biquad band-pass) and :func:`resample_round_trip`
  (down to 8 kHz and back, which removes everything above 4 kHz).

:func:`draw_params` draws one augmentation recipe (a JSON-able dict) from
:class:`~kws_assets.config.AugmentSettings`; :func:`apply_params` renders it.  The recipe records
every choice — noise source, SNR, the babble clip ids, the noise file and offset, the seeds —
so an augmented clip can be traced to, and re-rendered from, its source clip.
:func:`augment_clips` does this for a clip table and writes the results to the clip store.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import polars as pl
import soundfile as sf
import torch
import torchaudio.functional as AF

from kws_assets.core.audio.io import AudioInfo, AudioReadError, colored_noise, read_audio, resample
from kws_assets.core.features.mfcc import single_threaded_torch
from kws_assets.core.parallel import Progress, batched_process_map
from kws_assets.core.stable_draws import stable_sample
from kws_assets.core.storage.clip_store import ClipStore, clip_id_for
from kws_assets.core.tables import AUGMENTED_COLUMNS, AUGMENTED_SOURCE_SUFFIX, CLIP_COLUMNS
from kws_assets.settings import UNKNOWN_LABEL, AudioSettings, AugmentSettings

OptionT = TypeVar("OptionT", bound=str)

PEAK_LIMIT = 0.99
"""After augmentation a clip peaking above this is scaled down as a whole."""
TALKER_CACHE_CLIPS = 512
"""Babble talker clips a worker keeps decoded (least recently used dropped first): 32 MB of
1-s clips, whatever the size of the talker pool."""

TELEPHONE_LOW_HZ = 300.0
TELEPHONE_HIGH_HZ = 3400.0
TELEPHONE_BIQUAD_STAGES = 2
"""Cascaded biquads per band edge: two give a 24 dB/octave skirt."""
BIQUAD_Q = 0.707
NARROWBAND_SR = 8000

RIR_DIRECT_DELAY_S = 0.002
RIR_EARLY_REFLECTIONS = 6
RIR_EARLY_WINDOW_S = (0.003, 0.05)
RIR_EARLY_GAIN = (0.2, 0.6)
RIR_TAIL_START_S = 0.01
RIR_TAIL_LEVEL = 0.3
"""Tail amplitude at its start, relative to the direct path (before the exponential decay)."""
RIR_MAX_LENGTH_RT60 = 1.2
"""The impulse response is cut this many RT60s after the direct path (by then it is -72 dB)."""
DECAY_DB = 60.0

STRETCH_N_FFT = 512
STRETCH_HOP = 128
SPEED_DECIMALS = 2
"""Speed factors are rounded to 0.01 so the resampling ratio stays a small fraction."""

NOISE_EXTENSIONS = (".wav", ".flac", ".ogg")
JSON_FLOAT_DECIMALS = 4
MAX_SEED = 2**31 - 1
AUGMENT_BATCH_CLIPS = 16
"""Source clips a worker process renders per batch (a few hundred ms of work each)."""


# --- primitive transforms ---------------------------------------------------------------------


def _tensor(samples: np.ndarray) -> torch.Tensor:
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"expected mono 1-D samples, got shape {x.shape}")
    return torch.from_numpy(np.ascontiguousarray(x))


def power(samples: np.ndarray) -> float:
    """Mean square of the samples (0 for an empty array)."""
    x = np.asarray(samples, dtype=np.float64)
    return float(np.mean(x * x)) if x.size else 0.0


def snr_db(signal: np.ndarray, noise: np.ndarray) -> float:
    """10*log10(P_signal / P_noise) with whole-array mean powers."""
    return 10.0 * math.log10(max(power(signal), 1e-20) / max(power(noise), 1e-20))


def fit_noise(noise: np.ndarray, n: int) -> np.ndarray:
    """Tile or crop noise to ``n`` samples."""
    v = np.asarray(noise, dtype=np.float32)
    if v.size == 0:
        raise ValueError("noise must be non-empty")
    if v.size < n:
        v = np.tile(v, math.ceil(n / v.size))
    return v[:n]


def add_noise_at_snr(signal: np.ndarray, noise: np.ndarray, snr: float) -> np.ndarray:
    """``signal`` plus ``noise`` (tiled/cropped) scaled to an SNR of ``snr`` dB, via
    ``torchaudio.functional.add_noise``.  No peak limiting here (see :func:`limit_peak`)."""
    if power(signal) <= 0 or power(noise) <= 0:
        raise ValueError("signal and noise must both have non-zero power")
    s = _tensor(signal)
    v = _tensor(fit_noise(noise, s.shape[0]))
    with torch.inference_mode():
        out = AF.add_noise(s.unsqueeze(0), v.unsqueeze(0), torch.tensor([float(snr)]))
    return out[0].numpy().astype(np.float32)


def limit_peak(samples: np.ndarray, peak: float = PEAK_LIMIT) -> np.ndarray:
    """Scale the whole clip down if its peak exceeds ``peak`` (ratios such as SNR are kept)."""
    x = np.asarray(samples, dtype=np.float32)
    top = float(np.max(np.abs(x))) if x.size else 0.0
    return (x * (peak / top)).astype(np.float32) if top > peak else x.copy()


def babble(talkers: Sequence[np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
    """Several talkers at once: each clip normalised to unit RMS, circularly offset at random,
    summed; the sum is scaled to unit RMS.  Silent talkers are skipped."""
    out = np.zeros(n, dtype=np.float64)
    used = 0
    for clip in talkers:
        x = fit_noise(np.asarray(clip, dtype=np.float32), n).astype(np.float64)
        rms = math.sqrt(power(x))
        if rms <= 0:
            continue
        out += np.roll(x / rms, int(rng.integers(0, n)))
        used += 1
    if used == 0:
        raise ValueError("babble needs at least one non-silent talker")
    return (out / math.sqrt(power(out))).astype(np.float32)


def synthetic_rir(sample_rate: int, rt60_s: float, rng: np.random.Generator) -> np.ndarray:
    """A room impulse response: a direct path (amplitude 1), a few early reflections in the first
    50 ms, and a Gaussian diffuse tail whose energy decays 60 dB in ``rt60_s``."""
    if rt60_s <= 0:
        raise ValueError(f"rt60_s must be positive, got {rt60_s}")
    direct = round(RIR_DIRECT_DELAY_S * sample_rate)
    length = direct + math.ceil(RIR_MAX_LENGTH_RT60 * rt60_s * sample_rate)
    rir = np.zeros(length, dtype=np.float64)
    rir[direct] = 1.0
    lo, hi = (int(t * sample_rate) for t in RIR_EARLY_WINDOW_S)
    for _ in range(RIR_EARLY_REFLECTIONS):
        tap = direct + int(rng.integers(lo, hi))
        if tap < length:
            rir[tap] += float(rng.uniform(*RIR_EARLY_GAIN)) * float(rng.choice([-1.0, 1.0]))
    t = np.arange(length) / sample_rate
    # amplitude envelope: 60 dB of energy decay (= 60 dB amplitude) over rt60
    envelope = 10.0 ** (-(DECAY_DB / 20.0) * t / rt60_s)
    tail_start = direct + round(RIR_TAIL_START_S * sample_rate)
    tail = rng.standard_normal(length) * envelope * RIR_TAIL_LEVEL
    tail[:tail_start] = 0.0
    rir += tail
    return rir.astype(np.float32)


def apply_rir(samples: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Convolve with an impulse response (``torchaudio.functional.fftconvolve``), keep the input's
    length and timing (the direct path stays where the dry signal was) and its RMS level."""
    x = _tensor(samples)
    h = _tensor(rir)
    if h.numel() == 0:
        raise ValueError("empty impulse response")
    delay = int(torch.argmax(h.abs()))
    with torch.inference_mode():
        wet = AF.fftconvolve(x, h)[delay : delay + x.shape[0]]
    out = wet.numpy().astype(np.float64)
    dry_power, wet_power = power(samples), power(out)
    if wet_power > 0 and dry_power > 0:
        out *= math.sqrt(dry_power / wet_power)
    return out.astype(np.float32)


def time_shift(samples: np.ndarray, shift: int) -> np.ndarray:
    """Move the audio ``shift`` samples later (earlier if negative), zero-filling the gap."""
    x = np.asarray(samples, dtype=np.float32)
    out = np.zeros_like(x)
    if shift >= 0:
        if shift < x.size:
            out[shift:] = x[: x.size - shift]
    elif -shift < x.size:
        out[: x.size + shift] = x[-shift:]
    return out


def apply_gain(samples: np.ndarray, gain_db: float) -> np.ndarray:
    """Scale by ``gain_db`` decibels (``torchaudio.functional.gain``)."""
    with torch.inference_mode():
        return AF.gain(_tensor(samples), float(gain_db)).numpy().astype(np.float32)


def change_speed(samples: np.ndarray, sample_rate: int, factor: float) -> np.ndarray:
    """Play ``factor`` times faster (tempo and pitch together, like a tape): the result has about
    ``len / factor`` samples.  Done by resampling from ``sample_rate * factor`` to
    ``sample_rate``."""
    if factor <= 0:
        raise ValueError(f"speed factor must be positive, got {factor}")
    factor = round(float(factor), SPEED_DECIMALS)
    return resample(samples, round(sample_rate * factor), sample_rate)


def time_stretch(samples: np.ndarray, rate: float) -> np.ndarray:
    """Play ``rate`` times faster without changing pitch (``torchaudio.functional.phase_vocoder``
    on an STFT): about ``len / rate`` samples."""
    if rate <= 0:
        raise ValueError(f"stretch rate must be positive, got {rate}")
    x = _tensor(samples)
    window = torch.hann_window(STRETCH_N_FFT)
    with torch.inference_mode():
        spec = torch.stft(x, STRETCH_N_FFT, STRETCH_HOP, window=window, return_complex=True)
        advance = torch.linspace(0, math.pi * STRETCH_HOP, spec.shape[-2]).unsqueeze(-1)
        stretched = AF.phase_vocoder(spec, float(rate), advance)
        out = torch.istft(
            stretched,
            STRETCH_N_FFT,
            STRETCH_HOP,
            window=window,
            length=round(x.shape[0] / rate),
        )
    return out.numpy().astype(np.float32)


def shift_pitch(samples: np.ndarray, sample_rate: int, semitones: float) -> np.ndarray:
    """Raise the pitch by ``semitones`` (lower if negative) at the same duration: a phase-vocoder
    time stretch followed by a speed change.  The pitch ratio is rounded to 0.01 (a sixth of a
    semitone) so the resampling ratio stays a small fraction."""
    ratio = round(2.0 ** (semitones / 12.0), SPEED_DECIMALS)
    x = np.asarray(samples, dtype=np.float32)
    if ratio == 1.0:
        return x.copy()
    stretched = time_stretch(x, 1.0 / ratio)
    return fit_centered(change_speed(stretched, sample_rate, ratio), x.size)


def telephone_band(
    samples: np.ndarray,
    sample_rate: int,
    low_hz: float = TELEPHONE_LOW_HZ,
    high_hz: float = TELEPHONE_HIGH_HZ,
) -> np.ndarray:
    """Band-pass to the telephone band (cascaded high-pass and low-pass biquads)."""
    if not 0 < low_hz < high_hz < sample_rate / 2:
        raise ValueError(f"need 0 < low_hz < high_hz < {sample_rate / 2}")
    x = _tensor(samples).to(torch.float64)
    with torch.inference_mode():
        for _ in range(TELEPHONE_BIQUAD_STAGES):
            x = AF.highpass_biquad(x, sample_rate, low_hz, BIQUAD_Q)
            x = AF.lowpass_biquad(x, sample_rate, high_hz, BIQUAD_Q)
    return x.numpy().astype(np.float32)


def resample_round_trip(
    samples: np.ndarray, sample_rate: int, via_rate: int = NARROWBAND_SR
) -> np.ndarray:
    """Down to ``via_rate`` and back (a narrowband channel): same length, nothing above
    ``via_rate / 2``."""
    x = np.asarray(samples, dtype=np.float32)
    narrow = resample(x, sample_rate, via_rate)
    back = resample(narrow, via_rate, sample_rate)
    out = np.zeros_like(x)
    keep = min(x.size, back.size)
    out[:keep] = back[:keep]
    return out


def fit_centered(samples: np.ndarray, n: int) -> np.ndarray:
    """Crop or zero-pad symmetrically to ``n`` samples (a speed change keeps the word centred)."""
    x = np.asarray(samples, dtype=np.float32)
    out = np.zeros(n, dtype=np.float32)
    if x.size >= n:
        start = (x.size - n) // 2
        out[:] = x[start : start + n]
    else:
        start = (n - x.size) // 2
        out[start : start + x.size] = x
    return out


# --- noise sources ----------------------------------------------------------------------------


@dataclass
class NoiseFolder:
    """Noise recordings found under a folder (wav/flac/ogg, recursively).

    ``scan`` reads every file's header once: files that cannot be opened are listed in
    ``problems`` with the reason and never drawn, so the files drawn from are fixed at scan time
    (draws stay deterministic).  Audio is decoded on first use.
    """

    root: Path
    sample_rate: int
    files: list[Path] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)
    _cache: dict[Path, np.ndarray] = field(default_factory=dict, repr=False)

    @classmethod
    def scan(cls, root: str | os.PathLike[str], sample_rate: int) -> NoiseFolder:
        folder = Path(root).expanduser().resolve()
        if not folder.is_dir():
            raise FileNotFoundError(f"noise folder {folder} does not exist")
        found = sorted(
            p for p in folder.rglob("*") if p.suffix.lower() in NOISE_EXTENSIONS and p.is_file()
        )
        files, problems = [], {}
        for path in found:
            try:
                info = sf.info(str(path))
            except Exception as exc:
                problems[str(path)] = f"unreadable: {str(exc)[:120]}"
                continue
            if info.frames <= 0:
                problems[str(path)] = "empty"
                continue
            files.append(path)
        return cls(folder, sample_rate, files, problems)

    def load(self, path: Path) -> np.ndarray:
        """The recording at the pipeline rate; ``AudioReadError`` if it cannot be decoded or is
        silent."""
        if path not in self._cache:
            samples = read_audio(path, target_sr=self.sample_rate).samples
            if power(samples) <= 0:
                raise AudioReadError(path, "silent", "a noise recording of digital silence")
            self._cache[path] = samples
        return self._cache[path]

    def crop(self, rel: str, offset: int, n: int) -> np.ndarray:
        """``n`` samples of a recording starting at ``offset`` (modulo its length, wrapping)."""
        samples = self.load(self.root / rel)
        return fit_noise(np.roll(samples, -(offset % samples.size)), n)


@dataclass
class NoiseSources:
    """What background noise can be drawn from: coloured noise always; babble when talker clips
    (non-keyword speech) are given; a noise folder when configured."""

    babble_pool: list[str] = field(default_factory=list)
    """Clip ids of non-keyword speech usable as babble talkers."""
    read_babble: Callable[[str], np.ndarray] | None = None
    folder: NoiseFolder | None = None


def _weighted_choice(options: Mapping[OptionT, float], rng: np.random.Generator) -> OptionT | None:
    names = [k for k, w in options.items() if w > 0]
    if not names:
        return None
    weights = np.array([options[k] for k in names], dtype=np.float64)
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]


def _r(value: float) -> float:
    return round(float(value), JSON_FLOAT_DECIMALS)


def draw_params(
    settings: AugmentSettings,
    rng: np.random.Generator,
    sources: NoiseSources,
    sample_rate: int,
    exclude_babble: Sequence[str] = (),
) -> dict:
    """One augmentation recipe: which transforms apply and with which values (JSON-able).

    ``exclude_babble`` lists clip ids that must not be babble talkers (the clip itself).
    """
    params: dict = {}
    if rng.random() < settings.speed_probability:
        params["speed"] = round(float(rng.uniform(*settings.speed_range)), SPEED_DECIMALS)
    if rng.random() < settings.pitch_probability:
        params["pitch_semitones"] = round(float(rng.uniform(*settings.pitch_semitones_range)), 1)
    if rng.random() < settings.shift_probability:
        max_shift = int(settings.max_shift_ms * sample_rate / 1000.0)
        params["shift_samples"] = int(rng.integers(-max_shift, max_shift + 1))
    if rng.random() < settings.rir_probability:
        params["rir"] = {
            "rt60_s": _r(rng.uniform(*settings.rt60_s_range)),
            "seed": int(rng.integers(0, MAX_SEED)),
        }
    if rng.random() < settings.noise_probability:
        noise = _draw_noise(settings, rng, sources, exclude_babble)
        if noise is not None:
            noise["snr_db"] = _r(rng.uniform(*settings.snr_db_range))
            params["noise"] = noise
    if rng.random() < settings.telephone_probability:
        params["telephone"] = [TELEPHONE_LOW_HZ, TELEPHONE_HIGH_HZ]
    if rng.random() < settings.resample_8k_probability:
        params["resample_via_hz"] = NARROWBAND_SR
    if rng.random() < settings.gain_probability:
        params["gain_db"] = _r(rng.uniform(*settings.gain_db_range))
    return params


def _draw_noise(
    settings: AugmentSettings,
    rng: np.random.Generator,
    sources: NoiseSources,
    exclude_babble: Sequence[str],
) -> dict | None:
    excluded = set(exclude_babble)
    pool = [c for c in sources.babble_pool if c not in excluded]
    weights = dict(settings.noise_source_weights)
    if not pool or sources.read_babble is None:
        weights["babble"] = 0.0
    if sources.folder is None or not sources.folder.files:
        weights["folder"] = 0.0
    kind = _weighted_choice(weights, rng)
    if kind == "colored":
        return {
            "source": "colored",
            "kind": str(rng.choice(settings.colored_kinds)),
            "seed": int(rng.integers(0, MAX_SEED)),
        }
    if kind == "babble":
        low, high = settings.babble_talkers
        n = min(int(rng.integers(low, high + 1)), len(pool))
        talkers = stable_sample(sources.babble_pool, n, int(rng.integers(0, MAX_SEED)), excluded)
        return {"source": "babble", "talkers": talkers, "seed": int(rng.integers(0, MAX_SEED))}
    if kind == "folder" and sources.folder is not None:
        files = sources.folder.files
        path = files[int(rng.integers(0, len(files)))]
        return {
            "source": "folder",
            "file": str(path.relative_to(sources.folder.root)),
            "offset": int(rng.integers(0, MAX_SEED)),
        }
    return None


def render_noise(noise: dict, n: int, sources: NoiseSources) -> np.ndarray:
    """The noise a recipe names, ``n`` samples long (``AudioReadError`` if a noise file or a
    babble talker cannot be read)."""
    source = noise["source"]
    if source == "colored":
        return colored_noise(noise["kind"], n, np.random.default_rng(noise["seed"]))
    if source == "babble":
        if sources.read_babble is None:
            raise ValueError("a babble recipe needs NoiseSources.read_babble")
        talkers = [sources.read_babble(c) for c in noise["talkers"]]
        return babble(talkers, n, np.random.default_rng(noise["seed"]))
    if source == "folder":
        if sources.folder is None:
            raise ValueError("a noise-folder recipe needs NoiseSources.folder")
        offset = noise["offset"]
        return sources.folder.crop(noise["file"], offset, n)
    raise ValueError(f"unknown noise source {source!r}")


def apply_params(
    samples: np.ndarray, sample_rate: int, params: dict, sources: NoiseSources | None = None
) -> np.ndarray:
    """Render a recipe from :func:`draw_params` on a clip; the result has the clip's length.

    Order: speed, pitch, shift (the talker), room reverberation, background noise, channel
    (telephone band, 8 kHz round trip), gain, then a peak limit.
    """
    sources = sources or NoiseSources()
    x = np.asarray(samples, dtype=np.float32)
    n = x.size
    if "speed" in params:
        x = fit_centered(change_speed(x, sample_rate, params["speed"]), n)
    if "pitch_semitones" in params:
        x = shift_pitch(x, sample_rate, params["pitch_semitones"])
    if "shift_samples" in params:
        x = time_shift(x, params["shift_samples"])
    if "rir" in params:
        rir = synthetic_rir(
            sample_rate, params["rir"]["rt60_s"], np.random.default_rng(params["rir"]["seed"])
        )
        x = apply_rir(x, rir)
    if "noise" in params and power(x) > 0:
        noise = render_noise(params["noise"], n, sources)
        if power(noise) > 0:
            x = add_noise_at_snr(x, noise, params["noise"]["snr_db"])
    if "telephone" in params:
        low, high = params["telephone"]
        x = telephone_band(x, sample_rate, low, high)
    if "resample_via_hz" in params:
        x = resample_round_trip(x, sample_rate, params["resample_via_hz"])
    if "gain_db" in params:
        x = apply_gain(x, params["gain_db"])
    return limit_peak(x)


# --- a clip table in, augmented clips out ---------------------------------------------------------


def copy_seed(clip_id: str, copy_index: int, seed: int) -> int:
    """The generator seed of one augmented copy: stable across runs and processes."""
    digest = hashlib.sha256(f"{clip_id}|{copy_index}|{seed}".encode()).hexdigest()
    return int(digest[:8], 16)


@dataclass(frozen=True)
class AugmentFailure:
    clip_id: str
    uri: str
    reason: str


def augment_clips(
    clips: pl.DataFrame,
    settings: AugmentSettings,
    audio: AudioSettings,
    store: ClipStore,
    read_clip: Callable[[str], AudioInfo],
    noise_folder: NoiseFolder | None = None,
    *,
    workers: int = 1,
    batch_size: int = AUGMENT_BATCH_CLIPS,
    progress: Progress | None = None,
) -> tuple[list[dict], list[AugmentFailure]]:
    """Augmented copies of the clips of ``clips`` (validated rows with ``split``) in the
    configured splits and labels; returns the new clip rows and the clips that could not be read.

    Each row keeps the source clip's label, speaker, language and split; ``origin_id`` is the
    source clip id and ``augment_params`` the JSON recipe.  Babble talkers are ``_unknown_``
    clips of the same split, so no speech crosses a split boundary.

    Source clips are rendered in batches of ``batch_size`` on ``workers`` processes
    (:func:`kws_assets.core.parallel.batched_process_map`); every copy's generator is seeded from
    its source clip id, copy number and ``settings.seed`` alone, so rows, recipes and audio are
    the same for any worker count, in ``clip_id`` order.
    """
    if settings.copies_per_clip == 0 or clips.is_empty():
        return [], []
    chosen = clips.filter(
        pl.col("split").is_in(settings.splits) & ~pl.col("label").is_in(settings.skip_labels)
    )
    uri_by_id = dict(zip(clips["clip_id"].to_list(), clips["uri"].to_list(), strict=True))
    pools: dict[str, list[str]] = {
        split: sorted(
            clips.filter((pl.col("split") == split) & (pl.col("label") == UNKNOWN_LABEL))[
                "clip_id"
            ].to_list()
        )
        for split in settings.splits
    }

    # one per process: a memo, never an input; bounded, so memory does not grow with the pool
    @functools.lru_cache(maxsize=TALKER_CACHE_CLIPS)
    def read_talker(clip_id: str) -> np.ndarray:
        return read_clip(uri_by_id[clip_id]).samples

    def augment_one(row: dict) -> tuple[list[dict], list[AugmentFailure]]:
        return _augment_one(
            row, settings, audio, store, read_clip, pools, read_talker, noise_folder
        )

    rows: list[dict] = []
    failures: list[AugmentFailure] = []
    sources = chosen.sort("clip_id").iter_rows(named=True)
    with single_threaded_torch():  # many small kernels: one thread each is fastest
        batches = batched_process_map(
            augment_one,
            sources,
            workers,
            batch_size,
            batch_context=store.batch_writes,
            progress=progress,
            total=chosen.height,
        )
        for done, failed in batches:
            rows.extend(done)
            failures.extend(failed)
    return rows, failures


def _augment_one(
    row: dict,
    settings: AugmentSettings,
    audio: AudioSettings,
    store: ClipStore,
    read_clip: Callable[[str], AudioInfo],
    pools: dict[str, list[str]],
    read_talker: Callable[[str], np.ndarray],
    noise_folder: NoiseFolder | None,
) -> tuple[list[dict], list[AugmentFailure]]:
    """The augmented copies of one source clip: their rows, and the copies that failed.  The
    source is read only when a copy is not stored yet (a re-run reads none of its clips)."""
    rows: list[dict] = []
    failures: list[AugmentFailure] = []
    source_audio: list[np.ndarray] = []

    def source_samples() -> np.ndarray:
        if not source_audio:
            source_audio.append(read_clip(row["uri"]).samples)
        return source_audio[0]

    sources = NoiseSources(pools.get(row["split"], []), read_talker, noise_folder)
    for copy in range(1, settings.copies_per_clip + 1):
        rng = np.random.default_rng(copy_seed(row["clip_id"], copy, settings.seed))
        params = draw_params(
            settings, rng, sources, audio.sample_rate, exclude_babble=[row["clip_id"]]
        )
        recipe = json.dumps(params, sort_keys=True)
        clip_id = clip_id_for("augmented", row["clip_id"], copy, recipe, audio.sample_rate)
        source = row["source"] + AUGMENTED_SOURCE_SUFFIX
        key = store.key_for(source, row["label"], clip_id)
        if not store.exists(key):  # rendering is deterministic: a stored copy is reused
            try:
                samples = source_samples()
            except AudioReadError as exc:
                return [], [AugmentFailure(row["clip_id"], row["uri"], exc.reason)]
            try:
                out = apply_params(samples, audio.sample_rate, params, sources)
            except AudioReadError as exc:  # a babble talker or a noise file could not be read
                failures.append(
                    AugmentFailure(row["clip_id"], row["uri"], f"noise {exc.path}: {exc.reason}")
                )
                continue
            store.put(key, out, audio.sample_rate)
        rows.append(
            {
                "clip_id": clip_id,
                "uri": store.uri_for(key),
                "label": row["label"],
                "source": source,
                "speaker": row["speaker"],
                "language": row["language"],
                "origin_id": row["clip_id"],
                "start_s": row["start_s"],
                "sample_rate": audio.sample_rate,
                # a copy keeps its source's length; a stored one is not read back to count it
                "num_samples": int(
                    row["num_samples"] if row.get("num_samples") else source_samples().size
                ),
                "split": row["split"],
                "augment_params": recipe,
            }
        )
    return rows, failures


TRANSFORM_KEYS = (
    "speed",
    "pitch_semitones",
    "shift_samples",
    "rir",
    "noise",
    "telephone",
    "resample_via_hz",
    "gain_db",
)


def augmented_table(rows: list[dict]) -> pl.DataFrame:
    """Augmented clip rows as a clip table with ``split`` and ``augment_params`` (JSON) columns."""
    if not rows:
        return pl.DataFrame(schema={**CLIP_COLUMNS, **AUGMENTED_COLUMNS})
    return pl.DataFrame(rows, schema_overrides={**CLIP_COLUMNS, **AUGMENTED_COLUMNS}).select(
        [*CLIP_COLUMNS, *AUGMENTED_COLUMNS]
    )


def transform_counts(table: pl.DataFrame) -> dict[str, int]:
    """How many augmented clips each transform (and each noise source) was applied to."""
    counts = dict.fromkeys(TRANSFORM_KEYS, 0)
    for text in table["augment_params"].to_list() if table.height else []:
        params = json.loads(text)
        for key in params:
            counts[key] = counts.get(key, 0) + 1
        if "noise" in params:
            name = f"noise:{params['noise']['source']}"
            counts[name] = counts.get(name, 0) + 1
    return counts
