"""Corpus batch keys, fingerprints and keyword changes (the units the Dagster layer partitions
by)."""

from __future__ import annotations

import pytest

from kws_assets.core.corpus.batches import (
    BatchKeyError,
    BatchRef,
    configured_batch_keys,
    configured_source,
    keyword_changes,
    keyword_seed,
    landed_fingerprint,
    landed_source,
    landing_batch_key,
    parse_batch_key,
    source_batch_key,
    source_fingerprint,
)
from kws_assets.settings import DemoCorpusSource, KwsConfig, ManifestSource

DEMO_FP = "06b473103f79e482"
LANDED_FP = "08ab263e71b0c3b3"


def _cfg(**kw) -> KwsConfig:
    return KwsConfig(**kw)


def test_keys_round_trip_and_reject_foreign_keys():
    assert parse_batch_key(source_batch_key("demo")) == BatchRef("source", "demo")
    folder = "2024-06-01.batch_7"
    assert parse_batch_key(landing_batch_key(folder)) == BatchRef("landing", folder)
    for bad in ("demo", "source-", "landing-", "landing-.hidden", "landing-a b", "yes"):
        with pytest.raises(BatchKeyError):
            parse_batch_key(bad)


@pytest.mark.parametrize(
    "folder", ["", ".staging", "_incoming", "has space", "ünï", "a/b", "x" * 101]
)
def test_landing_folder_names_that_cannot_be_keys(folder):
    with pytest.raises(ValueError, match="cannot name a batch"):
        landing_batch_key(folder)


def test_source_names_are_cleaned_and_collisions_are_refused():
    assert source_batch_key("my corpus/v2") == "source-my_corpus_v2"
    cfg = _cfg(
        sources=[ManifestSource(name="a b", root="/x"), ManifestSource(name="a_b", root="/y")]
    )
    with pytest.raises(ValueError, match="same batch key"):
        configured_batch_keys(cfg.sources)


def test_configured_source_lookup_names_what_is_configured():
    cfg = _cfg(sources=[DemoCorpusSource(), ManifestSource(name="office", root="/data/office")])
    assert list(configured_batch_keys(cfg.sources)) == ["source-demo", "source-office"]
    assert configured_source(cfg.sources, "source-office").root == "/data/office"
    with pytest.raises(BatchKeyError, match="source-demo"):
        configured_source(cfg.sources, "source-gone")


def test_fingerprints_follow_what_ingestion_depends_on():
    demo = DemoCorpusSource()
    fp = source_fingerprint(demo, ["yes", "no"], "en", 16000)
    assert fp == source_fingerprint(DemoCorpusSource(), ("yes", "no"), "en", 16000)  # stable
    assert fp != source_fingerprint(demo, ["yes", "no", "up"], "en", 16000)
    assert fp != source_fingerprint(
        DemoCorpusSource(sentences_per_keyword=5), ["yes", "no"], "en", 16000
    )
    # The generated demo corpus is spoken in the language at the sample rate; a recorded one not.
    assert fp != source_fingerprint(demo, ["yes", "no"], "es", 16000)
    assert fp != source_fingerprint(demo, ["yes", "no"], "en", 8000)
    office = ManifestSource(name="office", root="/data/office")
    assert source_fingerprint(office, ["yes"], "en", 16000) == source_fingerprint(
        office, ["yes"], "es", 8000
    )
    manifest = "0123456789abcdef"
    assert landed_fingerprint(manifest, ["yes", "no"]) == landed_fingerprint(
        manifest, ("yes", "no")
    )
    assert landed_fingerprint(manifest, ["yes", "no"]) != landed_fingerprint(
        "fedcba9876543210", ["yes", "no"]
    )
    assert landed_fingerprint(manifest, ["yes", "no"]) != landed_fingerprint(manifest, ["yes"])


def test_fingerprints_are_the_ones_sensor_cursors_already_hold():
    """A sensor cursor keeps fingerprints across deployments: the same inputs must give the same
    hashes as before the core took sections (values computed by the config-taking version)."""
    assert source_fingerprint(DemoCorpusSource(), ["yes", "no"], "en", 16000) == DEMO_FP
    assert landed_fingerprint("0123456789abcdef", ["yes", "no"]) == LANDED_FP


def test_landed_source_reads_a_landed_folder_as_a_manifest_source():
    source = landed_source(
        "landing-b1", "/land/b1", "manifest.csv", language="es", license_="CC-BY-4.0"
    )
    assert (source.name, source.root, source.manifest) == (
        "landing-b1",
        "/land/b1",
        "manifest.csv",
    )
    assert (source.language, source.license) == ("es", "CC-BY-4.0")


def test_keyword_changes_and_seeds():
    added, removed = keyword_changes(["yes", "no", "go"], ["no", "stop", "yes"])
    assert added == ["go"] and removed == ["stop"]
    assert keyword_changes(["a"], ["a"]) == ([], [])
    assert keyword_seed("yes") == keyword_seed("yes") != keyword_seed("no")
