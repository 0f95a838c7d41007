"""The two partition sets of the graph and how partitioned tables fan in.

* ``keywords`` (dynamic): one partition per keyword.  ``synthetic_clips`` and ``aligned_keywords``
  are per keyword, so adding a keyword is adding a partition and materializing just that one.
  The ``_unknown_`` and ``_silence_`` classes are not partitions: they are not keywords and do
  not grow with the keyword list (``unknown_clips`` is per corpus batch, ``_silence_`` is made in
  ``validated_set``).
* ``corpus_batches`` (dynamic): one partition per ingestion batch: every configured source
  (``source-<name>``) and every folder that landed in the landing zone (``landing-<folder>``).
  ``raw_corpus`` and ``unknown_clips`` are per batch, so a new batch is ingested and aligned alone.

Everything downstream (``validated_set`` onwards) is unpartitioned and reads *all* partitions of
its partitioned parents (``AllPartitionMapping``): one dataset, one model, one artifact.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from kws_assets.config import landing_zone
from kws_assets.core.corpus.batches import configured_batch_keys
from kws_assets.core.corpus.landing import scan_landing_zone
from kws_assets.settings import KwsConfig

KEYWORDS_PARTITION = "keywords"
CORPUS_BATCHES_PARTITION = "corpus_batches"
KEYWORDS = dg.DynamicPartitionsDefinition(name=KEYWORDS_PARTITION)
CORPUS_BATCHES = dg.DynamicPartitionsDefinition(name=CORPUS_BATCHES_PARTITION)

# One partition per run: the Parquet IO manager writes one file per partition and output, so a
# run cannot hold several partitions of one asset; and one keyword (or batch) per run means a
# failure or retry touches only that keyword, while the run queue runs partitions side by side.
ONE_PARTITION_PER_RUN = dg.BackfillPolicy.multi_run(max_partitions_per_run=1)

ALLOW_MISSING = {"allow_missing_partitions": True}


def all_partitions_of(**kwargs: Any) -> dg.AssetIn:
    """An input that reads every partition of a partitioned parent (missing ones are skipped and
    reported by the asset, which decides whether that is an error)."""
    return dg.AssetIn(partition_mapping=dg.AllPartitionMapping(), metadata=ALLOW_MISSING, **kwargs)


def loaded_partitions(
    context: dg.AssetExecutionContext, input_name: str, value: Any
) -> dict[str, Any]:
    """The partitions of an all-partitions input as ``{partition_key: value}``.

    The UPath IO manager returns a dict for several partitions but the bare value when exactly
    one partition is loaded, and None when none is; this gives callers one shape.
    """
    if value is None:
        return {}
    if isinstance(value, dict):
        return dict(value)
    keys = context.asset_partition_keys_for_input(input_name)
    if len(keys) != 1:
        raise TypeError(f"input {input_name!r}: one value loaded for {len(keys)} partitions")
    return {keys[0]: value}


def missing_partitions(
    context: dg.AssetExecutionContext, input_name: str, loaded: dict[str, Any]
) -> list[str]:
    """Registered partitions of an input that had nothing materialized to load."""
    return sorted(set(context.asset_partition_keys_for_input(input_name)) - set(loaded))


def register_config_partitions(
    instance: dg.DagsterInstance, cfg: KwsConfig
) -> dict[str, list[str]]:
    """Add what the config and the landing zone name to the partition sets: every keyword, every
    configured source, every ready landed batch.  Idempotent; returns the partition keys in force.
    """
    batches = list(configured_batch_keys(cfg.sources))
    zone = landing_zone(cfg)
    landed, _ = scan_landing_zone(zone.root, zone.manifests, s3=zone.s3)
    batches += [b.key for b in landed]
    wanted = {KEYWORDS_PARTITION: list(cfg.keywords), CORPUS_BATCHES_PARTITION: batches}
    for name, keys in wanted.items():
        have = set(instance.get_dynamic_partitions(name))
        new = [k for k in keys if k not in have]
        if new:
            instance.add_dynamic_partitions(name, new)
    return wanted
