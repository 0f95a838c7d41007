"""Audio: reading and writing clips, the fast WAV path, MFCC features, quality metrics."""
