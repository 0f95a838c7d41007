"""The demo summary's evaluation lines, read from a real evaluation report of the tone task: FRR
and FA/h with their intervals, the target by its bound and the usable flag, said plainly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kws_assets.core.evaluation.family import evaluate_families
from kws_assets.core.evaluation.peers import MICROWAKEWORD, OPENWAKEWORD
from kws_assets.core.evaluation.report import REPORT_FILE, write_report
from kws_assets.core.evaluation.transfer import TRANSFER_REPORT_FILE
from kws_assets.core.ship.export import KwsClassifier
from kws_assets.core.ship.micro_wake_word import ESPHOME_DIR, MicroSettings, manifest_dict
from kws_assets.core.ship.micro_wake_word import write_manifest as write_micro_manifest
from kws_assets.core.storage.artifact_store import ArtifactFolder
from kws_assets.demo import (
    beside_peers_lines,
    default_family_lines,
    esphome_lines,
    evaluation_lines,
    runtime_lines,
)
from kws_assets_tests.core.evaluation.conftest import SETTINGS
from kws_assets_tests.core.evaluation.tone_streams import tone_material
from kws_assets_tests.tone_detector import LABELS, labelled_clips, tone_artifact


@pytest.fixture(scope="module")
def report() -> ArtifactFolder:
    clips, y = labelled_clips(3, seed=60)
    results = evaluate_families(
        {"mfcc": lambda: KwsClassifier.load_mfcc(tone_artifact().folder)},
        SETTINGS,
        tone_material(),
        [LABELS[i] for i in y],
        lambda: iter([clips]),
    )
    return write_report(results)


def test_the_summary_prints_frr_and_fa_per_hour_with_their_bounds(report) -> None:
    s = json.loads(report.file(REPORT_FILE).read_text())["summary"]
    lines = evaluation_lines(report, Path("/models/mfcc"))
    streaming = next(line for line in lines if line.startswith("  streaming: "))
    assert (
        f"FRR {s['frr_at_target']:.1%} ({s['frr_lower_at_target']:.1%}\N{EN DASH}"
        f"{s['frr_upper_at_target']:.1%}) at FA/h {s['fa_per_hour_at_target']} "
        f"(≤ {s['fa_per_hour_upper_at_target']:.3g} at 95%, two-sided)"
    ) in streaming
    usable = [line for line in lines if "operating point usable:" in line]
    assert len(usable) == 1
    assert ("usable: true" in usable[0]) == s["operating_point_usable"]
    established = any("target not established" in line for line in lines)
    assert established == (not s["target_met_on_validation"])


def test_a_point_flagged_not_usable_says_so_and_old_reports_still_print(report, tmp_path) -> None:
    body = json.loads(report.file(REPORT_FILE).read_text())
    body["summary"]["operating_point_usable"] = False
    body["streaming"]["selection"]["usable_message"] = "NOT USABLE: misses 98% of keywords"
    (tmp_path / REPORT_FILE).write_text(json.dumps(body))
    lines = evaluation_lines(ArtifactFolder(tmp_path), Path("/models/mfcc"))
    assert "  operating point usable: false — NOT USABLE: misses 98% of keywords" in lines
    # a report written before the intervals: the bare numbers, no usable line
    old = {k: v for k, v in body["summary"].items() if "lower" not in k and "upper" not in k}
    old.pop("operating_point_usable")
    (tmp_path / REPORT_FILE).write_text(json.dumps({"summary": old}))
    lines = evaluation_lines(ArtifactFolder(tmp_path), Path("/models/mfcc"))
    assert f"  streaming: FRR {old['frr_at_target']:.1%} at " in lines[1]
    assert not any("usable" in line for line in lines)


def test_the_default_family_comes_first_with_its_release_folder(report) -> None:
    family = json.loads(report.file(REPORT_FILE).read_text())["families"]["mfcc"]["summary"]
    lines = default_family_lines(report, "mfcc", Path("/models/mfcc_release"))
    assert lines[0] == "the model (mfcc): /models/mfcc_release"
    assert lines[1].startswith("  streaming (synthetic streams, test): FRR ")
    assert f"{family['frr_at_target']:.1%}" in lines[1]
    assert (
        lines[-2]
        == "  classify clips: .venv/bin/kws classify --model /models/mfcc_release some.wav"
    )
    assert lines[-1].endswith("kws detect --model /models/mfcc_release long.wav")
    # before the evaluation has run: the folder and the commands only
    assert len(default_family_lines(None, "mfcc", Path("/m"))) == 3


def test_the_default_familys_real_streams_follow_its_synthetic_ones(report, tmp_path) -> None:
    transfer = ArtifactFolder(tmp_path / "transfer")
    transfer.path.mkdir()
    row = {
        "family": "mfcc",
        "set": "ktuberling_en",
        "keywords": 11,
        "hits": 9,
        "frr": 0.1818,
        "frr_lower": 0.0228,
        "frr_upper": 0.5178,
        "false_accepts": 2,
        "stream_hours": 0.0585,
        "fa_per_hour": 34.188,
        "fa_per_hour_lower": 4.14,
        "fa_per_hour_upper": 123.5,
        "level": 0.95,
    }
    other = {**row, "family": "speech_embedding", "set": "other family"}
    silent = {**row, "set": "letters", "keywords": 0, "frr": None}
    transfer.file(TRANSFER_REPORT_FILE).write_text(
        json.dumps({"table": [], "streams": [row, other, silent]})
    )
    lines = default_family_lines(report, "mfcc", Path("/m"), transfer)
    real = [line for line in lines if "shipped point" in line]
    assert real == [
        "  streaming (ktuberling_en, 3.5 min, shipped point): FRR 18.2% (2.3%\N{EN DASH}51.8%) "
        "of 11 keywords, FA/h 34.188 (4.14\N{EN DASH}124 at 95%)",
        "  streaming (letters, 3.5 min, shipped point): no keyword in it, FA/h 34.188 "
        "(4.14\N{EN DASH}124 at 95%)",
    ]
    assert lines.index(real[0]) > next(i for i, x in enumerate(lines) if "synthetic streams" in x)


def test_the_default_family_stands_beside_the_pretrained_models_of_its_phrase(tmp_path) -> None:
    transfer = ArtifactFolder(tmp_path / "transfer")
    transfer.path.mkdir()
    ours = {
        "system": "speech_embedding",
        "keyword": "alexa",
        "set": "held-out engine festival",
        "positives": 9,
        "frr": 0.3333,
        "frr_lower": 0.0749,
        "frr_upper": 0.7008,
        "fa_per_hour": 20.0,
        "fa_per_hour_lower": 2.42,
        "fa_per_hour_upper": 72.2,
    }
    rows = [
        ours,
        {**ours, "system": "mfcc"},  # another family: not the default, not shown here
        {**ours, "system": OPENWAKEWORD, "frr": 0.0, "frr_lower": 0.0, "frr_upper": 0.3363},
        {**ours, "system": MICROWAKEWORD, "fa_per_hour": 0.0, "fa_per_hour_lower": 0.0},
    ]
    transfer.file(TRANSFER_REPORT_FILE).write_text(json.dumps({"beside_peers": rows}))
    lines = beside_peers_lines(transfer, "speech_embedding")
    assert lines[1:] == [
        "    'alexa' on held-out engine festival (9 of it):",
        "      speech_embedding  FRR 33.3% (7.5%\N{EN DASH}70.1%), FA/h 20 (2.42\N{EN DASH}72.2)",
        "      openWakeWord      FRR 0.0% (0.0%\N{EN DASH}33.6%), FA/h 20 (2.42\N{EN DASH}72.2)",
        "      microWakeWord     FRR 33.3% (7.5%\N{EN DASH}70.1%), FA/h 0 (0\N{EN DASH}72.2)",
    ]
    assert "pretrained" in lines[0]
    assert lines[1] in default_family_lines(None, "speech_embedding", Path("/m"), transfer)
    # no keyword is a pretrained model's phrase (or a report from before): nothing is printed
    transfer.file(TRANSFER_REPORT_FILE).write_text(json.dumps({"beside_peers": []}))
    assert beside_peers_lines(transfer, "speech_embedding") == []
    transfer.file(TRANSFER_REPORT_FILE).write_text(json.dumps({"streams": []}))
    assert beside_peers_lines(transfer, "speech_embedding") == []


def test_the_runtimes_are_listed_with_the_esphome_yaml(tmp_path) -> None:
    release = tmp_path / "micro_wake_word_release"
    (release / ESPHOME_DIR).mkdir(parents=True)
    (release / ESPHOME_DIR / "yes.tflite").write_bytes(b"x" * 1234)
    body = manifest_dict("yes", "yes.tflite", MicroSettings(0.7, 3, 6144), ["en"])
    write_micro_manifest(release / ESPHOME_DIR / "yes.json", body)
    lines = runtime_lines({"micro_wake_word": release}, tmp_path / "device_model")
    assert lines[0] == "\nwhere each runtime's files are:"
    assert f"  kws classify/detect (micro_wake_word, onnxruntime): {release}" in lines
    assert (
        "    yes: yes.json + yes.tflite (1234 B, tensor arena 6144 B, cutoff 0.7, sliding window 3)"
    ) in lines
    snippet = lines[lines.index("    in your ESPHome YAML:") + 1 :][:3]
    assert snippet == [
        "      micro_wake_word:",
        "        models:",
        f"          - model: {release / ESPHOME_DIR / 'yes.json'}",
    ]
    assert lines[-1].endswith(f"runs it too): {tmp_path / 'device_model'}")
    assert esphome_lines(tmp_path) == []
    assert runtime_lines({}, None) == []
