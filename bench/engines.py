"""TTS engine throughput: single-word utterances per second for every usable engine, one
thread, plus speaker perturbations per second of a 1 s clip.

``engine_rates(words, seconds_budget)`` splits the budget evenly over the usable engines; each
engine first renders one word untimed (process start-up, model load) and then renders the words
in turn until its share of the budget is spent.  ``python -m bench.engines`` prints the JSON."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence

import numpy as np
import torch

from kws_assets.core.speech.engines import ENGINES, available_engines

DEFAULT_WORDS = ("yes", "no", "stop", "go", "left", "right", "up", "down", "on", "off")
DEFAULT_BUDGET_S = 20.0
PERTURB_CLIP_SR = 16000
PERTURB_SEED = 0


def _default_voice(engine) -> str:
    voices = engine.voices("en-us")
    return "en-us" if engine.name == "espeak" else voices[0]


def engine_rates(
    words: Sequence[str] = DEFAULT_WORDS, seconds_budget: float = DEFAULT_BUDGET_S,
    engines: Sequence[str] | None = None,
) -> dict:
    """{engine: {voice, utterances, seconds, utterances_per_s, audio_s_per_s, first_call_s}},
    and ``skipped``: {engine: reason} for the engines that cannot run here."""
    if not words:
        raise ValueError("need at least one word")
    torch.set_num_threads(1)
    usable, skipped = available_engines(list(engines or ENGINES))
    share = seconds_budget / max(1, len(usable))
    results: dict = {"skipped": skipped, "words": list(words), "threads": 1}
    for engine in usable:
        voice = _default_voice(engine)
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
            if elapsed >= share:
                break
        results[engine.name] = {
            "voice": voice, "utterances": count, "seconds": round(elapsed, 3),
            "utterances_per_s": round(count / elapsed, 2),
            "audio_s_per_s": round(audio_s / elapsed, 2), "first_call_s": round(first_call, 3),
        }
    return results


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
    args = parser.parse_args(argv)
    report = engine_rates(DEFAULT_WORDS, args.seconds, args.engines)
    report["perturb"] = perturb_rate(min(5.0, args.seconds / 4))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
