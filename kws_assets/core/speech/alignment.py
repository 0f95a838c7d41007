"""Word-level forced alignment with pocketsphinx 5 and its bundled US-English model.

The transcript is turned into a linear word graph (``Decoder.set_align_text``) and the audio is
decoded against it, which gives each word's start and end frame (100 frames per second).  Words
missing from the CMU dictionary get a pronunciation from espeak-ng (``core.tts.phonemize``),
mapped from espeak's ASCII phoneme mnemonics to the model's ARPAbet phones; a word that cannot be
pronounced this way is reported in ``oov_words`` and fails the utterance.

Robustness details that matter on synthetic speech:

* the audio is peak-normalised and a fixed, seeded low-level noise ("dither") is added before
  decoding: stretches of digital zeros (espeak pauses, the silence padding) otherwise make the
  search lose the final state and drop the last words.  If the result fails the checks below,
  decoding is retried once per further dither level (``DITHER_LEVELS_DBFS``);
* ``bestpath`` is off: the lattice best path may end in a non-final state of the word graph and
  silently skip trailing words, while the backpointer search only ends in the final state;
* a result is accepted only if every transcript word was aligned, in order, inside the unpadded
  audio; otherwise ``ok=False`` with a reason.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass, field

import numpy as np
from pocketsphinx import Decoder

from kws_assets.core.audio.io import resample
from kws_assets.core.speech import tts

# --- decoding ---------------------------------------------------------------------------------
FRAMES_PER_SECOND = 100  # pocketsphinx default frame rate (-frate)
INT16_MAX = 32767
DEFAULT_BEAM = 1e-80
DEFAULT_WORD_BEAM = 1e-60
DEFAULT_PHONE_BEAM = 1e-80
# Levels of the seeded noise floor added before decoding, relative to full scale after peak
# normalisation; the first level is tried first, the others only if that alignment fails.
DITHER_LEVELS_DBFS = (-60.0, -50.0)
NORMALISED_PEAK = 0.9  # audio peak after normalisation, before dither
DITHER_SEED = 20240611
SILENT_PEAK = 1.0 / INT16_MAX  # a peak below one 16-bit step is digital silence
MIN_INSIDE_FRACTION = 0.5  # a word must lie at least this much inside the unpadded audio
_TINY_SECONDS = 1e-9  # guards a division by a zero-length span
G2P_VOICE = "en-us"  # espeak voice used as the g2p for words missing from the dictionary

# --- transcript normalisation ----------------------------------------------------------------
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_NON_WORD = re.compile(r"[^a-z0-9']+")
_ALT_PRONUNCIATION = re.compile(r"\(\d+\)$")

# --- espeak-ng (en) phoneme mnemonics -> CMU ARPAbet -------------------------------------------
# The phones of the bundled en-us acoustic model (CMU ARPAbet without stress digits).
ARPABET_PHONES = frozenset(
    [
        "AA",
        "AE",
        "AH",
        "AO",
        "AW",
        "AY",
        "B",
        "CH",
        "D",
        "DH",
        "EH",
        "ER",
        "EY",
        "F",
        "G",
        "HH",
        "IH",
        "IY",
        "JH",
        "K",
        "L",
        "M",
        "N",
        "NG",
        "OW",
        "OY",
        "P",
        "R",
        "S",
        "SH",
        "T",
        "TH",
        "UH",
        "UW",
        "V",
        "W",
        "Y",
        "Z",
        "ZH",
    ]
)
ESPEAK_TO_ARPABET: dict[str, tuple[str, ...]] = {
    # vowels
    "@": ("AH",),
    "@2": ("AH",),
    "@5": ("AH",),
    "@-": ("AH",),
    "@#": ("AH",),
    "@L": ("AH", "L"),
    "3": ("ER",),
    "3:": ("ER",),
    "a": ("AE",),
    "a2": ("AE",),
    "aa": ("AE",),
    "a#": ("AH",),
    "a#2": ("AH",),
    "A:": ("AA",),
    "A#": ("AA",),
    "A@": ("AA", "R"),
    "A~": ("AA", "N"),
    "E": ("EH",),
    "E2": ("EH",),
    "E3": ("EH",),
    "E#": ("EH",),
    "e": ("EH",),
    "e#": ("EH",),
    "e:": ("EY",),
    "e@": ("EH", "R"),
    "eI": ("EY",),
    "I": ("IH",),
    "I2": ("IH",),
    "I#": ("IH",),
    "I2#": ("IH",),
    "IR": ("IH", "R"),
    "i": ("IY",),
    "i:": ("IY",),
    "i@": ("IY", "AH"),
    "i@3": ("IH", "R"),
    "0": ("AA",),
    "0#": ("AA",),
    "02": ("AA",),
    "O": ("AO",),
    "O:": ("AO",),
    "O2": ("AO",),
    "O@": ("AO", "R"),
    "o@": ("AO", "R"),
    "O~": ("AO", "N"),
    "o:": ("OW",),
    "oU": ("OW",),
    "oU#": ("OW",),
    "OI": ("OY",),
    "u:": ("UW",),
    "U": ("UH",),
    "U@": ("UH", "R"),
    "V": ("AH",),
    "VR": ("AH", "R"),
    "aI": ("AY",),
    "aI@": ("AY", "ER"),
    "aI3": ("AY", "ER"),
    "aU": ("AW",),
    "aU@": ("AW", "ER"),
    # consonants
    "p": ("P",),
    "b": ("B",),
    "t": ("T",),
    "t#": ("T",),
    "t2": ("T",),
    "?": ("T",),
    "d": ("D",),
    "d#": ("D",),
    "k": ("K",),
    "x": ("K",),
    "g": ("G",),
    "f": ("F",),
    "v": ("V",),
    "T": ("TH",),
    "D": ("DH",),
    "s": ("S",),
    "z": ("Z",),
    "z#": ("Z",),
    "z/2": ("Z",),
    "S": ("SH",),
    "Z": ("ZH",),
    "h": ("HH",),
    "C": ("HH",),
    "tS": ("CH",),
    "dZ": ("JH",),
    "m": ("M",),
    "n": ("N",),
    "N": ("NG",),
    "m-": ("AH", "M"),
    "n-": ("AH", "N"),
    "l": ("L",),
    "l/": ("L",),
    "l/2": ("L",),
    "l-": ("AH", "L"),
    "r": ("R",),
    "r-": ("R",),
    "r/": ("R",),
    "w": ("W",),
    "w#": ("W",),
    "j": ("Y",),
}
_STRESS_MARKS = "',%="
_IGNORED_TOKENS = frozenset({"", ";", "-", "_", "|", "||", ":", "_:", "_!", "!"})
_PHONE_SEPARATOR = "_"


class G2pError(ValueError):
    """espeak produced phonemes with no ARPAbet equivalent in :data:`ESPEAK_TO_ARPABET`."""


@dataclass(frozen=True)
class WordSpan:
    """One aligned word: seconds from the start of the audio as given (padding removed).

    ``confidence`` is pocketsphinx's word posterior (0-1).  Forced alignment scores the best
    placement of the given words, so it stays high even for a wrong transcript: it is a weak
    quality signal, not a verification that the word was spoken.
    """

    word: str
    start_s: float
    end_s: float
    confidence: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass
class AlignmentResult:
    """Outcome of aligning one utterance.  ``ok`` is True only if every word was aligned."""

    words: list[WordSpan] = field(default_factory=list)
    oov_words: list[str] = field(default_factory=list)
    g2p_words: dict[str, str] = field(default_factory=dict)  # word -> ARPAbet used
    ok: bool = False
    error: str | None = None


def normalize_transcript(text: str) -> list[str]:
    """Lower-case words of ``text``: punctuation becomes a word break, apostrophes inside a word
    are kept (``"Don't stop!"`` -> ``["don't", "stop"]``), accents are folded to ASCII."""
    folded = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES))
    ascii_text = folded.encode("ascii", "ignore").decode("ascii").lower()
    words = (w.strip("'") for w in _NON_WORD.split(ascii_text))
    return [w for w in words if w]


def espeak_to_arpabet(phonemes: str) -> list[str]:
    """Map espeak phonemes of one word, separated by ``_`` (``"h_@_l_'oU"``), to ARPAbet.

    Stress marks are dropped (the model's phones carry no stress).  Two context rules follow CMU
    spelling conventions: ``i@`` before an ``r`` is plain ``IY`` (``zero`` = Z IY R OW), and an
    ``R`` right after ``ER`` or ``R`` (espeak's linking r) is not repeated.
    """
    symbols = [t.lstrip(_STRESS_MARKS) for t in phonemes.split(_PHONE_SEPARATOR)]
    symbols = [s for s in symbols if s not in _IGNORED_TOKENS]
    phones: list[str] = []
    for i, symbol in enumerate(symbols):
        mapped = ESPEAK_TO_ARPABET.get(symbol) or ESPEAK_TO_ARPABET.get(symbol.rstrip(":") + ":")
        if mapped is None:
            raise G2pError(f"no ARPAbet mapping for espeak phoneme {symbol!r} in {phonemes!r}")
        next_symbol = symbols[i + 1] if i + 1 < len(symbols) else ""
        if symbol == "i@" and next_symbol.startswith("r"):
            mapped = ("IY",)
        for phone in mapped:
            if phone == "R" and phones and phones[-1] in ("ER", "R"):
                continue
            phones.append(phone)
    return phones


def g2p_arpabet(word: str, voice: str = G2P_VOICE) -> list[str]:
    """ARPAbet pronunciation of ``word`` from espeak-ng's letter-to-sound rules."""
    spoken = tts.phonemize(word, voice=voice, separator=_PHONE_SEPARATOR)
    phones: list[str] = []
    for chunk in spoken.split():  # digits and abbreviations may expand to several words
        phones.extend(espeak_to_arpabet(chunk))
    if not phones:
        raise G2pError(f"espeak produced no phonemes for {word!r}")
    return phones


class Aligner:
    """A reusable pocketsphinx forced aligner (loading the model is the slow part: keep one).

    ``sample_rate`` is the decoder's input rate (the bundled model is a 16 kHz model); audio at
    other rates is resampled.  Words added through the g2p stay in the decoder's dictionary for
    later utterances.  One decoder per instance: concurrent calls are serialised with a lock.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        pad_seconds: float = 0.5,
        beam: float = DEFAULT_BEAM,
        word_beam: float = DEFAULT_WORD_BEAM,
        phone_beam: float = DEFAULT_PHONE_BEAM,
        dither_levels_dbfs: tuple[float, ...] = DITHER_LEVELS_DBFS,
        g2p_voice: str = G2P_VOICE,
    ) -> None:
        if pad_seconds < 0:
            raise ValueError("pad_seconds must be >= 0")
        self.sample_rate = int(sample_rate)
        self.pad_seconds = float(pad_seconds)
        if not dither_levels_dbfs:
            raise ValueError("dither_levels_dbfs needs at least one level")
        self.dither_levels_dbfs = tuple(float(level) for level in dither_levels_dbfs)
        self.g2p_voice = g2p_voice
        self._decoder = Decoder(
            lm=None,
            samprate=self.sample_rate,
            beam=beam,
            wbeam=word_beam,
            pbeam=phone_beam,
            bestpath=False,
            loglevel="FATAL",
        )
        self._g2p_added: dict[str, str] = {}
        self._lock = threading.Lock()

    # -- pronunciations ------------------------------------------------------------------------
    def pronunciation(self, word: str) -> str | None:
        """The dictionary pronunciation (ARPAbet, space separated) of ``word``, if any."""
        return self._decoder.lookup_word(word)

    def _ensure_words(self, words: list[str]) -> tuple[dict[str, str], list[str], list[str]]:
        """Add g2p pronunciations for out-of-dictionary words: (g2p_words, oov_words, reasons)."""
        g2p_words: dict[str, str] = {}
        oov_words: list[str] = []
        reasons: list[str] = []
        for word in dict.fromkeys(words):
            if word in self._g2p_added:
                g2p_words[word] = self._g2p_added[word]
                continue
            if self._decoder.lookup_word(word) is not None:
                continue
            try:
                phones = " ".join(g2p_arpabet(word, voice=self.g2p_voice))
                self._decoder.add_word(word, phones, True)
            except (ValueError, RuntimeError) as exc:  # G2pError, TtsError, pocketsphinx errors
                oov_words.append(word)
                reasons.append(f"{word}: {exc}")
                continue
            self._g2p_added[word] = phones
            g2p_words[word] = phones
        return g2p_words, oov_words, reasons

    # -- alignment -----------------------------------------------------------------------------
    def _prepare_pcm(self, samples: np.ndarray, dither_dbfs: float) -> bytes:
        """Peak-normalise, pad with silence, add the seeded dither, convert to int16 bytes."""
        x = samples.astype(np.float64) * (NORMALISED_PEAK / float(np.max(np.abs(samples))))
        pad = np.zeros(round(self.pad_seconds * self.sample_rate))
        x = np.concatenate([pad, x, pad])
        rng = np.random.default_rng(DITHER_SEED)
        x += rng.standard_normal(len(x)) * (10.0 ** (dither_dbfs / 20.0))
        return (np.clip(x, -1.0, 1.0) * INT16_MAX).astype("<i2").tobytes()

    def align(self, samples: np.ndarray, sample_rate: int, transcript: str) -> AlignmentResult:
        """Align ``transcript`` to mono float audio.  Never raises for bad audio or text:
        problems come back as ``ok=False`` with ``error`` set."""
        words = normalize_transcript(transcript)
        if not words:
            return AlignmentResult(ok=False, error="empty transcript")
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        if x.size == 0:
            return AlignmentResult(ok=False, error="empty audio")
        if sample_rate <= 0:
            return AlignmentResult(ok=False, error=f"invalid sample rate {sample_rate}")
        if not np.all(np.isfinite(x)):
            return AlignmentResult(ok=False, error="audio contains NaN or infinite samples")
        if float(np.max(np.abs(x))) < SILENT_PEAK:
            return AlignmentResult(ok=False, error="audio is digital silence")
        duration_s = len(x) / float(sample_rate)
        if sample_rate != self.sample_rate:
            x = resample(x, sample_rate, self.sample_rate)

        with self._lock:
            g2p_words, oov_words, reasons = self._ensure_words(words)
            if oov_words:
                return AlignmentResult(
                    oov_words=oov_words,
                    g2p_words=g2p_words,
                    ok=False,
                    error="no pronunciation for: " + "; ".join(reasons),
                )
            result = AlignmentResult(g2p_words=g2p_words, ok=False)
            for dither_dbfs in self.dither_levels_dbfs:
                result = self._decode(words, x, duration_s, dither_dbfs, g2p_words)
                if result.ok:
                    break
        return result

    def _decode(
        self,
        words: list[str],
        x: np.ndarray,
        duration_s: float,
        dither_dbfs: float,
        g2p_words: dict[str, str],
    ) -> AlignmentResult:
        """One decoding pass over ``x`` (at the decoder's rate) with the lock held; spans are
        clipped to ``duration_s``, the length of the audio as the caller gave it."""
        in_utterance = False
        try:
            # Feature extraction (cepstral mean among others) carries state from one utterance
            # to the next; rebuilding it (~0.1 ms) makes every alignment independent of history.
            self._decoder.reinit_feat()
            self._decoder.set_align_text(" ".join(words))
            self._decoder.start_utt()
            in_utterance = True
            self._decoder.process_raw(self._prepare_pcm(x, dither_dbfs), False, True)
            in_utterance = False
            self._decoder.end_utt()
            segments = list(self._decoder.seg() or [])
        except RuntimeError as exc:
            if in_utterance:
                self._decoder.end_utt()
            return AlignmentResult(g2p_words=g2p_words, ok=False, error=f"pocketsphinx: {exc}")
        spans, inside_fractions = self._spans(segments, duration_s)
        error = _check_spans(words, spans, inside_fractions)
        return AlignmentResult(words=spans, g2p_words=g2p_words, ok=error is None, error=error)

    def _spans(self, segments: list, duration_s: float) -> tuple[list[WordSpan], list[float]]:
        """Word segments in seconds relative to the unpadded audio (fillers and ``(2)``-style
        alternate-pronunciation markers dropped), clipped to the audio, plus for each word the
        fraction of its aligned span that lies inside the audio rather than the padding."""
        spans: list[WordSpan] = []
        inside_fractions: list[float] = []
        for seg in segments:
            word = _ALT_PRONUNCIATION.sub("", seg.word)
            if word.startswith(("<", "[")):  # <s>, </s>, <sil>, [NOISE], [SPEECH]
                continue
            start_s = seg.start_frame / FRAMES_PER_SECOND - self.pad_seconds
            end_s = (seg.end_frame + 1) / FRAMES_PER_SECOND - self.pad_seconds
            clipped_start = min(max(start_s, 0.0), duration_s)
            clipped_end = min(max(end_s, 0.0), duration_s)
            spans.append(
                WordSpan(
                    word=word,
                    start_s=float(clipped_start),
                    end_s=float(clipped_end),
                    confidence=float(min(max(seg.prob, 0.0), 1.0)),
                )
            )
            inside = (clipped_end - clipped_start) / max(end_s - start_s, _TINY_SECONDS)
            inside_fractions.append(inside)
        return spans, inside_fractions


def _check_spans(
    words: list[str], spans: list[WordSpan], inside_fractions: list[float]
) -> str | None:
    """Why an alignment is unusable, or None: every word, in order, mostly inside the audio."""
    aligned = [s.word for s in spans]
    if aligned != words:
        return f"alignment incomplete: got {len(aligned)} of {len(words)} words; aligned {aligned}"
    outside = [
        s.word for s, f in zip(spans, inside_fractions, strict=True) if f < MIN_INSIDE_FRACTION
    ]
    if outside:
        return f"words aligned to the silence padding, not the audio: {outside}"
    return None
