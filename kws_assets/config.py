"""One configuration model for the whole pipeline, loaded from a YAML file.

The defaults of these models *are* the embedded demo configuration (``kws.yaml`` at the project
root spells them out).  ``load_config()`` reads the file named by ``$KWS_CONFIG``, else ``kws.yaml``
in the current directory, else falls back to the defaults.  Every number an asset needs lives here.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

UNKNOWN_LABEL = "_unknown_"
SILENCE_LABEL = "_silence_"

SPEECH_COMMANDS_TEN = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]

# English accents of espeak-ng (voice names accepted by espeak_SetVoiceByName; "en" is British).
DEFAULT_ENGLISH_ACCENTS = ("en", "en-us", "en-us-nyc", "en-gb-scotland", "en-gb-x-rp",
                           "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")
# espeak-ng variants that sound like people (robot/effect variants left out), about half female.
DEFAULT_VOICE_VARIANTS = (
    "f1", "f2", "f3", "f4", "f5", "Andrea", "Annie", "anika", "aunty", "belinda", "grandma",
    "linda", "steph", "steph2", "whisperf",
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "Alex", "Andy", "Gene", "Lee", "Michael",
    "Reed", "adam", "whisper", "klatt", "klatt3",
)
# Voices the training grid never uses (variants outside DEFAULT_VOICE_VARIANTS): the evaluation's
# "unseen voices" accuracy.
DEFAULT_HELD_OUT_VOICES = ("en-us+steph3", "en-gb-x-rp+Alicia", "en-029+Hugo",
                           "en-gb-scotland+Denis", "en-us-nyc+pablo", "en+michel")
DEFAULT_CARRIER_PHRASES = (
    "please say {} again", "i think {} is the answer", "can you {} for me", "the word is {}",
    "{} i said", "okay {} thanks", "hey computer {}", "and then {} was written there",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AudioSettings(_Strict):
    sample_rate: int = Field(16000, gt=0, description="Sample rate of every clip, Hz.")
    clip_seconds: float = Field(1.0, gt=0, description="Length of every keyword clip, seconds.")
    fade_ms: float = Field(10.0, ge=0, description="Fade in/out applied when cutting a clip.")

    @property
    def clip_samples(self) -> int:
        return int(round(self.sample_rate * self.clip_seconds))


class FeatureSettings(_Strict):
    """MFCC settings; defaults follow the MLPerf Tiny / ARM DS-CNN convention (49x10)."""

    window_ms: float = Field(40.0, gt=0)
    hop_ms: float = Field(20.0, gt=0)
    n_mels: int = Field(40, gt=0)
    n_mfcc: int = Field(10, gt=0)
    f_min: float = Field(20.0, ge=0)
    f_max: float = Field(4000.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> "FeatureSettings":
        if self.n_mfcc > self.n_mels:
            raise ValueError("n_mfcc must not exceed n_mels")
        if self.f_min >= self.f_max:
            raise ValueError("f_min must be below f_max")
        return self


class TtsSettings(_Strict):
    """The espeak-ng grid used for synthetic keyword clips (voice x rate x pitch)."""

    voices: list[str] = Field(
        default_factory=lambda: [
            "en-us+m1", "en-us+m3", "en-us+f2", "en-us+f4",
            "en+m2", "en+f1", "en+m5", "en+f3",
            "en-gb-scotland+m4", "en-gb-x-rp+f5", "en-029+m6", "en-us-nyc+m7",
            "en-gb-x-gbclan+f2", "en-gb-x-gbcwmd+m3",
        ],
        min_length=1,
        description="espeak-ng voice names, optionally with a +variant. Each is one speaker.",
    )
    rates: list[int] = Field(default_factory=lambda: [160], min_length=1,
                             description="Words per minute.")
    pitches: list[int] = Field(default_factory=lambda: [50], min_length=1,
                               description="espeak-ng pitch, 0-99.")
    word_gap: int = Field(0, ge=0, description="Extra pause between words, in units of 10 ms.")
    # --- sampled speakers: voice diversity beyond the fixed grid above --------------------------
    accents: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ENGLISH_ACCENTS),
        description="espeak-ng voices (accents) crossed with `variants` to draw extra speakers "
                    "from; empty = every espeak-ng voice of the config language.")
    variants: list[str] = Field(
        default_factory=lambda: list(DEFAULT_VOICE_VARIANTS),
        description="espeak-ng voice variants (male/female timbres) crossed with `accents`.")
    sampled_speakers: int = Field(
        64, ge=0, description="Extra speakers (accent+variant pairs) drawn without replacement; "
                               "each is one speaker id, so it lands in exactly one split.")
    renders_per_speaker: int = Field(
        1, ge=1, description="Renders of each keyword per sampled speaker, each with its own "
                             "rate, pitch and word gap drawn from the ranges below.")
    rate_range: tuple[int, int] = Field((115, 215), description="Words per minute, min and max.")
    pitch_range: tuple[int, int] = Field((20, 80), description="espeak-ng pitch 0-99, min and max.")
    word_gap_range: tuple[int, int] = Field((0, 6), description="Word gap (10 ms units), min/max.")
    carrier_phrases: list[str] = Field(
        default_factory=lambda: list(DEFAULT_CARRIER_PHRASES),
        description="Sentences with '{}' where the word goes; the word is cut out of the spoken "
                    "sentence at espeak-ng's word events, with its real coarticulation.")
    carrier_probability: float = Field(
        0.5, ge=0, le=1, description="Share of sampled renders spoken inside a carrier phrase "
                                     "(the rest are spoken alone).")
    keyword_languages: dict[str, str] = Field(
        default_factory=dict,
        description="Keywords of another language: keyword -> espeak-ng language (e.g. "
                    "{hola: es}); spoken alone by that language's voices x `variants`.")
    seed: int = Field(0, description="Seed of the speaker draw and the rate/pitch/gap draws.")

    @model_validator(mode="after")
    def _check_sampling(self) -> "TtsSettings":
        for name in ("rate_range", "pitch_range", "word_gap_range"):
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"tts.{name}: min {low} exceeds max {high}")
        for phrase in self.carrier_phrases:
            if phrase.count("{}") != 1:
                raise ValueError(f"tts.carrier_phrases: {phrase!r} needs exactly one '{{}}'")
        return self


class NoiseSettings(_Strict):
    """Background noise mixed into synthetic clips and used for the _silence_ class."""

    kinds: list[Literal["white", "pink", "brown"]] = Field(
        default_factory=lambda: ["white", "pink", "brown"], min_length=1)
    snr_db_min: float = 5.0
    snr_db_max: float = 25.0
    noisy_copies_per_clip: int = Field(0, ge=0, description="Noise-mixed copies per clean clip "
                                       "(augmented_clips adds noise and more to the train split).")
    silence_clips: int = Field(120, ge=0, description="_silence_ examples generated from noise.")
    silence_level_dbfs_min: float = -70.0
    silence_level_dbfs_max: float = -25.0

    @model_validator(mode="after")
    def _check(self) -> "NoiseSettings":
        if self.snr_db_min > self.snr_db_max:
            raise ValueError("snr_db_min must not exceed snr_db_max")
        if self.silence_level_dbfs_min > self.silence_level_dbfs_max:
            raise ValueError("silence_level_dbfs_min must not exceed silence_level_dbfs_max")
        return self


class DemoCorpusSource(_Strict):
    """A corpus generated once with TTS: carrier sentences containing the keywords."""

    kind: Literal["demo_tts"] = "demo_tts"
    name: str = "demo"
    voices: list[str] = Field(
        default_factory=lambda: [
            "en-us+m2", "en-us+f1", "en+m3", "en+f4", "en-gb-x-rp+m1", "en-us-nyc+f3",
        ],
        min_length=1,
    )
    sentences_per_keyword: int = Field(3, ge=1, description="Carrier sentences per keyword and voice.")
    rate: int = 160
    seed: int = 7


class ManifestSource(_Strict):
    """A user corpus: a folder with a CSV or JSONL manifest (path, transcript, speaker columns)."""

    kind: Literal["manifest"] = "manifest"
    name: str
    root: str = Field(description="Folder (or s3:// prefix) holding the manifest and the audio files.")
    manifest: str = Field("manifest.csv", description="Manifest file name inside root (.csv or .jsonl).")
    language: str = "en"
    license: str = "unknown"
    only_with_keywords: bool = Field(
        False, description="Ingest only utterances whose transcript contains a keyword.")


class CommonVoiceSource(_Strict):
    """A Mozilla Common Voice release folder: ``validated.tsv`` (or another TSV) plus ``clips/*.mp3``."""

    kind: Literal["common_voice"] = "common_voice"
    name: str
    root: str = Field(description="Folder (or s3:// prefix) of one language, e.g. cv-corpus-17.0/en.")
    tsv: str = Field("validated.tsv", description="Which TSV of the release to read.")
    clips_folder: str = "clips"
    language: str | None = Field(None, description="Language code; None = the TSV's locale column.")
    license: str = "CC0-1.0"
    only_with_keywords: bool = Field(
        False, description="Ingest only utterances whose transcript contains a keyword.")


class LibriSpeechSource(_Strict):
    """A LibriSpeech subset: ``<reader>/<chapter>/<reader>-<chapter>.trans.txt`` plus FLAC files."""

    kind: Literal["librispeech"] = "librispeech"
    name: str
    root: str = Field(description="Folder (or s3:// prefix) above the reader folders, e.g. dev-clean.")
    audio_extension: str = ".flac"
    language: str = "en"
    license: str = "CC-BY-4.0"
    only_with_keywords: bool = Field(
        False, description="Ingest only utterances whose transcript contains a keyword.")


class SpeechCommandsSource(_Strict):
    """The Speech Commands layout: one folder per word of ``<speaker>_nohash_<n>.wav`` clips, plus
    ``_background_noise_/``.  Its clips are labelled by folder and need no alignment."""

    kind: Literal["speech_commands"] = "speech_commands"
    name: str
    root: str = Field(description="Folder (or s3:// prefix) holding the word folders.")
    language: str = "en"
    license: str = "CC-BY-4.0"
    unknown_percent: float = Field(
        100.0, ge=0, le=100,
        description="Share of the non-keyword word folders' clips kept as _unknown_ (chosen by a "
                    "stable hash of the file path).")
    background_folder: str = "_background_noise_"
    silence_clips_per_file: int = Field(
        60, ge=0, description="Most 1-s _silence_ windows cut from each background-noise file.")


CorpusSource = Annotated[
    DemoCorpusSource | ManifestSource | CommonVoiceSource | LibriSpeechSource | SpeechCommandsSource,
    Field(discriminator="kind"),
]


class IngestSettings(_Strict):
    """Limits and checks applied to every corpus file before it is used."""

    max_file_mb: float = Field(512.0, gt=0, description="Larger files are rejected as too_large.")
    max_utterance_s: float = Field(600.0, gt=0, description="Longer recordings are rejected as too_long.")
    min_utterance_s: float = Field(0.1, ge=0, description="Shorter recordings are rejected as too_short.")
    silence_peak_dbfs: float = Field(
        -60.0, description="A recording whose peak stays below this is rejected as silent.")
    hash_cache: bool = Field(
        True, description="Remember each file's sha256 and audio facts by (path, size, mtime) under "
                          "the storage root, so an unchanged corpus is not read again.")
    max_field_bytes: int = Field(
        65_536, gt=0, description="A manifest field (transcript, speaker, path...) longer than this "
                                  "many UTF-8 bytes makes its row a field_too_large problem. 600 s "
                                  "of speech is ~2000 words (~12 KB); 64 KiB leaves room for any "
                                  "real transcript and stops a pasted blob from reaching the tables.")
    max_line_bytes: int = Field(
        131_072, gt=0, description="A manifest line longer than this is skipped unread as one "
                                   "line_too_long problem (the rest of the manifest goes on). Also "
                                   "bounds the memory one row can take while a manifest is streamed; "
                                   "128 KiB is Python csv's own default field limit.")
    max_manifest_rows: int = Field(
        2_000_000, gt=0, description="Rows after this many in one manifest are not read (one "
                                     "too_many_rows problem says from which line): a runaway or "
                                     "hostile manifest cannot fill memory with entries.")
    max_channels: int = Field(
        8, ge=1, description="Recordings whose header declares more channels are rejected as "
                             "too_many_channels before any sample is decoded (7.1 audio has 8).")
    max_decoded_mb: float = Field(
        1024.0, gt=0, description="Recordings whose header declares more float32 samples than this "
                                  "many MB (frames x channels x 4) are rejected as too_large before "
                                  "decoding: a compressed file cannot make the reader allocate "
                                  "gigabytes. 600 s of 48 kHz stereo is ~230 MB.")


class OutlierSettings(_Strict):
    """Per-keyword outlier flagging on an MFCC-statistics embedding (MSWC's embedding-distance idea)."""

    enabled: bool = True
    quarantine: bool = Field(True, description="Quarantine flagged clips (reason 'outlier').")
    threshold: float = Field(
        6.0, gt=0, description="Robust z-score of a clip's distance to its keyword's median above "
                               "which it is an outlier (3.5 is the usual 'look at it' level).")
    min_clips: int = Field(10, ge=3, description="Keywords with fewer clips are not scored.")


AlignerKind = Literal["pocketsphinx", "tts_dtw"]


class DtwAlignmentSettings(_Strict):
    """The TTS+DTW aligner (``kws_assets.core.speech.dtw_aligner``): recordings are aligned against
    espeak-ng's rendering of their transcript, so it serves any language espeak-ng speaks."""

    voices: dict[str, str] = Field(
        default_factory=dict,
        description="Language -> espeak-ng voice the rendering uses (e.g. {es: es-419}); other "
                    "languages use the voice named like the language, else its first regional one.")
    rate_wpm: int = Field(175, ge=80, le=450, description="Speaking rate of the rendering.")
    band_fraction: float = Field(
        0.3, gt=0, le=1, description="Sakoe-Chiba band radius as a fraction of the longer sequence.")
    min_band_s: float = Field(0.5, gt=0, description="Smallest band radius, seconds.")
    max_band_s: float = Field(5.0, gt=0, description="Largest band radius, seconds.")
    min_utterance_confidence: float = Field(
        0.3, ge=0, le=1, description="Utterances whose words' mean confidence is lower fail "
                                     "alignment (the audio does not match the transcript).")
    max_tempo_ratio: float = Field(
        3.0, gt=1, description="Recordings whose speech is this much faster or slower than the "
                               "rendering fail alignment.")
    trim_margin_s: float = Field(
        0.7, ge=0, description="Recordings are cut to their loud region plus this margin before "
                               "warping (long pauses would not fit the band).")

    @model_validator(mode="after")
    def _check_band(self) -> "DtwAlignmentSettings":
        if self.min_band_s > self.max_band_s:
            raise ValueError("alignment.dtw.min_band_s must not exceed max_band_s")
        return self


class AlignmentSettings(_Strict):
    pad_seconds: float = Field(0.5, ge=0, description="Silence padded around utterances before aligning.")
    unknown_per_utterance: int = Field(1, ge=0, description="Non-keyword words cut as _unknown_ per utterance.")
    min_word_seconds: float = Field(0.08, gt=0, description="Shorter aligned words are treated as misses.")
    # --- aligner per language (kws_assets.core.speech.aligners) ---------------------------------------
    aligners: dict[str, AlignerKind] = Field(
        default_factory=dict,
        description="Language -> aligner, overriding the default choice: pocketsphinx for English "
                    "(en, en-US...), tts_dtw for every other language. pocketsphinx is English-only.")
    min_confidence: float = Field(
        0.3, ge=0, le=1, description="Aligned clips whose word confidence is lower are quarantined "
                                     "(reason low_alignment_confidence).")
    dtw: DtwAlignmentSettings = Field(default_factory=DtwAlignmentSettings)

    @field_validator("aligners")
    @classmethod
    def _pocketsphinx_is_english(cls, aligners: dict[str, str]) -> dict[str, str]:
        wrong = [lang for lang, kind in aligners.items()
                 if kind == "pocketsphinx" and _primary_language(lang) != "en"]
        if wrong:
            raise ValueError(f"alignment.aligners: pocketsphinx ships an English model only, "
                             f"not for {wrong}; use tts_dtw")
        return aligners


def _primary_language(code: str) -> str:
    """``"es_MX"`` -> ``"es"``."""
    return str(code).strip().lower().replace("_", "-").split("-", 1)[0]


class QualitySettings(_Strict):
    """Thresholds of the clip quality gate; a clip failing any of them is quarantined."""

    min_rms_dbfs: float = -55.0
    max_peak_dbfs: float = 0.0
    max_clipping_ratio: float = 0.01
    max_abs_dc_offset: float = 0.05
    min_snr_db: float = 3.0
    min_speech_ratio: float = 0.05
    duration_tolerance_s: float = 0.001


class SplitSettings(_Strict):
    """Speaker-disjoint hash split, as TensorFlow's speech_commands input_data.py does it."""

    val_percent: float = Field(10.0, ge=0, le=100)
    test_percent: float = Field(10.0, ge=0, le=100)
    salt: str = "kws-split-v1"

    @model_validator(mode="after")
    def _check(self) -> "SplitSettings":
        if self.val_percent + self.test_percent >= 100:
            raise ValueError("val_percent + test_percent must be below 100")
        return self


class ModelSettings(_Strict):
    """DS-CNN, MLPerf Tiny reference shape (DS-CNN-S)."""

    n_filters: int = Field(64, gt=0)
    n_blocks: int = Field(4, ge=1)
    first_kernel: tuple[int, int] = (10, 4)
    first_stride: tuple[int, int] = (2, 2)
    dropout: float = Field(0.2, ge=0, lt=1)
    final_dropout: float = Field(0.4, ge=0, lt=1)


class SpecAugmentSettings(_Strict):
    """Training-time augmentation on normalised MFCCs (time shift + SpecAugment-style masks)."""

    max_shift_frames: int = Field(3, ge=0, description="Random roll of up to this many frames.")
    time_masks: int = Field(1, ge=0)
    max_time_mask_frames: int = Field(4, ge=0)
    coeff_masks: int = Field(1, ge=0)
    max_coeff_mask: int = Field(2, ge=0)


class TrainSettings(_Strict):
    max_epochs: int = Field(40, ge=1)
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(4e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    patience: int = Field(12, ge=1, description="Epochs without val improvement before stopping.")
    min_epochs: int = Field(8, ge=1, description="Never stop early before this epoch: validation "
                            "accuracy sits at chance while BatchNorm statistics warm up.")
    seed: int = 0
    threads: int = Field(2, ge=1)
    spec_augment: SpecAugmentSettings = Field(default_factory=SpecAugmentSettings)
    lr_schedule: Literal["constant", "cosine"] = Field(
        "cosine", description="cosine: decay from learning_rate to learning_rate * min_lr_fraction "
                              "over max_epochs; constant: no decay.")
    min_lr_fraction: float = Field(0.05, gt=0, le=1)


class QuantizeSettings(_Strict):
    calibration_rows: int = Field(256, ge=1, description="Validation rows used to calibrate int8.")
    per_channel: bool = True


class NegativeSettings(_Strict):
    """The negative classes: synthetic ``_unknown_`` words (phoneme neighbours of the keywords and
    other dictionary words) beside the corpus's own non-keyword words."""

    lexicon: str = Field(
        "", description="A CMU-format pronouncing dictionary (word PH ON EMES per line); empty = "
                        "the en-us dictionary pocketsphinx ships (134k words, ARPAbet).")
    min_phoneme_distance: int = Field(1, ge=1, description="Homophones (distance 0) are never negatives.")
    max_phoneme_distance: int = Field(2, ge=1)
    neighbours_per_keyword: int = Field(6, ge=0, description="Phoneme neighbours spoken per keyword.")
    other_words: int = Field(40, ge=0, description="Other dictionary words spoken as _unknown_.")
    unknown_ratio: float = Field(
        0.6, ge=0, description="Synthetic _unknown_ word renders relative to the renders of one "
                               "keyword (class balance: 1.0 = as many as an average keyword class).")
    speech_windows: int = Field(
        120, ge=0, description="Per keyword: 1-s windows cut at random points out of sentences of "
                              "other words, as _unknown_ (what a streaming detector mostly hears).")
    window_sentence_words: tuple[int, int] = Field((5, 10), description="Words per such sentence.")
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> "NegativeSettings":
        if self.min_phoneme_distance > self.max_phoneme_distance:
            raise ValueError("negatives.min_phoneme_distance exceeds max_phoneme_distance")
        return self


class AugmentSettings(_Strict):
    """Waveform augmentation of validated clips (torchaudio): each augmented copy keeps its source
    clip id and the parameters drawn.  Probabilities are per copy; ranges are min/max."""

    copies_per_clip: int = Field(1, ge=0, description="Augmented copies of each clip (0 = off).")
    splits: list[Literal["train", "val", "test"]] = Field(default_factory=lambda: ["train"])
    skip_labels: list[str] = Field(default_factory=lambda: [SILENCE_LABEL])
    noise_probability: float = Field(0.8, ge=0, le=1)
    snr_db_range: tuple[float, float] = (5.0, 25.0)
    noise_source_weights: dict[Literal["colored", "babble", "folder"], float] = Field(
        default_factory=lambda: {"colored": 1.0, "babble": 1.0, "folder": 1.0},
        description="Relative odds of each noise source (folder only counts if noise_folder set).")
    colored_kinds: list[Literal["white", "pink", "brown"]] = Field(
        default_factory=lambda: ["white", "pink", "brown"], min_length=1)
    babble_talkers: tuple[int, int] = Field((3, 7), description="Clips summed into babble, min/max.")
    noise_folder: str = Field("", description="Folder of noise recordings (wav/flac/ogg), searched "
                                              "recursively; relative = to the config file.")
    rir_probability: float = Field(0.4, ge=0, le=1)
    rt60_s_range: tuple[float, float] = (0.15, 0.8)
    shift_probability: float = Field(0.6, ge=0, le=1)
    max_shift_ms: float = Field(150.0, ge=0)
    gain_probability: float = Field(0.5, ge=0, le=1)
    gain_db_range: tuple[float, float] = (-15.0, 5.0)
    speed_probability: float = Field(0.3, ge=0, le=1)
    speed_range: tuple[float, float] = (0.88, 1.12)
    pitch_probability: float = Field(0.2, ge=0, le=1)
    pitch_semitones_range: tuple[float, float] = (-2.0, 2.0)
    telephone_probability: float = Field(0.15, ge=0, le=1, description="300-3400 Hz band-pass.")
    resample_8k_probability: float = Field(0.15, ge=0, le=1, description="Round trip via 8 kHz.")
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> "AugmentSettings":
        for name in ("snr_db_range", "babble_talkers", "rt60_s_range", "gain_db_range",
                     "speed_range", "pitch_semitones_range"):
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"augment.{name}: min {low} exceeds max {high}")
        if self.speed_range[0] <= 0 or self.rt60_s_range[0] <= 0 or self.babble_talkers[0] < 1:
            raise ValueError("augment: speeds and rt60 must be positive, babble needs >= 1 talker")
        if any(w < 0 for w in self.noise_source_weights.values()):
            raise ValueError("augment.noise_source_weights must not be negative")
        return self


class EvalSettings(_Strict):
    """The evaluation asset: clip accuracy, streaming detection (FRR at a false-accepts-per-hour
    operating point) and accuracy on voices the training grid never used."""

    negative_minutes: float = Field(30.0, gt=0, description="Length of the keyword-free stream.")
    positives_per_keyword: int = Field(60, ge=1, description="Most test clips embedded per keyword.")
    hop_ms: float = Field(100.0, gt=0, description="Stride of the 1-s detection window.")
    smoothing_windows: int = Field(3, ge=1, description="Posterior moving average, in windows.")
    refractory_s: float = Field(1.0, ge=0, description="No new detection this long after one.")
    target_fa_per_hour: float = Field(1.0, gt=0, description="Operating point reported as FRR@FA/h.")
    threshold_steps: int = Field(200, ge=2, description="Detection thresholds swept for the DET curve.")
    noise_floor_dbfs: float = Field(-60.0, description="Pink noise under the whole stream.")
    held_out_voices: list[str] = Field(
        default_factory=lambda: list(DEFAULT_HELD_OUT_VOICES),
        description="voice+variant never used for training: keywords and other words spoken by "
                    "them give the unseen-voice accuracy (voices that are training speakers are "
                    "dropped and reported).")
    seed: int = 0


class QuantGateSettings(_Strict):
    """Asset-check thresholds for shipping the int8 artifact."""

    max_accuracy_drop_points: float = Field(
        1.0, ge=0, description="Largest float-minus-int8 test accuracy drop, percentage points.")
    max_artifact_kb: float = Field(256.0, gt=0, description="Largest int8 model file, KiB.")


class StorageSettings(_Strict):
    """Where data lives.  ``deployment`` picks the backend of clips, tables and checkpoints:
    ``local`` (folders under ``root``) or ``s3`` (objects under ``s3://s3_bucket/s3_prefix``).
    Credentials are never configured here: boto3 reads them from the environment."""

    root: str = Field(".kws_data", description="Clip store, tables and artifacts live under here.")
    deployment: Literal["local", "s3"] = Field(
        "local", description="local: clips/tables/models under root; s3: under s3_bucket/s3_prefix "
                             "(root still holds the generated demo corpus and the artifact).")
    s3_bucket: str = Field("", description="Bucket for deployment 's3' (must exist).")
    s3_prefix: str = Field("kws", description="Key prefix under the bucket: <prefix>/clips, "
                                              "<prefix>/tables, <prefix>/models.")
    s3_endpoint_url: str = Field("", description="S3-compatible endpoint (MinIO, moto...); empty = AWS.")
    s3_region: str = Field("", description="AWS region; empty = from the environment (AWS_REGION...).")
    s3_retries: int = Field(4, ge=0, description="Retries of a failed S3 request after its first "
                                                "attempt (botocore standard mode: 5xx, throttling "
                                                "and dropped connections, exponential backoff).")

    @model_validator(mode="after")
    def _check_s3(self) -> "StorageSettings":
        if self.deployment == "s3":
            if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", self.s3_bucket):
                raise ValueError(f"storage.deployment 's3' needs a valid storage.s3_bucket, "
                                 f"got {self.s3_bucket!r}")
            if any(p in {".", ".."} or p.startswith(".") for p in self.s3_prefix.split("/") if p):
                raise ValueError(f"storage.s3_prefix {self.s3_prefix!r} has a '.'-component")
        return self


class AutomationSettings(_Strict):
    """How a running Dagster deployment notices new work: the landing zone and sensor cadence."""

    landing_root: str = Field(
        "landing", description="Where corpus batches land, one folder per batch holding a manifest "
                               "(written last). Relative = under storage.root; may be s3://.")
    landing_manifests: list[str] = Field(
        default_factory=lambda: ["manifest.csv", "manifest.tsv", "manifest.jsonl"], min_length=1,
        description="Manifest file names a batch folder may hold; the first one found is used.")
    landing_license: str = Field("unknown", description="License of landed rows that name none.")
    sensor_interval_s: int = Field(30, ge=1, description="Minimum seconds between sensor ticks.")


LANGUAGE_GRID_VOICES = 8  # synthetic grid voices of a non-English config without its own list
LANGUAGE_DEMO_VOICES = 4  # demo corpus voices of such a config (other variants than the grid's)
LANGUAGE_HELD_OUT_VOICES = 2  # evaluation voices of such a config (used by neither of the above)


def language_voice_defaults(language: str) -> dict:
    """Voice settings for a config in ``language`` that names none: ``tts.voices`` (a grid of
    voice+variant speakers of that language), ``tts.accents`` (empty = all its voices),
    ``tts.carrier_phrases`` (its phrases in ``core.fillers``, or none), the demo corpus voices and
    ``evaluation.held_out_voices``, all distinct.  Raises ValueError when espeak-ng has no voice
    for the language."""
    from kws_assets.core.speech.fillers import carrier_phrases  # espeak-ng is loaded only when needed
    from kws_assets.core.speech.languages import default_voices

    demo_end = LANGUAGE_GRID_VOICES + LANGUAGE_DEMO_VOICES
    speakers = default_voices(language, demo_end + LANGUAGE_HELD_OUT_VOICES)
    return {
        "tts": {"voices": speakers[:LANGUAGE_GRID_VOICES], "accents": [],
                "carrier_phrases": list(carrier_phrases(language))},
        "demo_voices": speakers[LANGUAGE_GRID_VOICES:demo_end],
        "held_out_voices": speakers[demo_end:],
    }


class KwsConfig(_Strict):
    keywords: list[str] = Field(default_factory=lambda: list(SPEECH_COMMANDS_TEN), min_length=1)
    language: str = "en"
    sources: list[CorpusSource] = Field(default_factory=lambda: [DemoCorpusSource()])
    audio: AudioSettings = Field(default_factory=AudioSettings)
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    tts: TtsSettings = Field(default_factory=TtsSettings)
    noise: NoiseSettings = Field(default_factory=NoiseSettings)
    alignment: AlignmentSettings = Field(default_factory=AlignmentSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    splits: SplitSettings = Field(default_factory=SplitSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    train: TrainSettings = Field(default_factory=TrainSettings)
    quantize: QuantizeSettings = Field(default_factory=QuantizeSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    outliers: OutlierSettings = Field(default_factory=OutlierSettings)
    automation: AutomationSettings = Field(default_factory=AutomationSettings)
    negatives: NegativeSettings = Field(default_factory=NegativeSettings)
    augment: AugmentSettings = Field(default_factory=AugmentSettings)
    evaluation: EvalSettings = Field(default_factory=EvalSettings)
    quant_gate: QuantGateSettings = Field(default_factory=QuantGateSettings)

    @field_validator("keywords")
    @classmethod
    def _normalise_keywords(cls, keywords: list[str]) -> list[str]:
        cleaned = [k.strip().lower() for k in keywords]
        if any(not k for k in cleaned):
            raise ValueError("keywords must be non-empty strings")
        if any(k.startswith("_") for k in cleaned):
            raise ValueError("keywords may not start with '_' (reserved for _unknown_/_silence_)")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError(f"duplicate keywords: {cleaned}")
        return cleaned

    @model_validator(mode="before")
    @classmethod
    def _voices_of_the_language(cls, data: object) -> object:
        """A config in another language than English gets that language's espeak-ng voices,
        accents and carrier phrases wherever it does not name its own (the defaults above are
        English); see :func:`language_voice_defaults`."""
        if not isinstance(data, dict) or _primary_language(data.get("language") or "en") == "en":
            return data
        defaults = language_voice_defaults(str(data["language"]))
        data = dict(data)
        tts = data.get("tts") or {}
        if isinstance(tts, TtsSettings):
            missing = {k: v for k, v in defaults["tts"].items() if k not in tts.model_fields_set}
            data["tts"] = tts.model_copy(update=missing)
        else:
            data["tts"] = {**defaults["tts"], **dict(tts)}
        sources = data.get("sources")
        if sources is None:
            data["sources"] = [{"kind": "demo_tts", "voices": defaults["demo_voices"]}]
        else:
            data["sources"] = [
                {**s, "voices": defaults["demo_voices"]}
                if isinstance(s, dict) and s.get("kind", "demo_tts") == "demo_tts" and "voices" not in s
                else s
                for s in sources]
        evaluation = data.get("evaluation") or {}
        if isinstance(evaluation, dict) and "held_out_voices" not in evaluation:
            data["evaluation"] = {**evaluation, "held_out_voices": defaults["held_out_voices"]}
        return data

    @model_validator(mode="after")
    def _unique_source_names(self) -> "KwsConfig":
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"corpus source names must be unique: {names}")
        return self

    @property
    def labels(self) -> list[str]:
        """Class labels in model output order: silence, unknown, then the keywords."""
        return [SILENCE_LABEL, UNKNOWN_LABEL, *self.keywords]

    def storage_path(self, *parts: str) -> Path:
        return Path(self.storage.root).expanduser().resolve().joinpath(*parts)

    def section_hash(self, *sections: str) -> str:
        """A short stable hash of some config sections: used as an asset code/data version."""
        payload = {s: _dump(getattr(self, s)) for s in sections}
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        return digest[:12]


def _dump(value: object) -> object:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_dump(v) for v in value]
    return value


class _Yaml12BoolLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: only true/false are booleans.

    YAML 1.1 reads ``yes``, ``no``, ``on`` and ``off`` as booleans — four of the Speech Commands
    keywords — so an unquoted keyword list would silently turn into True/False.
    """


_Yaml12BoolLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12BoolLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def parse_yaml(text: str) -> object:
    return yaml.load(text, Loader=_Yaml12BoolLoader)  # noqa: S506 - a SafeLoader subclass


DEFAULT_CONFIG_NAME = "kws.yaml"
CONFIG_ENV_VAR = "KWS_CONFIG"


def config_path() -> Path | None:
    """The config file in force: ``$KWS_CONFIG``, else ``./kws.yaml`` if present, else None."""
    env = os.environ.get(CONFIG_ENV_VAR)
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{CONFIG_ENV_VAR}={env} does not name a file")
        return path
    local = Path.cwd() / DEFAULT_CONFIG_NAME
    return local if local.is_file() else None


def load_config(path: str | os.PathLike[str] | None = None) -> KwsConfig:
    """Load and validate a config file; relative storage roots resolve against the file's folder."""
    if path is None:
        path = config_path()
    if path is None:
        return KwsConfig()
    path = Path(path)
    raw = parse_yaml(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: top level must be a mapping")
    base = path.resolve().parent
    storage = raw.setdefault("storage", {}) or {}
    root = storage.get("root", StorageSettings().root)
    if "://" not in root and not Path(root).expanduser().is_absolute():
        storage["root"] = str(base / root)
    raw["storage"] = storage
    for src in raw.get("sources", []) or []:
        if isinstance(src, dict) and "root" in src and "://" not in src["root"]:
            if not Path(src["root"]).expanduser().is_absolute():
                src["root"] = str(base / src["root"])
    augment = raw.get("augment")
    if isinstance(augment, dict) and augment.get("noise_folder"):
        if not Path(augment["noise_folder"]).expanduser().is_absolute():
            augment["noise_folder"] = str(base / augment["noise_folder"])
    return KwsConfig.model_validate(raw)
