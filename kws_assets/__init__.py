"""kws_assets: a Dagster asset graph that turns speech corpora and TTS into a keyword-spotting
dataset, an MFCC feature table, a DS-CNN model and an int8 ONNX artifact.

``kws_assets.core`` is the pure core (no Dagster imports); ``kws_assets.defs`` holds the thin
Dagster layer that wires it into software-defined assets.
"""

__version__ = "0.1.0"
