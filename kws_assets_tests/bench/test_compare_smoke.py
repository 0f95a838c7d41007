"""``make compare`` (bench/compare.py) end to end on a few minutes of audio, so its code cannot
rot: the report has every system's row for every phrase it has a model of, the intervals bracket
what was measured, the DET plots are written, and a second run on the same work folder reuses the
built audio and the pretrained models' tracks and reports the same numbers.

The project's model here is the tone task's real int8 artifact as a release (a few seconds to
train), not a pipeline trained by the run: materializing even the nano graph of ``--tiny`` takes
3-5 minutes on two shared cores, beyond this suite's budget (``make compare
COMPARE_ARGS=--tiny`` runs that path)."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from bench import compare
from kws_assets.core.evaluation import peers
from kws_assets.core.model.detect import DetectorOperatingPoint
from kws_assets.core.ship.export import write_operating_point
from kws_assets.settings import KwsConfig
from kws_assets_tests.tone_detector import tone_artifact

pytestmark = pytest.mark.slow


def test_the_tiny_config_is_a_valid_pipeline_config_with_its_storage_in_the_work_folder(
    tmp_path,
) -> None:
    written = compare.effective_config(compare.DEFAULT_CONFIG, tmp_path, tiny=True)
    cfg = KwsConfig.model_validate(yaml.safe_load(written.read_text()))
    assert cfg.keywords == ["alexa"] and cfg.storage.root == str((tmp_path / "data").resolve())
    written = compare.effective_config(compare.DEFAULT_CONFIG, tmp_path, tiny=False)
    full = KwsConfig.model_validate(yaml.safe_load(written.read_text()))
    assert full.keywords == ["alexa", "hey jarvis", "hey mycroft"]
    assert full.model.family == KwsConfig().model.family  # only the keywords differ from kws.yaml
    for phrase in full.keywords:  # both peers ship a model of every phrase of the shoot-out
        assert {m.system for m in peers.peers_for(phrase)} == {
            peers.OPENWAKEWORD,
            peers.MICROWAKEWORD,
        }


def test_compare_runs_end_to_end_and_reports_every_system(tmp_path) -> None:
    release = tmp_path / "release"
    shutil.copytree(tone_artifact().folder, release)
    write_operating_point(release, DetectorOperatingPoint(threshold=0.6, refractory_s=1.0))
    config = tmp_path / "cfg.yaml"
    config.write_text(json.dumps({"keywords": ["alexa", "low_tone"]}))
    argv = [
        "--config", str(config), "--workdir", str(tmp_path / "work"), "--out",
        str(tmp_path / "out"), "--release", str(release), "--small-audio", "--real-per-source",
        "3", "--sentences", "1",
    ]  # fmt: skip
    messages: list[str] = []
    json_path, md_path = compare.run(compare.parse_args(argv), messages.append)
    report = json.loads(json_path.read_text())
    rows = {(r["system"], r["phrase"]): r for r in report["results"]}
    # the tone model has no "alexa", the peers no "low_tone": each system where it has a model
    assert set(rows) == {
        (compare.PROJECT, "low_tone"),
        (peers.OPENWAKEWORD, "alexa"),
        (peers.MICROWAKEWORD, "alexa"),
    }
    assert report["positives"] == {"alexa": 4, "low_tone": 4}  # 1 rate x 2 pitches, perturbed
    assert 0 < report["negative_hours"] < 0.2
    for row in rows.values():
        points = [row["shipped"], *row["at_fa_per_hour"].values()]
        assert list(row["at_fa_per_hour"]) == ["0.5", "1.0", "2.0"]
        for point in points:
            assert point["frr_lower"] <= point["frr"] <= point["frr_upper"]
            assert point["fa_per_hour_lower"] <= point["fa_per_hour"] <= point["fa_per_hour_upper"]
            assert point["positives"] == 4
        for target, point in row["at_fa_per_hour"].items():
            assert point["fa_per_hour"] <= float(target) or point == row["at_fa_per_hour"]["0.5"]
    assert rows[(compare.PROJECT, "low_tone")]["shipped"]["threshold"] == 0.6
    assert rows[(peers.MICROWAKEWORD, "alexa")]["settings"]["fires_when"] == "score > threshold"
    text = md_path.read_text()
    for system in (compare.PROJECT, peers.OPENWAKEWORD, peers.MICROWAKEWORD):
        assert f"| {system} |" in text
    for plot in report["plots"].values():
        assert (tmp_path / "out" / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({plot})" in text

    # again on the same work folder: the audio and the peers' tracks come from its cache
    messages.clear()
    compare.run(compare.parse_args([*argv, "--name", "again"]), messages.append)
    again = json.loads((tmp_path / "out" / "again.json").read_text())
    assert any("built before" in m for m in messages)
    assert again["results"] == report["results"]
