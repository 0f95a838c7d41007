"""The pure core: audio DSP, quality metrics, TTS, alignment, features, model and export.

Nothing under this package imports Dagster; the assets in ``kws_assets.defs`` call into it.
"""
