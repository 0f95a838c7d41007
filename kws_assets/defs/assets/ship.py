"""Ship: one int8 artifact per model family (model + labels + the front end it expects), each an
asset value stored beside the tables: quantized_model (DS-CNN on MFCC), embedding_artifact, …"""

from kws_assets.core.families import families
from kws_assets.lib.family_assets import artifact_asset

family_artifacts = [artifact_asset(family) for family in families()]
