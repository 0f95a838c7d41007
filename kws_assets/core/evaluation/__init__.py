"""Evaluation: streams, DET curves, operating points, transfer to real speech, reports and
plots."""
