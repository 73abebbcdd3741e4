"""Measuring on the board you deploy to: a device server, its client and pools of boards.

``protocol``, ``measure`` and ``server`` run on the board and import only the standard library,
numpy and onnxruntime; ``client`` and ``pool`` run on the search host. This package imports
nothing from the rest of hwnas except ``hwnas.errors``, so hwnas modules may use it freely.
"""
