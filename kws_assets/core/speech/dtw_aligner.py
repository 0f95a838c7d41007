"""Forced alignment without an acoustic model, for any language espeak-ng speaks: TTS + DTW.

The transcript is spoken by espeak-ng with the language's voice; espeak's word events say where
each word starts in that rendering (word ends come from where its sound stops before the next
word).  Both the rendering (the *reference*) and the recording (the *query*) become MFCC frames
(10 ms hop, with deltas, cepstral mean and variance normalised per utterance), and dynamic time
warping finds the cheapest monotonic frame-to-frame mapping inside a Sakoe-Chiba band around the
diagonal.  Word boundaries of the reference are mapped through that path into the recording.

Confidence of a word (0-1) is the product of two scores along its stretch of the path:

* *match*: for every path cell, how the matched frames' distance ranks among the distances of the
  same query frame to other reference frames and of the same reference frame to other query
  frames (the fraction that are farther away); 0.5 is what unrelated audio scores, so the mean is
  rescaled to map 0.5 -> 0 and 1 -> 1;
* *warp*: how far the word's duration ratio (recording / reference) strays from the utterance's
  overall tempo, ``min(r, 1/r)`` of the relative ratio: a wrong word gets squeezed or stretched.

An utterance is refused (``ok=False``) when its words' mean confidence is below
``min_utterance_confidence`` (noise, another sentence), when the recording's speech is more than
``max_tempo_ratio`` times faster or slower than the rendering, or when espeak-ng spoke a word
without a word event of its own (it merged it with a neighbour, e.g. French ``qu'est-ce que``):
such words cannot be placed and are listed in ``oov_words``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torchaudio

from kws_assets.core.audio.blas_threads import single_threaded_blas
from kws_assets.core.audio.io import resample
from kws_assets.core.speech import tts
from kws_assets.core.speech.alignment import AlignmentResult, WordSpan
from kws_assets.core.speech.languages import LanguageNotSpokenError, alignment_voice
from kws_assets.core.speech.text_normalize import normalize_words

# --- features ---------------------------------------------------------------------------------
FEATURE_SAMPLE_RATE = 16000
HOP_MS = 10.0  # DTW resolution; finer than the 20 ms hop of the KWS features
WINDOW_MS = 25.0
N_MELS = 40
N_MFCC = 13
F_MIN_HZ = 20.0
F_MAX_HZ = 7600.0
CMVN_EPSILON = 1e-8
POWER_FLOOR = 1e-10  # mel power floor before the log (torchaudio's amin)
TOP_DB = 80.0  # mel dB values are clamped to this far below the utterance's maximum
MS_PER_S = 1000.0

# --- reference rendering ----------------------------------------------------------------------
ALIGNMENT_RATE_WPM = 175  # espeak-ng's default speaking rate
REFERENCE_PAD_S = 0.3  # low-level noise around the rendering, to absorb the recording's pauses
REFERENCE_PAD_DBFS = -60.0
REFERENCE_PAD_SEED = 1234
# A reference frame is sound when its RMS is within this many dB of the loudest frame; word
# starts and ends are moved onto sound inside the span espeak's events give them.
WORD_SOUND_DB = -35.0

# --- warping ----------------------------------------------------------------------------------
BAND_FRACTION = 0.3  # Sakoe-Chiba radius as a fraction of the longer sequence ...
MIN_BAND_S = 0.5  # ... but at least this many seconds ...
MAX_BAND_S = 5.0  # ... and at most this many (memory is n_reference x band int8)
MAX_TEMPO_RATIO = 3.0
DIAGONAL_WEIGHT = 2.0  # symmetric step pattern: a diagonal step costs as much as two others
BAND_COST_CHUNK_CELLS = 1 << 18  # reference x query distances computed per batch (2 MiB)
_MOVE_DIAGONAL, _MOVE_UP, _MOVE_LEFT = 0, 1, 2

# --- confidence -------------------------------------------------------------------------------
RANK_SAMPLE_FRAMES = 256  # frames each path cell is ranked against, per side
CHANCE_MATCH = 0.5  # the rank score of unrelated frames
MIN_UTTERANCE_CONFIDENCE = 0.3
SILENT_PEAK = 1.0 / 32768.0  # below one 16-bit step: digital silence
MIN_AUDIO_S = 0.1

# --- the recording's speech region --------------------------------------------------------------
# Long pauses before or after the speech would push the path outside the band, so the recording
# is cut to its loud region plus a margin before warping.  A frame is loud when its level (50 ms
# moving average) is above floor + LOUD_FRACTION * (peak - floor); floor and peak are percentiles
# of the frame levels, the floor at most DYNAMIC_RANGE_DB below the peak (digital silence).
TRIM_MARGIN_S = 0.7
LEVEL_SMOOTHING_FRAMES = 5
FLOOR_PERCENTILE = 10.0
PEAK_PERCENTILE = 99.0
LOUD_FRACTION = 0.5
MIN_CONTRAST_DB = 6.0  # less between floor and peak: no telling speech from noise, no cut
DYNAMIC_RANGE_DB = 60.0


class FrameFeatures:
    """MFCC + delta frames with per-utterance cepstral mean and variance normalisation.

    Audio is analysed at its own sample rate (no resampling): two instances with the same
    ``f_max_hz`` put their mel bands at the same frequencies, so their frames compare; their
    hops differ by at most half a sample (``hop_s`` says how long a frame step is).  The numbers
    are torchaudio's ``MFCC`` (centred frames, periodic Hann window, power spectrum, HTK mel
    filters, dB with an 80 dB range, orthonormal DCT-II), computed in numpy with torchaudio's
    filter bank and DCT matrices: for single utterances that is faster than the torch module.
    """

    def __init__(
        self,
        sample_rate: int = FEATURE_SAMPLE_RATE,
        f_max_hz: float = F_MAX_HZ,
        hop_ms: float = HOP_MS,
        window_ms: float = WINDOW_MS,
        n_mels: int = N_MELS,
        n_mfcc: int = N_MFCC,
    ) -> None:
        self.sample_rate = int(sample_rate)
        self.hop = max(1, round(sample_rate * hop_ms / MS_PER_S))
        self.window = max(2, round(sample_rate * window_ms / MS_PER_S))
        self.hop_s = self.hop / float(sample_rate)
        self._hann = np.hanning(self.window + 1)[:-1]  # periodic, as torch.hann_window
        self._mel_filters = (
            torchaudio.functional.melscale_fbanks(
                self.window // 2 + 1,
                F_MIN_HZ,
                min(f_max_hz, self.sample_rate / 2.0),
                n_mels,
                self.sample_rate,
            )
            .numpy()
            .astype(np.float64)
        )
        self._dct = (
            torchaudio.functional.create_dct(n_mfcc, n_mels, "ortho").numpy().astype(np.float64)
        )

    def mfcc(self, samples: np.ndarray) -> np.ndarray:
        """``[n_frames, n_mfcc]``: frame ``k`` is centred at sample ``k * hop``."""
        x = np.asarray(samples, dtype=np.float64)
        half = self.window // 2
        padded = np.pad(x, half, mode="reflect") if len(x) > half else np.pad(x, half)
        frames = np.lib.stride_tricks.sliding_window_view(padded, self.window)[:: self.hop]
        power = np.abs(np.fft.rfft(frames * self._hann, axis=1)) ** 2
        mel_db = 10.0 * np.log10(np.maximum(power @ self._mel_filters, POWER_FLOOR))
        mel_db = np.maximum(mel_db, mel_db.max() - TOP_DB)
        return mel_db @ self._dct

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        """``[n_frames, 2 * n_mfcc]`` MFCC and deltas, each coefficient normalised to zero mean
        and unit variance over the utterance."""
        mfcc = self.mfcc(samples)
        deltas = np.gradient(mfcc, axis=0) if len(mfcc) > 1 else np.zeros_like(mfcc)
        frames = np.hstack([mfcc, deltas])
        return (frames - frames.mean(axis=0)) / (frames.std(axis=0) + CMVN_EPSILON)


# ------------------------------------------------------------------------------------ DTW


@dataclass(frozen=True)
class WarpingPath:
    """A monotonic path from (0, 0) to (n_reference - 1, n_query - 1): parallel frame indices,
    the distance of each matched pair, and the step-weighted total cost over (n + m)."""

    reference: np.ndarray
    query: np.ndarray
    local_costs: np.ndarray
    normalized_cost: float

    def first_query_frame(self) -> np.ndarray:
        """For each reference frame, the first query frame the path matches it with."""
        n = int(self.reference[-1]) + 1
        first = np.full(n, -1, dtype=np.int64)
        # The path is sorted by reference frame; the first occurrence of each wins.
        rows, index = np.unique(self.reference, return_index=True)
        first[rows] = self.query[index]
        return first


def band_limits(n_reference: int, n_query: int, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Query-frame range ``[lo[i], hi[i]]`` of each reference frame ``i``: a Sakoe-Chiba band of
    ``radius`` frames around the straight line from (0, 0) to the far corner.  The radius grows
    to the line's slope where needed so that consecutive rows stay connected."""
    slope = (n_query - 1) / max(n_reference - 1, 1)
    radius = max(float(radius), slope + 1.0, 1.0)
    centre = np.arange(n_reference) * slope
    lo = np.clip(np.floor(centre - radius), 0, n_query - 1).astype(np.int64)
    hi = np.clip(np.ceil(centre + radius), 0, n_query - 1).astype(np.int64)
    lo[0], hi[-1] = 0, n_query - 1
    return lo, hi


def dtw(reference: np.ndarray, query: np.ndarray, radius: float) -> WarpingPath:
    """Banded DTW of two feature sequences (rows = frames), Euclidean local distance, symmetric
    step pattern (diagonal weight 2).

    Row by row over the reference, vectorised along the query: with ``A[j]`` the best cost of
    entering cell ``j`` from the previous row, the row is ``D[j] = min(A[j], D[j-1] + c[j])``,
    i.e. ``D = S + cummin(A - S)`` with ``S`` the running sum of ``c`` — one prefix sum and one
    running minimum per row, no Python loop over cells.  Previous-row values are read through
    slices (the band's left edge moves right by ``shift`` frames per row).  Only the moves are kept
    (int8) for the backtrack, so memory is ``n_reference x band``.
    """
    n, m = len(reference), len(query)
    if n == 0 or m == 0:
        raise ValueError("dtw needs two non-empty sequences")
    lo, hi = band_limits(n, m, radius)
    counts = hi - lo + 1
    width = int(counts.max())
    shifts = np.diff(lo, prepend=0)
    moves = np.full((n, width), _MOVE_LEFT, dtype=np.int8)
    # B rows span about width + B * slope query frames: the largest B with B x span <= the budget.
    slope = m / n
    chunk_rows = max(
        1, int((math.sqrt(width**2 + 4.0 * slope * BAND_COST_CHUNK_CELLS) - width) / (2.0 * slope))
    )
    # previous[1 + k] = D[i - 1, lo[i - 1] + k]; inf before and after the band.
    previous = np.full(2 * width + 2, np.inf)
    current = np.full(2 * width + 2, np.inf)
    for first_row in range(0, n, chunk_rows):
        block = band_costs(reference, query, lo, width, first_row, min(first_row + chunk_rows, n))
        for offset, costs in enumerate(block):
            i = first_row + offset
            count, shift = int(counts[i]), int(shifts[i])
            cost = costs[:count]
            if i == 0:
                enter = np.full(count, np.inf)
                enter[0] = cost[0]
                move = np.zeros(count, dtype=np.int8)
            else:
                up = previous[1 + shift : 1 + shift + count] + cost
                diagonal = previous[shift : shift + count] + DIAGONAL_WEIGHT * cost
                enter = np.minimum(up, diagonal)
                move = (diagonal > up).view(np.int8)  # _MOVE_DIAGONAL = 0, _MOVE_UP = 1
            running = np.cumsum(cost)
            row = running + np.minimum.accumulate(enter - running)
            # Compare the two candidates directly: row == enter up to rounding where enter won.
            move[1:][row[:-1] + cost[1:] < enter[1:]] = _MOVE_LEFT
            moves[i, :count] = move
            current[1 : 1 + count] = row
            current[1 + count :] = np.inf
            previous, current = current, previous
    total = float(previous[1 + m - 1 - lo[n - 1]])
    ref_path, query_path = _backtrack(moves, lo, n - 1, m - 1)
    local = np.linalg.norm(reference[ref_path] - query[query_path], axis=1)
    return WarpingPath(ref_path, query_path, local, total / (n + m))


def band_costs(
    reference: np.ndarray,
    query: np.ndarray,
    lo: np.ndarray,
    width: int,
    first_row: int,
    end_row: int,
) -> np.ndarray:
    """Euclidean distances of reference rows ``[first_row, end_row)`` to the ``width`` query frames
    from each row's band start ``lo``: ``[rows, width]`` (cells past a row's band are distances to
    the last query frame and are never read).  One matrix product over the query frames the rows'
    bands span (``|r|^2 + |q|^2 - 2 r.q``), then a gather of each row's band."""
    start = int(lo[first_row])
    stop = min(len(query), int(lo[end_row - 1]) + width)
    rows = reference[first_row:end_row]
    span = query[start:stop]
    squared = (
        (rows * rows).sum(axis=1)[:, None]
        + (span * span).sum(axis=1)[None, :]
        - 2.0 * (rows @ span.T)
    )
    cols = np.minimum(lo[first_row:end_row, None] + np.arange(width), stop - 1) - start
    band = np.take_along_axis(squared, cols, axis=1)
    return np.sqrt(np.maximum(band, 0.0))


def _backtrack(moves: np.ndarray, lo: np.ndarray, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
    ref_path, query_path = [i], [j]
    while i > 0 or j > 0:
        move = moves[i, j - lo[i]]
        if move == _MOVE_DIAGONAL:
            i, j = i - 1, j - 1
        elif move == _MOVE_UP:
            i -= 1
        else:
            j -= 1
        ref_path.append(i)
        query_path.append(j)
    return np.array(ref_path[::-1], dtype=np.int64), np.array(query_path[::-1], dtype=np.int64)


# ------------------------------------------------------------------------------ reference


@dataclass(frozen=True)
class ReferenceWord:
    """A word of the rendering: its frames ``[start_frame, end_frame)``."""

    word: str
    start_frame: int
    end_frame: int


@dataclass(frozen=True)
class Reference:
    """espeak-ng's rendering of a transcript at ``sample_rate``, trimmed to its sound and padded
    with ``pad_frames`` of low-level noise on both sides, plus the frames of each word.
    ``unplaced`` lists the words espeak spoke without a word event of their own."""

    samples: np.ndarray
    sample_rate: int
    words: list[ReferenceWord]
    unplaced: list[str]
    pad_frames: int
    voice: str


def synthesis_text(words: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """The words joined by spaces, and each word's ``[start, end)`` character span in it."""
    spans, position = [], 0
    for word in words:
        spans.append((position, position + len(word)))
        position += len(word) + 1
    return " ".join(words), spans


def _token_of(char_start: int, spans: list[tuple[int, int]]) -> int | None:
    for k, (start, end) in enumerate(spans):
        if start <= char_start < end:
            return k
    return None


def _frame_rms(samples: np.ndarray, hop: int) -> np.ndarray:
    n_frames = math.ceil(len(samples) / hop)
    padded = np.zeros(n_frames * hop, dtype=np.float64)
    padded[: len(samples)] = samples
    return np.sqrt(np.mean(padded.reshape(n_frames, hop) ** 2, axis=1))


def speech_bounds(samples: np.ndarray, hop: int) -> tuple[int, int]:
    """``[first, last)`` hop-sized frames of the recording's loud region (the whole recording
    when the level never rises clearly above its floor)."""
    rms = _frame_rms(samples, hop)
    if rms.size == 0:
        return 0, 0
    level = 20.0 * np.log10(np.maximum(rms, SILENT_PEAK * 1e-3))
    if level.size >= LEVEL_SMOOTHING_FRAMES:
        half = LEVEL_SMOOTHING_FRAMES // 2
        padded = np.pad(level, (half, LEVEL_SMOOTHING_FRAMES - 1 - half), mode="edge")
        kernel = np.ones(LEVEL_SMOOTHING_FRAMES) / LEVEL_SMOOTHING_FRAMES
        level = np.convolve(padded, kernel, mode="valid")
    peak = float(np.percentile(level, PEAK_PERCENTILE))
    floor = max(float(np.percentile(level, FLOOR_PERCENTILE)), peak - DYNAMIC_RANGE_DB)
    if peak - floor < MIN_CONTRAST_DB:
        return 0, len(level)
    loud = np.flatnonzero(level > floor + LOUD_FRACTION * (peak - floor))
    return int(loud[0]), int(loud[-1]) + 1


def render_reference(
    words: list[str], voice: str, rate: int, features: FrameFeatures, pad_s: float = REFERENCE_PAD_S
) -> Reference:
    """Speak ``words`` with ``voice`` and locate every word in frames of ``features`` (best at
    espeak-ng's native rate, which saves a resampling).

    A word starts at its first espeak word event (several events may fall in one word, e.g. a
    number) and ends where sound stops before the next word's event; both are moved onto sound
    within that span.  Raises ``tts.TtsError`` when espeak-ng cannot speak the text.
    """
    text, spans = synthesis_text(words)
    synthesis = tts.synthesize(text, voice=voice, rate=rate)
    samples = synthesis.samples
    if synthesis.sample_rate != features.sample_rate:
        samples = resample(samples, synthesis.sample_rate, features.sample_rate)
    hop, hop_s = features.hop, features.hop_s
    starts: list[float | None] = [None] * len(words)
    for event in synthesis.words:
        k = _token_of(event.char_start, spans)
        if k is None:
            continue
        earliest = starts[k]
        if earliest is None or event.start_s < earliest:
            starts[k] = event.start_s
    unplaced = [w for w, s in zip(words, starts, strict=True) if s is None]

    rms = _frame_rms(samples, hop)
    sound = rms >= float(rms.max()) * 10.0 ** (WORD_SOUND_DB / 20.0) if rms.size else rms > 0
    loud = np.flatnonzero(sound)
    if loud.size == 0:
        raise tts.TtsError(f"voice {voice!r} rendered {text!r} as silence")
    first, last = int(loud[0]), int(loud[-1])
    n_frames = len(rms)
    placed = [(k, round(s / hop_s)) for k, s in enumerate(starts) if s is not None]
    pad_frames = round(pad_s / hop_s)
    word_frames: list[ReferenceWord] = []
    previous_end = 0
    for index, (k, event_frame) in enumerate(placed):
        next_frame = placed[index + 1][1] if index + 1 < len(placed) else n_frames
        event_frame = max(event_frame, previous_end)
        next_frame = max(next_frame, event_frame + 1)
        inside = np.flatnonzero(sound[event_frame:next_frame])
        start = event_frame + int(inside[0]) if inside.size else event_frame
        end = event_frame + int(inside[-1]) + 1 if inside.size else next_frame
        start = min(max(start, first), last)
        end = min(max(end, start + 1), last + 1)
        previous_end = end
        word_frames.append(
            ReferenceWord(words[k], start - first + pad_frames, end - first + pad_frames)
        )

    rng = np.random.default_rng(REFERENCE_PAD_SEED)
    level = 10.0 ** (REFERENCE_PAD_DBFS / 20.0)
    pad = (rng.standard_normal(pad_frames * hop) * level).astype(np.float32)
    spoken = samples[first * hop : (last + 1) * hop]
    return Reference(
        np.concatenate([pad, spoken, pad[::-1]]),
        features.sample_rate,
        word_frames,
        unplaced,
        pad_frames,
        voice,
    )


# -------------------------------------------------------------------------------- aligner


def _strided(frames: np.ndarray, count: int) -> np.ndarray:
    step = max(1, math.ceil(len(frames) / count))
    return frames[::step]


def _cell_match_scores(reference: np.ndarray, query: np.ndarray, path: WarpingPath) -> np.ndarray:
    """Per path cell: the fraction of other frames farther than the matched pair (both ways)."""
    ref_sample = _strided(reference, RANK_SAMPLE_FRAMES)
    query_sample = _strided(query, RANK_SAMPLE_FRAMES)
    local = path.local_costs[:, None]
    query_frames = query[path.query]
    reference_frames = reference[path.reference]
    to_references = np.sqrt(
        np.maximum(
            (query_frames**2).sum(1)[:, None]
            + (ref_sample**2).sum(1)[None, :]
            - 2.0 * query_frames @ ref_sample.T,
            0.0,
        )
    )
    to_queries = np.sqrt(
        np.maximum(
            (reference_frames**2).sum(1)[:, None]
            + (query_sample**2).sum(1)[None, :]
            - 2.0 * reference_frames @ query_sample.T,
            0.0,
        )
    )
    closer = ((to_references < local).mean(axis=1) + (to_queries < local).mean(axis=1)) / 2.0
    return 1.0 - closer


class DtwAligner:
    """Aligns recordings in one language against espeak-ng's rendering of their transcripts.

    Needs no acoustic model: any language with an espeak-ng voice works.  ``voice`` defaults to
    :func:`languages.alignment_voice` (overridable per language through ``voice_overrides``).
    Stateless apart from the MFCC transform, so one instance may serve many threads.
    """

    name = "tts_dtw"

    def __init__(
        self,
        language: str,
        voice: str | None = None,
        *,
        voice_overrides: dict[str, str] | None = None,
        rate: int = ALIGNMENT_RATE_WPM,
        band_fraction: float = BAND_FRACTION,
        min_band_s: float = MIN_BAND_S,
        max_band_s: float = MAX_BAND_S,
        min_utterance_confidence: float = MIN_UTTERANCE_CONFIDENCE,
        max_tempo_ratio: float = MAX_TEMPO_RATIO,
        trim_margin_s: float = TRIM_MARGIN_S,
    ) -> None:
        if not 0 < band_fraction <= 1:
            raise ValueError("band_fraction must be in (0, 1]")
        if not 0 < min_band_s <= max_band_s:
            raise ValueError("need 0 < min_band_s <= max_band_s")
        if max_tempo_ratio <= 1:
            raise ValueError("max_tempo_ratio must exceed 1")
        self.language = language
        self.voice = voice or alignment_voice(language, voice_overrides)
        self.rate = int(rate)
        self.band_fraction = float(band_fraction)
        self.min_band_s = float(min_band_s)
        self.max_band_s = float(max_band_s)
        self.min_utterance_confidence = float(min_utterance_confidence)
        self.max_tempo_ratio = float(max_tempo_ratio)
        self.trim_margin_s = float(trim_margin_s)
        self._features: dict[tuple[int, float], FrameFeatures] = {}

    def features_at(self, sample_rate: int, f_max_hz: float) -> FrameFeatures:
        """The (cached) frame features for audio at ``sample_rate``."""
        key = (int(sample_rate), float(f_max_hz))
        if key not in self._features:
            self._features[key] = FrameFeatures(sample_rate, f_max_hz)
        return self._features[key]

    def normalize(self, transcript: str) -> list[str]:
        """The words of a transcript this aligner places."""
        return normalize_words(transcript, self.language)

    def keyword_form(self, keyword: str) -> str:
        """A configured keyword the way aligned words spell it."""
        return " ".join(self.normalize(keyword))

    def band_radius(self, n_reference: int, n_query: int, hop_s: float) -> float:
        """Sakoe-Chiba radius in frames for sequences of these lengths."""
        radius_s = min(
            max(self.band_fraction * max(n_reference, n_query) * hop_s, self.min_band_s),
            self.max_band_s,
        )
        return radius_s / hop_s

    def align(self, samples: np.ndarray, sample_rate: int, transcript: str) -> AlignmentResult:
        """Align ``transcript`` to mono float audio.  Never raises for bad audio or text:
        problems come back as ``ok=False`` with ``error`` set."""
        words = self.normalize(transcript)
        if not words:
            return AlignmentResult(ok=False, error="empty transcript")
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        problem = _audio_problem(x, sample_rate)
        if problem:
            return AlignmentResult(ok=False, error=problem)
        duration_s = len(x) / float(sample_rate)
        tts_rate = tts.native_sample_rate()
        f_max_hz = min(F_MAX_HZ, sample_rate / 2.0, tts_rate / 2.0)
        query_features = self.features_at(sample_rate, f_max_hz)
        try:
            reference = render_reference(
                words, self.voice, self.rate, self.features_at(tts_rate, f_max_hz)
            )
        except tts.TtsError as exc:
            return AlignmentResult(ok=False, error=f"espeak-ng ({self.voice}): {exc}")
        if reference.unplaced:
            return AlignmentResult(
                oov_words=list(dict.fromkeys(reference.unplaced)),
                ok=False,
                error="espeak-ng spoke these words without a word event of their own (merged "
                f"with a neighbour), so they cannot be placed: {reference.unplaced}",
            )
        hop, hop_s = query_features.hop, query_features.hop_s
        first, last = speech_bounds(x, hop)
        margin = round(self.trim_margin_s / hop_s)
        cut_start, cut_end = max(0, first - margin) * hop, min(len(x), (last + margin) * hop)
        with single_threaded_blas():
            ref_frames = self.features_at(tts_rate, f_max_hz)(reference.samples)
            query_frames = query_features(x[cut_start:cut_end])
            radius = self.band_radius(len(ref_frames), len(query_frames), hop_s)
            path = dtw(ref_frames, query_frames, radius)
            return self._result(
                reference,
                ref_frames,
                query_frames,
                path,
                duration_s,
                hop_s,
                cut_start / float(sample_rate),
            )

    def _result(
        self,
        reference: Reference,
        ref_frames: np.ndarray,
        query_frames: np.ndarray,
        path: WarpingPath,
        duration_s: float,
        hop_s: float,
        offset_s: float,
    ) -> AlignmentResult:
        """Word spans from the path; ``offset_s`` is where the warped part of the recording
        starts in it."""
        first_query = path.first_query_frame()
        scores = _cell_match_scores(ref_frames, query_frames, path)
        bounds = [(first_query[w.start_frame], first_query[w.end_frame]) for w in reference.words]
        speech_query = max(bounds[-1][1] - bounds[0][0], 1)
        speech_reference = reference.words[-1].end_frame - reference.words[0].start_frame
        tempo = speech_query / speech_reference
        spans = []
        for word, (start, end) in zip(reference.words, bounds, strict=True):
            cells = (path.reference >= word.start_frame) & (path.reference < word.end_frame)
            match = (float(scores[cells].mean()) - CHANCE_MATCH) / (1.0 - CHANCE_MATCH)
            ratio = (max(end - start, 1) / (word.end_frame - word.start_frame)) / tempo
            warp = min(ratio, 1.0 / ratio)
            spans.append(
                WordSpan(
                    word=word.word,
                    start_s=float(min(offset_s + start * hop_s, duration_s)),
                    end_s=float(min(offset_s + max(end, start + 1) * hop_s, duration_s)),
                    confidence=float(np.clip(match, 0.0, 1.0) * warp),
                )
            )
        mean_confidence = float(np.mean([s.confidence for s in spans]))
        error = None
        if not 1.0 / self.max_tempo_ratio <= tempo <= self.max_tempo_ratio:
            error = (
                f"recording speech is {tempo:.2f}x the rendering's length (allowed "
                f"1/{self.max_tempo_ratio:g} to {self.max_tempo_ratio:g}): "
                "not this transcript"
            )
        elif mean_confidence < self.min_utterance_confidence:
            error = (
                f"mean word confidence {mean_confidence:.2f} below "
                f"{self.min_utterance_confidence:g}: the audio does not match the transcript"
            )
        return AlignmentResult(words=spans, ok=error is None, error=error)


def _audio_problem(x: np.ndarray, sample_rate: int) -> str | None:
    if x.size == 0:
        return "empty audio"
    if sample_rate <= 0:
        return f"invalid sample rate {sample_rate}"
    if not np.all(np.isfinite(x)):
        return "audio contains NaN or infinite samples"
    if x.size / float(sample_rate) < MIN_AUDIO_S:
        return f"audio shorter than {MIN_AUDIO_S} s"
    if float(np.max(np.abs(x))) < SILENT_PEAK:
        return "audio is digital silence"
    return None


__all__ = [
    "DtwAligner",
    "FrameFeatures",
    "LanguageNotSpokenError",
    "Reference",
    "ReferenceWord",
    "WarpingPath",
    "band_costs",
    "band_limits",
    "dtw",
    "render_reference",
    "speech_bounds",
    "synthesis_text",
]
