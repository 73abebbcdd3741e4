"""Learned surrogates: predictor ensembles and surrogate benchmark files."""
