"""The data card states real counts from the tables it is given."""

from __future__ import annotations

import re

import polars as pl

from kws_assets.config import card_settings
from kws_assets.core.corpus.ingest import CORPUS_SCHEMA
from kws_assets.core.dataset import data_card
from kws_assets.core.dataset.curation import QUARANTINE_COLUMNS, VALIDATED_COLUMNS
from kws_assets.settings import KwsConfig

CFG = KwsConfig.model_validate(
    {
        "keywords": ["yes", "no"],
        "sources": [
            {"kind": "manifest", "name": "field", "root": "/data/field", "license": "CC-BY-4.0"}
        ],
    }
)
CARD = card_settings(CFG)


def validated_table() -> pl.DataFrame:
    rows = []
    plan = [
        ("yes", "field", "field:a", "train", 3),
        ("yes", "synthetic", "tts:v1", "train", 5),
        ("no", "synthetic", "tts:v2", "val", 2),
        ("_unknown_", "field", "field:b", "test", 4),
        ("_silence_", "noise", "noise:1", "train", 1),
    ]
    for label, source, speaker, split, count in plan:
        for i in range(count):
            rows.append(
                {
                    "clip_id": f"{label}{source}{i}",
                    "uri": "/x.wav",
                    "label": label,
                    "source": source,
                    "speaker": speaker,
                    "language": "en",
                    "origin_id": "o",
                    "start_s": 0.0,
                    "sample_rate": 16000,
                    "num_samples": 16000,
                    "duration_s": 1.0,
                    "peak_dbfs": -3.0 - i,
                    "rms_dbfs": -20.0 - i,
                    "clipping_ratio": 0.0,
                    "dc_offset": 0.0,
                    "snr_db": 20.0 + i,
                    "speech_ratio": 0.5,
                    "split": split,
                    "confidence": 0.9 if source == "field" else None,
                    "original_sample_rate": 44100 if source == "field" else None,
                    "original_bit_depth": 24 if source == "field" else None,
                }
            )
    return pl.DataFrame(
        [{c: r.get(c) for c in VALIDATED_COLUMNS} for r in rows], schema=VALIDATED_COLUMNS
    )


def quarantine_table() -> pl.DataFrame:
    rows = [
        {
            "clip_id": f"q{i}",
            "source": "field",
            "uri": f"/c/{name}",
            "label": "",
            "speaker": "",
            "stage": stage,
            "reason": reason,
            "detail": "d",
            "original_path": name,
        }
        for i, (stage, reason, name) in enumerate(
            [
                ("ingest", "path_outside_root", "../x.wav"),
                ("ingest", "truncated", "t.wav"),
                ("ingest", "truncated", "t2.wav"),
                ("quality", "clipped", "c.wav"),
            ]
        )
    ]
    return pl.DataFrame(
        [{c: r.get(c) for c in QUARANTINE_COLUMNS} for r in rows], schema=QUARANTINE_COLUMNS
    )


def corpus_table() -> pl.DataFrame:
    rows = [
        {
            "utterance_id": "field:1",
            "source": "field",
            "speaker": "field:a",
            "license": "CC-BY-4.0",
            "duration_s": 1800.0,
            "original_path": "a.wav",
        },
        {
            "utterance_id": "field:2",
            "source": "field",
            "speaker": "field:b",
            "license": "CC-BY-4.0",
            "duration_s": 1800.0,
            "original_path": "b.wav",
        },
        {
            "utterance_id": "field:r",
            "source": "field",
            "speaker": "",
            "license": "CC-BY-4.0",
            "original_path": "../x.wav",
            "reject_reason": "path_outside_root",
        },
    ]
    return pl.DataFrame([{c: r.get(c) for c in CORPUS_SCHEMA} for r in rows], schema=CORPUS_SCHEMA)


def table_rows(card: str, heading: str) -> dict[str, list[str]]:
    """Rows of the first Markdown table after ``heading`` text, keyed by their first cell."""
    tail = card[card.index(heading) :]
    rows = {}
    for line in tail.splitlines()[1:]:
        if line.startswith("|") and not line.startswith("|---"):
            # cells are split on unescaped pipes and read back as the text they render as
            cells = [
                re.sub(r"\\(.)", r"\1", c)
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&")
                .strip()
                for c in re.split(r"(?<!\\)\|", line.strip().removeprefix("|").removesuffix("|"))
            ]
            rows.setdefault(cells[0], cells[1:])
        elif rows and not line.startswith("|"):
            break
    return rows


def test_card_states_the_counts_of_its_tables(tmp_path):
    versions = data_card.CardVersions(
        "1.2.3", "abc123", True, "cfg42", {"validated_set": "v1", "raw_corpus": "r9"}
    )
    card = data_card.render_data_card(
        validated_table(), quarantine_table(), corpus_table(), CARD, versions
    )
    assert "**15 clips**" in card and "**4 quarantined** of 19 seen" in card
    assert "from **5 speakers**" in card
    by_source = table_rows(card, "Clips per label and source:")
    assert by_source["label"] == ["field", "noise", "synthetic", "total"]
    assert by_source["yes"] == ["3", "0", "5", "8"] and by_source["_unknown_"] == [
        "4",
        "0",
        "0",
        "4",
    ]
    per_split = table_rows(card, "Clips and speakers per split")
    assert per_split["train"] == ["9", "3"] and per_split["test"] == ["4", "1"]
    assert "`quarantined_clips` holds 4 row(s)" in card
    reasons = table_rows(card, "by stage and reason:")
    assert reasons["ingest"][:2] == ["truncated", "2"]
    quantiles = table_rows(card, "Distribution of the per-clip metrics")
    assert (
        quantiles["snr_db"][0] == "15"
        and quantiles["snr_db"][1] == "20"
        and quantiles["snr_db"][-1] == "24"
    )
    assert quantiles["confidence"][0] == "7"  # aligned (field) clips only
    provenance = table_rows(card, "## Provenance and licenses")
    assert provenance["field"][2] == "CC-BY-4.0" and provenance["field"][3:6] == ["2", "1", "1"]
    versions_rows = table_rows(card, "## Versions")
    assert versions_rows["git commit"] == ["abc123 (uncommitted changes)"]
    assert versions_rows["data: raw_corpus"] == ["r9"]
    assert "1.2.3" in card and "cfg42" in card
    limitations = card[card.index("## Known limitations") :]
    assert "53% of the clips (8 of 15) are generated" in limitations
    assert re.search(r"The val split has 1 speaker", limitations)
    path = data_card.write_card(tmp_path / "card" / "DATA_CARD.md", card)
    assert path.read_text() == card and not list(path.parent.glob(".*.tmp"))


def test_card_of_an_empty_dataset_still_renders():
    empty_validated = pl.DataFrame(schema=VALIDATED_COLUMNS)
    card = data_card.render_data_card(
        empty_validated,
        pl.DataFrame(schema=QUARANTINE_COLUMNS),
        pl.DataFrame(schema=CORPUS_SCHEMA),
        CARD,
        data_card.code_versions(CFG.section_hash(*data_card.CARD_CONFIG_SECTIONS), {}),
    )
    assert "**0 clips**" in card and "## Known limitations" in card


def test_git_state_of_this_checkout_or_none(tmp_path):
    commit, _dirty = data_card.git_state()
    assert commit is None or re.fullmatch(r"[0-9a-f]{40}", commit)
    assert data_card.git_state(tmp_path) == (None, None)


def test_card_shows_how_far_synthetic_clips_are_from_recorded_ones():
    versions = data_card.CardVersions("1.2.3", None, False, "cfg", {})
    gap = pl.DataFrame(
        {
            "keyword": ["yes", "no", "up"],
            "synthetic_clips": [20, 20, 20],
            "real_clips": [12, 12, 0],
            "frechet_synthetic_real": [9.0, 1.5, None],
            "frechet_real_halves": [1.0, 1.0, None],
        }
    )
    card = data_card.render_data_card(
        validated_table(), quarantine_table(), corpus_table(), CARD, versions, synthetic_real=gap
    )
    section = card[card.index("## Synthetic vs recorded speech") : card.index("## Quarantine")]
    rows = table_rows(section, "## Synthetic vs recorded speech")
    assert rows["yes"] == ["20", "12", "9", "1"]
    assert "Median synthetic-vs-real distance: 5.2x" in section
    assert "over 5x): yes —" in section and "no," not in section
    synthetic_only = gap.with_columns(
        real_clips=pl.lit(0), frechet_synthetic_real=pl.lit(None, pl.Float64)
    )
    card = data_card.render_data_card(
        validated_table(),
        quarantine_table(),
        corpus_table(),
        CARD,
        versions,
        synthetic_real=synthetic_only,
    )
    assert "No keyword has enough recorded clips to compare" in card
    # not measured: no section at all
    plain = data_card.render_data_card(
        validated_table(), quarantine_table(), corpus_table(), CARD, versions
    )
    assert "## Synthetic vs recorded speech" not in plain


def test_card_counts_reviewed_clips_and_label_changes_by_reason():
    validated = validated_table().with_columns(
        pl.when(pl.col("clip_id").is_in(["yesfield0", "yesfield1"]))
        .then(pl.lit("relabel"))
        .when(pl.col("clip_id") == "yesfield2")
        .then(pl.lit("keep"))
        .alias("review"),
        pl.when(pl.col("clip_id").str.starts_with("yesfield"))
        .then(pl.lit("teacher_disagrees"))
        .alias("review_reason"),
    )
    quarantined = quarantine_table().with_columns(
        pl.when(pl.col("clip_id") == "q0").then(pl.lit("reject")).alias("review"),
        pl.when(pl.col("clip_id") == "q0")
        .then(pl.lit("near_min_confidence"))
        .alias("review_reason"),
    )
    versions = data_card.CardVersions("1", "abc", False, "cfg", {})
    card = data_card.render_data_card(validated, quarantined, corpus_table(), CARD, versions)
    assert "**4 clip(s) reviewed** by a person; 2 label(s) changed and 1 clip(s) rejected" in card
    rows = table_rows(card, "Per reason the clip was queued:")
    assert rows["teacher_disagrees"] == ["3", "1", "2", "0"]
    assert rows["near_min_confidence"] == ["1", "0", "0", "1"]
    unreviewed = data_card.render_data_card(
        validated_table(), quarantine_table(), corpus_table(), CARD, versions
    )
    assert "No clip has been reviewed by a person yet." in unreviewed
