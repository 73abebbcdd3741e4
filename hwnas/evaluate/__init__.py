"""Evaluation: a candidate's measurements, composed from metric providers.

``base`` holds the provider protocol (imported by every provider), ``evaluator`` routes metrics
to providers, ``cheap`` serves training-free metrics, ``table`` answers from a benchmark table,
and ``providers`` builds a run's providers from its config (the only module that knows them all).
"""
