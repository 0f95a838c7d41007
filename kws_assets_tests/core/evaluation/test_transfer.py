"""The transfer report's sets and folder: the in-distribution set is a capped sample of the test
split in clip-id order, no held-out engine means no set, and the folder holds transfer.json (the
clip table and the streams table, with what the streams count) and a confusion matrix per family
and set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from kws_assets.core.evaluation import transfer
from kws_assets.core.evaluation.real_speech import score_families, transfer_rows
from kws_assets.core.ship.export import KwsClassifier
from kws_assets.core.speech.engines import ENGINES
from kws_assets.core.storage.render_cache import RenderCache
from kws_assets.settings import AudioSettings, EvalSettings, NegativeSettings
from kws_assets_tests.tone_detector import LABELS, labelled_clips, tone_artifact


def _validated(clips: np.ndarray, y: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "clip_id": [f"c{i:03d}" for i in range(len(y))][::-1],
            "uri": [str(i) for i in range(len(y))],
            "label": [LABELS[i] for i in y],
            "speaker": ["tts:a"] * len(y),
            "split": ["test"] * (len(y) - 1) + ["train"],
        }
    )


def test_in_distribution_set_is_the_test_split_in_clip_id_order(monkeypatch) -> None:
    clips, y = labelled_clips(2, seed=70)
    validated = _validated(clips, y)
    monkeypatch.setattr(transfer, "IN_DISTRIBUTION_MAX_CLIPS", 5)
    reads: list[str] = []

    def read(uri: str) -> np.ndarray:
        reads.append(uri)
        return clips[int(uri)]

    clip_set = transfer.in_distribution_set(validated, AudioSettings(), read)
    expected = validated.filter(pl.col("split") == "test").sort("clip_id").head(5)
    assert clip_set.names == expected["clip_id"].to_list() and len(reads) == 5
    np.testing.assert_array_equal(clip_set.samples[0], clips[int(expected["uri"][0])])


def test_no_held_out_engine_no_set() -> None:
    settings = EvalSettings(held_out_engine="")
    assert transfer.held_out_engine_set(
        settings, ["yes"], NegativeSettings(), "en", AudioSettings()
    ) == (None, {})


@pytest.mark.skipif(
    ENGINES["flite"].availability() is not None, reason=str(ENGINES["flite"].availability())
)
def test_the_held_out_engine_renders_on_two_workers_what_it_renders_here(tmp_path: Path) -> None:
    settings = EvalSettings(held_out_engine="flite", held_out_engine_renders=1)
    args = (settings, ["yes"], NegativeSettings(), "en", AudioSettings())
    here, _ = transfer.held_out_engine_set(*args)
    cache = RenderCache(tmp_path)
    pooled, _ = transfer.held_out_engine_set(*args, cache=cache, workers=2)
    assert here is not None and pooled is not None and cache.misses == len(here.labels) > 1
    assert pooled.labels == here.labels and pooled.speakers == here.speakers
    np.testing.assert_array_equal(pooled.samples, here.samples)
    rerun = RenderCache(tmp_path)
    transfer.held_out_engine_set(*args, cache=rerun, workers=2)
    assert (rerun.hits, rerun.misses) == (len(here.labels), 0)


def test_transfer_folder_holds_the_table_and_a_picture_per_family_and_set() -> None:
    clips, y = labelled_clips(2, seed=71)
    clip_set = transfer.in_distribution_set(
        _validated(clips, y), AudioSettings(), lambda uri: clips[int(uri)]
    )
    classifier = KwsClassifier.load_mfcc(tone_artifact().folder)
    scores = score_families({"a": classifier, "b": classifier}, [clip_set])
    rows = transfer_rows(scores)
    streams = [{"family": "a", "set": "real", "frr": 0.25, "fa_per_hour": 3.0}]
    folder, pictures = transfer.write_transfer_report(
        scores, rows, "b", {"voice": "missing"}, streams
    )
    report = json.loads(folder.file(transfer.TRANSFER_REPORT_FILE).read_text())
    assert report["default_family"] == "b" and report["table"] == rows
    assert report["streams"] == streams and "negative time" in report["streams_note"]
    assert set(report["sets"]) == {"a", "b"}
    assert report["notes"] == ["held-out engine: voice: missing"]
    assert folder.file("confusion_a_0.png").is_file() and folder.file("confusion_b_0.png").is_file()
    assert len(pictures) == 2 and all(png[:4] == b"\x89PNG" for png in pictures.values())
