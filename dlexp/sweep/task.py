"""One run as a task of a sweep: its picklable spec, running it, its plain result.

A :class:`RunSpec` is a plain, picklable description of one run (a config mapping plus where it
came from); :func:`run_one` runs it and returns a plain dict result — it never raises for a run
that diverged or failed, so one bad run never stops a sweep. The executors (the local pool in
:mod:`dlexp.sweep.runner`, :mod:`dlexp.sweep.dask_executor`) start runs in :func:`longest_first`
order and return results in spec order.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlexp.cores import available_cores
from dlexp.errors import DlexpError

BLAS_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

Result = dict[str, Any]
OnResult = Callable[[Result], None]


@dataclass
class RunSpec:
    config: dict[str, Any]  # a config mapping (overrides applied), validated in the worker
    base_dir: str  # folder relative data paths resolve against
    shown: str  # how the config file is named in messages
    runs_dir: str
    point: dict[str, Any] = field(default_factory=dict)  # the grid point's overrides (for tables)
    index: int = 0
    cost: float = 0.0  # relative cost (epochs × rows × parameters): the costliest runs start first
    background_format: bool = False  # step-log text in a second process (where the executor leaves a core free)


def longest_first(specs: list[RunSpec]) -> list[int]:
    """The order parallel executors start runs in: highest ``cost`` first, ties in plan order.

    A long run started last would keep one worker busy while the others idle; started first, the
    short runs fill in around it. Results never depend on this order (each run's numbers come from
    its own seed), and come back in plan order.
    """
    return sorted(range(len(specs)), key=lambda k: (-specs[k].cost, k))


def default_jobs() -> int:
    """The number of cores this process may use."""
    return available_cores()


@contextmanager
def one_blas_thread():
    """Limit BLAS/OpenMP to one thread inside the block (a no-op without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1):
        yield


def not_run_result(spec: RunSpec, status: str, error: str | None = None) -> Result:
    return {"index": spec.index, "point": spec.point, "status": status, "run_dir": None, "summary": None,
            "history": [], "error": error, "wall_s": 0.0}


def run_one(spec: RunSpec) -> Result:
    """Run one spec; returns ``{index, point, status, run_dir, summary, history, error, wall_s}``.

    ``status`` is the run's (completed, diverged, interrupted) or ``failed`` when it could not run.
    """
    from dlexp import experiment
    from dlexp.config import validate_mapping

    started = time.perf_counter()
    out = not_run_result(spec, "failed")
    try:
        cfg = validate_mapping(spec.config, spec.shown)
        result = experiment.run(cfg, base_dir=Path(spec.base_dir), runs_dir=Path(spec.runs_dir),
                                shown=spec.shown, background_format=spec.background_format)
        out.update(status=result.status, run_dir=str(result.run_dir), summary=result.summary,
                   history=result.history)
    except DlexpError as exc:
        out["error"] = str(exc)
    except Exception as exc:  # a failed run is reported in the table, not fatal to the sweep
        out["error"] = f"{type(exc).__name__}: {exc}"
        out["traceback"] = traceback.format_exc()
    out["wall_s"] = time.perf_counter() - started
    return out


def run_one_single_thread(spec: RunSpec) -> Result:
    """:func:`run_one` with BLAS limited to one thread (the task Dask workers run)."""
    with one_blas_thread():
        return run_one(spec)
