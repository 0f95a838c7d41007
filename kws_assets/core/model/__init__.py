"""Models: feature tables, networks, training, export, detection, evaluation, plots."""
