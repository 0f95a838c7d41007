"""What ships to a small device: the DS-CNN as a full-integer int8 TensorFlow Lite model, its bytes
as a C array, a versioned ``manifest.json`` that a device build (or a loader) checks, and a
``MODEL_CARD.md`` for people.

TensorFlow Lite Micro (ESPHome micro_wake_word, MLPerf Tiny) loads ``.tflite`` flatbuffers, not
ONNX; the ONNX artifact of :mod:`kws_assets.core.ship.export` stays the desktop/server format.
"""
