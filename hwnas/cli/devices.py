"""Commands for target devices and profiling: devices, devices lut, devices calibrate, profile."""

from __future__ import annotations

from hwnas.cli.app import app  # noqa: F401 - commands register on it
