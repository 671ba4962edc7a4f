"""Sweeps: run many configs (a grid of overrides × seeds) and aggregate them."""

from dlexp.sweep.runner import RunSpec, run_local, run_one

__all__ = ["RunSpec", "run_local", "run_one"]
