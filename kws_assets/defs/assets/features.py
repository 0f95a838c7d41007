"""Features: one table per model family (MFCC for the DS-CNN, the speech embedding for the
embedding head, …), each computed with the same front-end code the family's artifact runs."""

from kws_assets.core.families import families
from kws_assets.lib.family_assets import table_asset

feature_tables = [table_asset(family) for family in families()]
