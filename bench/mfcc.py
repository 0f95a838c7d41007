"""MFCC throughput: the project's feature path against librosa and python_speech_features per
clip, and against this machine's FLOP bound; plus the file -> table path and its cache."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import librosa
import numpy as np
import polars as pl
import python_speech_features as psf
import scipy.fft
import torch

from bench.clips import ClipSet
from bench.machine import MATMUL_SIZE
from bench.timing import interleaved
from kws_assets.core.families.mfcc_dscnn import table_front_end
from kws_assets.core.features.mfcc import LOG_OFFSET, FeatureSpec, MfccExtractor
from kws_assets.core.features.table import (
    FeatureCache,
    default_workers,
    iter_feature_batches,
    stage_feature_table,
)

FFT_FLOPS_PER_N_LOG2N = 5.0  # the classic complex-FFT count, 5 N log2 N per transform


def mfcc_flops_per_clip(spec: FeatureSpec) -> dict[str, float]:
    """Floating-point operations of one clip's MFCC, stage by stage, counted per frame as:
    window (N multiplies), FFT 5 N log2 N, power spectrum (3 per bin), mel matmul
    (2 x bins x mels, the dense filterbank every implementation multiplies), log (1 per mel)
    and DCT (2 x mels x coefficients)."""
    n = spec.n_fft
    bins = n // 2 + 1
    per_frame = {
        "window": float(n),
        "fft": FFT_FLOPS_PER_N_LOG2N * n * math.log2(n),
        "power": 3.0 * bins,
        "mel": 2.0 * bins * spec.n_mels,
        "log": float(spec.n_mels),
        "dct": 2.0 * spec.n_mels * spec.n_mfcc,
    }
    out = {stage: flops * spec.n_frames for stage, flops in per_frame.items()}
    out["total"] = sum(out.values())
    return out


def librosa_mfcc(clip: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """librosa's MFCC of one clip with the project's window, hop, mel and DCT settings."""
    return librosa.feature.mfcc(
        y=clip,
        sr=spec.sample_rate,
        n_mfcc=spec.n_mfcc,
        n_fft=spec.n_fft,
        hop_length=spec.hop_length,
        win_length=spec.win_length,
        window="hann",
        center=False,
        power=2.0,
        n_mels=spec.n_mels,
        fmin=spec.f_min,
        fmax=spec.f_max,
        htk=True,
    )


def psf_mfcc(clip: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """python_speech_features' MFCC of one clip with the same settings (no pre-emphasis, no
    liftering, no energy replacement, Hann window)."""
    return psf.mfcc(
        clip,
        samplerate=spec.sample_rate,
        winlen=spec.window_ms / 1000,
        winstep=spec.hop_ms / 1000,
        numcep=spec.n_mfcc,
        nfilt=spec.n_mels,
        nfft=spec.n_fft,
        lowfreq=spec.f_min,
        highfreq=spec.f_max,
        preemph=0.0,
        ceplifter=0,
        appendEnergy=False,
        winfunc=np.hanning,
    )


def librosa_log_mel_mfcc(clip: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """librosa's mel spectrogram with the project's log (``log(mel + 1e-6)``), un-normalised HTK
    filters and orthonormal DCT-II: the same definition, so it should match the project."""
    mel = librosa.feature.melspectrogram(
        y=clip,
        sr=spec.sample_rate,
        n_fft=spec.n_fft,
        hop_length=spec.hop_length,
        win_length=spec.win_length,
        window="hann",
        center=False,
        power=2.0,
        n_mels=spec.n_mels,
        fmin=spec.f_min,
        fmax=spec.f_max,
        htk=True,
        norm=None,
    )
    return scipy.fft.dct(np.log(mel + LOG_OFFSET), type=2, norm="ortho", axis=0)[: spec.n_mfcc].T


def _agreement(spec: FeatureSpec, clips: np.ndarray, project: np.ndarray) -> dict[str, float]:
    """How close the project's MFCC is to librosa computing the same definition, and how
    strongly the peers' own conventions correlate with it."""
    n = min(16, len(clips))
    same_definition = np.stack([librosa_log_mel_mfcc(c, spec) for c in clips[:n]])
    lib = np.stack([librosa_mfcc(c, spec).T for c in clips[:n]])
    ps = np.stack([psf_mfcc(c, spec) for c in clips[:n]])
    ours = project[:n]
    scale = float(np.abs(ours).max())

    def corr(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.corrcoef(a[..., 1:].ravel(), b[..., 1:].ravel())[0, 1])

    return {
        "max_abs_diff_vs_librosa_same_definition": float(np.abs(same_definition - ours).max()),
        "relative_to_max_abs_value": float(np.abs(same_definition - ours).max() / scale),
        "corr_coeffs_1_to_n_vs_librosa_mfcc": corr(lib, ours),
        "corr_coeffs_1_to_n_vs_psf_mfcc": corr(ps, ours),
    }


def run_mfcc_bench(
    spec: FeatureSpec,
    clip_set: ClipSet,
    matmul: dict,
    rounds: int,
    peer_clips: int | None = None,
    matmul_size: int = MATMUL_SIZE,
) -> dict:
    """Throughput of every MFCC implementation on the same clips, best of ``rounds``.

    ``matmul`` is :func:`bench.machine.matmul_flops`' result (the FLOP bound's denominators).
    ``peer_clips`` limits the (slow) per-clip peers to the first clips of the set; rates are per
    clip either way.
    """
    clips = clip_set.samples
    n_peer = min(peer_clips or len(clips), len(clips))
    workers = default_workers()
    project = MfccExtractor(spec, workers=workers)
    project_one = MfccExtractor(spec, workers=1)
    skeleton = MfccExtractor(spec, chunk_clips=32)

    def skeleton_path() -> None:  # the walking skeleton's torchaudio transform in chunks of 32
        for start in range(0, len(clips), 32):
            skeleton.reference(clips[start : start + 32])

    # A float32 matmul runs in the same rounds, so the FLOP bound sees the same load.
    rng = np.random.default_rng(0)
    a = torch.from_numpy(rng.standard_normal((matmul_size, matmul_size), dtype=np.float32))
    matmul_flop = int(2 * matmul_size**3)

    def run_matmul() -> None:
        with torch.inference_mode():
            torch.matmul(a, a)

    timings = interleaved(
        {
            "matmul": (run_matmul, matmul_flop),
            "project": (lambda: project(clips), len(clips)),
            "project_one_thread": (lambda: project_one(clips), len(clips)),
            "torchaudio_transform": (skeleton_path, len(clips)),
            "librosa_per_clip": (lambda: [librosa_mfcc(c, spec) for c in clips[:n_peer]], n_peer),
            "psf_per_clip": (lambda: [psf_mfcc(c, spec) for c in clips[:n_peer]], n_peer),
        },
        rounds=rounds,
    )

    flops = mfcc_flops_per_clip(spec)
    best = {name: t.best_rate for name, t in timings.items()}
    matmul_flops = best.pop("matmul")
    achievable = max(matmul["achievable"], matmul_flops)
    bound_clips_per_s = achievable / flops["total"]
    return {
        "clips": len(clips),
        "peer_clips": n_peer,
        "rounds": rounds,
        "workers": workers,
        "timings": {name: t.as_dict() for name, t in timings.items()},
        "clips_per_s": best,
        "speedup_vs_librosa": best["project"] / best["librosa_per_clip"],
        "speedup_vs_psf": best["project"] / best["psf_per_clip"],
        "speedup_vs_torchaudio_transform": best["project"] / best["torchaudio_transform"],
        "thread_speedup": best["project"] / best["project_one_thread"],
        "flops_per_clip": flops,
        "machine_flops_per_s": achievable,
        "matmul_flops_per_s_in_rounds": matmul_flops,
        "flop_bound_clips_per_s": bound_clips_per_s,
        "fraction_of_flop_bound": best["project"] / bound_clips_per_s,
        "achieved_flops_per_s": best["project"] * flops["total"],
        # one thread against one core's matmul: how much of the gap is parallel efficiency
        "fraction_of_one_core_bound_one_thread": best["project_one_thread"]
        * flops["total"]
        / matmul["torch_one_core"],
        "agreement": _agreement(spec, clips, project(clips[:16])),
    }


def run_table_bench(spec: FeatureSpec, clip_set: ClipSet, rounds: int) -> dict:
    """The WAV files -> MFCC table path (read, decode, featurize, Parquet) with all threads and
    with one, and a rebuild over unchanged clips through the feature cache."""
    table = pl.DataFrame(
        {
            "clip_id": [f"clip{i:05d}" for i in range(len(clip_set))],
            "uri": [str(p) for p in clip_set.paths],
            "label": ["yes"] * len(clip_set),
            "split": ["train"] * len(clip_set),
            "speaker": ["s"] * len(clip_set),
            "source": ["bench"] * len(clip_set),
        }
    )
    workers = default_workers()
    with tempfile.TemporaryDirectory(prefix="kws-bench-table-") as tmp:
        folder = Path(tmp)
        cache = FeatureCache.for_front_end(folder / "cache", table_front_end(spec))

        def drain(n_workers: int) -> None:
            for _ in iter_feature_batches(table, table_front_end(spec), workers=n_workers):
                pass

        def cold_build() -> None:
            cache.path.unlink(missing_ok=True)
            staged, _ = stage_feature_table(
                table, table_front_end(spec), folder / "staging", cache=cache, workers=workers
            )
            staged.discard()

        def cached_build() -> None:
            staged, stats = stage_feature_table(
                table, table_front_end(spec), folder / "staging", cache=cache, workers=workers
            )
            staged.discard()
            if stats.featurized:
                raise AssertionError(f"rebuild featurized {stats.featurized} unchanged clips")

        timings = interleaved(
            {
                "files_to_mfcc": (lambda: drain(workers), len(table)),
                "files_to_mfcc_one_thread": (lambda: drain(1), len(table)),
                "table_build_cold_cache": (cold_build, len(table)),
            },
            rounds=rounds,
        )
        cold_build()  # leave a full cache for the rebuilds
        timings.update(
            interleaved(
                {"table_rebuild_unchanged_clips": (cached_build, len(table))}, rounds=rounds
            )
        )
    best = {name: t.best_rate for name, t in timings.items()}
    return {
        "clips": len(table),
        "workers": workers,
        "timings": {name: t.as_dict() for name, t in timings.items()},
        "clips_per_s": best,
        "thread_speedup": best["files_to_mfcc"] / best["files_to_mfcc_one_thread"],
        "cache_speedup": best["table_rebuild_unchanged_clips"] / best["table_build_cold_cache"],
    }
