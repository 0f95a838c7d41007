"""Audio: reading and writing clips, the fast WAV path, quality metrics."""
