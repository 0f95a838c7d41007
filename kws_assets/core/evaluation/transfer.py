"""Transfer: every family on speech it never trained on.  The evaluation sets (each real source,
the held-out TTS engine, the synthetic test split last: in-distribution, it flatters), the
distilled student's float classifier beside the artifacts, and the report folder
(``transfer.json``: the clip table, the streams table of
:mod:`~kws_assets.core.evaluation.real_streams`, and a confusion matrix per family and set)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from typing import cast

import numpy as np
import polars as pl

from kws_assets.core.corpus.real_sources import RealClips, load_real_source
from kws_assets.core.dataset import engine_voices, synthesis
from kws_assets.core.evaluation import plots
from kws_assets.core.evaluation.real_speech import RealSourceReport
from kws_assets.core.evaluation.real_streams import STREAMS_NOTE
from kws_assets.core.families import get_family
from kws_assets.core.features.mfcc import FeatureSpec
from kws_assets.core.model.checkpoint import ModelCheckpoint
from kws_assets.core.ship.export import FloatMfccClassifier
from kws_assets.core.storage.artifact_store import ArtifactFolder
from kws_assets.core.storage.render_cache import NO_CACHE, RenderCache
from kws_assets.settings import (
    AlignmentSettings,
    AudioSettings,
    EvalSettings,
    NegativeSettings,
)

TRANSFER_REPORT_FILE = "transfer.json"
STUDENT = "mfcc_student (float)"  # the distilled DS-CNN's row in the transfer table
IN_DISTRIBUTION_MAX_CLIPS = 3000
"""Test clips the transfer table's in-distribution row scores at most (a uniform sample by clip
id beyond that: the row is a yardstick, and its audio is held in memory)."""
HELD_OUT_UNKNOWN_PER_KEYWORD = 2  # _unknown_ words per keyword the held-out engine speaks
PICTURES_IN_METADATA = 6
"""Confusion matrices shown in the asset's metadata (all of them are in the report folder)."""


def real_sets(
    settings: EvalSettings,
    keywords: Sequence[str],
    audio: AudioSettings,
    alignment: AlignmentSettings,
    log: Callable[[str], None],
) -> list[RealClips]:
    """Each configured real source's keyword clips; rejected rows are logged (a few of them)."""
    sets = []
    for source in settings.real_sources:
        clips = load_real_source(source, keywords, audio, alignment=alignment)
        if clips.rejections:
            log(
                f"real source {source.name}: {len(clips.rejections)} row(s) rejected, e.g. "
                f"{[(r.row, r.reason) for r in clips.rejections[:3]]}"
            )
        sets.append(clips)
    return sets


def held_out_engine_set(
    settings: EvalSettings,
    keywords: Sequence[str],
    negatives: NegativeSettings,
    language: str,
    audio: AudioSettings,
    cache: RenderCache = NO_CACHE,
    workers: int = 1,
) -> tuple[RealClips | None, dict[str, str]]:
    """The keywords and a few ``_unknown_`` words per keyword spoken by the held-out engine (no
    training clip came from it), and what could not be rendered; ``None`` without an engine or
    without a single render.  A recipe rendered before comes from ``cache``; the others are
    rendered on ``workers`` processes (festival starts a process per render, about 4 renders/s
    on one core)."""
    engine = settings.held_out_engine
    if not engine:
        return None, {}
    unknown = [
        w
        for k in keywords
        for w in synthesis.negative_words(k, keywords, negatives, language)[
            :HELD_OUT_UNKNOWN_PER_KEYWORD
        ]
    ]
    spoken = engine_voices.held_out_engine_set(
        engine,
        keywords,
        unknown,
        settings.held_out_engine_renders,
        language,
        audio,
        render_all=lambda recipes: cast(  # single renders (not blocks): arrays or reasons
            list[np.ndarray | BaseException],
            cache.map(
                [{"what": "held-out engine clip", "recipe": r, "audio": audio} for r in recipes],
                functools.partial(engine_voices.try_render, audio=audio),
                recipes,
                workers,
            ),
        ),
    )
    if not spoken.samples:
        return None, spoken.skipped
    return RealClips(
        f"held-out engine: {engine}",
        audio.sample_rate,
        np.stack(spoken.samples),
        spoken.labels,
        spoken.speakers,
        spoken.names,
        spoken.labels,
    ), spoken.skipped


def in_distribution_set(
    validated_set: pl.DataFrame, audio: AudioSettings, read_clip: Callable[[str], np.ndarray]
) -> RealClips:
    """The synthetic test split (in-distribution), at most :data:`IN_DISTRIBUTION_MAX_CLIPS`."""
    # clip ids are content hashes: the first ones in id order are a uniform sample of the split
    test = (
        validated_set.filter(pl.col("split") == "test")
        .sort("clip_id")
        .head(IN_DISTRIBUTION_MAX_CLIPS)
    )
    samples = np.zeros((test.height, audio.clip_samples), np.float32)
    for i, uri in enumerate(test["uri"].to_list()):
        samples[i] = read_clip(uri)
    return RealClips(
        "synthetic test split (in-distribution)",
        audio.sample_rate,
        samples,
        test["label"].to_list(),
        test["speaker"].to_list(),
        test["clip_id"].to_list(),
        test["label"].to_list(),
    )


def student_classifier(checkpoint: ModelCheckpoint) -> FloatMfccClassifier:
    """The DS-CNN distilled from the embedding teacher, on its float weights (rebuilt by its
    family, as every checkpoint is)."""
    student = get_family(checkpoint.family).network(checkpoint)
    return FloatMfccClassifier(
        student, checkpoint.labels, FeatureSpec.model_validate(checkpoint.front_end)
    )


def write_transfer_report(
    scores: Mapping[str, Mapping[str, RealSourceReport]],
    rows: Sequence[Mapping[str, object]],
    default_family: str,
    skipped: Mapping[str, str],
    streams: Sequence[Mapping[str, object]] = (),
    beside_peers: Sequence[Mapping[str, object]] = (),
) -> tuple[ArtifactFolder, dict[str, bytes]]:
    """A staged folder with ``transfer.json`` (the table, every family's report per set, the
    ``streams`` rows: each family at its shipped operating point on each set's stream, what they
    count, the ``beside_peers`` rows of :func:`~kws_assets.core.evaluation.real_streams.
    beside_peers`, the held-out engine's skipped renders) and a confusion matrix per family and
    set;
    returns it and the first :data:`PICTURES_IN_METADATA` pictures by title."""
    report = ArtifactFolder.staging(prefix="kws-transfer-")
    report.file(TRANSFER_REPORT_FILE).write_text(
        json.dumps(
            {
                "default_family": default_family,
                "table": list(rows),
                "streams": list(streams),
                "streams_note": STREAMS_NOTE,
                "beside_peers": list(beside_peers),
                "sets": {
                    family: {name: r.as_dict() for name, r in by_set.items()}
                    for family, by_set in scores.items()
                },
                "notes": [f"held-out engine: {k}: {v}" for k, v in skipped.items()],
            },
            indent=2,
        )
    )
    pictures = {}
    for family, by_set in scores.items():
        for i, (name, r) in enumerate(by_set.items()):
            png = plots.confusion_matrix_png(
                r.report.labels, r.report.confusion, f"{family}: {name}"
            )
            report.file(f"confusion_{family}_{i}.png").write_bytes(png)
            pictures[f"confusion {family}: {name}"] = png
    return report, dict(list(pictures.items())[:PICTURES_IN_METADATA])
