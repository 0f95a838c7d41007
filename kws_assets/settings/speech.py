"""Speech settings: the TTS voices, the negative (_unknown_) words, forced alignment."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from kws_assets.settings.base import StrictSettings, primary_language

# English accents of espeak-ng (voice names accepted by espeak_SetVoiceByName; "en" is British).
DEFAULT_ENGLISH_ACCENTS = (
    "en",
    "en-us",
    "en-us-nyc",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
)
# espeak-ng variants that sound like people (robot/effect variants left out), about half female.

DEFAULT_VOICE_VARIANTS = (
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "Andrea",
    "Annie",
    "anika",
    "aunty",
    "belinda",
    "grandma",
    "linda",
    "steph",
    "steph2",
    "whisperf",
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "m8",
    "Alex",
    "Andy",
    "Gene",
    "Lee",
    "Michael",
    "Reed",
    "adam",
    "whisper",
    "klatt",
    "klatt3",
)

DEFAULT_CARRIER_PHRASES = (
    "please say {} again",
    "i think {} is the answer",
    "can you {} for me",
    "the word is {}",
    "{} i said",
    "okay {} thanks",
    "hey computer {}",
    "and then {} was written there",
)


EngineName = Literal["flite", "festival", "piper"]


class EngineVoiceSettings(StrictSettings):
    """One more TTS engine as a speaker source beside espeak-ng: each of its voices is a speaker
    (``<engine>:<voice>``) of the speaker-disjoint split.  An engine that is not installed is
    skipped with a log line and a data-card note."""

    engine: EngineName
    voices: list[str] = Field(
        default_factory=list,
        description="Voices to use; empty = every voice the engine has for the config language.",
    )
    renders_per_voice: int = Field(
        4,
        ge=1,
        description="Renders of each keyword per voice, each "
        "with its own rate, pitch and perturbation.",
    )
    rate_range: tuple[float, float] = Field((0.85, 1.2), description="Speaking-rate multiplier.")
    pitch_range: tuple[float, float] = Field(
        (0.9, 1.12), description="Mean-F0 multiplier (voices without pitch control render at 1.0)."
    )

    @model_validator(mode="after")
    def _check(self) -> EngineVoiceSettings:
        for name in ("rate_range", "pitch_range"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise ValueError(f"tts.engines[{self.engine}].{name}: need 0 < min <= max")
        return self


def _default_engines() -> list[EngineVoiceSettings]:
    return [
        EngineVoiceSettings(engine="flite"),
        EngineVoiceSettings(engine="piper", renders_per_voice=12),
        EngineVoiceSettings(engine="festival"),
    ]


class NegativeSettings(StrictSettings):
    """The negative classes: synthetic ``_unknown_`` words (phoneme neighbours of the keywords and
    other dictionary words) beside the corpus's own non-keyword words."""

    lexicon: str = Field(
        "",
        description="A CMU-format pronouncing dictionary (word PH ON EMES per line); empty = "
        "the en-us dictionary pocketsphinx ships (134k words, ARPAbet).",
    )
    min_phoneme_distance: int = Field(
        1, ge=1, description="Homophones (distance 0) are never negatives."
    )
    max_phoneme_distance: int = Field(2, ge=1)
    neighbours_per_keyword: int = Field(
        6, ge=0, description="Phoneme neighbours spoken per keyword."
    )
    other_words: int = Field(120, ge=0, description="Other dictionary words spoken as _unknown_.")
    unknown_ratio: float = Field(
        0.6,
        ge=0,
        description="Synthetic _unknown_ word renders relative to the renders of one "
        "keyword (class balance: 1.0 = as many as an average keyword class).",
    )
    speech_windows: int = Field(
        120,
        ge=0,
        description="Per keyword: 1-s windows cut at random points out of sentences of "
        "other words, as _unknown_ (what a streaming detector mostly hears).",
    )
    window_sentence_words: tuple[int, int] = Field((5, 10), description="Words per such sentence.")
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> NegativeSettings:
        if self.min_phoneme_distance > self.max_phoneme_distance:
            raise ValueError("negatives.min_phoneme_distance exceeds max_phoneme_distance")
        return self


AlignerKind = Literal["pocketsphinx", "tts_dtw"]


class DtwAlignmentSettings(StrictSettings):
    """The TTS+DTW aligner (``kws_assets.core.speech.dtw_aligner``): recordings are aligned against
    espeak-ng's rendering of their transcript, so it serves any language espeak-ng speaks."""

    voices: dict[str, str] = Field(
        default_factory=dict,
        description="Language -> espeak-ng voice the rendering uses (e.g. {es: es-419}); other "
        "languages use the voice named like the language, else its first regional one.",
    )
    rate_wpm: int = Field(175, ge=80, le=450, description="Speaking rate of the rendering.")
    band_fraction: float = Field(
        0.3, gt=0, le=1, description="Sakoe-Chiba band radius as a fraction of the longer sequence."
    )
    min_band_s: float = Field(0.5, gt=0, description="Smallest band radius, seconds.")
    max_band_s: float = Field(5.0, gt=0, description="Largest band radius, seconds.")
    min_utterance_confidence: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Utterances whose words' mean confidence is lower fail "
        "alignment (the audio does not match the transcript).",
    )
    max_tempo_ratio: float = Field(
        3.0,
        gt=1,
        description="Recordings whose speech is this much faster or slower than the "
        "rendering fail alignment.",
    )
    trim_margin_s: float = Field(
        0.7,
        ge=0,
        description="Recordings are cut to their loud region plus this margin before "
        "warping (long pauses would not fit the band).",
    )

    @model_validator(mode="after")
    def _check_band(self) -> DtwAlignmentSettings:
        if self.min_band_s > self.max_band_s:
            raise ValueError("alignment.dtw.min_band_s must not exceed max_band_s")
        return self


class AlignmentSettings(StrictSettings):
    pad_seconds: float = Field(
        0.5, ge=0, description="Silence padded around utterances before aligning."
    )
    unknown_per_utterance: int = Field(
        1, ge=0, description="Non-keyword words cut as _unknown_ per utterance."
    )
    min_word_seconds: float = Field(
        0.08, gt=0, description="Shorter aligned words are treated as misses."
    )
    # --- aligner per language (kws_assets.core.speech.aligners)
    # ---------------------------------------
    aligners: dict[str, AlignerKind] = Field(
        default_factory=dict,
        description="Language -> aligner, overriding the default choice: pocketsphinx for English "
        "(en, en-US...), tts_dtw for every other language. pocketsphinx is English-only.",
    )
    min_confidence: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Aligned clips whose word confidence is lower are quarantined "
        "(reason low_alignment_confidence).",
    )
    dtw: DtwAlignmentSettings = Field(default_factory=DtwAlignmentSettings)

    @field_validator("aligners")
    @classmethod
    def _pocketsphinx_is_english(cls, aligners: dict[str, str]) -> dict[str, str]:
        wrong = [
            lang
            for lang, kind in aligners.items()
            if kind == "pocketsphinx" and primary_language(lang) != "en"
        ]
        if wrong:
            raise ValueError(
                f"alignment.aligners: pocketsphinx ships an English model only, "
                f"not for {wrong}; use tts_dtw"
            )
        return aligners


class SpeakerPerturbationSettings(StrictSettings):
    enabled: bool = Field(True, description="Perturb rendered TTS clips into new speakers.")
    perturbations_per_clip: int = Field(
        1, ge=0, description="Perturbed copies drawn per rendered clip (0 = none)."
    )
    warp_factor: tuple[float, float] = Field(
        (0.9, 1.12),
        description="Formant (vocal-tract-length) warp range; <1 longer tract (lower formants), "
        ">1 shorter. Drawn log-uniformly.",
    )
    semitones: tuple[float, float] = Field(
        (-3.0, 3.0), description="Pitch shift range in semitones (formants kept). Drawn uniformly."
    )
    tempo: tuple[float, float] = Field(
        (0.9, 1.1),
        description="Tempo range (>1 faster, pitch kept). Drawn log-uniformly.",
    )

    @model_validator(mode="after")
    def _ordered_ranges(self) -> SpeakerPerturbationSettings:
        for name in ("warp_factor", "semitones", "tempo"):
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"{name} range ({low}, {high}) must be (low, high)")
        for name in ("warp_factor", "tempo"):
            if getattr(self, name)[0] <= 0:
                raise ValueError(f"{name} must be positive")
        return self


class TtsSettings(StrictSettings):
    """The espeak-ng grid used for synthetic keyword clips (voice x rate x pitch)."""

    voices: list[str] = Field(
        default_factory=lambda: [
            "en-us+m1",
            "en-us+m3",
            "en-us+f2",
            "en-us+f4",
            "en+m2",
            "en+f1",
            "en+m5",
            "en+f3",
            "en-gb-scotland+m4",
            "en-gb-x-rp+f5",
            "en-029+m6",
            "en-us-nyc+m7",
            "en-gb-x-gbclan+f2",
            "en-gb-x-gbcwmd+m3",
        ],
        min_length=1,
        description="espeak-ng voice names, optionally with a +variant. Each is one speaker.",
    )
    rates: list[int] = Field(
        default_factory=lambda: [160], min_length=1, description="Words per minute."
    )
    pitches: list[int] = Field(
        default_factory=lambda: [50], min_length=1, description="espeak-ng pitch, 0-99."
    )
    word_gap: int = Field(0, ge=0, description="Extra pause between words, in units of 10 ms.")
    # --- sampled speakers: voice diversity beyond the fixed grid above --------------------------
    accents: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ENGLISH_ACCENTS),
        description="espeak-ng voices (accents) crossed with `variants` to draw extra speakers "
        "from; empty = every espeak-ng voice of the config language.",
    )
    variants: list[str] = Field(
        default_factory=lambda: list(DEFAULT_VOICE_VARIANTS),
        description="espeak-ng voice variants (male/female timbres) crossed with `accents`.",
    )
    sampled_speakers: int = Field(
        160,
        ge=0,
        description="Extra speakers (accent+variant pairs) drawn without replacement; "
        "each is one speaker id, so it lands in exactly one split.",
    )
    renders_per_speaker: int = Field(
        1,
        ge=1,
        description="Renders of each keyword per sampled speaker, each with its own "
        "rate, pitch and word gap drawn from the ranges below.",
    )
    rate_range: tuple[int, int] = Field((115, 215), description="Words per minute, min and max.")
    pitch_range: tuple[int, int] = Field((20, 80), description="espeak-ng pitch 0-99, min and max.")
    word_gap_range: tuple[int, int] = Field((0, 6), description="Word gap (10 ms units), min/max.")
    carrier_phrases: list[str] = Field(
        default_factory=lambda: list(DEFAULT_CARRIER_PHRASES),
        description="Sentences with '{}' where the word goes; the word is cut out of the spoken "
        "sentence at espeak-ng's word events, with its real coarticulation.",
    )
    carrier_probability: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Share of sampled renders spoken inside a carrier phrase "
        "(the rest are spoken alone).",
    )
    keyword_languages: dict[str, str] = Field(
        default_factory=dict,
        description="Keywords of another language: keyword -> espeak-ng language (e.g. "
        "{hola: es}); spoken alone by that language's voices x `variants`.",
    )
    seed: int = Field(0, description="Seed of the speaker draw and the rate/pitch/gap draws.")
    engines: list[EngineVoiceSettings] = Field(
        default_factory=_default_engines,
        description="Other TTS engines as speaker sources (flite, festival, piper); the one named "
        "by evaluation.held_out_engine is only used to evaluate.",
    )
    perturbation: SpeakerPerturbationSettings = Field(
        default_factory=lambda: SpeakerPerturbationSettings(),
        description="Formant warp, pitch and tempo drawn per render of the other engines.",
    )

    @model_validator(mode="after")
    def _check_sampling(self) -> TtsSettings:
        for name in ("rate_range", "pitch_range", "word_gap_range"):
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"tts.{name}: min {low} exceeds max {high}")
        for phrase in self.carrier_phrases:
            if phrase.count("{}") != 1:
                raise ValueError(f"tts.carrier_phrases: {phrase!r} needs exactly one '{{}}'")
        return self
