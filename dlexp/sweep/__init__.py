"""Sweeps: run many configs (a grid of overrides × seeds) and aggregate them.

One plan type (``grid.SweepPlan``, built by ``grid.plan_runs``; ``grid.build_plan`` for ``--grid``
axes) validates every run before anything is written; one runner (``runner.run_plan``) runs it on a
``LocalExecutor`` (process pool) or ``DaskExecutor``; ``folder.run_sweep`` also writes the sweep
folder. Sweeps, compare-optimizers, lr-find, grad-report's grid and the gallery are all such plans.
"""

from dlexp.sweep.runner import (
    LocalExecutor,
    RunSpec,
    default_jobs,
    make_executor,
    run_local,
    run_one,
    run_plan,
)

__all__ = ["LocalExecutor", "RunSpec", "default_jobs", "make_executor", "run_local", "run_one", "run_plan"]
