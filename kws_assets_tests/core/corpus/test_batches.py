"""Corpus batch keys, fingerprints and keyword changes (the units the Dagster layer partitions
by)."""

from __future__ import annotations

import pytest

from kws_assets.core.corpus.batches import (
    BatchKeyError,
    BatchRef,
    config_for_sources,
    configured_batch_keys,
    configured_source,
    keyword_changes,
    keyword_seed,
    landed_fingerprint,
    landing_batch_key,
    parse_batch_key,
    source_batch_key,
    source_fingerprint,
)
from kws_assets.settings import DemoCorpusSource, KwsConfig, ManifestSource


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
        configured_batch_keys(cfg)


def test_configured_source_lookup_names_what_is_configured():
    cfg = _cfg(sources=[DemoCorpusSource(), ManifestSource(name="office", root="/data/office")])
    assert list(configured_batch_keys(cfg)) == ["source-demo", "source-office"]
    assert configured_source(cfg, "source-office").root == "/data/office"
    with pytest.raises(BatchKeyError, match="source-demo"):
        configured_source(cfg, "source-gone")


def test_fingerprints_follow_what_ingestion_depends_on():
    base = _cfg(keywords=["yes", "no"])
    demo = base.sources[0]
    fp = source_fingerprint(base, demo)
    assert fp == source_fingerprint(_cfg(keywords=["yes", "no"]), demo)  # stable across objects
    assert fp != source_fingerprint(_cfg(keywords=["yes", "no", "up"]), demo)
    assert fp != source_fingerprint(base, DemoCorpusSource(sentences_per_keyword=5))
    manifest = "0123456789abcdef"
    assert landed_fingerprint(base, manifest) == landed_fingerprint(
        _cfg(keywords=["yes", "no"]), manifest
    )
    assert landed_fingerprint(base, manifest) != landed_fingerprint(base, "fedcba9876543210")
    assert landed_fingerprint(base, manifest) != landed_fingerprint(
        _cfg(keywords=["yes"]), manifest
    )


def test_config_for_sources_keeps_everything_else():
    cfg = _cfg(keywords=["yes", "up"])
    only = ManifestSource(name="landing-b1", root="/land/b1")
    narrowed = config_for_sources(cfg, [only])
    assert narrowed.sources == [only]
    assert narrowed.keywords == cfg.keywords and narrowed.storage == cfg.storage


def test_keyword_changes_and_seeds():
    added, removed = keyword_changes(["yes", "no", "go"], ["no", "stop", "yes"])
    assert added == ["go"] and removed == ["stop"]
    assert keyword_changes(["a"], ["a"]) == ([], [])
    assert keyword_seed("yes") == keyword_seed("yes") != keyword_seed("no")
