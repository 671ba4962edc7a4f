"""Sweeps: run many configs (a grid of overrides × seeds) and aggregate them.

``build_plan`` validates every run before anything is written; ``run_sweep`` runs the plan on a
``LocalExecutor`` (process pool) or ``DaskExecutor`` and writes the sweep folder.
"""

from dlexp.sweep.runner import LocalExecutor, RunSpec, default_jobs, run_local, run_one

__all__ = ["LocalExecutor", "RunSpec", "default_jobs", "run_local", "run_one"]
