"""Run many experiment configs: serially, or in a pool of local worker processes (Dask: see dask_executor).

A :class:`RunSpec` is a plain, picklable description of one run (a config mapping plus where it
came from); :func:`run_one` runs it and returns a plain dict result — it never raises for a run
that diverged or failed, so one bad run never stops a sweep.

Every run of a sweep computes with one BLAS thread (threadpoolctl, plus the environment in worker
processes): jobs then do not fight over cores, and a run's numbers do not depend on how many runs
share the machine, so ``--jobs 1``, ``--jobs N`` and Dask give byte-identical results.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


def default_jobs() -> int:
    """The number of cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


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


def worker_init() -> None:
    """Initializer of a local worker process: one BLAS thread, and the engine imported up front."""
    for var in BLAS_ENV:
        os.environ[var] = "1"
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1)  # stays in force for the life of the process
    except Exception:  # threadpoolctl missing or unsupported BLAS: the env vars above still apply
        pass
    import dlexp.experiment  # noqa: F401  (workers import concurrently, not on their first run)


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
                                shown=spec.shown)
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


def _ready() -> None:
    """A no-op task: submitting it makes a pool start its worker process now."""


class LocalExecutor:
    """Runs specs in ``jobs`` local worker processes; ``jobs=1`` runs them in this process.

    Entering the executor starts the worker processes, so they import while the caller does other
    work (the CLI validates the grid meanwhile); leaving it lets them exit. Each worker is a
    one-process pool handed from run to run, so a worker process that dies fails only the run it
    was doing and is replaced for the next.

    Ctrl-C: runs in progress stop at their next step and are recorded ``interrupted`` (each run
    handles SIGINT itself); runs not started yet are recorded ``cancelled``. A second Ctrl-C
    while waiting raises KeyboardInterrupt.
    """

    name = "local"

    def __init__(self, jobs: int = 1, task: Callable[[RunSpec], Result] = run_one):
        self.jobs = max(1, int(jobs))
        self.task = task
        self.slots = self.jobs
        self._idle: queue.SimpleQueue[ProcessPoolExecutor] | None = None
        self._pools: list[ProcessPoolExecutor] = []
        self._lock = threading.Lock()

    def __enter__(self) -> LocalExecutor:
        if self.jobs > 1:
            self._start_workers()
        return self

    def __exit__(self, *exc) -> None:
        self._stop_workers()

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: forking a process that runs threads (the slots, rich, BLAS) can deadlock
        pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=worker_init)
        pool.submit(_ready)
        with self._lock:
            self._pools.append(pool)
        return pool

    def _start_workers(self) -> None:
        if self._idle is None:
            self._idle = queue.SimpleQueue()
            for _ in range(self.jobs):
                self._idle.put(self._new_pool())

    def _stop_workers(self) -> None:
        with self._lock:
            pools, self._pools, self._idle = self._pools, [], None
        for pool in pools:  # idle workers exit on their own; joining them would only add latency
            pool.shutdown(wait=False, cancel_futures=True)

    def run(self, specs: list[RunSpec], on_result: OnResult | None = None) -> list[Result]:
        """Run every spec; results in spec order. ``on_result`` is called in this thread as runs end."""
        if self.jobs <= 1 or len(specs) <= 1:
            return self._run_serial(specs, on_result)
        entered = self._idle is not None
        self._start_workers()
        try:
            return self._run_pool(specs, on_result)
        finally:
            if not entered:
                self._stop_workers()

    def _run_serial(self, specs: list[RunSpec], on_result: OnResult | None) -> list[Result]:
        results: list[Result] = []
        stopped = False
        with one_blas_thread():
            for spec in specs:
                if stopped:
                    result = not_run_result(spec, "cancelled")
                else:
                    try:
                        result = self.task(spec)
                    except KeyboardInterrupt:
                        result = not_run_result(spec, "interrupted", "interrupted before the run started")
                    except Exception as exc:
                        result = not_run_result(spec, "failed", f"{type(exc).__name__}: {exc}")
                    stopped = result["status"] == "interrupted"
                results.append(result)
                if on_result:
                    on_result(result)
        return results

    def _run_pool(self, specs: list[RunSpec], on_result: OnResult | None) -> list[Result]:
        idle = self._idle
        stop = threading.Event()

        def in_slot(spec: RunSpec) -> Result:
            if stop.is_set():
                return not_run_result(spec, "cancelled")
            pool = idle.get()
            try:
                return pool.submit(self.task, spec).result()
            except BrokenProcessPool:
                pool = self._new_pool()  # the next run gets a fresh process
                if stop.is_set():
                    return not_run_result(spec, "interrupted", "worker process stopped by Ctrl-C")
                return not_run_result(spec, "failed", "the worker process died during this run")
            except Exception as exc:  # e.g. the result could not be sent back
                return not_run_result(spec, "failed", f"{type(exc).__name__}: {exc}")
            finally:
                idle.put(pool)

        results: list[Result | None] = [None] * len(specs)
        threads = ThreadPoolExecutor(self.jobs, thread_name_prefix="dlexp-sweep-slot")
        finished = False
        try:
            futures = {threads.submit(in_slot, spec): k for k, spec in enumerate(specs)}
            pending = set(futures)
            while pending:
                try:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                except KeyboardInterrupt:
                    if stop.is_set():
                        raise
                    stop.set()
                    continue
                for fut in sorted(done, key=futures.get):
                    k = futures[fut]
                    results[k] = fut.result()
                    if on_result:
                        on_result(results[k])
            finished = True
        finally:
            stop.set()  # on an error or a second Ctrl-C: start nothing more, do not wait for runs
            threads.shutdown(wait=finished, cancel_futures=True)
        return results  # type: ignore[return-value]


def run_local(specs: list[RunSpec], jobs: int = 1, on_result: OnResult | None = None) -> list[Result]:
    """Run specs with ``jobs`` worker processes (1: in this process). Results in spec order."""
    with LocalExecutor(min(jobs, max(1, len(specs)))) as executor:
        return executor.run(specs, on_result)
