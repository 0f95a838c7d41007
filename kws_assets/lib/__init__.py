"""Dagster machinery that is not a definition: IO managers, resources, retries, partition helpers,
metadata renderers and the in-process materializer.  ``kws_assets.defs`` holds the definitions."""
