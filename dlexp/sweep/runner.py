"""Run many experiment configs: serially, in a local process pool, or (see executors) on Dask.

A :class:`RunSpec` is a plain, picklable description of one run (a config mapping plus where it
came from); :func:`run_one` runs it and returns a plain dict result — it never raises for a run
that diverged or failed, so one bad run never stops a sweep.
"""

from __future__ import annotations

import os
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from dlexp.errors import DlexpError


@dataclass
class RunSpec:
    config: dict[str, Any]  # a config mapping (overrides applied), validated in the worker
    base_dir: str  # folder relative data paths resolve against
    shown: str  # how the config file is named in messages
    runs_dir: str
    point: dict[str, Any] = field(default_factory=dict)  # the grid point's overrides (for tables)
    index: int = 0


def _limit_blas_threads() -> None:
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except Exception:  # threadpoolctl missing or unsupported BLAS: the env vars below still apply
        pass


def worker_init() -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    _limit_blas_threads()


def run_one(spec: RunSpec) -> dict[str, Any]:
    """Run one spec; returns ``{index, point, status, run_dir, summary, history, error}``."""
    from dlexp import experiment
    from dlexp.config import validate_mapping

    started = time.perf_counter()
    out: dict[str, Any] = {"index": spec.index, "point": spec.point, "status": "failed", "run_dir": None,
                           "summary": None, "history": [], "error": None}
    try:
        cfg = validate_mapping(spec.config, spec.shown)
        result = experiment.run(cfg, base_dir=Path(spec.base_dir), runs_dir=Path(spec.runs_dir), shown=spec.shown)
        out.update(status=result.status, run_dir=str(result.run_dir), summary=result.summary,
                   history=result.history)
    except DlexpError as exc:
        out["error"] = str(exc)
    except Exception as exc:  # a failed run is reported in the table, not fatal to the sweep
        out["error"] = f"{type(exc).__name__}: {exc}"
        out["traceback"] = traceback.format_exc()
    out["wall_s"] = time.perf_counter() - started
    return out


def run_local(specs: list[RunSpec], jobs: int = 1,
              on_result: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run specs with ``jobs`` worker processes (1: in this process). Results in spec order."""
    results: list[dict[str, Any] | None] = [None] * len(specs)
    if jobs <= 1 or len(specs) <= 1:
        for k, spec in enumerate(specs):
            results[k] = run_one(spec)
            if on_result:
                on_result(results[k])
        return results  # type: ignore[return-value]
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=worker_init) as pool:
        futures = {pool.submit(run_one, spec): k for k, spec in enumerate(specs)}
        for fut in as_completed(futures):
            k = futures[fut]
            try:
                results[k] = fut.result()
            except Exception as exc:  # the worker process died
                results[k] = {"index": specs[k].index, "point": specs[k].point, "status": "failed",
                              "run_dir": None, "summary": None, "history": [],
                              "error": f"worker died: {type(exc).__name__}: {exc}"}
            if on_result:
                on_result(results[k])
    return results  # type: ignore[return-value]
