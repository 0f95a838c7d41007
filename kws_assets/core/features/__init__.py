"""Features: the front ends (MFCC, the speech embedding), the feature tables built with them,
and the loader that hands a table's splits to training."""
