"""Run many experiment configs: serially, or in a pool of local worker processes (Dask: see dask_executor).

:func:`run_plan` is the one runner: every plan of :mod:`dlexp.sweep.grid` (sweeps,
compare-optimizers, lr-find, grad-report's grid, the gallery) runs through it on a
:class:`LocalExecutor` or a ``DaskExecutor`` (:func:`make_executor`). Each run is a
:class:`~dlexp.sweep.task.RunSpec` run by :func:`~dlexp.sweep.task.run_one` (:mod:`dlexp.sweep.task`).

Cancelling: while :func:`cancel_on_signals` is in force (the CLI holds it for the whole sweep),
SIGINT or SIGTERM calls the executor's ``cancel``. A local pool then starts nothing more and sends
SIGTERM to each worker: a run that is training stops at its next step, saves its checkpoint and is
recorded ``interrupted`` (resumable); an idle worker exits. A worker still busy after
``STOP_GRACE_S`` — or every worker, on a second signal — is killed. Workers run in their own process
group, so a terminal's Ctrl-C reaches them only through the sweep (once), and each watches its parent:
a worker whose sweep process died, even by SIGKILL, stops the same way. No worker outlives its sweep.

Every run of a sweep computes with one BLAS thread (threadpoolctl, plus the environment in worker
processes): jobs then do not fight over cores, and a run's numbers do not depend on how many runs
share the machine, so ``--jobs 1``, ``--jobs N`` and Dask give byte-identical results.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from dlexp.cores import core_to_spare
from dlexp.sweep.task import (
    BLAS_ENV,
    OnResult,
    Result,
    RunSpec,
    default_jobs,
    longest_first,
    not_run_result,
    one_blas_thread,
    run_one,
)

STOP_GRACE_S = 10.0  # a signalled worker has this long to save its checkpoint before it is killed
PARENT_POLL_S = 0.5  # how often a worker checks that its sweep process is still alive



_ENV_LOCK = threading.Lock()


@contextmanager
def blas_env_for_children():
    """Processes started inside the block get ``BLAS_ENV`` = 1 in their environment, so their BLAS
    starts with one thread whatever they import first; this process's own environment is restored."""
    with _ENV_LOCK:
        saved = {var: os.environ.get(var) for var in BLAS_ENV}
        os.environ.update({var: "1" for var in BLAS_ENV})
        try:
            yield
        finally:
            for var, value in saved.items():
                if value is None:
                    os.environ.pop(var, None)
                else:
                    os.environ[var] = value


_busy = False  # in a worker process: True while it runs a task


def _worker_signal(signum, frame) -> None:
    """SIGINT/SIGTERM in a worker outside a run's training: a task still preparing is abandoned
    (KeyboardInterrupt, caught by :func:`_in_worker`); an idle worker exits. While a run trains, the
    run's own handler (dlexp.experiment.stop_on_signals) takes precedence and stops it cleanly."""
    if _busy:
        raise KeyboardInterrupt
    os._exit(128 + signum)


def _watch_parent(parent: int) -> None:
    """Stop this worker as if signalled once its sweep process is gone (even killed by SIGKILL)."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(STOP_GRACE_S)
    os._exit(128 + signal.SIGTERM)


def worker_init() -> None:
    """Initializer of a local worker process: signals as described in the module docstring, one BLAS
    thread, and the engine imported up front."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _worker_signal)
    os.setpgrp()  # out of the terminal's process group: Ctrl-C reaches a worker only through its sweep
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True, name="dlexp-watch-parent").start()
    for var in BLAS_ENV:
        os.environ[var] = "1"
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1)  # stays in force for the life of the process
    except Exception:  # threadpoolctl missing or unsupported BLAS: the env vars above still apply
        pass
    import dlexp.experiment  # noqa: F401  (workers import concurrently, not on their first run)


def _in_worker(task: Callable[[RunSpec], Result], spec: RunSpec) -> Result:
    """Run ``task`` in a worker process; a signal before the run's training began abandons it."""
    global _busy
    _busy = True
    try:
        return task(spec)
    except KeyboardInterrupt:
        return not_run_result(spec, "interrupted", "stopped by its sweep before training started")
    finally:
        _busy = False


def _ready() -> None:
    """A no-op task: submitting it makes a pool start its worker process now."""


@contextmanager
def cancel_on_signals(executor):
    """While inside, SIGINT and SIGTERM call ``executor.cancel(signum)`` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        executor.cancel(signum)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


class LocalExecutor:
    """Runs specs in ``jobs`` local worker processes; ``jobs=1`` runs them in this process.

    Entering the executor starts the worker processes, so they import while the caller does other
    work (the CLI validates the grid meanwhile); leaving it lets them exit. Each worker is a
    one-process pool handed from run to run, so a worker process that dies fails only the run it
    was doing and is replaced for the next.

    :meth:`cancel` (SIGINT or SIGTERM, see :func:`cancel_on_signals`; a plain KeyboardInterrupt
    while waiting does the same): runs in progress stop at their next step and are recorded
    ``interrupted``, runs not started yet ``cancelled``; ``cancelled_by`` keeps the signal. With
    ``jobs=1`` the run in progress handles the signal itself (dlexp.experiment.stop_on_signals).
    """

    name = "local"

    def __init__(self, jobs: int = 1, task: Callable[[RunSpec], Result] = run_one):
        self.jobs = max(1, int(jobs))
        self.task = task
        self.slots = self.jobs
        self._idle: queue.SimpleQueue[ProcessPoolExecutor] | None = None
        self._pools: list[ProcessPoolExecutor] = []
        self._lock = threading.RLock()  # re-entrant: cancel() may run in a signal handler while it is held
        self.cancelled_by: int | None = None  # the first signal that cancelled the sweep
        self._state = "idle"  # idle | pool | serial | serial-task | done
        self._stop = threading.Event()
        self._killer: threading.Timer | None = None

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
        with blas_env_for_children():  # a spawn pool starts its process inside submit
            pool.submit(_ready)
        with self._lock:
            self._pools.append(pool)
        return pool

    def _start_workers(self) -> None:
        if self._idle is None:
            self._idle = queue.SimpleQueue()
            for _ in range(self.jobs):
                self._idle.put(self._new_pool())

    def _worker_processes(self) -> list:
        with self._lock:
            return [proc for pool in self._pools for proc in (pool._processes or {}).values()]

    def _signal_workers(self, signum: int) -> None:
        for proc in self._worker_processes():
            if proc.is_alive():
                try:
                    os.kill(proc.pid, signum)
                except ProcessLookupError:
                    pass

    def cancel(self, signum: int) -> None:
        """Cancel the sweep on ``signum`` (from a signal handler in the main thread; see the class doc).

        Raises KeyboardInterrupt where only that can stop the work in progress: before or between
        the runs of a sweep that has not started, and in a serial run that is not training yet.
        """
        first = self.cancelled_by is None
        if first:
            self.cancelled_by = signum
        self._stop.set()
        if not first:
            self._signal_workers(signal.SIGKILL)
            return
        self._signal_workers(signal.SIGTERM)  # a run stops at its next step; an idle worker exits
        if self._state in ("pool", "done"):
            self._killer = threading.Timer(STOP_GRACE_S, self._signal_workers, (signal.SIGKILL,))
            self._killer.daemon = True
            self._killer.start()
        elif self._state != "serial":  # idle (starting up) or a serial run still preparing
            raise KeyboardInterrupt

    def _stop_workers(self) -> None:
        processes = self._worker_processes()
        with self._lock:
            pools, self._pools, self._idle = self._pools, [], None
        for pool in pools:  # idle workers exit on their own; joining them would only add latency
            pool.shutdown(wait=False, cancel_futures=True)
        if self.cancelled_by is not None:  # a cancelled sweep returns only once its workers are gone
            deadline = time.monotonic() + STOP_GRACE_S
            for proc in processes:
                proc.join(max(0.0, deadline - time.monotonic()))
                if proc.is_alive():
                    proc.kill()
                    proc.join()
        if self._killer is not None:
            self._killer.cancel()

    def run(self, specs: list[RunSpec], on_result: OnResult | None = None) -> list[Result]:
        """Run every spec; results in spec order. ``on_result`` is called in this thread as runs end."""
        if self.cancelled_by is None:
            self._stop = threading.Event()
        if self.jobs <= 1 or len(specs) <= 1:
            return self._run_serial(specs, on_result)
        entered = self._idle is not None
        self._start_workers()
        self._state = "pool"
        try:
            return self._run_pool(specs, on_result)
        finally:
            self._state = "done"
            if not entered:
                self._stop_workers()

    def _run_serial(self, specs: list[RunSpec], on_result: OnResult | None) -> list[Result]:
        results: list[Result] = []
        self._state = "serial"
        try:
            with one_blas_thread():
                for spec in specs:
                    if self._stop.is_set():
                        result = not_run_result(spec, "cancelled")
                    else:
                        result = self._run_here(spec)
                    results.append(result)
                    if on_result:
                        on_result(result)
        finally:
            self._state = "done"
        return results

    def _run_here(self, spec: RunSpec) -> Result:
        """One run in this process; a run interrupted by a signal (its own handler's) stops the sweep."""
        self._state = "serial-task"
        try:
            result = self.task(replace(spec, background_format=core_to_spare(1)))
        except KeyboardInterrupt:
            self.cancelled_by = self.cancelled_by or signal.SIGINT
            result = not_run_result(spec, "interrupted", "interrupted before the run started")
        except Exception as exc:
            result = not_run_result(spec, "failed", f"{type(exc).__name__}: {exc}")
        finally:
            self._state = "serial"
        if result["status"] == "interrupted":
            self._stop.set()
            signum = (result.get("summary") or {}).get("signal")
            self.cancelled_by = self.cancelled_by or (int(signum) if signum else signal.SIGINT)
        return result

    def _run_pool(self, specs: list[RunSpec], on_result: OnResult | None) -> list[Result]:
        idle = self._idle
        stop = self._stop
        spare_cores = core_to_spare(self.jobs)  # each run may make its step-log text on a core of its own

        def in_slot(spec: RunSpec) -> Result:
            if stop.is_set():
                return not_run_result(spec, "cancelled")
            pool = idle.get()
            try:
                if stop.is_set():
                    return not_run_result(spec, "cancelled")
                return pool.submit(_in_worker, self.task, replace(spec, background_format=spare_cores)).result()
            except BrokenProcessPool:
                if stop.is_set():
                    return not_run_result(spec, "interrupted", "the worker process was stopped by its sweep")
                pool = self._new_pool()  # the next run gets a fresh process
                return not_run_result(spec, "failed", "the worker process died during this run")
            except Exception as exc:  # e.g. the result could not be sent back
                return not_run_result(spec, "failed", f"{type(exc).__name__}: {exc}")
            finally:
                idle.put(pool)

        results: list[Result | None] = [None] * len(specs)
        threads = ThreadPoolExecutor(self.jobs, thread_name_prefix="dlexp-sweep-slot")
        finished = False
        try:
            futures = {threads.submit(in_slot, specs[k]): k for k in longest_first(specs)}
            pending = set(futures)
            while pending:
                try:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                except KeyboardInterrupt:  # no cancel_on_signals in force: Ctrl-C arrives as an exception
                    if stop.is_set():
                        raise
                    self.cancel(signal.SIGINT)
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


def make_executor(name: str = "local", scheduler: str | None = None, jobs: int | None = None,
                  n_runs: int | None = None):
    """A :class:`LocalExecutor` (``name`` "local") or ``DaskExecutor`` ("dask") with ``jobs`` workers
    (default: the cores), at most ``n_runs``. Not started: use it as a context manager."""
    workers = jobs or default_jobs()
    workers = max(1, min(workers, n_runs) if n_runs else workers)
    if name == "dask":
        from dlexp.sweep.dask_executor import DaskExecutor

        return DaskExecutor(workers, scheduler)
    return LocalExecutor(workers)


def run_plan(plan, runs_dir: Path, executor=None, *, jobs: int = 1,
             on_result: OnResult | None = None) -> list[Result]:
    """Run every run of a :class:`~dlexp.sweep.grid.SweepPlan`, its run directories into ``runs_dir``.

    The one runner behind sweeps, compare-optimizers, lr-find, grad-report's grid and the gallery.
    ``executor``: an entered LocalExecutor or DaskExecutor; without one, ``jobs`` local processes
    are started for this plan and stopped after it. Results come back in plan order, one per run,
    and never raise for a run that diverged or failed (its ``status`` and ``error`` say so).
    """
    specs = plan.specs(runs_dir)
    if executor is not None:
        return executor.run(specs, on_result)
    return run_local(specs, jobs, on_result)
