"""Ship: one int8 artifact per model family the config lists (model + labels + the front end it
expects), each an asset value stored beside the tables: embedding_artifact, micro_artifact,
quantized_model (DS-CNN on MFCC), …; and per family its release: the artifact with the operating
point the evaluation selected.  :mod:`kws_assets.defs.family_graph` builds them from the config."""

import dagster as dg

from kws_assets.core.families import Registry
from kws_assets.lib.family_assets import artifact_asset, release_asset


def family_artifacts(registry: Registry) -> list[dg.AssetsDefinition]:
    """The artifact asset and the release asset of every family of ``registry``."""
    return [
        *(artifact_asset(family) for family in registry),
        *(release_asset(family) for family in registry),
    ]
