"""``hwnas dashboard``: a live, read-only view of running searches in the browser.

``server`` is a standard-library HTTP server bound to loopback by default that answers bounded
JSON snapshots of the runs; ``page`` is the one HTML page (no external library, works offline).
"""
