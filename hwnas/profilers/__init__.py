"""Profilers: hardware cost of a network as Measurements with units."""
