"""The shoot-out (``make compare``): the project's default model trained on "alexa", "hey
jarvis" and "hey mycroft" beside the pretrained openWakeWord and microWakeWord models of the same
phrases, each in its own runtime at its own shipped operating point, on the same audio.

Why: a user who already runs one of those models has no reason to train another unless it is
at least as good; the project's own evaluation (synthetic streams, the held-out engine) cannot
tell them, and none of the three systems may be scored on voices it trained on.

The audio (none of it trained any of the three systems, as far as their published recipes say):

- **negatives**, for false accepts per hour: the real recordings of Debian's ktuberling-data and
  klettres-data (children's-game words and letters, read by people in a score of languages),
  strung into one long stream per package (seeded order, 0.2-0.8 s pauses, a -60 dBFS pink noise
  floor), plus running speech by Festival's diphone voices (sentences of common words).  Every
  detection on them is a false accept.
- **positives**, for the false rejection rate: each phrase spoken by Festival's ``ked_diphone``
  over a grid of rates and pitches, each render also as a perturbed speaker (formant warp, pitch,
  tempo).  Festival is the project's held-out engine (never trains); its ``kal_diphone`` and
  ``cmu_us_slt_arctic_hts`` are the speakers flite ships (flite trains), so they are left out;
  openWakeWord and microWakeWord train on Piper voices.  Each phrase sits in real background
  (the same real recordings, a continuous bed) at 10-20 dB SNR, 4-6 s apart; a detection between
  its start and 1.5 s after its end is a hit.

The project's model is trained by materializing the whole graph on ``configs/compare.yaml``
(kws.yaml with only the keywords changed) in a work folder, as ``make demo`` does; its release
folder (the int8 artifact with the operating point its evaluation selected) runs through the
project's :class:`~kws_assets.core.model.detect.StreamingDetector`.  The peers run through
:mod:`kws_assets.core.evaluation.peers`.  Reported per phrase and system: FRR and FA/h at the
shipped point, FRR at 0.5, 1 and 2 FA/h from a threshold sweep, each with its exact 95%
interval, and a DET plot.  ``--tiny`` trains a nano pipeline on the config's first phrase and
scores it on a few minutes of audio (``--small-audio`` alone: the audio only); ``--release``
skips training and scores an existing release folder (an artifact folder without an operating
point runs at ``kws detect``'s defaults); ``--peers-only`` scores the pretrained models alone.
The work folder keeps the built audio and the peers' score tracks, so a second run on the same
recipe pays only for training and the project's own scoring.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import platform
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from kws_assets.core.audio.io import AudioReadError, read_audio, resample
from kws_assets.core.dataset.perturb import Perturbation, perturb
from kws_assets.core.evaluation import peers, plots
from kws_assets.core.evaluation.det import DetCurve, threshold_grid
from kws_assets.core.evaluation.intervals import clopper_pearson, rate_interval
from kws_assets.core.evaluation.streams import add_noise_floor
from kws_assets.core.model.detect import (
    DEFAULT_HOP_MS,
    DEFAULT_REFRACTORY_S,
    DEFAULT_SMOOTHING_WINDOWS,
    DEFAULT_THRESHOLD,
    DetectorOperatingPoint,
    StreamingDetector,
    smooth_posteriors,
)
from kws_assets.core.speech import tts
from kws_assets.core.speech.engines.registry import REGISTRY as ENGINES
from kws_assets.core.speech.lexicon import common_words, load_lexicon

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "configs" / "compare.yaml"
DEFAULT_OUT = ROOT / "bench" / "reports"
DEFAULT_WORKDIR = ROOT / ".kws_data_compare"
REPORT_NAME = "compare"
SAMPLE_RATE = peers.SAMPLE_RATE
REAL_ROOTS = (Path("/usr/share/ktuberling/sounds"), Path("/usr/share/klettres"))
"""Debian's ktuberling-data and klettres-data: real people reading words and letters."""
REAL_SUFFIXES = (".ogg", ".wav", ".flac")
POSITIVE_ENGINE = "festival"
POSITIVE_VOICES = ("ked_diphone",)
"""Festival's voices that are no other engine's speaker (kal and slt are flite's speakers)."""
SENTENCE_VOICES = ("ked_diphone", "kal_diphone")
RATES = (0.8, 0.9, 1.0, 1.1, 1.25)
PITCHES = (0.85, 0.95, 1.05, 1.2)
PERTURBATION_RANGES = {"warp_factor": (0.88, 1.14), "semitones": (-3.0, 3.0), "tempo": (0.9, 1.1)}
SNR_DB = (10.0, 20.0)
LEAD_S = (4.0, 6.0)
GAP_S = (0.2, 0.8)
NOISE_FLOOR_DBFS = -60.0
SENTENCE_WORDS = (6, 14)
TARGETS_FA_PER_HOUR = (0.5, 1.0, 2.0)
LEVEL = 0.95
SWEEP_STEPS = 200
PROJECT = "kws_assets"
SYSTEMS = (PROJECT, peers.OPENWAKEWORD, peers.MICROWAKEWORD)
AUDIO_RECIPE = 1
"""Bump when the way the audio is built changes: the work folder caches it by its recipe."""
SMALL_REAL_PER_SOURCE = 40
TINY_OVERRIDES: dict[str, Any] = {
    "sources": [
        {
            "kind": "demo_tts",
            "name": "demo",
            "voices": ["en-us+m2", "en-us+f1", "en+m3"],
            "sentences_per_keyword": 1,
            "rate": 160,
        }
    ],
    "tts": {
        "voices": ["en-us+m1", "en-us+f2", "en+m2", "en-gb-scotland+m4", "en-029+m6"],
        "rates": [150],
        "pitches": [50],
        "sampled_speakers": 4,
        "renders_per_speaker": 1,
        "engines": [{"engine": "flite", "voices": ["kal"], "renders_per_voice": 2}],
    },
    "noise": {"silence_clips": 8, "noisy_copies_per_clip": 1},
    "splits": {"val_percent": 25.0, "test_percent": 25.0},
    "model": {"n_filters": 8, "n_blocks": 1},
    "train": {"batch_size": 16, "threads": 1, "max_epochs": 2, "min_epochs": 1},
    "quantize": {"calibration_rows": 8},
    "evaluation": {
        "negative_minutes": 0.3,
        "positives_per_keyword": 2,
        "threshold_steps": 10,
        "held_out_engine": "flite",
        "held_out_engine_renders": 1,
    },
    "embedding": {"width": 16, "n_blocks": 1},
    "negatives": {"neighbours_per_keyword": 1, "other_words": 2, "speech_windows": 2},
    "augment": {"copies_per_clip": 0},
    "distill": {"enabled": False},
    "dataset_guard": {"min_test_clips_per_label": 0},
}
"""The nano pipeline of ``--tiny`` (on the config's first phrase only): a handful of voices, two
epochs; what it measures says nothing about the default pipeline."""


@dataclass(frozen=True)
class Audio:
    """The material of one run: negative recordings and, per phrase, one positive recording."""

    negatives: list[tuple[str, np.ndarray]]
    positives: dict[str, tuple[np.ndarray, list[peers.Phrase]]]
    notes: list[str]

    @property
    def negative_seconds(self) -> float:
        return sum(len(x) for _, x in self.negatives) / SAMPLE_RATE


# ----------------------------------------------------------------------------- training


def effective_config(config: Path, workdir: Path, tiny: bool) -> Path:
    """``config`` with its storage under ``workdir`` (and the nano overrides for ``tiny``),
    written into ``workdir`` as the file the graph is built from."""
    cfg = yaml.safe_load(config.read_text()) or {}
    if tiny:
        cfg.update(TINY_OVERRIDES)
        cfg["keywords"] = list(cfg.get("keywords") or ["alexa"])[:1]
    cfg.setdefault("storage", {})["root"] = str((workdir / "data").resolve())
    out = workdir / "config.json"
    out.write_text(json.dumps(cfg, indent=1))  # JSON is YAML
    return out


def train_release(config: Path, workdir: Path, log: Callable[[str], None]) -> Path:
    """Materialize the whole graph on ``config`` in its own Dagster instance under ``workdir``
    (as ``make demo``) and return the default family's release folder."""
    home = workdir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = str(home)
    import dagster as dg

    from kws_assets.core.families import get_family
    from kws_assets.definitions import build_definitions
    from kws_assets.demo import RUN_CONFIG, quiet_console
    from kws_assets.lib.family_assets import release_key
    from kws_assets.lib.in_process import failed_steps, materialize_graph
    from kws_assets.lib.resources import settings_resource

    with quiet_console():  # Dagster's own lines stay in the instance, as in `make demo`
        instance = dg.DagsterInstance.get()
        defs = build_definitions(config)
        graph = materialize_graph(
            defs,
            instance,
            run_config=RUN_CONFIG,
            on_start=lambda i, n, step: log(f"train: run {i}/{n} {step}"),
        )
    if graph.failed is not None:
        _, _, result = graph.failed
        raise RuntimeError("training failed:\n" + "\n".join(failed_steps(result)))
    family = get_family(settings_resource(defs).config.model.family)
    release = defs.load_asset_value(release_key(family), instance=instance)
    return Path(release.path)  # an ArtifactFolder


# ----------------------------------------------------------------------------- audio


def real_files(roots: Sequence[Path] = REAL_ROOTS) -> dict[str, list[Path]]:
    """Every recording of each real source, by source (the folder's name), sorted."""
    return {
        root.name if root.name != "sounds" else root.parent.name: sorted(
            p for p in root.rglob("*") if p.suffix.lower() in REAL_SUFFIXES
        )
        for root in roots
        if root.is_dir()
    }


def read_recordings(paths: Sequence[Path]) -> list[np.ndarray]:
    """The recordings at 16 kHz mono (unreadable ones skipped)."""
    out = []
    for path in paths:
        try:
            audio = read_audio(path)
        except AudioReadError:
            continue
        samples = resample(audio.samples, audio.sample_rate, SAMPLE_RATE)
        if samples.size:
            out.append(samples.astype(np.float32))
    return out


def string_together(pieces: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """The pieces in a seeded order with short pauses, over a pink noise floor."""
    parts = []
    for index in rng.permutation(len(pieces)):
        parts += [np.zeros(int(rng.uniform(*GAP_S) * SAMPLE_RATE), np.float32), pieces[index]]
    return add_noise_floor(np.concatenate(parts), NOISE_FLOOR_DBFS, rng)


def festival_sentences(
    count: int, words: Sequence[str], rng: np.random.Generator
) -> list[np.ndarray]:
    """``count`` sentences of common words by Festival's diphone voices (the running speech of a
    room), trimmed of their silence."""
    engine = ENGINES.get(POSITIVE_ENGINE).adapter()
    voices = [v for v in SENTENCE_VOICES if v in engine.voices("en")]
    out = []
    for _ in range(count if voices else 0):
        n = int(rng.integers(SENTENCE_WORDS[0], SENTENCE_WORDS[1] + 1))
        text = " ".join(words[int(i)] for i in rng.integers(0, len(words), size=n))
        voice = voices[int(rng.integers(0, len(voices)))]
        rendered = engine.render(text, voice, rate=float(rng.uniform(0.85, 1.2)))
        samples = resample(rendered.samples, rendered.sample_rate, SAMPLE_RATE)
        trimmed, _ = tts.trim_silence(samples, SAMPLE_RATE, -45.0)
        if trimmed.size:
            out.append(trimmed.astype(np.float32))
    return out


def phrase_renders(
    phrase: str, rates: Sequence[float], pitches: Sequence[float], rng: np.random.Generator
) -> list[tuple[np.ndarray, str]]:
    """The phrase by each held-out voice at every rate x pitch, each render also as a perturbed
    speaker; ``(samples trimmed of silence, id)``."""
    engine = ENGINES.get(POSITIVE_ENGINE).adapter()
    out = []
    for voice in (v for v in POSITIVE_VOICES if v in engine.voices("en")):
        for rate in rates:
            for pitch in pitches:
                rendered = engine.render(phrase, voice, rate=rate, pitch=pitch)
                samples = resample(rendered.samples, rendered.sample_rate, SAMPLE_RATE)
                trimmed, _ = tts.trim_silence(samples, SAMPLE_RATE, -45.0)
                name = f"{voice} r{rate} p{pitch}"
                out.append((trimmed.astype(np.float32), name))
                draw = Perturbation(
                    **{k: float(rng.uniform(*r)) for k, r in PERTURBATION_RANGES.items()}
                )
                out.append((perturb(trimmed, SAMPLE_RATE, draw), f"{name} perturbed"))
    return out


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64))) if x.size else 0.0


def positive_recording(
    label: str,
    renders: Sequence[tuple[np.ndarray, str]],
    bed: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[peers.Phrase]]:
    """The renders one after another, 4-6 s apart, over a continuous stretch of real background
    ``bed`` at 10-20 dB SNR (the bed's power over the phrase's own span, floored at a tenth of
    the bed's mean power so a pause in the bed does not make a phrase inaudibly quiet)."""
    mean_power = _power(bed)
    spans, position = [], 0
    for samples, _ in renders:
        position += int(rng.uniform(*LEAD_S) * SAMPLE_RATE)
        spans.append((position, samples))
        position += samples.size
    total = position + int(LEAD_S[1] * SAMPLE_RATE)
    offset = int(rng.integers(0, max(1, bed.size - total)))
    stretch = bed[offset : offset + total]
    out = np.resize(stretch, total).astype(np.float32)  # repeats the bed if it is short
    phrases = []
    for start, samples in spans:
        noise = _power(out[start : start + samples.size])
        snr = float(rng.uniform(*SNR_DB))
        gain = np.sqrt(max(noise, mean_power / 10.0) * 10.0 ** (snr / 10.0) / _power(samples))
        out[start : start + samples.size] += gain * samples
        phrases.append(
            peers.Phrase(label, start / SAMPLE_RATE, (start + samples.size) / SAMPLE_RATE)
        )
    peak = float(np.max(np.abs(out)))
    if peak > 0.99:
        out *= 0.99 / peak
    return out, phrases


def build_audio(
    phrases: Sequence[str],
    real_limit: int | None,
    sentences: int,
    rates: Sequence[float],
    pitches: Sequence[float],
    seed: int,
    log: Callable[[str], None],
) -> Audio:
    """The run's negative and positive recordings (see the module docstring); ``real_limit``
    recordings per real source at most (None: all)."""
    notes = []
    negatives = []
    beds = []
    for source, paths in real_files().items():
        rng = np.random.default_rng([seed, zlib.crc32(source.encode())])
        chosen = paths if real_limit is None else list(rng.permutation(paths))[:real_limit]
        log(f"audio: decoding {len(chosen)} {source} recordings")
        pieces = read_recordings([Path(p) for p in chosen])
        if pieces:
            stream = string_together(pieces, rng)
            negatives.append((source, stream))
            beds.append(stream)
            notes.append(
                f"{source}: {len(pieces)} real recordings, {stream.size / SAMPLE_RATE / 60:.1f} min"
            )
    if not beds:
        raise RuntimeError(
            "no real recordings found: install ktuberling-data and klettres-data (make system-deps)"
        )
    rng = np.random.default_rng([seed, 1])
    words = common_words(load_lexicon(), 2000, exclude=[w for p in phrases for w in p.split()])
    log(f"audio: {sentences} Festival sentences")
    spoken = festival_sentences(sentences, words, rng)
    if spoken:
        stream = string_together(spoken, rng)
        negatives.append(("festival sentences", stream))
        notes.append(
            f"festival sentences: {len(spoken)} sentences of common words (not the phrases' "
            f"words) by {', '.join(SENTENCE_VOICES)}, {stream.size / SAMPLE_RATE / 60:.1f} min"
        )
    bed = np.concatenate(beds)
    positives = {}
    for phrase in phrases:
        prng = np.random.default_rng([seed, zlib.crc32(phrase.encode())])
        renders = phrase_renders(phrase, rates, pitches, prng)
        log(f"audio: {len(renders)} renders of {phrase!r}")
        positives[phrase] = positive_recording(phrase, renders, bed, prng)
    return Audio(negatives, positives, notes)


# ----------------------------------------------------------------------------- scoring


def project_tracks(
    release: Path, recordings: Sequence[np.ndarray], phrases: Sequence[str]
) -> tuple[list[dict[str, peers.ScoreTrack]], dict[str, Any]]:
    """The project's smoothed keyword posteriors per recording as one score track per phrase
    (the window's end is when it has heard the window), and its shipped point (an artifact
    folder without ``operating_point.json`` runs at ``kws detect``'s defaults, as ``kws detect``
    would, and says so)."""
    from kws_assets.core.families import load_classifier
    from kws_assets.core.ship.export import read_operating_point

    point = read_operating_point(release)
    source = "operating_point.json of the release"
    if point is None:  # an artifact folder without one: what `kws detect` falls back to
        point = DetectorOperatingPoint(
            DEFAULT_THRESHOLD, DEFAULT_SMOOTHING_WINDOWS, DEFAULT_REFRACTORY_S, DEFAULT_HOP_MS
        )
        source = "none in the folder: kws detect's defaults"
    detector = StreamingDetector.at(load_classifier(release), point)
    out = []
    for samples in recordings:
        posteriors = detector.posteriors(samples, SAMPLE_RATE)
        smoothed = smooth_posteriors(posteriors.probs, detector.smoothing_windows)
        ends = posteriors.start_s + posteriors.window_s
        out.append(
            {
                phrase: peers.ScoreTrack(ends, smoothed[:, posteriors.labels.index(phrase)])
                for phrase in phrases
                if phrase in posteriors.labels
            }
        )
    return out, {**point.as_dict(), "operating_point": source}


@dataclass(frozen=True)
class SystemResult:
    """One system on one phrase: its shipped point, its curve, and its points at the targets."""

    system: str
    phrase: str
    shipped: peers.PointCounts
    curve: DetCurve
    at_targets: dict[float, peers.PointCounts]
    settings: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "phrase": self.phrase,
            "shipped": self.shipped.as_dict(),
            "settings": self.settings,
            "at_fa_per_hour": {str(t): p.as_dict() for t, p in self.at_targets.items()},
        }


def result_of(
    system: str,
    phrase: str,
    tracks: peers.DetectorTracks,
    shipped_threshold: float,
    settings: dict[str, Any],
) -> SystemResult:
    """Counts at the shipped threshold and from the sweep (the lowest-FRR threshold whose FA/h
    is at most each target, as measured)."""
    thresholds = peers.sweep_thresholds(tracks, threshold_grid(SWEEP_STEPS), shipped_threshold)
    curve = peers.det_from_tracks(tracks, thresholds)
    at_targets = {}
    for target in TARGETS_FA_PER_HOUR:
        chosen = curve.at_fa_rate(target)
        at_targets[target] = tracks.at(chosen.threshold, LEVEL)
    return SystemResult(
        system, phrase, tracks.at(shipped_threshold, LEVEL), curve, at_targets, settings
    )


def cached_peer_tracks(
    chosen: Sequence[peers.PeerModel], audio: Audio, cache: Path | None
) -> tuple[list[dict[str, peers.ScoreTrack]], dict[str, peers.ScoreTrack]]:
    """The peers' score tracks on every negative recording and on their own phrase's positive
    recording (by model file name), from ``cache`` when this audio was scored before: the
    pretrained models do not change between runs, so a run that only retrains the project
    does not pay for them again."""
    digest = audio_digest(audio)
    digest.update("|".join(m.path.name for m in chosen).encode())
    key = digest.hexdigest()[:20]
    path = cache / f"peer-tracks-{key}.pkl" if cache is not None else None
    if path is not None and path.is_file():
        return pickle.loads(path.read_bytes())  # our own cache file
    by_name = {m: m.path.name for m in chosen}
    negatives = [
        {by_name[m]: t for m, t in peers.peer_scores(chosen, x).items()} for _, x in audio.negatives
    ]
    positives = {}
    for model in chosen:
        phrase = next(
            p for p in audio.positives if peers.phrase_key(p) == peers.phrase_key(model.phrase)
        )
        positives[by_name[model]] = peers.peer_scores([model], audio.positives[phrase][0])[model]
    if path is not None:
        path.write_bytes(pickle.dumps((negatives, positives)))
    return negatives, positives


def audio_digest(audio: Audio) -> Any:  # a hashlib object
    """A running SHA-256 of the audio's samples (negatives, then positives): what the score
    caches are keyed by."""
    digest = hashlib.sha256()
    for _, x in audio.negatives:
        digest.update(x.tobytes())
    for x, _ in audio.positives.values():
        digest.update(x.tobytes())
    return digest


def cached_project_tracks(
    release: Path,
    recordings: Sequence[np.ndarray],
    phrases: Sequence[str],
    audio: Audio,
    cache: Path | None,
) -> tuple[list[dict[str, peers.ScoreTrack]], dict[str, Any]]:
    """:func:`project_tracks`, from ``cache`` when this release (its files' bytes) scored this
    audio before."""
    digest = audio_digest(audio)
    for path in sorted(p for p in release.rglob("*") if p.is_file()):
        digest.update(path.relative_to(release).as_posix().encode() + path.read_bytes())
    path = cache / f"project-tracks-{digest.hexdigest()[:20]}.pkl" if cache is not None else None
    if path is not None and path.is_file():
        return pickle.loads(path.read_bytes())  # our own cache file
    found = project_tracks(release, recordings, phrases)
    if path is not None:
        path.write_bytes(pickle.dumps(found))
    return found


def compare(
    release: Path | None,
    audio: Audio,
    log: Callable[[str], None],
    cache: Path | None = None,
    systems: Sequence[str] = (PROJECT, peers.OPENWAKEWORD, peers.MICROWAKEWORD),
) -> tuple[list[SystemResult], dict[str, float]]:
    """Every system of ``systems`` on every phrase of ``audio``; and the seconds each system's
    scoring took (near zero for tracks ``cache`` held)."""
    phrases = list(audio.positives)
    recordings = [x for _, x in audio.negatives] + [x for x, _ in audio.positives.values()]
    n_neg = len(audio.negatives)
    results, seconds = [], {}
    if release is not None and PROJECT in systems:
        log(f"score: {PROJECT} ({release})")
        started = time.perf_counter()
        per_recording, point = cached_project_tracks(release, recordings, phrases, audio, cache)
        seconds[PROJECT] = time.perf_counter() - started
        for phrase in phrases:
            if phrase not in per_recording[0]:
                continue
            tracks = peers.DetectorTracks(
                [r[phrase] for r in per_recording[:n_neg]],
                audio.negative_seconds,
                [
                    (
                        per_recording[n_neg + phrases.index(phrase)][phrase],
                        audio.positives[phrase][1],
                    )
                ],
                float(point["refractory_s"]),
            )
            results.append(result_of(PROJECT, phrase, tracks, float(point["threshold"]), point))
    models = [m for p in phrases for m in peers.peers_for(p)]
    for system in (peers.OPENWAKEWORD, peers.MICROWAKEWORD):
        chosen = [m for m in models if m.system == system and system in systems]
        if not chosen:
            continue
        log(f"score: {system} ({', '.join(m.phrase for m in chosen)})")
        started = time.perf_counter()
        negative_tracks, positive_tracks = cached_peer_tracks(chosen, audio, cache)
        for model in chosen:
            phrase = next(
                p for p in phrases if peers.phrase_key(p) == peers.phrase_key(model.phrase)
            )
            placed = audio.positives[phrase][1]
            strict = system == peers.MICROWAKEWORD
            tracks = peers.DetectorTracks(
                [t[model.path.name] for t in negative_tracks],
                audio.negative_seconds,
                [(positive_tracks[model.path.name], placed)],
                peers.PEER_REFRACTORY_S,
                strict=strict,
            )
            settings = {
                "threshold": model.threshold,
                "sliding_window": model.sliding_window,
                "refractory_s": peers.PEER_REFRACTORY_S,
                "fires_when": "score > threshold" if strict else "score >= threshold",
                "model": model.path.name,
            }
            results.append(result_of(system, phrase, tracks, model.threshold, settings))
        seconds[system] = time.perf_counter() - started
    return results, seconds


# ----------------------------------------------------------------------------- report


def _pct(value: float) -> str:
    return f"{value:.1%}"


def _frr(point: peers.PointCounts) -> str:
    ci = clopper_pearson(point.misses, point.positives, LEVEL)
    return f"{_pct(point.frr)} ({_pct(ci.lower)}-{_pct(ci.upper)})"


def _fa(point: peers.PointCounts) -> str:
    ci = rate_interval(point.false_accepts, point.negative_hours, LEVEL)
    return f"{point.fa_per_hour:.2f} ({ci.lower:.2f}-{ci.upper:.2f})"


def render_markdown(report: dict[str, Any], results: Sequence[SystemResult]) -> str:
    """The report a person reads: the setup, then per phrase one row per system."""
    lines = [
        "# The shoot-out: kws_assets beside openWakeWord and microWakeWord",
        "",
        f"Generated by `make compare` (`python -m bench.compare`) on {report['when']}; "
        f"machine: {report['machine']}.",
        "",
        "## Audio",
        "",
        f"- negatives: {report['negative_hours']:.3f} h (every detection is a false accept):",
        *[f"  - {note}" for note in report["notes"]],
        f"- positives: {report['positives_note']}",
        "",
        "Each system runs in its own runtime at its own shipped operating point: kws_assets at "
        "the `operating_point.json` of its release (threshold, smoothing, refractory chosen by "
        "its evaluation), openWakeWord at 0.5, microWakeWord at its manifest's "
        "`probability_cutoff` over `sliding_window_size` scores; the peers with a 2-s "
        "refractory. FRR at x FA/h: the lowest-FRR threshold of a sweep whose measured FA/h is "
        "at most x (chosen on this audio: optimistic for every system alike). Intervals: exact, "
        f"two-sided {LEVEL:.0%} (Clopper-Pearson for FRR, Garwood for FA/h); with "
        f"{report['negative_hours']:.2f} h of negatives, 0 false accepts still allows up to "
        f"{rate_interval(0, report['negative_hours'], LEVEL).upper:.2f} FA/h.",
        "",
    ]
    if report.get("training"):
        lines += [f"kws_assets model: {report['training']}", ""]
    if report.get("note"):
        lines += [f"Note: {report['note']}", ""]
    header = (
        "| system | FRR at shipped point | FA/h at shipped point | "
        + " | ".join(f"FRR at ≤{t:g} FA/h" for t in TARGETS_FA_PER_HOUR)
        + " |"
    )
    for phrase in report["phrases"]:
        rows = [r for r in results if r.phrase == phrase]
        lines += [f"## {phrase!r}", "", header, "|" + "---|" * (3 + len(TARGETS_FA_PER_HOUR))]
        for r in rows:
            targets = " | ".join(
                f"{_frr(r.at_targets[t])} at {r.at_targets[t].fa_per_hour:.2f}"
                for t in TARGETS_FA_PER_HOUR
            )
            name = r.system
            if "kws detect" in str(r.settings.get("operating_point", "")):
                name += " (no shipped point: kws detect's defaults)"
            lines.append(f"| {name} | {_frr(r.shipped)} | {_fa(r.shipped)} | {targets} |")
        lines += ["", f"![DET curves, {phrase}]({report['plots'][phrase]})", ""]
    lines += [
        "## Scoring time",
        "",
        "Wall seconds of this run; tracks the work folder had cached from an earlier run on the "
        "same audio (and release) cost next to nothing here.",
        "",
        *[f"- {k}: {v:.1f} s" for k, v in report["scoring_seconds"].items()],
        "",
    ]
    return "\n".join(lines)


def write_report(
    out: Path,
    name: str,
    audio: Audio,
    results: Sequence[SystemResult],
    extra: dict[str, Any],
) -> tuple[Path, Path]:
    """``<name>.json``, ``<name>.md`` and a DET plot per phrase under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    plot_files = {}
    for phrase in audio.positives:
        rows = [r for r in results if r.phrase == phrase]
        png = plots.det_curves_png(
            {r.system: r.curve for r in rows},
            {r.system: r.shipped for r in rows},
            f"{phrase!r}: real negatives, held-out voices",
        )
        file = f"{name}-{phrase.replace(' ', '_')}.png"
        (out / file).write_bytes(png)
        plot_files[phrase] = file
    counts = {p: len(placed) for p, (_, placed) in audio.positives.items()}
    report = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load average "
        f"{'/'.join(f'{x:.1f}' for x in os.getloadavg())}",
        "phrases": list(audio.positives),
        "negative_hours": audio.negative_seconds / 3600.0,
        "notes": audio.notes,
        "positives": counts,
        "positives_note": (
            f"{', '.join(f'{p!r} {n}' for p, n in counts.items())}: Festival "
            f"{', '.join(POSITIVE_VOICES)} (held out by every system) at rates x pitches, "
            "each also as a perturbed speaker (formant warp, pitch, tempo), in real background "
            f"(the real recordings) at {SNR_DB[0]:g}-{SNR_DB[1]:g} dB SNR"
        ),
        "plots": plot_files,
        "results": [r.as_dict() for r in results],
        **extra,
    }
    json_path, md_path = out / f"{name}.json", out / f"{name}.md"
    json_path.write_text(json.dumps(report, indent=1))
    md_path.write_text(render_markdown(report, results))
    return json_path, md_path


# ----------------------------------------------------------------------------- entry point


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__)
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--name", default=REPORT_NAME, help="report file names")
    parser.add_argument(
        "--release", type=Path, default=None, help="score this release folder (no training)"
    )
    parser.add_argument(
        "--peers-only", action="store_true", help="score the pretrained models only"
    )
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="the nano pipeline on the config's first phrase, and --small-audio (a smoke run)",
    )
    parser.add_argument(
        "--small-audio",
        action="store_true",
        help="a few minutes of audio: 40 real recordings per source, 4 sentences, 4 renders",
    )
    parser.add_argument(
        "--systems", default="", help=f"comma-separated subset of {','.join(SYSTEMS)}"
    )
    parser.add_argument("--note", default="", help="a line the report states (how it was run)")
    parser.add_argument("--real-per-source", type=int, default=None)
    parser.add_argument("--sentences", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def run(args: argparse.Namespace, log: Callable[[str], None]) -> tuple[Path, Path]:
    """Train (unless ``--release`` or ``--peers-only``), build the audio, score, report."""
    started = time.perf_counter()
    args.workdir.mkdir(parents=True, exist_ok=True)
    config = effective_config(args.config, args.workdir, args.tiny)
    phrases = [str(k) for k in json.loads(config.read_text())["keywords"]]
    release = args.release
    training = ""
    if release is None and not args.peers_only:
        train_started = time.perf_counter()
        release = train_release(config, args.workdir, log)
        training = f"trained in {time.perf_counter() - train_started:.0f} s; release {release}"
    elif release is not None:
        training = f"release {release} (not retrained)"
    real_limit = args.real_per_source if args.real_per_source is not None else None
    rates, pitches, sentences = RATES, PITCHES, args.sentences
    if args.tiny or args.small_audio:
        real_limit = real_limit or SMALL_REAL_PER_SOURCE
        rates, pitches, sentences = (1.0,), (1.0, 1.2), min(sentences, 4)
    audio_started = time.perf_counter()
    recipe = json.dumps([phrases, real_limit, sentences, rates, pitches, args.seed, AUDIO_RECIPE])
    cached = args.workdir / f"audio-{hashlib.sha256(recipe.encode()).hexdigest()[:20]}.pkl"
    if cached.is_file():
        audio = pickle.loads(cached.read_bytes())  # our own cache file
        log(f"audio: {cached} (built before from the same recipe)")
    else:
        audio = build_audio(phrases, real_limit, sentences, rates, pitches, args.seed, log)
        cached.write_bytes(pickle.dumps(audio))
    audio_seconds = time.perf_counter() - audio_started
    systems = args.systems.split(",") if args.systems else list(SYSTEMS)
    results, scoring = compare(release, audio, log, cache=args.workdir, systems=systems)
    extra = {
        "config": str(args.config),
        "config_sha256": hashlib.sha256(config.read_bytes()).hexdigest()[:16],
        "tiny": bool(args.tiny),
        "training": training,
        "note": args.note,
        "audio_seconds": round(audio_seconds, 1),
        "scoring_seconds": {k: round(v, 1) for k, v in scoring.items()},
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    return write_report(args.out, args.name, audio, results, extra)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    json_path, md_path = run(args, lambda msg: print(msg, flush=True))
    print(f"wrote {md_path} and {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
