"""Benchmarks of kws_assets against peers measured in the same run (``make bench``).

Every figure that matters is a ratio between two things timed side by side on the same inputs in
the same process (or, for the end-to-end scaling curve, the same machine minutes apart), because
the absolute numbers of a shared 2-core machine move with whatever else is running.
"""
