"""Verified ONNX export: ``exporter`` picks and exports models, ``source`` rebuilds them from a
run, ``verify`` checks the file against PyTorch, ``int8`` quantises, ``files`` writes the pair."""
