"""The aligner interface and the choice of an aligner per language.

Two implementations of :class:`WordAligner`:

* ``pocketsphinx`` (:class:`PocketsphinxAligner`): forced alignment with the US-English acoustic
  model pocketsphinx ships — English only;
* ``tts_dtw`` (:class:`~kws_assets.core.speech.dtw_aligner.DtwAligner`): alignment against
  espeak-ng's rendering of the transcript by dynamic time warping — any language espeak-ng speaks.

:class:`AlignerChoice` picks one per utterance language from ``AlignmentSettings``: English uses
pocketsphinx, every other language TTS+DTW, and ``alignment.aligners`` overrides that per language.
Aligners are built on first use and kept (pocketsphinx loads a model).
"""

from __future__ import annotations

import threading
from typing import Protocol, cast, runtime_checkable

import numpy as np

from kws_assets.core.speech import alignment
from kws_assets.core.speech.alignment import AlignmentResult
from kws_assets.core.speech.dtw_aligner import DtwAligner
from kws_assets.core.speech.languages import is_english, lookup, normalize_language
from kws_assets.core.speech.text_normalize import normalize_text
from kws_assets.settings import AlignerKind, AlignmentSettings

POCKETSPHINX: AlignerKind = "pocketsphinx"
TTS_DTW: AlignerKind = "tts_dtw"
ALIGNER_KINDS: tuple[AlignerKind, ...] = (POCKETSPHINX, TTS_DTW)


class NoAlignerError(ValueError):
    """No aligner can serve a language (pocketsphinx asked for a non-English language, or no
    espeak-ng voice for it)."""


@runtime_checkable
class WordAligner(Protocol):
    """Places the words of a transcript in a recording."""

    @property
    def name(self) -> str:
        """The aligner kind (``AlignerKind``)."""
        ...

    @property
    def language(self) -> str: ...

    def align(self, samples: np.ndarray, sample_rate: int, transcript: str) -> AlignmentResult:
        """Word spans of ``transcript`` in mono float audio; ``ok=False`` + ``error`` on failure,
        never an exception for bad audio or text."""
        ...

    def keyword_form(self, keyword: str) -> str:
        """A configured keyword spelled the way this aligner's ``WordSpan.word`` spells it."""
        ...


class PocketsphinxAligner:
    """:class:`alignment.Aligner` behind the :class:`WordAligner` interface: the transcript is
    normalised first (numbers to English words), then pocketsphinx folds it to ASCII words."""

    name = POCKETSPHINX

    def __init__(
        self,
        language: str = "en",
        sample_rate: int = 16000,
        pad_seconds: float = 0.5,
        aligner: alignment.Aligner | None = None,
    ) -> None:
        if not is_english(language):
            raise NoAlignerError(
                f"pocketsphinx ships an English model only; cannot align "
                f"language {language!r} (use tts_dtw)"
            )
        self.language = language
        self.aligner = aligner or alignment.Aligner(
            sample_rate=sample_rate, pad_seconds=pad_seconds
        )

    def align(self, samples: np.ndarray, sample_rate: int, transcript: str) -> AlignmentResult:
        return self.aligner.align(samples, sample_rate, normalize_text(transcript, self.language))

    def keyword_form(self, keyword: str) -> str:
        return " ".join(alignment.normalize_transcript(normalize_text(keyword, self.language)))


def aligner_kind(language: str, settings: AlignmentSettings) -> AlignerKind:
    """Which aligner serves ``language``: the configured override, else pocketsphinx for English
    and TTS+DTW for everything else."""
    chosen = lookup(settings.aligners, language)
    if chosen:
        return cast("AlignerKind", chosen)  # settings validate aligners' values as AlignerKind
    return POCKETSPHINX if is_english(language) else TTS_DTW


def build_aligner(
    kind: AlignerKind, language: str, settings: AlignmentSettings, sample_rate: int = 16000
) -> WordAligner:
    """A new aligner of ``kind`` for ``language``; raises :class:`NoAlignerError` if impossible."""
    if kind == POCKETSPHINX:
        return PocketsphinxAligner(
            language, sample_rate=sample_rate, pad_seconds=settings.pad_seconds
        )
    if kind == TTS_DTW:
        dtw = settings.dtw
        try:
            return DtwAligner(
                language,
                voice_overrides=dict(dtw.voices),
                rate=dtw.rate_wpm,
                band_fraction=dtw.band_fraction,
                min_band_s=dtw.min_band_s,
                max_band_s=dtw.max_band_s,
                min_utterance_confidence=dtw.min_utterance_confidence,
                max_tempo_ratio=dtw.max_tempo_ratio,
                trim_margin_s=dtw.trim_margin_s,
            )
        except ValueError as exc:  # LanguageNotSpokenError
            raise NoAlignerError(str(exc)) from exc
    raise NoAlignerError(f"unknown aligner kind {kind!r}; choose one of {ALIGNER_KINDS}")


class AlignerChoice:
    """One aligner per language, chosen by :func:`aligner_kind` and built on first use.

    Pocketsphinx is built once and shared by every English variant (``en``, ``en-US``...).
    Thread-safe: building is serialised; the aligners themselves guard their own state.
    """

    def __init__(self, settings: AlignmentSettings, sample_rate: int = 16000) -> None:
        self.settings = settings
        self.sample_rate = int(sample_rate)
        self._built: dict[tuple[str, str], WordAligner] = {}
        self._pocketsphinx: alignment.Aligner | None = None
        self._lock = threading.Lock()

    def kind_for(self, language: str) -> AlignerKind:
        return aligner_kind(language, self.settings)

    def for_language(self, language: str) -> WordAligner:
        """The aligner for ``language``; raises :class:`NoAlignerError` when there is none."""
        kind = self.kind_for(language)
        key = (kind, normalize_language(language))
        with self._lock:
            if key not in self._built:
                if kind == POCKETSPHINX:
                    if not is_english(language):
                        raise NoAlignerError(
                            f"alignment.aligners maps {language!r} to pocketsphinx, which ships "
                            "an English model only"
                        )
                    if self._pocketsphinx is None:
                        self._pocketsphinx = alignment.Aligner(
                            sample_rate=self.sample_rate, pad_seconds=self.settings.pad_seconds
                        )
                    self._built[key] = PocketsphinxAligner(language, aligner=self._pocketsphinx)
                else:
                    self._built[key] = build_aligner(
                        kind, language, self.settings, self.sample_rate
                    )
            return self._built[key]

    __call__ = for_language


def as_word_aligner(aligner: object, language: str) -> WordAligner:
    """``aligner`` as a :class:`WordAligner` for ``language``: an :class:`AlignerChoice` picks
    one, a bare pocketsphinx :class:`alignment.Aligner` is wrapped, a WordAligner is itself."""
    if isinstance(aligner, AlignerChoice):
        return aligner.for_language(language)
    if isinstance(aligner, alignment.Aligner):
        return PocketsphinxAligner(language if is_english(language) else "en", aligner=aligner)
    if isinstance(aligner, WordAligner):
        return aligner
    raise TypeError(f"not an aligner: {type(aligner).__name__}")
