"""Evaluation, one concern per module, each importing only those above it:

* ``intervals``: exact confidence intervals of a false-accept rate (Poisson) and an FRR (binomial);
* ``streams``: the audio (keyword-free recordings, keyword clips embedded in filler);
* ``det``: false accepts per hour against false rejections over a threshold sweep;
* ``plots``: confusion-matrix and DET-curve pictures;
* ``operating_point``: the point selected on validation streams by its FA/h upper bound (flagged
  not usable above ``max_frr``), the test streams' report at it with its intervals;
* ``material``: what every family is evaluated on, built once (held-out voices, both streams);
* ``family``: one family's artifact evaluated through its own classifier;
* ``report``: the report folder and the families' rows;
* ``real_speech`` and ``transfer``: every family on speech it never trained on.
"""
