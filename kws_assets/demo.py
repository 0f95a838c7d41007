"""``make demo``: materialize the whole graph through a persistent Dagster instance, then summarize.

The graph is partitioned (per corpus batch, per keyword), so the demo registers the partitions
the config names and runs them in order, as a backfill would: ``ingest_batch`` per batch,
``keyword_clips`` per keyword, then ``kws_pipeline`` (see ``kws_assets.lib.in_process``).
The runs are recorded in ``$DAGSTER_HOME`` (SQLite), so ``make ui`` afterwards shows the
partitions, materializations, their metadata and the lineage.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO, cast

import dagster as dg
import polars as pl

from kws_assets.core.dataset.data_card import CARD_FILE, engine_counts
from kws_assets.core.evaluation.peers import MICROWAKEWORD, OPENWAKEWORD
from kws_assets.core.evaluation.report import REPORT_FILE
from kws_assets.core.evaluation.transfer import TRANSFER_REPORT_FILE
from kws_assets.core.families import artifact_assets, families, get_family
from kws_assets.core.families.mfcc_dscnn import MFCC_DSCNN
from kws_assets.core.review.queue import clips_per_reason
from kws_assets.core.ship.micro_wake_word import ESPHOME_DIR
from kws_assets.core.ship.openwakeword_format import FOLDER as OWW_FOLDER
from kws_assets.core.ship.openwakeword_format import README_FILE as OWW_README
from kws_assets.core.storage.artifact_store import ArtifactFolder
from kws_assets.definitions import build_definitions
from kws_assets.lib.family_assets import release_key
from kws_assets.lib.in_process import GraphRun, failed_steps, materialize_graph
from kws_assets.lib.resources import settings_resource

FAMILY_ARTIFACTS = artifact_assets()
PEERS = (OPENWAKEWORD, MICROWAKEWORD)
"""The pretrained systems whose rows the summary shows beside the default family's."""
"""The artifact asset of each model family, by family name (from the registry)."""


def transfer_lines(report: ArtifactFolder | None, default_family: str) -> list[str]:
    """Accuracy of every family on speech it never trained on: real sources first, then the
    held-out engine, the synthetic test split last (in-distribution, it flatters)."""
    if report is None or not report.file(TRANSFER_REPORT_FILE).is_file():
        return []
    table = json.loads(report.file(TRANSFER_REPORT_FILE).read_text())["table"]
    out = [
        "\naccuracy on speech the models never trained on (all clips | keyword clips | "
        "always-_unknown_ would score):"
    ]
    for row in table:
        mark = "*" if row["family"] == default_family else " "
        keyword = (
            f"{row['keyword_accuracy']:.3f} of {row['keyword_clips']}"
            if row["keyword_clips"]
            else "no keyword clips"
        )
        out.append(
            f" {mark} {row['family']:<17} {row['set']:<42} {row['accuracy']:.3f} of "
            f"{row['clips']:<5} | {keyword:<16} | {row['always_unknown']:.3f}"
        )
    out.append("   (* = model.family, the default; the synthetic test split is in-distribution)")
    return out


def summarize(defs: dg.Definitions, instance: dg.DagsterInstance) -> str:
    cfg = settings_resource(defs).config
    # load_asset_value is typed object: the IO managers return these types
    validated = cast("pl.DataFrame", defs.load_asset_value("validated_set", instance=instance))
    quarantined = cast(
        "pl.DataFrame", defs.load_asset_value("quarantined_clips", instance=instance)
    )
    family = cfg.model.family
    release = _stored(defs, instance, release_key(get_family(family)))
    default = (release or _artifact(defs, instance, FAMILY_ARTIFACTS[family])).path
    # the DS-CNN on MFCC trains only when families lists it (its assets exist only then)
    dscnn = _stored(defs, instance, "quantized_model") if MFCC_DSCNN.name in cfg.families else None
    counts = (
        validated.group_by("label", "source")
        .len()
        .pivot(on="source", index="label", values="len")
        .fill_null(0)
        .sort("label")
    )
    reasons = (
        quarantined.group_by("reason").len().sort("len", descending=True)
        if quarantined.height
        else None
    )
    transfer = _stored(defs, instance, "transfer_evaluation")
    evaluation = _stored(defs, instance, "evaluation")
    out = default_family_lines(evaluation, family, default, transfer)
    out[1:1] = mining_lines(instance, get_family(family).model.key)
    out += transfer_lines(transfer, cfg.model.family)
    device = _stored(defs, instance, "device_model") if dscnn is not None else None
    if device is not None:
        manifest = json.loads(device.file("manifest.json").read_text())
        out.append(
            f"the small-device model (int8 TFLite, {manifest['sizes']['int8_weight_bytes']} B of "
            f"int8 weights, tensor arena {manifest['sizes']['tensor_arena_bytes']} B; C array, "
            f"manifest.json, MODEL_CARD.md): {device.path}"
        )
    releases: dict[str, Path] = {
        f.name: stored.path
        for f in families()
        if f.name in cfg.families
        and (stored := _stored(defs, instance, release_key(f))) is not None
    }
    out += runtime_lines(releases, device.path if device is not None else None)
    out.append("\nclips per keyword (rows) and source (columns), after the quality gate:")
    with pl.Config(tbl_rows=100, tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True):
        out.append(str(counts))
    split_sizes = dict(validated.group_by("split").len().iter_rows())
    out.append(f"splits (speaker-disjoint): {split_sizes}")
    reason_text = (
        ", ".join(f"{r}={n}" for r, n in reasons.iter_rows()) if reasons is not None else "-"
    )
    out.append(f"quarantined: {quarantined.height} ({reason_text})")
    out.append(f"clips by engine: {engine_counts(validated)}")
    out += review_lines(defs, instance)
    if dscnn is not None:
        metrics = json.loads(dscnn.file("metrics.json").read_text())
        out.append(
            f"DS-CNN (mfcc) int8 artifact: {metrics['int8_size_kb']} KB (float "
            f"{metrics['float_size_kb']} KB) at {dscnn.path}; synthetic test split "
            f"(in-distribution) {metrics['int8_test_accuracy']} on {metrics['test_rows']} clips"
        )
        out += evaluation_lines(evaluation, dscnn.path)
    card = _stored(defs, instance, "data_card")
    if card is not None:
        out.append(f"data card: {card.file(CARD_FILE)} (also on the data_card asset in the UI)")
    return "\n".join(out)


def review_lines(defs: dg.Definitions, instance: dg.DagsterInstance) -> list[str]:
    """What the review queue holds (clips per reason) and the command that serves it: the
    clips a person should hear before the next validated_set."""
    if instance.get_latest_materialization_event(dg.AssetKey("review_queue")) is None:
        return []
    queue = cast("pl.DataFrame", defs.load_asset_value("review_queue", instance=instance))
    if queue.is_empty():
        return ["review queue: empty (nothing the pipeline is unsure of)"]
    reasons = ", ".join(f"{reason}={n}" for reason, n in clips_per_reason(queue).iter_rows())
    return [f"review queue: {queue.height} clips ({reasons}); hear and decide: kws review"]


def _stored(
    defs: dg.Definitions, instance: dg.DagsterInstance, asset: str
) -> ArtifactFolder | None:
    """An artifact asset's stored folder, or None when it has not been materialized."""
    if instance.get_latest_materialization_event(dg.AssetKey(asset)) is None:
        return None
    return _artifact(defs, instance, asset)


def _artifact(defs: dg.Definitions, instance: dg.DagsterInstance, asset: str) -> ArtifactFolder:
    """An artifact asset's stored folder (the artifact IO manager loads an ArtifactFolder)."""
    return cast("ArtifactFolder", defs.load_asset_value(asset, instance=instance))


def evaluation_lines(report: ArtifactFolder | None, artifact: Path) -> list[str]:
    """The evaluation asset's headline numbers (nothing if it has not run): the streaming FRR and
    FA/h with their exact intervals, whether the target is established by the FA/h upper bound,
    and whether the operating point is usable."""
    if report is None or not report.file(REPORT_FILE).is_file():
        return []
    report_path = report.file(REPORT_FILE)
    body = json.loads(report_path.read_text())
    s = body["summary"]
    return [
        f"DS-CNN evaluation (int8): {s['unseen_voice_accuracy']} on "
        f"{s['unseen_voice_clips']} clips of held-out espeak-ng voices; synthetic test split "
        f"(in-distribution) "
        f"{s['test_accuracy']} on {s['test_clips']} clips",
        f"  streaming: {streaming_numbers(s)} "
        f"(target {s['target_fa_per_hour']} FA/h, {s['negative_hours']:.2f} h of negatives, "
        f"{s['positives']} keywords, threshold {s['threshold_at_target']}); "
        f"{s['window_latency_ms']} ms per 1-s window",
        *selection_lines(s, body.get("streaming", {}).get("selection", {})),
        f"  report and plots: {report_path.parent}",
        f"spot keywords: .venv/bin/kws detect --model {artifact} "
        f"--threshold {s['threshold_at_target']} long.wav",
    ]


def default_family_lines(
    report: ArtifactFolder | None,
    family: str,
    folder: Path,
    transfer: ArtifactFolder | None = None,
) -> list[str]:
    """The model a user runs first, before anything else: the default family's streaming numbers
    at its selected operating point (synthetic streams, then the real-speech and held-out-engine
    streams of ``transfer``), then the two commands on its release folder (the artifact with that
    operating point inside, so ``kws detect`` runs what was measured)."""
    out = [f"the model ({family}): {folder}"]
    if report is not None and report.file(REPORT_FILE).is_file():
        body = json.loads(report.file(REPORT_FILE).read_text())
        result = body.get("families", {}).get(family)
        if result is not None:
            s = result["summary"]
            out.append(
                f"  streaming (synthetic streams, test): {streaming_numbers(s)} "
                f"(target {s['target_fa_per_hour']} FA/h)"
            )
            out += selection_lines(s, result.get("streaming", {}).get("selection", {}))
    out += real_stream_lines(transfer, family)
    out += beside_peers_lines(transfer, family)
    out.append(f"  classify clips: .venv/bin/kws classify --model {folder} some.wav")
    out.append(
        f"  spot keywords at its evaluated operating point: .venv/bin/kws detect --model "
        f"{folder} long.wav"
    )
    return out + openwakeword_lines(folder)


def mining_lines(instance: dg.DagsterInstance, model_key: str) -> list[str]:
    """The negative rounds of a model's training (its materialization's ``negative_rounds``):
    false accepts per hour on the held-out negative material after each round, and the hard
    windows each round mined for the next."""
    event = instance.get_latest_materialization_event(dg.AssetKey(model_key))
    materialization = event.asset_materialization if event is not None else None
    entry = materialization.metadata.get("negative_rounds") if materialization else None
    rounds = cast("list[dict[str, Any]]", getattr(entry, "value", None) or [])
    measured = [r for r in rounds if "heldout" in r]
    if not measured:
        return []
    first = measured[0]["heldout"]
    steps = " -> ".join(
        f"round {r['round']} {r['heldout']['fa_per_hour']:g} ({r['heldout']['events']} events)"
        for r in measured
    )
    mined = ", ".join(
        f"round {r['round']} mined {r['hard_windows_found']} of {r['windows_scored']} windows"
        for r in rounds
        if "hard_windows_found" in r
    )
    return [
        f"  hard negatives: FA/h on {first['hours']:.2f} h of held-out negative material at "
        f"threshold {first['threshold']}: {steps}" + (f"; {mined}" if mined else "")
    ]


def real_stream_lines(transfer: ArtifactFolder | None, family: str) -> list[str]:
    """The family's rows of the transfer report's ``streams`` table: each real source's (and the
    held-out engine's) clips played as one long stream, scored at the shipped operating point."""
    if transfer is None or not transfer.file(TRANSFER_REPORT_FILE).is_file():
        return []
    rows = json.loads(transfer.file(TRANSFER_REPORT_FILE).read_text()).get("streams", [])
    out = []
    for row in (r for r in rows if r["family"] == family):
        frr = (
            f"FRR {row['frr']:.1%} ({row['frr_lower']:.1%}\N{EN DASH}{row['frr_upper']:.1%}) of "
            f"{row['keywords']} keywords"
            if row["frr"] is not None
            else "no keyword in it"
        )
        out.append(
            f"  streaming ({row['set']}, {row['stream_hours'] * 60:.1f} min, shipped point): "
            f"{frr}, FA/h {row['fa_per_hour']} ({row['fa_per_hour_lower']:.3g}\N{EN DASH}"
            f"{row['fa_per_hour_upper']:.3g} at {row['level']:.0%})"
        )
    return out


def beside_peers_lines(transfer: ArtifactFolder | None, family: str) -> list[str]:
    """Per keyword that openWakeWord or microWakeWord ships a pretrained model of: the family's
    numbers for that keyword on each evaluation stream beside each pretrained model's on the
    same stream, each at its shipped point (the transfer report's ``beside_peers`` rows);
    nothing when no keyword is such a phrase."""
    if transfer is None or not transfer.file(TRANSFER_REPORT_FILE).is_file():
        return []
    rows = json.loads(transfer.file(TRANSFER_REPORT_FILE).read_text()).get("beside_peers", [])
    if not rows:
        return []
    out = [
        "  beside the pretrained models of the same phrase (same stream, each at its shipped "
        "point; FRR and FA/h with their 95% intervals):"
    ]
    groups: dict[tuple[str, str], list[dict[str, object]]] = {}
    for row in rows:
        groups.setdefault((str(row["keyword"]), str(row["set"])), []).append(row)
    for (keyword, stream), group in groups.items():
        shown = [r for r in group if r["system"] == family] + [
            r for r in group if r["system"] != family and r["system"] in PEERS
        ]
        if not shown:
            continue
        positives = cast("int", shown[0]["positives"])
        out.append(f"    {keyword!r} on {stream} ({positives} of it):")
        for r in shown:
            frr = (
                f"FRR {r['frr']:.1%} ({r['frr_lower']:.1%}\N{EN DASH}{r['frr_upper']:.1%})"
                if positives
                else "no FRR (the phrase is not in this stream)"
            )
            out.append(
                f"      {r['system']:<17} {frr}, FA/h {r['fa_per_hour']:.3g} "
                f"({r['fa_per_hour_lower']:.3g}\N{EN DASH}{r['fa_per_hour_upper']:.3g})"
            )
    return out if len(out) > 1 else []


def openwakeword_lines(folder: Path) -> list[str]:
    """Where a release's openWakeWord models are (the speech_embedding family writes them) and
    the one line a user gives openWakeWord; nothing for a folder without them."""
    models = folder / OWW_FOLDER
    files = sorted(models.glob("*.onnx")) if models.is_dir() else []
    if not files:
        return []
    paths = ", ".join(f'"{path}"' for path in files)
    return [
        f"  openWakeWord models: {models} (threshold and Home Assistant notes: "
        f"{models / OWW_README})",
        f'  in openWakeWord: Model(wakeword_models=[{paths}], inference_framework="onnx")',
    ]


def esphome_lines(folder: Path) -> list[str]:
    """Where a release's ESPHome models are (the micro_wake_word family writes them): per
    keyword its JSON with the model's size and arena, then the lines a user pastes into the
    ESPHome YAML; nothing for a folder without them."""
    manifests = sorted((folder / ESPHOME_DIR).glob("*.json"))
    if not manifests:
        return []
    out = [f"  ESPHome (micro_wake_word on an ESP32-S3): {folder / ESPHOME_DIR}"]
    for path in manifests:
        body = json.loads(path.read_text())
        model = path.parent / body["model"]
        size = model.stat().st_size if model.is_file() else 0
        micro = body["micro"]
        out.append(
            f"    {body['wake_word']}: {path.name} + {model.name} ({size} B, tensor arena "
            f"{micro['tensor_arena_size']} B, cutoff {micro['probability_cutoff']}, sliding "
            f"window {micro['sliding_window_size']})"
        )
    out.append("    in your ESPHome YAML:")
    out.append("      micro_wake_word:")
    out.append("        models:")
    out += [f"          - model: {path}" for path in manifests]
    return out


def runtime_lines(releases: dict[str, Path], device: Path | None) -> list[str]:
    """Where each runtime's files are: every family's release folder (``kws classify/detect``,
    onnxruntime), the openWakeWord and ESPHome formats the releases carry, and the TensorFlow
    Lite Micro device folder."""
    if not releases and device is None:
        return []
    out = ["\nwhere each runtime's files are:"]
    out += [
        f"  kws classify/detect ({name}, onnxruntime): {folder}"
        for name, folder in releases.items()
    ]
    for folder in releases.values():
        out += openwakeword_lines(folder) + esphome_lines(folder)
    if device is not None:
        out.append(
            f"  TensorFlow Lite Micro (DS-CNN .tflite, C array, manifest.json; `kws classify "
            f"--model` runs it too): {device}"
        )
    return out


def streaming_numbers(s: dict[str, object]) -> str:
    """``FRR x (lo-hi) at FA/h y (<= upper at 95%)`` from a family's summary; the bare numbers
    for a report written before the intervals."""
    if "frr_upper_at_target" not in s:
        return f"FRR {s['frr_at_target']:.1%} at {s['fa_per_hour_at_target']} FA/h"
    return (
        f"FRR {s['frr_at_target']:.1%} ({s['frr_lower_at_target']:.1%}\N{EN DASH}"
        f"{s['frr_upper_at_target']:.1%}) at FA/h {s['fa_per_hour_at_target']} "
        f"(≤ {s['fa_per_hour_upper_at_target']:.3g} at {s['confidence']:.0%}, two-sided)"
    )


def selection_lines(s: dict[str, object], selection: dict[str, object]) -> list[str]:
    """What the summary must say plainly about the selected point: a target the FA/h upper bound
    does not establish (why, hours needed), a target missed even as measured, a point that is
    not usable (the rule of ``evaluation.max_frr``)."""
    out = []
    if s["fa_per_hour_at_target"] > s["target_fa_per_hour"]:  # type: ignore[operator]
        out.append(
            f"  target MISSED: even the highest threshold swept keeps "
            f"{s['fa_per_hour_at_target']} FA/h"
        )
    if selection.get("reason"):
        out.append(f"  target not established on validation: {selection['reason']}")
    if s.get("operating_point_usable") is False:
        out.append(f"  operating point usable: false — {selection.get('usable_message', '')}")
    elif "operating_point_usable" in s:
        out.append(
            f"  operating point usable: true (validation FRR {s['val_frr_at_target']:.1%} "
            f"≤ max_frr {s['max_frr']:.0%})"
        )
    return out


INSTANCE_YAML = "telemetry:\n  enabled: false\n"
# Run loggers: the console logger only for errors, the progress logger on (each step's start, its
# last message every few seconds, its wall time: kws_assets.lib.progress).  The instance's own
# handler is not a run logger, so every Dagster log line (DEBUG included) still lands in the event
# log for the UI.
RUN_CONFIG = {
    "loggers": {
        "console": {"config": {"log_level": "ERROR"}},
        "progress": {"config": {"enabled": True}},
    }
}
LIBRARY_OUTPUT_FILE = "demo-library-output.log"
"""Under ``$DAGSTER_HOME``: what the libraries underneath wrote to the process's stderr while the
runs went (TensorFlow's C++ start-up lines, converter chatter), kept off the terminal."""


def ensure_dagster_home() -> Path:
    """``$DAGSTER_HOME`` (default ``./.dagster_home``) with a dagster.yaml: SQLite, no telemetry."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path.cwd() / ".dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    instance_yaml = home / "dagster.yaml"
    if not instance_yaml.exists():
        instance_yaml.write_text(INSTANCE_YAML)
    return home


@contextmanager
def quiet_console() -> Iterator[None]:
    """Dagster's own log lines stay in the instance (the UI shows them); the terminal gets the
    demo's progress and summary.  Within the block: Dagster's beta/preview warnings are ignored
    (only those categories), Python loggers of the libraries underneath print errors only
    (onnxruntime's quantizer warns once per LayerNorm weight), and loading an asset value
    outside a run (the summary) does not print the IO manager's DEBUG line.  Restored after."""
    root, dagster_logger = logging.getLogger(), logging.getLogger("dagster")
    levels = root.level, dagster_logger.level
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=dg.BetaWarning)
        warnings.filterwarnings("ignore", category=dg.PreviewWarning)
        root.setLevel(logging.ERROR)
        dagster_logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            root.setLevel(levels[0])
            dagster_logger.setLevel(levels[1])


@contextmanager
def values_loaded_quietly() -> Iterator[None]:
    """``load_asset_value`` outside a run logs through a fresh console logger at DEBUG ("Loading
    file from ..."); there is no run, so nothing of it would reach the event log anyway."""
    disabled = logging.root.manager.disable
    logging.disable(logging.INFO)
    try:
        yield
    finally:
        logging.disable(disabled)


@contextmanager
def library_output_to(path: Path) -> Iterator[None]:
    """File descriptor 2 into ``path`` for the block: C/C++ libraries (TensorFlow's runtime and
    converter) write there directly, below Python's logging, and ignore TF_CPP_MIN_LOG_LEVEL
    for their start-up lines.  Python's ``sys.stderr`` goes there too while it is fd 2."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with path.open("ab") as target:
            os.dup2(target.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def progress_line(index: int, total: int, step: str) -> str:
    """A run's first line, e.g. ``run 3/4 keyword_clips [no] …``; its steps' lines follow,
    indented, then its last line (``run 3/4 keyword_clips [no] done in 41.2 s``)."""
    return f"run {index}/{total} {step} …"


def run_graph(
    defs: dg.Definitions, instance: dg.DagsterInstance, out: TextIO | None = None
) -> GraphRun:
    """Every run of the graph (see :func:`materialize_graph`) with the console quiet, and its
    progress on ``out`` (stdout by default): a line when each run starts (its number, job and
    partition), its steps' progress lines (the progress logger writes them to stdout), and a
    line with its wall time, or FAILED."""
    stream = out if out is not None else sys.stdout

    current: list[str] = []

    def started(index: int, total: int, step: str) -> None:
        current[:] = [f"run {index}/{total} {step}"]
        print(progress_line(index, total, step), file=stream, flush=True)

    def finished(result: dg.ExecuteInProcessResult, seconds: float) -> None:
        status = "done" if result.success else "FAILED"
        print(f"{current[0]} {status} in {seconds:.1f} s", file=stream, flush=True)

    return materialize_graph(
        defs, instance, run_config=RUN_CONFIG, on_start=started, on_finish=finished
    )


def run_demo(defs: dg.Definitions, instance: dg.DagsterInstance, home: Path) -> GraphRun:
    """What ``make demo`` shows: a progress line per run, then the summary, or the failed run's
    steps on stderr.  The libraries' own stderr output during the runs goes to
    ``home / LIBRARY_OUTPUT_FILE``; call it inside :func:`quiet_console`."""
    started = time.monotonic()
    library_output = home / LIBRARY_OUTPUT_FILE
    with library_output_to(library_output):
        graph = run_graph(defs, instance)
    elapsed = time.monotonic() - started
    if graph.failed is not None:
        job_name, partition, result = graph.failed
        where = f"{job_name} [{partition}]" if partition else job_name
        print(f"run {result.run_id} ({where}) failed after {elapsed:.1f} s:", file=sys.stderr)
        for line in failed_steps(result):
            print(f"  {line}", file=sys.stderr)
        print(f"  (the libraries' own output: {library_output})", file=sys.stderr)
        return graph
    print(f"\nmaterialized the graph in {elapsed:.1f} s ({len(graph.results)} runs)")
    with values_loaded_quietly():
        print(summarize(defs, instance))
    print("\nsee it in the UI: make ui  (http://127.0.0.1:3000)", flush=True)
    return graph


def main() -> int:
    with quiet_console():
        home = ensure_dagster_home()
        instance = dg.DagsterInstance.get()
        defs = build_definitions()
        settings = settings_resource(defs)
        print(
            f"kws_assets demo: config {settings.config_path or '(embedded default)'}, "
            f"DAGSTER_HOME {home}",
            flush=True,
        )
        return 0 if run_demo(defs, instance, home).failed is None else 1


if __name__ == "__main__":
    sys.exit(main())
