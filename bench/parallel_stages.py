"""The per-clip stages at 1 and N worker processes, each beside its own kernel in the same run.

For augmentation, synthesis and alignment the *stage* is the core function the asset calls
(clip store reads and writes, recipes, failure rows, the process pool) and the *kernel* is the
work it cannot avoid, on in-memory audio in this process: ``apply_params`` per recipe,
``render_keyword_clip`` per recipe, ``align`` per utterance.  ``stage / kernel`` is the share of the
kernel's speed the stage keeps at one worker (overhead) and the speed-up it adds at N (the
parallel gain); both are ratios measured in the same interleaved rounds, so a busy machine moves
them together and they stay comparable from run to run, unlike a clips/s target.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import polars as pl

from bench.stages import ALIGN_VOICES, SENTENCES
from bench.timing import interleaved
from kws_assets.core.audio.io import colored_noise, resample, write_wav
from kws_assets.core.corpus.segment import align_utterances
from kws_assets.core.dataset import augment, synthesis
from kws_assets.core.features.mfcc import single_threaded_torch
from kws_assets.core.parallel import available_cores
from kws_assets.core.speech import tts
from kws_assets.core.speech.aligners import AlignerChoice
from kws_assets.core.storage.clip_store import ClipStore
from kws_assets.settings import AlignmentSettings, AudioSettings, AugmentSettings

KEYWORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
SYNTH_VOICES = ("en-us+m1", "en-us+f2", "en+m3", "en-us+f4")


def _clip_rows(store: ClipStore, n: int, sample_rate: int) -> pl.DataFrame:
    """``n`` validated-looking train rows of tone-plus-noise clips (a third ``_unknown_``, the
    babble pool)."""
    rng = np.random.default_rng(0)
    t = np.arange(sample_rate) / sample_rate
    rows = []
    for i in range(n):
        label = "_unknown_" if i % 3 == 0 else "yes"
        x = (0.3 * np.sin(2 * np.pi * (200 + 7 * i) * t)).astype(np.float32)
        x += 0.01 * colored_noise("pink", sample_rate, rng)
        clip_id = f"c{i:05d}"
        uri = store.put(store.key_for("bench", label, clip_id), x, sample_rate)
        rows.append(
            {
                "clip_id": clip_id,
                "uri": uri,
                "label": label,
                "source": "bench",
                "speaker": f"s{i % 7}",
                "language": "en",
                "origin_id": clip_id,
                "start_s": 0.0,
                "sample_rate": sample_rate,
                "num_samples": sample_rate,
                "split": "train",
            }
        )
    return pl.DataFrame(rows)


def _ratios(timings: dict, kernel: str, stages: dict[int, str]) -> dict:
    best = {name: t.best_rate for name, t in timings.items()}
    return {
        "timings": {name: t.as_dict() for name, t in timings.items()},
        "items_per_s": best,
        "stage_over_kernel": {str(w): best[name] / best[kernel] for w, name in stages.items()},
        "speedup_over_one_worker": {
            str(w): best[name] / best[stages[1]] for w, name in stages.items()
        },
    }


def augmentation_bench(n_clips: int, workers: list[int], rounds: int, tmp: Path) -> dict:
    audio, settings = AudioSettings(), AugmentSettings(copies_per_clip=1)
    store = ClipStore.at(tmp / "sources")
    clips = _clip_rows(store, n_clips, audio.sample_rate)
    samples = [store.read(u).samples for u in clips["uri"]]
    pool = sorted(clips.filter(pl.col("label") == "_unknown_")["clip_id"].to_list())
    by_id = dict(zip(clips["clip_id"], samples, strict=True))
    sources = augment.NoiseSources(pool, by_id.__getitem__)
    recipes = [
        augment.draw_params(
            settings,
            np.random.default_rng(augment.copy_seed(c, 1, settings.seed)),
            sources,
            audio.sample_rate,
            exclude_babble=[c],
        )
        for c in clips["clip_id"]
    ]
    outputs = iter(range(10**6))

    def kernel() -> None:
        with single_threaded_torch():  # as the stage runs it
            for x, params in zip(samples, recipes, strict=True):
                augment.apply_params(x, audio.sample_rate, params, sources)

    def stage(w: int) -> None:
        out = ClipStore.at(tmp / f"augmented{next(outputs)}")  # fresh: nothing reused
        augment.augment_clips(clips, settings, audio, out, lambda uri: store.read(uri), workers=w)

    runs = {"kernel_apply_params": (kernel, n_clips)}
    runs |= {f"augment_clips_w{w}": (lambda w=w: stage(w), n_clips) for w in workers}
    timings = interleaved(runs, rounds=rounds)
    return {
        "clips": n_clips,
        **_ratios(timings, "kernel_apply_params", _names("augment_clips", workers)),
    }


def synthesis_bench(n_recipes: int, workers: list[int], rounds: int, tmp: Path) -> dict:
    audio = AudioSettings()
    recipes = [
        synthesis.ClipRecipe(
            KEYWORDS[i % len(KEYWORDS)],
            KEYWORDS[i % len(KEYWORDS)],
            SYNTH_VOICES[i % len(SYNTH_VOICES)],
            140 + 10 * (i % 5),
            40 + 5 * (i % 4),
            i,
        )
        for i in range(n_recipes)
    ]
    outputs = iter(range(10**6))

    def kernel() -> None:  # speak, trim, resample, centre: the clip, without the store
        with single_threaded_torch():
            for r in recipes:
                synthesis.render_keyword_clip(r, audio)

    def stage(w: int) -> None:
        out = ClipStore.at(tmp / f"synthetic{next(outputs)}")
        synthesis.render_to_store(recipes, audio, out, "en", workers=w)

    runs = {"kernel_render_keyword_clip": (kernel, n_recipes)}
    runs |= {f"render_to_store_w{w}": (lambda w=w: stage(w), n_recipes) for w in workers}
    timings = interleaved(runs, rounds=rounds)
    return {
        "recipes": n_recipes,
        **_ratios(timings, "kernel_render_keyword_clip", _names("render_to_store", workers)),
    }


def alignment_bench(n_utterances: int, workers: list[int], rounds: int, tmp: Path) -> dict:
    audio, settings = AudioSettings(), AlignmentSettings()
    utterances, spoken = [], []
    for i in range(n_utterances):
        text = SENTENCES[i % len(SENTENCES)]
        out = tts.synthesize(text, voice=ALIGN_VOICES[i % len(ALIGN_VOICES)], rate=160)
        x = resample(out.samples, out.sample_rate, audio.sample_rate)
        path = tmp / f"utt{i}.wav"
        write_wav(path, x, audio.sample_rate)
        spoken.append((x, text))
        utterances.append(
            {
                "utterance_id": f"u{i}",
                "uri": str(path),
                "transcript": text,
                "speaker": "bench",
                "language": "en",
                "source": "bench",
            }
        )
    choice = AlignerChoice(settings, audio.sample_rate)
    aligner = choice.for_language("en")
    outputs = iter(range(10**6))

    def kernel() -> None:
        for x, text in spoken:
            aligner.align(x, audio.sample_rate, text)

    def stage(w: int) -> None:
        out = ClipStore.at(tmp / f"aligned{next(outputs)}")
        align_utterances(utterances, KEYWORDS, choice, out, audio, settings, workers=w)

    runs = {"kernel_align": (kernel, n_utterances)}
    runs |= {f"align_utterances_w{w}": (lambda w=w: stage(w), n_utterances) for w in workers}
    timings = interleaved(runs, rounds=rounds)
    return {
        "utterances": n_utterances,
        **_ratios(timings, "kernel_align", _names("align_utterances", workers)),
    }


def _names(stage: str, workers: list[int]) -> dict[int, str]:
    return {w: f"{stage}_w{w}" for w in workers}


def run_parallel_stages_bench(
    n_clips: int, n_recipes: int, n_utterances: int, rounds: int, max_workers: int = 0
) -> dict:
    """Augmentation, synthesis and alignment at 1 and N workers (N = the cores available, or
    ``max_workers``), each with its kernel, in interleaved rounds."""
    top = max_workers or available_cores()
    workers = sorted({1, top})
    with tempfile.TemporaryDirectory(prefix="kws-parallel-") as folder:
        tmp = Path(folder)
        return {
            "workers": workers,
            "cores": available_cores(),
            "augmentation": augmentation_bench(n_clips, workers, rounds, tmp),
            "synthesis": synthesis_bench(n_recipes, workers, rounds, tmp),
            "alignment": alignment_bench(n_utterances, workers, rounds, tmp),
        }
