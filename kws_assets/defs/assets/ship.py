"""Ship: one int8 artifact per model family (model + labels + the front end it expects), each an
asset value stored beside the tables: quantized_model (DS-CNN on MFCC), embedding_artifact, …;
and per family its release: the artifact with the operating point the evaluation selected."""

from kws_assets.core.families import families
from kws_assets.lib.family_assets import artifact_asset, release_asset

family_artifacts = [artifact_asset(family) for family in families()]
family_releases = [release_asset(family) for family in families()]
