"""Evaluation, one concern per module, each importing only those above it:

* ``streams``: the audio (keyword-free recordings, keyword clips embedded in filler);
* ``det``: false accepts per hour against false rejections over a threshold sweep;
* ``plots``: confusion-matrix and DET-curve pictures;
* ``operating_point``: the point selected on validation streams, the test streams' report at it;
* ``material``: what every family is evaluated on, built once (held-out voices, both streams);
* ``family``: one family's artifact evaluated through its own classifier;
* ``report``: the report folder and the families' rows;
* ``real_speech`` and ``transfer``: every family on speech it never trained on.
"""
