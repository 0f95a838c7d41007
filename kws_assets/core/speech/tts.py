"""Text-to-speech with espeak-ng, driven through ctypes.

The shared library and its data come from the ``espeakng_loader`` wheel, so nothing is installed
system-wide and nothing is downloaded.  espeak-ng keeps global state (current voice, parameters,
one synth callback), so every call into it runs under one module lock and the library is
initialised once per process in synchronous mode: ``espeak_Synth`` returns only after the whole
utterance has been delivered to the callback.

Reproducibility: espeak's random generator is seeded with a constant at start-up (espeak seeds it
from the clock), but its pitch "flutter" oscillator keeps its phase from one call to the next, so
the same request can come out a few samples longer or shorter depending on what the process
synthesised before.  A fixed sequence of calls in a fresh process is reproducible, and
:func:`reset_engine` gives that fresh state without a new process: it loads a private copy of the
library (fresh statics: flutter phase, random state, resonators) — the parallel stages call it
before every batch, so a batch's audio depends only on the batch, never on the worker.  Some
voice variants (the Klatt ones, e.g. ``+Reed``) also draw noise from the C library's ``rand()``,
which a private copy of espeak-ng does not own: every synthesis seeds it from its own request
(:func:`_seed_noise`), so the same request gives the same samples wherever and whenever it runs.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import tempfile
import threading
import zlib
from dataclasses import dataclass, field

import numpy as np

from kws_assets.core.audio.io import resample

# --- espeak-ng API constants (speak_lib.h, API revision 12/13) -----------------------------------
AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_DONT_EXIT = 0x8000  # do not exit() the process if the data folder is missing
BUFFER_LENGTH_MS = 0  # 0 = espeak's default callback buffer length (60 ms)
EVENT_LIST_TERMINATED = 0
EVENT_WORD = 1
POS_CHARACTER = 1
CHARS_UTF8 = 1
PARAM_RATE = 1
PARAM_PITCH = 3
PARAM_WORDGAP = 7
EE_OK = 0
PHONEME_SEPARATOR_SHIFT = 8  # bits 8-23 of phoneme_mode hold a separator character
RANDOM_SEED = 12345  # replaces espeak's clock-based seed (breath noise, klatt voices)
# Every voice change queues a sample-rate event that is only cleared by a synthesis; espeak's event
# list holds about 30 entries, and once it is full the first word events of the next synthesis
# are lost.  After this many changes without a synthesis, an empty synthesis clears the list.
MAX_UNFLUSHED_VOICE_CHANGES = 8

RATE_MIN_WPM = 80
RATE_MAX_WPM = 450
PITCH_MIN = 0
PITCH_MAX = 99
INT16_FULL_SCALE = 32768.0
MS_PER_S = 1000.0
VARIANT_DIR = "!v"
NUMBERED_FEMALE_OFFSET = 10  # "+12" means variant f2, "+3" means m3 (espeak's own rule)

# trim_silence framing
TRIM_FRAME_MS = 10.0


class TtsError(ValueError):
    """A synthesis request espeak-ng cannot serve (unknown voice, empty text, engine failure)."""


@dataclass(frozen=True)
class WordEvent:
    """Where espeak started speaking one word: time in the audio and the word's span in the text."""

    text: str
    start_s: float
    char_start: int
    char_len: int


@dataclass(frozen=True)
class Synthesis:
    """Synthesised speech: float32 mono samples in [-1, 1], their rate, and the word events."""

    samples: np.ndarray
    sample_rate: int
    words: list[WordEvent] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return len(self.samples) / float(self.sample_rate)


class _EventId(ctypes.Union):
    _fields_ = [
        ("number", ctypes.c_int),
        ("name", ctypes.c_char_p),
        ("string", ctypes.c_char * 8),
    ]


class _Event(ctypes.Structure):
    """``espeak_EVENT`` from speak_lib.h."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based character index
        ("length", ctypes.c_int),  # characters, for word events
        ("audio_position", ctypes.c_int),  # ms from the start of this synthesis
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


class _Voice(ctypes.Structure):
    """``espeak_VOICE`` from speak_lib.h."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),  # (priority byte, zero-terminated code)*, then a 0 byte
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


class _Engine:
    """The process-wide espeak-ng instance; use only while holding ``_LOCK``."""

    def __init__(self, private_copy: bool = False) -> None:
        import espeakng_loader

        self.data_path: str = espeakng_loader.get_data_path()
        lib = _load_library(espeakng_loader.get_library_path(), private_copy)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_TextToPhonemes.argtypes = [
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.c_int,
            ctypes.c_int,
        ]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        lib.espeak_Terminate.argtypes = []
        lib.espeak_Terminate.restype = ctypes.c_int

        # espeak accepts either the folder holding espeak-ng-data or that folder itself.
        rate = lib.espeak_Initialize(
            AUDIO_OUTPUT_SYNCHRONOUS,
            BUFFER_LENGTH_MS,
            self.data_path.encode(),
            INITIALIZE_DONT_EXIT,
        )
        if rate <= 0:
            raise TtsError(f"espeak_Initialize failed (data path {self.data_path})")
        if hasattr(lib, "espeak_ng_SetRandSeed"):
            lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
            lib.espeak_ng_SetRandSeed(RANDOM_SEED)
        self.lib = lib
        self.sample_rate: int = rate
        self._current_voice: str | None = None
        self._unflushed_voice_changes = 0
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, int]] = []  # (text_position, length, audio_position ms)
        # Keep the ctypes callback object referenced for the life of the process.
        self._callback = _SynthCallback(self._on_audio)
        lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav, n_samples, events) -> int:  # noqa: ANN001 (ctypes pointers)
        if wav and n_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n_samples,)).copy())
        if events:
            i = 0
            while events[i].type != EVENT_LIST_TERMINATED:
                event = events[i]
                if event.type == EVENT_WORD:
                    self._events.append((event.text_position, event.length, event.audio_position))
                i += 1
        return 0  # continue synthesis

    def set_voice(self, voice: str) -> None:
        name, _, variant = voice.partition("+")
        if not name.strip():
            raise TtsError(f"empty voice name in {voice!r}")
        if variant and not os.path.isfile(self.variant_path(variant)):
            raise TtsError(f"unknown espeak-ng voice variant {variant!r} in {voice!r}")
        if voice == self._current_voice:
            return
        self._current_voice = None
        status = self.lib.espeak_SetVoiceByName(voice.encode())
        self._unflushed_voice_changes += 1
        if status != EE_OK:
            raise TtsError(f"unknown espeak-ng voice {voice!r} (status {status})")
        self._current_voice = voice

    def variant_path(self, variant: str) -> str:
        if variant.isdigit():
            number = int(variant)
            variant = (
                f"f{number - NUMBERED_FEMALE_OFFSET}"
                if number >= NUMBERED_FEMALE_OFFSET
                else f"m{number}"
            )
        return os.path.join(self.data_path, "voices", VARIANT_DIR, variant)

    def set_parameter(self, parameter: int, value: int) -> None:
        status = self.lib.espeak_SetParameter(parameter, int(value), 0)
        if status != EE_OK:
            raise TtsError(f"espeak_SetParameter({parameter}, {value}) failed (status {status})")

    def synth(self, text: str) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
        if self._unflushed_voice_changes > MAX_UNFLUSHED_VOICE_CHANGES:
            self._raw_synth(b"")  # clears the queued voice-change events
        status = self._raw_synth(text.encode("utf-8"))
        chunks, events = self._chunks, self._events
        self._chunks, self._events = [], []
        if status != EE_OK:
            raise TtsError(f"espeak_Synth failed (status {status})")
        pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
        return pcm, events

    def _raw_synth(self, data: bytes) -> int:
        self._chunks, self._events = [], []
        status = self.lib.espeak_Synth(
            data, len(data) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None
        )
        self._unflushed_voice_changes = 0
        return status

    def text_to_phonemes(self, text: str, phoneme_mode: int) -> list[str]:
        buffer = ctypes.create_string_buffer(text.encode("utf-8"))
        cursor = ctypes.c_void_p(ctypes.addressof(buffer))
        clauses: list[str] = []
        while cursor.value:
            out = self.lib.espeak_TextToPhonemes(ctypes.byref(cursor), CHARS_UTF8, phoneme_mode)
            if out:
                clauses.append(out.decode("utf-8", errors="replace").strip())
        return [c for c in clauses if c]

    def voices(self) -> list[tuple[str, str, str]]:
        """(primary language code, identifier, display name) of every installed voice.

        The identifier is the voice file's path under espeak-ng-data (``gmw/en-US``); its file
        name, lower-cased, is what ``espeak_SetVoiceByName`` accepts (``en-us``)."""
        table = self.lib.espeak_ListVoices(None)
        found: list[tuple[str, str, str]] = []
        i = 0
        while table[i]:
            entry = table[i].contents
            codes = _language_codes(entry.languages)
            if codes:
                found.append((codes[0], entry.identifier.decode(), entry.name.decode()))
            i += 1
        return found


def _language_codes(address: int | None) -> list[str]:
    """Decode espeak's ``languages`` field: repeated (priority byte, C string), ended by 0."""
    codes: list[str] = []
    if not address:
        return codes
    while ctypes.c_ubyte.from_address(address).value != 0:
        code = ctypes.string_at(address + 1)
        codes.append(code.decode())
        address += 1 + len(code) + 1
    return codes


def _load_library(path: str, private_copy: bool) -> ctypes.CDLL:
    """The espeak-ng library; with ``private_copy``, a copy loaded from a temporary file, which
    the dynamic loader treats as another library: its static state starts from scratch."""
    if not private_copy:
        return ctypes.CDLL(path)
    handle, copy = tempfile.mkstemp(prefix="libespeak-ng-", suffix=".so")
    os.close(handle)
    try:
        shutil.copyfile(path, copy)
        return ctypes.CDLL(copy)
    finally:
        os.unlink(copy)  # the mapping outlives the file


_LOCK = threading.RLock()
_ENGINE: _Engine | None = None
_LIBC = ctypes.CDLL(None)  # the process's C library: its rand() is what the Klatt voices draw from


def _seed_noise(voice: str, rate: int, pitch: int, word_gap: int, text: str) -> None:
    """Seed the C library's ``rand()`` from the request (call with ``_LOCK`` held): a Klatt
    variant's noise is then a function of what is spoken, not of what the process did before."""
    _LIBC.srand(zlib.crc32(f"{voice}|{rate}|{pitch}|{word_gap}|{text}".encode()))


def reset_engine() -> None:
    """Start espeak-ng afresh in this process (a few ms): the next syntheses come out exactly as
    in a new process.  The previous instance is terminated and unloaded."""
    global _ENGINE
    with _LOCK:
        old, _ENGINE = _ENGINE, _Engine(private_copy=True)
        if old is not None:
            old.lib.espeak_Terminate()
            _dlclose(old.lib)


def _dlclose(lib: ctypes.CDLL) -> None:
    import _ctypes

    _ctypes.dlclose(lib._handle)


def _engine() -> _Engine:
    """The initialised engine (call with ``_LOCK`` held)."""
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _Engine()
    return _ENGINE


def native_sample_rate() -> int:
    """espeak-ng's output sample rate (22050 Hz for the bundled voices)."""
    with _LOCK:
        return _engine().sample_rate


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= int(value) <= high:
        raise TtsError(f"{name}={value} outside espeak-ng's range [{low}, {high}]")


def synthesize(
    text: str, voice: str = "en-us", rate: int = 175, pitch: int = 50, word_gap: int = 0
) -> Synthesis:
    """Speak ``text`` with an espeak-ng voice (``"en-us"`` or with a variant, ``"en-us+f3"``).

    ``rate`` is in words per minute, ``pitch`` is espeak's 0-99 base pitch and ``word_gap`` adds
    pauses between words in units of 10 ms.  Returns audio at espeak's native rate plus one
    :class:`WordEvent` per spoken word.  Raises :class:`TtsError` for an unknown voice or variant,
    empty text, out-of-range parameters, or text that produced no spoken word (a few voices in
    ``list_voices()`` have no dictionary in the bundled data and fail this way).
    """
    if not text or not text.strip():
        raise TtsError("cannot synthesise empty text")
    _check_range("rate", rate, RATE_MIN_WPM, RATE_MAX_WPM)
    _check_range("pitch", pitch, PITCH_MIN, PITCH_MAX)
    if word_gap < 0:
        raise TtsError(f"word_gap={word_gap} must be >= 0")
    with _LOCK:
        engine = _engine()
        engine.set_voice(voice)
        engine.set_parameter(PARAM_RATE, rate)
        engine.set_parameter(PARAM_PITCH, pitch)
        engine.set_parameter(PARAM_WORDGAP, word_gap)
        _seed_noise(voice, rate, pitch, word_gap, text)
        pcm, raw_events = engine.synth(text)
        sample_rate = engine.sample_rate
    if not raw_events:
        raise TtsError(
            f"voice {voice!r} spoke no words for {text!r} (nothing pronounceable, or the voice's "
            "dictionary is missing from espeak-ng-data)"
        )
    samples = (pcm.astype(np.float32) / INT16_FULL_SCALE).clip(-1.0, 1.0)
    words = []
    for text_position, length, audio_ms in raw_events:
        char_start = max(text_position - 1, 0)  # espeak counts characters from 1
        words.append(
            WordEvent(
                text=text[char_start : char_start + length],
                start_s=audio_ms / MS_PER_S,
                char_start=char_start,
                char_len=length,
            )
        )
    return Synthesis(samples=samples, sample_rate=sample_rate, words=words)


def synthesize_at(
    text: str,
    sample_rate: int,
    voice: str = "en-us",
    rate: int = 175,
    pitch: int = 50,
    word_gap: int = 0,
) -> Synthesis:
    """:func:`synthesize`, resampled to ``sample_rate`` with ``core.audio.resample`` (word times
    are unaffected)."""
    native = synthesize(text, voice=voice, rate=rate, pitch=pitch, word_gap=word_gap)
    if native.sample_rate == sample_rate:
        return native
    samples = resample(native.samples, native.sample_rate, sample_rate)
    return Synthesis(samples=samples, sample_rate=sample_rate, words=native.words)


def list_voices(language_prefix: str | None = None) -> list[str]:
    """Names usable as ``voice`` (the voice file names, e.g. ``"en-us"``, ``"en-gb-scotland"``,
    ``"en"`` for British English), sorted, optionally only those whose name or primary language
    code starts with ``language_prefix`` (case-insensitive)."""
    with _LOCK:
        voices = _engine().voices()
    prefix = (language_prefix or "").lower()
    names = {
        identifier.rsplit("/", 1)[-1].lower()
        for code, identifier, _ in voices
        if code.lower().startswith(prefix)
        or identifier.rsplit("/", 1)[-1].lower().startswith(prefix)
    }
    return sorted(names)


def list_variants() -> list[str]:
    """Variant names usable as a ``+variant`` voice suffix (``m1``, ``f3``, ``klatt``...)."""
    with _LOCK:
        folder = os.path.join(_engine().data_path, "voices", VARIANT_DIR)
    return sorted(name for name in os.listdir(folder) if os.path.isfile(os.path.join(folder, name)))


def phonemize(text: str, voice: str = "en-us", separator: str = "") -> str:
    """espeak's ASCII phoneme mnemonics for ``text`` (e.g. ``"h@l'oU"``), words separated by
    spaces.  With a one-character ``separator`` the phonemes inside each word are separated by it
    (``"h_@_l_'oU"``); stress marks stay attached to the phoneme that follows them."""
    if not text or not text.strip():
        raise TtsError("cannot phonemise empty text")
    if len(separator) > 1:
        raise TtsError("separator must be a single character")
    phoneme_mode = (ord(separator) << PHONEME_SEPARATOR_SHIFT) if separator else 0
    with _LOCK:
        engine = _engine()
        engine.set_voice(voice)
        clauses = engine.text_to_phonemes(text, phoneme_mode)
    return " ".join(clauses)


def trim_silence(
    samples: np.ndarray, sr: int, threshold_db: float = -40.0
) -> tuple[np.ndarray, int]:
    """Cut leading and trailing silence.

    Audio is framed in 10 ms frames; a frame is sound when its RMS is within ``threshold_db`` of
    the loudest frame's RMS.  Returns the samples from the first to the last sound frame and the
    offset (in samples) of the kept part.  All-zero input returns an empty array and offset 0.
    """
    x = np.asarray(samples, dtype=np.float32)
    frame = max(1, round(sr * TRIM_FRAME_MS / MS_PER_S))
    n_frames = int(np.ceil(len(x) / frame))
    if n_frames == 0:
        return x[:0], 0
    padded = np.zeros(n_frames * frame, dtype=np.float64)
    padded[: len(x)] = x
    rms = np.sqrt(np.mean(padded.reshape(n_frames, frame) ** 2, axis=1))
    loudest = float(rms.max())
    if loudest <= 0.0:
        return x[:0], 0
    loud = np.flatnonzero(rms >= loudest * 10.0 ** (threshold_db / 20.0))
    start = int(loud[0]) * frame
    stop = min(len(x), (int(loud[-1]) + 1) * frame)
    return x[start:stop], start
