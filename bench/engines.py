"""TTS engine throughput: single-word utterances per second for every usable engine, one
thread, plus speaker perturbations per second of a 1 s clip.

``engine_rates(words, seconds_budget, voices_per_engine=n)`` splits the budget evenly over the
usable engines and each engine's share over up to ``n`` of its voices; each voice first renders one
word untimed (process start-up, model load) and then renders the words in turn until its share of
the budget is spent.  ``python -m bench.engines`` prints the JSON."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence

import numpy as np
import torch

from kws_assets.core.speech.engines import ENGINES, TtsEngineError, available_engines

DEFAULT_WORDS = ("yes", "no", "stop", "go", "left", "right", "up", "down", "on", "off")
DEFAULT_BUDGET_S = 20.0
PERTURB_CLIP_SR = 16000
PERTURB_SEED = 0


def bench_voices(engine, count: int) -> list[str]:
    """Up to ``count`` of the engine's English voices, spread evenly over its voice list;
    espeak-ng's plain ``en-us`` (the demo's base voice) first."""
    if count < 1:
        raise ValueError(f"voices per engine must be at least 1, got {count}")
    voices = list(engine.voices("en-us"))
    if not voices:
        return []
    first = "en-us" if engine.name == "espeak" and "en-us" in voices else voices[0]
    rest = [v for v in voices if v != first]
    picked = [first]
    if count > 1 and rest:
        step = len(rest) / min(count - 1, len(rest))
        picked += [rest[int(i * step)] for i in range(min(count - 1, len(rest)))]
    return picked


def _voice_rate(engine, voice: str, words: Sequence[str], seconds: float) -> dict:
    """Render ``words`` in turn with one voice until ``seconds`` are spent (after one untimed
    first call: process start-up, model load)."""
    start = time.perf_counter()
    engine.render(words[0], voice)
    first_call = time.perf_counter() - start
    count, audio_s = 0, 0.0
    start = time.perf_counter()
    while True:
        clip = engine.render(words[count % len(words)], voice, seed=count)
        count += 1
        audio_s += clip.duration_s
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            break
    return {
        "utterances": count,
        "seconds": round(elapsed, 3),
        "audio_s": round(audio_s, 3),
        "utterances_per_s": round(count / elapsed, 2),
        "audio_s_per_s": round(audio_s / elapsed, 2),
        "first_call_s": round(first_call, 3),
    }


def engine_rates(
    words: Sequence[str] = DEFAULT_WORDS,
    seconds_budget: float = DEFAULT_BUDGET_S,
    engines: Sequence[str] | None = None,
    voices_per_engine: int = 1,
) -> dict:
    """Per usable engine: the rates over all its measured voices {utterances, seconds,
    utterances_per_s, audio_s_per_s, first_call_s (the slowest voice's)} and ``voices``: {voice:
    the same for that voice}.  ``skipped``: {engine or engine:voice: reason} for what cannot run
    here.  The budget is split evenly over the engines, each engine's share over its voices."""
    if not words:
        raise ValueError("need at least one word")
    if seconds_budget <= 0:
        raise ValueError(f"seconds_budget must be positive, got {seconds_budget}")
    torch.set_num_threads(1)
    usable, skipped = available_engines(list(engines or ENGINES))
    share = seconds_budget / max(1, len(usable))
    results: dict = {
        "skipped": skipped,
        "words": list(words),
        "threads": 1,
        "voices_per_engine": voices_per_engine,
        "seconds_budget": seconds_budget,
    }
    for engine in usable:
        voices = bench_voices(engine, voices_per_engine)
        if not voices:
            skipped[engine.name] = "no English voice installed"
            continue
        measured: dict[str, dict] = {}
        for voice in voices:
            try:
                measured[voice] = _voice_rate(engine, voice, words, share / len(voices))
            except TtsEngineError as exc:  # one broken voice is reported, the others measured
                skipped[f"{engine.name}:{voice}"] = str(exc)
        if not measured:
            continue
        count = sum(v["utterances"] for v in measured.values())
        seconds = sum(v["seconds"] for v in measured.values())
        audio_s = sum(v["audio_s"] for v in measured.values())
        results[engine.name] = {
            "utterances": count,
            "seconds": round(seconds, 3),
            "utterances_per_s": round(count / seconds, 2),
            "audio_s_per_s": round(audio_s / seconds, 2),
            "first_call_s": max(v["first_call_s"] for v in measured.values()),
            "voices": measured,
        }
    return results


def engine_names(report: dict) -> list[str]:
    """The engines measured in an :func:`engine_rates` report (its other keys are bookkeeping)."""
    return [name for name, value in report.items() if isinstance(value, dict) and "voices" in value]


def perturb_rate(seconds_budget: float = 5.0) -> dict:
    """Speaker perturbations per second of a 1 s, 16 kHz clip (random draws, one thread)."""
    from kws_assets.core.dataset.perturb import draw_perturbation, perturb
    from kws_assets.settings import SpeakerPerturbationSettings

    torch.set_num_threads(1)
    rng = np.random.default_rng(PERTURB_SEED)
    clip = (0.3 * rng.standard_normal(PERTURB_CLIP_SR)).astype(np.float32)
    ranges = SpeakerPerturbationSettings()
    count = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds_budget:
        perturb(clip, PERTURB_CLIP_SR, draw_perturbation(rng, ranges))
        count += 1
    elapsed = time.perf_counter() - start
    return {"clips": count, "seconds": round(elapsed, 3), "clips_per_s": round(count / elapsed, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=DEFAULT_BUDGET_S)
    parser.add_argument("--engines", nargs="*", default=None)
    parser.add_argument("--voices", type=int, default=1, help="voices measured per engine")
    args = parser.parse_args(argv)
    report = engine_rates(DEFAULT_WORDS, args.seconds, args.engines, args.voices)
    report["perturb"] = perturb_rate(min(5.0, args.seconds / 4))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
